/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The request view's own functions: msilo_request_init(), and the deep copy
 * (msilo_request_copy() / msilo_request_free()) that a host uses to hand a
 * request to the thread that owns the engine. A copy is ONE allocation: the
 * struct, then the header array, then every string and the body, so that
 * freeing it is one g_free() and nothing in it can be freed on its own.
 *
 * A view's `version` says which members the caller's struct has: both
 * functions read and write no byte past that revision's last member
 * (request_version_size), and step through the headers by the view's own
 * header_size (msilo_request_header(), internal.h).
 */
#include "internal.h"

#include <string.h>

#define MEMBER_END(type, m) (offsetof(type, m) + sizeof(((type *)0)->m))
static const size_t request_version_size[] = {
    [1] = MEMBER_END(msilo_request_t, flags),
    [2] = MEMBER_END(msilo_request_t, header_size),
    [3] = MEMBER_END(msilo_request_t, store_key),
    [4] = MEMBER_END(msilo_request_t, device),
};
/* A new version appends a row above. */
G_STATIC_ASSERT(G_N_ELEMENTS(request_version_size) == MSILO_REQUEST_VERSION + 1);
G_STATIC_ASSERT(sizeof(msilo_header_t) >= MSILO_HEADER_V1_SIZE);

int msilo_request_init(msilo_request_t *req, unsigned version)
{
    if (!req)
        return msilo_fail(MSILO_EINVAL, "msilo_request_init: request is NULL");
    if (version < 1 || version > MSILO_REQUEST_VERSION)
        return msilo_fail(MSILO_EVERSION,
                          "msilo_request_init: request version %u not supported (1..%u)",
                          version, (unsigned)MSILO_REQUEST_VERSION);
    msilo_request_t init = MSILO_REQUEST_INIT;
    init.version = version;
    memcpy(req, &init, request_version_size[version]);
    return 0;
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* Copies @s to *@p and advances it; NULL stays NULL. */
static const char *put(char **p, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = memcpy(*p, s, n);
    *p += n;
    return d;
}

int msilo_request_copy(const msilo_request_t *req, msilo_request_t **ret)
{
    if (!req || !ret)
        return msilo_fail(MSILO_EINVAL, "msilo_request_copy: NULL argument");
    if (req->version < 1 || req->version > MSILO_REQUEST_VERSION)
        return msilo_fail(MSILO_EVERSION, "request view version %u not supported", req->version);
    if ((req->n_headers && !req->headers) || (req->body_len && !req->body))
        return msilo_fail(MSILO_EINVAL, "msilo_request_copy: headers or body missing");
    if (req->n_headers && msilo_request_header_step(req) < MSILO_HEADER_V1_SIZE)
        return msilo_fail(MSILO_EINVAL, "msilo_request_copy: header_size %zu too small",
                          msilo_request_header_step(req));
    const char *const strs[] = { req->method,       req->ruri,     req->orig_ruri, req->to,
                                 req->from,         req->contact,  req->content_type,
                                 req->call_id,      req->allow,    req->snd_time,
                                 req->version >= 3 ? req->from_tag : NULL,
                                 req->version >= 3 ? req->store_key : NULL,
                                 req->version >= 4 ? req->device : NULL };
    size_t size = sizeof(msilo_request_t) + req->n_headers * sizeof(msilo_header_t) +
                  req->body_len + 1;
    for (size_t i = 0; i < G_N_ELEMENTS(strs); i++)
        size += str_size(strs[i]);
    for (size_t i = 0; i < req->n_headers; i++)
        size += str_size(msilo_request_header(req, i)->name) +
                str_size(msilo_request_header(req, i)->value);

    msilo_request_t *c = g_malloc(size);
    /* the caller's members, then this revision's defaults for the others */
    *c = (msilo_request_t)MSILO_REQUEST_INIT;
    memcpy(c, req, request_version_size[req->version]);
    c->version = MSILO_REQUEST_VERSION;
    c->header_size = sizeof(msilo_header_t);
    msilo_header_t *h = (msilo_header_t *)(void *)(c + 1);
    char *p = (char *)(h + req->n_headers);
    for (size_t i = 0; i < req->n_headers; i++) {
        h[i] = (msilo_header_t){ 0 };
        h[i].name = put(&p, msilo_request_header(req, i)->name);
        h[i].value = put(&p, msilo_request_header(req, i)->value);
    }
    c->headers = req->n_headers ? h : NULL;
    c->method = put(&p, req->method);
    c->ruri = put(&p, req->ruri);
    c->orig_ruri = put(&p, req->orig_ruri);
    c->to = put(&p, req->to);
    c->from = put(&p, req->from);
    c->contact = put(&p, req->contact);
    c->content_type = put(&p, req->content_type);
    c->call_id = put(&p, req->call_id);
    c->allow = put(&p, req->allow);
    c->snd_time = put(&p, req->snd_time);
    if (req->version >= 3) {
        c->from_tag = put(&p, req->from_tag);
        c->store_key = put(&p, req->store_key);
    }
    if (req->version >= 4)
        c->device = put(&p, req->device);
    /* the body may hold NUL bytes; one more keeps text bodies terminated */
    if (req->body_len)
        memcpy(p, req->body, req->body_len);
    p[req->body_len] = '\0';
    c->body = req->body_len ? p : NULL;
    *ret = c;
    return 0;
}

void msilo_request_free(msilo_request_t *req)
{
    g_free(req);
}
