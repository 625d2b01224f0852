/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SIP side of msilo-server, on Sofia-SIP NTA:
 *   route {
 *     Max-Forwards == 0            -> 483
 *     REGISTER                     -> save, 200 with the contacts, m_dump()
 *     MESSAGE, user registered     -> forward statefully; 2xx relayed;
 *                                     failure/timeout -> m_store(), 202
 *     MESSAGE, user not registered -> m_store(), 202 (or the error's status)
 *     OPTIONS                      -> 200
 *     anything else                -> 405 with Allow
 *   }
 * Every reply to a stored MESSAGE is sent from the store callback, i.e. after
 * the store committed the message.
 */
#include <string.h>

#include "server.h"
#include "request.h"

#include <sofia-sip/auth_module.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_tagarg.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>

/* Per-request lines are debug output (G_MESSAGES_DEBUG=msilo-server): skip
 * even formatting them when they would be dropped. Measured: a printed line
 * per REGISTER and per dump cost ~40 000 instructions each, a dropped but
 * formatted one ~1 200, against ~200 000 for a whole delivery. */
#define REQ_LOG(...)                                                                           \
    do {                                                                                       \
        if (!g_log_writer_default_would_drop(G_LOG_LEVEL_INFO, G_LOG_DOMAIN))                  \
            g_info(__VA_ARGS__);                                                               \
    } while (0)

/* A MESSAGE forwarded to a registered contact. */
typedef struct forward {
    server_t *srv;
    nta_incoming_t *irq;
    nta_outgoing_t *orq;
    guint guard;
} forward_t;

#define SERVER_ERROR g_quark_from_static_string("msilo-server")

static int64_t now_s(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

/* ---- AoR ------------------------------------------------------------------ */

/* "user@domain" of a URI, as the engine parses owners; NULL when not an AoR. */
static char *aor_of_url(url_t const *url)
{
    su_home_t home[1] = { SU_HOME_INIT(home) };
    char *text = url ? url_as_string(home, url) : NULL;
    char *user = NULL, *domain = NULL, *aor = NULL;

    if (text && url->url_user && url->url_user[0] &&
        msilo_aor_parse(text, NULL, &user, &domain) == 0)
        aor = g_strdup_printf("%s@%s", user, domain);
    g_free(user);
    g_free(domain);
    su_home_deinit(home);
    return aor;
}

/* ---- replies -------------------------------------------------------------- */

static void reply_and_destroy(nta_incoming_t *irq, int status, tag_type_t tag,
                              tag_value_t value, ...)
{
    ta_list ta;
    ta_start(ta, tag, value);
    nta_incoming_treply(irq, status, sip_status_phrase(status), ta_tags(ta));
    ta_end(ta);
    nta_incoming_destroy(irq);
}

/* Answers a MESSAGE with the status for a store result (202 on success). */
static void reply_store_result(server_t *s, nta_incoming_t *irq, int result)
{
    int status = msilo_error_sip_status(result);
    (void)s;
    if (result == 0) {
        reply_and_destroy(irq, 202, TAG_END());
    } else if (result == MSILO_EFULL) {
        /* 486: the user's mailbox is full; say so in Warning and Reason. */
        reply_and_destroy(irq, status,
                          SIPTAG_WARNING_STR("399 msilo \"Mailbox full\""),
                          SIPTAG_REASON_STR("SIP ;cause=486 ;text=\"Mailbox full\""),
                          TAG_END());
    } else {
        char warning[160];
        g_snprintf(warning, sizeof(warning), "399 msilo \"%s\"", msilo_strerror(result));
        reply_and_destroy(irq, status, SIPTAG_WARNING_STR(warning), TAG_END());
    }
}

/* ---- m_store -------------------------------------------------------------- */

/* A store that goes through the store-once table (loop.c). */
typedef struct once_store {
    nta_incoming_t *irq;
    char *key;
} once_store;

static void store_log(int result, int64_t id)
{
    if (result == 0)
        REQ_LOG("stored message %" G_GINT64_FORMAT, id);
    else
        g_warning("store failed: %s", msilo_strerror(result));
}

static void store_done(msilo_engine_t *e, int result, int64_t id, void *data)
{
    nta_incoming_t *irq = data;
    server_t *s = nta_incoming_magic(irq, NULL);
    (void)e;
    g_hash_table_remove(s->stores, irq);
    store_log(result, id);
    reply_store_result(s, irq, result);
}

/* Answers the requests that waited for the store of @key with its result. */
static void once_finish(server_t *s, const char *key, int result)
{
    GPtrArray *waiters = server_once_end(s, key, result, now_s());
    for (guint i = 0; waiters && i < waiters->len; i++) {
        s->n_stored_once++;
        g_hash_table_remove(s->stores, waiters->pdata[i]);
        reply_store_result(s, waiters->pdata[i], result);
    }
    if (waiters)
        g_ptr_array_unref(waiters);
}

static void once_store_done(msilo_engine_t *e, int result, int64_t id, void *data)
{
    once_store *os = data;
    server_t *s = nta_incoming_magic(os->irq, NULL);
    (void)e;
    g_hash_table_remove(s->stores, os->irq);
    store_log(result, id);
    reply_store_result(s, os->irq, result);
    once_finish(s, os->key, result);
    g_free(os->key);
    g_free(os);
}

/* m_store() of the request of @irq; the reply goes out when the store
 * completes. @forwarded: we forwarded it before (its forward failed). */
static void store_request(server_t *s, nta_incoming_t *irq, bool forwarded)
{
    msg_t *msg = nta_incoming_getrequest(irq);
    sip_t const *sip = sip_object(msg);
    su_home_t home[1] = { SU_HOME_INIT(home) };
    url_t const *owner_url = server_message_owner(sip);
    char const *owner = owner_url ? url_as_string(home, owner_url) : NULL;
    msilo_sofia_request_t *req = NULL;
    once_store *os = NULL;
    int r;

    nta_incoming_bind(irq, NULL, s);
    if (forwarded || server_came_back(s, sip)) {
        char *key = server_once_key(sip);
        switch (server_once_begin(s, key, irq, now_s())) {
        case SERVER_ONCE_WAIT:
            REQ_LOG("MESSAGE is being stored already: waiting for that store");
            g_hash_table_add(s->stores, irq);
            g_free(key);
            goto out;
        case SERVER_ONCE_STORED:
            REQ_LOG("MESSAGE stored already: 202 without storing it again");
            s->n_stored_once++;
            reply_store_result(s, irq, 0);
            g_free(key);
            goto out;
        case SERVER_ONCE_FIRST:
            os = g_new0(once_store, 1);
            os->irq = irq;
            os->key = key;
            break;
        }
    }
    r = msilo_sofia_request_new(&req, sip, s->snd_time_header);
    if (r == 0)
        r = msilo_engine_store(s->engine, msilo_sofia_request_view(req), owner,
                               os ? once_store_done : store_done, os ? (void *)os : (void *)irq);
    msilo_sofia_request_free(req);
    if (r < 0) {
        g_message("MESSAGE not stored: %s (%s)", msilo_strerror(r), msilo_error_detail());
        reply_store_result(s, irq, r);
        if (os) {
            once_finish(s, os->key, r);
            g_free(os->key);
            g_free(os);
        }
        goto out;
    }
    g_hash_table_add(s->stores, irq);
out:
    su_home_deinit(home);
    msg_destroy(msg);
}

/* ---- forwarding to an online user ----------------------------------------- */

static void forward_end(forward_t *f)
{
    g_hash_table_remove(f->srv->forwards, f);
    if (f->guard)
        g_source_remove(f->guard);
    if (f->orq)
        nta_outgoing_destroy(f->orq);
    g_free(f);
}

/* The failure_route: store the message, answer 202 from the store callback. */
static void forward_failed(forward_t *f, const char *why)
{
    server_t *s = f->srv;
    nta_incoming_t *irq = f->irq;
    s->n_forward_failed++;
    g_message("forward failed (%s): storing the message", why);
    f->irq = NULL;
    forward_end(f);
    store_request(s, irq, true);
}

static int forward_response(forward_t *f, nta_outgoing_t *orq, sip_t const *sip)
{
    int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);

    if (status < 200)
        return 0;
    if (status < 300 && sip && !nta_sip_is_internal(sip)) {
        msg_t *resp = nta_outgoing_getresponse(orq);
        f->srv->n_relayed_2xx++;
        if (resp) {
            sip_via_remove(resp, sip_object(resp)); /* our own Via */
            nta_incoming_mreply(f->irq, resp);
        } else {
            nta_incoming_treply(f->irq, status, sip_status_phrase(status), TAG_END());
        }
        nta_incoming_destroy(f->irq);
        f->irq = NULL;
        forward_end(f);
        return 0;
    }
    {
        char why[32];
        g_snprintf(why, sizeof(why), "%d%s", status,
                   sip && nta_sip_is_internal(sip) ? " internal" : "");
        forward_failed(f, why);
    }
    return 0;
}

static gboolean forward_guard(gpointer data)
{
    forward_t *f = data;
    f->guard = 0;
    forward_failed(f, "timeout");
    return G_SOURCE_REMOVE;
}

/* Forwards the MESSAGE of @irq to @contact_uri. @return false when it could not be sent. */
static bool forward_request(server_t *s, nta_incoming_t *irq, const char *contact_uri)
{
    msg_t *orig = nta_incoming_getrequest(irq);
    msg_t *copy = orig ? msg_copy(orig) : NULL;
    sip_t *sip = copy ? sip_object(copy) : NULL;
    su_home_t *home = copy ? msg_home(copy) : NULL;
    sip_request_t *rq;
    url_t *target;
    forward_t *f;
    char branch[SERVER_BRANCH_SIZE];

    /* the branch of the request as it came in: if it comes back unchanged,
     * server_request_looped() recognises it */
    if (orig) {
        server_loop_branch(sip_object(orig), branch);
        msg_destroy(orig);
    }
    if (!copy)
        return false;
    target = url_make(home, contact_uri);
    rq = target ? sip_request_create(home, sip->sip_request->rq_method,
                                     sip->sip_request->rq_method_name,
                                     (url_string_t *)target, NULL)
                : NULL;
    if (!rq || msg_header_insert(copy, (msg_pub_t *)sip, (msg_header_t *)rq) < 0) {
        msg_destroy(copy);
        return false;
    }
    /* A UA that uses us as outbound proxy pre-loads Route: <us;lr>; NTA would
     * send to that Route, i.e. back to us. We are that hop: drop it. */
    while (sip->sip_route && server_is_local(s, sip->sip_route->r_url))
        sip_route_remove(copy, sip);
    if (sip->sip_max_forwards) {
        sip->sip_max_forwards->mf_count--;
        sip_fragment_clear(sip->sip_max_forwards->mf_common);
    } else {
        sip_add_tl(copy, sip, SIPTAG_MAX_FORWARDS_STR("70"), TAG_END());
    }

    f = g_new0(forward_t, 1);
    f->srv = s;
    f->irq = irq;
    f->orq = nta_outgoing_mcreate(s->agent, forward_response, f, NULL, copy,
                                  NTATAG_BRANCH_KEY(branch), TAG_END());
    if (!f->orq) {
        msg_destroy(copy);
        g_free(f);
        return false;
    }
    g_hash_table_add(s->forwards, f);
    if (s->opt.forward_timeout)
        f->guard = g_timeout_add(s->opt.forward_timeout, forward_guard, f);
    s->n_forwarded++;
    return true;
}

static int handle_message(server_t *s, nta_incoming_t *irq, sip_t const *sip)
{
    g_autofree char *aor = NULL;
    GPtrArray *bindings;

    s->n_message++;
    /* A message with a reminder time is for later: store it, never forward. */
    if (s->snd_time_header && s->snd_time_header[0]) {
        for (sip_unknown_t const *u = sip->sip_unknown; u; u = u->un_next)
            if (u->un_name && g_ascii_strcasecmp(u->un_name, s->snd_time_header) == 0) {
                store_request(s, irq, false);
                return 0;
            }
    }
    /* the same owner the store would get (server_message_owner) */
    aor = aor_of_url(server_message_owner(sip));
    bindings = aor ? registrar_lookup(s->registrar, aor, now_s()) : NULL;
    if (bindings && bindings->len > 0) {
        binding_t const *b = bindings->pdata[0];
        if (forward_request(s, irq, b->uri)) {
            REQ_LOG("MESSAGE for %s forwarded to %s", aor, b->uri);
            return 0;
        }
        g_warning("cannot forward MESSAGE for %s to %s: storing it", aor, b->uri);
    }
    store_request(s, irq, false);
    return 0;
}

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

static int handle_register(server_t *s, nta_incoming_t *irq, sip_t const *sip)
{
    su_home_t home[1] = { SU_HOME_INIT(home) };
    int64_t now = now_s();
    g_autofree char *aor = NULL;
    sip_contact_t const *dump_to = NULL;
    sip_time_t dump_expires = 0;
    GPtrArray *bindings;
    GString *contacts;

    s->n_register++;
    if (!sip->sip_to || !(aor = aor_of_url(sip->sip_to->a_url))) {
        reply_and_destroy(irq, 400, SIPTAG_WARNING_STR("399 msilo \"Bad To\""), TAG_END());
        return 0;
    }

    /* A binding to this server itself would forward every MESSAGE for the
     * AoR back here: refused before anything is saved. */
    for (sip_contact_t const *m = sip->sip_contact; m; m = m->m_next) {
        if (m->m_url->url_type != url_any && server_is_local(s, m->m_url)) {
            g_message("REGISTER %s: Contact %s is this server: 403", aor,
                      url_as_string(home, m->m_url));
            reply_and_destroy(irq, 403, SIPTAG_WARNING_STR("399 msilo \"Contact is this server\""),
                              TAG_END());
            su_home_deinit(home);
            return 0;
        }
    }

    if (sip->sip_contact && sip->sip_contact->m_url->url_type == url_any) {
        /* "Contact: *" removes every binding, only with Expires: 0 */
        if (sip->sip_contact->m_next || !sip->sip_expires || sip->sip_expires->ex_delta != 0) {
            reply_and_destroy(irq, 400, SIPTAG_WARNING_STR("399 msilo \"Bad wildcard\""),
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
        reply_and_destroy(irq, 200, SIPTAG_CONTACT_STR(contacts->str),
                          SIPTAG_DATE(sip_date_create(home, sip_now())), TAG_END());
    else
        reply_and_destroy(irq, 200, SIPTAG_DATE(sip_date_create(home, sip_now())), TAG_END());
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

/* ---- dispatch ----------------------------------------------------------------- */

/* Whether @host is one of ours (no `domains` configured: every host is). */
static bool is_our_domain(server_t *s, const char *host)
{
    if (!s->opt.domains)
        return true;
    for (size_t i = 0; host && s->opt.domains[i]; i++)
        if (g_ascii_strcasecmp(host, s->opt.domains[i]) == 0)
            return true;
    return false;
}

/* server_check_request() on the request of @irq; a refusal is answered here.
 * @return 0 when it may go on, else the status it was answered with. */
static int check_request(server_t *s, nta_incoming_t *irq, sip_t const *sip)
{
    msg_t *msg = nta_incoming_getrequest(irq);
    char warning[200];
    int status = server_check_request(&s->opt, msg, sip, warning, sizeof(warning));

    if (msg)
        msg_destroy(msg);
    if (status) {
        g_message("%s refused: %d %s", sip->sip_request->rq_method_name, status, warning);
        reply_and_destroy(irq, status, SIPTAG_WARNING_STR(warning), TAG_END());
    }
    return status;
}

/* ---- Digest authentication ------------------------------------------------ */

/* Authenticates the request of @irq with the users file: the credentials must
 * be valid and name @user (the AoR's user for REGISTER, the From user for
 * MESSAGE). @return true when it may go on; otherwise it has been answered:
 * 401 with a challenge (no or stale or wrong credentials), 403 (valid
 * credentials of another user). */
static bool authenticate(server_t *s, nta_incoming_t *irq, sip_t const *sip, url_t const *who)
{
    static auth_challenger_t const challenger = {
        401, sip_401_Unauthorized, sip_www_authenticate_class, sip_authentication_info_class
    };
    su_home_t home[1] = { SU_HOME_INIT(home) };
    auth_status_t *as = auth_status_new(home);
    bool ok = false;

    if (!as) {
        reply_and_destroy(irq, 500, TAG_END());
        su_home_deinit(home);
        return false;
    }
    as->as_method = sip->sip_request->rq_method_name;
    as->as_uri = url_as_string(as->as_home, sip->sip_request->rq_url);
    as->as_realm = s->opt.auth_realm;
    as->as_user_uri = who;
    if (sip->sip_payload) {
        as->as_body = sip->sip_payload->pl_data;
        as->as_bodylen = (isize_t)sip->sip_payload->pl_len;
    }
    auth_mod_verify(s->auth, as, sip->sip_authorization, &challenger);
    if (as->as_status == 0) {
        /* valid credentials: are they the AoR's (or sender's) own? */
        if (who && who->url_user && as->as_user && strcmp(as->as_user, who->url_user) == 0) {
            ok = true;
        } else {
            s->n_auth_forbidden++;
            g_message("%s: user '%s' may not act for %s@%s: 403", as->as_method,
                      as->as_user ? as->as_user : "", who && who->url_user ? who->url_user : "",
                      who && who->url_host ? who->url_host : "");
            reply_and_destroy(irq, 403, SIPTAG_WARNING_STR("399 msilo \"Credentials of another user\""),
                              TAG_END());
        }
    } else if (as->as_status >= 300) {
        s->n_auth_challenged++;
        g_info("%s: %d %s", as->as_method, as->as_status, as->as_phrase ? as->as_phrase : "");
        reply_and_destroy(irq, as->as_status, SIPTAG_HEADER((sip_header_t const *)as->as_response),
                          TAG_END());
    } else {
        /* the file-based module is synchronous: anything else is a bug */
        reply_and_destroy(irq, 500, TAG_END());
    }
    auth_status_unref(as);
    su_home_deinit(home);
    return ok;
}

/* A URI scheme the server can route: sip, sips, tel. */
static bool scheme_supported(url_t const *url)
{
    return url && (url->url_type == url_sip || url->url_type == url_sips || url->url_type == url_tel);
}

static int request_cb(server_t *s, nta_leg_t *leg, nta_incoming_t *irq, sip_t const *sip)
{
    sip_method_t method = sip->sip_request->rq_method;
    (void)leg;

    if (method == sip_method_ack)
        return 0; /* nothing to acknowledge: we never send INVITE responses */
    if (method == sip_method_cancel)
        return 481;
    if (sip->sip_max_forwards && sip->sip_max_forwards->mf_count == 0)
        return 483;
    if (s->stopping)
        return 503;
    if (check_request(s, irq, sip))
        return 0;
    if (method == sip_method_message && server_request_looped(s, sip)) {
        s->n_loops++;
        g_message("MESSAGE %s came back unchanged: 482", sip->sip_call_id->i_id);
        reply_and_destroy(irq, 482, SIPTAG_WARNING_STR("399 msilo \"Loop detected\""), TAG_END());
        return 0;
    }
    if ((method == sip_method_register || method == sip_method_message) &&
        !scheme_supported(sip->sip_request->rq_url)) {
        reply_and_destroy(irq, 416, SIPTAG_UNSUPPORTED_STR("sip, sips, tel"),
                          SIPTAG_WARNING_STR("399 msilo \"Unsupported URI scheme\""), TAG_END());
        return 0;
    }

    /* Requests for other domains are refused, never relayed elsewhere. */
    if ((method == sip_method_register || method == sip_method_message) &&
        !is_our_domain(s, method == sip_method_register
                              ? (sip->sip_to ? sip->sip_to->a_url->url_host : NULL)
                              : (server_message_owner(sip) ? server_message_owner(sip)->url_host : NULL))) {
        reply_and_destroy(irq, 404, SIPTAG_WARNING_STR("399 msilo \"Not a local domain\""),
                          TAG_END());
        return 0;
    }

    /* Digest authentication: REGISTER as the AoR, MESSAGE (auth_message) as
     * the sender. Before anything is saved, stored or dumped. */
    if (s->auth && (method == sip_method_register ||
                    (method == sip_method_message && s->opt.auth_message))) {
        url_t const *who = method == sip_method_register
                               ? (sip->sip_to ? sip->sip_to->a_url : NULL)
                               : (sip->sip_from ? sip->sip_from->a_url : NULL);
        if (!authenticate(s, irq, sip, who))
            return 0;
    }

    switch (method) {
    case sip_method_register:
        return handle_register(s, irq, sip);
    case sip_method_message:
        return handle_message(s, irq, sip);
    case sip_method_options:
        reply_and_destroy(irq, 200, SIPTAG_ALLOW_STR(SERVER_ALLOW),
                          SIPTAG_ACCEPT_STR("text/plain, */*"), TAG_END());
        return 0;
    default:
        reply_and_destroy(irq, 405, SIPTAG_ALLOW_STR(SERVER_ALLOW), TAG_END());
        return 0;
    }
}

static gboolean expire_tick(gpointer data)
{
    server_t *s = data;
    size_t n = registrar_expire(s->registrar, now_s());
    server_once_expire(s, now_s());
    if (n)
        g_info("%zu registrations expired", n);
    return G_SOURCE_CONTINUE;
}

/* ---- lifetime ----------------------------------------------------------------- */

int server_sip_start(server_t *s, GError **error)
{
    int r;

    s->forwards = g_hash_table_new(NULL, NULL);
    s->stores = g_hash_table_new(NULL, NULL);
    s->once = server_once_new();
    s->registrar = registrar_new();
    s->agent = nta_agent_create(s->root, URL_STRING_MAKE(s->opt.listen), NULL, NULL,
                                NTATAG_UA(0), NTATAG_SERVER_RPORT(1), NTATAG_CLIENT_RPORT(1),
                                NTATAG_USE_NAPTR(0), NTATAG_USE_SRV(0),
                                NTATAG_UDP_MTU(65535), TPTAG_IDLE(600000),
                                NTATAG_MAXSIZE((usize_t)s->opt.max_message_size), TAG_END());
    if (!s->agent) {
        g_set_error(error, SERVER_ERROR, 1, "cannot listen on %s",
                    s->opt.listen);
        return -1;
    }
    s->leg = nta_leg_tcreate(s->agent, request_cb, s, NTATAG_NO_DIALOG(1), TAG_END());
    if (!s->leg) {
        g_set_error(error, SERVER_ERROR, 1, "cannot create the default leg");
        return -1;
    }
    r = msilo_sofia_transport_new(&s->transport, s->agent, s->root);
    if (r == 0 && s->opt.delivery_timeout)
        r = msilo_sofia_transport_set_timeout(s->transport, s->opt.delivery_timeout);
    if (r < 0) {
        g_set_error(error, SERVER_ERROR, 1, "cannot create the transport: %s",
                    msilo_strerror(r));
        return -1;
    }
    if (s->opt.auth_users) {
        s->auth = auth_mod_create(s->root, AUTHTAG_METHOD("Digest"), AUTHTAG_DB(s->opt.auth_users),
                                  AUTHTAG_REALM(s->opt.auth_realm), AUTHTAG_ALGORITHM("MD5"),
                                  AUTHTAG_QOP("auth"), AUTHTAG_EXPIRES(300), TAG_END());
        if (!s->auth) {
            g_set_error(error, SERVER_ERROR, 1, "cannot read the users file %s", s->opt.auth_users);
            return -1;
        }
    }
    s->expire_timer = g_timeout_add_seconds(10, expire_tick, s);
    return 0;
}

void server_sip_drain(server_t *s)
{
    GHashTableIter it;
    gpointer key;

    s->stopping = true;
    /* Forwards still waiting for an answer: store them now (failure_route). */
    for (;;) {
        g_hash_table_iter_init(&it, s->forwards);
        if (!g_hash_table_iter_next(&it, &key, NULL))
            break;
        forward_failed(key, "shutdown");
    }
}

void server_sip_stop(server_t *s)
{
    GHashTableIter it;
    gpointer key;

    if (s->expire_timer)
        g_source_remove(s->expire_timer);
    s->expire_timer = 0;
    /* Stores whose callback never ran (no engine): answer 503. */
    if (s->stores) {
        g_hash_table_iter_init(&it, s->stores);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
            g_hash_table_iter_remove(&it);
            reply_and_destroy(key, 503, TAG_END());
        }
    }
    msilo_transport_free(s->transport);
    s->transport = NULL;
    if (s->leg)
        nta_leg_destroy(s->leg);
    s->leg = NULL;
    if (s->agent)
        nta_agent_destroy(s->agent);
    s->agent = NULL;
    if (s->auth)
        auth_mod_destroy(s->auth);
    s->auth = NULL;
    registrar_free(s->registrar);
    s->registrar = NULL;
    if (s->forwards)
        g_hash_table_unref(s->forwards);
    if (s->stores)
        g_hash_table_unref(s->stores);
    if (s->once)
        g_hash_table_unref(s->once);
    s->forwards = s->stores = s->once = NULL;
}

char *server_sip_listening(server_t *s)
{
    GString *out = g_string_new(NULL);
    for (sip_via_t const *v = nta_agent_via(s->agent); v; v = v->v_next) {
        const char *proto = strrchr(v->v_protocol, '/');
        g_string_append_printf(out, "%s%s %s:%s", out->len ? ", " : "",
                               proto ? proto + 1 : v->v_protocol, v->v_host,
                               v->v_port ? v->v_port : "5060");
    }
    return g_string_free(out, FALSE);
}
