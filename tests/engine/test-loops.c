/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hosts without a GLib loop: msilo_engine_iterate() alone (no
 * g_main_context_iteration, no GMainLoop in these tests) runs retries,
 * expiry, reminders and completions by a fake clock; the blocking calls'
 * _timeout forms return MSILO_ETIMEDOUT, a late store callback only logs,
 * a timed-out dump is cancelled and returns its counts.
 *
 * A "gated" store (a blocking wrapper of the memory store whose put waits
 * until the test opens the gate) plays a database that hangs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake.h"
#include "../../lib/tsan.h"

#define T0 1800000000 /* 2027-01-15T08:00:00Z */
#define ALICE "sip:alice@example.org"

/* ---- a store that hangs until told ------------------------------------------ */

typedef struct gated_store {
    msilo_store_t base;
    msilo_store_t *inner; /* the memory store (thread-safe) */
    GMutex lock;
    GCond cond;
    gboolean open;
    gboolean held; /* test_iterate_other_thread: the other thread owns the context */
} gated_store;

/* The gate's lock, told to ThreadSanitizer (GLib's GMutex is invisible to it:
 * lib/tsan.h). */
static void gate_lock(gated_store *g)
{
    g_mutex_lock(&g->lock);
    msilo_tsan_acquire(g);
}

static void gate_unlock(gated_store *g)
{
    msilo_tsan_release(g);
    g_mutex_unlock(&g->lock);
}

static void gate_wait(gated_store *g)
{
    msilo_tsan_release(g);
    g_cond_wait(&g->cond, &g->lock);
    msilo_tsan_acquire(g);
}

static int g_put(msilo_store_t *s, msilo_message_t *const *msgs, size_t n, int64_t max,
                 int *results)
{
    gated_store *g = (gated_store *)s;
    gate_lock(g);
    while (!g->open)
        gate_wait(g);
    gate_unlock(g);
    return msilo_store_put(g->inner, msgs, n, max, results);
}

static int g_claim(msilo_store_t *s, const msilo_store_claim_t *c, msilo_message_t ***ret,
                   size_t *ret_n)
{
    return msilo_store_claim(((gated_store *)s)->inner, c, ret, ret_n);
}

static int g_remove(msilo_store_t *s, const int64_t *ids, size_t n, size_t *ret)
{
    return msilo_store_remove(((gated_store *)s)->inner, ids, n, ret);
}

static int g_release(msilo_store_t *s, const msilo_store_release_t *items, size_t n,
                     size_t item_size)
{
    return msilo_store_release(((gated_store *)s)->inner, items, n, item_size);
}

static int g_count(msilo_store_t *s, const char *user, const char *domain, int64_t *ret)
{
    return msilo_store_count(((gated_store *)s)->inner, user, domain, ret);
}

static int g_expire(msilo_store_t *s, int64_t now, size_t *ret)
{
    return msilo_store_expire(((gated_store *)s)->inner, now, ret);
}

static void g_free_store(msilo_store_t *s)
{
    gated_store *g = (gated_store *)s;
    msilo_store_free(g->inner);
    g_mutex_clear(&g->lock);
    g_cond_clear(&g->cond);
    g_free(g);
}

static gated_store *gated_store_new(void)
{
    gated_store *g = g_new0(gated_store, 1);
    g->base = (msilo_store_t)MSILO_STORE_INIT;
    g->base.name = "gated";
    g->base.put = g_put;
    g->base.claim = g_claim;
    g->base.remove = g_remove;
    g->base.release = g_release;
    g->base.count = g_count;
    g->base.expire = g_expire;
    g->base.free = g_free_store;
    g_mutex_init(&g->lock);
    g_cond_init(&g->cond);
    assert_int_equal(msilo_memory_store_new(&g->inner), 0);
    return g;
}

static void gate_open(gated_store *g)
{
    gate_lock(g);
    g->open = TRUE;
    g_cond_broadcast(&g->cond);
    gate_unlock(g);
}

/* ---- fixture ------------------------------------------------------------------ */

typedef struct fixture {
    GMainContext *ctx;
    fake_clock_t clock;
    msilo_config_t *cfg;
    msilo_store_t *store;
    gated_store *gated; /* when the test uses it: f->store is &gated->base */
    fake_transport_t *tr;
    msilo_engine_t *e;
    GString *log;
} fixture;

static void log_cb(msilo_log_level_t level, const char *msg, void *data)
{
    (void)level;
    GString *log = data;
    g_string_append(log, msg);
    g_string_append_c(log, '\n');
}

static int setup(void **state)
{
    fixture *f = g_new0(fixture, 1);
    f->ctx = g_main_context_new();
    f->clock.now = T0;
    f->log = g_string_new(NULL);
    assert_int_equal(msilo_config_new(&f->cfg), 0);
    assert_int_equal(msilo_config_set(f->cfg, "check_time", "10"), 0);
    f->tr = fake_transport_new(f->ctx);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    msilo_engine_free(f->e);
    msilo_transport_free(&f->tr->base);
    msilo_store_free(f->store);
    msilo_config_free(f->cfg);
    g_string_free(f->log, TRUE);
    g_main_context_unref(f->ctx);
    g_free(f);
    return 0;
}

static void start(fixture *f, gboolean gated)
{
    if (gated) {
        f->gated = gated_store_new();
        f->store = &f->gated->base;
    } else {
        assert_int_equal(msilo_memory_store_new(&f->store), 0);
    }
    int rc = msilo_engine_new(&f->e, f->cfg, f->store, &f->tr->base, f->ctx);
    if (rc)
        fail_msg("msilo_engine_new: %s (%s)", msilo_strerror(rc), msilo_error_detail());
    msilo_engine_set_clock(f->e, fake_clock_read, &f->clock);
    msilo_engine_set_log(f->e, log_cb, f->log);
}

static msilo_request_t message(const char *to, const char *body)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.method = "MESSAGE";
    r.ruri = to;
    r.to = to;
    r.from = "<sip:bob@example.org>;tag=1";
    r.body = body;
    r.body_len = strlen(body);
    return r;
}

static msilo_request_t register_req(const char *to, const char *contact, long expires)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.method = "REGISTER";
    r.to = to;
    r.contact = contact;
    r.expires = expires;
    return r;
}

/* Calls msilo_engine_iterate(e, 0), and only it, until the engine is idle
 * (bounded: a bug fails the test, it never hangs it). */
static void iterate_idle(fixture *f)
{
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(msilo_engine_iterate(f->e, 0), 0);
        if (msilo_engine_pending(f->e) == 0 &&
            msilo_engine_stat(f->e, MSILO_STAT_IN_FLIGHT) == 0)
            return;
    }
    fail_msg("the engine did not get idle");
}

static void stored_cb(msilo_engine_t *e, int rc, int64_t id, void *data)
{
    (void)e;
    (void)id;
    *(int *)data = rc == 0 ? 1 : rc;
}

static void store_async(fixture *f, const msilo_request_t *r)
{
    int done = 0;
    assert_int_equal(msilo_engine_store(f->e, r, NULL, stored_cb, &done), 0);
    iterate_idle(f);
    assert_int_equal(done, 1);
}

static int64_t count(fixture *f, const char *user)
{
    int64_t n = -1;
    assert_int_equal(msilo_store_count(f->store, user, "example.org", &n), 0);
    return n;
}

/* ---- msilo_engine_iterate() ---------------------------------------------------- */

static void test_iterate_runs_retries_expiry_reminders(void **state)
{
    fixture *f = *state;
    assert_int_equal(msilo_config_set(f->cfg, "clean_period", "1"), 0);
    assert_int_equal(msilo_config_set(f->cfg, "reminder", "sip:reminder@example.org"), 0);
    assert_int_equal(msilo_config_set(f->cfg, "send_time", "10"), 0);
    start(f, FALSE);
    f->tr->auto_status = 500; /* answered from the context: iterate dispatches it */

    msilo_request_t m = message(ALICE, "retry me");
    store_async(f, &m);
    msilo_request_t r = message("sip:bob@example.org", "remind me");
    r.snd_time = "20270115080030"; /* T0 + 30 s (TZ=UTC) */
    store_async(f, &r);
    msilo_request_t x = message("sip:carol@example.org", "expire me");
    x.expires = 20;
    store_async(f, &x);
    assert_int_equal(count(f, "carol"), 1);

    /* alice registers; the first delivery fails */
    msilo_request_t reg = register_req(ALICE, "<sip:alice@192.0.2.1>", 3600);
    assert_int_equal(msilo_engine_dump(f->e, &reg, NULL, 0, NULL, NULL), 0);
    iterate_idle(f);
    assert_int_equal(f->tr->sent->len, 1);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_FAILED_MESSAGES), 1);

    /* the retry: due by the fake clock, run by iterate alone */
    f->tr->auto_status = 200;
    f->clock.now = T0 + 11;
    iterate_idle(f);
    assert_int_equal(f->tr->sent->len, 2);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_MESSAGES), 1);
    assert_int_equal(count(f, "alice"), 0);

    /* the reminder and the expiry */
    f->clock.now = T0 + 31;
    iterate_idle(f);
    assert_int_equal(f->tr->sent->len, 3);
    const fake_sent_t *s = f->tr->sent->pdata[2];
    assert_string_equal(s->ruri, "sip:bob@example.org");
    assert_string_equal(s->from, "sip:reminder@example.org");
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_REMINDERS), 1);
    assert_int_equal(count(f, "bob"), 0);
    assert_int_equal(count(f, "carol"), 0);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_EXPIRED_MESSAGES), 1);
}

static void test_iterate_waits_at_most_timeout(void **state)
{
    fixture *f = *state;
    start(f, FALSE);
    iterate_idle(f);
    gint64 t = g_get_monotonic_time();
    assert_int_equal(msilo_engine_iterate(f->e, 0), 0);
    assert_int_equal(msilo_engine_iterate(f->e, 20), 0);
    /* the deadline (or the engine's 1-second timer, whichever is first) */
    assert_true(g_get_monotonic_time() - t < 1500 * 1000);
    assert_int_equal(msilo_engine_iterate(NULL, 0), MSILO_EINVAL);
}

/* A store completed by the engine's worker thread wakes a waiting iterate. */
static void test_iterate_wakes_for_worker(void **state)
{
    fixture *f = *state;
    start(f, TRUE);
    gate_open(f->gated);
    msilo_request_t m = message(ALICE, "from a worker");
    int done = 0;
    assert_int_equal(msilo_engine_store(f->e, &m, NULL, stored_cb, &done), 0);
    for (int i = 0; i < 50 && !done; i++)
        assert_int_equal(msilo_engine_iterate(f->e, 1000), 0);
    assert_int_equal(done, 1);
    assert_int_equal(count(f, "alice"), 1);
}

static gpointer hold_context(gpointer data)
{
    fixture *f = data;
    g_main_context_acquire(f->ctx);
    /* the test's thread tries now; it signals back by the store's gate */
    gate_lock(f->gated);
    f->gated->held = TRUE;
    g_cond_broadcast(&f->gated->cond);
    while (!f->gated->open)
        gate_wait(f->gated);
    gate_unlock(f->gated);
    g_main_context_release(f->ctx);
    return NULL;
}

static void test_iterate_other_thread(void **state)
{
    fixture *f = *state;
    start(f, TRUE);
    /* the thread takes the context; wait until it owns it */
    GThread *th = g_thread_new("holder", hold_context, f);
    gate_lock(f->gated);
    while (!f->gated->held)
        gate_wait(f->gated);
    gate_unlock(f->gated);
    assert_int_equal(msilo_engine_iterate(f->e, 0), MSILO_ETHREAD);
    gate_open(f->gated);
    g_thread_join(th);
    assert_int_equal(msilo_engine_iterate(f->e, 0), 0);
}

/* ---- the _timeout forms --------------------------------------------------------- */

static void test_store_sync_timeout(void **state)
{
    fixture *f = *state;
    start(f, TRUE); /* the database hangs */
    msilo_request_t m = message(ALICE, "slow");
    int64_t id = -5;
    assert_int_equal(msilo_engine_store_sync_timeout(f->e, &m, NULL, 30, &id), MSILO_ETIMEDOUT);
    assert_int_equal(id, -5); /* not written */
    /* the outcome comes later: it commits, and is only logged */
    gate_open(f->gated);
    for (int i = 0; i < 50 && msilo_engine_pending(f->e); i++)
        assert_int_equal(msilo_engine_iterate(f->e, 1000), 0);
    assert_int_equal(msilo_engine_pending(f->e), 0);
    assert_int_equal(count(f, "alice"), 1);
    assert_non_null(strstr(f->log->str, "timed out committed later"));
    /* with time enough it is the plain blocking store */
    id = 0;
    assert_int_equal(msilo_engine_store_sync_timeout(f->e, &m, NULL, 10000, &id), 0);
    assert_true(id > 0);
    assert_int_equal(msilo_engine_store_sync_timeout(NULL, &m, NULL, 10, &id), MSILO_EINVAL);
}

/* The late callback of a timed-out store runs at msilo_engine_free() at the
 * latest, and frees its state (ASan sees a leak otherwise). */
static void test_store_sync_timeout_then_free(void **state)
{
    fixture *f = *state;
    start(f, TRUE);
    msilo_request_t m = message(ALICE, "slow");
    assert_int_equal(msilo_engine_store_sync_timeout(f->e, &m, NULL, 0, NULL), MSILO_ETIMEDOUT);
    gate_open(f->gated);
    msilo_engine_free(f->e);
    f->e = NULL;
    assert_non_null(strstr(f->log->str, "timed out"));
}

static void test_dump_sync_timeout(void **state)
{
    fixture *f = *state;
    assert_int_equal(msilo_config_set(f->cfg, "dump_window", "1"), 0);
    start(f, FALSE);
    for (int i = 0; i < 3; i++) {
        msilo_request_t m = message(ALICE, "wait");
        assert_int_equal(msilo_engine_store_sync_timeout(f->e, &m, NULL, 10000, NULL), 0);
    }
    /* the UA never answers (no auto_status) */
    msilo_request_t reg = register_req(ALICE, "<sip:alice@192.0.2.1>", 3600);
    msilo_dump_result_t res = { 99, 99, 99 };
    assert_int_equal(msilo_engine_dump_sync_timeout(f->e, &reg, NULL, 0, 30, &res, sizeof res),
                     MSILO_ETIMEDOUT);
    assert_int_equal(res.claimed, 3);
    assert_int_equal(res.delivered, 0);
    assert_int_equal(f->tr->sent->len, 1);
    /* cancelled: the two not sent are free for a claim at once */
    msilo_store_claim_t c = { .user = "alice", .domain = "example.org", .now = f->clock.now,
                              .max_next_try = INT64_MAX, .lease_owner = "other",
                              .lease_until = f->clock.now + 5, .max = 10 };
    msilo_message_t **msgs = NULL;
    size_t n = 0;
    assert_int_equal(msilo_store_claim(f->store, &c, &msgs, &n), 0);
    assert_int_equal(n, 2);
    msilo_message_array_free(msgs, n);
    /* the send in flight finishes normally later: its 2xx deletes */
    fake_transport_answer(f->tr, 0, 200);
    iterate_idle(f);
    assert_int_equal(count(f, "alice"), 2);
    assert_non_null(strstr(f->log->str, "a dump that timed out ended"));
    /* no retries after the cancel */
    f->clock.now += 3600;
    iterate_idle(f);
    assert_int_equal(f->tr->sent->len, 1);
}

static void test_dump_sync_timeout_in_time(void **state)
{
    fixture *f = *state;
    start(f, FALSE);
    f->tr->auto_status = 200;
    msilo_request_t m = message(ALICE, "quick");
    assert_int_equal(msilo_engine_store_sync_timeout(f->e, &m, NULL, 10000, NULL), 0);
    msilo_request_t reg = register_req(ALICE, "<sip:alice@192.0.2.1>", 3600);
    msilo_dump_result_t res = { 0 };
    assert_int_equal(
        msilo_engine_dump_sync_timeout(f->e, &reg, NULL, 0, 10000, &res, sizeof res), 0);
    assert_int_equal(res.delivered, 1);
    assert_int_equal(count(f, "alice"), 0);
    assert_int_equal(msilo_engine_dump_sync_timeout(f->e, NULL, NULL, 0, 10, &res, sizeof res),
                     MSILO_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_iterate_runs_retries_expiry_reminders, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_iterate_waits_at_most_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iterate_wakes_for_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iterate_other_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_sync_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_sync_timeout_then_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_sync_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_sync_timeout_in_time, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
