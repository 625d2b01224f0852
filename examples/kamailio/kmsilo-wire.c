/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kmsilo-wire.c: encodes and decodes the packets of kmsilo-wire.h.
 *
 * Layout: u32 op, u32 seq, i64 num, i32 status, then for STORE/DUMP the
 * fields of the request view as strings (u32 length, 0xffffffff = NULL, the
 * bytes, a NUL byte not counted), i64 expires, u32 flags, u32 n_headers and
 * the header names and values. Host byte order: both ends are one machine.
 */
#include "kmsilo-wire.h"

#include <glib.h>
#include <string.h>

#define NULL_LEN 0xffffffffu

static void put(GByteArray *b, const void *p, size_t n) { g_byte_array_append(b, p, (guint)n); }

static void put_str(GByteArray *b, const char *s, size_t n)
{
    uint32_t len = s ? (uint32_t)n : NULL_LEN;
    put(b, &len, sizeof len);
    if (s) {
        put(b, s, n);
        put(b, "", 1);
    }
}

static void put_cstr(GByteArray *b, const char *s) { put_str(b, s, s ? strlen(s) : 0); }

size_t kmsilo_wire_encode_request(uint32_t op, uint32_t seq, const msilo_request_t *r,
                                  const char *owner, int64_t max, char **ret_buf)
{
    GByteArray *b = g_byte_array_sized_new(256 + (guint)r->body_len);
    int32_t status = 0;
    int64_t expires = r->expires;
    uint32_t flags = r->flags, n = (uint32_t)r->n_headers;
    put(b, &op, 4);
    put(b, &seq, 4);
    put(b, &max, 8);
    put(b, &status, 4);
    put_cstr(b, r->method);
    put_cstr(b, r->ruri);
    put_cstr(b, r->orig_ruri);
    put_cstr(b, r->to);
    put_cstr(b, r->from);
    put_cstr(b, r->contact);
    put_cstr(b, r->content_type);
    put_str(b, r->body ? r->body : "", r->body_len);
    put_cstr(b, r->call_id);
    put_cstr(b, r->allow);
    put_cstr(b, r->snd_time);
    put_cstr(b, owner);
    put(b, &expires, 8);
    put(b, &flags, 4);
    put(b, &n, 4);
    for (uint32_t i = 0; i < n; i++) {
        put_cstr(b, r->headers[i].name);
        put_cstr(b, r->headers[i].value);
    }
    size_t len = b->len;
    *ret_buf = (char *)g_byte_array_free(b, FALSE);
    return len;
}

size_t kmsilo_wire_encode_small(uint32_t op, uint32_t seq, int64_t num, int32_t status,
                                char *buf)
{
    memcpy(buf, &op, 4);
    memcpy(buf + 4, &seq, 4);
    memcpy(buf + 8, &num, 8);
    memcpy(buf + 16, &status, 4);
    return 20;
}

typedef struct {
    const char *p, *end;
    int bad;
} rd_t;

static void get(rd_t *r, void *out, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n);
    r->p += n;
}

static const char *get_str(rd_t *r, size_t *ret_len)
{
    uint32_t len;
    get(r, &len, 4);
    if (r->bad || len == NULL_LEN)
        return NULL;
    if ((size_t)(r->end - r->p) < (size_t)len + 1 || r->p[len] != '\0') {
        r->bad = 1;
        return NULL;
    }
    const char *s = r->p;
    r->p += (size_t)len + 1;
    if (ret_len)
        *ret_len = len;
    return s;
}

int kmsilo_wire_decode(const char *buf, size_t len, kmsilo_wire_t *w)
{
    rd_t r = { buf, buf + len, 0 };
    msilo_request_t init = MSILO_REQUEST_INIT;
    memset(w, 0, sizeof *w);
    w->req = init;
    get(&r, &w->op, 4);
    get(&r, &w->seq, 4);
    get(&r, &w->num, 8);
    get(&r, &w->status, 4);
    if (r.bad)
        return -1;
    if (w->op != KMSILO_OP_STORE && w->op != KMSILO_OP_DUMP && w->op != KMSILO_OP_STORE_ASYNC)
        return w->op == KMSILO_OP_DONE || w->op == KMSILO_OP_STORED ? 0 : -1;
    msilo_request_t *q = &w->req;
    q->method = get_str(&r, NULL);
    q->ruri = get_str(&r, NULL);
    q->orig_ruri = get_str(&r, NULL);
    q->to = get_str(&r, NULL);
    q->from = get_str(&r, NULL);
    q->contact = get_str(&r, NULL);
    q->content_type = get_str(&r, NULL);
    q->body = get_str(&r, &q->body_len);
    q->call_id = get_str(&r, NULL);
    q->allow = get_str(&r, NULL);
    q->snd_time = get_str(&r, NULL);
    w->owner = get_str(&r, NULL);
    int64_t expires;
    uint32_t flags, n;
    get(&r, &expires, 8);
    get(&r, &flags, 4);
    get(&r, &n, 4);
    if (r.bad || n > 1000)
        return -1;
    q->expires = (long)expires;
    q->flags = flags;
    if (n) {
        msilo_header_t *h = g_new0(msilo_header_t, n);
        for (uint32_t i = 0; i < n; i++) {
            h[i].name = get_str(&r, NULL);
            h[i].value = get_str(&r, NULL);
            if (!h[i].name || !h[i].value)
                r.bad = 1;
        }
        q->headers = h;
        q->n_headers = n;
    }
    if (r.bad || r.p != r.end) {
        kmsilo_wire_clear(w);
        return -1;
    }
    return 0;
}

void kmsilo_wire_clear(kmsilo_wire_t *w)
{
    g_free((void *)w->req.headers);
    w->req.headers = NULL;
    w->req.n_headers = 0;
}
