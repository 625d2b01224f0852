/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msilo-server: a SIP registrar + MESSAGE proxy that stores messages for
 * offline users with libmsilo (the sample configuration of the msilo admin
 * guide, section 1.6.1, as a program). Private to the example. */
#ifndef MSILO_SERVER_H
#define MSILO_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

/* Sofia magic types: the same in every file of this program. */
struct server;
struct forward;
#define SU_ROOT_MAGIC_T struct server
#define NTA_LEG_MAGIC_T struct server
#define NTA_AGENT_MAGIC_T struct server
#define NTA_OUTGOING_MAGIC_T struct forward
#define NTA_INCOMING_MAGIC_T struct server

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/su_glib.h>

#include <msilo/msilo.h>
#include <msilo/sofia.h>

#include "config.h"

#define SERVER_ALLOW "REGISTER, MESSAGE, OPTIONS"

/* ---- registrar (registrar.c) -------------------------------------------- */

typedef struct flow flow_t; /* flow.c */

typedef struct binding {
    char *uri;        /* contact URI, canonical text (the identity of the binding) */
    char *contact;    /* Contact header value as registered (with parameters) */
    int64_t expires;  /* absolute, seconds (g_get_real_time based) */
    double q;         /* 0..1, 1 when absent */
    int64_t seq;      /* registration order, newest highest */
    flow_t *flow;     /* how its REGISTER came (flow.c), owned; may be NULL */
    char *instance;   /* +sip.instance of its Contact (the device), or NULL */
    char *reg_id;     /* reg-id of its Contact (RFC 5626), or NULL */
} binding_t;

typedef struct registrar registrar_t;

registrar_t *registrar_new(void);
void registrar_free(registrar_t *r);
/* Current bindings of @aor (expired ones dropped), best first (q, then newest).
 * The array is owned by the registrar and valid until its next call. */
GPtrArray *registrar_lookup(registrar_t *r, const char *aor, int64_t now);
/* The bindings of @aor as they are (expired ones included, none removed,
 * no removed hook runs: safe from inside the engine's sends), or NULL. */
GPtrArray *registrar_peek(registrar_t *r, const char *aor);
/* Adds, refreshes or (expires == 0) removes one binding. Takes @flow
 * (server_flow_new(); may be NULL), which replaces the binding's. A binding
 * is the one with the same contact URI or, when @instance is set, the one
 * with the same +sip.instance and reg-id (RFC 5626 6, RFC 5627): a device
 * that registers from a new address replaces its old binding (reported to
 * the removed hook) instead of leaving it behind. */
void registrar_update(registrar_t *r, const char *aor, const char *uri, const char *contact,
                      const char *instance, const char *reg_id,
                      int64_t expires, double q, int64_t now, flow_t *flow);
void registrar_remove_all(registrar_t *r, const char *aor);
/* Whether @b is the binding a Contact with @uri, @instance and @reg_id
 * updates (registrar_update()). */
bool binding_matches(const binding_t *b, const char *uri, const char *instance,
                     const char *reg_id);
/* Drops expired bindings of every AoR. @return how many. */
size_t registrar_expire(registrar_t *r, int64_t now);
size_t registrar_count(const registrar_t *r);
/* Called for every binding that goes away (removed or expired), before it is
 * freed; @uri is its contact URI as registered (binding_t.uri), @contact its
 * Contact value (binding_t.contact: with +sip.instance, the device). */
typedef void (*registrar_removed_fn)(const char *aor, const char *uri, const char *contact,
                                     void *data);
void registrar_set_removed(registrar_t *r, registrar_removed_fn fn, void *data);

/* ---- flows (flow.c) ---------------------------------------------------------- */

/* RFC 3581 section 4: received= in the top Via of a request with rport. */
void server_flow_received(msg_t *msg, sip_t *sip);
/* The flow the REGISTER of @irq came on, for its Contact @m (free it with
 * server_flow_free() unless the registrar took it); NULL when unknown. */
flow_t *server_flow_new(struct server *s, nta_incoming_t *irq, sip_t const *sip,
                        sip_contact_t const *m);
void server_flow_free(flow_t *f);
/* Whether @f is an RFC 5626 flow (reg-id and +sip.instance accepted). */
bool server_flow_outbound(const flow_t *f);
/* The way to its binding: 1 with *ret_next_hop (URI to send to) and
 * *ret_route (Route values, may be NULL) set; 0: to the Contact as it is;
 * MSILO_ETRANSPORT: unreachable (an outbound flow whose connection went). */
int server_flow_route(const flow_t *f, const char **ret_next_hop, const char **ret_route);
/* Whether the TCP peer @key (server_peer_key()) holds a registered flow. */
bool server_flow_peer(struct server *s, const char *key);
/* The Sofia transport's flow lookup (msilo_sofia_transport_set_flow_lookup()). */
int server_flow_lookup(const msilo_outgoing_t *msg, msilo_sofia_flow_t *ret_flow, void *data);

/* ---- the Sofia root in the GLib loop (root.c) ------------------------------ */

/* A root for @s and the GSource that runs it (not attached yet): Sofia's
 * epoll port when it can be found (*ret_epoll), else su_glib_root_create(). */
su_root_t *server_root_create(struct server *s, GSource **ret_source, bool *ret_epoll);
/* Destroys the source, then the root. */
void server_root_destroy(su_root_t *root, GSource *source, bool epoll);

/* ---- the server (sip.c) -------------------------------------------------- */

/* server_options_t: config.h */

typedef struct server {
    server_options_t opt;
    su_root_t *root;
    GSource *root_source;
    bool root_epoll;      /* root.c: Sofia's epoll port, not the GSource port */
    nta_agent_t *agent;
    msilo_transport_t *transport;
    msilo_store_t *store;
    msilo_engine_t *engine;
    struct digest *auth;         /* digest.c; NULL: no authentication */
    registrar_t *registrar;
    GMainLoop *loop;
    struct server_metrics *metrics; /* metrics.c; NULL unless [server] metrics is set */
    GHashTable *forwards; /* forward_t* set: forwards in progress */
    GHashTable *stores;   /* nta_incoming_t* set: stores waiting for their result */
    bool engine_stopped;  /* msilo_engine_shutdown() has called back */
    int engine_stop_rc;   /* with this result */
    GHashTable *once;     /* request identity -> its store (loop.c) */
    const char *snd_time_header; /* msilo key snd_time_avp: header with a reminder time */
    const char *stored_headers;  /* msilo key stored_headers: standard headers kept */
    guint expire_timer;
    bool per_device;      /* msilo key deliver_to = every_device (forward.c) */
    bool stopping;
    /* counters of the server itself */
    uint64_t n_register, n_message, n_forwarded, n_relayed_2xx, n_forward_failed;
    uint64_t n_auth_challenged, n_auth_forbidden;
    uint64_t n_loops, n_stored_once;
    uint64_t n_stateless; /* requests answered without a transaction */
    GHashTable *silent;   /* contact URI -> silent_contact (register.c) */
    uint64_t n_dumps_held, n_too_many_bindings;
    GHashTable *nonces;        /* auth.c: nonce -> nonce_seen */
    GHashTable *auth_failures; /* auth.c: source address -> source_failures */
    uint64_t n_auth_replays, n_auth_blocked;
    /* TCP connection cap (limits.c) */
    guint limits_timer;
    int fd_baseline;          /* descriptors held before any connection */
    unsigned tcp_connections; /* at the last count */
    bool tcp_stalled;         /* the TCP listeners are stalled */
    uint64_t n_tcp_stalls;
    GHashTable *conns;        /* "peer" -> conn_seen: accepted TCP connections */
    guint conns_look, limits_ticks;
    unsigned tcp_port;        /* our TCP listening port */
    uint64_t n_slow_closed;   /* connections shut down as slow senders */
    uint64_t n_idle_closed;   /* and as idle */
    GHashTable *flow_peers;   /* flow.c: "peer" of a registered connection -> count */
    size_t n_routed_flows;    /* flow.c: flows that change where a delivery goes */
    uint64_t n_transactions_refused; /* limits.c: requests refused at max_transactions */
    int64_t transactions_logged;     /* limits.c: when that was last logged (monotonic us) */
    struct known *known;      /* known.c: who gets a mailbox (store_for) */
    struct mwi *mwi;          /* mwi.c: message-summary subscriptions */
    uint64_t n_unknown_users; /* MESSAGEs and SUBSCRIBEs refused: not a known user */
} server_t;

/* Creates the agent (no default leg: requests come to its message
 * callback, sip.c) and the transport (before the engine). */
int server_sip_start(server_t *s, GError **error);
/* Finishes forwards in progress (stores them) before the engine is freed. */
void server_sip_drain(server_t *s);
/* Destroys transport and agent (after the engine is freed). */
void server_sip_stop(server_t *s);
/* "udp 127.0.0.1:5060, tcp 127.0.0.1:5060" (g_free it). */
char *server_sip_listening(server_t *s);

/* ---- the request path (sip.c, forward.c, store.c, register.c, auth.c) ------ */

/* Per-request lines are info output (G_MESSAGES_DEBUG=msilo-server): skip
 * even formatting them when they would be dropped. Measured: a printed line
 * per REGISTER and per dump cost ~40 000 instructions each, a dropped but
 * formatted one ~1 200, against ~200 000 for a whole delivery. */
#define REQ_LOG(...)                                                                           \
    do {                                                                                       \
        if (!g_log_writer_default_would_drop(G_LOG_LEVEL_INFO, G_LOG_DOMAIN))                  \
            g_info(__VA_ARGS__);                                                               \
    } while (0)

static inline int64_t server_now(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

/* "user@domain" of a URI, as the engine parses owners; NULL when not an AoR. */
char *server_aor_of_url(url_t const *url);
/* Answers @irq with @status and the tags, and destroys it. */
void server_reply(nta_incoming_t *irq, int status, tag_type_t tag, tag_value_t value, ...);
/* m_store() of the request of @irq; answered when the store completes.
 * @forwarded: this server forwarded it before (its forward failed). */
void server_store_request(server_t *s, nta_incoming_t *irq, bool forwarded);
/* Stores the MESSAGE of @irq (answered already) for @device only. */
void server_store_for_device(server_t *s, nta_incoming_t *irq, const char *device);
/* MESSAGE: forward to a registered user, else store. */
int server_handle_message(server_t *s, nta_incoming_t *irq, sip_t const *sip);
/* Ends a forward in progress by storing its MESSAGE (@why for the log). */
void server_forward_failed(struct forward *f, const char *why);
/* REGISTER: save the bindings, answer, dump the AoR's messages. */
int server_handle_register(server_t *s, nta_incoming_t *irq, sip_t const *sip);
/* Replay and failure tables of auth.c. */
void server_auth_init(server_t *s);
void server_auth_clear(server_t *s);
void server_auth_expire(server_t *s, int64_t now);
/* Forgets contacts whose dump backoff is long over (register.c). */
void server_silent_expire(server_t *s, int64_t now);
/* Digest authentication of the request of @irq as @who; answered (401/403/500)
 * unless it returns true. */
bool server_authenticate(server_t *s, nta_incoming_t *irq, sip_t const *sip, url_t const *who);

/* ---- loops (loop.c) ---------------------------------------------------------- */

/* Whether @url names this server (host and port of one of its Vias). */
bool server_is_local(server_t *s, url_t const *url);
#define SERVER_BRANCH_SIZE 40
/* The Via branch for forwarding the request @sip (RFC 3261 16.6 item 8). */
void server_loop_branch(sip_t const *sip, char out[SERVER_BRANCH_SIZE]);
/* Whether @sip carries a Via of ours with the branch it would get now: a loop. */
bool server_request_looped(server_t *s, sip_t const *sip);
/* Whether @sip carries any Via of ours (it has been forwarded by us before). */
bool server_came_back(server_t *s, sip_t const *sip);

typedef enum {
    SERVER_ONCE_FIRST,  /* store it, then call server_once_end() */
    SERVER_ONCE_WAIT,   /* the same request is being stored: answered by its end */
    SERVER_ONCE_STORED, /* stored a moment ago: answer 202, do not store again */
} server_once_t;
GHashTable *server_once_new(void);
/* The identity of a request: Call-ID, From tag, CSeq (g_free it). */
char *server_once_key(sip_t const *sip);
server_once_t server_once_begin(server_t *s, const char *key, nta_incoming_t *irq, int64_t now);
/* The store of @key ended with @result: the requests that waited for it (unref it; may be NULL). */
GPtrArray *server_once_end(server_t *s, const char *key, int result, int64_t now);
/* Forgets finished stores older than the window. */
void server_once_expire(server_t *s, int64_t now);

/* ---- limits (limits.c) ------------------------------------------------------ */

/* Raises the descriptor limit and starts the TCP connection cap. */
void server_limits_start(server_t *s);
void server_limits_stop(server_t *s);
/* "1.2.3.4:5060" of a peer address, the key of s->conns (g_free it); NULL for another family. */
struct sockaddr;
char *server_peer_key(const struct sockaddr *sa);
/* A complete request arrived in @msg (its peer's connection is not slow). */
void server_limits_request(server_t *s, msg_t *msg);
/* Whether max_transactions server transactions exist: the caller answers
 * statelessly 503 (counted and logged here, at most every 10 s). */
bool server_limits_transactions_full(server_t *s);

/* ---- known users (known.c) ---------------------------------------------------- */

/* Reads what store_for needs (the users file's names); false with @error. */
bool server_known_start(server_t *s, GError **error);
void server_known_stop(server_t *s);
/* @aor ("user@domain") registered at @now (store_for = registered). */
void server_known_seen(server_t *s, const char *aor, int64_t now);
/* Whether @owner may have a mailbox under store_for. */
bool server_known_user(server_t *s, url_t const *owner);
/* Forgets the addresses not registered within registered_within. */
void server_known_expire(server_t *s, int64_t now);

/* ---- message-summary (mwi.c) ------------------------------------------------- */

/* Starts the subscriptions (with [server] mwi) and sets the engine's count
 * hook: after msilo_engine_new(). */
void server_mwi_start(server_t *s);
/* Ends every subscription (a final NOTIFY each, not waited for) and frees
 * them: before the engine is freed. */
void server_mwi_stop(server_t *s);
/* How many subscriptions are active. */
unsigned server_mwi_count(server_t *s);
/* A SUBSCRIBE outside any dialog, in its transaction: answered (or kept). */
int server_handle_subscribe(server_t *s, nta_incoming_t *irq, sip_t const *sip);

/* ---- metrics (metrics.c) ---------------------------------------------------- */

/* Serves GET /metrics on @hostport (a loopback address only), from a thread
 * of its own; the text is server_metrics_text() as the SIP loop publishes it. */
bool server_metrics_start(server_t *s, const char *hostport, GError **error);
void server_metrics_stop(server_t *s);
/* The Prometheus text (g_free it); on the SIP loop only. */
char *server_metrics_text(server_t *s);

#endif
