/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Connection, error detail, catalog lookup and binary parameter encoding. */
#include "pg-internal.h"

#include <stdarg.h>
#include <string.h>

/* ---- error detail ---- */

/* libmsilo-postgres links libmsilo (meson.build), so its details go where
 * every backend's go: libmsilo's thread-local msilo_error_detail(), through
 * msilo_store_fail() (which also makes libpq's multi-line messages one line). */
int pg_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    msilo_store_fail(code, "%s", s);
    g_free(s);
    return code;
}

/* Deprecated (msilo/postgres.h): kept for the ABI. */
const char *msilo_pg_error_detail(void)
{
    return msilo_error_detail();
}

/* ---- connection strings for people: is there a password, and masked ---- */

int msilo_pg_conninfo_has_password(const char *conninfo)
{
    if (!conninfo)
        return 0;
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (!opts)
        return 1;
    int found = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
            found = 1;
    PQconninfoFree(opts);
    return found;
}

char *msilo_pg_conninfo_mask(const char *conninfo)
{
    if (!conninfo)
        return g_strdup("(unset)");
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (!opts)
        return g_strdup("(unparsable conninfo)");
    GString *out = g_string_new(NULL);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        /* libpq marks secret options with dispchar '*' (password, and
         * whatever later versions add); their values never appear */
        gboolean secret = strcmp(o->keyword, "password") == 0 ||
                          (o->dispchar && o->dispchar[0] == '*');
        g_string_append_printf(out, "%s%s=", out->len ? " " : "", o->keyword);
        if (secret) {
            g_string_append(out, "***");
            continue;
        }
        /* quoted as conninfo quotes: a value with a space or quote stays one value */
        gboolean quote = !o->val[0] || strpbrk(o->val, " \'") != NULL;
        if (quote)
            g_string_append_c(out, '\'');
        for (const char *c = o->val; *c; c++) {
            if (*c == '\'' || *c == '\\')
                g_string_append_c(out, '\\');
            g_string_append_c(out, *c);
        }
        if (quote)
            g_string_append_c(out, '\'');
    }
    PQconninfoFree(opts);
    return g_string_free(out, FALSE);
}

/* ---- connection ---- */

/* libpq prints notices (e.g. "relation ... already exists, skipping") on
 * stderr by default; a library must not print. */
static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *pg_connect(const char *url, int *ret_err)
{
    /* Parse first so that a typo is a configuration error, not an outage. */
    char *perr = NULL;
    PQconninfoOption *parsed = PQconninfoParse(url, &perr);
    if (!parsed) {
        *ret_err = pg_fail(MSILO_ECONFIG, "db_url does not parse: %s",
                           perr ? perr : "out of memory");
        PQfreemem(perr);
        return NULL;
    }
    PQconninfoFree(parsed);

    /* Keywords before dbname are defaults the URL may override; those after
     * it are forced (the binary text parameters we send are UTF-8). */
    /* Keepalives and tcp_user_timeout turn a silently dead peer (a cable
     * pulled, a failover) into an error within about a minute instead of
     * the kernel's two hours. */
    const char *const kw[] = { "connect_timeout", "application_name", "keepalives",
                               "keepalives_idle", "keepalives_interval", "keepalives_count",
                               "tcp_user_timeout", "dbname", "client_encoding", NULL };
    const char *const val[] = { "10", "libmsilo", "1", "30", "10", "3", "60000", url, "UTF8",
                                NULL };
    PGconn *conn = PQconnectdbParams(kw, val, 1);
    if (!conn) {
        *ret_err = pg_fail(MSILO_ENOMEM, "libpq: out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        *ret_err = pg_fail(MSILO_ESTORE, "cannot connect to PostgreSQL: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, quiet_notices, NULL);
    /* Generic plans for our prepared statements. Every query is an index
     * lookup whose best plan does not depend on the values; custom plans made
     * the planner probe the ends of the exp_time index on every claim
     * (get_actual_variable_range) whenever the values fall outside the
     * table's statistics - always, right after a burst of stores - and a
     * claim took ~6 ms instead of ~0.2 ms (bench/postgres, before ANALYZE).
     * A generic plan is made at a statement's first run, often while its
     * tables are empty or tiny (a fresh installation, the per-device tables
     * filling as devices register), where a sequential scan is cheapest, and
     * kept while the table grows: the mark's look at the owner's other
     * devices scanned the whole device table once per message (33 of its
     * 41 ms for 639 messages, bench/postgres --deliver-to every_device).
     * enable_seqscan = off makes such plans take the index that every one
     * of these statements has; a table without one is still scanned. Such a
     * plan's cost (seq scans cost 1e10 more) is far above jit_above_cost, and
     * JIT compiled the device forget (0.5 ms of work) for 374 ms: no JIT for
     * statements this short. A plan a table's growth made wrong is replaced
     * anyway once autovacuum analyses the table (PostgreSQL replans prepared
     * statements whose tables' statistics changed). */
    PGresult *r = PQexec(conn, "SET plan_cache_mode = force_generic_plan; "
                               "SET enable_seqscan = off; SET enable_bitmapscan = off; "
                               "SET jit = off");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        *ret_err = pg_result_fail(conn, r, "setting plan_cache_mode");
        PQfinish(conn);
        return NULL;
    }
    PQclear(r);
    *ret_err = 0;
    return conn;
}

char *pg_ident(PGconn *conn, const char *name)
{
    char *q = PQescapeIdentifier(conn, name, strlen(name));
    if (!q) {
        pg_fail(MSILO_ECONFIG, "bad identifier: %s", PQerrorMessage(conn));
        return NULL;
    }
    char *r = g_strdup(q);
    PQfreemem(q);
    return r;
}

int pg_result_fail(PGconn *conn, PGresult *res, const char *what)
{
    const char *msg = res ? PQresultErrorMessage(res) : "";
    if (!msg || !*msg)
        msg = PQerrorMessage(conn);
    int r = pg_fail(MSILO_ESTORE, "%s: %s", what, msg && *msg ? msg : "unknown error");
    PQclear(res);
    return r;
}

int pg_describe(PGconn *conn, const char *table_q, const msilo_pg_options_t *o,
                gboolean *ret_exists, pg_colinfo_t info[PG_COL_N])
{
    /* to_regclass() resolves the quoted name as the queries will, through the
     * search_path; NULL when there is no such table. */
    static const char sql[] =
        "SELECT c.oid IS NOT NULL, a.attname, a.atttypid::int8, a.atttypmod, a.attnotnull "
        "FROM (SELECT to_regclass($1::text)::oid AS oid) c "
        "LEFT JOIN pg_catalog.pg_attribute a "
        "ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped";
    const char *params[1] = { table_q };
    PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return pg_result_fail(conn, res, "reading the table's columns");
    memset(info, 0, sizeof(pg_colinfo_t) * PG_COL_N);
    *ret_exists = PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    for (int i = 0; *ret_exists && i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, 1))
            continue;
        const char *name = PQgetvalue(res, i, 1);
        for (int c = 0; c < PG_COL_N; c++) {
            /* Columns are matched as PostgreSQL stores them: a configured
             * name is quoted as given, so it must match exactly. */
            if (strcmp(name, pg_options_col(o, c)) != 0)
                continue;
            info[c].present = TRUE;
            info[c].type = (unsigned)g_ascii_strtoull(PQgetvalue(res, i, 2), NULL, 10);
            info[c].typmod = (int)g_ascii_strtoll(PQgetvalue(res, i, 3), NULL, 10);
            info[c].notnull = strcmp(PQgetvalue(res, i, 4), "t") == 0;
        }
    }
    PQclear(res);
    return 0;
}

int pg_inspect(PGconn *conn, const char *table_q, const msilo_pg_options_t *o,
               pg_colinfo_t info[PG_COL_N], char **ret_seq_oid)
{
    gboolean exists;
    int e = pg_describe(conn, table_q, o, &exists, info);
    if (e)
        return e;
    if (!exists)
        return pg_fail(MSILO_ECONFIG, "table %s does not exist (run msilo-admin migrate)", table_q);
    GString *missing = g_string_new(NULL);
    for (int c = 0; c < PG_COL_N; c++)
        if (!info[c].present)
            g_string_append_printf(missing, "%s%s", missing->len ? ", " : "",
                                   pg_options_col(o, c));
    if (missing->len) {
        e = pg_fail(MSILO_ECONFIG, "table %s lacks column(s) %s (run msilo-admin migrate)",
                    table_q, missing->str);
        g_string_free(missing, TRUE);
        return e;
    }
    g_string_free(missing, TRUE);
    if (info[PG_COL_BODY].type != PG_OID_BYTEA)
        return pg_fail(MSILO_ECONFIG, "column %s of %s is not BYTEA",
                       pg_options_col(o, PG_COL_BODY), table_q);

    /* put allocates ids itself (to map them to batch positions), from the
     * sequence behind the id column (SERIAL in both msilo modules' schemas). */
    const char *params[2] = { table_q, pg_options_col(o, PG_COL_ID) };
    PGresult *r = PQexecParams(conn, "SELECT pg_get_serial_sequence($1::text, $2::text)::regclass::oid", 2,
                               NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return pg_result_fail(conn, r, "finding the id sequence");
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
        PQclear(r);
        return pg_fail(MSILO_ECONFIG, "column %s of %s has no sequence (it must be SERIAL)",
                       pg_options_col(o, PG_COL_ID), table_q);
    }
    *ret_seq_oid = g_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* ---- binary parameters ---- */

static void put_be32(GByteArray *b, uint32_t v)
{
    uint32_t be = GUINT32_TO_BE(v);
    g_byte_array_append(b, (const guint8 *)&be, 4);
}

static void put_be64(GByteArray *b, uint64_t v)
{
    uint64_t be = GUINT64_TO_BE(v);
    g_byte_array_append(b, (const guint8 *)&be, 8);
}

static void params_add(pg_params_t *p, GByteArray *buf, const char *value, int len, int format)
{
    g_assert(p->n < PG_MAX_PARAMS);
    p->bufs[p->n] = buf;
    p->values[p->n] = buf ? (const char *)buf->data : value;
    p->lengths[p->n] = len;
    p->formats[p->n] = format;
    p->n++;
}

void pg_params_text(pg_params_t *p, const char *s)
{
    /* Text format: libpq sends the C string; NULL pointer = SQL NULL. */
    params_add(p, NULL, s, 0, 0);
}

void pg_params_int8(pg_params_t *p, int64_t v)
{
    GByteArray *b = g_byte_array_sized_new(8);
    put_be64(b, (uint64_t)v);
    params_add(p, b, NULL, 8, 1);
}

void pg_params_array(pg_params_t *p, pg_array_t *a)
{
    params_add(p, a->buf, NULL, (int)a->buf->len, 1);
    a->buf = NULL;
}

void pg_params_clear(pg_params_t *p)
{
    for (int i = 0; i < p->n; i++)
        if (p->bufs[i])
            g_byte_array_unref(p->bufs[i]);
    memset(p, 0, sizeof(*p));
}

/* Binary array format (array_recv): ndim, has-null flag, element type, then
 * per dimension (size, lower bound), then each element as length (-1 = NULL)
 * and bytes. The server ignores the has-null flag's value beyond 0/1. */
void pg_array_init(pg_array_t *a, unsigned elem_oid, size_t n)
{
    a->buf = g_byte_array_new();
    put_be32(a->buf, n ? 1 : 0);
    put_be32(a->buf, 0);
    put_be32(a->buf, elem_oid);
    if (n) {
        put_be32(a->buf, (uint32_t)n);
        put_be32(a->buf, 1);
    }
}

void pg_array_bytes(pg_array_t *a, const void *data, size_t len)
{
    put_be32(a->buf, (uint32_t)len);
    if (len)
        g_byte_array_append(a->buf, data, (guint)len);
}

void pg_array_text(pg_array_t *a, const char *s)
{
    if (!s)
        put_be32(a->buf, UINT32_MAX); /* -1: NULL */
    else
        pg_array_bytes(a, s, strlen(s));
}

void pg_array_int8(pg_array_t *a, int64_t v)
{
    put_be32(a->buf, 8);
    put_be64(a->buf, (uint64_t)v);
}

void pg_array_bool(pg_array_t *a, gboolean v)
{
    guint8 b = v ? 1 : 0;
    put_be32(a->buf, 1);
    g_byte_array_append(a->buf, &b, 1);
}

int64_t pg_get_int8(const PGresult *r, int row, int col)
{
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    if (PQgetlength(r, row, col) != 8)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return (int64_t)v;
}
