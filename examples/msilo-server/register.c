/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-server's REGISTER: the bindings go to the registrar (registrar.c),
 * the answer lists them, and the AoR's stored messages are dumped to the
 * registering contact (m_dump()). A Contact that is this server is refused.
 * A binding that goes away (Expires: 0, "Contact: *", or expired in the
 * registrar) cancels the engine's deliveries and retries to it
 * (msilo_engine_cancel()): no MESSAGE goes to a contact after its UA left.
 * Each binding keeps the flow its REGISTER came on (flow.c): the 200 says
 * `Supported: path, outbound, gruu`, echoes the Path and has `Require: outbound`
 * when a Contact's reg-id was taken.
 *
 * Devices (issue 15): a Contact's +sip.instance is its device; a device
 * registering from a new contact replaces its binding (registrar.c). To a
 * client that supports gruu the 200 gives each device's public GRUU
 * (RFC 5627 5.3: sip:AoR;gr=instance). The dump carries the device (the
 * instance, or the gr of a GRUU Contact or Request-URI): with
 * deliver_to = every_device it delivers what that device has not had.
 *
 * Bounds (issue 17): at most max_bindings contacts per AoR (a REGISTER that
 * would add more gets 503, as Kamailio's max_contacts; at ~1 300 bindings the
 * 200 had exceeded 64 KB and every REGISTER of the AoR got 500), so the 200
 * stays small. A contact whose last dump was not answered at all (nothing
 * delivered, and it took the delivery timeout: a third party's address
 * registered by someone else, or a dead UA) gets no new dump for dump_backoff seconds,
 * doubling while it stays silent: one REGISTER of 317 bytes had sent 4.38 MB
 * of stored messages and their retransmissions to such an address.
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

typedef struct dump_ctx {
    server_t *srv;
    char *aor;
    char *contact; /* URI, the key of srv->silent */
    int64_t started; /* µs, monotonic */
} dump_ctx;

typedef struct silent_contact {
    int64_t until;   /* s: no dump before */
    unsigned backoff; /* s: the next wait */
} silent_contact;

static void dump_done(msilo_engine_t *e, int result, const msilo_dump_result_t *res, void *data)
{
    dump_ctx *d = data;
    server_t *s = d->srv;
    (void)e;
    if (result < 0)
        g_warning("dump for %s failed: %s", d->aor, msilo_strerror(result));
    else if (res->claimed)
        REQ_LOG("dump for %s: %zu claimed, %zu delivered, %zu failed", d->aor, res->claimed,
                res->delivered, res->failed);
    if (result == 0 && s->silent && s->opt.dump_backoff) {
        /* silent: nothing delivered and the dump took the delivery timeout,
         * i.e. no answer at all (a contact that answers 500 or is refused by
         * ICMP fails at once and is tried again at its next REGISTER) */
        int64_t took_ms = (g_get_monotonic_time() - d->started) / 1000;
        if (res->delivered == 0 && res->failed > 0 &&
            took_ms >= (int64_t)(s->opt.delivery_timeout ? s->opt.delivery_timeout : 32000) * 9 / 10) {
            silent_contact *c = g_hash_table_lookup(s->silent, d->contact);
            if (!c) {
                c = g_new0(silent_contact, 1);
                c->backoff = s->opt.dump_backoff;
                g_hash_table_insert(s->silent, g_strdup(d->contact), c);
            } else if (c->until <= server_now() && c->backoff < 86400) {
                c->backoff *= 2; /* silent again after its wait (not: dumps that ran together) */
            }
            c->until = server_now() + c->backoff;
            s->n_dumps_held++;
            g_message("dump for %s: %s answered none of %zu deliveries: no dump to it for %u s",
                      d->aor, d->contact, res->failed, c->backoff);
        } else if (res->delivered > 0) {
            g_hash_table_remove(s->silent, d->contact);
        }
    }
    g_free(d->aor);
    g_free(d->contact);
    g_free(d);
}

/* Whether @uri may get a dump now (see the top comment). */
static bool contact_may_dump(server_t *s, const char *uri)
{
    silent_contact *c = s->silent ? g_hash_table_lookup(s->silent, uri) : NULL;
    return !c || c->until <= server_now();
}

/* The +sip.instance of Contact @m without its quotes and angle brackets
 * (`"<urn:uuid:…>"` -> `urn:uuid:…`, the form a GRUU's gr parameter has,
 * RFC 5627 3.1), or NULL. */
static char *contact_instance(su_home_t *home, sip_contact_t const *m)
{
    const char *p = msg_params_find(m->m_params, "+sip.instance");
    size_t n;
    if (!p)
        return NULL;
    n = strlen(p);
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"')
        p++, n -= 2;
    if (n >= 2 && p[0] == '<' && p[n - 1] == '>')
        p++, n -= 2;
    return n ? su_strndup(home, p, n) : NULL;
}

/* The value of the gr parameter of @url (a GRUU, RFC 5627), or NULL. */
static const char *url_gr(su_home_t *home, url_t const *url)
{
    char v[256];
    isize_t n;
    if (!url || !url->url_params)
        return NULL;
    n = url_param(url->url_params, "gr", v, sizeof v);
    return n > 0 && n < (isize_t)sizeof v && v[0] ? su_strdup(home, v) : NULL;
}

/* The device a REGISTER's Contact @m stands for: its instance, else the gr
 * parameter of a GRUU used as its Contact or as the Request-URI (such a
 * REGISTER serves that device only), else its contact URI. */
static const char *register_device(su_home_t *home, sip_t const *sip, sip_contact_t const *m)
{
    char *inst = contact_instance(home, m);
    const char *gr;
    if (inst)
        return inst;
    if ((gr = url_gr(home, m->m_url)))
        return gr;
    if (sip->sip_request && (gr = url_gr(home, sip->sip_request->rq_url)))
        return gr;
    return url_as_string(home, m->m_url); /* as forward.c names such a device */
}

/* Whether the bindings of @aor plus the new contacts of @sip stay within
 * max_bindings. */
static bool bindings_fit(server_t *s, const char *aor, sip_t const *sip, int64_t now,
                         su_home_t *home, unsigned *ret_n)
{
    GPtrArray *have = registrar_lookup(s->registrar, aor, now);
    unsigned n = have ? have->len : 0;
    for (sip_contact_t const *m = sip->sip_contact; m; m = m->m_next) {
        sip_time_t exp = sip_contact_expires(m, sip->sip_expires, sip->sip_date,
                                             s->opt.default_expires, sip_now());
        const char *uri;
        bool known = false;
        if (m->m_url->url_type == url_any || exp == 0)
            continue;
        uri = url_as_string(home, m->m_url);
        for (guint i = 0; uri && have && i < have->len; i++)
            if (binding_matches(have->pdata[i], uri, contact_instance(home, m),
                                msg_params_find(m->m_params, "reg-id")))
                known = true;
        /* a contact listed twice in one REGISTER is counted twice: no harm */
        if (!known)
            n++;
    }
    *ret_n = n;
    return n <= s->opt.max_bindings;
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
    bool outbound = false; /* a Contact's reg-id was taken (RFC 5626) */
    bool gruu = sip_has_supported(sip->sip_supported, "gruu");

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
        unsigned n;
        if (!bindings_fit(s, aor, sip, now, home, &n)) {
            s->n_too_many_bindings++;
            g_message("REGISTER %s: %u bindings would exceed max_bindings %u: 503", aor, n,
                      s->opt.max_bindings);
            server_reply(irq, 503,
                         SIPTAG_WARNING_STR("399 msilo \"Too many registered contacts\""),
                         TAG_END());
            su_home_deinit(home);
            return 0;
        }
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
            flow_t *flow = exp > 0 ? server_flow_new(s, irq, sip, m) : NULL;
            if (server_flow_outbound(flow))
                outbound = true;
            registrar_update(s->registrar, aor, uri, value, contact_instance(home, m),
                             msg_params_find(m->m_params, "reg-id"), (int64_t)exp, q, now,
                             flow);
            REQ_LOG("REGISTER %s: %s expires %u", aor, uri, (unsigned)exp);
            if (exp > 0 && !dump_to)
                dump_to = m, dump_expires = exp;
        }
    }

    /* 200 with every current binding and its remaining time. */
    contacts = g_string_new(NULL);
    bindings = registrar_lookup(s->registrar, aor, now);
    if (bindings && bindings->len)
        server_known_seen(s, aor, now); /* store_for = registered */
    for (guint i = 0; bindings && i < bindings->len; i++) {
        binding_t const *b = bindings->pdata[i];
        g_string_append_printf(contacts, "%s<%s>;expires=%" G_GINT64_FORMAT,
                               contacts->len ? ", " : "", b->uri, b->expires - now);
        /* RFC 5627 5.3: the device's public GRUU, the AoR with its
         * instance as gr (no temporary GRUUs: see the admin guide) */
        if (gruu && b->instance)
            g_string_append_printf(contacts, ";+sip.instance=\"<%s>\";pub-gruu=\"sip:%s;gr=%s\"",
                                   b->instance, aor, b->instance);
    }
    /* Path is stored and echoed (RFC 3327 5.3); Require: outbound when a
     * reg-id was taken (RFC 5626 6) */
    server_reply(irq, 200, TAG_IF(contacts->len, SIPTAG_CONTACT_STR(contacts->str)),
                 SIPTAG_DATE(sip_date_create(home, sip_now())), SIPTAG_SUPPORTED_STR("path, outbound, gruu"),
                 TAG_IF(sip->sip_path, SIPTAG_PATH(sip->sip_path)),
                 TAG_IF(outbound, SIPTAG_REQUIRE_STR("outbound")), TAG_END());
    g_string_free(contacts, TRUE);

    /* m_dump(): the stored messages go to the registering contact. */
    if (dump_to && s->engine && !contact_may_dump(s, url_as_string(home, dump_to->m_url))) {
        REQ_LOG("REGISTER %s: no dump to %s: it answered none of the last one (dump_backoff)",
                aor, url_as_string(home, dump_to->m_url));
        dump_to = NULL;
    }
    if (dump_to && s->engine) {
        msilo_sofia_request_t *req = NULL;
        dump_ctx *cb_aor = g_new0(dump_ctx, 1);
        int r = msilo_sofia_request_new(&req, sip, NULL);

        cb_aor->srv = s;
        cb_aor->started = g_get_monotonic_time();
        cb_aor->aor = g_strdup(aor);
        cb_aor->contact = g_strdup(url_as_string(home, dump_to->m_url));

        if (r == 0) {
            msilo_request_t *reg = msilo_sofia_request_view(req);
            reg->contact = msilo_sofia_header_string(home, (sip_header_t const *)dump_to);
            reg->expires = (long)dump_expires;
            /* the device: its +sip.instance, or the GRUU it registered
             * with (deliver_to = every_device; the engine ignores it else) */
            reg->device = register_device(home, sip, dump_to);
            /* the owner is the To URI that was authenticated, as Sofia parsed it */
            r = msilo_engine_dump(s->engine, reg, url_as_string(home, sip->sip_to->a_url), 0,
                                  dump_done, cb_aor);
        }
        msilo_sofia_request_free(req);
        if (r < 0) {
            g_warning("dump for %s not started: %s (%s)", aor, msilo_strerror(r),
                      msilo_error_detail());
            /* the callback will not run */
            g_free(cb_aor->aor);
            g_free(cb_aor->contact);
            g_free(cb_aor);
        }
    }
    su_home_deinit(home);
    return 0;
}


void server_silent_expire(server_t *s, int64_t now)
{
    GHashTableIter it;
    gpointer value;

    if (!s->silent)
        return;
    /* kept for one more backoff after the wait, so a contact that stays
     * silent gets a longer one next time */
    g_hash_table_iter_init(&it, s->silent);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        silent_contact *c = value;
        if (c->until + (int64_t)c->backoff < now)
            g_hash_table_iter_remove(&it);
    }
}
