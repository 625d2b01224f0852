/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The engine's threading contract (include/msilo/engine.h, "Threading", and
 * include/msilo/sys/transport.h): a transport may call done() from its own
 * threads, and every engine function called while another thread runs the
 * engine's context returns MSILO_ETHREAD and changes nothing.
 *
 * The threaded transport hands each send to worker threads through a queue
 * under a pthread mutex (which ThreadSanitizer sees; GLib's GMutex is a
 * futex it does not), and the workers call done(). scripts/test runs this
 * file under ThreadSanitizer too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <cmocka.h>

#include <glib.h>
#include <msilo/msilo.h>

#define T0 1800000000 /* 2027-01-15T08:00:00Z */
#define WORKERS 2

static int64_t fixed_clock(void *data)
{
    return *(int64_t *)data;
}

/* ---- a transport whose done() runs on its own threads ----------------------- */

typedef struct job {
    struct job *next;
    msilo_transport_done_fn done;
    void *data;
} job;

typedef struct threaded_transport {
    msilo_transport_t base;
    int status; /* what the workers answer */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job *head, *tail; /* under lock */
    gboolean stop;    /* under lock */
    gboolean hold;    /* under lock: workers wait (sends stay in flight) */
    GThread *workers[WORKERS];
    /* loop thread only: sends per message index, from the body */
    guint *sent_per_msg;
    size_t n_msgs;
    size_t sent;
    /* under lock: done() calls that have returned, and their signal */
    size_t answered;
    pthread_cond_t answered_cond;
} threaded_transport;

/* No cmocka assertions here: they longjmp, which only works on the main thread. */
static gpointer worker_main(gpointer data)
{
    threaded_transport *t = data;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        while (!t->stop && (t->hold || !t->head))
            pthread_cond_wait(&t->cond, &t->lock);
        if (!t->head && t->stop)
            break;
        job *j = t->head;
        t->head = j->next;
        if (!t->head)
            t->tail = NULL;
        int status = t->status;
        pthread_mutex_unlock(&t->lock);
        j->done(status, j->data); /* on this thread: the engine posts it */
        g_free(j);
        pthread_mutex_lock(&t->lock);
        /* counted once done() has returned: the completion is posted */
        t->answered++;
        pthread_cond_broadcast(&t->answered_cond);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static int tt_send(msilo_transport_t *base, const msilo_outgoing_t *m,
                   msilo_transport_done_fn done, void *data)
{
    threaded_transport *t = (threaded_transport *)base;
    if (t->sent_per_msg && m->body_len) {
        char idx[16] = { 0 };
        memcpy(idx, m->body, MIN(m->body_len, sizeof idx - 1));
        unsigned long i = strtoul(idx, NULL, 10);
        if (i < t->n_msgs)
            t->sent_per_msg[i]++;
    }
    t->sent++;
    job *j = g_new0(job, 1);
    j->done = done;
    j->data = data;
    pthread_mutex_lock(&t->lock);
    if (t->tail)
        t->tail->next = j;
    else
        t->head = j;
    t->tail = j;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

/* Answers what is queued (the contract: every send ends), then stops the workers. */
static void tt_free(msilo_transport_t *base)
{
    threaded_transport *t = (threaded_transport *)base;
    pthread_mutex_lock(&t->lock);
    t->stop = TRUE;
    t->hold = FALSE;
    t->status = MSILO_ECANCELLED;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    for (int i = 0; i < WORKERS; i++)
        g_thread_join(t->workers[i]);
    pthread_cond_destroy(&t->cond);
    pthread_cond_destroy(&t->answered_cond);
    pthread_mutex_destroy(&t->lock);
    g_free(t->sent_per_msg);
    g_free(t);
}

static threaded_transport *tt_new(int status, size_t n_msgs)
{
    threaded_transport *t = g_new0(threaded_transport, 1);
    t->base = (msilo_transport_t)MSILO_TRANSPORT_INIT;
    t->base.name = "threaded";
    t->base.send = tt_send;
    t->base.free = tt_free;
    t->status = status;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    pthread_cond_init(&t->answered_cond, NULL);
    if (n_msgs) {
        t->n_msgs = n_msgs;
        t->sent_per_msg = g_new0(guint, n_msgs);
    }
    for (int i = 0; i < WORKERS; i++)
        t->workers[i] = g_thread_new("transport", worker_main, t);
    return t;
}

static size_t tt_answered(threaded_transport *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->answered;
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* Waits (without iterating the engine's context) until @n done() calls have
 * returned, at most 30 s. */
static void tt_wait_answered(threaded_transport *t, size_t n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&t->lock);
    while (t->answered < n && pthread_cond_timedwait(&t->answered_cond, &t->lock, &until) == 0)
        ;
    pthread_mutex_unlock(&t->lock);
}

static void tt_hold(threaded_transport *t, gboolean hold)
{
    pthread_mutex_lock(&t->lock);
    t->hold = hold;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

/* ---- fixture ------------------------------------------------------------------- */

typedef struct fixture {
    GMainContext *ctx;
    int64_t now;
    msilo_config_t *cfg;
    msilo_store_t *store;
    threaded_transport *tr;
    msilo_engine_t *e;
    size_t stored, store_errors;
} fixture;

static int setup(void **state)
{
    fixture *f = g_new0(fixture, 1);
    f->ctx = g_main_context_new();
    f->now = T0;
    assert_int_equal(msilo_config_new(&f->cfg), 0);
    assert_int_equal(msilo_config_set(f->cfg, "add_date", "0"), 0); /* bodies as stored */
    assert_int_equal(msilo_memory_store_new(&f->store), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    msilo_engine_free(f->e);
    if (f->tr)
        msilo_transport_free(&f->tr->base);
    msilo_store_free(f->store);
    msilo_config_free(f->cfg);
    while (g_main_context_iteration(f->ctx, FALSE))
        ;
    g_main_context_unref(f->ctx);
    g_free(f);
    return 0;
}

static void start(fixture *f, int status, size_t n_msgs)
{
    f->tr = tt_new(status, n_msgs);
    int rc = msilo_engine_new(&f->e, f->cfg, f->store, &f->tr->base, f->ctx);
    if (rc)
        fail_msg("msilo_engine_new: %s (%s)", msilo_strerror(rc), msilo_error_detail());
    assert_int_equal(msilo_engine_set_clock(f->e, fixed_clock, &f->now), 0);
}

static void stored_cb(msilo_engine_t *e, int rc, int64_t id, void *data)
{
    (void)e;
    (void)id;
    fixture *f = data;
    if (rc)
        f->store_errors++;
    else
        f->stored++;
}

static msilo_request_t message(const char *to, const char *body)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.method = "MESSAGE";
    r.ruri = to;
    r.to = to;
    r.from = "<sip:bob@example.org>;tag=1";
    r.content_type = "text/plain";
    r.body = body;
    r.body_len = strlen(body);
    return r;
}

/* Iterates until @cond holds, blocking in between (a done() from another
 * thread wakes the context); FALSE after @seconds. */
typedef gboolean (*cond_fn)(fixture *f);

static gboolean run_until(fixture *f, cond_fn cond, int seconds)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)seconds * G_USEC_PER_SEC;
    while (!cond(f)) {
        if (g_get_monotonic_time() > deadline)
            return FALSE;
        g_main_context_iteration(f->ctx, TRUE);
    }
    return TRUE;
}

static size_t want; /* for the conditions below */

static gboolean all_stored(fixture *f)
{
    return f->stored + f->store_errors >= want;
}

static gboolean all_delivered(fixture *f)
{
    return msilo_engine_stat(f->e, MSILO_STAT_DUMPED_MESSAGES) +
                   msilo_engine_stat(f->e, MSILO_STAT_FAILED_MESSAGES) >= want &&
           msilo_engine_pending(f->e) == 0 && msilo_engine_stat(f->e, MSILO_STAT_IN_FLIGHT) == 0;
}

static void store_n(fixture *f, size_t n, size_t owners)
{
    char to[64], body[16];
    for (size_t i = 0; i < n; i++) {
        snprintf(to, sizeof to, "sip:user%zu@example.org", i % owners);
        snprintf(body, sizeof body, "%zu", i);
        msilo_request_t r = message(to, body);
        int rc = msilo_engine_store(f->e, &r, NULL, stored_cb, f);
        if (rc)
            fail_msg("store %zu: %s (%s)", i, msilo_strerror(rc), msilo_error_detail());
    }
    want = n;
    assert_true(run_until(f, all_stored, 120));
    assert_int_equal(f->stored, n);
}

static void dump_all(fixture *f, size_t owners)
{
    char to[64], contact[64];
    for (size_t o = 0; o < owners; o++) {
        snprintf(to, sizeof to, "sip:user%zu@example.org", o);
        snprintf(contact, sizeof contact, "<sip:user%zu@192.0.2.1:5060>", o);
        msilo_request_t reg = MSILO_REQUEST_INIT;
        reg.method = "REGISTER";
        reg.to = to;
        reg.contact = contact;
        reg.expires = 3600;
        assert_int_equal(msilo_engine_dump(f->e, &reg, NULL, 0, NULL, NULL), 0);
    }
}

static int64_t count_all(fixture *f)
{
    int64_t n = -1;
    assert_int_equal(msilo_store_count(f->store, NULL, NULL, &n), 0);
    return n;
}

/* ---- done() from other threads ------------------------------------------------- */

#define MANY 100000
#define MANY_OWNERS 1000

/* 100 000 deliveries, each answered by a transport thread: every message is
 * sent once, answered once, deleted; nothing is left in flight. */
static void test_done_from_transport_threads(void **state)
{
    fixture *f = *state;
    assert_int_equal(msilo_config_set(f->cfg, "max_in_flight", "256"), 0);
    assert_int_equal(msilo_config_set(f->cfg, "dump_window", "32"), 0);
    start(f, 200, MANY);
    store_n(f, MANY, MANY_OWNERS);
    dump_all(f, MANY_OWNERS);
    want = MANY;
    assert_true(run_until(f, all_delivered, 240));
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_MESSAGES), MANY);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_FAILED_MESSAGES), 0);
    assert_int_equal(f->tr->sent, MANY);
    assert_int_equal(tt_answered(f->tr), MANY);
    for (size_t i = 0; i < MANY; i++)
        if (f->tr->sent_per_msg[i] != 1)
            fail_msg("message %zu sent %u times", i, f->tr->sent_per_msg[i]);
    assert_int_equal(count_all(f), 0);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DELIVERIES_TIMED), MANY);
}

/* Failures reported from another thread release the messages for a retry. */
static void test_failures_from_transport_threads(void **state)
{
    fixture *f = *state;
    start(f, 480, 100);
    store_n(f, 100, 10);
    dump_all(f, 10);
    want = 100;
    assert_true(run_until(f, all_delivered, 60));
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_FAILED_MESSAGES), 100);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_MESSAGES), 0);
    assert_int_equal(count_all(f), 100); /* released, not lost */
}

/* Completions posted but not yet run when the engine is freed are completed
 * by msilo_engine_free(): the messages answered 2xx are deleted. */
static void test_free_completes_posted(void **state)
{
    fixture *f = *state;
    start(f, 200, 20);
    store_n(f, 20, 2);
    tt_hold(f->tr, TRUE);
    dump_all(f, 2);
    want = 16; /* dump_window 8 per owner */
    while (f->tr->sent < want)
        g_main_context_iteration(f->ctx, TRUE);
    tt_hold(f->tr, FALSE);
    /* wait for the answers without iterating: they stay posted */
    tt_wait_answered(f->tr, want);
    assert_int_equal(tt_answered(f->tr), 16);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_MESSAGES), 0);
    msilo_engine_free(f->e);
    f->e = NULL;
    assert_int_equal(count_all(f), 4); /* 16 delivered and deleted; 4 never sent */
}

/* A done() after msilo_engine_free(), from another thread, only frees what
 * its send held (ASan: no leak; TSan: no race). */
static void test_done_after_free(void **state)
{
    fixture *f = *state;
    start(f, 200, 0);
    store_n(f, 10, 1);
    tt_hold(f->tr, TRUE);
    dump_all(f, 1);
    while (f->tr->sent < 8)
        g_main_context_iteration(f->ctx, TRUE);
    msilo_engine_free(f->e);
    f->e = NULL;
    tt_hold(f->tr, FALSE);
    want = 8;
    tt_wait_answered(f->tr, want);
    assert_int_equal(tt_answered(f->tr), 8);
    assert_int_equal(count_all(f), 10); /* leased, not deleted: redelivered later */
}

/* ---- entry points from a thread that does not own the context ------------------ */

typedef struct other_results {
    fixture *f;
    int store, dump, tick, set_clock, set_log, store_sync, engine_new;
    size_t pending;
    uint64_t stat;
    int cb_calls;
} other_results;

static void counting_store_cb(msilo_engine_t *e, int rc, int64_t id, void *data)
{
    (void)e;
    (void)rc;
    (void)id;
    ((other_results *)data)->cb_calls++;
}

static void counting_dump_cb(msilo_engine_t *e, int rc, const msilo_dump_result_t *res, void *data)
{
    (void)e;
    (void)rc;
    (void)res;
    ((other_results *)data)->cb_calls++;
}

static gpointer other_thread(gpointer data)
{
    other_results *o = data;
    fixture *f = o->f;
    msilo_request_t r = message("sip:alice@example.org", "x");
    o->store = msilo_engine_store(f->e, &r, NULL, counting_store_cb, o);
    o->store_sync = msilo_engine_store_sync(f->e, &r, NULL, NULL);
    msilo_request_t reg = MSILO_REQUEST_INIT;
    reg.method = "REGISTER";
    reg.to = "sip:alice@example.org";
    reg.contact = "<sip:alice@192.0.2.1>";
    reg.expires = 60;
    o->dump = msilo_engine_dump(f->e, &reg, NULL, 0, counting_dump_cb, o);
    o->tick = msilo_engine_tick(f->e);
    o->set_clock = msilo_engine_set_clock(f->e, NULL, NULL);
    o->set_log = msilo_engine_set_log(f->e, NULL, NULL);
    o->pending = msilo_engine_pending(f->e);
    o->stat = msilo_engine_stat(f->e, MSILO_STAT_STORED_MESSAGES); /* thread-safe */
    msilo_engine_t *e2 = NULL;
    o->engine_new = msilo_engine_new(&e2, NULL, f->store, NULL, f->ctx);
    return NULL;
}

static void test_entry_points_from_non_owner(void **state)
{
    fixture *f = *state;
    start(f, 200, 0);
    msilo_request_t r = message("sip:alice@example.org", "x");
    assert_int_equal(msilo_engine_store_sync(f->e, &r, NULL, NULL), 0);
    assert_true(g_main_context_acquire(f->ctx)); /* this thread runs the engine */
    other_results o = { .f = f };
    g_thread_join(g_thread_new("other", other_thread, &o));
    g_main_context_release(f->ctx);
    assert_int_equal(o.store, MSILO_ETHREAD);
    assert_int_equal(o.store_sync, MSILO_ETHREAD);
    assert_int_equal(o.dump, MSILO_ETHREAD);
    assert_int_equal(o.tick, MSILO_ETHREAD);
    assert_int_equal(o.set_clock, MSILO_ETHREAD);
    assert_int_equal(o.set_log, MSILO_ETHREAD);
    assert_int_equal(o.engine_new, MSILO_ETHREAD);
    assert_true(o.pending == SIZE_MAX);
    assert_int_equal(o.stat, 1);
    /* nothing changed: no store, no dump, no callback, ever */
    while (g_main_context_iteration(f->ctx, FALSE))
        ;
    assert_int_equal(o.cb_calls, 0);
    assert_int_equal(count_all(f), 1);
    assert_int_equal(f->tr->sent, 0);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_STORED_MESSAGES), 1);
    assert_int_equal(msilo_engine_pending(f->e), 0);
}

static gpointer store_when_nobody_runs(gpointer data)
{
    other_results *o = data;
    msilo_request_t r = message("sip:alice@example.org", "x");
    o->store = msilo_engine_store(o->f->e, &r, NULL, counting_store_cb, o);
    return NULL;
}

/* While no thread runs the context any thread may take it for a call (the
 * rule of g_main_context_acquire()); the callback runs where the context is
 * iterated. */
static void test_store_while_nobody_runs_the_context(void **state)
{
    fixture *f = *state;
    start(f, 200, 0);
    other_results o = { .f = f };
    g_thread_join(g_thread_new("other", store_when_nobody_runs, &o));
    assert_int_equal(o.store, 0);
    while (o.cb_calls == 0)
        g_main_context_iteration(f->ctx, TRUE);
    assert_int_equal(o.cb_calls, 1);
    assert_int_equal(count_all(f), 1);
}

static int criticals;

static void count_critical(const gchar *domain, GLogLevelFlags level, const gchar *message,
                           gpointer data)
{
    (void)domain;
    (void)level;
    (void)message;
    (void)data;
    criticals++;
}

static gpointer free_from_other(gpointer data)
{
    msilo_engine_free(data);
    return NULL;
}

/* msilo_engine_free() while another thread runs the engine frees nothing and
 * says so with g_critical(); the owner frees it afterwards. */
static void test_free_from_non_owner(void **state)
{
    fixture *f = *state;
    start(f, 200, 0);
    guint h = g_log_set_handler("msilo", G_LOG_LEVEL_CRITICAL, count_critical, NULL);
    criticals = 0;
    assert_true(g_main_context_acquire(f->ctx));
    g_thread_join(g_thread_new("other", free_from_other, f->e));
    g_main_context_release(f->ctx);
    g_log_remove_handler("msilo", h);
    assert_int_equal(criticals, 1);
    msilo_request_t r = message("sip:alice@example.org", "x");
    assert_int_equal(msilo_engine_store_sync(f->e, &r, NULL, NULL), 0); /* still alive */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_done_from_transport_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_from_transport_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_completes_posted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_after_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_points_from_non_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_while_nobody_runs_the_context, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_from_non_owner, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
