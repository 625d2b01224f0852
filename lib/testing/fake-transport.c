/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The recording transport of <msilo/testing/fake-transport.h>: sends are
 * copied into t->sent and answered through
 * msilo_testing_fake_transport_answer() or, with auto_status, from an idle
 * source on t->ctx. */
#include <msilo/testing/fake-transport.h>

#include <string.h>

typedef msilo_testing_fake_transport_t fake_t;
typedef msilo_testing_sent_t sent_t;

static void sent_free(gpointer p)
{
    sent_t *s = p;
    g_free(s->ruri);
    g_free(s->next_hop);
    g_free(s->from);
    g_free(s->to);
    g_free(s->content_type);
    g_free(s->headers);
    g_free(s->call_id);
    g_bytes_unref(s->body);
    g_free(s);
}

typedef struct {
    fake_t *t;
    guint index;
} auto_answer;

static gboolean auto_answer_cb(gpointer data)
{
    auto_answer *a = data;
    sent_t *s = a->t->sent->pdata[a->index];
    if (!s->answered)
        msilo_testing_fake_transport_answer(a->t, a->index, a->t->auto_status);
    return G_SOURCE_REMOVE;
}

static int fake_send(msilo_transport_t *base, const msilo_outgoing_t *m,
                     msilo_transport_done_fn done, void *data)
{
    fake_t *t = (fake_t *)base;
    if (t->refuse)
        return t->refuse;
    sent_t *s = g_new0(sent_t, 1);
    s->ruri = g_strdup(m->ruri);
    s->next_hop = g_strdup(m->next_hop);
    s->from = g_strdup(m->from);
    s->to = g_strdup(m->to);
    s->content_type = g_strdup(m->content_type);
    s->headers = g_strdup(m->headers);
    s->call_id = g_strdup(m->call_id);
    s->body = g_bytes_new(m->body, m->body_len);
    s->done = done;
    s->data = data;
    g_ptr_array_add(t->sent, s);
    if (t->auto_status) {
        auto_answer *a = g_new(auto_answer, 1);
        a->t = t;
        a->index = t->sent->len - 1;
        GSource *src = g_idle_source_new();
        g_source_set_callback(src, auto_answer_cb, a, g_free);
        g_source_attach(src, t->ctx);
        g_source_unref(src);
    }
    return 0;
}

static void fake_free(msilo_transport_t *base)
{
    fake_t *t = (fake_t *)base;
    /* contract: every send still in flight is cancelled exactly once */
    for (guint i = 0; i < t->sent->len; i++) {
        sent_t *s = t->sent->pdata[i];
        if (!s->answered) {
            s->answered = TRUE;
            s->done(MSILO_ECANCELLED, s->data);
        }
    }
    /* auto-answer sources may still be attached: drain them first */
    while (g_main_context_iteration(t->ctx, FALSE))
        ;
    g_ptr_array_unref(t->sent);
    g_main_context_unref(t->ctx);
    g_free(t);
}

int msilo_testing_fake_transport_new(fake_t **ret, GMainContext *ctx)
{
    if (!ret)
        return MSILO_EINVAL;
    fake_t *t = g_new0(fake_t, 1);
    t->base = (msilo_transport_t)MSILO_TRANSPORT_INIT;
    t->base.name = "fake";
    t->base.send = fake_send;
    t->base.free = fake_free;
    t->ctx = g_main_context_ref(ctx ? ctx : g_main_context_default());
    t->sent = g_ptr_array_new_with_free_func(sent_free);
    *ret = t;
    return 0;
}

int msilo_testing_fake_transport_answer(fake_t *t, guint i, int status)
{
    if (!t || i >= t->sent->len)
        return MSILO_EINVAL;
    sent_t *s = t->sent->pdata[i];
    if (s->answered)
        return MSILO_EINVAL;
    s->answered = TRUE;
    t->answered++;
    /* as a transport whose answers come from its context: done() on a thread
     * that owns it completes the send at once; on any other it would only
     * post it (include/msilo/sys/transport.h) */
    gboolean own = g_main_context_acquire(t->ctx);
    s->done(status, s->data);
    if (own)
        g_main_context_release(t->ctx);
    return 0;
}

guint msilo_testing_fake_transport_answer_all(fake_t *t, int status)
{
    guint n = 0;
    if (!t)
        return 0;
    /* answering may trigger new sends; only answer those present now */
    guint len = t->sent->len;
    for (guint i = 0; i < len; i++)
        if (msilo_testing_fake_transport_answer(t, i, status) == 0)
            n++;
    return n;
}

char *msilo_testing_sent_header(const sent_t *s, const char *name)
{
    if (!s || !name || !s->headers)
        return NULL;
    gchar **lines = g_strsplit(s->headers, "\r\n", -1);
    char *v = NULL;
    size_t n = strlen(name);
    for (gchar **l = lines; *l && !v; l++)
        if (g_ascii_strncasecmp(*l, name, n) == 0 && (*l)[n] == ':')
            v = g_strstrip(g_strdup(*l + n + 1));
    g_strfreev(lines);
    return v;
}
