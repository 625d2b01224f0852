/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the conformance suite cannot see of the SQLite store: messages survive
 * closing and reopening the file; the locations it accepts and refuses;
 * several connections (as several processes would have) claiming from one
 * file never get the same message; a Kamailio/OpenSIPS table is upgraded in place.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <msilo/msilo.h>
#include <msilo/sqlite.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#define NOW INT64_C(1700000000)

#define assert_ok(expr)                                                                    \
    do {                                                                                   \
        int rc_ = (expr);                                                                  \
        if (rc_ != 0)                                                                      \
            fail_msg("%s = %d: %s", #expr, rc_, msilo_error_detail());                     \
    } while (0)

static char *tmpdir;

static char *tmp_path(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static msilo_message_t *mk(const char *user, const char *body)
{
    msilo_message_t *m = msilo_message_new();
    m->user = g_strdup(user);
    m->domain = g_strdup("example.com");
    m->src = g_strdup("sip:bob@example.org");
    m->dst = g_strdup_printf("sip:%s@example.com", user);
    m->ctype = g_strdup("text/plain");
    m->body = g_strdup(body);
    m->body_len = strlen(body);
    m->inc_time = NOW;
    m->exp_time = NOW + 3600;
    return m;
}

static void test_durable_across_reopen(void **state)
{
    (void)state;
    char *path = tmp_path("durable.db");
    msilo_store_t *s = NULL;
    assert_ok(msilo_sqlite_store_new(&s, path));
    msilo_message_t *b[3] = { mk("alice", "one"), mk("alice", "two"), mk("bob", "three") };
    int res[3];
    assert_ok(msilo_store_put(s, b, 3, 0, res));
    int64_t last = b[2]->id;
    msilo_store_free(s);

    /* A new store on the same file, as after a restart. */
    assert_ok(msilo_sqlite_store_new(&s, path));
    int64_t n = 0;
    assert_ok(msilo_store_count(s, NULL, NULL, &n));
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        msilo_message_t *got = NULL;
        assert_ok(msilo_store_get(s, b[i]->id, &got));
        assert_string_equal(got->user, b[i]->user);
        assert_int_equal(got->body_len, b[i]->body_len);
        assert_memory_equal(got->body, b[i]->body, b[i]->body_len);
        assert_int_equal(got->exp_time, NOW + 3600);
        msilo_message_free(got);
        msilo_message_free(b[i]);
    }
    /* ids continue after the old ones, even after the newest was deleted */
    assert_ok(msilo_store_remove(s, &last, 1, NULL));
    msilo_store_free(s);
    assert_ok(msilo_sqlite_store_new(&s, path));
    msilo_message_t *m = mk("carol", "four");
    int r;
    assert_ok(msilo_store_put(s, &m, 1, 0, &r));
    assert_true(m->id > last);
    msilo_message_free(m);
    msilo_store_free(s);

    /* The journal really is WAL with a synchronous=FULL connection. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    g_free(path);
}

static void test_locations(void **state)
{
    (void)state;
    msilo_store_t *s = NULL;
    char *path = tmp_path("loc.db");
    char *url = g_strconcat("sqlite://", path, NULL);
    char *url_local = g_strconcat("sqlite://localhost", path, NULL);
    assert_ok(msilo_sqlite_store_new(&s, url));
    msilo_message_t *m = mk("alice", "x");
    int r;
    assert_ok(msilo_store_put(s, &m, 1, 0, &r));
    msilo_message_free(m);
    msilo_store_free(s);
    /* the same file through the other spellings */
    const char *same[] = { path, url_local };
    for (size_t i = 0; i < G_N_ELEMENTS(same); i++) {
        int64_t n = 0;
        assert_ok(msilo_sqlite_store_new(&s, same[i]));
        assert_ok(msilo_store_count(s, NULL, NULL, &n));
        assert_int_equal(n, 1);
        msilo_store_free(s);
    }
    /* :memory: is private to its store */
    assert_ok(msilo_sqlite_store_new(&s, ":memory:"));
    int64_t n = 5;
    assert_ok(msilo_store_count(s, NULL, NULL, &n));
    assert_int_equal(n, 0);
    msilo_store_free(s);
    assert_ok(msilo_sqlite_store_new(&s, "sqlite::memory:"));
    msilo_store_free(s);

    s = NULL;
    assert_int_equal(msilo_sqlite_store_new(&s, "sqlite://db.example.com/x.db"), MSILO_ECONFIG);
    assert_int_equal(msilo_sqlite_store_new(&s, "postgres://u@127.0.0.1/db"), MSILO_ECONFIG);
    assert_int_equal(msilo_sqlite_store_new(&s, "sqlite://"), MSILO_ECONFIG);
    assert_int_equal(msilo_sqlite_store_new(&s, ""), MSILO_ECONFIG);
    assert_int_equal(msilo_sqlite_store_new(&s, "/nonexistent-dir/x/y.db"), MSILO_ESTORE);
    assert_true(strlen(msilo_error_detail()) > 0);
    assert_int_equal(msilo_sqlite_store_new(NULL, path), MSILO_EINVAL);
    assert_int_equal(msilo_sqlite_store_new_table(&s, path, ""), MSILO_ECONFIG);
    assert_null(s);

    /* a file that is not a database */
    char *junk = tmp_path("junk.db");
    assert_true(g_file_set_contents(junk, "this is not an SQLite database, not at all.", -1,
                                    NULL));
    assert_int_equal(msilo_sqlite_store_new(&s, junk), MSILO_ESTORE);
    g_free(junk);
    g_free(path);
    g_free(url);
    g_free(url_local);
}

/* ---- several connections on one file ---- */

enum { MESSAGES = 300, CLAIMERS = 4 };

typedef struct claimer {
    msilo_store_t *store;
    char owner[32];
    GArray *ids;
    int rc;
} claimer_t;

static gpointer claim_loop(gpointer p)
{
    claimer_t *c = p;
    msilo_store_claim_t cl = {
        .user = "alice", .domain = "example.com", .now = NOW, .max_next_try = INT64_MAX,
        .lease_owner = c->owner, .lease_until = NOW + 600, .max = 5,
    };
    for (int round = 0; round <= MESSAGES; round++) {
        msilo_message_t **msgs = NULL;
        size_t n = 0;
        c->rc = msilo_store_claim(c->store, &cl, &msgs, &n);
        if (c->rc || n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            g_array_append_val(c->ids, msgs[i]->id);
        msilo_message_array_free(msgs, n);
    }
    return NULL;
}

static void test_connections_share_file(void **state)
{
    (void)state;
    char *path = tmp_path("shared.db");
    msilo_store_t *writer = NULL;
    assert_ok(msilo_sqlite_store_new(&writer, path));
    msilo_message_t *batch[MESSAGES];
    int res[MESSAGES];
    for (int i = 0; i < MESSAGES; i++)
        batch[i] = mk("alice", "shared");
    assert_ok(msilo_store_put(writer, batch, MESSAGES, 0, res));
    for (int i = 0; i < MESSAGES; i++)
        msilo_message_free(batch[i]);

    /* one connection per claimer, as separate processes would have */
    claimer_t c[CLAIMERS];
    GThread *t[CLAIMERS];
    for (int i = 0; i < CLAIMERS; i++) {
        c[i] = (claimer_t){ .ids = g_array_new(FALSE, FALSE, sizeof(int64_t)) };
        assert_ok(msilo_sqlite_store_new(&c[i].store, path));
        g_snprintf(c[i].owner, sizeof c[i].owner, "host-%d:5060/%d", i, i);
    }
    for (int i = 0; i < CLAIMERS; i++)
        t[i] = g_thread_new("claimer", claim_loop, &c[i]);
    /* the writer keeps storing meanwhile (for another owner) */
    for (int i = 0; i < 20; i++) {
        msilo_message_t *m = mk("bob", "meanwhile");
        int r;
        assert_ok(msilo_store_put(writer, &m, 1, 0, &r));
        msilo_message_free(m);
    }
    GHashTable *seen = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    for (int i = 0; i < CLAIMERS; i++) {
        g_thread_join(t[i]);
        assert_ok(c[i].rc);
        for (guint j = 0; j < c[i].ids->len; j++) {
            int64_t id = g_array_index(c[i].ids, int64_t, j);
            if (g_hash_table_contains(seen, &id))
                fail_msg("message %" G_GINT64_FORMAT " claimed twice", id);
            g_hash_table_add(seen, g_memdup2(&id, sizeof id));
        }
        g_array_unref(c[i].ids);
        msilo_store_free(c[i].store);
    }
    assert_int_equal(g_hash_table_size(seen), MESSAGES);
    g_hash_table_unref(seen);
    int64_t n = 0;
    assert_ok(msilo_store_count(writer, NULL, NULL, &n));
    assert_int_equal(n, MESSAGES + 20);
    msilo_store_free(writer);
    g_free(path);
}

/* ---- migration ---- */

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

static void test_migrate(void **state)
{
    (void)state;
    char *path = tmp_path("migrate.db");
    size_t changes = 99;
    assert_ok(msilo_sqlite_migrate(path, NULL, &changes));
    assert_int_equal(changes, 7); /* the table, four indexes, the two per-device tables */
    assert_ok(msilo_sqlite_migrate(path, NULL, &changes));
    assert_int_equal(changes, 0);
    assert_ok(msilo_sqlite_migrate(path, "other \"table\"", &changes));
    assert_int_equal(changes, 7);

    /* Kamailio's db_sqlite silo table (version 8), with a row in it. */
    exec_sql(path,
             "CREATE TABLE kam (id INTEGER PRIMARY KEY NOT NULL, "
             "src_addr VARCHAR(255) DEFAULT '' NOT NULL, dst_addr VARCHAR(255) DEFAULT '' NOT NULL, "
             "username VARCHAR(64) DEFAULT '' NOT NULL, domain VARCHAR(64) DEFAULT '' NOT NULL, "
             "inc_time INTEGER DEFAULT 0 NOT NULL, exp_time INTEGER DEFAULT 0 NOT NULL, "
             "snd_time INTEGER DEFAULT 0 NOT NULL, ctype VARCHAR(32) DEFAULT 'text/plain' NOT NULL, "
             "body BLOB, extra_hdrs TEXT DEFAULT '' NOT NULL, callid VARCHAR(128) DEFAULT '' NOT NULL, "
             "status INTEGER DEFAULT 0 NOT NULL); "
             "INSERT INTO kam (src_addr, dst_addr, username, domain, exp_time, body) "
             "VALUES ('sip:a@x', 'sip:u@d', 'u', 'd', 1900000000, 'old');");
    assert_ok(msilo_sqlite_migrate(path, "kam", &changes));
    assert_int_equal(changes, 12); /* 6 columns, 4 indexes, the two per-device tables */
    msilo_store_t *s = NULL;
    assert_ok(msilo_sqlite_store_new_table(&s, path, "kam"));
    msilo_message_t **list = NULL;
    size_t n = 0;
    assert_ok(msilo_store_list(s, "u", "d", 0, 10, &list, &n));
    assert_int_equal(n, 1);
    assert_int_equal(list[0]->body_len, 3);
    assert_null(list[0]->extra_hdrs); /* '' reads as none */
    assert_int_equal(list[0]->attempts, 0);
    msilo_message_array_free(list, n);
    /* NULLs go into the NOT NULL columns as Kamailio would write them */
    msilo_message_t *m = mk("u", "new");
    g_clear_pointer(&m->callid, g_free);
    g_clear_pointer(&m->ctype, g_free);
    m->domain[0] = 'd';
    m->domain[1] = '\0';
    int r;
    assert_ok(msilo_store_put(s, &m, 1, 0, &r));
    msilo_message_t *got = NULL;
    assert_ok(msilo_store_get(s, m->id, &got));
    assert_string_equal(got->ctype, "text/plain");
    assert_null(got->callid);
    msilo_message_free(got);
    msilo_message_free(m);
    msilo_store_free(s);

    /* not an msilo table */
    exec_sql(path, "CREATE TABLE notsilo (a INTEGER)");
    assert_int_equal(msilo_sqlite_migrate(path, "notsilo", NULL), MSILO_ECONFIG);
    assert_non_null(strstr(msilo_error_detail(), "not an msilo table"));
    g_free(path);
}

static void remove_files(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        char *p = g_build_filename(dir, name, NULL);
        g_unlink(p);
        g_free(p);
    }
    if (d)
        g_dir_close(d);
}

int main(void)
{
    tmpdir = g_dir_make_tmp("msilo-sqlite-XXXXXX", NULL);
    if (!tmpdir)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durable_across_reopen),
        cmocka_unit_test(test_locations),
        cmocka_unit_test(test_connections_share_file),
        cmocka_unit_test(test_migrate),
    };
    int failed = cmocka_run_group_tests_name("sqlite", tests, NULL, NULL);
    remove_files(tmpdir);
    g_rmdir(tmpdir);
    g_free(tmpdir);
    return failed;
}
