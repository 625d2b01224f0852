/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo_engine_shutdown() and the error rules, with a store the test
 * controls: a blocking store (the engine runs it on its worker thread) in
 * front of the memory store, whose put can be held at a gate, made to fail
 * with msilo_store_fail(), and interrupted (the store method of version 3).
 * Also msilo_engine_free() from the engine's callbacks (a g_critical, no
 * abort) and from the shutdown callback (allowed).
 *
 * No sleeping: the test waits on a condition for the worker to reach the
 * gate, and iterates the engine's context until a callback has run.
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
#define WAIT_MAX (10 * G_USEC_PER_SEC)

/* ---- the gate store ------------------------------------------------------- */

typedef struct gate_store {
    msilo_store_t base;
    msilo_store_t *inner; /* the memory store */
    GMutex lock;
    GCond cond;
    gboolean closed;      /* put waits while closed */
    gboolean interrupted; /* gate_interrupt(): every call fails at once */
    guint waiting;        /* puts waiting at the gate */
    const char *fail_put; /* put fails with this detail */
    gboolean fail_remove; /* remove fails */
} gate_store;

/* g->lock; lib/tsan.h: ThreadSanitizer does not see GMutex and GCond */
static void gate_lock(gate_store *g)
{
    g_mutex_lock(&g->lock);
    msilo_tsan_acquire(g);
}

static void gate_unlock(gate_store *g)
{
    msilo_tsan_release(g);
    g_mutex_unlock(&g->lock);
}

static gboolean gate_wait(gate_store *g, gint64 until)
{
    msilo_tsan_release(g);
    gboolean ok = until ? g_cond_wait_until(&g->cond, &g->lock, until)
                        : (g_cond_wait(&g->cond, &g->lock), TRUE);
    msilo_tsan_acquire(g);
    return ok;
}

static int gate_check(gate_store *g)
{
    /* under g->lock */
    if (g->interrupted)
        return msilo_store_fail(MSILO_ESTORE, "gate store: interrupted");
    return 0;
}

static int gate_put(msilo_store_t *base, msilo_message_t *const *msgs, size_t n, int64_t max,
                    int *results)
{
    gate_store *g = (gate_store *)base;
    gate_lock(g);
    g->waiting++;
    g_cond_broadcast(&g->cond);
    while (g->closed && !g->interrupted)
        gate_wait(g, 0);
    g->waiting--;
    int rc = gate_check(g);
    const char *fail = g->fail_put;
    gate_unlock(g);
    if (rc)
        return rc;
    if (fail)
        return msilo_store_fail(MSILO_ESTORE, "gate store: %s\n\tsecond line", fail);
    return msilo_store_put(g->inner, msgs, n, max, results);
}

#define GATE_FORWARD(call)                                                                     \
    gate_store *g = (gate_store *)base;                                                        \
    gate_lock(g);                                                                              \
    int rc = gate_check(g);                                                                    \
    gate_unlock(g);                                                                            \
    return rc ? rc : (call)

static int gate_claim(msilo_store_t *base, const msilo_store_claim_t *c, msilo_message_t ***ret,
                      size_t *ret_n)
{
    GATE_FORWARD(msilo_store_claim(g->inner, c, ret, ret_n));
}

static int gate_remove(msilo_store_t *base, const int64_t *ids, size_t n, size_t *ret_deleted)
{
    if (((gate_store *)base)->fail_remove) /* set before the engine's threads run */
        return msilo_store_fail(MSILO_ESTORE, "gate store: remove refused");
    GATE_FORWARD(msilo_store_remove(g->inner, ids, n, ret_deleted));
}

static int gate_release(msilo_store_t *base, const msilo_store_release_t *items, size_t n,
                        size_t item_size)
{
    GATE_FORWARD(msilo_store_release(g->inner, items, n, item_size));
}

static int gate_count(msilo_store_t *base, const char *user, const char *domain, int64_t *ret)
{
    GATE_FORWARD(msilo_store_count(g->inner, user, domain, ret));
}

static int gate_expire(msilo_store_t *base, int64_t now, size_t *ret_deleted)
{
    GATE_FORWARD(msilo_store_expire(g->inner, now, ret_deleted));
}

static int gate_reset(msilo_store_t *base, const char *lease_owner, size_t *ret_n)
{
    GATE_FORWARD(msilo_store_reset_leases(g->inner, lease_owner, ret_n));
}

static void gate_interrupt(msilo_store_t *base)
{
    gate_store *g = (gate_store *)base;
    gate_lock(g);
    g->interrupted = TRUE;
    g_cond_broadcast(&g->cond);
    gate_unlock(g);
}

static void gate_free(msilo_store_t *base)
{
    gate_store *g = (gate_store *)base;
    msilo_store_free(g->inner);
    g_mutex_clear(&g->lock);
    g_cond_clear(&g->cond);
    g_free(g);
}

static gate_store *gate_new(void)
{
    gate_store *g = g_new0(gate_store, 1);
    g->base = (msilo_store_t)MSILO_STORE_INIT;
    g->base.name = "gate";
    g->base.flags = 0; /* blocking: the engine's worker thread calls it */
    g->base.put = gate_put;
    g->base.claim = gate_claim;
    g->base.remove = gate_remove;
    g->base.release = gate_release;
    g->base.count = gate_count;
    g->base.expire = gate_expire;
    g->base.reset_leases = gate_reset;
    g->base.free = gate_free;
    g->base.interrupt = gate_interrupt;
    g_mutex_init(&g->lock);
    g_cond_init(&g->cond);
    assert_int_equal(msilo_memory_store_new(&g->inner), 0);
    return g;
}

static void gate_set(gate_store *g, gboolean closed)
{
    gate_lock(g);
    g->closed = closed;
    g_cond_broadcast(&g->cond);
    gate_unlock(g);
}

/* Waits (on the condition, bounded) until a put waits at the gate. */
static void gate_wait_blocked(gate_store *g)
{
    gint64 until = g_get_monotonic_time() + WAIT_MAX;
    gate_lock(g);
    while (g->waiting == 0)
        if (!gate_wait(g, until))
            break;
    guint w = g->waiting;
    gate_unlock(g);
    assert_true(w > 0);
}

/* ---- fixture ---------------------------------------------------------------- */

typedef struct fixture {
    GMainContext *ctx;
    fake_clock_t clock;
    gate_store *store;
    fake_transport_t *tr;
    msilo_engine_t *e;
    GPtrArray *log; /* char*: every log line */
    /* the shutdown callback */
    int stop_calls, stop_result;
    gboolean free_in_stop_cb;
    /* store callbacks */
    int stores_done, stores_ok, stores_failed;
    int last_store_rc;
    char *last_detail; /* msilo_error_detail() inside the last store callback */
    gboolean free_in_store_cb;
    int stores_done_at_stop; /* stores_done when the shutdown callback ran */
} fixture;

static void log_hook(msilo_log_level_t lvl, const char *msg, void *data)
{
    (void)lvl;
    fixture *f = data;
    g_ptr_array_add(f->log, g_strdup(msg));
}

static gboolean log_has(const fixture *f, const char *a, const char *b)
{
    for (guint i = 0; i < f->log->len; i++) {
        const char *l = f->log->pdata[i];
        if (strstr(l, a) && (!b || strstr(l, b)))
            return TRUE;
    }
    return FALSE;
}

static int setup(void **state)
{
    fixture *f = g_new0(fixture, 1);
    f->ctx = g_main_context_new();
    f->clock.now = T0;
    f->store = gate_new();
    f->tr = fake_transport_new(f->ctx);
    f->log = g_ptr_array_new_with_free_func(g_free);
    msilo_config_t *cfg;
    assert_int_equal(msilo_config_new(&cfg), 0);
    assert_int_equal(msilo_config_set(cfg, "instance_id", "test-shutdown"), 0);
    assert_int_equal(msilo_config_set(cfg, "dump_window", "1"), 0);
    /* a store goes to the gate at once, not when the loop is next idle: the
     * tests hold a put at the gate without running the loop */
    assert_int_equal(msilo_config_set(cfg, "store_wait_us", "0"), 0);
    assert_int_equal(msilo_engine_new(&f->e, cfg, &f->store->base, &f->tr->base, f->ctx), 0);
    msilo_config_free(cfg);
    msilo_engine_set_clock(f->e, fake_clock_read, &f->clock);
    msilo_engine_set_log(f->e, log_hook, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    gate_set(f->store, FALSE);
    msilo_engine_free(f->e); /* NULL when a test freed it */
    msilo_transport_free(&f->tr->base);
    msilo_store_free(&f->store->base);
    while (g_main_context_iteration(f->ctx, FALSE))
        ;
    g_main_context_unref(f->ctx);
    g_ptr_array_unref(f->log);
    g_free(f->last_detail);
    g_free(f);
    return 0;
}

static msilo_request_t message(const char *to, const char *body)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.method = "MESSAGE";
    r.ruri = to;
    r.to = to;
    r.from = "<sip:bob@example.org>;tag=abc";
    r.body = body;
    r.body_len = strlen(body);
    return r;
}

static msilo_request_t register_req(const char *to, const char *contact)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.method = "REGISTER";
    r.ruri = "sip:example.org";
    r.to = to;
    r.from = to;
    r.contact = contact;
    r.expires = 3600;
    return r;
}

static void store_cb(msilo_engine_t *e, int result, int64_t id, void *data)
{
    (void)id;
    fixture *f = data;
    f->stores_done++;
    f->last_store_rc = result;
    if (result == 0)
        f->stores_ok++;
    else
        f->stores_failed++;
    g_free(f->last_detail);
    f->last_detail = g_strdup(msilo_error_detail());
    if (f->free_in_store_cb)
        msilo_engine_free(e); /* a programming error: refused */
}

static void stop_cb(msilo_engine_t *e, int result, void *data)
{
    fixture *f = data;
    f->stop_calls++;
    f->stop_result = result;
    f->stores_done_at_stop = f->stores_done;
    if (f->free_in_stop_cb) {
        msilo_engine_free(e); /* allowed here */
        f->e = NULL;
    }
}

static void store_async(fixture *f, const char *to, const char *body)
{
    msilo_request_t r = message(to, body);
    int rc = msilo_engine_store(f->e, &r, NULL, store_cb, f);
    if (rc)
        fail_msg("store: %s (%s)", msilo_strerror(rc), msilo_error_detail());
}

/* Iterates the context until the shutdown callback has run (bounded). */
static void run_until_stopped(fixture *f)
{
    gint64 until = g_get_monotonic_time() + WAIT_MAX;
    while (f->stop_calls == 0 && g_get_monotonic_time() < until)
        g_main_context_iteration(f->ctx, TRUE);
    assert_int_equal(f->stop_calls, 1);
}

static void run_until(fixture *f, const int *counter, int want)
{
    gint64 until = g_get_monotonic_time() + WAIT_MAX;
    while (*counter < want && g_get_monotonic_time() < until)
        g_main_context_iteration(f->ctx, TRUE);
    assert_int_equal(*counter, want);
}

static int64_t inner_count(fixture *f)
{
    int64_t n = -1;
    assert_int_equal(msilo_store_count(f->store->inner, NULL, NULL, &n), 0);
    return n;
}

/* ---- tests ------------------------------------------------------------------ */

/* Nothing pending: the callback runs with 0, from the context, never inside
 * the call; new work is refused meanwhile; the engine is freed from it. */
static void test_idle(void **state)
{
    fixture *f = *state;
    f->free_in_stop_cb = TRUE;
    assert_int_equal(msilo_engine_shutdown(f->e, 1000, stop_cb, f), 0);
    assert_int_equal(f->stop_calls, 0); /* never inside the call */
    assert_int_equal(msilo_engine_shutdown(f->e, 1000, stop_cb, f), MSILO_ESHUTDOWN);
    msilo_request_t r = message("sip:alice@example.org", "late");
    assert_int_equal(msilo_engine_store(f->e, &r, NULL, store_cb, f), MSILO_ESHUTDOWN);
    assert_int_equal(msilo_error_sip_status(MSILO_ESHUTDOWN), 503);
    assert_string_equal(msilo_error_name(MSILO_ESHUTDOWN), "MSILO_ESHUTDOWN");
    msilo_request_t reg = register_req("sip:alice@example.org", "<sip:alice@192.0.2.1>");
    assert_int_equal(msilo_engine_dump(f->e, &reg, NULL, 0, NULL, NULL), MSILO_ESHUTDOWN);
    assert_int_equal(msilo_engine_tick(f->e), 0); /* does nothing */
    run_until_stopped(f);
    assert_int_equal(f->stop_result, 0);
    assert_null(f->e); /* freed in the callback */
    assert_int_equal(f->stores_done, 0);
}

/* Stores accepted before the shutdown commit first and get their real result. */
static void test_pending_stores_commit(void **state)
{
    fixture *f = *state;
    gate_set(f->store, TRUE);
    store_async(f, "sip:alice@example.org", "one");
    gate_wait_blocked(f->store); /* the first batch is in the store */
    store_async(f, "sip:alice@example.org", "two");
    store_async(f, "sip:carol@example.org", "three");
    assert_int_equal(msilo_engine_shutdown(f->e, 10000, stop_cb, f), 0);
    msilo_request_t r = message("sip:alice@example.org", "late");
    assert_int_equal(msilo_engine_store(f->e, &r, NULL, store_cb, f), MSILO_ESHUTDOWN);
    gate_set(f->store, FALSE);
    run_until_stopped(f);
    assert_int_equal(f->stop_result, 0);
    assert_int_equal(f->stores_done_at_stop, 3); /* before the shutdown callback */
    assert_int_equal(f->stores_ok, 3);
    assert_int_equal(inner_count(f), 3);
    gint64 t = g_get_monotonic_time();
    msilo_engine_free(f->e);
    f->e = NULL;
    assert_true(g_get_monotonic_time() - t < G_USEC_PER_SEC);
}

/* A store blocked past the deadline: MSILO_ETIMEDOUT, the store is
 * interrupted, free returns at once and the store's callback gets an error
 * (with the store's detail), never 0. */
static void test_deadline_interrupts(void **state)
{
    fixture *f = *state;
    gate_set(f->store, TRUE);
    store_async(f, "sip:alice@example.org", "stuck");
    gate_wait_blocked(f->store);
    gint64 t0 = g_get_monotonic_time();
    assert_int_equal(msilo_engine_shutdown(f->e, 100, stop_cb, f), 0);
    run_until_stopped(f);
    gint64 took = g_get_monotonic_time() - t0;
    assert_int_equal(f->stop_result, MSILO_ETIMEDOUT);
    assert_true(took >= 100 * G_TIME_SPAN_MILLISECOND);
    assert_true(took < 5 * G_USEC_PER_SEC);
    assert_true(log_has(f, "deadline passed", NULL));
    gint64 t1 = g_get_monotonic_time();
    msilo_engine_free(f->e);
    f->e = NULL;
    assert_true(g_get_monotonic_time() - t1 < G_USEC_PER_SEC);
    assert_int_equal(f->stores_done, 1);
    assert_int_equal(f->last_store_rc, MSILO_ESTORE);
    assert_non_null(strstr(f->last_detail, "interrupted"));
    assert_int_equal(inner_count(f), 0);
}

/* A failing put: the callback's msilo_error_detail() is the store's detail
 * (made one line by msilo_store_fail()), and so is the log line. */
static void test_store_error_detail(void **state)
{
    fixture *f = *state;
    f->store->fail_put = "disk on fire";
    store_async(f, "sip:alice@example.org", "x");
    run_until(f, &f->stores_done, 1);
    assert_int_equal(f->last_store_rc, MSILO_ESTORE);
    assert_string_equal(f->last_detail, "gate store: disk on fire  second line");
    assert_true(log_has(f, "store for alice@example.org failed", "disk on fire"));
    /* the loop thread's detail is not left behind for an unrelated success */
    assert_int_equal(msilo_engine_tick(f->e), 0);
}

/* Claimed but not sent at the shutdown: given back at once (no lease left);
 * the delivery in flight finishes; the dump completes with MSILO_ESHUTDOWN. */
static int dump_rc = 1;
static msilo_dump_result_t dump_res;
static int dumps_done;

static void dump_cb(msilo_engine_t *e, int result, const msilo_dump_result_t *res, void *data)
{
    (void)e;
    (void)data;
    dump_rc = result;
    dump_res = *res;
    dumps_done++;
}

static void test_gives_back_claimed(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 3; i++)
        store_async(f, "sip:alice@example.org", "m");
    run_until(f, &f->stores_ok, 3);
    dumps_done = 0;
    msilo_request_t reg = register_req("sip:alice@example.org", "<sip:alice@192.0.2.1>");
    assert_int_equal(msilo_engine_dump(f->e, &reg, NULL, 0, dump_cb, f), 0);
    gint64 until = g_get_monotonic_time() + WAIT_MAX;
    while (f->tr->sent->len < 1 && g_get_monotonic_time() < until)
        g_main_context_iteration(f->ctx, TRUE);
    assert_int_equal(f->tr->sent->len, 1); /* dump_window 1: two more wait, claimed */
    assert_int_equal(msilo_engine_shutdown(f->e, 10000, stop_cb, f), 0);
    /* the first iterations give the two back; nothing else is sent */
    for (int i = 0; i < 5; i++)
        g_main_context_iteration(f->ctx, FALSE);
    assert_int_equal(f->stop_calls, 0); /* a delivery is in flight */
    fake_transport_answer(f->tr, 0, 200);
    run_until_stopped(f);
    assert_int_equal(f->stop_result, 0);
    assert_int_equal(f->tr->sent->len, 1);
    assert_int_equal(dumps_done, 1);
    assert_int_equal(dump_rc, MSILO_ESHUTDOWN);
    assert_int_equal(dump_res.delivered, 1);
    assert_int_equal(inner_count(f), 2);
    /* their leases ended: another instance takes them now */
    msilo_store_claim_t c = { .user = "alice", .domain = "example.org", .now = T0,
                              .max_next_try = INT64_MAX, .lease_owner = "other",
                              .lease_until = T0 + 60, .max = 10 };
    msilo_message_t **got = NULL;
    size_t n = 0;
    assert_int_equal(msilo_store_claim(f->store->inner, &c, &got, &n), 0);
    assert_int_equal(n, 2);
    msilo_message_array_free(got, n);
}

/* A delete that fails during the shutdown is not retried (the retry tick has
 * stopped): dropped with a log line, the message keeps its lease (delivered
 * again later, not lost), and the shutdown completes. */
static void test_failed_delete_dropped(void **state)
{
    fixture *f = *state;
    f->store->fail_remove = TRUE;
    store_async(f, "sip:alice@example.org", "m");
    run_until(f, &f->stores_ok, 1);
    dumps_done = 0;
    msilo_request_t reg = register_req("sip:alice@example.org", "<sip:alice@192.0.2.1>");
    assert_int_equal(msilo_engine_dump(f->e, &reg, NULL, 0, dump_cb, f), 0);
    gint64 until = g_get_monotonic_time() + WAIT_MAX;
    while (f->tr->sent->len < 1 && g_get_monotonic_time() < until)
        g_main_context_iteration(f->ctx, TRUE);
    assert_int_equal(f->tr->sent->len, 1);
    assert_int_equal(msilo_engine_shutdown(f->e, 10000, stop_cb, f), 0);
    fake_transport_answer(f->tr, 0, 200);
    run_until_stopped(f);
    assert_int_equal(f->stop_result, 0);
    assert_true(log_has(f, "deleting 1 delivered messages failed", "remove refused"));
    assert_true(log_has(f, "shutdown: 1 deletes", "keep their leases"));
    assert_int_equal(dumps_done, 1);
    assert_int_equal(inner_count(f), 1); /* still there, leased */
}

/* msilo_engine_free() from a store callback or the log hook: a g_critical
 * naming the function, nothing freed, no abort. */
static int criticals;
static char *critical_text;

static void count_critical(const gchar *domain, GLogLevelFlags lvl, const gchar *msg, gpointer d)
{
    (void)domain;
    (void)lvl;
    (void)d;
    criticals++;
    g_free(critical_text);
    critical_text = g_strdup(msg);
}

static void test_free_from_store_callback(void **state)
{
    fixture *f = *state;
    criticals = 0;
    guint h = g_log_set_handler("msilo", G_LOG_LEVEL_CRITICAL, count_critical, NULL);
    f->free_in_store_cb = TRUE;
    store_async(f, "sip:alice@example.org", "x");
    run_until(f, &f->stores_done, 1);
    g_log_remove_handler("msilo", h);
    assert_int_equal(criticals, 1);
    assert_non_null(strstr(critical_text, "msilo_engine_free"));
    assert_non_null(strstr(critical_text, "msilo_engine_shutdown"));
    /* still alive and working */
    f->free_in_store_cb = FALSE;
    store_async(f, "sip:alice@example.org", "y");
    run_until(f, &f->stores_ok, 2);
    g_free(critical_text);
    critical_text = NULL;
}

static void free_in_log(msilo_log_level_t lvl, const char *msg, void *data)
{
    (void)lvl;
    (void)msg;
    msilo_engine_free(data);
}

static void test_free_from_log_hook(void **state)
{
    fixture *f = *state;
    criticals = 0;
    guint h = g_log_set_handler("msilo", G_LOG_LEVEL_CRITICAL, count_critical, NULL);
    msilo_engine_set_log(f->e, free_in_log, f->e);
    f->store->fail_put = "no space"; /* a failed store logs */
    store_async(f, "sip:alice@example.org", "x");
    run_until(f, &f->stores_done, 1);
    g_log_remove_handler("msilo", h);
    assert_true(criticals >= 1);
    assert_int_equal(f->last_store_rc, MSILO_ESTORE);
    msilo_engine_set_log(f->e, log_hook, f);
    g_free(critical_text);
    critical_text = NULL;
}

/* Freed while a shutdown runs: everything completes (the blocking way) and
 * the shutdown callback runs once, from msilo_engine_free(), with
 * MSILO_ECANCELLED. */
static void test_free_during_shutdown(void **state)
{
    fixture *f = *state;
    gate_set(f->store, TRUE);
    store_async(f, "sip:alice@example.org", "x");
    gate_wait_blocked(f->store);
    assert_int_equal(msilo_engine_shutdown(f->e, -1, stop_cb, f), 0);
    gate_set(f->store, FALSE);
    msilo_engine_free(f->e);
    f->e = NULL;
    assert_int_equal(f->stop_calls, 1);
    assert_int_equal(f->stop_result, MSILO_ECANCELLED);
    assert_int_equal(f->stores_ok, 1); /* committed: its real result */
}

/* A shutdown callback that frees the engine after a timeout (the natural
 * use with a frozen store). */
static void test_free_in_stop_cb_after_timeout(void **state)
{
    fixture *f = *state;
    gate_set(f->store, TRUE);
    store_async(f, "sip:alice@example.org", "x");
    gate_wait_blocked(f->store);
    f->free_in_stop_cb = TRUE;
    assert_int_equal(msilo_engine_shutdown(f->e, 0, stop_cb, f), 0);
    run_until_stopped(f);
    assert_int_equal(f->stop_result, MSILO_ETIMEDOUT);
    assert_null(f->e);
    assert_int_equal(f->stores_done, 1);
    assert_int_equal(f->last_store_rc, MSILO_ESTORE);
}

/* A non-blocking store (memory: jobs run from the dispatch source): stores
 * accepted before the shutdown commit, then the callback runs with 0. */
static void test_memory_store(void **state)
{
    (void)state;
    GMainContext *ctx = g_main_context_new();
    msilo_store_t *mem = NULL;
    assert_int_equal(msilo_memory_store_new(&mem), 0);
    msilo_engine_t *e = NULL;
    assert_int_equal(msilo_engine_new(&e, NULL, mem, NULL, ctx), 0);
    fixture f = { .ctx = ctx, .e = e };
    msilo_request_t r = message("sip:alice@example.org", "x");
    for (int i = 0; i < 3; i++)
        assert_int_equal(msilo_engine_store(e, &r, NULL, store_cb, &f), 0);
    f.free_in_stop_cb = TRUE;
    assert_int_equal(msilo_engine_shutdown(e, 1000, stop_cb, &f), 0);
    run_until_stopped(&f);
    assert_int_equal(f.stop_result, 0);
    assert_int_equal(f.stores_done_at_stop, 3);
    assert_int_equal(f.stores_ok, 3);
    assert_null(f.e);
    int64_t n = -1;
    assert_int_equal(msilo_store_count(mem, NULL, NULL, &n), 0);
    assert_int_equal(n, 3);
    msilo_store_free(mem);
    g_free(f.last_detail);
    while (g_main_context_iteration(ctx, FALSE))
        ;
    g_main_context_unref(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_stores_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_interrupts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_error_detail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gives_back_claimed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_delete_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_store_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_log_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_during_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_stop_cb_after_timeout, setup, teardown),
        cmocka_unit_test(test_memory_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
