/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-demo: the engine, the in-memory store and an in-process transport,
 * with no SIP stack at all. It plays the sample configuration of the
 * OpenSIPS msilo admin guide: Bob sends three MESSAGEs to Alice while she is
 * offline (stored, "202"), then Alice registers and the engine delivers them
 * to her contact. Every step is printed; the exit status is 0 when all three
 * were delivered.
 *
 * This is also the smallest complete embedding, one file that builds outside
 * the tree against an installed libmsilo (tests/install does exactly that):
 *   cc msilo-demo.c $(pkg-config --cflags --libs msilo)
 * The blocking calls (msilo_engine_*_sync) need no event loop of the
 * embedder's; a server with a GLib loop would use the callback forms.
 *
 * Its transport is the smallest one that keeps the contract of
 * <msilo/sys/transport.h>. Tests that need to see and answer what an engine
 * sends use the recording transport of the test kit instead
 * (<msilo/testing/fake-transport.h>, pkg-config msilo-testing).
 */
#include <msilo/msilo.h>

#include <glib.h>
#include <stdio.h>
#include <string.h>

/* ---- the transport: every MESSAGE's UA is this process ----------------- */

/* send() prints the request and a 200 answers it from the loop, as a UA
 * would: from an idle source on the default context, never from inside
 * send(). free() cancels what is not answered yet, so every send gets its
 * done() exactly once. */
typedef struct demo_transport {
    msilo_transport_t base; /* first: &t->base is what the engine is given */
    GList *unanswered;      /* demo_answer_t *, each with its idle source */
} demo_transport_t;

typedef struct demo_answer {
    demo_transport_t *t;
    guint source;
    msilo_transport_done_fn done;
    void *data;
} demo_answer_t;

static gboolean demo_answer_200(gpointer p)
{
    demo_answer_t *a = p;
    a->t->unanswered = g_list_remove(a->t->unanswered, a);
    a->done(200, a->data);
    g_free(a);
    return G_SOURCE_REMOVE;
}

static int demo_send(msilo_transport_t *base, const msilo_outgoing_t *m,
                     msilo_transport_done_fn done, void *data)
{
    demo_transport_t *t = (demo_transport_t *)base;
    printf("  -> MESSAGE %s\n     From: %s\n     To: %s\n     Content-Type: %s\n", m->ruri,
           m->from, m->to, m->content_type ? m->content_type : "-");
    if (m->headers)
        printf("     %.*s\n", (int)strcspn(m->headers, "\r"), m->headers);
    printf("     body: %.*s\n", (int)m->body_len, m->body ? (const char *)m->body : "");
    demo_answer_t *a = g_new0(demo_answer_t, 1);
    *a = (demo_answer_t){ .t = t, .done = done, .data = data };
    a->source = g_idle_add(demo_answer_200, a);
    t->unanswered = g_list_prepend(t->unanswered, a);
    return 0;
}

static void demo_free(msilo_transport_t *base)
{
    demo_transport_t *t = (demo_transport_t *)base;
    while (t->unanswered) {
        demo_answer_t *a = t->unanswered->data;
        t->unanswered = g_list_delete_link(t->unanswered, t->unanswered);
        g_source_remove(a->source);
        a->done(MSILO_ECANCELLED, a->data);
        g_free(a);
    }
    g_free(t);
}

static msilo_transport_t *demo_transport_new(void)
{
    demo_transport_t *t = g_new0(demo_transport_t, 1);
    t->base = (msilo_transport_t)MSILO_TRANSPORT_INIT;
    t->base.name = "demo";
    t->base.send = demo_send;
    t->base.free = demo_free;
    return &t->base;
}

/* ---- the demo ------------------------------------------------------------ */

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
    /* the admin guide's sample notification settings */
    msilo_config_set(cfg, "from_address", "sip:registrar@example.org");
    msilo_config_set(cfg, "contact_hdr", "Contact: <sip:registrar@127.0.0.1:5060;msilo=yes>\r\n");
    msilo_config_set(cfg, "content_type_hdr", "Content-Type: text/plain\r\n");
    msilo_config_set(cfg, "offline_message", "*** User $rU is offline!");
    if (msilo_memory_store_new(&store))
        return 1;
    /* No SIP stack: a transport that prints what the engine sends and
     * answers each MESSAGE with 200 from the loop, as a UA would. */
    msilo_transport_t *tr = demo_transport_new();
    int rc = msilo_engine_new(&e, cfg, store, tr, NULL);
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
    rc = msilo_engine_dump_sync(e, &reg, NULL, 0, &res, sizeof res);
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
    msilo_transport_free(tr);
    msilo_store_free(store);
    msilo_config_free(cfg);
    return res.delivered == G_N_ELEMENTS(texts) ? 0 : 1;
}
