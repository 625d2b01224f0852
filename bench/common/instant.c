/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "instant.h"

#include <glib.h>

struct instant_transport {
    msilo_transport_t base;
    GArray *answers; /* answer, by value: no allocation per send */
    GSource *src;
    uint64_t sent;
};

typedef struct {
    msilo_transport_done_fn done;
    void *data;
} answer;

static gboolean answer_all(gpointer p)
{
    instant_transport_t *t = p;
    g_source_set_ready_time(t->src, -1);
    /* done() may send again, appending (and moving the array): index it afresh */
    for (guint i = 0; i < t->answers->len; i++) {
        answer a = g_array_index(t->answers, answer, i);
        a.done(200, a.data);
    }
    g_array_set_size(t->answers, 0);
    return G_SOURCE_CONTINUE;
}

static gboolean src_dispatch(GSource *s, GSourceFunc cb, gpointer data)
{
    (void)s;
    return cb(data);
}

static GSourceFuncs src_funcs = { .dispatch = src_dispatch };

static int instant_send(msilo_transport_t *base, const msilo_outgoing_t *m,
                        msilo_transport_done_fn done, void *data)
{
    (void)m;
    instant_transport_t *t = (instant_transport_t *)base;
    answer a = { done, data };
    g_array_append_val(t->answers, a);
    g_source_set_ready_time(t->src, 0);
    t->sent++;
    return 0;
}

static void instant_free(msilo_transport_t *base)
{
    instant_transport_t *t = (instant_transport_t *)base;
    answer_all(t);
    g_source_destroy(t->src);
    g_source_unref(t->src);
    g_array_unref(t->answers);
    g_free(t);
}

msilo_transport_t *instant_transport_new(void)
{
    instant_transport_t *t = g_new0(instant_transport_t, 1);
    t->base = (msilo_transport_t)MSILO_TRANSPORT_INIT;
    t->base.name = "instant";
    t->base.send = instant_send;
    t->base.free = instant_free;
    t->answers = g_array_new(FALSE, FALSE, sizeof(answer));
    t->src = g_source_new(&src_funcs, sizeof(GSource));
    g_source_set_callback(t->src, answer_all, t, NULL);
    g_source_attach(t->src, NULL);
    return &t->base;
}

uint64_t instant_transport_sent(const msilo_transport_t *t)
{
    return ((const instant_transport_t *)t)->sent;
}

void bench_drain(msilo_engine_t *e)
{
    /* a blocking store answers from its worker thread: block for it */
    while (msilo_engine_pending(e) || msilo_engine_stat(e, MSILO_STAT_IN_FLIGHT) ||
           g_main_context_pending(NULL))
        g_main_context_iteration(NULL, !g_main_context_pending(NULL));
}
