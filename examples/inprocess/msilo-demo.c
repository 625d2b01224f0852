/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-demo: the engine, the in-memory store and an in-process transport,
 * with no SIP stack at all. It plays the seed's sample configuration:
 * Bob sends three MESSAGEs to Alice while she is offline (stored, "202"),
 * then Alice registers and the engine delivers them to her contact.
 * Every step is printed. This is also the smallest complete embedding.
 */
#include <msilo/msilo.h>

#include <glib.h>
#include <stdio.h>
#include <string.h>

/* A transport that "delivers" by printing and answers 200 from the loop. */
typedef struct {
    msilo_transport_t base;
    GMainContext *ctx;
} print_transport;

typedef struct {
    msilo_transport_done_fn done;
    void *data;
} pending_answer;

static gboolean answer_200(gpointer p)
{
    pending_answer *a = p;
    a->done(200, a->data);
    return G_SOURCE_REMOVE;
}

static int print_send(msilo_transport_t *t, const msilo_outgoing_t *m,
                      msilo_transport_done_fn done, void *data)
{
    print_transport *pt = (print_transport *)t;
    printf("  -> MESSAGE %s\n     From: %s\n     To: %s\n     Content-Type: %s\n", m->ruri,
           m->from, m->to, m->content_type ? m->content_type : "-");
    if (m->headers)
        printf("     %.*s\n", (int)strcspn(m->headers, "\r"), m->headers);
    printf("     body: %.*s\n", (int)m->body_len, (const char *)m->body);
    pending_answer *a = g_new(pending_answer, 1);
    a->done = done;
    a->data = data;
    /* never call done() from inside send(): answer from the loop */
    GSource *s = g_idle_source_new();
    g_source_set_callback(s, answer_200, a, g_free);
    g_source_attach(s, pt->ctx);
    g_source_unref(s);
    return 0;
}

static void print_free(msilo_transport_t *t)
{
    /* answers are idle sources that complete on their own: drain them */
    print_transport *pt = (print_transport *)t;
    while (g_main_context_iteration(pt->ctx, FALSE))
        ;
    g_free(pt);
}

static void log_cb(msilo_log_level_t level, const char *msg, void *data)
{
    (void)data;
    fprintf(stderr, "  [engine %d] %s\n", level, msg);
}

int main(void)
{
    msilo_config_t *cfg;
    msilo_store_t *store;
    msilo_engine_t *e;
    msilo_config_new(&cfg);
    /* the seed's sample notification settings */
    msilo_config_set(cfg, "from_address", "sip:registrar@example.org");
    msilo_config_set(cfg, "contact_hdr", "Contact: <sip:registrar@127.0.0.1:5060;msilo=yes>\r\n");
    msilo_config_set(cfg, "content_type_hdr", "Content-Type: text/plain\r\n");
    msilo_config_set(cfg, "offline_message", "*** User $rU is offline!");
    if (msilo_memory_store_new(&store))
        return 1;
    print_transport *tr = g_new0(print_transport, 1);
    tr->base = (msilo_transport_t)MSILO_TRANSPORT_INIT;
    tr->base.name = "print";
    tr->base.send = print_send;
    tr->base.free = print_free;
    tr->ctx = g_main_context_default();
    int rc = msilo_engine_new(&e, cfg, store, &tr->base, NULL);
    if (rc) {
        fprintf(stderr, "engine: %s: %s\n", msilo_strerror(rc), msilo_error_detail());
        return 1;
    }
    msilo_engine_set_log(e, log_cb, NULL);
    printf("libmsilo %s demo: memory store, in-process transport\n\n", msilo_version());

    static const char *const texts[] = { "Hi Alice, are you there?", "Call me when you can.",
                                         "Bye for now." };
    for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
        msilo_request_t m = MSILO_REQUEST_INIT;
        m.method = "MESSAGE";
        m.ruri = "sip:alice@example.org";
        m.to = "<sip:alice@example.org>";
        m.from = "\"Bob\" <sip:bob@example.org>;tag=42";
        m.contact = "<sip:bob@127.0.0.1:5062>";
        m.content_type = "text/plain";
        m.body = texts[i];
        m.body_len = strlen(texts[i]);
        printf("Bob -> alice@example.org (offline): \"%s\"\n", texts[i]);
        int64_t id = 0;
        rc = msilo_engine_store_sync(e, &m, NULL, &id);
        printf("  m_store: %s -> SIP %d (message id %lld)\n", msilo_strerror(rc),
               msilo_error_sip_status(rc), (long long)id);
    }
    int64_t n = 0;
    msilo_store_count(store, "alice", "example.org", &n);
    printf("\nalice@example.org has %lld stored messages\n", (long long)n);

    printf("\nAlice registers (Contact sip:alice@127.0.0.1:5090, Expires 3600): m_dump\n");
    msilo_request_t reg = MSILO_REQUEST_INIT;
    reg.method = "REGISTER";
    reg.to = "<sip:alice@example.org>";
    reg.contact = "<sip:alice@127.0.0.1:5090>";
    reg.expires = 3600;
    msilo_dump_result_t res = { 0 };
    rc = msilo_engine_dump_sync(e, &reg, NULL, 0, &res);
    printf("  m_dump: %s: %zu claimed, %zu delivered, %zu failed\n", msilo_strerror(rc),
           res.claimed, res.delivered, res.failed);
    msilo_store_count(store, "alice", "example.org", &n);
    printf("alice@example.org has %lld stored messages\n\nstatistics:\n", (long long)n);
    while (g_main_context_iteration(NULL, FALSE))
        ; /* let the notifications' answers arrive */
    for (int s = 0; s < MSILO_STAT_COUNT_; s++)
        printf("  %-22s %llu\n", msilo_stat_name((msilo_stat_t)s),
               (unsigned long long)msilo_engine_stat(e, (msilo_stat_t)s));
    msilo_engine_free(e);
    msilo_transport_free(&tr->base);
    msilo_store_free(store);
    msilo_config_free(cfg);
    return res.delivered == G_N_ELEMENTS(texts) ? 0 : 1;
}
