/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The engine on a real PostgreSQL that fails under it, without touching the
 * cluster the other tests share: each test gets a database of its own, so
 * that its store's backends are found by name (pg_stat_activity.datname)
 * and only they are made to fail.
 *
 * - Store errors reach the caller: the database stops taking connections
 *   and the store's backend is terminated; msilo_engine_store() completes
 *   with MSILO_ESTORE, msilo_error_detail() in the callback holds the
 *   server's/libpq's message, and so does the engine's log line.
 * - msilo_pg_error_detail() (deprecated) is the calling thread's
 *   msilo_error_detail(), never a stale value.
 * - A bounded shutdown with the store frozen: the store connection's backend
 *   gets SIGSTOP; msilo_engine_shutdown(500 ms) completes with
 *   MSILO_ETIMEDOUT within a bound, msilo_engine_free() returns promptly
 *   (the store was interrupted), and after SIGCONT an engine with the same
 *   instance_id delivers every message that was claimed or in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "fake-transport.h"
#include "pg-test-util.h"

#define WAIT_MAX (20 * G_USEC_PER_SEC)

typedef struct fixture {
    PGconn *admin;  /* to the shared test database: creates, drops, inspects */
    char *db;       /* this test's database */
    char *url;      /* pgt_url() with that database */
    msilo_pg_options_t *opts;
    long frozen;    /* a backend stopped with SIGSTOP, 0 when none */
    GMainContext *ctx;
    fake_transport_t *tr;
    GPtrArray *log; /* char* */
    int stores_done, last_rc;
    char *last_detail;
    int stop_calls, stop_result;
} fixture;

static void log_hook(msilo_log_level_t lvl, const char *msg, void *data)
{
    (void)lvl;
    g_ptr_array_add(((fixture *)data)->log, g_strdup(msg));
}

static gboolean log_has(const fixture *f, const char *a, const char *b)
{
    for (guint i = 0; i < f->log->len; i++)
        if (strstr(f->log->pdata[i], a) && strstr(f->log->pdata[i], b))
            return TRUE;
    return FALSE;
}

static void sql(fixture *f, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void sql(fixture *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    assert_true(pgt_exec(f->admin, s));
    g_free(s);
}

static int setup(void **state)
{
    fixture *f = g_new0(fixture, 1);
    f->admin = pgt_connect();
    f->db = pgt_table_name("msilo_shutdown");
    sql(f, "CREATE DATABASE %s", f->db);
    const char *base = pgt_url();
    const char *slash = strrchr(base, '/');
    assert_non_null(slash);
    f->url = g_strdup_printf("%.*s/%s", (int)(slash - base), base, f->db);
    assert_int_equal(msilo_pg_options_new(&f->opts), 0);
    assert_int_equal(msilo_pg_options_set(f->opts, "db_url", f->url), 0);
    int rc = msilo_pg_migrate(f->opts, 0, NULL);
    if (rc)
        fail_msg("migrate: %s: %s", msilo_strerror(rc), msilo_error_detail());
    f->ctx = g_main_context_new();
    f->tr = fake_transport_new(f->ctx);
    f->log = g_ptr_array_new_with_free_func(g_free);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->frozen)
        kill((pid_t)f->frozen, SIGCONT); /* whatever happened */
    sql(f, "ALTER DATABASE %s ALLOW_CONNECTIONS true", f->db);
    sql(f, "DROP DATABASE %s WITH (FORCE)", f->db);
    PQfinish(f->admin);
    msilo_transport_free(&f->tr->base);
    while (g_main_context_iteration(f->ctx, FALSE))
        ;
    g_main_context_unref(f->ctx);
    msilo_pg_options_free(f->opts);
    g_ptr_array_unref(f->log);
    g_free(f->last_detail);
    g_free(f->url);
    g_free(f->db);
    g_free(f);
    return 0;
}

static msilo_store_t *open_store(fixture *f)
{
    msilo_store_t *s = NULL;
    int rc = msilo_pg_store_new(&s, f->opts);
    if (rc)
        fail_msg("store: %s: %s", msilo_strerror(rc), msilo_error_detail());
    return s;
}

static msilo_engine_t *engine(fixture *f, msilo_store_t *s)
{
    msilo_config_t *cfg;
    assert_int_equal(msilo_config_new(&cfg), 0);
    char *iid = g_strdup_printf("pg-shutdown-%s", f->db);
    assert_int_equal(msilo_config_set(cfg, "instance_id", iid), 0);
    assert_int_equal(msilo_config_set(cfg, "dump_window", "1"), 0);
    g_free(iid);
    msilo_engine_t *e = NULL;
    int rc = msilo_engine_new(&e, cfg, s, &f->tr->base, f->ctx);
    msilo_config_free(cfg);
    if (rc)
        fail_msg("engine: %s: %s", msilo_strerror(rc), msilo_error_detail());
    msilo_engine_set_log(e, log_hook, f);
    return e;
}

static msilo_request_t message(const char *body)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.method = "MESSAGE";
    r.ruri = r.to = "sip:alice@example.org";
    r.from = "<sip:bob@example.org>;tag=1";
    r.body = body;
    r.body_len = strlen(body);
    return r;
}

static void store_cb(msilo_engine_t *e, int result, int64_t id, void *data)
{
    (void)e;
    (void)id;
    fixture *f = data;
    f->stores_done++;
    f->last_rc = result;
    g_free(f->last_detail);
    f->last_detail = g_strdup(msilo_error_detail());
}

static void stop_cb(msilo_engine_t *e, int result, void *data)
{
    (void)e;
    fixture *f = data;
    f->stop_calls++;
    f->stop_result = result;
}

static void run_until(fixture *f, const int *counter, int want)
{
    gint64 until = g_get_monotonic_time() + WAIT_MAX;
    while (*counter < want && g_get_monotonic_time() < until)
        g_main_context_iteration(f->ctx, TRUE);
    assert_int_equal(*counter, want);
}

static void run_until_sent(fixture *f, guint n)
{
    gint64 until = g_get_monotonic_time() + WAIT_MAX;
    while (f->tr->sent->len < n && g_get_monotonic_time() < until)
        g_main_context_iteration(f->ctx, TRUE);
    assert_int_equal(f->tr->sent->len, n);
}

/* The pids of the backends connected to this test's database. */
static GArray *backends(fixture *f)
{
    char *q = g_strdup_printf("SELECT pid FROM pg_stat_activity WHERE datname = '%s'", f->db);
    PGresult *r = PQexec(f->admin, q);
    g_free(q);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    GArray *pids = g_array_new(FALSE, FALSE, sizeof(long));
    for (int i = 0; i < PQntuples(r); i++) {
        long pid = strtol(PQgetvalue(r, i, 0), NULL, 10);
        g_array_append_val(pids, pid);
    }
    PQclear(r);
    return pids;
}

/* ---- errors --------------------------------------------------------------- */

static void test_store_error_reaches_callback(void **state)
{
    fixture *f = *state;
    msilo_store_t *s = open_store(f);
    msilo_engine_t *e = engine(f, s);
    int64_t id = 0;
    msilo_request_t ok = message("before");
    assert_int_equal(msilo_engine_store_sync(e, &ok, NULL, &id), 0);

    /* the server goes away for this store: its backends end, and no new
     * connection is accepted */
    sql(f, "ALTER DATABASE %s ALLOW_CONNECTIONS false", f->db);
    sql(f, "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = '%s'",
        f->db);

    msilo_request_t r = message("during");
    assert_int_equal(msilo_engine_store(e, &r, NULL, store_cb, f), 0);
    run_until(f, &f->stores_done, 1);
    assert_int_equal(f->last_rc, MSILO_ESTORE);
    fprintf(stderr, "detail in the callback: %s\n", f->last_detail);
    /* the server's message as libpq reports it, one line */
    const char *libpq_says = strstr(f->last_detail, "not currently accepting connections")
                                 ? "not currently accepting connections"
                             : strstr(f->last_detail, "server closed the connection")
                                 ? "server closed the connection"
                                 : "terminating connection";
    assert_non_null(strstr(f->last_detail, libpq_says));
    assert_null(strchr(f->last_detail, '\n'));
    assert_true(log_has(f, "store for alice@example.org failed", libpq_says));
    msilo_engine_free(e);
    msilo_store_free(s);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static const char *pg_detail(void)
{
    return msilo_pg_error_detail();
}
#pragma GCC diagnostic pop

static gpointer fail_on_thread(gpointer data)
{
    (void)data;
    msilo_pg_options_t *o = NULL;
    msilo_pg_options_new(&o);
    msilo_pg_options_set(o, "no_such_key_on_a_thread", "x");
    msilo_pg_options_free(o);
    return g_strdup(pg_detail());
}

static void test_pg_error_detail_is_the_threads(void **state)
{
    (void)state;
    msilo_pg_options_t *o = NULL;
    assert_int_equal(msilo_pg_options_new(&o), 0);
    assert_int_equal(msilo_pg_options_set(o, "no_such_key", "x"), MSILO_ECONFIG);
    assert_non_null(strstr(msilo_error_detail(), "no_such_key"));
    assert_string_equal(pg_detail(), msilo_error_detail());
    /* another thread's failure stays the other thread's */
    char *other = g_thread_join(g_thread_new("fail", fail_on_thread, NULL));
    assert_non_null(strstr(other, "no_such_key_on_a_thread"));
    assert_null(strstr(pg_detail(), "on_a_thread"));
    g_free(other);
    /* a later failure elsewhere in libmsilo replaces it: never stale */
    msilo_store_t *mem = NULL;
    assert_int_equal(msilo_memory_store_new(&mem), 0);
    msilo_message_t *m = NULL;
    assert_int_equal(msilo_store_get(mem, 4242, &m), MSILO_ENOTFOUND);
    assert_non_null(strstr(pg_detail(), "4242"));
    assert_string_equal(pg_detail(), msilo_error_detail());
    msilo_store_free(mem);
    msilo_pg_options_free(o);
}

/* ---- a bounded shutdown with the store frozen ------------------------------- */

static void test_shutdown_frozen_store(void **state)
{
    fixture *f = *state;
    msilo_store_t *s = open_store(f);
    GArray *pids = backends(f);
    assert_int_equal(pids->len, 1); /* only the store's connection so far */
    long store_pid = g_array_index(pids, long, 0);
    g_array_unref(pids);

    msilo_engine_t *e = engine(f, s);
    for (int i = 0; i < 3; i++) {
        char body[16];
        g_snprintf(body, sizeof body, "m%d", i);
        msilo_request_t r = message(body);
        assert_int_equal(msilo_engine_store_sync(e, &r, NULL, NULL), 0);
    }
    /* dump_window 1: one in flight, two claimed and waiting */
    msilo_request_t reg = MSILO_REQUEST_INIT;
    reg.method = "REGISTER";
    reg.ruri = "sip:example.org";
    reg.to = reg.from = "sip:alice@example.org";
    reg.contact = "<sip:alice@192.0.2.1>";
    reg.expires = 3600;
    assert_int_equal(msilo_engine_dump(e, &reg, NULL, 0, NULL, NULL), 0);
    run_until_sent(f, 1);

    /* freeze the store connection's backend: its next call blocks */
    assert_int_equal(kill((pid_t)store_pid, SIGSTOP), 0);
    f->frozen = store_pid;
    msilo_request_t late = message("stuck");
    assert_int_equal(msilo_engine_store(e, &late, NULL, store_cb, f), 0);

    gint64 t0 = g_get_monotonic_time();
    assert_int_equal(msilo_engine_shutdown(e, 500, stop_cb, f), 0);
    /* the delivery in flight finishes (nothing new is sent after it); its
     * delete queues behind the stuck put */
    fake_transport_answer(f->tr, 0, 200);
    run_until(f, &f->stop_calls, 1);
    assert_int_equal(f->tr->sent->len, 1);
    gint64 took = g_get_monotonic_time() - t0;
    assert_int_equal(f->stop_result, MSILO_ETIMEDOUT);
    fprintf(stderr, "shutdown took %lld ms\n", (long long)(took / 1000));
    assert_true(took >= 500 * G_TIME_SPAN_MILLISECOND);
    assert_true(took < 3 * G_USEC_PER_SEC);

    gint64 t1 = g_get_monotonic_time();
    msilo_engine_free(e);
    gint64 free_took = g_get_monotonic_time() - t1;
    fprintf(stderr, "free took %lld ms; the stuck store: %s (%s)\n",
            (long long)(free_took / 1000), msilo_strerror(f->last_rc), f->last_detail);
    assert_true(free_took < 2 * G_USEC_PER_SEC);
    assert_int_equal(f->stores_done, 1);
    assert_int_not_equal(f->last_rc, 0); /* never reported stored */
    msilo_store_free(s);
    assert_int_equal(kill((pid_t)store_pid, SIGCONT), 0);
    f->frozen = 0;

    /* a restart with the same instance_id takes every lease back at once:
     * the two claimed and given back in vain, and the one delivered whose
     * delete never reached the store (delivered again: not lost) */
    assert_int_equal(fake_transport_answer_all(f->tr, 200), 0);
    g_ptr_array_set_size(f->tr->sent, 0);
    s = open_store(f);
    e = engine(f, s);
    assert_int_equal(msilo_engine_dump(e, &reg, NULL, 0, NULL, NULL), 0);
    gboolean seen[3] = { FALSE, FALSE, FALSE };
    gint64 until = g_get_monotonic_time() + WAIT_MAX;
    guint answered = 0;
    while (g_get_monotonic_time() < until && !(seen[0] && seen[1] && seen[2])) {
        g_main_context_iteration(f->ctx, TRUE);
        for (; answered < f->tr->sent->len; answered++) {
            fake_sent_t *sent = f->tr->sent->pdata[answered];
            gsize n = 0;
            const char *data = g_bytes_get_data(sent->body, &n);
            char *body = g_strndup(data, n);
            for (int i = 0; i < 3; i++) {
                char want[16];
                g_snprintf(want, sizeof want, "m%d", i);
                if (g_str_has_suffix(body, want))
                    seen[i] = TRUE;
            }
            g_free(body);
            fake_transport_answer(f->tr, answered, 200);
        }
    }
    assert_true(seen[0] && seen[1] && seen[2]);
    msilo_engine_free(e);
    fake_transport_answer_all(f->tr, 200); /* the stuck one, if the server stored it after all */
    msilo_store_free(s);
}

int main(void)
{
    pgt_url(); /* exits 77 when there is no database */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_error_detail_is_the_threads),
        cmocka_unit_test_setup_teardown(test_store_error_reaches_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_frozen_store, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
