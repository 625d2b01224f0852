/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "internal.h"

#include <string.h>

msilo_message_t *msilo_message_new(void)
{
    return g_new0(msilo_message_t, 1);
}

msilo_message_t *msilo_message_new_packed(size_t size, char **ret_buf)
{
    msilo_message_t *m = g_malloc(sizeof *m + size);
    memset(m, 0, sizeof *m);
    m->packed_size = size;
    *ret_buf = (char *)(m + 1);
    return m;
}

msilo_message_t *msilo_message_copy(const msilo_message_t *m)
{
    if (!m)
        return NULL;
    msilo_message_t *c = g_new(msilo_message_t, 1);
    *c = *m;
    c->packed_size = 0;
    c->user = g_strdup(m->user);
    c->domain = g_strdup(m->domain);
    c->src = g_strdup(m->src);
    c->dst = g_strdup(m->dst);
    c->ctype = g_strdup(m->ctype);
    c->body = m->body_len ? g_memdup2(m->body, m->body_len) : NULL;
    c->extra_hdrs = g_strdup(m->extra_hdrs);
    c->callid = g_strdup(m->callid);
    return c;
}

/* Frees @p unless it points into the packed strings of @m. */
static inline void free_field(const msilo_message_t *m, void *p)
{
    uintptr_t lo = (uintptr_t)(m + 1), at = (uintptr_t)p;
    if (at >= lo && at - lo < m->packed_size)
        return;
    g_free(p);
}

void msilo_message_free(msilo_message_t *m)
{
    if (!m)
        return;
    if (m->packed_size) {
        free_field(m, m->user);
        free_field(m, m->domain);
        free_field(m, m->src);
        free_field(m, m->dst);
        free_field(m, m->ctype);
        free_field(m, m->body);
        free_field(m, m->extra_hdrs);
        free_field(m, m->callid);
        g_free(m);
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
    g_free(m);
}

void msilo_message_array_free(msilo_message_t **msgs, size_t n)
{
    if (!msgs)
        return;
    for (size_t i = 0; i < n; i++)
        msilo_message_free(msgs[i]);
    g_free(msgs);
}
