/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The store suite: remove, count, expire, list, get, argument errors, purge,
 * reset_leases and open_peer. */
#include "store-suite.h"

static void test_remove(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t a = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t b = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t c = kst_add(s, "bob", "example.com", NOW + HOUR, 0);
    int64_t ids[4] = { a, c + 1000, -1, c };
    size_t deleted = 999;
    assert_ok(msilo_store_remove(s, ids, 4, &deleted));
    assert_int_equal(deleted, 2);
    assert_i64_equal(kst_count_of(s, NULL, NULL), 1);
    assert_i64_equal(kst_count_of(s, "bob", "example.com"), 0);
    msilo_message_t *m = NULL;
    assert_int_equal(msilo_store_get(s, a, &m), MSILO_ENOTFOUND);
    assert_null(m);
    /* again: nothing left to delete; NULL ret_deleted is allowed */
    assert_ok(msilo_store_remove(s, ids, 4, &deleted));
    assert_int_equal(deleted, 0);
    assert_ok(msilo_store_remove(s, &b, 1, NULL));
    assert_i64_equal(kst_count_of(s, NULL, NULL), 0);
    /* a removed message is not claimed */
    msilo_store_claim_t cl = kst_owner_claim("alice", "example.com", NOW);
    assert_int_equal(kst_claim_n(s, &cl), 0);
}

static void test_remove_leased(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t a = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW);
    assert_int_equal(kst_claim_n(s, &c), 1);
    size_t deleted = 0;
    assert_ok(msilo_store_remove(s, &a, 1, &deleted)); /* the delivery's 2xx */
    assert_int_equal(deleted, 1);
    size_t n = 99;
    assert_ok(msilo_store_reset_leases(s, "host-a:5060/1", &n));
    assert_int_equal(n, 0);
    c.now = NOW + LEASE;
    assert_int_equal(kst_claim_n(s, &c), 0);
}

static void test_count(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    assert_i64_equal(kst_count_of(s, NULL, NULL), 0);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 0);
    kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    kst_add(s, "alice", "example.com", NOW - HOUR, 0); /* expired, not yet cleaned */
    kst_add(s, "alice", "example.com", NOW + HOUR, NOW + 5);
    kst_add(s, "bob", "example.com", NOW + HOUR, 0);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 3);
    assert_i64_equal(kst_count_of(s, "bob", "example.com"), 1);
    assert_i64_equal(kst_count_of(s, "alice", "example.net"), 0);
    assert_i64_equal(kst_count_of(s, NULL, NULL), 4);
    /* claimed messages still count */
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW);
    assert_int_equal(kst_claim_n(s, &c), 1);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 3);
}

/* ------------------------------------------------------------ expire */

static void test_expire_boundary(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t a = kst_add(s, "alice", "example.com", NOW - 1, 0);
    int64_t b = kst_add(s, "bob", "example.com", NOW, NOW - 3);   /* exp_time == now */
    int64_t c = kst_add(s, "alice", "example.com", NOW + 1, 0);
    int64_t d = kst_add(s, "carol", "example.com", NOW + 100, 0);
    size_t deleted = 999;
    assert_ok(msilo_store_expire(s, NOW, &deleted));
    assert_int_equal(deleted, 2);
    msilo_message_t *m = NULL;
    assert_int_equal(msilo_store_get(s, a, &m), MSILO_ENOTFOUND);
    assert_int_equal(msilo_store_get(s, b, &m), MSILO_ENOTFOUND);
    msilo_message_free(kst_get1(s, c));
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 1);
    assert_i64_equal(kst_count_of(s, "bob", "example.com"), 0);
    assert_ok(msilo_store_expire(s, NOW, &deleted));
    assert_int_equal(deleted, 0);
    assert_ok(msilo_store_expire(s, NOW + 1, NULL));
    assert_i64_equal(kst_count_of(s, NULL, NULL), 1);
    msilo_message_free(kst_get1(s, d));
    /* an expired reminder is no longer due */
    msilo_store_claim_t rc = kst_reminder_claim(NOW + 200);
    assert_int_equal(kst_claim_n(s, &rc), 0);
}

static void test_expire_many_out_of_order(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    /* expiry times in scrambled order, so an index that assumes id order fails */
    int64_t exp_of[64];
    for (int i = 0; i < 64; i++) {
        exp_of[i] = NOW + (i * 37) % 64;
        kst_add(s, "alice", "example.com", exp_of[i], 0);
    }
    for (int64_t t = NOW; t < NOW + 64; t += 8) {
        size_t deleted = 0;
        assert_ok(msilo_store_expire(s, t, &deleted));
        assert_i64_equal(kst_count_of(s, NULL, NULL), (NOW + 63) - t);
    }
    assert_ok(msilo_store_expire(s, NOW + 63, NULL));
    assert_i64_equal(kst_count_of(s, NULL, NULL), 0);
}

/* -------------------------------------------------------- list, get */

static void test_list_all_paging(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t ids[7];
    const char *users[] = { "alice", "bob", "carol" };
    for (int i = 0; i < 7; i++)
        ids[i] = kst_add(s, users[i % 3], "example.com", NOW + HOUR, i == 3 ? NOW + 9 : 0);
    assert_ok(msilo_store_remove(s, &ids[2], 1, NULL)); /* a hole in the ids */

    int64_t expect[6] = { ids[0], ids[1], ids[3], ids[4], ids[5], ids[6] };
    int64_t after = 0;
    size_t seen = 0;
    for (int page = 0; page < 10; page++) {
        msilo_message_t **list = NULL;
        size_t n = 0;
        assert_ok(msilo_store_list(s, NULL, NULL, after, 4, &list, &n));
        if (n == 0) {
            msilo_message_array_free(list, n); /* NULL or an empty array */
            break;
        }
        assert_true(n <= 4);
        for (size_t i = 0; i < n; i++) {
            assert_true(seen < 6);
            assert_i64_equal(list[i]->id, expect[seen]);
            assert_non_null(list[i]->body);
            seen++;
        }
        after = list[n - 1]->id;
        msilo_message_array_free(list, n);
    }
    assert_int_equal(seen, 6);
}

static void test_list_owner_paging(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t mine[5];
    for (int i = 0; i < 5; i++) {
        mine[i] = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
        kst_add(s, "bob", "example.com", NOW + HOUR, 0);
    }
    msilo_message_t **list = NULL;
    size_t n = 0;
    assert_ok(msilo_store_list(s, "alice", "example.com", 0, 2, &list, &n));
    assert_int_equal(n, 2);
    assert_i64_equal(list[0]->id, mine[0]);
    assert_i64_equal(list[1]->id, mine[1]);
    assert_string_equal(list[0]->user, "alice");
    msilo_message_array_free(list, n);
    assert_ok(msilo_store_list(s, "alice", "example.com", mine[1], 2, &list, &n));
    assert_int_equal(n, 2);
    assert_i64_equal(list[0]->id, mine[2]);
    assert_i64_equal(list[1]->id, mine[3]);
    msilo_message_array_free(list, n);
    /* after_id need not be one of the owner's ids */
    assert_ok(msilo_store_list(s, "alice", "example.com", mine[3] + 1, 10, &list, &n));
    assert_int_equal(n, 1);
    assert_i64_equal(list[0]->id, mine[4]);
    msilo_message_array_free(list, n);
    assert_ok(msilo_store_list(s, "alice", "example.com", mine[4], 10, &list, &n));
    assert_int_equal(n, 0);
    msilo_message_array_free(list, n);
    assert_ok(msilo_store_list(s, "nobody", "example.com", 0, 10, &list, &n));
    assert_int_equal(n, 0);
    msilo_message_array_free(list, n);
}

static void test_bad_arguments(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    msilo_message_t *m = kst_mk("alice", "example.com", "x");
    g_clear_pointer(&m->domain, g_free);
    int res = 1;
    assert_int_equal(msilo_store_put(s, &m, 1, 0, &res), MSILO_EINVAL);
    msilo_message_free(m);
    assert_i64_equal(kst_count_of(s, NULL, NULL), 0);

    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW);
    msilo_message_t **list = NULL;
    size_t n = 0;
    c.max = 0;
    assert_int_equal(msilo_store_claim(s, &c, &list, &n), MSILO_EINVAL);
    c = kst_owner_claim(NULL, NULL, NOW); /* an owner claim needs the owner */
    assert_int_equal(msilo_store_claim(s, &c, &list, &n), MSILO_EINVAL);
    int64_t cnt = 0;
    assert_int_equal(msilo_store_count(s, "alice", NULL, &cnt), MSILO_EINVAL);
    assert_int_equal(msilo_store_list(s, NULL, "example.com", 0, 10, &list, &n), MSILO_EINVAL);
}

static void test_get_not_found(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    msilo_message_t *m = NULL;
    assert_int_equal(msilo_store_get(s, 1, &m), MSILO_ENOTFOUND);
    assert_int_equal(msilo_store_get(s, INT64_MAX, &m), MSILO_ENOTFOUND);
    assert_null(m);
    int64_t id = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    assert_int_equal(msilo_store_get(s, id + 1, &m), MSILO_ENOTFOUND);
    assert_null(m);
    m = kst_get1(s, id);
    assert_string_equal(m->user, "alice");
    assert_string_equal(m->domain, "example.com");
    msilo_message_free(m);
}

/* ----------------------------------------------- purge, reset_leases */

static void test_purge(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    for (int i = 0; i < 3; i++)
        kst_add(s, "alice", "example.com", NOW + HOUR, i == 1 ? NOW + 5 : 0);
    int64_t keep = kst_add(s, "bob", "example.com", NOW + HOUR, 0);
    kst_add(s, "alice", "example.net", NOW + HOUR, 0);
    size_t deleted = 0;
    assert_ok(msilo_store_purge(s, "alice", "example.com", &deleted));
    assert_int_equal(deleted, 3);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 0);
    assert_i64_equal(kst_count_of(s, NULL, NULL), 2);
    msilo_message_free(kst_get1(s, keep));
    assert_ok(msilo_store_purge(s, "alice", "example.com", &deleted));
    assert_int_equal(deleted, 0);
    assert_ok(msilo_store_purge(s, "nobody", "example.com", NULL));
    /* the owner starts afresh */
    kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 1);
    msilo_store_claim_t rc = kst_reminder_claim(NOW + 10);
    assert_int_equal(kst_claim_n(s, &rc), 0);
}

static void test_reset_leases(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    for (int i = 0; i < 3; i++)
        kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    kst_add(s, "bob", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t a = kst_owner_claim("alice", "example.com", NOW);
    a.lease_owner = "host-a:5060/1";
    a.lease_until = NOW + 600;
    assert_int_equal(kst_claim_n(s, &a), 3);
    msilo_store_claim_t b = kst_owner_claim("bob", "example.com", NOW);
    b.lease_owner = "host-b:5060/2";
    b.lease_until = NOW + 600;
    assert_int_equal(kst_claim_n(s, &b), 1);

    size_t n = 99;
    assert_ok(msilo_store_reset_leases(s, "host-a:5060/1", &n));
    assert_int_equal(n, 3);
    /* host-a's messages are claimable at once; host-b keeps its lease */
    msilo_store_claim_t again = kst_owner_claim("alice", "example.com", NOW + 1);
    again.lease_owner = "host-a:5060/9";
    assert_int_equal(kst_claim_n(s, &again), 3);
    again = kst_owner_claim("bob", "example.com", NOW + 1);
    again.lease_owner = "host-a:5060/9";
    assert_int_equal(kst_claim_n(s, &again), 0);
    assert_ok(msilo_store_reset_leases(s, "host-a:5060/1", &n));
    assert_int_equal(n, 0);
    assert_ok(msilo_store_reset_leases(s, "unknown", NULL));
}

/* open_peer: another handle on the same table (PostgreSQL), or ENOTSUP. */
static void test_open_peer(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    msilo_store_t *p = NULL;
    int rc = msilo_store_open_peer(s, &p);
    if (rc == MSILO_ENOTSUP) {
        assert_null(p);
        return;
    }
    assert_ok(rc);
    assert_non_null(p);
    /* what one stores the other sees, at once (committed) */
    kst_add(p, "alice", "example.com", NOW + HOUR, 0);
    kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t n = 0;
    assert_ok(msilo_store_count(s, "alice", "example.com", &n));
    assert_int_equal(n, 2);
    assert_ok(msilo_store_count(p, "alice", "example.com", &n));
    assert_int_equal(n, 2);
    /* a peer of a peer works too, and each frees on its own */
    msilo_store_t *pp = NULL;
    assert_ok(msilo_store_open_peer(p, &pp));
    msilo_store_free(p);
    assert_ok(msilo_store_count(pp, NULL, NULL, &n));
    assert_int_equal(n, 2);
    msilo_store_free(pp);
    assert_int_equal(msilo_store_open_peer(NULL, &p), MSILO_EINVAL);
    assert_int_equal(msilo_store_open_peer(s, NULL), MSILO_EINVAL);
}

int kst_run_other(const char *group)
{
    static const struct CMUnitTest tests[] = {
        T(test_remove),
        T(test_remove_leased),
        T(test_count),
        T(test_expire_boundary),
        T(test_expire_many_out_of_order),
        T(test_list_all_paging),
        T(test_list_owner_paging),
        T(test_bad_arguments),
        T(test_get_not_found),
        T(test_purge),
        T(test_reset_leases),
        T(test_open_peer),
    };
    return cmocka_run_group_tests_name(group, tests, NULL, NULL);
}
