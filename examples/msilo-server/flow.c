/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-server's flows (issue 15): how a registered client is reached when
 * its Contact alone does not reach it.
 *
 * - RFC 3581 section 4: every request with rport gets received= in its top
 *   Via, even when the source equals the sent-by (Sofia adds it only when
 *   they differ), so every response carries it (server_flow_received()).
 * - Each binding records the flow its REGISTER came on (flow_t): transport,
 *   source address and port, for TCP/TLS a reference to the connection
 *   (tport) with an error report on it, reg-id and +sip.instance (RFC 5626),
 *   and the Path (RFC 3327).
 * - Which way a request to the binding goes (server_flow_route()):
 *     Path stored                  -> to the first Path hop, Path as Route set
 *     outbound (reg-id), flow dead -> nowhere: the binding is unreachable
 *     outbound, or NATed           -> to the source address and port over the
 *                                     same transport: NTA reuses the open
 *                                     connection (RFC 3261 18, RFC 5626)
 *     NATed over TCP, flow dead    -> the Contact (it may listen there)
 *     otherwise                    -> the Contact
 *   "NATed": the top Via's sent-by is not the source of the REGISTER.
 * - A connection that carries a flow is not closed as idle or slow by
 *   limits.c (server_flow_peer()): its client keeps it with CRLF pings.
 * - The engine's deliveries take the same way: the Sofia transport asks
 *   server_flow_lookup() (msilo_sofia_transport_set_flow_lookup()) with the
 *   contact URI and the owner, and sends where the binding says. A send to
 *   an unreachable binding fails at once (MSILO_ETRANSPORT): a failed
 *   delivery, the message stays stored and goes at the next REGISTER.
 *
 * Not done here: STUN keep-alives on UDP (Sofia 1.12 has no STUN server in
 * NTA); CRLF keep-alives on TCP are answered by Sofia's tport itself (a
 * CRLFCRLF ping gets a CRLF pong, see doc/flows.md); flow tokens in our own
 * Path/Record-Route (we are never an edge proxy).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/tport.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>

struct flow {
    server_t *srv;
    bool counted;   /* in srv->n_routed_flows */
    char *peer;     /* server_peer_key() of a connection, counted in srv->flow_peers */
    char proto[8];  /* "udp", "tcp", "tls" */
    char *host;     /* source address (IPv6 without brackets) */
    unsigned port;  /* source port */
    tport_t *tport; /* the connection (TCP/TLS), referenced; NULL when gone or UDP */
    int pendd;      /* its error report */
    bool dead;      /* the connection went */
    bool nated;     /* sent-by is not the source */
    bool outbound;  /* reg-id accepted (RFC 5626) */
    char *instance; /* +sip.instance, or NULL */
    char *reg_id;   /* reg-id, or NULL */
    char *path;     /* Path values, "<a>, <b>", or NULL */
    char *first_hop; /* the first Path URI, or NULL */
    char *next_hop; /* sip:host:port;transport=proto */
};

/* ---- received= (RFC 3581) ---------------------------------------------------- */

/* The source address of @msg as text, IPv6 without brackets. */
static bool source_of(msg_t *msg, char *host, size_t size, unsigned *port)
{
    su_sockaddr_t const *su = msg_addr(msg);
    if (!su)
        return false;
    if (su->su_family == AF_INET) {
        if (!inet_ntop(AF_INET, &su->su_sin.sin_addr, host, (socklen_t)size))
            return false;
        *port = ntohs(su->su_sin.sin_port);
        return true;
    }
#if SU_HAVE_IN6
    if (su->su_family == AF_INET6) {
        if (!inet_ntop(AF_INET6, &su->su_sin6.sin6_addr, host, (socklen_t)size))
            return false;
        *port = ntohs(su->su_sin6.sin6_port);
        return true;
    }
#endif
    return false;
}

void server_flow_received(msg_t *msg, sip_t *sip)
{
    sip_via_t *v = sip ? sip->sip_via : NULL;
    char host[64];
    unsigned port;

    if (!v || v->v_received || !v->v_rport || !source_of(msg, host, sizeof host, &port))
        return;
    sip_via_add_param(msg_home(msg), v, su_sprintf(msg_home(msg), "received=%s", host));
    sip_fragment_clear(v->v_common);
}

/* ---- the flow of a binding ------------------------------------------------------- */

static void peer_forget(flow_t *f)
{
    guint n;
    if (!f->peer || !f->srv->flow_peers)
        return;
    n = GPOINTER_TO_UINT(g_hash_table_lookup(f->srv->flow_peers, f->peer));
    if (n > 1)
        g_hash_table_insert(f->srv->flow_peers, g_strdup(f->peer), GUINT_TO_POINTER(n - 1));
    else
        g_hash_table_remove(f->srv->flow_peers, f->peer);
    g_clear_pointer(&f->peer, g_free);
}

bool server_flow_peer(server_t *s, const char *key)
{
    return key && s->flow_peers && g_hash_table_contains(s->flow_peers, key);
}

static void flow_connection_gone(tp_stack_t *stack, tp_client_t *client, tport_t *tp, msg_t *msg,
                                 int error)
{
    flow_t *f = (flow_t *)client;
    (void)stack;
    (void)msg;
    (void)error;
    if (!f->tport || f->tport != tp)
        return;
    tport_release(f->tport, f->pendd, NULL, NULL, client, 0);
    tport_unref(f->tport);
    f->tport = NULL;
    f->pendd = 0;
    f->dead = true;
    peer_forget(f);
    REQ_LOG("flow %s %s:%u: connection closed", f->proto, f->host, f->port);
}

static bool same_host(const char *a, const char *b)
{
    size_t n;
    if (!a || !b)
        return false;
    if (a[0] == '[') { /* an IPv6 reference */
        n = strlen(a);
        return n > 2 && strlen(b) == n - 2 && g_ascii_strncasecmp(a + 1, b, n - 2) == 0;
    }
    return g_ascii_strcasecmp(a, b) == 0;
}

flow_t *server_flow_new(server_t *s, nta_incoming_t *irq, sip_t const *sip,
                        sip_contact_t const *m)
{
    su_home_t home[1] = { SU_HOME_INIT(home) };
    msg_t *msg = nta_incoming_getrequest(irq);
    tport_t *tp = nta_incoming_transport(s->agent, irq, NULL);
    flow_t *f = NULL;
    char host[64];
    unsigned port;
    sip_via_t const *v = sip->sip_via;
    const char *p;

    if (!msg || !tp || !source_of(msg, host, sizeof host, &port))
        goto out;
    f = g_new0(flow_t, 1);
    f->srv = s;
    g_strlcpy(f->proto, tport_name(tp)->tpn_proto ? tport_name(tp)->tpn_proto : "udp",
              sizeof f->proto);
    for (char *c = f->proto; *c; c++)
        *c = g_ascii_tolower(*c);
    f->host = g_strdup(host);
    f->port = port;
    f->nated = !v || !same_host(v->v_host, host) ||
               (unsigned)(v->v_port ? atoi(v->v_port) : 5060) != port;
    if ((p = msg_params_find(m->m_params, "+sip.instance")))
        f->instance = g_strdup(p);
    if ((p = msg_params_find(m->m_params, "reg-id")))
        f->reg_id = g_strdup(p);
    if (sip->sip_path) {
        GString *path = g_string_new(NULL);
        for (sip_path_t const *r = sip->sip_path; r; r = r->r_next) {
            char *uri = url_as_string(home, r->r_url);
            if (!uri)
                continue;
            if (!f->first_hop)
                f->first_hop = g_strdup(uri);
            g_string_append_printf(path, "%s<%s>", path->len ? ", " : "", uri);
        }
        f->path = g_string_free(path, path->len == 0);
    }
    /* RFC 5626 section 6: reg-id counts with an instance and the client's
     * Supported: outbound, and behind a Path only when the edge proxy
     * marked its hop with "ob" */
    f->outbound = f->reg_id && f->instance && sip_has_supported(sip->sip_supported, "outbound") &&
                  (!sip->sip_path || url_has_param(sip->sip_path->r_url, "ob"));
    if (f->path || f->outbound || f->nated) {
        /* only these can change where a delivery goes: the lookup of a
         * server without any returns at once */
        f->counted = true;
        s->n_routed_flows++;
    }
    f->next_hop = g_strdup_printf(strchr(host, ':') ? "sip:[%s]:%u;transport=%s"
                                                    : "sip:%s:%u;transport=%s",
                                  host, port, f->proto);
    if (tport_is_secondary(tp) && tport_is_reliable(tp)) {
        f->tport = tport_ref(tp);
        /* the peer's FIN is an error for the report below */
        tport_set_params(f->tport, TPTAG_SDWN_ERROR(1), TAG_END());
        f->pendd = tport_pend(f->tport, NULL, flow_connection_gone, (tp_client_t *)f);
        if (f->pendd == -1)
            f->pendd = 0;
        f->peer = server_peer_key(&msg_addr(msg)->su_sa);
        if (f->peer) {
            if (!s->flow_peers)
                s->flow_peers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
            g_hash_table_insert(s->flow_peers, g_strdup(f->peer),
                                GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(
                                                     s->flow_peers, f->peer)) + 1));
        }
    }
out:
    if (tp)
        tport_unref(tp);
    if (msg)
        msg_destroy(msg);
    su_home_deinit(home);
    return f;
}

void server_flow_free(flow_t *f)
{
    if (!f)
        return;
    if (f->tport) {
        if (f->pendd)
            tport_release(f->tport, f->pendd, NULL, NULL, (tp_client_t *)f, 0);
        tport_unref(f->tport);
    }
    peer_forget(f);
    if (f->counted)
        f->srv->n_routed_flows--;
    g_free(f->host);
    g_free(f->instance);
    g_free(f->reg_id);
    g_free(f->path);
    g_free(f->first_hop);
    g_free(f->next_hop);
    g_free(f);
}

bool server_flow_outbound(const flow_t *f)
{
    return f && f->outbound;
}

int server_flow_route(const flow_t *f, const char **ret_next_hop, const char **ret_route)
{
    bool dead;

    *ret_next_hop = *ret_route = NULL;
    if (!f)
        return 0;
    if (f->path) {
        *ret_next_hop = f->first_hop;
        *ret_route = f->path;
        return 1;
    }
    dead = f->dead || (f->tport && (tport_is_closed(f->tport) || tport_is_shutdown(f->tport)));
    if (f->outbound && dead)
        return MSILO_ETRANSPORT;
    if (f->outbound || (f->nated && !dead)) {
        *ret_next_hop = f->next_hop;
        return 1;
    }
    return 0;
}

/* ---- the transport's lookup -------------------------------------------------------- */

int server_flow_lookup(const msilo_outgoing_t *msg, msilo_sofia_flow_t *ret_flow, void *data)
{
    server_t *s = data;
    su_home_t home[1] = { SU_HOME_INIT(home) };
    binding_t const *found = NULL;
    g_autofree char *aor = NULL;
    GPtrArray *bindings = NULL;
    url_t *ruri;
    int64_t now;
    int r = 0;

    /* an outbound proxy of the engine's configuration routes by itself */
    if (!s->registrar || s->n_routed_flows == 0 || (msg->next_hop && msg->next_hop[0]))
        return 0;
    /* the owner as the registrar keys it: "sip:user@domain" is the common
     * form of a delivery's To; anything else is parsed */
    if (g_ascii_strncasecmp(msg->to, "sip:", 4) == 0 && !strpbrk(msg->to + 4, ":;?<> "))
        bindings = registrar_peek(s->registrar, msg->to + 4);
    if (!bindings) {
        url_t *to = url_make(home, msg->to);
        if (to && (aor = server_aor_of_url(to)))
            bindings = registrar_peek(s->registrar, aor);
    }
    /* not registrar_lookup(): its removed hook would call the engine
     * from inside the engine's own send */
    now = server_now();
    for (guint i = 0; bindings && i < bindings->len && !found; i++) {
        binding_t const *b = bindings->pdata[i];
        if (b->flow && b->expires > now && g_ascii_strcasecmp(b->uri, msg->ruri) == 0)
            found = b;
    }
    if (!found && bindings && (ruri = url_make(home, msg->ruri))) {
        for (guint i = 0; i < bindings->len && !found; i++) {
            binding_t const *b = bindings->pdata[i];
            url_t *bu = b->flow && b->expires > now ? url_make(home, b->uri) : NULL;
            if (bu && url_cmp_all(bu, ruri) == 0)
                found = b;
        }
    }
    if (found) {
        r = server_flow_route(found->flow, &ret_flow->next_hop, &ret_flow->route);
        if (r < 0)
            REQ_LOG("delivery to %s: its flow has gone: unreachable", found->uri);
    }
    su_home_deinit(home);
    return r;
}
