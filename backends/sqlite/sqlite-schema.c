/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Opening an SQLite database, and creating or upgrading the silo table.
 *
 * The table has the PostgreSQL store's column names, which are those of the
 * Kamailio/OpenSIPS schema, so a Kamailio/OpenSIPS SQLite table (Kamailio supports
 * db_sqlite) works after the same additive migration as on PostgreSQL.
 */
#include "sqlite-internal.h"

#include <string.h>

int sq_fail(sqlite3 *db, int rc, const char *what)
{
    int code;
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        code = MSILO_ENOMEM;
        break;
    case SQLITE_TOOBIG:
        code = MSILO_ETOOBIG;
        break;
    default:
        /* Busy after the timeout, I/O errors, a full disk, a corrupt file:
         * the store is unusable for now, as a database that is down. */
        code = MSILO_ESTORE;
        break;
    }
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_INTERRUPT)
        msg = "interrupted (msilo_store_interrupt(): the store takes no more calls)";
    return msilo_store_fail(code, "%s: %s", what, msg);
}

char *sq_ident(const char *name)
{
    GString *s = g_string_new("\"");
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            g_string_append_c(s, '"');
        g_string_append_c(s, *p);
    }
    g_string_append_c(s, '"');
    return g_string_free(s, FALSE);
}

/* The file name behind @p in: g_malloc'd, or NULL with a detail. */
static char *location_to_path(const char *in, int *ret_err)
{
    *ret_err = MSILO_ECONFIG;
    if (!*in) {
        msilo_store_fail(MSILO_ECONFIG, "empty SQLite location");
        return NULL;
    }
    if (strcmp(in, ":memory:") == 0)
        return g_strdup(in);
    if (g_ascii_strncasecmp(in, "sqlite:", 7) != 0) {
        /* A URL of another kind (postgres://...) is a configuration error,
         * not a file name with a colon in it. */
        const char *sep = strstr(in, "://");
        if (sep && sep > in && strspn(in, "abcdefghijklmnopqrstuvwxyz"
                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-") ==
                                   (size_t)(sep - in)) {
            msilo_store_fail(MSILO_ECONFIG, "'%.*s:' is not an SQLite URL", (int)(sep - in), in);
            return NULL;
        }
        return g_strdup(in);
    }
    const char *rest = in + 7;
    if (strncmp(rest, "//", 2) == 0) {
        rest += 2;
        /* sqlite:///abs/path (empty host) or sqlite://localhost/abs/path */
        if (g_ascii_strncasecmp(rest, "localhost/", 10) == 0)
            rest += 9;
        else if (*rest != '/' && strcmp(rest, ":memory:") != 0) {
            msilo_store_fail(MSILO_ECONFIG,
                             "SQLite URL '%s' names a host: use sqlite:///absolute/path", in);
            return NULL;
        }
    }
    if (!*rest) {
        msilo_store_fail(MSILO_ECONFIG, "SQLite URL '%s' has no path", in);
        return NULL;
    }
    /* Query strings are not ours to interpret: refuse rather than create a
     * file named "x.db?mode=ro". */
    if (strchr(rest, '?') || strchr(rest, '#')) {
        msilo_store_fail(MSILO_ECONFIG, "SQLite URL '%s' has a query or fragment", in);
        return NULL;
    }
    char *path = g_uri_unescape_string(rest, NULL);
    if (!path || !*path) {
        g_free(path);
        msilo_store_fail(MSILO_ECONFIG, "SQLite URL '%s' has a bad escape", in);
        return NULL;
    }
    return path;
}

static int exec(sqlite3 *db, const char *sql, const char *what)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sq_fail(db, rc, what);
}

int sq_open(const char *path_or_url, sqlite3 **ret_db)
{
    int e;
    char *path = location_to_path(path_or_url, &e);
    if (!path)
        return e;
    sqlite3 *db = NULL;
    /* NOMUTEX: the store serialises calls on its own mutex. */
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        e = msilo_store_fail(MSILO_ESTORE, "cannot open SQLite database %s: %s", path,
                             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close_v2(db);
        g_free(path);
        return e;
    }
    g_free(path);
    sqlite3_busy_timeout(db, SQ_BUSY_TIMEOUT_MS);
    /* WAL: readers (count, list) never block the writer and a commit is one
     * append + fsync of the log instead of a rewrite of the pages.
     * synchronous=FULL: with WAL, NORMAL only syncs at checkpoints, so the
     * last transactions may be lost on a power cut (never corrupted). A put
     * that returned 0 was acknowledged to the sender: FULL keeps it. The
     * cost is one fsync per commit, which put batches amortise. */
    e = exec(db, "PRAGMA journal_mode=WAL", "opening the SQLite database");
    if (!e)
        e = exec(db, "PRAGMA synchronous=FULL", "opening the SQLite database");
    /* the per-device tables' ON DELETE CASCADE (sqlite-devices.c) */
    if (!e)
        e = exec(db, "PRAGMA foreign_keys=ON", "opening the SQLite database");
    if (e) {
        sqlite3_close_v2(db);
        return e;
    }
    *ret_db = db;
    return 0;
}

/* ---- schema ---- */

typedef struct col_state {
    gboolean present;
    gboolean notnull;
} col_state_t;

static const char *const msilo_module_cols[] = { "id",       "src_addr", "dst_addr", "username",
                                           "domain",   "inc_time", "exp_time", "snd_time",
                                           "ctype",    "body" };

static const struct {
    const char *name;
    const char *decl;
} added_cols[] = {
    { "extra_hdrs", "TEXT" },
    { "callid", "TEXT" },
    { "lease_owner", "TEXT" },
    { "lease_until", "INTEGER NOT NULL DEFAULT 0" },
    { "attempts", "INTEGER NOT NULL DEFAULT 0" },
    { "next_try", "INTEGER NOT NULL DEFAULT 0" },
    { "msg_key", "TEXT" },
    { "device", "TEXT" }, /* the one device a message is for; NULL = every device */
};

/* Reads the table's columns into @p cols (name -> col_state_t*, owned). */
static int describe(sqlite3 *db, const char *table, GHashTable *cols)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT name, \"notnull\" FROM pragma_table_info(?1)", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(db, rc, "describing the table");
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    g_hash_table_remove_all(cols);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        col_state_t *c = g_new0(col_state_t, 1);
        c->present = TRUE;
        c->notnull = sqlite3_column_int(st, 1) != 0;
        /* SQLite column names compare case-insensitively. */
        g_hash_table_insert(cols, g_ascii_strdown((const char *)sqlite3_column_text(st, 0), -1),
                            c);
    }
    int e = rc == SQLITE_DONE ? 0 : sq_fail(db, rc, "describing the table");
    sqlite3_finalize(st);
    return e;
}

static int change(sqlite3 *db, char *sql, const char *what, size_t *changes)
{
    int e = exec(db, sql, what);
    g_free(sql);
    if (!e)
        (*changes)++;
    return e;
}

static int index_exists(sqlite3 *db, const char *name, gboolean *ret)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(db, rc, "looking for an index");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int e = 0;
    if (rc == SQLITE_ROW)
        *ret = TRUE;
    else if (rc == SQLITE_DONE)
        *ret = FALSE;
    else
        e = sq_fail(db, rc, "looking for an index");
    sqlite3_finalize(st);
    return e;
}

static int ensure_index_kind(sqlite3 *db, const char *create, const char *table,
                             const char *table_q, const char *suffix, const char *definition,
                             size_t *changes)
{
    char *name = g_strconcat(table, suffix, NULL);
    gboolean exists = FALSE;
    int e = index_exists(db, name, &exists);
    if (!e && !exists) {
        char *name_q = sq_ident(name);
        e = change(db,
                   g_strdup_printf("%s IF NOT EXISTS %s ON %s %s", create, name_q, table_q,
                                   definition),
                   "creating an index", changes);
        g_free(name_q);
    }
    g_free(name);
    return e;
}

static int ensure_index(sqlite3 *db, const char *table, const char *table_q, const char *suffix,
                        const char *definition, size_t *changes)
{
    return ensure_index_kind(db, "CREATE INDEX", table, table_q, suffix, definition, changes);
}

static int migrate_in_tx(sqlite3 *db, const char *table, const char *table_q, size_t *changes,
                         GHashTable *cols)
{
    int e = describe(db, table, cols);
    if (e)
        return e;
    if (g_hash_table_size(cols) == 0) {
        /* AUTOINCREMENT: ids are never reused, even after the newest
         * message was deleted (the engine and the admin tool name messages
         * by id). Times are INTEGER (64-bit in SQLite). Optional strings are
         * nullable, so NULL round-trips as NULL. */
        e = change(db,
                   g_strdup_printf("CREATE TABLE %s ("
                                   "id INTEGER PRIMARY KEY AUTOINCREMENT, "
                                   "src_addr TEXT, "
                                   "dst_addr TEXT, "
                                   "username TEXT NOT NULL DEFAULT '', "
                                   "domain TEXT NOT NULL DEFAULT '', "
                                   "inc_time INTEGER NOT NULL DEFAULT 0, "
                                   "exp_time INTEGER NOT NULL DEFAULT 0, "
                                   "snd_time INTEGER NOT NULL DEFAULT 0, "
                                   "ctype TEXT DEFAULT 'text/plain', "
                                   "body BLOB, "
                                   "extra_hdrs TEXT, "
                                   "callid TEXT, "
                                   "status INTEGER NOT NULL DEFAULT 0, "
                                   "lease_owner TEXT, "
                                   "lease_until INTEGER NOT NULL DEFAULT 0, "
                                   "attempts INTEGER NOT NULL DEFAULT 0, "
                                   "next_try INTEGER NOT NULL DEFAULT 0, "
                                   "msg_key TEXT, "
                                   "device TEXT)",
                                   table_q),
                   "creating the table", changes);
    } else {
        for (size_t i = 0; i < G_N_ELEMENTS(msilo_module_cols); i++)
            if (!g_hash_table_contains(cols, msilo_module_cols[i]))
                return msilo_store_fail(MSILO_ECONFIG,
                                        "table %s has no column %s: not an msilo table", table,
                                        msilo_module_cols[i]);
        for (size_t i = 0; !e && i < G_N_ELEMENTS(added_cols); i++)
            if (!g_hash_table_contains(cols, added_cols[i].name))
                e = change(db,
                           g_strdup_printf("ALTER TABLE %s ADD COLUMN %s %s", table_q,
                                           added_cols[i].name, added_cols[i].decl),
                           "adding a column", changes);
    }
    if (e)
        return e;
    /* An owner's messages, oldest first (claim, count, list, purge). */
    e = ensure_index(db, table, table_q, "_owner_id_idx", "(username, domain, id)", changes);
    /* Expiry. */
    if (!e)
        e = ensure_index(db, table, table_q, "_exp_idx", "(exp_time)", changes);
    /* Due reminders: few rows have one, hence a partial index; the claim
     * says "snd_time <> 0" literally so the planner can use it. */
    if (!e)
        e = ensure_index(db, table, table_q, "_snd_idx", "(snd_time) WHERE snd_time <> 0",
                         changes);
    /* Idempotent puts: one message per store key (NULLs never collide). */
    if (!e)
        e = ensure_index_kind(db, "CREATE UNIQUE INDEX", table, table_q, "_key_idx", "(msg_key)",
                              changes);
    /* per-device delivery: its two tables (sqlite-devices.c) */
    if (!e)
        e = sqd_migrate(db, table, changes);
    if (!e)
        e = describe(db, table, cols);
    return e;
}

int sq_migrate(sqlite3 *db, const char *table, size_t *ret_changes, sq_schema_t *ret_schema)
{
    char *table_q = sq_ident(table);
    GHashTable *cols = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    size_t changes = 0;
    /* IMMEDIATE: two processes opening a new file at once serialise here,
     * and the second sees the first one's table. */
    int e = exec(db, "BEGIN IMMEDIATE", "starting the migration");
    if (!e) {
        e = migrate_in_tx(db, table, table_q, &changes, cols);
        if (!e)
            e = exec(db, "COMMIT", "committing the migration");
        if (e && !sqlite3_get_autocommit(db))
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    if (!e && ret_schema) {
        static const char *const names[SQ_COL_N] = {
            [SQ_COL_FROM] = "src_addr", [SQ_COL_TO] = "dst_addr", [SQ_COL_CTYPE] = "ctype",
            [SQ_COL_HDRS] = "extra_hdrs", [SQ_COL_CALLID] = "callid",
        };
        for (int c = 0; c < SQ_COL_N; c++) {
            const col_state_t *st = g_hash_table_lookup(cols, names[c]);
            ret_schema->notnull[c] = st && st->notnull;
        }
    }
    if (!e && ret_changes)
        *ret_changes = changes;
    g_hash_table_unref(cols);
    g_free(table_q);
    return e;
}

int msilo_sqlite_migrate(const char *path_or_url, const char *table, size_t *ret_changes)
{
    if (!path_or_url)
        return msilo_store_fail(MSILO_EINVAL, "msilo_sqlite_migrate: no database");
    if (table && !*table)
        return msilo_store_fail(MSILO_ECONFIG, "empty table name");
    sqlite3 *db = NULL;
    int e = sq_open(path_or_url, &db);
    if (e)
        return e;
    e = sq_migrate(db, table ? table : SQ_DEFAULT_TABLE, ret_changes, NULL);
    sqlite3_close_v2(db);
    return e;
}
