/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/stores.h
 * @brief Opening any store from a URL (library libmsilo-stores, pkg-config msilo-stores).
 *
 * One call for every backend this libmsilo was built with, so that a host
 * turns a `db_url` into a store the same way msilo-server and msilo-admin do:
 *
 * | URL                                                       | store              |
 * | --------------------------------------------------------- | ------------------ |
 * | `memory:`                                                 | the in-memory store (libmsilo) |
 * | `sqlite:///abs/path`, `sqlite:rel/path`, `:memory:`       | libmsilo-sqlite    |
 * | `postgres://…`, `postgresql://…`, libpq `key=value …`     | libmsilo-postgres  |
 *
 * The other keys a store uses come from the msilo parameters: `db_table`
 * for the SQL stores, and the `sc_*` column names for PostgreSQL
 * (msilo/postgres.h). A backend that was not built answers MSILO_ENOTSUP.
 *
 * Errors: 0 or a negative MSILO_E* code; the detail (the backend's own, e.g.
 * libpq's message) is msilo_error_detail() on the calling thread: every
 * backend reports through msilo_store_fail() (msilo/sys/store.h), so there
 * is one place to look whichever store the URL names.
 * Thread-safety: no shared state; call from any thread.
 */
#ifndef MSILO_STORES_H
#define MSILO_STORES_H

#include <msilo/common.h>
#include <msilo/config.h>
#include <msilo/sys/store.h>

MSILO_BEGIN_DECLS

/** Flags of msilo_store_open() and msilo_store_migrate(). */
enum {
    /** msilo_store_open(): create or upgrade the table first (msilo_store_migrate()). */
    MSILO_STORE_OPEN_MIGRATE = 1u << 0,
    /** PostgreSQL migration: leave a 32-bit id column as it is
     *  (MSILO_PG_MIGRATE_KEEP_ID); the other stores ignore it. */
    MSILO_STORE_OPEN_KEEP_ID = 1u << 1,
};

/**
 * Which backend @p url names (table above), whether or not it was built:
 * "memory", "sqlite" or "postgres" (static strings), or NULL (not a store
 * URL: a plain file path, another scheme; NULL).
 */
MSILO_API const char *msilo_store_url_kind(const char *url);

/**
 * Whether @p url names a store (table above) that this library can open.
 * @return 1 (a store of a backend that was built), 0 (not a store URL, or a
 *         backend that was not built; NULL).
 */
MSILO_API int msilo_store_url_supported(const char *url);

/**
 * Opens the store @p url names, with db_table and (PostgreSQL) the sc_* keys
 * of @p cfg. With MSILO_STORE_OPEN_MIGRATE the table is first created or
 * upgraded (SQLite does that on open anyway).
 * @param url the store's URL; NULL takes db_url of @p cfg.
 * @param cfg the msilo parameters, not kept; NULL: every default.
 * @param flags MSILO_STORE_OPEN_* flags, 0 for none.
 * @param ret receives the store; free it with msilo_store_free().
 * @return 0; MSILO_EINVAL (NULL @p ret); MSILO_ECONFIG (no URL, not a store
 * URL, a bad sc_* value, a table that needs a migration); MSILO_ENOTSUP (a
 * backend this libmsilo was built without); MSILO_ESTORE (the database
 * cannot be reached or read); else what the backend's constructor returned.
 */
MSILO_API int msilo_store_open(const char *url, const msilo_config_t *cfg, unsigned flags,
                               msilo_store_t **ret);

/**
 * Creates the table of the store @p url names when absent, or adds what
 * libmsilo needs to an existing Kamailio or OpenSIPS `silo` table; nothing
 * for the memory store. Safe to run again.
 * @param url, cfg as for msilo_store_open()
 * @param flags MSILO_STORE_OPEN_KEEP_ID or 0
 * @param ret_changes may be NULL; receives the number of schema changes.
 * @return as msilo_store_open().
 */
MSILO_API int msilo_store_migrate(const char *url, const msilo_config_t *cfg, unsigned flags,
                                  size_t *ret_changes);

MSILO_END_DECLS

#endif
