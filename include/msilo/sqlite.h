/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/sqlite.h
 * @brief The SQLite store (libmsilo-sqlite, pkg-config `msilo-sqlite`).
 *
 * A durable store in one file, for a single machine that does not run
 * PostgreSQL. The table has the column names of the PostgreSQL store and of
 * the Kamailio/OpenSIPS `silo` schema (id, src_addr, dst_addr, username,
 * domain, inc_time, exp_time, snd_time, ctype, body, extra_hdrs, callid,
 * status) plus libmsilo's lease_owner, lease_until, attempts, next_try.
 *
 * Location: `sqlite:///abs/path` (the URL form of the db_url key),
 * `sqlite:relative/path`, a plain file path, or `:memory:` (a private
 * database that lives as long as the store; each store gets its own).
 *
 * Durability: the file is in WAL mode with synchronous=FULL, so a put that
 * returned 0 survives a power loss, not only a crash of the process (a
 * stored message was acknowledged to its sender with 202; losing it would
 * break that promise). Each put batch is one transaction, hence one fsync.
 *
 * Sharing: several stores (threads, processes) may open the same file. Every
 * write runs in a BEGIN IMMEDIATE transaction, so a claim reads and leases
 * its rows under the database's write lock and two claimers never get the
 * same message. A writer waits up to 10 s for the lock (busy timeout), then
 * fails with MSILO_ESTORE. msilo_store_interrupt() (msilo_engine_shutdown()
 * at its deadline) ends a running statement or that wait at once, and
 * later calls fail with MSILO_ESTORE.
 *
 * Thread-safety: a store holds one connection behind a mutex and sets
 * MSILO_STORE_THREADSAFE (calls from several threads are serialised). Its
 * methods block on disk I/O, so it does not set MSILO_STORE_NONBLOCKING: the
 * engine calls it from its worker thread.
 *
 * Errors: every function returns 0 or a negative MSILO_E* code; the detail
 * (SQLite's message included) is msilo_error_detail() on the calling thread,
 * as for every store: the backend reports it with msilo_store_fail().
 * Inside an engine, the engine hands a failed store call's detail to the
 * callback that reports it and to its log lines.
 */
#ifndef MSILO_SQLITE_H
#define MSILO_SQLITE_H

#include <stdint.h>

#include <msilo/common.h>
#include <msilo/sys/store.h>

MSILO_BEGIN_DECLS

/**
 * Opens (creating it when absent) the database named by @p path_or_url and
 * the table "silo" in it; creates or upgrades the table as
 * msilo_sqlite_migrate() does.
 * @return 0; MSILO_EINVAL (NULL argument); MSILO_ECONFIG (a URL that is not
 * sqlite:, a URL with a host, an existing table that is not an msilo table);
 * MSILO_ESTORE (the file cannot be opened or is not a database). Free the
 * store with msilo_store_free().
 */
MSILO_API int msilo_sqlite_store_new(msilo_store_t **ret, const char *path_or_url);

/**
 * Like msilo_sqlite_store_new() with a table other than "silo" (@p table NULL
 * means "silo"). Any name works; it is quoted.
 */
MSILO_API int msilo_sqlite_store_new_table(msilo_store_t **ret, const char *path_or_url,
                                           const char *table);

/**
 * Creates table @p table (NULL = "silo") and its indexes when absent, or adds
 * to an existing Kamailio/OpenSIPS SQLite `silo` table what libmsilo needs
 * (lease_owner, lease_until, attempts, next_try, extra_hdrs, callid; the
 * indexes TABLE_owner_id_idx, TABLE_exp_idx, TABLE_snd_idx), in one
 * transaction. Safe to run again: a second run changes nothing.
 * @param path_or_url the database file (as msilo_sqlite_store_new()).
 * @param table the table name, NULL for "silo".
 * @param ret_changes may be NULL; receives how many schema changes were made.
 * @return 0, MSILO_EINVAL, MSILO_ECONFIG or MSILO_ESTORE as msilo_sqlite_store_new().
 */
MSILO_API int msilo_sqlite_migrate(const char *path_or_url, const char *table,
                                   size_t *ret_changes);

/**
 * The global limits of a SQLite store (msilo_sqlite_store_set_limit()).
 * New limits are only ever appended.
 */
typedef enum {
    /** messages in the whole table; 0 (the default): no limit */
    MSILO_SQLITE_MAX_MESSAGES = 1,
    /** bytes of the stored messages together: body, addresses, content
     *  type, extra headers and Call-ID (SQLite's length(), which counts
     *  characters of text columns), without SQLite's own overhead per row;
     *  0 (the default): no limit */
    MSILO_SQLITE_MAX_BYTES = 2,
} msilo_sqlite_limit_t;

/**
 * Caps the whole table, whoever the messages are for, as
 * msilo_memory_store_set_limit() caps the memory store: a put that would go
 * beyond @p limit gets MSILO_EFULL for that message (the engine answers it
 * like a full mailbox: 486 from msilo-server), nothing is evicted. The check
 * runs inside the put's write transaction and counts what other connections
 * on the file stored too; it costs O(1) per message, plus one count of the
 * table after a delete or after another connection wrote. Lowering a limit
 * below what is stored keeps what is stored and refuses new puts. The limit
 * belongs to this store object (not to the file). Thread-safe (the store's
 * lock).
 * @param store a store made by msilo_sqlite_store_new() (or "sqlite:")
 * @param limit which limit
 * @param value the limit; 0 turns it off
 * @return 0, or MSILO_EINVAL (not a SQLite store, unknown @p limit, a
 * @p value above INT64_MAX).
 */
MSILO_API int msilo_sqlite_store_set_limit(msilo_store_t *store, msilo_sqlite_limit_t limit,
                                           uint64_t value);

MSILO_END_DECLS

#endif
