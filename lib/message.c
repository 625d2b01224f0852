/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "internal.h"

#include <string.h>

msilo_message_t *msilo_message_new(void)
{
    return g_new0(msilo_message_t, 1);
}

msilo_message_t *msilo_message_copy(const msilo_message_t *m)
{
    if (!m)
        return NULL;
    msilo_message_t *c = g_new(msilo_message_t, 1);
    *c = *m;
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

void msilo_message_free(msilo_message_t *m)
{
    if (!m)
        return;
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

void msilo_request_init(msilo_request_t *req)
{
    if (req)
        *req = (msilo_request_t)MSILO_REQUEST_INIT;
}
