/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-server's REGISTER: the bindings go to the registrar (registrar.c),
 * the answer lists them, and the AoR's stored messages are dumped to the
 * registering contact (m_dump()). A Contact that is this server is refused.
 * A binding that goes away (Expires: 0, "Contact: *", or expired in the
 * registrar) cancels the engine's deliveries and retries to it
 * (msilo_engine_cancel()): no MESSAGE goes to a contact after its UA left.
 */
#include <string.h>

#include "server.h"
#include "request.h"

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/url.h>

/* ---- REGISTER --------------------------------------------------------------- */

static void dump_done(msilo_engine_t *e, int result, const msilo_dump_result_t *res, void *data)
{
    char *aor = data;
    (void)e;
    if (result < 0)
        g_warning("dump for %s failed: %s", aor, msilo_strerror(result));
    else if (res->claimed)
        REQ_LOG("dump for %s: %zu claimed, %zu delivered, %zu failed", aor, res->claimed,
                res->delivered, res->failed);
    g_free(aor);
}

/* The registrar's removed hook: the engine stops delivering to the contact. */
static void binding_removed(const char *aor, const char *uri, void *data)
{
    server_t *s = data;
    if (!s->engine)
        return;
    /* the owner as the engine keys it (user@domain), the contact as a
     * name-addr so that its URI parameters stay the URI's */
    g_autofree char *owner = g_strconcat("sip:", aor, NULL);
    g_autofree char *contact = g_strdup_printf("<%s>", uri);
    int r = msilo_engine_cancel(s->engine, owner, contact);
    if (r < 0)
        g_warning("cancelling deliveries of %s to %s: %s (%s)", aor, uri, msilo_strerror(r),
                  msilo_error_detail());
    else
        REQ_LOG("REGISTER %s: %s gone: no more deliveries to it", aor, uri);
}

int server_handle_register(server_t *s, nta_incoming_t *irq, sip_t const *sip)
{
    su_home_t home[1] = { SU_HOME_INIT(home) };
    int64_t now = server_now();
    g_autofree char *aor = NULL;
    sip_contact_t const *dump_to = NULL;
    sip_time_t dump_expires = 0;
    GPtrArray *bindings;
    GString *contacts;

    s->n_register++;
    /* set here, where the bindings are made: the registrar knows no engine */
    registrar_set_removed(s->registrar, binding_removed, s);
    if (!sip->sip_to || !(aor = server_aor_of_url(sip->sip_to->a_url))) {
        server_reply(irq, 400, SIPTAG_WARNING_STR("399 msilo \"Bad To\""), TAG_END());
        return 0;
    }

    /* A binding to this server itself would forward every MESSAGE for the
     * AoR back here: refused before anything is saved. */
    for (sip_contact_t const *m = sip->sip_contact; m; m = m->m_next) {
        if (m->m_url->url_type != url_any && server_is_local(s, m->m_url)) {
            g_message("REGISTER %s: Contact %s is this server: 403", aor,
                      url_as_string(home, m->m_url));
            server_reply(irq, 403, SIPTAG_WARNING_STR("399 msilo \"Contact is this server\""),
                              TAG_END());
            su_home_deinit(home);
            return 0;
        }
    }

    if (sip->sip_contact && sip->sip_contact->m_url->url_type == url_any) {
        /* "Contact: *" removes every binding, only with Expires: 0 */
        if (sip->sip_contact->m_next || !sip->sip_expires || sip->sip_expires->ex_delta != 0) {
            server_reply(irq, 400, SIPTAG_WARNING_STR("399 msilo \"Bad wildcard\""),
                              TAG_END());
            return 0;
        }
        registrar_remove_all(s->registrar, aor);
        REQ_LOG("REGISTER %s: all bindings removed", aor);
    } else {
        for (sip_contact_t const *m = sip->sip_contact; m; m = m->m_next) {
            sip_time_t exp = sip_contact_expires(m, sip->sip_expires, sip->sip_date,
                                                 s->opt.default_expires, sip_now());
            g_autofree char *uri = NULL;
            char *value;
            double q = 1.0;

            if (m->m_url->url_type == url_any)
                continue;
            if (exp > s->opt.max_expires)
                exp = s->opt.max_expires;
            if (m->m_q)
                q = g_ascii_strtod(m->m_q, NULL);
            uri = g_strdup(url_as_string(home, m->m_url));
            value = msilo_sofia_header_string(home, (sip_header_t const *)m);
            registrar_update(s->registrar, aor, uri, value, (int64_t)exp, q, now);
            REQ_LOG("REGISTER %s: %s expires %u", aor, uri, (unsigned)exp);
            if (exp > 0 && !dump_to)
                dump_to = m, dump_expires = exp;
        }
    }

    /* 200 with every current binding and its remaining time. */
    contacts = g_string_new(NULL);
    bindings = registrar_lookup(s->registrar, aor, now);
    for (guint i = 0; bindings && i < bindings->len; i++) {
        binding_t const *b = bindings->pdata[i];
        g_string_append_printf(contacts, "%s<%s>;expires=%" G_GINT64_FORMAT,
                               contacts->len ? ", " : "", b->uri, b->expires - now);
    }
    if (contacts->len)
        server_reply(irq, 200, SIPTAG_CONTACT_STR(contacts->str),
                          SIPTAG_DATE(sip_date_create(home, sip_now())), TAG_END());
    else
        server_reply(irq, 200, SIPTAG_DATE(sip_date_create(home, sip_now())), TAG_END());
    g_string_free(contacts, TRUE);

    /* m_dump(): the stored messages go to the registering contact. */
    if (dump_to && s->engine) {
        msilo_sofia_request_t *req = NULL;
        char *cb_aor = g_strdup(aor);
        int r = msilo_sofia_request_new(&req, sip, NULL);

        if (r == 0) {
            msilo_request_t *reg = msilo_sofia_request_view(req);
            reg->contact = msilo_sofia_header_string(home, (sip_header_t const *)dump_to);
            reg->expires = (long)dump_expires;
            /* the owner is the To URI that was authenticated, as Sofia parsed it */
            r = msilo_engine_dump(s->engine, reg, url_as_string(home, sip->sip_to->a_url), 0,
                                  dump_done, cb_aor);
        }
        msilo_sofia_request_free(req);
        if (r < 0) {
            g_warning("dump for %s not started: %s (%s)", aor, msilo_strerror(r),
                      msilo_error_detail());
            g_free(cb_aor); /* the callback will not run */
        }
    }
    su_home_deinit(home);
    return 0;
}

