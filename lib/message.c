/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Messages: allocation, copy, free. Every message the library allocates
 * sits right after a private header (msg_hdr_t) in the same block, so that
 * what the library needs to know about the allocation stays out of the
 * public struct (which then holds nothing but fields a caller may use):
 *
 *   [ msg_hdr_t | msilo_message_t | packed strings (packed messages only) ]
 *
 * A packed message (msilo_message_new_packed(), the memory store's claim
 * for the engine) keeps its strings and body in the same block, after the
 * struct; msilo_message_free() frees only the pointers outside that area,
 * so a field the engine replaced is still freed. Packed messages never
 * leave the library: msilo_store_claim() and every other public path give
 * ordinary ones, whose fields a caller may g_free() (tests/abi/test-message.c).
 */
#include "internal.h"

#include <string.h>

/* A union with max_align_t keeps the public struct as aligned as malloc's
 * own blocks. */
typedef union msg_hdr {
    size_t packed_size; /* bytes after the struct holding strings; 0 = ordinary */
    max_align_t align_;
} msg_hdr_t;

static inline msg_hdr_t *hdr_of(const msilo_message_t *m)
{
    return (msg_hdr_t *)(void *)((char *)(uintptr_t)m - sizeof(msg_hdr_t));
}

msilo_message_t *msilo_message_new(void)
{
    msg_hdr_t *h = g_malloc0(sizeof *h + sizeof(msilo_message_t));
    return (msilo_message_t *)(void *)(h + 1);
}

msilo_message_t *msilo_message_new_packed(size_t size, char **ret_buf)
{
    msg_hdr_t *h = g_malloc(sizeof *h + sizeof(msilo_message_t) + size);
    h->packed_size = size;
    msilo_message_t *m = (msilo_message_t *)(void *)(h + 1);
    memset(m, 0, sizeof *m);
    *ret_buf = (char *)(m + 1);
    return m;
}

msilo_message_t *msilo_message_copy(const msilo_message_t *m)
{
    if (!m)
        return NULL;
    msg_hdr_t *h = g_malloc(sizeof *h + sizeof(msilo_message_t));
    h->packed_size = 0;
    msilo_message_t *c = (msilo_message_t *)(void *)(h + 1);
    *c = *m;
    c->user = g_strdup(m->user);
    c->domain = g_strdup(m->domain);
    c->src = g_strdup(m->src);
    c->dst = g_strdup(m->dst);
    c->ctype = g_strdup(m->ctype);
    c->body = m->body_len ? g_memdup2(m->body, m->body_len) : NULL;
    c->extra_hdrs = g_strdup(m->extra_hdrs);
    c->callid = g_strdup(m->callid);
    c->store_key = g_strdup(m->store_key);
    c->device = g_strdup(m->device);
    return c;
}

/* Frees @p unless it points into the @packed bytes after @m: one unsigned
 * compare, since an address below them wraps around to a large offset. */
static inline void free_field(const msilo_message_t *m, size_t packed, void *p)
{
    if ((uintptr_t)p - (uintptr_t)(m + 1) >= packed)
        g_free(p);
}

void msilo_message_free(msilo_message_t *m)
{
    if (!m)
        return;
    msg_hdr_t *h = hdr_of(m);
    size_t packed = h->packed_size;
    if (packed) {
        free_field(m, packed, m->user);
        free_field(m, packed, m->domain);
        free_field(m, packed, m->src);
        free_field(m, packed, m->dst);
        free_field(m, packed, m->ctype);
        free_field(m, packed, m->body);
        free_field(m, packed, m->extra_hdrs);
        free_field(m, packed, m->callid);
        free_field(m, packed, m->store_key);
        free_field(m, packed, m->device);
        g_free(h);
        return;
    }
    g_free(m->user);
    g_free(m->domain);
    g_free(m->src);
    g_free(m->dst);
    g_free(m->ctype);
    g_free(m->body);
    g_free(m->extra_hdrs);
    g_free(m->callid);
    g_free(m->store_key);
    g_free(m->device);
    g_free(h);
}

void msilo_message_array_free(msilo_message_t **msgs, size_t n)
{
    if (!msgs)
        return;
    for (size_t i = 0; i < n; i++)
        msilo_message_free(msgs[i]);
    g_free(msgs);
}
