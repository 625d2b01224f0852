/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SIP side of msilo-server, on Sofia-SIP NTA: the agent, its life cycle and
 * the dispatch of requests (forward.c, store.c, register.c, auth.c do the rest):
 *   route {
 *     Max-Forwards == 0            -> 483
 *     REGISTER                     -> save, 200 with the contacts, m_dump()
 *     MESSAGE, user registered     -> forward statefully; 2xx relayed;
 *                                     failure/timeout -> m_store(), 202
 *     MESSAGE, user not registered -> m_store(), 202 (or the error's status)
 *     OPTIONS                      -> 200
 *     SUBSCRIBE (mwi)              -> message-summary subscriptions (mwi.c)
 *     anything else                -> 405 with Allow
 *   }
 * Max-Forwards, the size checks, OPTIONS and 405 are answered statelessly
 * (agent_cb(): no transaction, so a flood of them costs no memory); only
 * REGISTER and MESSAGE that pass them get a server transaction.
 * Every reply to a stored MESSAGE is sent from the store callback, i.e. after
 * the store committed the message.
 */
#include <malloc.h>
#include <string.h>

#include "server.h"
#include "request.h"
#include "digest.h"

#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_tagarg.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>

#define SERVER_ERROR g_quark_from_static_string("msilo-server")

/* ---- AoR ------------------------------------------------------------------ */

/* "user@domain" of a URI, as the engine parses owners; NULL when not an AoR. */
char *server_aor_of_url(url_t const *url)
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

void server_reply(nta_incoming_t *irq, int status, tag_type_t tag,
                              tag_value_t value, ...)
{
    ta_list ta;
    ta_start(ta, tag, value);
    nta_incoming_treply(irq, status, sip_status_phrase(status), ta_tags(ta));
    ta_end(ta);
    nta_incoming_destroy(irq);
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

/* A URI scheme the server can route: sip, sips, tel. */
static bool scheme_supported(url_t const *url)
{
    return url && (url->url_type == url_sip || url->url_type == url_sips || url->url_type == url_tel);
}

/* A REGISTER or MESSAGE that passed the stateless checks, in its transaction.
 * @return a status for the caller to answer with, or 0 (answered or kept). */
static int request_cb(server_t *s, nta_incoming_t *irq, sip_t const *sip)
{
    sip_method_t method = sip->sip_request->rq_method;

    if (method == sip_method_subscribe)
        return server_handle_subscribe(s, irq, sip);

    if (method == sip_method_message && server_request_looped(s, sip)) {
        s->n_loops++;
        g_message("MESSAGE %s came back unchanged: 482", sip->sip_call_id->i_id);
        server_reply(irq, 482, SIPTAG_WARNING_STR("399 msilo \"Loop detected\""), TAG_END());
        return 0;
    }
    if ((method == sip_method_register || method == sip_method_message) &&
        !scheme_supported(sip->sip_request->rq_url)) {
        server_reply(irq, 416, SIPTAG_UNSUPPORTED_STR("sip, sips, tel"),
                          SIPTAG_WARNING_STR("399 msilo \"Unsupported URI scheme\""), TAG_END());
        return 0;
    }

    /* Requests for other domains are refused, never relayed elsewhere. */
    if ((method == sip_method_register || method == sip_method_message) &&
        !is_our_domain(s, method == sip_method_register
                              ? (sip->sip_to ? sip->sip_to->a_url->url_host : NULL)
                              : (server_message_owner(sip) ? server_message_owner(sip)->url_host : NULL))) {
        server_reply(irq, 404, SIPTAG_WARNING_STR("399 msilo \"Not a local domain\""),
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
        if (!server_authenticate(s, irq, sip, who))
            return 0;
    }

    /* store_for (known.c): a mailbox only for known users */
    if (method == sip_method_message && !server_known_user(s, server_message_owner(sip))) {
        s->n_unknown_users++;
        server_reply(irq, 404, SIPTAG_WARNING_STR("399 msilo \"Not a known user\""), TAG_END());
        return 0;
    }

    if (method == sip_method_register)
        return server_handle_register(s, irq, sip);
    return server_handle_message(s, irq, sip);
}

/* Answers the request @msg statelessly (no transaction is kept) and frees it.
 * The To tag is added here: nta_msg_treply() copies the request's To. */
static void reply_stateless(server_t *s, msg_t *msg, sip_t *sip, int status, tag_type_t tag,
                            tag_value_t value, ...)
{
    ta_list ta;
    ta_start(ta, tag, value);
    if (sip->sip_to && !sip->sip_to->a_tag && status > 100)
        sip_to_tag(msg_home(msg), sip->sip_to, nta_agent_newtag(msg_home(msg), "tag=%s", s->agent));
    s->n_stateless++;
    nta_msg_treply(s->agent, msg, status, sip_status_phrase(status), ta_tags(ta));
    ta_end(ta);
}

/* Every message the agent has no transaction for comes here (there is no
 * default leg). What stores nothing -- OPTIONS, CANCEL, other methods, and
 * every refusal of the checks below -- is answered statelessly: a flood of
 * them keeps no 32-second transaction (Timer J) per request, which was ~8 KB
 * each (200 000 OPTIONS in 4.5 s had taken RSS to 1.6 GB). Only REGISTER and
 * MESSAGE get a transaction (nta_incoming_create()); their retransmissions
 * find it before they reach this callback. */
static int agent_cb(server_t *s, nta_agent_t *agent, msg_t *msg, sip_t *sip)
{
    char warning[200];
    sip_method_t method;
    int status;
    (void)agent;

    if (!sip || !sip->sip_request) {
        msg_destroy(msg); /* a response no transaction of ours waits for */
        return 0;
    }
    method = sip->sip_request->rq_method;
    server_limits_request(s, msg);
    server_flow_received(msg, sip);
    if (method == sip_method_ack) {
        msg_destroy(msg); /* nothing to acknowledge: we never answer INVITE with 2xx */
        return 0;
    }
    if (method == sip_method_cancel) {
        reply_stateless(s, msg, sip, 481, TAG_END());
        return 0;
    }
    if (sip->sip_max_forwards && sip->sip_max_forwards->mf_count == 0) {
        reply_stateless(s, msg, sip, 483, TAG_END());
        return 0;
    }
    if (s->stopping) {
        reply_stateless(s, msg, sip, 503, TAG_END());
        return 0;
    }
    status = server_check_request(&s->opt, msg, sip, warning, sizeof(warning));
    if (status) {
        g_message("%s refused: %d %s", sip->sip_request->rq_method_name, status, warning);
        reply_stateless(s, msg, sip, status, SIPTAG_WARNING_STR(warning), TAG_END());
        return 0;
    }
    const char *allow = s->mwi ? SERVER_ALLOW ", SUBSCRIBE" : SERVER_ALLOW;
    if (method == sip_method_options) {
        reply_stateless(s, msg, sip, 200, SIPTAG_ALLOW_STR(allow),
                        TAG_IF(s->mwi, SIPTAG_ALLOW_EVENTS_STR("message-summary")),
                        SIPTAG_ACCEPT_STR("text/plain, */*"), TAG_END());
        return 0;
    }
    if (method != sip_method_register && method != sip_method_message &&
        !(method == sip_method_subscribe && s->mwi)) {
        reply_stateless(s, msg, sip, 405, SIPTAG_ALLOW_STR(allow), TAG_END());
        return 0;
    }
    if (server_limits_transactions_full(s)) {
        reply_stateless(s, msg, sip, 503, SIPTAG_RETRY_AFTER_STR("5"),
                        SIPTAG_WARNING_STR("399 msilo \"Too many transactions\""), TAG_END());
        return 0;
    }
    /* The transaction owns @msg from here on (freed when it fails). The
     * handlers may answer and destroy it while they still read @sip, which
     * lives in @msg: a reference of ours keeps it until they return (NTA's
     * own leg callbacks get the same protection from NTA). */
    msg_t *hold = msg_ref_create(msg);
    nta_incoming_t *irq = nta_incoming_create(s->agent, NULL, msg, sip, TAG_END());
    if (!irq) {
        g_warning("%s: cannot create a transaction", sip->sip_request->rq_method_name);
    } else {
        status = request_cb(s, irq, sip);
        if (status >= 100)
            server_reply(irq, status, TAG_END());
    }
    msg_destroy(hold);
    return 0;
}

static gboolean expire_tick(gpointer data)
{
    server_t *s = data;
    size_t n = registrar_expire(s->registrar, server_now());
    server_once_expire(s, server_now());
    server_silent_expire(s, server_now());
    server_auth_expire(s, server_now());
    server_known_expire(s, server_now());
    /* Give freed memory back: after a burst of transactions (each ~8 KB,
     * freed 32 s later by Timer J) glibc keeps the heap at its peak. A
     * trim with nothing to return costs a few microseconds. */
    malloc_trim(0);
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
    s->silent = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    server_auth_init(s);
    s->agent = nta_agent_create(s->root, URL_STRING_MAKE(s->opt.listen), agent_cb, s,
                                NTATAG_UA(0), NTATAG_SERVER_RPORT(1), NTATAG_CLIENT_RPORT(1),
                                NTATAG_USE_NAPTR(0), NTATAG_USE_SRV(0),
                                NTATAG_UDP_MTU(65535),
                                TPTAG_IDLE(s->opt.tcp_idle_timeout),
                                /* RFC 5626 4.4.1: CRLF pong to a CRLFCRLF ping */
                                TPTAG_PONG2PING(1),
                                TPTAG_TIMEOUT(s->opt.tcp_message_timeout),
                                NTATAG_MAXSIZE((usize_t)s->opt.max_message_size), TAG_END());
    if (!s->agent) {
        g_set_error(error, SERVER_ERROR, 1, "cannot listen on %s",
                    s->opt.listen);
        return -1;
    }
    r = msilo_sofia_transport_new(&s->transport, s->agent, s->root);
    if (r == 0 && s->opt.delivery_timeout)
        r = msilo_sofia_transport_set_timeout(s->transport, s->opt.delivery_timeout);
    if (r == 0) /* deliveries follow the registered flows (flow.c) */
        r = msilo_sofia_transport_set_flow_lookup(s->transport, server_flow_lookup, s);
    if (r < 0) {
        g_set_error(error, SERVER_ERROR, 1, "cannot create the transport: %s",
                    msilo_strerror(r));
        return -1;
    }
    if (s->opt.auth_users) {
        g_autoptr(GError) derr = NULL;
        s->auth = digest_new(s->opt.auth_users, s->opt.auth_realm, s->opt.auth_algorithms,
                             DIGEST_NONCE_LIFETIME, &derr);
        if (!s->auth) {
            g_set_error(error, SERVER_ERROR, 1, "cannot read the users file %s: %s", s->opt.auth_users,
                        derr ? derr->message : "?");
            return -1;
        }
    }
    s->expire_timer = g_timeout_add_seconds(10, expire_tick, s);
    server_limits_start(s);
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
        server_forward_failed(key, "shutdown");
    }
}

void server_sip_stop(server_t *s)
{
    GHashTableIter it;
    gpointer key;

    if (s->expire_timer)
        g_source_remove(s->expire_timer);
    s->expire_timer = 0;
    server_limits_stop(s);
    /* Stores whose callback never ran (no engine): answer 503. */
    if (s->stores) {
        g_hash_table_iter_init(&it, s->stores);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
            g_hash_table_iter_remove(&it);
            server_reply(key, 503, TAG_END());
        }
    }
    msilo_transport_free(s->transport);
    s->transport = NULL;
    /* the bindings hold references to the agent's connections (flow.c) */
    registrar_free(s->registrar);
    s->registrar = NULL;
    if (s->flow_peers)
        g_hash_table_unref(s->flow_peers);
    s->flow_peers = NULL;
    if (s->agent)
        nta_agent_destroy(s->agent);
    s->agent = NULL;
    digest_free(s->auth);
    s->auth = NULL;
    if (s->silent)
        g_hash_table_unref(s->silent);
    s->silent = NULL;
    server_auth_clear(s);
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
