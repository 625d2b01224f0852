/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file store-open.h
 * @brief Opening a libmsilo store from a URL and the msilo parameters.
 *
 * Shared by the example programs (msilo-admin, msilo-server), so that the
 * way a `db_url` turns into a store exists once. It is not libmsilo API yet:
 * it only calls the public API of libmsilo, libmsilo-postgres and
 * libmsilo-sqlite, and compiles in the backends that are built (see
 * store_kind_built()).
 *
 * A store is named by a kind and the msilo parameters that concern it:
 *
 * | kind     | URL forms (store_kind_from_url())                         | keys used                |
 * | -------- | --------------------------------------------------------- | ------------------------ |
 * | memory   | `memory:`                                                 | none                     |
 * | sqlite   | `sqlite:///abs/path`, `sqlite:rel/path`, `:memory:`       | db_url, db_table         |
 * | postgres | `postgres://…`, `postgresql://…`, libpq `key=value …`     | db_url, db_table, sc_*   |
 *
 * With the kind given by name (msilo-server's `store = sqlite`), the SQLite
 * db_url may also be a plain file path; a plain path has no kind of its own.
 *
 * Two ways in:
 * - store_open(): kind + configuration + flags, one call (msilo-server);
 * - a store_spec_t, step by step: set the keys, then migrate and/or open
 *   (msilo-admin, which overrides db_url/db_table/sc_* from its command line
 *   and may migrate without opening).
 *
 * Errors: every function returns 0 or a negative MSILO_E* code. The human
 * readable detail of a failure is store_spec_error() (or *ret_error of
 * store_open()): the backend library's own detail or this file's, captured
 * when the failure happened.
 *
 * Thread-safety: a store_spec_t is a plain value, not synchronised. The
 * backends' error details are per thread: call these functions on the thread
 * that reads the detail.
 */
#ifndef MSILO_EXAMPLES_STORE_OPEN_H
#define MSILO_EXAMPLES_STORE_OPEN_H

#include <msilo/msilo.h>
#include <stdbool.h>
#include <stddef.h>

/** The kinds of store. */
typedef enum store_kind {
    STORE_KIND_UNKNOWN = 0, /**< not a store this file knows */
    STORE_KIND_MEMORY,      /**< the in-memory store of libmsilo */
    STORE_KIND_SQLITE,      /**< libmsilo-sqlite */
    STORE_KIND_POSTGRES,    /**< libmsilo-postgres */
} store_kind_t;

/** The kind named "memory", "sqlite" or "postgres"; STORE_KIND_UNKNOWN otherwise (and for NULL). */
store_kind_t store_kind_from_name(const char *name);

/**
 * The kind of store @p url names (table above; the schemes in any case,
 * `memory:` exactly). A text with a `=` and no `://` is a libpq conninfo.
 * STORE_KIND_UNKNOWN for anything else (a plain path included) and for NULL.
 */
store_kind_t store_kind_from_url(const char *url);

/** "memory", "sqlite", "postgres", or "unknown" (static strings). */
const char *store_kind_name(store_kind_t kind);

/** Whether this program was built with the backend of @p kind (memory always). */
bool store_kind_built(store_kind_t kind);

/**
 * Detail of the latest failure, on the calling thread, of the library that
 * implements @p kind: msilo_pg_error_detail() for PostgreSQL when it has one,
 * msilo_error_detail() otherwise. For the calls made on an opened store
 * (msilo_store_count() …). Never NULL; valid until the next call into the
 * library on this thread.
 */
const char *store_kind_error_detail(store_kind_t kind);

/** Flags of store_open() and store_spec_migrate(). */
enum {
    /** store_open(): create or upgrade the table first (store_spec_migrate()). */
    STORE_OPEN_MIGRATE = 1u << 0,
    /** PostgreSQL migration: do not widen a 32-bit id (MSILO_PG_MIGRATE_KEEP_ID);
     *  the other kinds ignore it. */
    STORE_OPEN_KEEP_ID = 1u << 1,
};

/**
 * Opens the store of kind @p kind on db_url, db_table and (PostgreSQL) the
 * sc_* keys of @p cfg; with STORE_OPEN_MIGRATE it first creates or upgrades
 * the table. SQLite creates and upgrades its table on open anyway, so there
 * the flag only makes the number of changes known.
 * @param kind a kind that store_kind_built().
 * @param cfg the configuration; not kept. May be NULL for STORE_KIND_MEMORY.
 * @param flags STORE_OPEN_* flags, 0 for none.
 * @param ret_store receives the store on success; free it with msilo_store_free().
 * @param ret_changes may be NULL; receives the number of schema changes as
 *        soon as the migration succeeded, even when opening fails afterwards
 *        (the changes are committed); 0 without STORE_OPEN_MIGRATE.
 * @param ret_error may be NULL; on failure receives the detail (g_free() it;
 *        never NULL, possibly empty); untouched on success.
 * @return 0; MSILO_EINVAL (NULL @p ret_store, an unknown kind, no @p cfg);
 * MSILO_ENOTSUP (the kind is not built in); else what msilo_pg_options_*,
 * msilo_pg_migrate(), msilo_pg_store_new(), msilo_sqlite_migrate(),
 * msilo_sqlite_store_new_table() or msilo_memory_store_new() returned
 * (MSILO_ECONFIG: db_url unset, a bad sc_* value, a table that needs a
 * migration; MSILO_ESTORE: the database cannot be reached or read).
 */
int store_open(store_kind_t kind, const msilo_config_t *cfg, unsigned flags,
               msilo_store_t **ret_store, size_t *ret_changes, char **ret_error);

/** Which store to open: a kind and its keys (opaque). */
typedef struct store_spec store_spec_t;

/**
 * A spec of kind @p kind with every key at its default (db_url unset,
 * db_table "silo", the sc_* names of the `silo` table).
 * @return 0; MSILO_EINVAL (NULL @p ret_spec, an unknown kind); MSILO_ENOTSUP
 * (the kind is not built in). Free with store_spec_free().
 */
int store_spec_new(store_spec_t **ret_spec, store_kind_t kind);

/** Frees @p spec. NULL is a no-op. */
void store_spec_free(store_spec_t *spec);

/**
 * Sets the keys of @p cfg that the kind uses (table above) as store_spec_set()
 * would; keys @p cfg leaves unset (NULL) keep their value in @p spec.
 * @return 0; MSILO_EINVAL (NULL argument); MSILO_ECONFIG (a value the
 * backend refuses: an empty or over-long identifier).
 */
int store_spec_set_config(store_spec_t *spec, const msilo_config_t *cfg);

/**
 * Sets key @p key (db_url, db_table, and for PostgreSQL the sc_* keys of
 * msilo/postgres.h) to a copy of @p value; NULL restores the default. The
 * memory store accepts db_url and db_table and ignores them.
 * @return 0; MSILO_EINVAL (NULL @p spec or @p key); MSILO_ECONFIG (a key the
 * kind does not have, a value it refuses).
 */
int store_spec_set(store_spec_t *spec, const char *key, const char *value);

/**
 * Creates the table of @p spec when absent, or adds what libmsilo needs to an
 * existing one (msilo_pg_migrate(), msilo_sqlite_migrate(); nothing for
 * memory). Safe to run again.
 * @param flags STORE_OPEN_KEEP_ID or 0 (STORE_OPEN_MIGRATE is implied).
 * @param ret_changes may be NULL; receives the number of schema changes.
 * @return 0; MSILO_EINVAL; MSILO_ECONFIG (db_url unset, or an existing
 * table that is not an msilo table); MSILO_ESTORE.
 */
int store_spec_migrate(store_spec_t *spec, unsigned flags, size_t *ret_changes);

/**
 * Opens the store @p spec names. @p spec may be freed afterwards.
 * @param ret_store receives the store on success; free it with msilo_store_free().
 * @return 0; MSILO_EINVAL; MSILO_ECONFIG (db_url unset; PostgreSQL: a table
 * that is absent or lacks columns: migrate first); MSILO_ESTORE.
 */
int store_spec_open(store_spec_t *spec, msilo_store_t **ret_store);

/** Detail of the latest failure of a call on @p spec; "" when none (never NULL). */
const char *store_spec_error(const store_spec_t *spec);

#endif
