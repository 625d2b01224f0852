/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SQLite store's interrupt method (msilo_store_interrupt()) and its
 * error details:
 * - a put waiting for another connection's write lock (the busy timeout is
 *   10 s) returns MSILO_ESTORE promptly once interrupted, and every later
 *   call fails at once, with a detail that says so;
 * - a write the database refuses reaches msilo_error_detail() with SQLite's
 *   message, through msilo_store_fail(), and through the engine's store
 *   callback and log line.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <msilo/msilo.h>
#include <msilo/sqlite.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/tsan.h"

static msilo_message_t *mk(const char *body)
{
    msilo_message_t *m = msilo_message_new();
    m->user = g_strdup("alice");
    m->domain = g_strdup("example.org");
    m->src = g_strdup("sip:bob@example.org");
    m->dst = g_strdup("sip:alice@example.org");
    m->body = g_strdup(body);
    m->body_len = strlen(body);
    m->inc_time = 1000;
    m->exp_time = 100000;
    return m;
}

typedef struct put_call {
    msilo_store_t *s;
    GMutex lock;
    GCond cond;
    gboolean started;
    int rc;
    char *detail;
    gint64 returned; /* monotonic */
} put_call;

static gpointer put_thread(gpointer data)
{
    put_call *p = data;
    msilo_message_t *m = mk("blocked");
    int res = 1;
    g_mutex_lock(&p->lock);
    msilo_tsan_acquire(p);
    p->started = TRUE;
    g_cond_broadcast(&p->cond);
    msilo_tsan_release(p); /* lib/tsan.h: TSan does not see GMutex */
    g_mutex_unlock(&p->lock);
    p->rc = msilo_store_put(p->s, &m, 1, 0, &res);
    p->detail = g_strdup(msilo_error_detail());
    p->returned = g_get_monotonic_time();
    msilo_message_free(m);
    return NULL;
}

static void test_interrupt_busy_put(void **state)
{
    (void)state;
    char *dir = g_dir_make_tmp("msilo-sqlite-int-XXXXXX", NULL);
    char *path = g_build_filename(dir, "int.db", NULL);
    msilo_store_t *s = NULL;
    assert_int_equal(msilo_sqlite_store_new(&s, path), 0);
    assert_int_equal(s->version, MSILO_STORE_VERSION);
    assert_non_null(s->interrupt);

    /* another connection holds the write lock */
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);

    put_call p = { .s = s };
    g_mutex_init(&p.lock);
    g_cond_init(&p.cond);
    GThread *t = g_thread_new("put", put_thread, &p);
    g_mutex_lock(&p.lock);
    msilo_tsan_acquire(&p);
    while (!p.started) {
        msilo_tsan_release(&p);
        g_cond_wait(&p.cond, &p.lock);
        msilo_tsan_acquire(&p);
    }
    msilo_tsan_release(&p);
    g_mutex_unlock(&p.lock);
    /* before or during its busy wait: either way it returns promptly */
    gint64 t0 = g_get_monotonic_time();
    assert_int_equal(msilo_store_interrupt(s), 0);
    g_thread_join(t);
    fprintf(stderr, "interrupted put: %s after %lld ms\n", p.detail,
            (long long)((p.returned - t0) / 1000));
    assert_int_equal(p.rc, MSILO_ESTORE);
    assert_true(p.returned - t0 < 5 * G_USEC_PER_SEC); /* the busy timeout is 10 s */

    /* later calls fail at once, saying why */
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    int64_t n = -1;
    assert_int_equal(msilo_store_count(s, NULL, NULL, &n), MSILO_ESTORE);
    assert_non_null(strstr(msilo_error_detail(), "interrupted"));
    assert_int_equal(n, -1);

    /* no transaction was left open: another connection writes at once */
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE; COMMIT", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(other);
    g_free(p.detail);
    g_mutex_clear(&p.lock);
    g_cond_clear(&p.cond);
    msilo_store_free(s);
    g_remove(path);
    g_free(path);
    char *wal = g_strconcat(dir, "/int.db-wal", NULL), *shm = g_strconcat(dir, "/int.db-shm", NULL);
    g_remove(wal);
    g_remove(shm);
    g_free(wal);
    g_free(shm);
    g_rmdir(dir);
    g_free(dir);
}

/* The memory store has no interrupt: the wrapper says so. */
static void test_interrupt_unsupported(void **state)
{
    (void)state;
    msilo_store_t *m = NULL;
    assert_int_equal(msilo_memory_store_new(&m), 0);
    assert_int_equal(msilo_store_interrupt(m), MSILO_ENOTSUP);
    assert_int_equal(msilo_store_interrupt(NULL), MSILO_EINVAL);
    msilo_store_free(m);
}

/* A write SQLite refuses: its message in the engine's store callback. */
typedef struct {
    int done, rc;
    char *detail;
    char *log;
} engine_result;

static void store_cb(msilo_engine_t *e, int result, int64_t id, void *data)
{
    (void)e;
    (void)id;
    engine_result *r = data;
    r->done++;
    r->rc = result;
    r->detail = g_strdup(msilo_error_detail());
}

static void log_cb(msilo_log_level_t lvl, const char *msg, void *data)
{
    (void)lvl;
    engine_result *r = data;
    if (strstr(msg, "store for")) {
        g_free(r->log);
        r->log = g_strdup(msg);
    }
}

static void test_engine_gets_sqlite_detail(void **state)
{
    (void)state;
    char *dir = g_dir_make_tmp("msilo-sqlite-det-XXXXXX", NULL);
    char *path = g_build_filename(dir, "det.db", NULL);
    msilo_store_t *s = NULL;
    assert_int_equal(msilo_sqlite_store_new(&s, path), 0);
    /* the table refuses every insert (a constraint SQLite reports by name) */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TRIGGER no_inserts BEFORE INSERT ON silo "
                                  "BEGIN SELECT RAISE(ABORT, 'the disk is full, says the test'); END",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    /* the store prepared its statements before the trigger: reopen */
    msilo_store_free(s);
    assert_int_equal(msilo_sqlite_store_new(&s, path), 0);

    GMainContext *ctx = g_main_context_new();
    msilo_engine_t *e = NULL;
    assert_int_equal(msilo_engine_new(&e, NULL, s, NULL, ctx), 0);
    engine_result r = { 0 };
    msilo_engine_set_log(e, log_cb, &r);
    msilo_request_t req = MSILO_REQUEST_INIT;
    req.method = "MESSAGE";
    req.ruri = req.to = "sip:alice@example.org";
    req.from = "<sip:bob@example.org>;tag=1";
    req.body = "hi";
    req.body_len = 2;
    assert_int_equal(msilo_engine_store(e, &req, NULL, store_cb, &r), 0);
    gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!r.done && g_get_monotonic_time() < until)
        g_main_context_iteration(ctx, TRUE);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.rc, MSILO_ESTORE);
    fprintf(stderr, "detail: %s\nlog: %s\n", r.detail, r.log);
    assert_non_null(strstr(r.detail, "the disk is full, says the test"));
    assert_non_null(r.log);
    assert_non_null(strstr(r.log, "the disk is full, says the test"));
    msilo_engine_free(e);
    g_main_context_unref(ctx);
    msilo_store_free(s);
    g_free(r.detail);
    g_free(r.log);
    char *wal = g_strconcat(path, "-wal", NULL), *shm = g_strconcat(path, "-shm", NULL);
    g_remove(path);
    g_remove(wal);
    g_remove(shm);
    g_free(wal);
    g_free(shm);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interrupt_busy_put),
        cmocka_unit_test(test_interrupt_unsupported),
        cmocka_unit_test(test_engine_gets_sqlite_detail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
