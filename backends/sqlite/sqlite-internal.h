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

#endif
