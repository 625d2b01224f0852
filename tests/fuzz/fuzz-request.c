/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: whole SIP requests through msilo-server's request path as
 * far as it goes without a network. Sofia-SIP parses the bytes as it parses a
 * request off the wire; server_check_request() (examples/msilo-server/
 * request.c) refuses it or lets it on; a MESSAGE it lets on is turned into a
 * request view (libmsilo-sofia's msilo_sofia_request_new()) and stored with the owner the server would pick, on the memory
 * store. Whatever the bytes: no crash, leak or bad read; a refusal is 400 or
 * 413 with a printable Warning; a store either succeeds or fails with an
 * msilo error code that maps to a SIP status; and a stored message belongs to
 * the user and host of the URL that the server checked (a display name never
 * moves it). Found by the crash it guards: two Max-Forwards in one OPTIONS. */
#include "../../examples/msilo-server/request.h"

#include <string.h>

#include <sofia-sip/sip_header.h>
#include <sofia-sip/url.h>

#include <msilo/memory.h>
#include <msilo/sofia.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    msilo_store_t *store;
    msilo_engine_t *engine;
    msilo_config_t *cfg;
    unsigned uses;
} silo;

static void silo_close(silo *s)
{
    msilo_engine_free(s->engine);
    msilo_store_free(s->store);
    msilo_config_free(s->cfg);
    memset(s, 0, sizeof(*s));
}

/* A fresh engine every 512 inputs keeps the memory store small. */
static silo *silo_get(void)
{
    static silo s;
    if (s.engine && ++s.uses < 512)
        return &s;
    if (s.engine)
        silo_close(&s);
    g_assert(msilo_config_new(&s.cfg) == 0);
    g_assert(msilo_config_set(s.cfg, "add_date", "0") == 0);
    g_assert(msilo_memory_store_new(&s.store) == 0);
    g_assert(msilo_engine_new(&s.engine, s.cfg, s.store, NULL, NULL) == 0);
    return &s;
}

static void check_stored(silo *s, url_t const *owner_url, int64_t id)
{
    su_home_t home[1] = { SU_HOME_INIT(home) };
    char *user = NULL, *domain = NULL;
    msilo_message_t *m = NULL;

    g_assert(msilo_store_get(s->store, id, &m) == 0 && m);
    /* the owner is the checked URL's (as the engine reads that URL alone) */
    g_assert(msilo_aor_parse(url_as_string(home, owner_url), NULL, &user, &domain) == 0);
    g_assert(strcmp(m->user, user) == 0 && strcmp(m->domain, domain) == 0);
    g_free(user);
    g_free(domain);
    msilo_message_free(m);
    su_home_deinit(home);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msg_t *msg = msg_make(sip_default_mclass(), 0, data, (ssize_t)size);
    sip_t const *sip = msg ? sip_object(msg) : NULL;
    server_options_t opt;
    char warning[200];

    if (!sip || !sip->sip_request || !sip->sip_via) {
        if (msg)
            msg_destroy(msg);
        return 0; /* Sofia drops these before any handler sees them */
    }
    server_options_init(&opt);
    int status = server_check_request(&opt, msg, sip, warning, sizeof(warning));
    if (status) {
        g_assert(status == 400 || status == 413);
        g_assert(strncmp(warning, "399 msilo \"", 11) == 0);
        for (const char *p = warning; *p; p++)
            g_assert((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
    } else if (sip->sip_request->rq_method == sip_method_message) {
        su_home_t home[1] = { SU_HOME_INIT(home) };
        url_t const *owner_url = server_message_owner(sip);
        msilo_sofia_request_t *req = NULL;
        int64_t id = -1;
        silo *s = silo_get();

        g_assert(msilo_sofia_request_new(&req, sip, "X-Msilo-Send-Time") == 0);
        int rc = msilo_engine_store_sync(s->engine, msilo_sofia_request_view(req),
                                         owner_url ? url_as_string(home, owner_url) : NULL, &id);
        msilo_sofia_request_free(req);
        if (rc == 0) {
            g_assert(owner_url && id > 0);
            check_stored(s, owner_url, id);
        } else {
            int st = msilo_error_sip_status(rc);
            g_assert(rc < 0 && st >= 400 && st < 600);
        }
        su_home_deinit(home);
    }
    server_options_clear(&opt);
    msg_destroy(msg);
    return 0;
}
