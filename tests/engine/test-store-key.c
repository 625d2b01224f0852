/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store path against duplicates and outages: the engine's store key
 * (Call-ID, CSeq, From tag and owner, or the view's store_key) makes storing
 * the same request twice one message with one id; and a store that fails
 * every put is logged at most once a second, with its cause, the lines left
 * out counted; so is a failing delete of delivered messages. The memory store (behind a wrapper that can fail puts), the
 * recording transport, a fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <msilo/sys/store.h>

#include "fake.h"

#define T0 1800000000
#define ALICE "sip:alice@example.org"
#define CAROL "sip:carol@example.org"

/* ---- a store whose put can fail ---- */

typedef struct flaky_store {
    msilo_store_t base;
    msilo_store_t *inner;
    gboolean fail; /* set on the test's thread before the store is called */
    gboolean fail_remove;   /* the same for remove */
    unsigned remove_failed; /* removes failed so far */
} flaky_store;

static int flaky_put(msilo_store_t *base, msilo_message_t *const *msgs, size_t n, int64_t max,
                     int *results)
{
    flaky_store *f = (flaky_store *)base;
    if (f->fail)
        return msilo_store_fail(MSILO_ESTORE, "flaky store: the database is down");
    return msilo_store_put(f->inner, msgs, n, max, results);
}

#define INNER(base) (((flaky_store *)(base))->inner)

static int flaky_claim(msilo_store_t *b, const msilo_store_claim_t *c, msilo_message_t ***r,
                       size_t *n)
{
    return msilo_store_claim(INNER(b), c, r, n);
}

static int flaky_remove(msilo_store_t *b, const int64_t *ids, size_t n, size_t *d)
{
    flaky_store *f = (flaky_store *)b;
    if (f->fail_remove) {
        f->remove_failed++;
        return msilo_store_fail(MSILO_ESTORE, "flaky store: cannot delete, the database is down");
    }
    return msilo_store_remove(INNER(b), ids, n, d);
}

static int flaky_release(msilo_store_t *b, const msilo_store_release_t *it, size_t n, size_t sz)
{
    return msilo_store_release(INNER(b), it, n, sz);
}

static int flaky_count(msilo_store_t *b, const char *u, const char *d, int64_t *r)
{
    return msilo_store_count(INNER(b), u, d, r);
}

static int flaky_expire(msilo_store_t *b, int64_t now, size_t *d)
{
    return msilo_store_expire(INNER(b), now, d);
}

static void flaky_free(msilo_store_t *b)
{
    msilo_store_free(INNER(b));
    g_free(b);
}

static flaky_store *flaky_new(msilo_store_t *inner)
{
    flaky_store *f = g_new0(flaky_store, 1);
    f->base = (msilo_store_t)MSILO_STORE_INIT;
    f->base.name = "flaky";
    f->base.flags = MSILO_STORE_NONBLOCKING; /* called from the loop, like the memory store */
    f->base.put = flaky_put;
    f->base.claim = flaky_claim;
    f->base.remove = flaky_remove;
    f->base.release = flaky_release;
    f->base.count = flaky_count;
    f->base.expire = flaky_expire;
    f->base.free = flaky_free;
    f->inner = inner;
    return f;
}

/* ---- fixture ---- */

typedef struct fixture {
    engine_fixture_t *ef;
    flaky_store *store;
    GPtrArray *log;
    int done, failed;
    char *last_detail;
} fixture;

static void log_hook(msilo_log_level_t lvl, const char *msg, void *data)
{
    (void)lvl;
    fixture *f = data;
    g_ptr_array_add(f->log, g_strdup(msg));
}

static int setup(void **state)
{
    fixture *f = g_new0(fixture, 1);
    f->ef = engine_fixture_new(T0);
    f->store = flaky_new(f->ef->store);
    f->ef->store = &f->store->base; /* engine_fixture_free() frees the wrapper */
    f->log = g_ptr_array_new_with_free_func(g_free);
    engine_fixture_start(f->ef);
    msilo_engine_set_log(f->ef->e, log_hook, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    engine_fixture_free(f->ef);
    g_ptr_array_unref(f->log);
    g_free(f->last_detail);
    g_free(f);
    return 0;
}

static msilo_request_t message(const char *to, const char *call_id, uint32_t cseq,
                               const char *tag, const char *body)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.method = "MESSAGE";
    r.ruri = to;
    r.to = to;
    r.from = "<sip:bob@example.org>";
    r.from_tag = tag;
    r.call_id = call_id;
    r.cseq = cseq;
    r.body = body;
    r.body_len = strlen(body);
    return r;
}

static int64_t store(fixture *f, const msilo_request_t *r)
{
    int64_t id = 0;
    int rc = msilo_engine_store_sync(f->ef->e, r, NULL, &id);
    if (rc)
        fail_msg("store: %s (%s)", msilo_strerror(rc), msilo_error_detail());
    assert_true(id > 0);
    return id;
}

static int64_t count(fixture *f, const char *user)
{
    int64_t n = -1;
    assert_int_equal(msilo_store_count(&f->store->base, user, "example.org", &n), 0);
    return n;
}

/* ---- tests ---- */

/* The same request twice (a retransmission that reached the engine, a
 * retry): one message, the same id. Another CSeq, From tag or owner is
 * another message. */
static void test_same_request_stored_once(void **state)
{
    fixture *f = *state;
    msilo_request_t r = message(ALICE, "call-1@example.org", 7, "t1", "hello");
    int64_t id = store(f, &r);
    assert_int_equal(store(f, &r), id);
    assert_int_equal(count(f, "alice"), 1);

    msilo_request_t next = message(ALICE, "call-1@example.org", 8, "t1", "next");
    assert_true(store(f, &next) > id);
    msilo_request_t other_tag = message(ALICE, "call-1@example.org", 7, "t2", "tag");
    assert_true(store(f, &other_tag) > id);
    assert_int_equal(count(f, "alice"), 3);
    /* the same request for another owner (msilo_engine_store()'s owner) */
    int64_t id2 = 0;
    assert_int_equal(msilo_engine_store_sync(f->ef->e, &r, CAROL, &id2), 0);
    assert_true(id2 > 0 && id2 != id);
    assert_int_equal(count(f, "carol"), 1);
}

/* An explicit key (a CPIM Message-ID) wins over Call-ID and CSeq; without a
 * CSeq, or from a view of revision 2, there is no key: every store stores. */
static void test_explicit_key_and_no_key(void **state)
{
    fixture *f = *state;
    msilo_request_t a = message(ALICE, "call-a", 1, "t", "cpim 1");
    a.store_key = "<msg-42@example.org>";
    msilo_request_t b = message(ALICE, "call-b", 5, "u", "cpim 1 again");
    b.store_key = "<msg-42@example.org>";
    int64_t id = store(f, &a);
    assert_int_equal(store(f, &b), id);
    assert_int_equal(count(f, "alice"), 1);

    msilo_request_t nocseq = message(ALICE, "call-c", 0, "t", "no cseq");
    int64_t n1 = store(f, &nocseq), n2 = store(f, &nocseq);
    assert_true(n2 > n1);
    msilo_request_t v2 = message(ALICE, "call-d", 3, "t", "revision 2");
    v2.version = 2;
    n1 = store(f, &v2);
    n2 = store(f, &v2);
    assert_true(n2 > n1);
    assert_int_equal(count(f, "alice"), 5);
}

static void store_cb(msilo_engine_t *e, int rc, int64_t id, void *data)
{
    (void)e;
    (void)id;
    fixture *f = data;
    f->done++;
    if (rc)
        f->failed++;
    g_free(f->last_detail);
    f->last_detail = g_strdup(msilo_error_detail());
}

/* "N more failed stores" in a log line, 0 if none. */
static guint64 quiet_count(const char *line)
{
    const char *p = strstr(line, "(");
    return p && strstr(line, "more failed stores") ? g_ascii_strtoull(p + 1, NULL, 10) : 0;
}

/* A database down: 200 failed stores are a few warnings, each with the
 * store's cause; every failure is either on a line or counted in one, the
 * count said when stores work again. Each callback still gets the cause. */
static void test_failures_rate_limited(void **state)
{
    fixture *f = *state;
    enum { N = 200 };
    f->store->fail = TRUE;
    for (int i = 0; i < N; i++) {
        char *cid = g_strdup_printf("down-%d", i);
        msilo_request_t r = message(ALICE, cid, 1, "t", "while down");
        assert_int_equal(msilo_engine_store(f->ef->e, &r, NULL, store_cb, f), 0);
        g_free(cid);
        while (f->done <= i)
            g_main_context_iteration(f->ef->ctx, TRUE);
    }
    assert_int_equal(f->failed, N);
    assert_non_null(strstr(f->last_detail, "the database is down"));
    f->store->fail = FALSE;
    msilo_request_t ok = message(ALICE, "up-1", 1, "t", "back");
    store(f, &ok);

    guint lines = 0;
    guint64 counted = 0;
    gboolean said_back = FALSE;
    for (guint i = 0; i < f->log->len; i++) {
        const char *l = f->log->pdata[i];
        if (strstr(l, "store for alice@example.org failed")) {
            lines++;
            assert_non_null(strstr(l, "the database is down"));
        }
        if (strstr(l, "stores succeed again"))
            said_back = TRUE;
        counted += quiet_count(l);
    }
    fprintf(stderr, "%u failures: %u lines, %" G_GUINT64_FORMAT " counted\n", (unsigned)N,
            lines, counted);
    assert_true(lines >= 1 && lines < N / 10); /* one a second: the loop takes < 20 s */
    assert_int_equal(lines + counted, N);
    assert_true(said_back || counted == 0);
}

/* "N more failed deletes" in a log line, 0 if none. */
static guint64 quiet_deletes(const char *line)
{
    const char *p = strstr(line, "more failed deletes");
    if (!p)
        return 0;
    while (p > line && p[-1] != '(')
        p--;
    return g_ascii_strtoull(p, NULL, 10);
}

/* A database that fails every delete while deliveries go on: 150 failed
 * deletes are a few warnings with the cause, each either on a line or
 * counted in one, the count said when deletes work again. */
static void test_delete_failures_rate_limited(void **state)
{
    fixture *f = *state;
    enum { N = 150 };
    f->ef->tr->auto_status = 200;
    for (int i = 0; i < N; i++) {
        char *to = g_strdup_printf("sip:u%d@example.org", i);
        char *cid = g_strdup_printf("del-%d", i);
        msilo_request_t r = message(to, cid, 1, "t", "to deliver");
        store(f, &r);
        g_free(cid);
        g_free(to);
    }
    f->store->fail_remove = TRUE;
    for (int i = 0; i < N; i++) {
        char *aor = g_strdup_printf("sip:u%d@example.org", i);
        msilo_request_t reg = MSILO_REQUEST_INIT;
        reg.method = "REGISTER";
        reg.ruri = "sip:example.org";
        reg.to = aor;
        reg.from = aor;
        reg.contact = "sip:u@192.0.2.1";
        reg.expires = 60;
        msilo_dump_result_t res;
        assert_int_equal(msilo_engine_dump_sync(f->ef->e, &reg, NULL, 0, &res, sizeof res), 0);
        assert_int_equal(res.delivered, 1);
        g_free(aor);
    }
    unsigned failed = f->store->remove_failed;
    assert_true(failed >= 10); /* deletes were tried (and retried) while it was down */
    f->store->fail_remove = FALSE;
    /* one more delivery: its delete (and the retried ones) succeed */
    msilo_request_t r = message("sip:last@example.org", "del-last", 1, "t", "x");
    store(f, &r);
    msilo_request_t reg = MSILO_REQUEST_INIT;
    reg.method = "REGISTER";
    reg.ruri = "sip:example.org";
    reg.to = reg.from = "sip:last@example.org";
    reg.contact = "sip:last@192.0.2.1";
    reg.expires = 60;
    msilo_dump_result_t res;
    assert_int_equal(msilo_engine_dump_sync(f->ef->e, &reg, NULL, 0, &res, sizeof res), 0);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, TRUE));

    guint lines = 0;
    guint64 counted = 0;
    gboolean said_back = FALSE;
    for (guint i = 0; i < f->log->len; i++) {
        const char *l = f->log->pdata[i];
        if (strstr(l, "delivered messages failed")) {
            lines++;
            assert_non_null(strstr(l, "cannot delete, the database is down"));
        }
        if (strstr(l, "deletes succeed again"))
            said_back = TRUE;
        counted += quiet_deletes(l);
    }
    fprintf(stderr, "%u failed deletes: %u lines, %" G_GUINT64_FORMAT " counted\n", failed, lines,
            counted);
    assert_true(lines >= 1 && lines < failed / 5);
    assert_int_equal(lines + counted, failed);
    assert_true(said_back || counted == 0);
    assert_int_equal(count(f, "u0"), 0); /* the retried deletes went through */
}

/* msilo_request_copy() keeps revision 3's members; a revision-2 view's copy
 * has their defaults (its struct ends before them). */
static void test_request_copy_v3(void **state)
{
    (void)state;
    msilo_request_t r = message(ALICE, "call-x", 9, "tag-x", "body");
    r.store_key = "<id@example.org>";
    msilo_request_t *c = NULL;
    assert_int_equal(msilo_request_copy(&r, &c), 0);
    assert_int_equal(c->cseq, 9);
    assert_string_equal(c->from_tag, "tag-x");
    assert_string_equal(c->store_key, "<id@example.org>");
    assert_true(c->from_tag != r.from_tag);
    msilo_request_free(c);
    r.version = 2;
    assert_int_equal(msilo_request_copy(&r, &c), 0);
    assert_int_equal(c->version, MSILO_REQUEST_VERSION);
    assert_int_equal(c->cseq, 0);
    assert_null(c->from_tag);
    assert_null(c->store_key);
    msilo_request_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_request_stored_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_explicit_key_and_no_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_rate_limited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_failures_rate_limited, setup, teardown),
        cmocka_unit_test(test_request_copy_v3),
    };
    return cmocka_run_group_tests_name("engine-store-key", tests, NULL, NULL);
}
