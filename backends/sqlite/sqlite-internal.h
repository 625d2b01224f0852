/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libmsilo-sqlite: opening a database and its schema, shared by
 * the store (sqlite-store.c) and the migration (sqlite-schema.c). */
#ifndef MSILO_SQLITE_INTERNAL_H
#define MSILO_SQLITE_INTERNAL_H

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

#endif
