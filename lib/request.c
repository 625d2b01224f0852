/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The request view's own functions: msilo_request_init(), and the deep copy
 * (msilo_request_copy() / msilo_request_free()) that a host uses to hand a
 * request to the thread that owns the engine. A copy is ONE allocation: the
 * struct, then the header array, then every string and the body, so that
 * freeing it is one g_free() and nothing in it can be freed on its own.
 */
#include "internal.h"

#include <string.h>

void msilo_request_init(msilo_request_t *req)
{
    if (req)
        *req = (msilo_request_t)MSILO_REQUEST_INIT;
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
    const char *const strs[] = { req->method,       req->ruri,     req->orig_ruri, req->to,
                                 req->from,         req->contact,  req->content_type,
                                 req->call_id,      req->allow,    req->snd_time };
    size_t size = sizeof(msilo_request_t) + req->n_headers * sizeof(msilo_header_t) +
                  req->body_len + 1;
    for (size_t i = 0; i < G_N_ELEMENTS(strs); i++)
        size += str_size(strs[i]);
    for (size_t i = 0; i < req->n_headers; i++)
        size += str_size(req->headers[i].name) + str_size(req->headers[i].value);

    msilo_request_t *c = g_malloc(size);
    *c = *req;
    c->version = MSILO_REQUEST_VERSION;
    msilo_header_t *h = (msilo_header_t *)(void *)(c + 1);
    char *p = (char *)(h + req->n_headers);
    for (size_t i = 0; i < req->n_headers; i++) {
        h[i].name = put(&p, req->headers[i].name);
        h[i].value = put(&p, req->headers[i].value);
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
