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
#define NTA_OUTGOING_MAGIC_T struct forward
#define NTA_INCOMING_MAGIC_T struct server

#include <sofia-sip/nta.h>
#include <sofia-sip/su_glib.h>

#include <msilo/msilo.h>
#include <msilo/sofia.h>

#include "config.h"

#define SERVER_ALLOW "REGISTER, MESSAGE, OPTIONS"

/* ---- registrar (registrar.c) -------------------------------------------- */

typedef struct binding {
    char *uri;        /* contact URI, canonical text (the identity of the binding) */
    char *contact;    /* Contact header value as registered (with parameters) */
    int64_t expires;  /* absolute, seconds (g_get_real_time based) */
    double q;         /* 0..1, 1 when absent */
    int64_t seq;      /* registration order, newest highest */
} binding_t;

typedef struct registrar registrar_t;

registrar_t *registrar_new(void);
void registrar_free(registrar_t *r);
/* Current bindings of @aor (expired ones dropped), best first (q, then newest).
 * The array is owned by the registrar and valid until its next call. */
GPtrArray *registrar_lookup(registrar_t *r, const char *aor, int64_t now);
/* Adds, refreshes or (expires == 0) removes one binding. */
void registrar_update(registrar_t *r, const char *aor, const char *uri, const char *contact,
                      int64_t expires, double q, int64_t now);
void registrar_remove_all(registrar_t *r, const char *aor);
/* Drops expired bindings of every AoR. @return how many. */
size_t registrar_expire(registrar_t *r, int64_t now);
size_t registrar_count(const registrar_t *r);

/* ---- the server (sip.c) -------------------------------------------------- */

/* server_options_t: config.h */

typedef struct server {
    server_options_t opt;
    su_root_t *root;
    GSource *root_source;
    nta_agent_t *agent;
    nta_leg_t *leg;
    msilo_transport_t *transport;
    msilo_store_t *store;
    msilo_engine_t *engine;
    struct auth_mod_t *auth;     /* NULL: no authentication */
    registrar_t *registrar;
    GMainLoop *loop;
    struct _SoupServer *metrics; /* NULL unless [server] metrics is set */
    GHashTable *forwards; /* forward_t* set: forwards in progress */
    GHashTable *stores;   /* nta_incoming_t* set: stores waiting for their result */
    const char *snd_time_header; /* msilo key snd_time_avp: header with a reminder time */
    guint expire_timer;
    bool stopping;
    /* counters of the server itself */
    uint64_t n_register, n_message, n_forwarded, n_relayed_2xx, n_forward_failed;
    uint64_t n_auth_challenged, n_auth_forbidden;
} server_t;

/* Creates the agent, the default leg and the transport (before the engine). */
int server_sip_start(server_t *s, GError **error);
/* Finishes forwards in progress (stores them) before the engine is freed. */
void server_sip_drain(server_t *s);
/* Destroys leg, transport and agent (after the engine is freed). */
void server_sip_stop(server_t *s);
/* "udp 127.0.0.1:5060, tcp 127.0.0.1:5060" (g_free it). */
char *server_sip_listening(server_t *s);

/* ---- metrics (metrics.c) ---------------------------------------------------- */

/* Serves GET /metrics on @hostport (a loopback address only). */
bool server_metrics_start(server_t *s, const char *hostport, GError **error);
void server_metrics_stop(server_t *s);
/* The Prometheus text (g_free it). */
char *server_metrics_text(server_t *s);

#endif
