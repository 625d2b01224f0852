/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-demo: the engine, the in-memory store and an in-process transport,
 * with no SIP stack at all. It plays the sample configuration of the
 * OpenSIPS msilo admin guide: Bob sends three MESSAGEs to Alice while she is
 * offline (stored, "202"), then Alice registers and the engine delivers them
 * to her contact. Every step is printed; the exit status is 0 when all three
 * were delivered.
 *
 * This is also the smallest complete embedding, and it builds outside the
 * tree against an installed libmsilo (tests/install does exactly that):
 *   cc msilo-demo.c fake-transport.c $(pkg-config --cflags --libs msilo)
 * The blocking calls (msilo_engine_*_sync) need no event loop of the
 * embedder's; a server with a GLib loop would use the callback forms.
 */
#include <msilo/msilo.h>

#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "fake-transport.h"

/* What the engine sent since the last call: the transport records every
 * MESSAGE (fake-transport.h) and answers it with 200 from the loop. */
static void print_sent(const fake_transport_t *t, guint *shown)
{
    for (; *shown < t->sent->len; (*shown)++) {
        const fake_sent_t *m = t->sent->pdata[*shown];
        gsize body_len = 0;
        const char *body = g_bytes_get_data(m->body, &body_len);
        printf("  -> MESSAGE %s\n     From: %s\n     To: %s\n     Content-Type: %s\n", m->ruri,
               m->from, m->to, m->content_type ? m->content_type : "-");
        if (m->headers)
            printf("     %.*s\n", (int)strcspn(m->headers, "\r"), m->headers);
        printf("     body: %.*s\n", (int)body_len, body ? body : "");
    }
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
    /* the admin guide's sample notification settings */
    msilo_config_set(cfg, "from_address", "sip:registrar@example.org");
    msilo_config_set(cfg, "contact_hdr", "Contact: <sip:registrar@127.0.0.1:5060;msilo=yes>\r\n");
    msilo_config_set(cfg, "content_type_hdr", "Content-Type: text/plain\r\n");
    msilo_config_set(cfg, "offline_message", "*** User $rU is offline!");
    if (msilo_memory_store_new(&store))
        return 1;
    /* No SIP stack: a transport that records what the engine sends and
     * answers each MESSAGE with 200 from the loop, as a UA would. */
    fake_transport_t *tr = fake_transport_new(NULL);
    tr->auto_status = 200;
    guint shown = 0;
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
        print_sent(tr, &shown); /* the notification "alice is offline" to Bob */
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
    print_sent(tr, &shown); /* the deliveries to Alice's contact */
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
