/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libmsilo-sqlite: opening a database and its schema, shared by
 * the store (sqlite-store.c) and the migration (sqlite-schema.c). */
#ifndef MSILO_SQLITE_INTERNAL_H
#define MSILO_SQLITE_INTERNAL_H

#include <stdbool.h>

#include <glib.h>
#include <msilo/msilo.h>
#include <msilo/sqlite.h>
#include <sqlite3.h>

#define SQ_DEFAULT_TABLE "silo"

/* How long a writer waits for another connection's write lock. */
#define SQ_BUSY_TIMEOUT_MS 10000

/* Columns whose NOT NULL constraint (a Kamailio or OpenSIPS msilo table) changes what we
 * write for a NULL value and how we read "". */
typedef enum sq_col {
    SQ_COL_FROM,
    SQ_COL_TO,
    SQ_COL_CTYPE,
    SQ_COL_HDRS,
    SQ_COL_CALLID,
    SQ_COL_N
} sq_col_t;

typedef struct sq_schema {
    gboolean notnull[SQ_COL_N];
} sq_schema_t;

/* MSILO_E* for an SQLite result code, with a detail made of @p what and the
 * connection's message (msilo_error_detail()). */
int sq_fail(sqlite3 *db, int rc, const char *what);

/* Opens the database named by a path or sqlite: URL with our pragmas (WAL,
 * synchronous=FULL, busy timeout). 0 or MSILO_ECONFIG / MSILO_ESTORE. */
int sq_open(const char *path_or_url, sqlite3 **ret_db);

/* "name" quoted as an SQL identifier (g_free). */
char *sq_ident(const char *name);

/* Creates or upgrades @p table inside one BEGIN IMMEDIATE transaction and
 * describes it. @p ret_changes and @p ret_schema may be NULL. */
int sq_migrate(sqlite3 *db, const char *table, size_t *ret_changes, sq_schema_t *ret_schema);

/* The global caps (sqlite-limit.c); guarded by the store's lock. */
typedef struct sq_limits {
    uint64_t max_messages, max_bytes; /* 0: none */
    bool valid;                       /* messages and bytes are the table's */
    int64_t data_version;             /* PRAGMA data_version they were counted at */
    uint64_t messages, bytes;
    char *table;                      /* unquoted, for the update hook */
    sqlite3_stmt *totals, *version;
} sq_limits_t;

/* Prepares the statements and sets the connection's update and rollback
 * hooks (@p l must stay where it is while @p db is open). */
int sq_limits_init(sq_limits_t *l, sqlite3 *db, const char *table, const char *quoted);
void sq_limits_clear(sq_limits_t *l);
/* Inside BEGIN IMMEDIATE: *ret_fits is whether @p m fits under the caps. */
int sq_limits_admit(sq_limits_t *l, sqlite3 *db, const msilo_message_t *m, bool *ret_fits);
/* @p m was inserted. */
void sq_limits_added(sq_limits_t *l, const msilo_message_t *m);
/* What @p m counts against max_bytes. */
uint64_t sq_limits_size(const msilo_message_t *m);
/* A message from the current row of @p st, whose columns are SELECT_COLS
 * (sqlite-store.c) in that order, the device last. */
msilo_message_t *sq_row_to_message(const sq_schema_t *schema, sqlite3_stmt *st);

/* ---- per-device delivery (sqlite-devices.c) ---- */

typedef struct sq_devices sq_devices_t;

/* Creates T_device and T_delivery for table @p table when missing (inside
 * sq_migrate()'s transaction); counts what it created in *changes. */
int sqd_migrate(sqlite3 *db, const char *table, size_t *changes);
/* Prepares the per-device statements of @p table on @p db. */
int sqd_new(sqlite3 *db, const char *table, sq_devices_t **ret);
void sqd_free(sq_devices_t *d);
/* Inside the caller's BEGIN IMMEDIATE: a claim with c->device, sorted by id. */
int sqd_claim(sq_devices_t *d, const sq_schema_t *schema, const msilo_store_claim_t *c,
              msilo_message_t ***ret_msgs, size_t *ret_n);
/* Inside a transaction: release() of one item with a device. */
int sqd_release(sq_devices_t *d, const msilo_store_release_t *it);
/* Inside a transaction: @p device has message @p id; *ret_deleted 1 when it went. */
int sqd_mark(sq_devices_t *d, const char *device, int64_t id, size_t *ret_deleted);
/* Inside a transaction: forget_devices(). */
int sqd_forget(sq_devices_t *d, int64_t seen_before, size_t *ret_n);
/* Inside a transaction: the per-device part of reset_leases(). */
int sqd_reset(sq_devices_t *d, const char *lease_owner, size_t *ret_n);

/* ---- the store's statements (sqlite-sql.c) ---- */

typedef enum {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_INSERT,
    Q_COUNT_OWNER,
    Q_COUNT_ALL,
    Q_CLAIM_OWNER,
    Q_CLAIM_REMINDERS,
    Q_REMOVE,
    Q_RELEASE,
    Q_EXPIRE,
    Q_LIST_OWNER,
    Q_LIST_ALL,
    Q_GET,
    Q_PURGE,
    Q_RESET,
    Q_BY_KEY,
    Q_TAKE_EXPIRED,
    Q_N
} query_t;

/* Columns read into a message, in this order (sqlite-store.c's row_to_message). */
#define SELECT_COLS                                                                        \
    "id, username, domain, src_addr, dst_addr, ctype, body, extra_hdrs, callid, "          \
    "inc_time, exp_time, snd_time, attempts, next_try, device"

/* Writes the text of every statement of table @p t (quoted) to @p sql
 * (g_free each). */
void sq_sql_build(char *sql[Q_N], const char *t);

#endif
