/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/postgres.h
 * @brief The PostgreSQL store (libmsilo-postgres, pkg-config `msilo-postgres`).
 *
 * Stores messages in a `silo` table compatible with the msilo modules of
 * Kamailio (schema version 8) and OpenSIPS (version 6): an existing table of
 * either works after msilo_pg_migrate(), which only adds what libmsilo needs
 * and leaves the table readable by those modules.
 *
 * Options are set by key, with the msilo parameter names, so that the engine's
 * configuration maps onto them one to one:
 *
 * | key            | default        | meaning                                   |
 * | -------------- | -------------- | ----------------------------------------- |
 * | db_url         | (required)     | `postgres://user:pass@host:port/db`, libpq's `postgresql://...` or `key=value ...` |
 * | db_table       | silo           | table name (one identifier, quoted as given: no schema prefix) |
 * | sc_mid         | id             | message id column                         |
 * | sc_from        | src_addr       | From URI                                  |
 * | sc_to          | dst_addr       | To URI                                    |
 * | sc_uri_user    | username       | owner user                                |
 * | sc_uri_host    | domain         | owner domain                              |
 * | sc_inc_time    | inc_time       | time stored                               |
 * | sc_exp_time    | exp_time       | expiry time                               |
 * | sc_snd_time    | snd_time       | reminder time                             |
 * | sc_ctype       | ctype          | content type                              |
 * | sc_body        | body           | body (BYTEA)                              |
 * | sc_stored_hdrs | extra_hdrs     | stored extra headers (Kamailio's name)    |
 * | sc_callid      | callid         | Call-ID                                   |
 *
 * The defaults of db_table and the sc_* keys are those of libmsilo's
 * configuration (msilo_config_key_at()). libmsilo's own columns have fixed
 * names: lease_owner, lease_until, attempts, next_try.
 *
 * Thread-safety: an options object is a plain value (not synchronised). A
 * store owns one connection and is not thread-safe: its flags are 0, so the
 * engine calls it from its worker thread, one call at a time. Several stores
 * (several connections, several processes or machines) may share one table:
 * claims lock rows with FOR UPDATE SKIP LOCKED and leases, and the
 * max_per_owner check of put holds a per-owner advisory lock.
 *
 * Errors: every function returns 0 or a negative MSILO_E* code. The human
 * readable detail of a failure (libpq's message included, on one line) is
 * msilo_error_detail() on the calling thread, as for every store: the backend
 * reports it with msilo_store_fail() (libmsilo-postgres links libmsilo).
 * Inside an engine, a store call runs on a worker thread; the engine hands
 * its detail to the callback that reports the failure (msilo_error_detail()
 * there) and to its log lines.
 *
 * Connection loss: a call that fails because the server is unreachable returns
 * MSILO_ESTORE and drops the connection; the next call reconnects. Repeated
 * failed reconnects back off (100 ms doubling up to 5 s): during the back-off
 * calls fail at once with MSILO_ESTORE instead of waiting for a connect timeout.
 *
 * Interrupt (msilo_store_interrupt(), what msilo_engine_shutdown() does at
 * its deadline): the store shuts its connection's socket down, so a query
 * waiting for a frozen server fails at once ("server closed the connection
 * unexpectedly"), and every later call fails with MSILO_ESTORE. A connect in
 * progress cannot be cut short: it ends within connect_timeout (10 s unless
 * the URL says otherwise), then fails too. A query already sent may still
 * be executed by the server when it resumes, although the call reported
 * MSILO_ESTORE (a store may then be stored once more by the sender's retry:
 * duplicated, never lost).
 */
#ifndef MSILO_POSTGRES_H
#define MSILO_POSTGRES_H

#include <msilo/common.h>
#include <msilo/config.h>
#include <msilo/sys/store.h>

MSILO_BEGIN_DECLS

typedef struct msilo_pg_options msilo_pg_options_t;

/**
 * Creates options holding every default (db_url unset).
 * @return 0 or MSILO_EINVAL (@p ret NULL). Free with msilo_pg_options_free().
 */
MSILO_API int msilo_pg_options_new(msilo_pg_options_t **ret);

/** Frees @p opts. NULL is a no-op. */
MSILO_API void msilo_pg_options_free(msilo_pg_options_t *opts);

/**
 * Sets option @p key (see the table above) to a copy of @p value; NULL
 * restores the default.
 * @return 0; MSILO_EINVAL for NULL opts/key; MSILO_ECONFIG for an unknown key
 * or an empty identifier.
 */
MSILO_API int msilo_pg_options_set(msilo_pg_options_t *opts, const char *key, const char *value);

/** The value of @p key (owned by @p opts), or NULL when unset or unknown. */
MSILO_API const char *msilo_pg_options_get(const msilo_pg_options_t *opts, const char *key);

/**
 * Opens a store on the table named by @p opts: connects, checks that the
 * table has every column the store needs (run msilo_pg_migrate() first) and
 * learns its column types. @p opts is copied.
 *
 * A server that cannot be reached does not fail the open: the store then
 * connects on its first call, and each call fails with MSILO_ESTORE (detail:
 * libpq's reason, or the time to the next attempt) until a connection
 * succeeds; the table is checked then (MSILO_ECONFIG from that call while it
 * is absent). A multi-host db_url (libpq's
 * `postgresql://h1:p1,h2:p2/db?target_session_attrs=read-write`) is tried
 * host by host at each connection, so after a failover the store reconnects
 * to whichever host is the primary.
 * @return 0; MSILO_EINVAL (NULL argument); MSILO_ECONFIG (no db_url, a db_url
 * that does not parse, or the table is absent or lacks columns: detail names
 * them); MSILO_ESTORE (a query on a reachable server failed). Free the store
 * with msilo_store_free().
 */
MSILO_API int msilo_pg_store_new(msilo_store_t **ret, const msilo_pg_options_t *opts);

/** Shorthand for msilo_pg_store_new() with default column names.
 *  @p db_table NULL means "silo". */
MSILO_API int msilo_pg_store_new_url(msilo_store_t **ret, const char *db_url,
                                     const char *db_table);

/**
 * Fills @p opts from an engine configuration: db_url, db_table and every
 * sc_* key of the table above that @p cfg holds (same names).
 * @return 0, MSILO_EINVAL, or MSILO_ECONFIG for a value the options refuse.
 */
MSILO_API int msilo_pg_options_from_config(msilo_pg_options_t *opts, const msilo_config_t *cfg);

/** Flags for msilo_pg_migrate(). */
enum {
    /** Do not widen a 32-bit id column to BIGINT (that rewrites the table
     *  under an exclusive lock: on a big table, do it in a maintenance window). */
    MSILO_PG_MIGRATE_KEEP_ID = 1u << 0,
};

/**
 * Creates the table when absent, or brings an existing Kamailio/OpenSIPS
 * `silo` table up to what libmsilo needs, in one transaction:
 * - adds lease_owner, lease_until, attempts, next_try (and extra_hdrs/callid
 *   when absent), all with defaults, so rows already there stay valid;
 * - widens a ctype shorter than VARCHAR(255) to VARCHAR(255) (no rewrite);
 * - widens a 32-bit id (and its sequence) to BIGINT unless
 *   MSILO_PG_MIGRATE_KEEP_ID;
 * - creates indexes TABLE_owner_id_idx (user, domain, id),
 *   TABLE_exp_idx (exp_time) and TABLE_snd_idx (snd_time) WHERE snd_time \<\> 0.
 * Nothing is dropped or renamed, so the queries of the msilo modules keep working. A second
 * run changes nothing. Concurrent runs serialise on an advisory lock; the
 * table's lock is waited for at most 10 s (then MSILO_ESTORE: try again later).
 * @param opts options naming the database, table and columns.
 * @param flags MSILO_PG_MIGRATE_* flags (0 for none).
 * @param ret_changes may be NULL; receives how many schema changes were made
 *        (0 when the table was already up to date).
 * @return 0; MSILO_EINVAL; MSILO_ECONFIG (no db_url, or the existing table
 * lacks an msilo column such as username); MSILO_ESTORE.
 */
MSILO_API int msilo_pg_migrate(const msilo_pg_options_t *opts, unsigned flags,
                               size_t *ret_changes);

/**
 * 1 when @p conninfo (a `postgres[ql]://` URL or a `key=value` string) sets a
 * password, in any form libpq accepts: `user:pw@` in a URL, a `password`
 * parameter however it is spelt (`password = x`, `?%70assword=x`). Read with
 * libpq's own parser (PQconninfoParse), so it cannot disagree with what the
 * connection uses. Text that libpq cannot parse counts as holding one (it may,
 * and is never shown). 0 otherwise, and for NULL.
 */
MSILO_API int msilo_pg_conninfo_has_password(const char *conninfo);

/**
 * @p conninfo for a log line: the parameters it sets, as libpq parsed them,
 * in `key=value` form with the password (if any) shown as `***`, e.g.
 * `host=127.0.0.1 port=5432 user=msilo password=*** dbname=msilo`. Text libpq
 * cannot parse becomes "(unparsable conninfo)"; NULL becomes "(unset)".
 * @return a string to g_free(); never NULL.
 */
MSILO_API char *msilo_pg_conninfo_mask(const char *conninfo);

/**
 * The same as msilo_error_detail(): the detail of the most recent failure on
 * the calling thread (never NULL; "" when none).
 * @deprecated Call msilo_error_detail(). This library reports its details
 * through msilo_store_fail(), like every store; the function is kept so
 * that programs linked against an older libmsilo-postgres still run.
 */
MSILO_API MSILO_DEPRECATED const char *msilo_pg_error_detail(void);

MSILO_END_DECLS

#endif
