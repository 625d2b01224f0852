/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The smallest embedding, built outside the tree against an installed
 * libmsilo:   cc embed.c $(pkg-config --cflags --libs msilo)
 * A test harness's view: in-memory store, a transport of its own that
 * accepts every MESSAGE, blocking calls, no event loop of its own.
 */
#include <msilo/msilo.h>

#include <glib.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    msilo_transport_t base;
    int delivered;
} my_transport;

typedef struct {
    msilo_transport_done_fn done;
    void *data;
} reply;

static gboolean send_200(gpointer p)
{
    reply *r = p;
    r->done(200, r->data);
    return G_SOURCE_REMOVE;
}

static int my_send(msilo_transport_t *t, const msilo_outgoing_t *m, msilo_transport_done_fn done,
                   void *data)
{
    printf("deliver to %s: %.*s\n", m->ruri, (int)m->body_len, (const char *)m->body);
    ((my_transport *)t)->delivered++;
    reply *r = g_new(reply, 1);
    r->done = done;
    r->data = data;
    g_idle_add_full(G_PRIORITY_DEFAULT, send_200, r, g_free); /* later, never inside send */
    return 0;
}

static void my_free(msilo_transport_t *t)
{
    while (g_main_context_iteration(NULL, FALSE))
        ;
    (void)t;
}

int main(void)
{
    my_transport tr = { .base = MSILO_TRANSPORT_INIT };
    tr.base.name = "embed";
    tr.base.send = my_send;
    tr.base.free = my_free;
    msilo_store_t *store;
    msilo_engine_t *e;
    msilo_config_t *cfg;
    msilo_config_new(&cfg);
    msilo_config_set(cfg, "add_date", "0");
    msilo_memory_store_new(&store);
    if (msilo_engine_new(&e, cfg, store, &tr.base, NULL) != 0) {
        fprintf(stderr, "%s\n", msilo_error_detail());
        return 1;
    }
    msilo_request_t m = MSILO_REQUEST_INIT;
    m.ruri = "sip:alice@example.org";
    m.to = "sip:alice@example.org";
    m.from = "sip:bob@example.org";
    m.body = "hello from an embedder";
    m.body_len = strlen(m.body);
    int rc = msilo_engine_store_sync(e, &m, NULL, NULL);
    msilo_request_t reg = MSILO_REQUEST_INIT;
    reg.to = "sip:alice@example.org";
    reg.contact = "sip:alice@127.0.0.1:5090";
    reg.expires = 60;
    msilo_dump_result_t res = { 0 };
    if (rc == 0)
        rc = msilo_engine_dump_sync(e, &reg, NULL, 0, &res);
    printf("libmsilo %s: store+dump %s, delivered %zu\n", msilo_version(), msilo_strerror(rc),
           res.delivered);
    msilo_engine_free(e);
    msilo_transport_free(&tr.base);
    msilo_store_free(store);
    msilo_config_free(cfg);
    return rc == 0 && res.delivered == 1 && tr.delivered == 1 ? 0 : 1;
}
