/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PostgreSQL store tests beyond the conformance suite: the msilo modules' existing
 * tables, migration, SQL injection, concurrent claimers, leases, quotas and a
 * real outage (the server is stopped and started inside the test).
 *
 * Needs MSILO_TEST_PG_URL (scripts/pg-test-cluster run -- meson test ...);
 * the outage test also MSILO_TEST_PG_CTL and MSILO_TEST_PG_DATA.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg-test-util.h"

#define NOW 1700000000

/* ---- helpers ---- */

static msilo_message_t *mk(const char *user, const char *domain, const char *body)
{
    msilo_message_t *m = msilo_message_new();
    m->user = g_strdup(user);
    m->domain = g_strdup(domain);
    m->src = g_strdup_printf("sip:from-%s@example.org", user);
    m->dst = g_strdup_printf("sip:%s@%s", user, domain);
    m->ctype = g_strdup("text/plain;charset=UTF-8");
    if (body) {
        m->body_len = strlen(body);
        m->body = g_memdup2(body, m->body_len);
    }
    m->inc_time = NOW;
    m->exp_time = NOW + 3600;
    return m;
}

/* Puts one message; returns its id. */
static int64_t put1(msilo_store_t *s, msilo_message_t *m)
{
    int res = 99;
    assert_int_equal(msilo_store_put(s, &m, 1, 0, &res), 0);
    assert_int_equal(res, 0);
    assert_true(m->id > 0);
    return m->id;
}

static msilo_store_claim_t owner_claim(const char *user, const char *domain, int64_t now,
                                       const char *lease_owner, size_t max)
{
    msilo_store_claim_t c = {
        .user = user,
        .domain = domain,
        .reminders = 0,
        .now = now,
        .max_next_try = INT64_MAX,
        .lease_owner = lease_owner,
        .lease_until = now + 30,
        .max = max,
    };
    return c;
}

static void assert_str_eq_null(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void assert_msg_equal(const msilo_message_t *a, const msilo_message_t *b)
{
    assert_int_equal(a->id, b->id);
    assert_string_equal(a->user, b->user);
    assert_string_equal(a->domain, b->domain);
    assert_str_eq_null(a->src, b->src);
    assert_str_eq_null(a->dst, b->dst);
    assert_str_eq_null(a->ctype, b->ctype);
    assert_int_equal(a->body_len, b->body_len);
    if (a->body_len)
        assert_memory_equal(a->body, b->body, a->body_len);
    assert_str_eq_null(a->extra_hdrs, b->extra_hdrs);
    assert_str_eq_null(a->callid, b->callid);
    assert_int_equal(a->inc_time, b->inc_time);
    assert_int_equal(a->exp_time, b->exp_time);
    assert_int_equal(a->snd_time, b->snd_time);
    assert_int_equal(a->attempts, b->attempts);
    assert_int_equal(a->next_try, b->next_try);
}

static msilo_store_t *open_store(const char *table)
{
    msilo_pg_options_t *o = pgt_options(table);
    msilo_store_t *s = NULL;
    int e = msilo_pg_store_new(&s, o);
    if (e)
        fprintf(stderr, "msilo_pg_store_new: %s: %s\n", msilo_strerror(e),
                msilo_error_detail());
    assert_int_equal(e, 0);
    assert_int_equal(msilo_store_check(s), 0);
    msilo_pg_options_free(o);
    return s;
}

static size_t migrate(const char *table, unsigned flags)
{
    msilo_pg_options_t *o = pgt_options(table);
    size_t changes = 999;
    int e = msilo_pg_migrate(o, flags, &changes);
    if (e)
        fprintf(stderr, "msilo_pg_migrate: %s: %s\n", msilo_strerror(e), msilo_error_detail());
    assert_int_equal(e, 0);
    msilo_pg_options_free(o);
    return changes;
}

/* A fresh migrated table and a store on it. */
typedef struct fixture {
    PGconn *conn;
    char *table;
    msilo_store_t *store;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = g_new0(fixture_t, 1);
    f->conn = pgt_connect();
    f->table = pgt_table_name("t");
    migrate(f->table, 0);
    f->store = open_store(f->table);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    msilo_store_free(f->store);
    pgt_drop(f->conn, f->table);
    PQfinish(f->conn);
    g_free(f->table);
    g_free(f);
    return 0;
}

/* A schema fingerprint: columns with types, indexes, the table's file (a
 * rewrite changes it) and the id sequence's definition. */
static char *schema_snapshot(PGconn *c, const char *table)
{
    char *q = PQescapeLiteral(c, table, strlen(table));
    char *sql = g_strdup_printf(
        "SELECT (SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod) || ':' || "
        "attnotnull || ':' || coalesce(pg_get_expr(d.adbin, d.adrelid), ''), ',' ORDER BY attnum) "
        " FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        " WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped) || '|' || "
        "(SELECT string_agg(pg_get_indexdef(indexrelid), ',' ORDER BY indexrelid) FROM pg_index "
        " WHERE indrelid = c.oid) || '|' || c.relfilenode || '|' || "
        "coalesce((SELECT s.seqtypid::regtype || ':' || s.seqmax || ':' || s.seqcycle FROM pg_sequence s "
        " WHERE s.seqrelid = pg_get_serial_sequence(quote_ident(c.relname), 'id')::regclass), '') "
        "FROM pg_class c WHERE c.relname = %s",
        q);
    char *v = pgt_value(c, sql);
    g_free(sql);
    PQfreemem(q);
    assert_non_null(v);
    return v;
}

/* ---- round trip ---- */

static void test_roundtrip(void **state)
{
    fixture_t *f = *state;
    msilo_message_t *m[3];
    m[0] = mk("alice", "example.com", "hello");
    /* NUL bytes, invalid UTF-8, 64 KiB. */
    m[1] = mk("alice", "example.com", NULL);
    m[1]->body_len = 65536;
    m[1]->body = g_malloc(m[1]->body_len);
    for (size_t i = 0; i < m[1]->body_len; i++)
        ((unsigned char *)m[1]->body)[i] = (unsigned char)(i * 7 + (i >> 8));
    g_free(m[1]->ctype);
    m[1]->ctype = g_strdup("application/vnd.gsma.rcs-ft-http+xml;charset=UTF-8");
    m[1]->extra_hdrs = g_strdup("P-Asserted-Identity: <sip:a@b>\r\nPrivacy: id\r\n");
    m[1]->callid = g_strdup("abc@10.0.0.1");
    m[1]->snd_time = 0;
    m[1]->attempts = 2;
    m[1]->next_try = NOW - 5;
    /* Empty body, NULL content type and NULL optional fields. */
    m[2] = mk("alice", "example.com", NULL);
    g_free(m[2]->ctype);
    m[2]->ctype = NULL;
    g_free(m[2]->src);
    m[2]->src = NULL;

    int res[3] = { 9, 9, 9 };
    assert_int_equal(msilo_store_put(f->store, m, 3, 0, res), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(res[i], 0);
    assert_true(m[0]->id < m[1]->id && m[1]->id < m[2]->id);

    int64_t n = -1;
    assert_int_equal(msilo_store_count(f->store, "alice", "example.com", &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(msilo_store_count(f->store, NULL, NULL, &n), 0);
    assert_int_equal(n, 3);

    for (int i = 0; i < 3; i++) {
        msilo_message_t *g = NULL;
        assert_int_equal(msilo_store_get(f->store, m[i]->id, &g), 0);
        assert_msg_equal(g, m[i]);
        msilo_message_free(g);
    }
    msilo_message_t *g = NULL;
    assert_int_equal(msilo_store_get(f->store, 999999, &g), MSILO_ENOTFOUND);
    assert_null(g);

    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW, "me", 10);
    msilo_message_t **got = NULL;
    size_t ng = 0;
    assert_int_equal(msilo_store_claim(f->store, &c, &got, &ng), 0);
    assert_int_equal(ng, 3);
    for (int i = 0; i < 3; i++)
        assert_msg_equal(got[i], m[i]);
    msilo_message_array_free(got, ng);

    msilo_message_t **l = NULL;
    size_t nl = 0;
    assert_int_equal(msilo_store_list(f->store, "alice", "example.com", m[0]->id, 1, &l, &nl), 0);
    assert_int_equal(nl, 1);
    assert_int_equal(l[0]->id, m[1]->id);
    msilo_message_array_free(l, nl);
    assert_int_equal(msilo_store_list(f->store, NULL, NULL, 0, 100, &l, &nl), 0);
    assert_int_equal(nl, 3);
    msilo_message_array_free(l, nl);

    int64_t ids[3] = { m[0]->id, m[2]->id, 123456789 };
    size_t del = 0;
    assert_int_equal(msilo_store_remove(f->store, ids, 3, &del), 0);
    assert_int_equal(del, 2);
    assert_int_equal(msilo_store_count(f->store, "alice", "example.com", &n), 0);
    assert_int_equal(n, 1);
    for (int i = 0; i < 3; i++)
        msilo_message_free(m[i]);
}

static void test_quota(void **state)
{
    fixture_t *f = *state;
    msilo_message_t *m[6];
    const char *owners[6] = { "a", "b", "a", "a", "b", "a" };
    for (int i = 0; i < 6; i++)
        m[i] = mk(owners[i], "q.example", "x");
    /* "a" holds one already. */
    msilo_message_t *pre = mk("a", "q.example", "pre");
    put1(f->store, pre);
    int res[6];
    assert_int_equal(msilo_store_put(f->store, m, 6, 3, res), 0);
    int expect[6] = { 0, 0, 0, MSILO_EFULL, 0, MSILO_EFULL };
    for (int i = 0; i < 6; i++) {
        assert_int_equal(res[i], expect[i]);
        if (expect[i])
            assert_int_equal(m[i]->id, 0);
    }
    int64_t n;
    assert_int_equal(msilo_store_count(f->store, "a", "q.example", &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(msilo_store_count(f->store, "b", "q.example", &n), 0);
    assert_int_equal(n, 2);
    for (int i = 0; i < 6; i++)
        msilo_message_free(m[i]);
    msilo_message_free(pre);
}

/* The quota's count must use the owner index even when the store's first
 * put ran on an empty, analysed table (a generic plan made then would scan the whole
 * table for every later store). Counted with pg_stat_user_tables.seq_scan of
 * the store's own connection, flushed when it closes. */
static int64_t seq_scans(PGconn *c, const char *table)
{
    char *q = PQescapeLiteral(c, table, strlen(table));
    char *sql = g_strdup_printf("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = %s", q);
    char *v = pgt_value(c, sql);
    g_free(sql);
    PQfreemem(q);
    assert_non_null(v);
    int64_t n = g_ascii_strtoll(v, NULL, 10);
    g_free(v);
    return n;
}

static void test_quota_count_uses_index(void **state)
{
    fixture_t *f = *state;
    /* analysed while empty, as after a TRUNCATE or a first autovacuum */
    char *an = g_strdup_printf("ANALYZE %s", f->table);
    assert_true(pgt_exec(f->conn, an));
    g_free(an);
    msilo_message_t *first = mk("a", "q.example", "first");
    int res;
    assert_int_equal(msilo_store_put(f->store, &first, 1, 100, &res), 0); /* plans, table empty */
    assert_int_equal(res, 0);
    msilo_message_free(first);
    char *sql = g_strdup_printf(
        "INSERT INTO %s (username, domain, src_addr, dst_addr, body, inc_time, exp_time) "
        "SELECT 'filler' || (i %% 500), 'q.example', 'sip:x@y', 'sip:z@y', 'b', 1, 2000000000 "
        "FROM generate_series(1, 20000) i",
        f->table);
    assert_true(pgt_exec(f->conn, sql));
    g_free(sql);
    int64_t before = seq_scans(f->conn, f->table);
    for (int i = 0; i < 30; i++) {
        msilo_message_t *m = mk("a", "q.example", "x");
        assert_int_equal(msilo_store_put(f->store, &m, 1, 100, &res), 0);
        assert_int_equal(res, 0);
        msilo_message_free(m);
    }
    msilo_store_free(f->store); /* its backend exits and flushes its statistics */
    f->store = open_store(f->table);
    int64_t after = before;
    for (int i = 0; i < 50 && after == before; i++) { /* the flush is asynchronous */
        g_usleep(20000);
        after = seq_scans(f->conn, f->table);
    }
    /* a few scans of other sessions' catalog-ish reads are tolerated; one per put is not */
    if (after - before >= 10)
        fail_msg("%" G_GINT64_FORMAT " sequential scans of the table for 30 stores with a quota",
                 after - before);
    int64_t n;
    assert_int_equal(msilo_store_count(f->store, "a", "q.example", &n), 0);
    assert_int_equal(n, 31);
}

/* A batch the database refuses (text that is not UTF-8) stores nothing, and
 * the store stays usable on the same connection. */
static void test_failed_batch(void **state)
{
    fixture_t *f = *state;
    msilo_message_t *m[3] = { mk("lena", "example.com", "ok 1"),
                              mk("lena", "example.com", "bad"),
                              mk("lena", "example.com", "ok 2") };
    g_free(m[1]->src);
    m[1]->src = g_strdup("sip:\xff\xfe@example.com");
    int res[3] = { 7, 7, 7 };
    for (int quota = 0; quota <= 10; quota += 10) {
        assert_int_equal(msilo_store_put(f->store, m, 3, quota, res), MSILO_ESTORE);
        assert_int_equal(res[0], 7);
        assert_int_equal(m[0]->id, 0);
        assert_non_null(strstr(msilo_error_detail(), "UTF8"));
    }
    int64_t n = -1;
    assert_int_equal(msilo_store_count(f->store, "lena", "example.com", &n), 0);
    assert_int_equal(n, 0);
    g_free(m[1]->src);
    m[1]->src = g_strdup("sip:fixed@example.com");
    assert_int_equal(msilo_store_put(f->store, m, 3, 10, res), 0);
    assert_int_equal(msilo_store_count(f->store, "lena", "example.com", &n), 0);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        msilo_message_free(m[i]);
}

/* ---- the msilo modules' tables ---- */

/* Kamailio 5.x/6.x utils/kamctl/postgres/msilo-create.sql (schema version 8). */
static const char kamailio_v8[] =
    "CREATE TABLE @T@ (\n"
    "    id SERIAL PRIMARY KEY NOT NULL,\n"
    "    src_addr VARCHAR(255) DEFAULT '' NOT NULL,\n"
    "    dst_addr VARCHAR(255) DEFAULT '' NOT NULL,\n"
    "    username VARCHAR(64) DEFAULT '' NOT NULL,\n"
    "    domain VARCHAR(64) DEFAULT '' NOT NULL,\n"
    "    inc_time INTEGER DEFAULT 0 NOT NULL,\n"
    "    exp_time INTEGER DEFAULT 0 NOT NULL,\n"
    "    snd_time INTEGER DEFAULT 0 NOT NULL,\n"
    "    ctype VARCHAR(32) DEFAULT 'text/plain' NOT NULL,\n"
    "    body BYTEA,\n"
    "    extra_hdrs TEXT,\n"
    "    callid VARCHAR(128) DEFAULT '' NOT NULL,\n"
    "    status INTEGER DEFAULT 0 NOT NULL\n"
    ");\n"
    "CREATE INDEX @T@_account_idx ON @T@ (username, domain);\n";

/* OpenSIPS scripts/postgres/msilo-create.sql (schema version 6), as the
 * older OpenSIPS schema has it (ctype VARCHAR(255), no extra_hdrs/callid). */
static const char opensips_v6[] =
    "CREATE TABLE @T@ (\n"
    "    id SERIAL PRIMARY KEY NOT NULL,\n"
    "    src_addr VARCHAR(255) DEFAULT '' NOT NULL,\n"
    "    dst_addr VARCHAR(255) DEFAULT '' NOT NULL,\n"
    "    username VARCHAR(64) DEFAULT '' NOT NULL,\n"
    "    domain VARCHAR(64) DEFAULT '' NOT NULL,\n"
    "    inc_time INTEGER DEFAULT 0 NOT NULL,\n"
    "    exp_time INTEGER DEFAULT 0 NOT NULL,\n"
    "    snd_time INTEGER DEFAULT 0 NOT NULL,\n"
    "    ctype VARCHAR(255) DEFAULT NULL,\n"
    "    body BYTEA DEFAULT NULL\n"
    ");\n"
    "CREATE INDEX @T@_account_idx ON @T@ (username, domain);\n";

/* An older OpenSIPS file: ctype VARCHAR(32) NOT NULL, body BYTEA NOT NULL. */
static const char opensips_v6_old[] =
    "CREATE TABLE @T@ (\n"
    "    id SERIAL PRIMARY KEY NOT NULL,\n"
    "    src_addr VARCHAR(128) DEFAULT '' NOT NULL,\n"
    "    dst_addr VARCHAR(128) DEFAULT '' NOT NULL,\n"
    "    username VARCHAR(64) DEFAULT '' NOT NULL,\n"
    "    domain VARCHAR(64) DEFAULT '' NOT NULL,\n"
    "    inc_time INTEGER DEFAULT 0 NOT NULL,\n"
    "    exp_time INTEGER DEFAULT 0 NOT NULL,\n"
    "    snd_time INTEGER DEFAULT 0 NOT NULL,\n"
    "    ctype VARCHAR(32) DEFAULT 'text/plain' NOT NULL,\n"
    "    body BYTEA NOT NULL\n"
    ");\n"
    "CREATE INDEX @T@_account_idx ON @T@ (username, domain);\n";

static void create_module_table(PGconn *c, const char *ddl, const char *table)
{
    char **parts = g_strsplit(ddl, "@T@", -1);
    char *sql = g_strjoinv(table, parts);
    g_strfreev(parts);
    assert_true(pgt_exec(c, sql));
    /* Both make the sequence wrap at 2^31 (OpenSIPS' script does this). */
    char *seq = g_strdup_printf("ALTER SEQUENCE %s_id_seq MAXVALUE 2147483647 CYCLE", table);
    assert_true(pgt_exec(c, seq));
    g_free(seq);
    g_free(sql);
}

/* Rows as Kamailio's m_store writes them (msilo.c: db_insert of src_addr,
 * dst_addr, username, domain, body, ctype, exp_time, inc_time, snd_time,
 * extra_hdrs, callid) and as OpenSIPS' (the same without the last two). */
static void insert_module_rows(PGconn *c, const char *table, gboolean kamailio)
{
    for (int i = 0; i < 3; i++) {
        char *sql;
        if (kamailio)
            sql = g_strdup_printf(
                "INSERT INTO %s (src_addr, dst_addr, username, domain, body, ctype, exp_time, "
                "inc_time, snd_time, extra_hdrs, callid) VALUES ('sip:bob@example.org', "
                "'sip:alice@example.com', 'alice', 'example.com', 'msg %d', 'text/plain', %d, %d, "
                "0, %s, '%s')",
                table, i, NOW + 3600, NOW - 100 + i, i == 1 ? "'X-Foo: bar\r\n'" : "''",
                i == 2 ? "cid-2" : "");
        else
            sql = g_strdup_printf(
                "INSERT INTO %s (src_addr, dst_addr, username, domain, body, ctype, exp_time, "
                "inc_time, snd_time) VALUES ('sip:bob@example.org', 'sip:alice@example.com', "
                "'alice', 'example.com', 'msg %d', 'text/plain', %d, %d, 0)",
                table, i, NOW + 3600, NOW - 100 + i);
        assert_true(pgt_exec(c, sql));
        g_free(sql);
    }
    /* A reminder and an expired message. */
    char *sql = g_strdup_printf(
        "INSERT INTO %s (src_addr, dst_addr, username, domain, body, ctype, exp_time, inc_time, "
        "snd_time) VALUES ('sip:bob@example.org', 'sip:alice@example.com', 'alice', "
        "'example.com', 'remind', 'text/plain', %d, %d, %d), ('sip:bob@example.org', "
        "'sip:alice@example.com', 'alice', 'example.com', 'old', 'text/plain', %d, %d, 0)",
        table, NOW + 3600, NOW - 50, NOW - 1, NOW - 10, NOW - 1000);
    assert_true(pgt_exec(c, sql));
    g_free(sql);
}

static void check_module_table(const char *ddl, gboolean kamailio)
{
    PGconn *c = pgt_connect();
    char *table = pgt_table_name(kamailio ? "kam" : "osips");
    create_module_table(c, ddl, table);
    insert_module_rows(c, table, kamailio);

    /* Not usable before migrating: a clear configuration error. */
    msilo_pg_options_t *o = pgt_options(table);
    msilo_store_t *s = NULL;
    assert_int_equal(msilo_pg_store_new(&s, o), MSILO_ECONFIG);
    assert_non_null(strstr(msilo_error_detail(), "lease_owner"));
    msilo_pg_options_free(o);

    assert_true(migrate(table, 0) > 0);
    char *snap = schema_snapshot(c, table);
    assert_int_equal(migrate(table, 0), 0);
    char *snap2 = schema_snapshot(c, table);
    assert_string_equal(snap, snap2);
    g_free(snap);
    g_free(snap2);

    /* Nothing lost, id now 64-bit, content type wide enough. */
    char *sql = g_strdup_printf("SELECT count(*) FROM %s", table);
    char *v = pgt_value(c, sql);
    assert_string_equal(v, "5");
    g_free(v);
    g_free(sql);
    sql = g_strdup_printf("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                          "WHERE attrelid = '%s'::regclass AND attname = 'id'",
                          table);
    v = pgt_value(c, sql);
    assert_string_equal(v, "bigint");
    g_free(v);
    g_free(sql);

    s = open_store(table);
    msilo_store_claim_t cl = owner_claim("alice", "example.com", NOW, "inst-1", 10);
    msilo_message_t **got = NULL;
    size_t n = 0;
    assert_int_equal(msilo_store_claim(s, &cl, &got, &n), 0);
    /* The three offline rows, oldest first; not the reminder, not the expired. */
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        char *body = g_strdup_printf("msg %zu", i);
        assert_int_equal(got[i]->body_len, strlen(body));
        assert_memory_equal(got[i]->body, body, strlen(body));
        g_free(body);
        assert_string_equal(got[i]->src, "sip:bob@example.org");
        assert_string_equal(got[i]->dst, "sip:alice@example.com");
        assert_string_equal(got[i]->ctype, "text/plain");
        assert_int_equal(got[i]->inc_time, NOW - 100 + (int64_t)i);
        assert_int_equal(got[i]->exp_time, NOW + 3600);
        assert_int_equal(got[i]->attempts, 0);
        if (i > 0)
            assert_true(got[i]->id > got[i - 1]->id);
    }
    if (kamailio) {
        assert_null(got[0]->extra_hdrs); /* '' in Kamailio's table means none */
        assert_string_equal(got[1]->extra_hdrs, "X-Foo: bar\r\n");
        assert_null(got[0]->callid);
        assert_string_equal(got[2]->callid, "cid-2");
    }
    /* Delivered: acknowledged in one statement. */
    int64_t ids[3] = { got[0]->id, got[1]->id, got[2]->id };
    size_t del = 0;
    assert_int_equal(msilo_store_remove(s, ids, 3, &del), 0);
    assert_int_equal(del, 3);
    msilo_message_array_free(got, n);

    /* The reminder is due. */
    msilo_store_claim_t rc = { .reminders = 1, .now = NOW, .max_next_try = INT64_MAX,
                               .lease_owner = "inst-1", .lease_until = NOW + 30, .max = 10 };
    assert_int_equal(msilo_store_claim(s, &rc, &got, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0]->snd_time, NOW - 1);
    msilo_message_array_free(got, n);

    /* A message stored by libmsilo is readable by the msilo module's own query,
     * and the module can still insert. */
    msilo_message_t *m = mk("carol", "example.com", "from libmsilo");
    g_free(m->ctype);
    m->ctype = g_strdup("application/vnd.gsma.rcs-ft-http+xml"); /* 36 chars */
    m->extra_hdrs = NULL;
    m->callid = NULL;
    put1(s, m);
    sql = g_strdup_printf("SELECT id, src_addr, dst_addr, body, ctype, inc_time%s FROM %s "
                          "WHERE username = 'carol' AND domain = 'example.com' AND snd_time = 0 "
                          "ORDER BY id",
                          kamailio ? ", extra_hdrs, callid" : "", table);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 4), "application/vnd.gsma.rcs-ft-http+xml");
    PQclear(r);
    g_free(sql);
    insert_module_rows(c, table, kamailio);
    int64_t cnt = 0;
    assert_int_equal(msilo_store_count(s, "alice", "example.com", &cnt), 0);
    assert_int_equal(cnt, 2 + 5);
    size_t exp = 0;
    assert_int_equal(msilo_store_expire(s, NOW, &exp), 0);
    assert_int_equal(exp, 2);
    msilo_message_free(m);

    msilo_store_free(s);
    pgt_drop(c, table);
    g_free(table);
    PQfinish(c);
}

static void test_kamailio_table(void **state)
{
    (void)state;
    check_module_table(kamailio_v8, TRUE);
}

static void test_opensips_table(void **state)
{
    (void)state;
    check_module_table(opensips_v6, FALSE);
}

static void test_opensips_old_table(void **state)
{
    (void)state;
    check_module_table(opensips_v6_old, FALSE);
}

static void test_keep_id(void **state)
{
    (void)state;
    PGconn *c = pgt_connect();
    char *table = pgt_table_name("keep");
    create_module_table(c, kamailio_v8, table);
    assert_true(migrate(table, MSILO_PG_MIGRATE_KEEP_ID) > 0);
    assert_int_equal(migrate(table, MSILO_PG_MIGRATE_KEEP_ID), 0);
    char *sql = g_strdup_printf("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                                "WHERE attrelid = '%s'::regclass AND attname = 'id'",
                                table);
    char *v = pgt_value(c, sql);
    assert_string_equal(v, "integer");
    g_free(v);
    /* A store on a 32-bit table clamps far times instead of failing. */
    msilo_store_t *s = open_store(table);
    msilo_message_t *m = mk("dave", "example.com", "far");
    m->exp_time = INT64_C(1) << 40;
    put1(s, m);
    msilo_message_t *g = NULL;
    assert_int_equal(msilo_store_get(s, m->id, &g), 0);
    assert_int_equal(g->exp_time, INT32_MAX);
    msilo_message_free(g);
    msilo_message_free(m);
    msilo_store_free(s);
    /* Widening afterwards still works. */
    assert_true(migrate(table, 0) > 0);
    v = pgt_value(c, sql);
    assert_string_equal(v, "bigint");
    g_free(v);
    g_free(sql);
    assert_int_equal(migrate(table, 0), 0);
    pgt_drop(c, table);
    g_free(table);
    PQfinish(c);
}

static void test_migrate_twice(void **state)
{
    (void)state;
    PGconn *c = pgt_connect();
    char *table = pgt_table_name("twice");
    /* table + 4 indexes + the per-device tables and their index */
    assert_int_equal(migrate(table, 0), 8);
    char *snap = schema_snapshot(c, table);
    assert_int_equal(migrate(table, 0), 0);
    char *snap2 = schema_snapshot(c, table);
    assert_string_equal(snap, snap2);
    g_free(snap);
    g_free(snap2);
    pgt_drop(c, table);
    g_free(table);
    PQfinish(c);
}

static void test_bad_config(void **state)
{
    (void)state;
    msilo_pg_options_t *o = NULL;
    assert_int_equal(msilo_pg_options_new(&o), 0);
    msilo_store_t *s = NULL;
    assert_int_equal(msilo_pg_store_new(&s, o), MSILO_ECONFIG); /* no url */
    assert_int_equal(msilo_pg_options_set(o, "sc_nope", "x"), MSILO_ECONFIG);
    assert_int_equal(msilo_pg_options_set(o, "sc_mid", ""), MSILO_ECONFIG);
    assert_int_equal(msilo_pg_options_set(o, "sc_mid", "mid"), 0);
    assert_string_equal(msilo_pg_options_get(o, "sc_mid"), "mid");
    assert_string_equal(msilo_pg_options_get(o, "sc_from"), "src_addr");
    assert_string_equal(msilo_pg_options_get(o, "db_table"), "silo");
    assert_int_equal(msilo_pg_options_set(o, "db_url", "postgresql://[::1"), 0);
    assert_int_equal(msilo_pg_store_new(&s, o), MSILO_ECONFIG); /* does not parse */
    assert_null(s);
    msilo_pg_options_free(o);
    /* Absent table. */
    o = pgt_options("no_such_table_here");
    assert_int_equal(msilo_pg_store_new(&s, o), MSILO_ECONFIG);
    assert_null(s);
    msilo_pg_options_free(o);
    msilo_pg_options_free(NULL);
}

/* The store's column and table defaults are libmsilo's: every sc_* key and
 * db_table of msilo_config_key_at() is a store option with the same default. */
static void test_defaults_are_libmsilo_defaults(void **state)
{
    (void)state;
    msilo_pg_options_t *o = NULL;
    assert_int_equal(msilo_pg_options_new(&o), 0);
    size_t seen = 0;
    const msilo_config_key_t *k;
    for (size_t i = 0; (k = msilo_config_key_at(i)); i++) {
        if (strncmp(k->name, "sc_", 3) != 0 && strcmp(k->name, "db_table") != 0)
            continue;
        const char *v = msilo_pg_options_get(o, k->name);
        assert_non_null(v);
        assert_string_equal(v, k->default_str);
        seen++;
    }
    assert_int_equal(seen, 13); /* db_table and the twelve sc_* columns */
    msilo_pg_options_free(o);
}

/* db_url forms: the admin guide's postgres://, libpq's postgresql:// and key=value. */
static void test_url_forms(void **state)
{
    fixture_t *f = *state;
    const char *url = pgt_url();
    const char *rest = strstr(url, "://");
    assert_non_null(rest);
    char *guide = g_strdup_printf("postgres%s", rest);
    char *kv = g_strdup_printf("host=%s port=%s user=%s dbname=%s", PQhost(f->conn),
                               PQport(f->conn), PQuser(f->conn), PQdb(f->conn));
    const char *forms[3] = { guide, url, kv };
    for (int i = 0; i < 3; i++) {
        msilo_store_t *s = NULL;
        assert_int_equal(msilo_pg_store_new_url(&s, forms[i], f->table), 0);
        int64_t n = -1;
        assert_int_equal(msilo_store_count(s, NULL, NULL, &n), 0);
        assert_int_equal(n, 0);
        msilo_store_free(s);
    }
    g_free(guide);
    g_free(kv);
}

/* Passwords are found and masked in every form libpq accepts, not only the
 * literal "password=": spaces around '=', a percent-escaped key, user:pw@. */
static void test_conninfo_password(void **state)
{
    (void)state;
    static const char *const secret[] = {
        "host=127.0.0.1 password=S3cretPw!",
        "host=127.0.0.1 password = S3cretPw!",
        "host=127.0.0.1 password='S3cretPw!' dbname=x",
        "postgres://u:S3cretPw!@127.0.0.1:5432/db",
        "postgresql://u@127.0.0.1/db?password=S3cretPw!",
        "postgresql://u@127.0.0.1/db?%70assword=S3cretPw!",
        "postgresql://u:S3cret%50w!@127.0.0.1/db",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(secret); i++) {
        char *m = msilo_pg_conninfo_mask(secret[i]);
        if (!msilo_pg_conninfo_has_password(secret[i]))
            fail_msg("no password found in %s", secret[i]);
        if (strstr(m, "S3cret") || !strstr(m, "password=***"))
            fail_msg("%s masked as %s", secret[i], m);
        assert_non_null(strstr(m, "127.0.0.1"));
        g_free(m);
    }
    static const char *const none[] = { "host=127.0.0.1 user=msilo",
                                        "postgresql://msilo@127.0.0.1:5432/db?sslmode=disable" };
    for (size_t i = 0; i < G_N_ELEMENTS(none); i++) {
        assert_false(msilo_pg_conninfo_has_password(none[i]));
        char *m = msilo_pg_conninfo_mask(none[i]);
        assert_null(strstr(m, "password"));
        assert_non_null(strstr(m, "user=msilo"));
        g_free(m);
    }
    /* what libpq cannot read may hold a password: never shown */
    assert_true(msilo_pg_conninfo_has_password("host=x password"));
    char *m = msilo_pg_conninfo_mask("host=x password 'S3cretPw");
    assert_string_equal(m, "(unparsable conninfo)");
    g_free(m);
    m = msilo_pg_conninfo_mask("host='a b' dbname=it\\'s");
    assert_string_equal(m, "dbname='it\\'s' host='a b'");
    g_free(m);
}

/* Configured column names (sc_*), as an OpenSIPS guide user might have. */
static void test_custom_columns(void **state)
{
    (void)state;
    PGconn *c = pgt_connect();
    char *table = pgt_table_name("Custom Cols");
    msilo_pg_options_t *o = pgt_options(table);
    assert_int_equal(msilo_pg_options_set(o, "sc_mid", "mid"), 0);
    assert_int_equal(msilo_pg_options_set(o, "sc_uri_user", "User Name"), 0);
    assert_int_equal(msilo_pg_options_set(o, "sc_body", "msg\"body"), 0);
    size_t ch = 0;
    assert_int_equal(msilo_pg_migrate(o, 0, &ch), 0);
    assert_int_equal(ch, 8);
    assert_int_equal(msilo_pg_migrate(o, 0, &ch), 0);
    assert_int_equal(ch, 0);
    msilo_store_t *s = NULL;
    assert_int_equal(msilo_pg_store_new(&s, o), 0);
    msilo_message_t *m = mk("eve", "example.com", "custom");
    put1(s, m);
    msilo_store_claim_t cl = owner_claim("eve", "example.com", NOW, "x", 5);
    msilo_message_t **got;
    size_t n;
    assert_int_equal(msilo_store_claim(s, &cl, &got, &n), 0);
    assert_int_equal(n, 1);
    assert_msg_equal(got[0], m);
    msilo_message_array_free(got, n);
    msilo_message_free(m);
    msilo_store_free(s);
    msilo_pg_options_free(o);
    pgt_drop(c, table);
    g_free(table);
    PQfinish(c);
}

/* ---- SQL injection ---- */

static const char *const evil[] = {
    "'; DROP TABLE victim; --",
    "\"; DROP TABLE victim; --",
    "a' OR '1'='1",
    "\\'; DELETE FROM victim; --",
    "$1::text); DROP TABLE victim; --",
    "x\\x00y",
    "ü名前\xf0\x9f\x98\x80",
    "E'\\\\x41'",
    "{\"a\",NULL}",
};

static void test_injection(void **state)
{
    (void)state;
    PGconn *c = pgt_connect();
    assert_true(pgt_exec(c, "CREATE TABLE IF NOT EXISTS victim (x int)"));
    const char *tables[] = { "silo\"; DROP TABLE victim; --", "Robert'); DROP TABLE victim;--",
                             "t$1 x" };
    for (size_t t = 0; t < G_N_ELEMENTS(tables); t++) {
        char *table = pgt_table_name(tables[t]);
        /* Identifiers longer than 63 bytes are refused; keep it short. */
        if (strlen(table) > 63)
            table[63] = '\0';
        migrate(table, 0);
        msilo_store_t *s = open_store(table);
        for (size_t i = 0; i < G_N_ELEMENTS(evil); i++) {
            msilo_message_t *m = mk(evil[i], evil[(i + 1) % G_N_ELEMENTS(evil)], evil[i]);
            g_free(m->ctype);
            m->ctype = g_strdup(evil[(i + 2) % G_N_ELEMENTS(evil)]);
            m->extra_hdrs = g_strdup(evil[(i + 3) % G_N_ELEMENTS(evil)]);
            m->callid = g_strdup(evil[(i + 4) % G_N_ELEMENTS(evil)]);
            g_free(m->src);
            m->src = g_strdup(evil[(i + 5) % G_N_ELEMENTS(evil)]);
            int res;
            assert_int_equal(msilo_store_put(s, &m, 1, 5, &res), 0);
            assert_int_equal(res, 0);
            int64_t n = 0;
            assert_int_equal(msilo_store_count(s, m->user, m->domain, &n), 0);
            assert_int_equal(n, 1);
            msilo_store_claim_t cl = owner_claim(m->user, m->domain, NOW, evil[i], 5);
            msilo_message_t **got;
            size_t ng;
            assert_int_equal(msilo_store_claim(s, &cl, &got, &ng), 0);
            assert_int_equal(ng, 1);
            assert_msg_equal(got[0], m);
            msilo_message_array_free(got, ng);
            size_t k = 0;
            assert_int_equal(msilo_store_reset_leases(s, evil[i], &k), 0);
            assert_int_equal(k, 1);
            assert_int_equal(msilo_store_purge(s, m->user, m->domain, &k), 0);
            assert_int_equal(k, 1);
            msilo_message_free(m);
        }
        msilo_store_free(s);
        pgt_drop(c, table);
        g_free(table);
    }
    /* The victim survived every attempt. */
    char *v = pgt_value(c, "SELECT to_regclass('victim') IS NOT NULL");
    assert_string_equal(v, "t");
    g_free(v);
    pgt_exec(c, "DROP TABLE victim");
    PQfinish(c);
}

/* ---- leases ---- */

static void test_lease_expiry(void **state)
{
    fixture_t *f = *state;
    msilo_message_t *m[3];
    for (int i = 0; i < 3; i++) {
        m[i] = mk("frank", "example.com", "lease");
        put1(f->store, m[i]);
    }
    msilo_message_t **got;
    size_t n;
    msilo_store_claim_t a = owner_claim("frank", "example.com", NOW, "A", 2);
    assert_int_equal(msilo_store_claim(f->store, &a, &got, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(got[0]->id, m[0]->id);
    msilo_message_array_free(got, n);

    /* Another instance, before the lease runs out, gets only the third. */
    msilo_store_claim_t b = owner_claim("frank", "example.com", NOW + 29, "B", 10);
    assert_int_equal(msilo_store_claim(f->store, &b, &got, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0]->id, m[2]->id);
    msilo_message_array_free(got, n);

    /* A crashed: at lease_until (NOW + 30) its two are deliverable again. */
    b.now = NOW + 30;
    b.lease_until = NOW + 60;
    assert_int_equal(msilo_store_claim(f->store, &b, &got, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(got[0]->id, m[0]->id);
    assert_int_equal(got[1]->id, m[1]->id);
    msilo_message_array_free(got, n);

    /* Release with backoff: not claimable before next_try unless backoff is ignored. */
    msilo_store_release_t rel[2] = { { .id = m[0]->id, .attempts = 1, .next_try = NOW + 100 },
                                     { .id = m[1]->id, .attempts = 3, .next_try = INT64_MAX } };
    assert_int_equal(msilo_store_release(f->store, rel, 2, sizeof(msilo_store_release_t)), 0);
    msilo_store_claim_t r = owner_claim("frank", "example.com", NOW + 40, "C", 10);
    r.max_next_try = NOW + 40;
    assert_int_equal(msilo_store_claim(f->store, &r, &got, &n), 0);
    assert_int_equal(n, 0);
    assert_null(got);
    r.max_next_try = NOW + 100;
    assert_int_equal(msilo_store_claim(f->store, &r, &got, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0]->id, m[0]->id);
    assert_int_equal(got[0]->attempts, 1);
    msilo_message_array_free(got, n);
    r.max_next_try = INT64_MAX;
    assert_int_equal(msilo_store_claim(f->store, &r, &got, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0]->id, m[1]->id);
    assert_int_equal(got[0]->attempts, 3);
    assert_int_equal(got[0]->next_try, INT64_MAX);
    msilo_message_array_free(got, n);

    /* reset_leases gives C's messages back at once. */
    size_t k = 0;
    assert_int_equal(msilo_store_reset_leases(f->store, "C", &k), 0);
    assert_int_equal(k, 2);
    assert_int_equal(msilo_store_claim(f->store, &r, &got, &n), 0);
    assert_int_equal(n, 2);
    msilo_message_array_free(got, n);
    for (int i = 0; i < 3; i++)
        msilo_message_free(m[i]);
}

static void test_reminders(void **state)
{
    fixture_t *f = *state;
    msilo_message_t *m[3];
    int64_t snd[3] = { NOW - 10, NOW + 100, 0 };
    const char *users[3] = { "gina", "hank", "gina" };
    for (int i = 0; i < 3; i++) {
        m[i] = mk(users[i], "example.com", "rem");
        m[i]->snd_time = snd[i];
        put1(f->store, m[i]);
    }
    msilo_store_claim_t rc = { .reminders = 1, .now = NOW, .max_next_try = INT64_MAX,
                               .lease_owner = "R", .lease_until = NOW + 30, .max = 10 };
    msilo_message_t **got;
    size_t n;
    assert_int_equal(msilo_store_claim(f->store, &rc, &got, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0]->id, m[0]->id);
    msilo_message_array_free(got, n);
    /* An owner's claim takes only ordinary messages. */
    msilo_store_claim_t oc = owner_claim("gina", "example.com", NOW, "O", 10);
    assert_int_equal(msilo_store_claim(f->store, &oc, &got, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0]->id, m[2]->id);
    msilo_message_array_free(got, n);
    /* A failed reminder becomes an ordinary offline message. */
    msilo_store_release_t rel = { .id = m[0]->id, .attempts = 1, .next_try = 0,
                                  .flags = MSILO_RELEASE_CLEAR_SND_TIME };
    assert_int_equal(msilo_store_release(f->store, &rel, 1, sizeof(msilo_store_release_t)), 0);
    oc.now = NOW + 1;
    assert_int_equal(msilo_store_claim(f->store, &oc, &got, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0]->id, m[0]->id);
    assert_int_equal(got[0]->snd_time, 0);
    msilo_message_array_free(got, n);
    for (int i = 0; i < 3; i++)
        msilo_message_free(m[i]);
}

/* ---- concurrency: two instances, two connections, two threads ---- */

#define CONC_MSGS 600

typedef struct claimer {
    const char *table;
    const char *name;
    GArray *ids;
    int err;
    GMutex *start_lock;
} claimer_t;

static gpointer claimer_thread(gpointer p)
{
    claimer_t *c = p;
    msilo_pg_options_t *o = pgt_options(c->table);
    msilo_store_t *s = NULL;
    c->err = msilo_pg_store_new(&s, o);
    msilo_pg_options_free(o);
    /* Both start together. */
    g_mutex_lock(c->start_lock);
    g_mutex_unlock(c->start_lock);
    while (!c->err) {
        msilo_store_claim_t cl = owner_claim("ivan", "example.com", NOW, c->name, 7);
        msilo_message_t **got;
        size_t n;
        c->err = msilo_store_claim(s, &cl, &got, &n);
        if (c->err || n == 0)
            break;
        int64_t ids[7];
        for (size_t i = 0; i < n; i++) {
            g_array_append_val(c->ids, got[i]->id);
            ids[i] = got[i]->id;
        }
        msilo_message_array_free(got, n);
        /* Deliver every other batch at once; leave the rest leased. */
        if (c->ids->len % 2)
            c->err = msilo_store_remove(s, ids, n, NULL);
    }
    msilo_store_free(s);
    return NULL;
}

static void test_concurrent_claims(void **state)
{
    fixture_t *f = *state;
    msilo_message_t *m[100];
    int res[100];
    int64_t first = 0;
    for (int batch = 0; batch < CONC_MSGS / 100; batch++) {
        for (int i = 0; i < 100; i++)
            m[i] = mk("ivan", "example.com", "c");
        assert_int_equal(msilo_store_put(f->store, m, 100, 0, res), 0);
        if (!first)
            first = m[0]->id;
        for (int i = 0; i < 100; i++)
            msilo_message_free(m[i]);
    }
    GMutex start;
    g_mutex_init(&start);
    g_mutex_lock(&start);
    claimer_t c[2] = {
        { .table = f->table, .name = "A", .ids = g_array_new(FALSE, FALSE, sizeof(int64_t)),
          .start_lock = &start },
        { .table = f->table, .name = "B", .ids = g_array_new(FALSE, FALSE, sizeof(int64_t)),
          .start_lock = &start },
    };
    GThread *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = g_thread_new("claimer", claimer_thread, &c[i]);
    g_mutex_unlock(&start);
    for (int i = 0; i < 2; i++)
        g_thread_join(t[i]);
    g_mutex_clear(&start);
    assert_int_equal(c[0].err, 0);
    assert_int_equal(c[1].err, 0);
    /* Every message claimed exactly once, by one of them. */
    assert_int_equal(c[0].ids->len + c[1].ids->len, CONC_MSGS);
    guint8 *seen = g_new0(guint8, CONC_MSGS);
    for (int k = 0; k < 2; k++)
        for (guint i = 0; i < c[k].ids->len; i++) {
            int64_t id = g_array_index(c[k].ids, int64_t, i) - first;
            assert_true(id >= 0 && id < CONC_MSGS);
            assert_int_equal(seen[id], 0);
            seen[id] = 1;
        }
    fprintf(stderr, "concurrent claims: A %u, B %u\n", c[0].ids->len, c[1].ids->len);
    g_free(seen);
    g_array_free(c[0].ids, TRUE);
    g_array_free(c[1].ids, TRUE);
}

/* Two writers with a quota on one owner: the advisory lock keeps the total
 * at the quota, never above. */
typedef struct writer {
    const char *table;
    int stored, full, err;
} writer_t;

static gpointer writer_thread(gpointer p)
{
    writer_t *w = p;
    msilo_pg_options_t *o = pgt_options(w->table);
    msilo_store_t *s = NULL;
    w->err = msilo_pg_store_new(&s, o);
    msilo_pg_options_free(o);
    for (int b = 0; !w->err && b < 20; b++) {
        msilo_message_t *m[3];
        int res[3];
        for (int i = 0; i < 3; i++)
            m[i] = mk("judy", "example.com", "q");
        w->err = msilo_store_put(s, m, 3, 25, res);
        for (int i = 0; i < 3; i++) {
            if (!w->err && res[i] == 0)
                w->stored++;
            else if (!w->err && res[i] == MSILO_EFULL)
                w->full++;
            msilo_message_free(m[i]);
        }
    }
    msilo_store_free(s);
    return NULL;
}

static void test_concurrent_quota(void **state)
{
    fixture_t *f = *state;
    writer_t w[2] = { { .table = f->table }, { .table = f->table } };
    GThread *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = g_thread_new("writer", writer_thread, &w[i]);
    for (int i = 0; i < 2; i++)
        g_thread_join(t[i]);
    assert_int_equal(w[0].err, 0);
    assert_int_equal(w[1].err, 0);
    assert_int_equal(w[0].stored + w[1].stored, 25);
    assert_int_equal(w[0].full + w[1].full, 120 - 25);
    int64_t n = 0;
    assert_int_equal(msilo_store_count(f->store, "judy", "example.com", &n), 0);
    assert_int_equal(n, 25);
}

/* ---- outage: stop the real server, then start it again ---- */

static gboolean pg_ctl(const char *action)
{
    const char *ctl = getenv("MSILO_TEST_PG_CTL");
    const char *data = getenv("MSILO_TEST_PG_DATA");
    if (!ctl || !data)
        return FALSE;
    char *log = g_build_filename(data, "server.log", NULL);
    const char *argv_stop[] = { ctl, "-D", data, "-w", "-t", "60", "-m", "fast", "stop", NULL };
    const char *argv_start[] = { ctl, "-D", data, "-w", "-t", "60", "-l", log, "start", NULL };
    const char *const *argv = strcmp(action, "stop") == 0 ? argv_stop : argv_start;
    int status = -1;
    GError *err = NULL;
    gboolean ok = g_spawn_sync(NULL, (char **)argv, NULL,
                               G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                               NULL, NULL, NULL, &status, &err);
    if (!ok) {
        fprintf(stderr, "pg_ctl %s: %s\n", action, err->message);
        g_error_free(err);
    }
    g_free(log);
    return ok && g_spawn_check_wait_status(status, NULL);
}

static int setup_outage(void **state)
{
    if (!getenv("MSILO_TEST_PG_CTL") || !getenv("MSILO_TEST_PG_DATA"))
        return 0; /* the test skips itself */
    return setup(state);
}

static int teardown_outage(void **state)
{
    if (!*state)
        return 0;
    /* Whatever happened, leave the server running for the other tests. */
    PGconn *probe = PQconnectdb(pgt_url());
    gboolean up = PQstatus(probe) == CONNECTION_OK;
    PQfinish(probe);
    if (!up)
        pg_ctl("start");
    fixture_t *f = *state;
    PQfinish(f->conn);
    f->conn = pgt_connect();
    return teardown(state);
}

static void test_outage(void **state)
{
    fixture_t *f = *state;
    if (!f)
        skip(); /* no MSILO_TEST_PG_CTL: cannot stop the server */
    msilo_message_t *before = mk("kate", "example.com", "before the outage");
    put1(f->store, before);

    assert_true(pg_ctl("stop"));
    msilo_message_t *m[2] = { mk("kate", "example.com", "during 1"),
                              mk("kate", "example.com", "during 2") };
    int res[2] = { 42, 42 };
    assert_int_equal(msilo_store_put(f->store, m, 2, 10, res), MSILO_ESTORE);
    assert_int_equal(res[0], 42); /* no result written on failure */
    assert_int_equal(m[0]->id, 0);
    fprintf(stderr, "outage detail: %s\n", msilo_error_detail());
    int64_t n = -1;
    assert_int_equal(msilo_store_count(f->store, "kate", "example.com", &n), MSILO_ESTORE);
    assert_int_equal(n, -1);
    msilo_store_claim_t cl = owner_claim("kate", "example.com", NOW, "X", 10);
    msilo_message_t **got = NULL;
    size_t ng = 0;
    assert_int_equal(msilo_store_claim(f->store, &cl, &got, &ng), MSILO_ESTORE);

    /* The failed reconnects above started the store's back-off (100 ms after
     * the first); "pg_ctl start -w" polls every 100 ms, so by the time it
     * returns the back-off has run out. */
    assert_true(pg_ctl("start"));
    /* Same store object: it reconnects by itself. */
    assert_int_equal(msilo_store_put(f->store, m, 2, 10, res), 0);
    assert_int_equal(res[0], 0);
    assert_int_equal(res[1], 0);
    assert_int_equal(msilo_store_count(f->store, "kate", "example.com", &n), 0);
    assert_int_equal(n, 3); /* the committed one survived; the failed batch is not half-stored */
    assert_int_equal(msilo_store_claim(f->store, &cl, &got, &ng), 0);
    assert_int_equal(ng, 3);
    assert_int_equal(got[0]->id, before->id);
    msilo_message_array_free(got, ng);

    /* A restart between two calls is not even seen: the store notices the
     * closed connection before sending and reconnects. */
    assert_true(pg_ctl("stop"));
    assert_true(pg_ctl("start"));
    msilo_message_t *after = mk("kate", "example.com", "after a restart");
    put1(f->store, after);
    assert_true(pg_ctl("stop"));
    assert_true(pg_ctl("start"));
    assert_int_equal(msilo_store_count(f->store, "kate", "example.com", &n), 0);
    assert_int_equal(n, 4);
    msilo_message_free(after);
    msilo_message_free(before);
    msilo_message_free(m[0]);
    msilo_message_free(m[1]);
}

int main(void)
{
    pgt_url(); /* exits 77 when there is no database */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_count_uses_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_batch, setup, teardown),
        cmocka_unit_test(test_kamailio_table),
        cmocka_unit_test(test_opensips_table),
        cmocka_unit_test(test_opensips_old_table),
        cmocka_unit_test(test_keep_id),
        cmocka_unit_test(test_migrate_twice),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_defaults_are_libmsilo_defaults),
        cmocka_unit_test(test_conninfo_password),
        cmocka_unit_test_setup_teardown(test_url_forms, setup, teardown),
        cmocka_unit_test(test_custom_columns),
        cmocka_unit_test(test_injection),
        cmocka_unit_test_setup_teardown(test_lease_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reminders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage, setup_outage, teardown_outage),
    };
    return cmocka_run_group_tests_name("postgres", tests, NULL, NULL);
}
