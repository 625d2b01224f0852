/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msilo-server: options and the configuration file loader. Private to the
 * example; free of Sofia-SIP so that tests/fuzz can build it alone. */
#ifndef MSILO_SERVER_CONFIG_H
#define MSILO_SERVER_CONFIG_H

#include <stdbool.h>

#include <glib.h>

#include <msilo/msilo.h>

#define DEFAULT_LISTEN "sip:127.0.0.1:5060"
#define DEFAULT_MAX_MESSAGE_SIZE (256u * 1024)
#define DEFAULT_MAX_HEADERS 100u
#define DEFAULT_MAX_HEADER_SIZE 8192u
#define DEFAULT_MAX_STORED_HEADERS 8192u
#define DEFAULT_FORWARD_TIMEOUT 4000u  /* ms */
#define DEFAULT_DELIVERY_TIMEOUT 8000u /* ms */
#define DEFAULT_EXPIRES 120u           /* s: registrar default_expires of the sample config */
#define DEFAULT_MAX_EXPIRES 3600u      /* s */
#define DEFAULT_MEMORY_MAX_MESSAGES 1000000ull
#define DEFAULT_MEMORY_MAX_BYTES (1024ull << 20) /* 1 GiB */
#define DEFAULT_SQLITE_MAX_MESSAGES 1000000ull
#define DEFAULT_SQLITE_MAX_BYTES (4096ull << 20) /* 4 GiB */
#define DEFAULT_MAX_BINDINGS 10u
#define DEFAULT_AUTH_MAX_FAILURES 10u
#define DEFAULT_AUTH_FAILURE_WINDOW 60u /* s */
#define DEFAULT_DUMP_BACKOFF 60u /* s */
#define DEFAULT_TCP_MAX_CONNECTIONS 1000u
#define DEFAULT_MAX_TRANSACTIONS 200000u /* ~1.6-2 GB; 6 250 requests/s for Timer J */
#define DEFAULT_METRICS_MAX_CONNECTIONS 16u
#define DEFAULT_METRICS_TIMEOUT 5000u /* ms */
#define DEFAULT_TCP_IDLE_TIMEOUT 60000u    /* ms */
#define DEFAULT_TCP_MESSAGE_TIMEOUT 10000u /* ms */
#define DEFAULT_SUBSCRIBE_MIN_EXPIRES 60u    /* s */
#define DEFAULT_SUBSCRIBE_MAX_EXPIRES 3600u  /* s */
#define DEFAULT_REGISTERED_WITHIN 2592000u   /* s: 30 days */

/* Who gets a mailbox (known.c): anybody of a local domain (msilo), the users
 * of the auth users file, or the users that registered lately. */
typedef enum { STORE_FOR_ANY, STORE_FOR_USERS_FILE, STORE_FOR_REGISTERED } store_for_t;

/* Digest algorithms ([server] auth_algorithms, digest.c) */
#define SERVER_DIGEST_MD5 1
#define SERVER_DIGEST_SHA256 2
#define SERVER_DIGEST_MAX 2
#define DEFAULT_AUTH_ALGORITHMS "SHA-256, MD5"

typedef struct server_options {
    char *listen;              /* "sip:127.0.0.1:5060" */
    char *store;               /* "memory" / "sqlite" / "postgres" */
    unsigned forward_timeout;  /* ms: guard for forwards to online users */
    unsigned delivery_timeout; /* ms: guard for the engine's deliveries */
    unsigned default_expires;  /* s: registrations without Expires */
    unsigned max_expires;      /* s: upper bound for registrations */
    char **domains;            /* local domains; NULL = every domain is local */
    /* size limits, enforced before anything is stored */
    unsigned max_message_size;   /* bytes of a whole request (Sofia answers 413 above) */
    unsigned max_headers;        /* header fields of a request */
    unsigned max_header_size;    /* bytes of one header field */
    unsigned max_stored_headers; /* bytes of the extra headers stored with a message */
    /* Digest authentication (Sofia-SIP auth module); off without auth_users */
    char *auth_users;          /* users file: user:password:realm or user:realm:HA1 lines */
    char *auth_realm;          /* realm of the challenges */
    bool auth_message;         /* also authenticate MESSAGE (as its From user) */
    int auth_algorithms[SERVER_DIGEST_MAX + 1]; /* SERVER_DIGEST_*, challenge order, 0-terminated */
    unsigned auth_max_failures;   /* wrong credentials per source and window; 0 = no limit */
    unsigned auth_failure_window; /* s */
    char *metrics;             /* "127.0.0.1:9464": Prometheus endpoint; NULL = off */
    unsigned metrics_max_connections; /* open at once; beyond, closed at once */
    unsigned metrics_timeout;         /* ms: a metrics connection is shut down after it */
    unsigned max_bindings;     /* contacts per AoR; a REGISTER beyond gets 503 */
    unsigned dump_backoff;     /* s: no dump to a contact whose last dump went unanswered */
    /* global caps of the memory store (0 = none): MESSAGEs beyond get 486 */
    unsigned long long memory_max_messages;
    unsigned long long memory_max_bytes;
    /* and of the SQLite store (0 = none): the same, over the whole table */
    unsigned long long sqlite_max_messages;
    unsigned long long sqlite_max_bytes;
    /* connections (limits.c, sip.c) */
    unsigned tcp_max_connections; /* open TCP connections before accepting pauses; 0 = no cap */
    unsigned tcp_idle_timeout;    /* ms: an idle TCP connection is closed */
    unsigned tcp_message_timeout; /* ms: a message not complete by then closes its connection */
    unsigned max_transactions;    /* server transactions kept; beyond: stateless 503; 0 = no cap */
    /* RFC 3842 message-summary subscriptions (mwi.c) */
    bool mwi;                       /* accept SUBSCRIBE to message-summary */
    unsigned subscribe_min_expires; /* s: a shorter Expires gets 423 */
    unsigned subscribe_max_expires; /* s: a longer one is cut to this */
    /* known users only (known.c) */
    store_for_t store_for;
    unsigned registered_within; /* s: store_for = registered looks back this far */
} server_options_t;

/* memory, sqlite or postgres */
bool server_store_kind_known(const char *kind);

/* The defaults. */
void server_options_init(server_options_t *opt);
void server_options_clear(server_options_t *opt);
/* Applies a configuration file's text to @cfg ([msilo]) and @opt ([server]);
 * on error false and *ret_error (g_free it) names the file, line and key.
 * *ret_has_password is set when [msilo] db_url carries a password. */
bool server_config_load_data(const char *path, const char *text, msilo_config_t *cfg,
                             server_options_t *opt, bool *ret_has_password, char **ret_error);
/* Whether a database URL or conninfo carries a password. */
bool server_url_has_password(const char *url);
/* @url with its password replaced by "***" (g_free it). */
char *server_mask_db_url(const char *url);

#endif
