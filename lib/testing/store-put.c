/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The store suite: put (ids, round trips of every field, per-owner limits,
 * idempotent puts by store_key). */
#include "store-suite.h"

static void test_ids_positive_and_increasing(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t last = 0;
    for (int i = 0; i < 5; i++) {
        int64_t id = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
        assert_true(id > last);
        last = id;
    }
    /* a batch gets increasing ids in batch order */
    msilo_message_t *batch[3] = { kst_mk("a", "x.test", "1"), kst_mk("b", "x.test", "2"),
                                  kst_mk("a", "x.test", "3") };
    int res[3] = { 9, 9, 9 };
    assert_ok(msilo_store_put(s, batch, 3, 0, res));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(res[i], 0);
        assert_true(batch[i]->id > last);
        last = batch[i]->id;
        msilo_message_free(batch[i]);
    }
    /* ids are not reused after a delete */
    assert_ok(msilo_store_remove(s, &last, 1, NULL));
    assert_true(kst_add(s, "a", "x.test", NOW + HOUR, 0) > last);
}

static void test_round_trip_all_fields(void **state)
{
    msilo_message_t *m = kst_mk("alice", "example.com", "hello");
    g_free(m->ctype);
    m->ctype = g_strdup("text/html");
    m->extra_hdrs = g_strdup("P-Asserted-Identity: <sip:bob@example.org>\r\nPrivacy: id\r\n");
    m->inc_time = NOW - 10;
    m->exp_time = NOW + 7 * 24 * HOUR;
    m->attempts = 3;
    m->next_try = NOW - 1;
    kst_assert_round_trip(kst_store_of(state), m);
}

/* dst values at and around the owner's own sip: address (which a store may
 * keep in a compact form) come back byte for byte, NULL included. */
static void test_dst_near_owner_uri_round_trip(void **state)
{
    static const char *const dsts[] = {
        "sip:alice@example.com",        "sip:alice@example.com;transport=tcp",
        "sip:alice@example.co",         "sip:alic@example.com",
        "sip:alice@EXAMPLE.com",        "sips:alice@example.com",
        "SIP:alice@example.com",        "<sip:alice@example.com>",
        "sip:alice@example.com:5060",   "sip:alicee@example.com",
        "sip:",                         "s",
        "",                             NULL,
    };
    for (size_t i = 0; i < G_N_ELEMENTS(dsts); i++) {
        msilo_message_t *m = kst_mk("alice", "example.com", "hi");
        g_free(m->dst);
        m->dst = g_strdup(dsts[i]);
        kst_assert_round_trip(kst_store_of(state), m);
        size_t k = 0;
        assert_ok(msilo_store_purge(kst_store_of(state), "alice", "example.com", &k));
    }
}

static void test_body_binary_round_trip(void **state)
{
    static const unsigned char bytes[] = { 'a', 0, 'b', 0xff, 0xfe, 0xc3, 0x28, 0, 0, 0x80, '\n' };
    msilo_message_t *m = kst_mk("alice", "example.com", "");
    g_free(m->body);
    m->body = g_memdup2(bytes, sizeof bytes);
    m->body_len = sizeof bytes;
    g_free(m->ctype);
    m->ctype = g_strdup("application/octet-stream");
    kst_assert_round_trip(kst_store_of(state), m);
}

static void test_body_64k_round_trip(void **state)
{
    msilo_message_t *m = kst_mk("alice", "example.com", "");
    g_free(m->body);
    m->body_len = 64 * 1024;
    unsigned char *b = g_malloc(m->body_len);
    for (size_t i = 0; i < m->body_len; i++)
        b[i] = (unsigned char)((i * 131u + 7u) & 0xff); /* every byte value, NULs too */
    m->body = b;
    kst_assert_round_trip(kst_store_of(state), m);
}

static void test_empty_body(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    msilo_message_t *m = kst_mk("alice", "example.com", "");
    g_free(m->body);
    m->body = NULL;
    m->body_len = 0;
    int64_t id = kst_put1(s, m);
    msilo_message_t *got = kst_get1(s, id);
    assert_int_equal(got->body_len, 0);
    msilo_message_free(got);
}

static void test_long_ctype_round_trip(void **state)
{
    msilo_message_t *m = kst_mk("alice", "example.com", "<file/>");
    g_free(m->ctype);
    /* longer than the 32 characters of the Kamailio column */
    m->ctype = g_strdup("application/vnd.gsma.rcs-ft-http+xml; charset=UTF-8");
    kst_assert_round_trip(kst_store_of(state), m);
}

static void test_null_optional_fields(void **state)
{
    msilo_message_t *m = kst_mk("alice", "example.com", "plain");
    g_clear_pointer(&m->ctype, g_free);
    g_clear_pointer(&m->callid, g_free);
    g_assert_null(m->extra_hdrs);
    kst_assert_round_trip(kst_store_of(state), m);
}

static void test_utf8_owner_and_strings(void **state)
{
    msilo_message_t *m = kst_mk("j\xc3\xbcrgen", "xn--mnchen-3ya.example", "gr\xc3\xbc\xc3\x9f" "e");
    g_free(m->src);
    m->src = g_strdup("\"J\xc3\xbcrgen\" <sip:j@example.org>;tag=a;b");
    kst_assert_round_trip(kst_store_of(state), m);
}

static void test_put_copies_message(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    msilo_message_t *m = kst_mk("alice", "example.com", "original");
    int res = 1;
    assert_ok(msilo_store_put(s, &m, 1, 0, &res));
    /* the store must not keep the caller's pointers */
    memcpy(m->body, "CHANGED!", 8);
    m->src[0] = 'X';
    msilo_message_t *got = kst_get1(s, m->id);
    assert_int_equal(got->body_len, 8);
    assert_memory_equal(got->body, "original", 8);
    assert_string_equal(got->src, "sip:bob@example.org");
    msilo_message_free(got);
    msilo_message_free(m);
}

static void test_max_per_owner_within_batch(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_message_t *b[5] = { kst_mk("alice", "example.com", "1"), kst_mk("bob", "example.com", "2"),
                              kst_mk("alice", "example.com", "3"), kst_mk("alice", "example.com", "4"),
                              kst_mk("alice", "example.org", "5") };
    int res[5] = { 1, 1, 1, 1, 1 };
    assert_ok(msilo_store_put(s, b, 5, 2, res));
    assert_int_equal(res[0], 0);            /* alice: 2nd */
    assert_int_equal(res[1], 0);            /* bob: other owner */
    assert_int_equal(res[2], MSILO_EFULL);  /* alice: 3rd, counting the batch */
    assert_int_equal(res[3], MSILO_EFULL);
    assert_int_equal(res[4], 0);            /* same user, other domain */
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 2);
    assert_i64_equal(kst_count_of(s, "bob", "example.com"), 1);
    assert_i64_equal(kst_count_of(s, "alice", "example.org"), 1);
    assert_i64_equal(kst_count_of(s, NULL, NULL), 4);
    /* the refused ones really are absent */
    msilo_message_t **list = NULL;
    size_t n = 0;
    assert_ok(msilo_store_list(s, "alice", "example.com", 0, 10, &list, &n));
    assert_int_equal(n, 2);
    assert_i64_equal(list[1]->id, b[0]->id);
    assert_memory_equal(list[1]->body, "1", 1);
    msilo_message_array_free(list, n);
    for (int i = 0; i < 5; i++)
        msilo_message_free(b[i]);
}

static void test_max_per_owner_across_batches(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    for (int i = 0; i < 3; i++) {
        msilo_message_t *m = kst_mk("alice", "example.com", "x");
        int res = 1;
        assert_ok(msilo_store_put(s, &m, 1, 3, &res));
        assert_int_equal(res, 0);
        msilo_message_free(m);
    }
    msilo_message_t *b[2] = { kst_mk("alice", "example.com", "4"), kst_mk("carol", "example.com", "c") };
    int res[2] = { 1, 1 };
    assert_ok(msilo_store_put(s, b, 2, 3, res));
    assert_int_equal(res[0], MSILO_EFULL);
    assert_int_equal(res[1], 0);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 3);
    assert_i64_equal(kst_count_of(s, "carol", "example.com"), 1);
    msilo_message_free(b[0]);
    msilo_message_free(b[1]);

    /* room again after a delivery; 0 means no limit */
    int64_t first = 0;
    msilo_message_t **list = NULL;
    size_t n = 0;
    assert_ok(msilo_store_list(s, "alice", "example.com", 0, 1, &list, &n));
    assert_int_equal(n, 1);
    first = list[0]->id;
    msilo_message_array_free(list, n);
    assert_ok(msilo_store_remove(s, &first, 1, NULL));
    msilo_message_t *m = kst_mk("alice", "example.com", "again");
    int r = 1;
    assert_ok(msilo_store_put(s, &m, 1, 3, &r));
    assert_int_equal(r, 0);
    msilo_message_free(m);
    for (int i = 0; i < 5; i++)
        kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 8);
}

/* Idempotent puts (msilo_message_t.store_key): a put whose key is that of
 * a stored message stores nothing, succeeds and gets the stored id, even
 * with the mailbox full; in one batch too; once the message is gone, the key
 * stores again; messages without a key never collide. */
static msilo_message_t *keyed(const char *user, const char *body, const char *key)
{
    msilo_message_t *m = kst_mk(user, "example.com", body);
    m->store_key = g_strdup(key);
    return m;
}

static void test_same_key_twice_stores_one(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    msilo_message_t *a = keyed("alice", "first", "key-1");
    int64_t id = kst_put1(s, a);
    msilo_message_t *b = keyed("alice", "again", "key-1");
    int res = 9;
    assert_ok(msilo_store_put(s, &b, 1, 0, &res));
    assert_int_equal(res, 0);
    assert_i64_equal(b->id, id);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 1);
    msilo_message_t *got = kst_get1(s, id);
    assert_int_equal(got->body_len, 5);
    assert_memory_equal(got->body, "first", 5); /* the first one stays */
    msilo_message_free(got);

    /* the mailbox is full (1 of 1): a retry is still the stored message */
    msilo_message_t *c = keyed("alice", "third", "key-1");
    res = 9;
    assert_ok(msilo_store_put(s, &c, 1, 1, &res));
    assert_int_equal(res, 0);
    assert_i64_equal(c->id, id);

    /* twice in one batch, beside a message without a key and one with another */
    msilo_message_t *batch[4] = { keyed("bob", "b1", "key-2"), kst_mk("bob", "example.com", "n"),
                                  keyed("bob", "b2", "key-2"), keyed("bob", "b3", "key-3") };
    int r4[4] = { 9, 9, 9, 9 };
    assert_ok(msilo_store_put(s, batch, 4, 0, r4));
    for (int i = 0; i < 4; i++)
        assert_int_equal(r4[i], 0);
    assert_i64_equal(batch[2]->id, batch[0]->id);
    assert_true(batch[1]->id != batch[0]->id && batch[3]->id != batch[0]->id);
    assert_i64_equal(kst_count_of(s, "bob", "example.com"), 3);

    /* delivered (removed): the key stores again, under a new id */
    assert_ok(msilo_store_remove(s, &id, 1, NULL));
    msilo_message_t *d = keyed("alice", "later", "key-1");
    int64_t id2 = kst_put1(s, d);
    assert_true(id2 > id);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 1);
    msilo_message_free(b); /* kst_put1() freed a and d */
    msilo_message_free(c);
    for (int i = 0; i < 4; i++)
        msilo_message_free(batch[i]);
}

int kst_run_put(const char *group)
{
    static const struct CMUnitTest tests[] = {
        T(test_ids_positive_and_increasing),
        T(test_round_trip_all_fields),
        T(test_dst_near_owner_uri_round_trip),
        T(test_body_binary_round_trip),
        T(test_body_64k_round_trip),
        T(test_empty_body),
        T(test_long_ctype_round_trip),
        T(test_null_optional_fields),
        T(test_utf8_owner_and_strings),
        T(test_put_copies_message),
        T(test_max_per_owner_within_batch),
        T(test_max_per_owner_across_batches),
        T(test_same_key_twice_stores_one),
    };
    return cmocka_run_group_tests_name(group, tests, NULL, NULL);
}
