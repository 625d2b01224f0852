/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store suite: take_expired (store revision 4), the method the engine
 * uses to send RFC 5438 <failed/> notifications for expired message/cpim
 * messages. A store without it (MSILO_ENOTSUP) skips these tests. What they
 * check: only expired messages (exp_time <= now), only the asked media type
 * (its parameters and case ignored, a missing type read as text/plain),
 * oldest id first, at most max, every field and the body handed over, the
 * messages gone afterwards, and each message taken once by takers working
 * at the same time on one store (MSILO_STORE_THREADSAFE) or on a peer
 * handle each.
 */
#include "store-suite.h"

/* Stores a message for alice with this content type and expiry (the body
 * names it); returns its id. */
static int64_t add_typed(msilo_store_t *s, const char *ctype, int64_t exp_time, const char *body)
{
    msilo_message_t *m = kst_mk("alice", "example.com", body);
    g_free(m->ctype);
    m->ctype = g_strdup(ctype);
    m->exp_time = exp_time;
    return kst_put1(s, m);
}

/* take_expired, or skip() when the store has none. */
static size_t take(msilo_store_t *s, int64_t now, const char *ctype, size_t max,
                   msilo_message_t ***ret)
{
    msilo_message_t **msgs = (msilo_message_t **)&msgs; /* must be overwritten */
    size_t n = 99999;
    int rc = msilo_store_take_expired(s, now, ctype, max, &msgs, &n);
    if (rc == MSILO_ENOTSUP)
        skip();
    assert_ok(rc);
    assert_true(n <= max);
    if (n == 0)
        assert_null(msgs);
    for (size_t i = 1; i < n; i++)
        assert_true(msgs[i - 1]->id < msgs[i]->id);
    *ret = msgs;
    return n;
}

static void test_take_expired_ctype(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t plain = add_typed(s, "text/plain", NOW - 10, "plain");
    int64_t cpim1 = add_typed(s, "Message/CPIM; charset=UTF-8", NOW - 10, "cpim one");
    int64_t live = add_typed(s, "message/cpim", NOW + HOUR, "cpim live");
    int64_t cpim2 = add_typed(s, "message/cpim", NOW, "cpim two"); /* exp_time == now */
    int64_t cpimx = add_typed(s, "message/cpimx", NOW - 10, "not cpim");
    int64_t none = add_typed(s, NULL, NOW - 10, "no type");
    msilo_message_t *want1 = kst_get1(s, cpim1), *want2 = kst_get1(s, cpim2);

    msilo_message_t **got = NULL;
    /* the caller's type may have parameters and another case too */
    size_t n = take(s, NOW, "MESSAGE/cpim;x=1", 10, &got);
    assert_int_equal(n, 2);
    kst_assert_same_message(got[0], want1);
    kst_assert_same_message(got[1], want2);
    assert_memory_equal(got[0]->body, "cpim one", 8);
    msilo_message_array_free(got, n);
    msilo_message_free(want1);
    msilo_message_free(want2);
    /* taken means deleted */
    assert_int_equal(msilo_store_get(s, cpim1, &want1), MSILO_ENOTFOUND);
    assert_int_equal(kst_count_of(s, "alice", "example.com"), 4);
    assert_int_equal(take(s, NOW, "message/cpim", 10, &got), 0);

    /* a message stored without a type is text/plain */
    n = take(s, NOW, "text/plain", 10, &got);
    assert_int_equal(n, 2);
    assert_i64_equal(got[0]->id, plain);
    assert_i64_equal(got[1]->id, none);
    msilo_message_array_free(got, n);

    /* NULL: any type; the message that has not expired stays */
    n = take(s, NOW, NULL, 10, &got);
    assert_int_equal(n, 1);
    assert_i64_equal(got[0]->id, cpimx);
    msilo_message_array_free(got, n);
    size_t deleted = 99;
    assert_ok(msilo_store_expire(s, NOW, &deleted));
    assert_int_equal(deleted, 0);
    msilo_message_t *m = kst_get1(s, live);
    msilo_message_free(m);
}

/* Oldest id first whatever the expiry order, at most max per call. */
static void test_take_expired_max_oldest(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    static const int64_t ago[] = { 1, 50, 30, 20, 40 };
    int64_t ids[G_N_ELEMENTS(ago)];
    for (size_t i = 0; i < G_N_ELEMENTS(ago); i++)
        ids[i] = add_typed(s, "message/cpim", NOW - ago[i], "cpim");
    add_typed(s, "text/plain", NOW - 100, "plain"); /* not taken, and no gap filler */
    msilo_message_t **got = NULL;
    size_t next = 0;
    for (int round = 0; round < 3; round++) {
        size_t n = take(s, NOW, "message/cpim", 2, &got);
        assert_int_equal(n, round < 2 ? 2 : 1);
        for (size_t i = 0; i < n; i++)
            assert_i64_equal(got[i]->id, ids[next++]);
        msilo_message_array_free(got, n);
    }
    assert_int_equal(take(s, NOW, "message/cpim", 2, &got), 0);
    assert_int_equal(kst_count_of(s, "alice", "example.com"), 1);
    /* before any of them expired: nothing */
    add_typed(s, "message/cpim", NOW + 5, "later");
    assert_int_equal(take(s, NOW + 4, "message/cpim", 2, &got), 0);
    size_t n = take(s, NOW + 5, "message/cpim", 2, &got);
    assert_int_equal(n, 1);
    msilo_message_array_free(got, n);
}

static void test_take_expired_bad_arguments(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    msilo_message_t **got = NULL;
    size_t n = 0;
    int rc = msilo_store_take_expired(s, NOW, NULL, 0, &got, &n);
    if (rc == MSILO_ENOTSUP)
        skip();
    assert_int_equal(rc, MSILO_EINVAL);
    assert_int_equal(msilo_store_take_expired(s, NOW, NULL, 1, NULL, &n), MSILO_EINVAL);
    assert_int_equal(msilo_store_take_expired(s, NOW, NULL, 1, &got, NULL), MSILO_EINVAL);
    assert_int_equal(msilo_store_take_expired(NULL, NOW, NULL, 1, &got, &n), MSILO_EINVAL);
}

enum { TAKE_MESSAGES = 300, TAKE_THREADS = 4 };

/* No cmocka assertions here: they longjmp, which only works on the main thread. */
static gpointer take_worker(gpointer p)
{
    kst_worker_t *w = p;
    /* a store that hands a message out twice would not end: bound it */
    for (int round = 0; round <= TAKE_MESSAGES; round++) {
        msilo_message_t **msgs = NULL;
        size_t n = 0;
        w->rc = msilo_store_take_expired(w->store, NOW, "message/cpim", 7, &msgs, &n);
        if (w->rc != 0 || n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            g_array_append_val(w->ids, msgs[i]->id);
        msilo_message_array_free(msgs, n);
    }
    return NULL;
}

static void test_take_expired_once(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    msilo_message_t **probe = NULL;
    size_t pn = 0;
    if (msilo_store_take_expired(s, NOW, "message/cpim", 1, &probe, &pn) == MSILO_ENOTSUP)
        skip();
    kst_worker_t w[TAKE_THREADS];
    for (int i = 0; i < TAKE_THREADS; i++) {
        w[i] = (kst_worker_t){ .store = s };
        if (!(s->flags & MSILO_STORE_THREADSAFE)) {
            int rc = msilo_store_open_peer(s, &w[i].store);
            if (rc == MSILO_ENOTSUP)
                skip(); /* neither MSILO_STORE_THREADSAFE nor open_peer */
            assert_ok(rc);
        }
    }
    msilo_message_t *batch[TAKE_MESSAGES];
    int res[TAKE_MESSAGES];
    for (int i = 0; i < TAKE_MESSAGES; i++) {
        batch[i] = kst_mk(i % 2 ? "alice" : "bob", "example.com", "expired cpim");
        g_free(batch[i]->ctype);
        batch[i]->ctype = g_strdup("message/cpim");
        batch[i]->exp_time = NOW - 1 - i % 5;
    }
    assert_ok(msilo_store_put(s, batch, TAKE_MESSAGES, 0, res));
    GHashTable *want = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    for (int i = 0; i < TAKE_MESSAGES; i++) {
        assert_int_equal(res[i], 0);
        g_hash_table_add(want, g_memdup2(&batch[i]->id, sizeof(int64_t)));
        msilo_message_free(batch[i]);
    }
    kst_run_workers(w, TAKE_THREADS, take_worker);
    size_t total = kst_collect_once(s, w, TAKE_THREADS, want, "taken");
    assert_int_equal(total, TAKE_MESSAGES);
    g_hash_table_unref(want);
    assert_int_equal(kst_count_of(s, NULL, NULL), 0);
}

int kst_run_expired(const char *group)
{
    static const struct CMUnitTest tests[] = {
        T(test_take_expired_ctype),
        T(test_take_expired_max_oldest),
        T(test_take_expired_bad_arguments),
        T(test_take_expired_once),
    };
    return cmocka_run_group_tests_name(group, tests, NULL, NULL);
}
