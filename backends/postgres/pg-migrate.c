/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Schema creation and migration of a `silo` table.
 *
 * Everything happens in one transaction after an advisory lock, and each
 * change is decided from the catalog first, so a second run (or a run that
 * raced another) makes no change at all. Only additions: the Kamailio and
 * OpenSIPS modules keep reading and writing the table as before (their
 * INSERTs name their own columns; ours have defaults).
 */
#include "pg-internal.h"

#include <string.h>

typedef struct mig {
    PGconn *conn;
    char *t;                 /* quoted table */
    char *q[PG_COL_N];       /* quoted columns */
    size_t changes;
} mig_t;

static int exec(mig_t *m, const char *sql, const char *what)
{
    PGresult *r = PQexec(m->conn, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        return pg_result_fail(m->conn, r, what);
    PQclear(r);
    return 0;
}

/* A schema change: counted. */
static int change(mig_t *m, char *sql, const char *what)
{
    int e = exec(m, sql, what);
    g_free(sql);
    if (!e)
        m->changes++;
    return e;
}

static int create_table(mig_t *m)
{
    char *const *q = m->q;
    /* Kamailio's v8 columns with 64-bit id and times, unbounded VARCHARs (a
     * long URI or content type must not fail a whole batch), nullable
     * optional columns (NULL round-trips as NULL), and libmsilo's columns. */
    return change(m,
                  g_strdup_printf("CREATE TABLE IF NOT EXISTS %s ("
                                  "%s BIGSERIAL PRIMARY KEY, "
                                  "%s VARCHAR, "
                                  "%s VARCHAR, "
                                  "%s VARCHAR NOT NULL DEFAULT '', "
                                  "%s VARCHAR NOT NULL DEFAULT '', "
                                  "%s BIGINT NOT NULL DEFAULT 0, "
                                  "%s BIGINT NOT NULL DEFAULT 0, "
                                  "%s BIGINT NOT NULL DEFAULT 0, "
                                  "%s VARCHAR DEFAULT 'text/plain', "
                                  "%s BYTEA, "
                                  "%s TEXT, "
                                  "%s VARCHAR, "
                                  "status INTEGER NOT NULL DEFAULT 0, "
                                  "%s TEXT, "
                                  "%s BIGINT NOT NULL DEFAULT 0, "
                                  "%s INTEGER NOT NULL DEFAULT 0, "
                                  "%s BIGINT NOT NULL DEFAULT 0, "
                                  "%s TEXT, "
                                  "%s TEXT, "
                                  "%s TEXT)",
                                  m->t, q[PG_COL_ID], q[PG_COL_FROM], q[PG_COL_TO],
                                  q[PG_COL_USER], q[PG_COL_HOST], q[PG_COL_INC], q[PG_COL_EXP],
                                  q[PG_COL_SND], q[PG_COL_CTYPE], q[PG_COL_BODY], q[PG_COL_HDRS],
                                  q[PG_COL_CALLID], q[PG_COL_LEASE_OWNER],
                                  q[PG_COL_LEASE_UNTIL], q[PG_COL_ATTEMPTS],
                                  q[PG_COL_NEXT_TRY], q[PG_COL_KEY], q[PG_COL_DEVICE],
                                  q[PG_COL_LEASE_DEVICE]),
                  "creating the table");
}

/* Adds what an existing Kamailio or OpenSIPS msilo table lacks. */
static int upgrade_columns(mig_t *m, const pg_colinfo_t *info, const char *table_name,
                           const msilo_pg_options_t *o, unsigned flags)
{
    static const int msilo_module_cols[] = { PG_COL_ID,  PG_COL_FROM, PG_COL_TO,  PG_COL_USER,
                                       PG_COL_HOST, PG_COL_INC, PG_COL_EXP, PG_COL_SND,
                                       PG_COL_CTYPE, PG_COL_BODY };
    for (size_t i = 0; i < G_N_ELEMENTS(msilo_module_cols); i++)
        if (!info[msilo_module_cols[i]].present)
            return pg_fail(MSILO_ECONFIG,
                           "table %s has no column %s: not an msilo table (check sc_* names)",
                           table_name, pg_options_col(o, msilo_module_cols[i]));
    if (info[PG_COL_BODY].type != PG_OID_BYTEA)
        return pg_fail(MSILO_ECONFIG, "column %s of %s is not BYTEA",
                       pg_options_col(o, PG_COL_BODY), table_name);

    /* Constant defaults: PostgreSQL 11+ adds these without rewriting rows. */
    static const struct {
        int col;
        const char *decl;
    } add[] = {
        { PG_COL_HDRS, "TEXT" },
        { PG_COL_CALLID, "VARCHAR" },
        { PG_COL_LEASE_OWNER, "TEXT" },
        { PG_COL_LEASE_UNTIL, "BIGINT NOT NULL DEFAULT 0" },
        { PG_COL_ATTEMPTS, "INTEGER NOT NULL DEFAULT 0" },
        { PG_COL_NEXT_TRY, "BIGINT NOT NULL DEFAULT 0" },
        { PG_COL_KEY, "TEXT" },
        { PG_COL_DEVICE, "TEXT" }, /* the one device a message is for; NULL = every one */
        { PG_COL_LEASE_DEVICE, "TEXT" }, /* every_device: whose lease the lease columns are */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(add); i++) {
        if (info[add[i].col].present)
            continue;
        int e = change(m,
                       g_strdup_printf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s", m->t,
                                       m->q[add[i].col], add[i].decl),
                       "adding a column");
        if (e)
            return e;
    }

    /* Kamailio's VARCHAR(32) cuts real content types. Widening a VARCHAR
     * is a catalog change only (binary coercible, no rewrite). */
    const pg_colinfo_t *ct = &info[PG_COL_CTYPE];
    if (ct->type == PG_OID_VARCHAR && ct->typmod >= 4 && ct->typmod - 4 < 255) {
        int e = change(m,
                       g_strdup_printf("ALTER TABLE %s ALTER COLUMN %s TYPE VARCHAR(255)", m->t,
                                       m->q[PG_COL_CTYPE]),
                       "widening the content type column");
        if (e)
            return e;
    }

    /* 32-bit ids wrap (OpenSIPS even makes the sequence CYCLE). This one
     * rewrites the table, hence the flag to skip it. */
    if (!(flags & MSILO_PG_MIGRATE_KEEP_ID) &&
        (info[PG_COL_ID].type == PG_OID_INT4 || info[PG_COL_ID].type == PG_OID_INT2)) {
        int e = change(m,
                       g_strdup_printf("ALTER TABLE %s ALTER COLUMN %s TYPE BIGINT", m->t,
                                       m->q[PG_COL_ID]),
                       "widening the id column");
        if (e)
            return e;
    }
    return 0;
}

/* The sequence behind the id: 64-bit and no wrap-around once the column is
 * 64-bit. Decided from pg_sequence, so a second run leaves it alone. */
static int upgrade_sequence(mig_t *m, const char *id_name, unsigned flags)
{
    if (flags & MSILO_PG_MIGRATE_KEEP_ID)
        return 0;
    const char *params[2] = { m->t, id_name };
    PGresult *r = PQexecParams(
        m->conn,
        "SELECT s.seqrelid::regclass::text, s.seqtypid = 'int8'::regtype, s.seqcycle, "
        "s.seqmax = 9223372036854775807, "
        "(SELECT atttypid = 'int8'::regtype FROM pg_attribute "
        " WHERE attrelid = to_regclass($1::text) AND attname = $2::text) "
        "FROM pg_sequence s WHERE s.seqrelid = to_regclass(pg_get_serial_sequence($1::text, $2::text))",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return pg_result_fail(m->conn, r, "reading the id sequence");
    int e = 0;
    if (PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 4), "t") == 0 &&
        (strcmp(PQgetvalue(r, 0, 1), "t") != 0 || strcmp(PQgetvalue(r, 0, 2), "f") != 0 ||
         strcmp(PQgetvalue(r, 0, 3), "t") != 0)) {
        /* seqrelid::regclass::text is already quoted where needed. */
        e = change(m,
                   g_strdup_printf("ALTER SEQUENCE %s AS BIGINT MAXVALUE 9223372036854775807 "
                                   "NO CYCLE",
                                   PQgetvalue(r, 0, 0)),
                   "widening the id sequence");
    }
    PQclear(r);
    return e;
}

static int ensure_index(mig_t *m, const char *create, const char *table_name,
                        const char *suffix, const char *definition)
{
    /* Named after the table, cut so the name stays within 63 bytes
     * (PostgreSQL would cut it anyway, and then the existence check would
     * look for a different name). */
    char *base = g_strndup(table_name, 63 - strlen(suffix));
    char *name = g_strconcat(base, suffix, NULL);
    g_free(base);
    char *name_q = pg_ident(m->conn, name);
    g_free(name);
    if (!name_q)
        return MSILO_ECONFIG;
    /* The index lives in the table's schema; look it up there. */
    const char *params[2] = { m->t, name_q };
    PGresult *r = PQexecParams(
        m->conn,
        "SELECT 1 FROM pg_class i JOIN pg_class t ON t.relnamespace = i.relnamespace "
        "WHERE t.oid = to_regclass($1::text) AND i.oid = to_regclass($2::text)",
        2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        g_free(name_q);
        return pg_result_fail(m->conn, r, "looking for an index");
    }
    gboolean exists = PQntuples(r) > 0;
    PQclear(r);
    int e = 0;
    if (!exists)
        e = change(m, g_strdup_printf("%s IF NOT EXISTS %s ON %s %s", create, name_q, m->t,
                                      definition),
                   "creating an index");
    g_free(name_q);
    return e;
}

static int migrate(mig_t *m, const msilo_pg_options_t *o, unsigned flags)
{
    const char *table_name = pg_options_table(o);
    /* Serialise concurrent migrations of this table (two servers starting). */
    const char *params[1] = { table_name };
    PGresult *r = PQexecParams(m->conn,
                               "SELECT pg_advisory_xact_lock(hashtext('msilo-migrate'), "
                               "hashtext($1::text))",
                               1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return pg_result_fail(m->conn, r, "locking for migration");
    PQclear(r);

    gboolean exists;
    pg_colinfo_t info[PG_COL_N];
    int e = pg_describe(m->conn, m->t, o, &exists, info);
    if (e)
        return e;
    e = exists ? upgrade_columns(m, info, table_name, o, flags) : create_table(m);
    if (!e)
        e = upgrade_sequence(m, pg_options_col(o, PG_COL_ID), flags);
    char *const *q = m->q;
    char *def;
    /* Claims and counts of one owner, oldest first. */
    def = g_strdup_printf("(%s, %s, %s)", q[PG_COL_USER], q[PG_COL_HOST], q[PG_COL_ID]);
    if (!e)
        e = ensure_index(m, "CREATE INDEX", table_name, "_owner_id_idx", def);
    g_free(def);
    /* Expiry. */
    def = g_strdup_printf("(%s)", q[PG_COL_EXP]);
    if (!e)
        e = ensure_index(m, "CREATE INDEX", table_name, "_exp_idx", def);
    g_free(def);
    /* Due reminders: few rows have snd_time set, so a partial index. */
    def = g_strdup_printf("(%s) WHERE %s <> 0", q[PG_COL_SND], q[PG_COL_SND]);
    if (!e)
        e = ensure_index(m, "CREATE INDEX", table_name, "_snd_idx", def);
    g_free(def);
    /* Idempotent puts: one message per store key, the arbiter of put's
     * ON CONFLICT (NULLs never collide: the msilo modules' rows have none).
     * Built under the migration's lock: on a large table, run the migration
     * when stores can wait for it. */
    def = g_strdup_printf("(%s)", q[PG_COL_KEY]);
    if (!e)
        e = ensure_index(m, "CREATE UNIQUE INDEX", table_name, "_key_idx", def);
    g_free(def);
    /* Per-device delivery: the devices and deliveries tables (pg-devices.c). */
    if (!e)
        e = pg_devices_migrate(m->conn, table_name, m->t, m->q, &m->changes);
    return e;
}

int msilo_pg_migrate(const msilo_pg_options_t *opts, unsigned flags, size_t *ret_changes)
{
    if (!opts)
        return pg_fail(MSILO_EINVAL, "msilo_pg_migrate: opts is NULL");
    if (!opts->url)
        return pg_fail(MSILO_ECONFIG, "db_url is not set");
    mig_t m = { 0 };
    int e;
    m.conn = pg_connect(opts->url, &e);
    if (!m.conn)
        return e;
    m.t = pg_ident(m.conn, pg_options_table(opts));
    e = m.t ? 0 : MSILO_ECONFIG;
    for (int c = 0; !e && c < PG_COL_N; c++)
        if (!(m.q[c] = pg_ident(m.conn, pg_options_col(opts, c))))
            e = MSILO_ECONFIG;
    if (!e)
        e = exec(&m, "BEGIN", "starting the migration");
    /* ALTER TABLE queues for an exclusive lock, and every query of the
     * running servers would queue behind it: give up instead of stalling
     * production when the table stays busy. */
    if (!e)
        e = exec(&m, "SET LOCAL lock_timeout = '10s'", "starting the migration");
    if (!e) {
        e = migrate(&m, opts, flags);
        if (!e)
            e = exec(&m, "COMMIT", "committing the migration");
        else
            PQclear(PQexec(m.conn, "ROLLBACK"));
    }
    if (!e && ret_changes)
        *ret_changes = m.changes;
    g_free(m.t);
    for (int c = 0; c < PG_COL_N; c++)
        g_free(m.q[c]);
    PQfinish(m.conn);
    return e;
}
