/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store conformance suite (see conformance.h). Every test opens a fresh,
 * empty store through the backend's factory, uses only the public wrappers of
 * <msilo/sys/store.h>, and drives time through the `now` arguments.
 */
#include "conformance.h"

#include <glib.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* cmocka gives a test no argument but its state, so the backend under test
 * lives here for the duration of msilo_store_conformance_run(). */
static const msilo_conformance_backend_t *backend;

#define NOW INT64_C(1700000000)
#define HOUR INT64_C(3600)
#define LEASE INT64_C(30)

#define assert_ok(expr)                                                                    \
    do {                                                                                   \
        int rc_ = (expr);                                                                  \
        if (rc_ != 0)                                                                      \
            fail_msg("%s = %d (%s): %s", #expr, rc_,                                       \
                     msilo_error_name(rc_) ? msilo_error_name(rc_) : "?",                  \
                     msilo_error_detail());                                                \
    } while (0)

/* cmocka's assert_int_equal() compares as uintmax_t: fine for equality, but
 * failure messages of negative values read badly; this one prints them. */
#define assert_i64_equal(a, b)                                                             \
    do {                                                                                   \
        int64_t a_ = (a), b_ = (b);                                                        \
        if (a_ != b_)                                                                      \
            fail_msg("%s == %" PRId64 ", expected %" PRId64, #a, a_, b_);                  \
    } while (0)

/* ------------------------------------------------------------- fixture */

typedef struct fixture {
    msilo_store_t *store;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = g_new0(fixture_t, 1);
    int rc = backend->open(backend->data, &f->store);
    if (rc != 0 || !f->store) {
        print_error("cannot open store '%s': %d (%s)\n", backend->name, rc, msilo_error_detail());
        g_free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (!f)
        return 0;
    if (backend->close)
        backend->close(backend->data, f->store);
    else
        msilo_store_free(f->store);
    g_free(f);
    return 0;
}

static msilo_store_t *store_of(void **state)
{
    return ((fixture_t *)*state)->store;
}

/* ------------------------------------------------------------- helpers */

/* A complete ordinary message for user@domain, valid for an hour. */
static msilo_message_t *mk(const char *user, const char *domain, const char *body)
{
    msilo_message_t *m = msilo_message_new();
    m->user = g_strdup(user);
    m->domain = g_strdup(domain);
    m->src = g_strdup("sip:bob@example.org");
    m->dst = g_strdup_printf("sip:%s@%s", user, domain);
    m->ctype = g_strdup("text/plain");
    m->body = g_strdup(body);
    m->body_len = strlen(body);
    m->callid = g_strdup_printf("call-%s", body);
    m->inc_time = NOW;
    m->exp_time = NOW + HOUR;
    return m;
}

/* Stores @p m alone (no limit), frees it, returns its id. */
static int64_t put1(msilo_store_t *s, msilo_message_t *m)
{
    int res = 12345;
    m->id = 0;
    assert_ok(msilo_store_put(s, &m, 1, 0, &res));
    assert_int_equal(res, 0);
    int64_t id = m->id;
    assert_true(id > 0);
    msilo_message_free(m);
    return id;
}

static int64_t add(msilo_store_t *s, const char *user, const char *domain, int64_t exp_time,
                   int64_t snd_time)
{
    static unsigned seq;
    char body[32];
    g_snprintf(body, sizeof body, "msg %u", ++seq);
    msilo_message_t *m = mk(user, domain, body);
    m->exp_time = exp_time;
    m->snd_time = snd_time;
    return put1(s, m);
}

static msilo_store_claim_t owner_claim(const char *user, const char *domain, int64_t now)
{
    return (msilo_store_claim_t){
        .user = user,
        .domain = domain,
        .reminders = 0,
        .now = now,
        .max_next_try = INT64_MAX,
        .lease_owner = "host-a:5060/1",
        .lease_until = now + LEASE,
        .max = 100,
    };
}

static msilo_store_claim_t reminder_claim(int64_t now)
{
    msilo_store_claim_t c = owner_claim(NULL, NULL, now);
    c.reminders = 1;
    return c;
}

/* Claims with @p c; writes the ids (in the returned order) to @p ids (room
 * for c->max) and returns how many. */
static size_t claim_ids(msilo_store_t *s, const msilo_store_claim_t *c, int64_t *ids)
{
    msilo_message_t **msgs = (msilo_message_t **)&msgs; /* must be overwritten */
    size_t n = 99999;
    assert_ok(msilo_store_claim(s, c, &msgs, &n));
    assert_true(n <= c->max);
    if (n == 0)
        assert_null(msgs);
    for (size_t i = 0; i < n; i++)
        ids[i] = msgs[i]->id;
    msilo_message_array_free(msgs, n);
    return n;
}

static size_t claim_n(msilo_store_t *s, const msilo_store_claim_t *c)
{
    int64_t *ids = g_new(int64_t, c->max);
    size_t n = claim_ids(s, c, ids);
    g_free(ids);
    return n;
}

static int64_t count_of(msilo_store_t *s, const char *user, const char *domain)
{
    int64_t n = -1;
    assert_ok(msilo_store_count(s, user, domain, &n));
    return n;
}

static msilo_message_t *get1(msilo_store_t *s, int64_t id)
{
    msilo_message_t *m = NULL;
    assert_ok(msilo_store_get(s, id, &m));
    assert_non_null(m);
    assert_i64_equal(m->id, id);
    return m;
}

static void assert_str_or_null(const char *what, const char *got, const char *want)
{
    if (!want && !got)
        return;
    if (!want || !got || strcmp(got, want) != 0)
        fail_msg("%s: got %s%s%s, expected %s%s%s", what, got ? "'" : "", got ? got : "NULL",
                 got ? "'" : "", want ? "'" : "", want ? want : "NULL", want ? "'" : "");
}

/* Every stored field of @p got equals @p want (id included). */
static void assert_same_message(const msilo_message_t *got, const msilo_message_t *want)
{
    assert_i64_equal(got->id, want->id);
    assert_str_or_null("user", got->user, want->user);
    assert_str_or_null("domain", got->domain, want->domain);
    assert_str_or_null("src", got->src, want->src);
    assert_str_or_null("dst", got->dst, want->dst);
    assert_str_or_null("ctype", got->ctype, want->ctype);
    assert_str_or_null("extra_hdrs", got->extra_hdrs, want->extra_hdrs);
    assert_str_or_null("callid", got->callid, want->callid);
    assert_int_equal(got->body_len, want->body_len);
    if (want->body_len)
        assert_memory_equal(got->body, want->body, want->body_len);
    assert_i64_equal(got->inc_time, want->inc_time);
    assert_i64_equal(got->exp_time, want->exp_time);
    assert_i64_equal(got->snd_time, want->snd_time);
    assert_int_equal(got->attempts, want->attempts);
    assert_i64_equal(got->next_try, want->next_try);
}

/* Stores @p m, then reads it back through get, list and claim: each is a
 * separate code path in a database backend. Frees @p m. */
static void assert_round_trip(msilo_store_t *s, msilo_message_t *m)
{
    int res = 1;
    assert_ok(msilo_store_put(s, &m, 1, 0, &res));
    assert_int_equal(res, 0);

    msilo_message_t *got = get1(s, m->id);
    assert_same_message(got, m);
    msilo_message_free(got);

    msilo_message_t **list = NULL;
    size_t n = 0;
    assert_ok(msilo_store_list(s, m->user, m->domain, 0, 10, &list, &n));
    assert_int_equal(n, 1);
    assert_same_message(list[0], m);
    msilo_message_array_free(list, n);

    msilo_store_claim_t c = owner_claim(m->user, m->domain, NOW);
    if (m->snd_time) {
        c = reminder_claim(m->snd_time);
    }
    assert_ok(msilo_store_claim(s, &c, &list, &n));
    assert_int_equal(n, 1);
    assert_same_message(list[0], m);
    msilo_message_array_free(list, n);
    msilo_message_free(m);
}

/* --------------------------------------------------------------- put */

static void test_ids_positive_and_increasing(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t last = 0;
    for (int i = 0; i < 5; i++) {
        int64_t id = add(s, "alice", "example.com", NOW + HOUR, 0);
        assert_true(id > last);
        last = id;
    }
    /* a batch gets increasing ids in batch order */
    msilo_message_t *batch[3] = { mk("a", "x.test", "1"), mk("b", "x.test", "2"),
                                  mk("a", "x.test", "3") };
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
    assert_true(add(s, "a", "x.test", NOW + HOUR, 0) > last);
}

static void test_round_trip_all_fields(void **state)
{
    msilo_message_t *m = mk("alice", "example.com", "hello");
    g_free(m->ctype);
    m->ctype = g_strdup("text/html");
    m->extra_hdrs = g_strdup("P-Asserted-Identity: <sip:bob@example.org>\r\nPrivacy: id\r\n");
    m->inc_time = NOW - 10;
    m->exp_time = NOW + 7 * 24 * HOUR;
    m->attempts = 3;
    m->next_try = NOW - 1;
    assert_round_trip(store_of(state), m);
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
        msilo_message_t *m = mk("alice", "example.com", "hi");
        g_free(m->dst);
        m->dst = g_strdup(dsts[i]);
        assert_round_trip(store_of(state), m);
        size_t k = 0;
        assert_ok(msilo_store_purge(store_of(state), "alice", "example.com", &k));
    }
}

static void test_body_binary_round_trip(void **state)
{
    static const unsigned char bytes[] = { 'a', 0, 'b', 0xff, 0xfe, 0xc3, 0x28, 0, 0, 0x80, '\n' };
    msilo_message_t *m = mk("alice", "example.com", "");
    g_free(m->body);
    m->body = g_memdup2(bytes, sizeof bytes);
    m->body_len = sizeof bytes;
    g_free(m->ctype);
    m->ctype = g_strdup("application/octet-stream");
    assert_round_trip(store_of(state), m);
}

static void test_body_64k_round_trip(void **state)
{
    msilo_message_t *m = mk("alice", "example.com", "");
    g_free(m->body);
    m->body_len = 64 * 1024;
    unsigned char *b = g_malloc(m->body_len);
    for (size_t i = 0; i < m->body_len; i++)
        b[i] = (unsigned char)((i * 131u + 7u) & 0xff); /* every byte value, NULs too */
    m->body = b;
    assert_round_trip(store_of(state), m);
}

static void test_empty_body(void **state)
{
    msilo_store_t *s = store_of(state);
    msilo_message_t *m = mk("alice", "example.com", "");
    g_free(m->body);
    m->body = NULL;
    m->body_len = 0;
    int64_t id = put1(s, m);
    msilo_message_t *got = get1(s, id);
    assert_int_equal(got->body_len, 0);
    msilo_message_free(got);
}

static void test_long_ctype_round_trip(void **state)
{
    msilo_message_t *m = mk("alice", "example.com", "<file/>");
    g_free(m->ctype);
    /* longer than the 32 characters of the Kamailio column */
    m->ctype = g_strdup("application/vnd.gsma.rcs-ft-http+xml; charset=UTF-8");
    assert_round_trip(store_of(state), m);
}

static void test_null_optional_fields(void **state)
{
    msilo_message_t *m = mk("alice", "example.com", "plain");
    g_clear_pointer(&m->ctype, g_free);
    g_clear_pointer(&m->callid, g_free);
    g_assert_null(m->extra_hdrs);
    assert_round_trip(store_of(state), m);
}

static void test_utf8_owner_and_strings(void **state)
{
    msilo_message_t *m = mk("j\xc3\xbcrgen", "xn--mnchen-3ya.example", "gr\xc3\xbc\xc3\x9f" "e");
    g_free(m->src);
    m->src = g_strdup("\"J\xc3\xbcrgen\" <sip:j@example.org>;tag=a;b");
    assert_round_trip(store_of(state), m);
}

static void test_put_copies_message(void **state)
{
    msilo_store_t *s = store_of(state);
    msilo_message_t *m = mk("alice", "example.com", "original");
    int res = 1;
    assert_ok(msilo_store_put(s, &m, 1, 0, &res));
    /* the store must not keep the caller's pointers */
    memcpy(m->body, "CHANGED!", 8);
    m->src[0] = 'X';
    msilo_message_t *got = get1(s, m->id);
    assert_int_equal(got->body_len, 8);
    assert_memory_equal(got->body, "original", 8);
    assert_string_equal(got->src, "sip:bob@example.org");
    msilo_message_free(got);
    msilo_message_free(m);
}

static void test_max_per_owner_within_batch(void **state)
{
    msilo_store_t *s = store_of(state);
    add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_message_t *b[5] = { mk("alice", "example.com", "1"), mk("bob", "example.com", "2"),
                              mk("alice", "example.com", "3"), mk("alice", "example.com", "4"),
                              mk("alice", "example.org", "5") };
    int res[5] = { 1, 1, 1, 1, 1 };
    assert_ok(msilo_store_put(s, b, 5, 2, res));
    assert_int_equal(res[0], 0);            /* alice: 2nd */
    assert_int_equal(res[1], 0);            /* bob: other owner */
    assert_int_equal(res[2], MSILO_EFULL);  /* alice: 3rd, counting the batch */
    assert_int_equal(res[3], MSILO_EFULL);
    assert_int_equal(res[4], 0);            /* same user, other domain */
    assert_i64_equal(count_of(s, "alice", "example.com"), 2);
    assert_i64_equal(count_of(s, "bob", "example.com"), 1);
    assert_i64_equal(count_of(s, "alice", "example.org"), 1);
    assert_i64_equal(count_of(s, NULL, NULL), 4);
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
    msilo_store_t *s = store_of(state);
    for (int i = 0; i < 3; i++) {
        msilo_message_t *m = mk("alice", "example.com", "x");
        int res = 1;
        assert_ok(msilo_store_put(s, &m, 1, 3, &res));
        assert_int_equal(res, 0);
        msilo_message_free(m);
    }
    msilo_message_t *b[2] = { mk("alice", "example.com", "4"), mk("carol", "example.com", "c") };
    int res[2] = { 1, 1 };
    assert_ok(msilo_store_put(s, b, 2, 3, res));
    assert_int_equal(res[0], MSILO_EFULL);
    assert_int_equal(res[1], 0);
    assert_i64_equal(count_of(s, "alice", "example.com"), 3);
    assert_i64_equal(count_of(s, "carol", "example.com"), 1);
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
    msilo_message_t *m = mk("alice", "example.com", "again");
    int r = 1;
    assert_ok(msilo_store_put(s, &m, 1, 3, &r));
    assert_int_equal(r, 0);
    msilo_message_free(m);
    for (int i = 0; i < 5; i++)
        add(s, "alice", "example.com", NOW + HOUR, 0);
    assert_i64_equal(count_of(s, "alice", "example.com"), 8);
}

/* ------------------------------------------------------------- claim */

static void test_claim_oldest_first_and_max(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t ids[6];
    for (int i = 0; i < 6; i++) {
        ids[i] = add(s, "alice", "example.com", NOW + HOUR, 0);
        add(s, "bob", "example.com", NOW + HOUR, 0); /* interleaved other owner */
    }
    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW);
    c.max = 4;
    int64_t got[6];
    assert_int_equal(claim_ids(s, &c, got), 4);
    for (int i = 0; i < 4; i++)
        assert_i64_equal(got[i], ids[i]);
    c.max = 6;
    assert_int_equal(claim_ids(s, &c, got), 2);
    assert_i64_equal(got[0], ids[4]);
    assert_i64_equal(got[1], ids[5]);
    /* claiming never deletes */
    assert_i64_equal(count_of(s, "alice", "example.com"), 6);
}

static void test_claim_owner_exact_match(void **state)
{
    msilo_store_t *s = store_of(state);
    add(s, "alice", "example.org", NOW + HOUR, 0);
    add(s, "alice2", "example.com", NOW + HOUR, 0);
    add(s, "Alice", "example.com", NOW + HOUR, 0);
    int64_t id = add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW);
    int64_t got[100];
    assert_int_equal(claim_ids(s, &c, got), 1);
    assert_i64_equal(got[0], id);
    c = owner_claim("nobody", "example.com", NOW);
    assert_int_equal(claim_n(s, &c), 0);
}

static void test_claim_empty(void **state)
{
    msilo_store_t *s = store_of(state);
    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW);
    assert_int_equal(claim_n(s, &c), 0);
    c = reminder_claim(NOW);
    assert_int_equal(claim_n(s, &c), 0);
}

static void test_lease_excludes_second_claimer(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t a = add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c1 = owner_claim("alice", "example.com", NOW);
    c1.lease_until = NOW + 30;
    assert_int_equal(claim_n(s, &c1), 1);

    int64_t b = add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c2 = owner_claim("alice", "example.com", NOW + 29);
    c2.lease_owner = "host-b:5060/2";
    int64_t got[100];
    /* only the new one: the first is leased until NOW + 30 */
    assert_int_equal(claim_ids(s, &c2, got), 1);
    assert_i64_equal(got[0], b);
    /* the same instance does not get it again either */
    c1.now = NOW + 29;
    assert_int_equal(claim_n(s, &c1), 0);
    (void)a;
}

static void test_lease_expiry_makes_claimable(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t a = add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW);
    c.lease_until = NOW + 30;
    assert_int_equal(claim_n(s, &c), 1);
    msilo_store_claim_t c2 = owner_claim("alice", "example.com", NOW + 30); /* lease_until <= now */
    c2.lease_owner = "host-b:5060/2";
    c2.lease_until = NOW + 60;
    int64_t got[100];
    assert_int_equal(claim_ids(s, &c2, got), 1);
    assert_i64_equal(got[0], a);
    /* and now host-b holds it until NOW + 60 */
    c.now = NOW + 59;
    c.lease_until = NOW + 90;
    assert_int_equal(claim_n(s, &c), 0);
}

static void test_claim_max_next_try(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t a = add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t b = add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t c_id = add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW);
    assert_int_equal(claim_n(s, &c), 3);
    msilo_store_release_t rel[3] = {
        { .id = a, .attempts = 1, .next_try = NOW + 100 },
        { .id = b, .attempts = 1, .next_try = NOW + 50 },
        { .id = c_id, .attempts = 1, .next_try = INT64_MAX },
    };
    assert_ok(msilo_store_release(s, rel, 3, sizeof(msilo_store_release_t)));

    int64_t got[100];
    c.now = NOW + 1;
    c.max_next_try = NOW + 49; /* retry timer: nothing due yet */
    assert_int_equal(claim_ids(s, &c, got), 0);
    c.max_next_try = NOW + 50; /* boundary: next_try <= max_next_try */
    assert_int_equal(claim_ids(s, &c, got), 1);
    assert_i64_equal(got[0], b);
    c.max_next_try = INT64_MAX; /* registration: ignore backoff */
    assert_int_equal(claim_ids(s, &c, got), 2);
    assert_i64_equal(got[0], a);
    assert_i64_equal(got[1], c_id);
}

static void test_claim_skips_expired(void **state)
{
    msilo_store_t *s = store_of(state);
    add(s, "alice", "example.com", NOW, 0); /* exp_time == now: expired */
    add(s, "alice", "example.com", NOW - 1, 0);
    int64_t live = add(s, "alice", "example.com", NOW + 1, 0);
    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW);
    int64_t got[100];
    assert_int_equal(claim_ids(s, &c, got), 1);
    assert_i64_equal(got[0], live);
    /* expired reminders are not claimed either */
    add(s, "bob", "example.com", NOW, NOW - 10);
    c = reminder_claim(NOW);
    assert_int_equal(claim_n(s, &c), 0);
}

static void test_reminders_only_when_due(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t r1 = add(s, "alice", "example.com", NOW + HOUR, NOW + 10);
    int64_t r2 = add(s, "bob", "example.net", NOW + HOUR, NOW + 20);
    add(s, "carol", "example.com", NOW + HOUR, 0); /* ordinary: never a reminder */
    int64_t got[100];

    msilo_store_claim_t c = reminder_claim(NOW + 9);
    assert_int_equal(claim_ids(s, &c, got), 0);
    c = reminder_claim(NOW + 10); /* snd_time <= now */
    assert_int_equal(claim_ids(s, &c, got), 1);
    assert_i64_equal(got[0], r1);
    c = reminder_claim(NOW + 25);
    assert_int_equal(claim_ids(s, &c, got), 1); /* r1 is leased until NOW + 40 */
    assert_i64_equal(got[0], r2);
}

static void test_reminders_any_owner_oldest_first(void **state)
{
    msilo_store_t *s = store_of(state);
    /* later ids with earlier reminder times: order is by id, not by snd_time */
    int64_t a = add(s, "alice", "example.com", NOW + HOUR, NOW - 1);
    int64_t b = add(s, "bob", "example.com", NOW + HOUR, NOW - 50);
    int64_t c_id = add(s, "carol", "example.org", NOW + HOUR, NOW - 100);
    add(s, "dave", "example.org", NOW + HOUR, NOW + 100); /* not due */
    msilo_store_claim_t c = reminder_claim(NOW);
    c.max = 2;
    int64_t got[100];
    assert_int_equal(claim_ids(s, &c, got), 2);
    assert_i64_equal(got[0], a);
    assert_i64_equal(got[1], b);
    c.max = 10;
    assert_int_equal(claim_ids(s, &c, got), 1);
    assert_i64_equal(got[0], c_id);
}

static void test_owner_claim_skips_reminders(void **state)
{
    msilo_store_t *s = store_of(state);
    add(s, "alice", "example.com", NOW + HOUR, NOW - 5);  /* due reminder */
    add(s, "alice", "example.com", NOW + HOUR, NOW + 50); /* future reminder */
    int64_t plain = add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW);
    int64_t got[100];
    assert_int_equal(claim_ids(s, &c, got), 1);
    assert_i64_equal(got[0], plain);
    assert_i64_equal(count_of(s, "alice", "example.com"), 3);
}

static void test_reminder_max_next_try(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t r = add(s, "alice", "example.com", NOW + HOUR, NOW - 5);
    msilo_store_claim_t c = reminder_claim(NOW);
    assert_int_equal(claim_n(s, &c), 1);
    msilo_store_release_t rel = { .id = r, .attempts = 1, .next_try = NOW + 60 };
    assert_ok(msilo_store_release(s, &rel, 1, sizeof(msilo_store_release_t)));
    c = reminder_claim(NOW + 1);
    c.max_next_try = NOW + 1;
    assert_int_equal(claim_n(s, &c), 0);
    c = reminder_claim(NOW + 60);
    c.max_next_try = NOW + 60;
    assert_int_equal(claim_n(s, &c), 1);
}

/* ----------------------------------------------------------- release */

static void test_release_writes_and_ends_lease(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t a = add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t b = add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW);
    c.lease_until = NOW + 1000;
    assert_int_equal(claim_n(s, &c), 2);

    msilo_store_release_t rel[2] = {
        { .id = a, .attempts = 2, .next_try = NOW + 120 },
        { .id = b, .attempts = 7, .next_try = INT64_MAX },
    };
    assert_ok(msilo_store_release(s, rel, 2, sizeof(msilo_store_release_t)));
    msilo_message_t *m = get1(s, a);
    assert_int_equal(m->attempts, 2);
    assert_i64_equal(m->next_try, NOW + 120);
    assert_i64_equal(m->snd_time, 0);
    msilo_message_free(m);
    m = get1(s, b);
    assert_int_equal(m->attempts, 7);
    assert_i64_equal(m->next_try, INT64_MAX);
    msilo_message_free(m);

    /* the lease ended long before NOW + 1000: another instance takes them */
    msilo_store_claim_t c2 = owner_claim("alice", "example.com", NOW + 1);
    c2.lease_owner = "host-b:5060/2";
    int64_t got[100];
    assert_int_equal(claim_ids(s, &c2, got), 2);
    assert_i64_equal(got[0], a);
    assert_i64_equal(got[1], b);

    /* releasing an unknown id is harmless */
    msilo_store_release_t gone = { .id = b + 1000, .attempts = 1, .next_try = 0 };
    assert_ok(msilo_store_release(s, &gone, 1, sizeof(msilo_store_release_t)));
    assert_i64_equal(count_of(s, NULL, NULL), 2);
}

/* A release that comes after the lease ran out and another instance claimed
 * the message again must not end that instance's lease. */
static void test_release_by_stale_owner_ignored(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t a = add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW);
    c.lease_until = NOW + 10;
    assert_int_equal(claim_n(s, &c), 1);
    msilo_store_claim_t c2 = owner_claim("alice", "example.com", NOW + 11);
    c2.lease_owner = "host-b:5060/2";
    c2.lease_until = NOW + 100;
    assert_int_equal(claim_n(s, &c2), 1);
    /* host-a's late release: ignored */
    msilo_store_release_t late = { .id = a, .attempts = 1, .next_try = 0,
                                   .lease_owner = "host-a:5060/1" };
    assert_ok(msilo_store_release(s, &late, 1, sizeof(msilo_store_release_t)));
    msilo_store_claim_t c3 = owner_claim("alice", "example.com", NOW + 12);
    c3.lease_owner = "host-c:5060/3";
    assert_int_equal(claim_n(s, &c3), 0); /* still leased by host-b */
    msilo_message_t *m = get1(s, a);
    assert_int_equal(m->attempts, 0);
    msilo_message_free(m);
    /* host-b's own release works */
    msilo_store_release_t mine = { .id = a, .attempts = 1, .next_try = 0,
                                   .lease_owner = "host-b:5060/2" };
    assert_ok(msilo_store_release(s, &mine, 1, sizeof(msilo_store_release_t)));
    assert_int_equal(claim_n(s, &c3), 1);
}

static void test_release_clear_snd_time(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t r = add(s, "alice", "example.com", NOW + HOUR, NOW - 5);
    msilo_store_claim_t c = reminder_claim(NOW);
    assert_int_equal(claim_n(s, &c), 1);
    msilo_store_release_t rel = { .id = r, .attempts = 1, .next_try = 0,
                                  .flags = MSILO_RELEASE_CLEAR_SND_TIME };
    assert_ok(msilo_store_release(s, &rel, 1, sizeof(msilo_store_release_t)));

    msilo_message_t *m = get1(s, r);
    assert_i64_equal(m->snd_time, 0);
    assert_int_equal(m->attempts, 1);
    msilo_message_free(m);
    /* now an ordinary offline message: its owner claims it, the reminder
     * timer no longer does */
    c = reminder_claim(NOW + 1);
    assert_int_equal(claim_n(s, &c), 0);
    msilo_store_claim_t oc = owner_claim("alice", "example.com", NOW + 1);
    int64_t got[100];
    assert_int_equal(claim_ids(s, &oc, got), 1);
    assert_i64_equal(got[0], r);
}

static void test_release_keeps_reminder(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t r = add(s, "alice", "example.com", NOW + HOUR, NOW - 5);
    msilo_store_claim_t c = reminder_claim(NOW);
    assert_int_equal(claim_n(s, &c), 1);
    msilo_store_release_t rel = { .id = r, .attempts = 1, .next_try = 0 };
    assert_ok(msilo_store_release(s, &rel, 1, sizeof(msilo_store_release_t)));
    msilo_message_t *m = get1(s, r);
    assert_i64_equal(m->snd_time, NOW - 5);
    msilo_message_free(m);
    msilo_store_claim_t oc = owner_claim("alice", "example.com", NOW + 1);
    assert_int_equal(claim_n(s, &oc), 0);
    c = reminder_claim(NOW + 1);
    assert_int_equal(claim_n(s, &c), 1);
}

/* ----------------------------------------------------- remove, count */

static void test_remove(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t a = add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t b = add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t c = add(s, "bob", "example.com", NOW + HOUR, 0);
    int64_t ids[4] = { a, c + 1000, -1, c };
    size_t deleted = 999;
    assert_ok(msilo_store_remove(s, ids, 4, &deleted));
    assert_int_equal(deleted, 2);
    assert_i64_equal(count_of(s, NULL, NULL), 1);
    assert_i64_equal(count_of(s, "bob", "example.com"), 0);
    msilo_message_t *m = NULL;
    assert_int_equal(msilo_store_get(s, a, &m), MSILO_ENOTFOUND);
    assert_null(m);
    /* again: nothing left to delete; NULL ret_deleted is allowed */
    assert_ok(msilo_store_remove(s, ids, 4, &deleted));
    assert_int_equal(deleted, 0);
    assert_ok(msilo_store_remove(s, &b, 1, NULL));
    assert_i64_equal(count_of(s, NULL, NULL), 0);
    /* a removed message is not claimed */
    msilo_store_claim_t cl = owner_claim("alice", "example.com", NOW);
    assert_int_equal(claim_n(s, &cl), 0);
}

static void test_remove_leased(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t a = add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW);
    assert_int_equal(claim_n(s, &c), 1);
    size_t deleted = 0;
    assert_ok(msilo_store_remove(s, &a, 1, &deleted)); /* the delivery's 2xx */
    assert_int_equal(deleted, 1);
    size_t n = 99;
    assert_ok(msilo_store_reset_leases(s, "host-a:5060/1", &n));
    assert_int_equal(n, 0);
    c.now = NOW + LEASE;
    assert_int_equal(claim_n(s, &c), 0);
}

static void test_count(void **state)
{
    msilo_store_t *s = store_of(state);
    assert_i64_equal(count_of(s, NULL, NULL), 0);
    assert_i64_equal(count_of(s, "alice", "example.com"), 0);
    add(s, "alice", "example.com", NOW + HOUR, 0);
    add(s, "alice", "example.com", NOW - HOUR, 0); /* expired, not yet cleaned */
    add(s, "alice", "example.com", NOW + HOUR, NOW + 5);
    add(s, "bob", "example.com", NOW + HOUR, 0);
    assert_i64_equal(count_of(s, "alice", "example.com"), 3);
    assert_i64_equal(count_of(s, "bob", "example.com"), 1);
    assert_i64_equal(count_of(s, "alice", "example.net"), 0);
    assert_i64_equal(count_of(s, NULL, NULL), 4);
    /* claimed messages still count */
    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW);
    assert_int_equal(claim_n(s, &c), 1);
    assert_i64_equal(count_of(s, "alice", "example.com"), 3);
}

/* ------------------------------------------------------------ expire */

static void test_expire_boundary(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t a = add(s, "alice", "example.com", NOW - 1, 0);
    int64_t b = add(s, "bob", "example.com", NOW, NOW - 3);   /* exp_time == now */
    int64_t c = add(s, "alice", "example.com", NOW + 1, 0);
    int64_t d = add(s, "carol", "example.com", NOW + 100, 0);
    size_t deleted = 999;
    assert_ok(msilo_store_expire(s, NOW, &deleted));
    assert_int_equal(deleted, 2);
    msilo_message_t *m = NULL;
    assert_int_equal(msilo_store_get(s, a, &m), MSILO_ENOTFOUND);
    assert_int_equal(msilo_store_get(s, b, &m), MSILO_ENOTFOUND);
    msilo_message_free(get1(s, c));
    assert_i64_equal(count_of(s, "alice", "example.com"), 1);
    assert_i64_equal(count_of(s, "bob", "example.com"), 0);
    assert_ok(msilo_store_expire(s, NOW, &deleted));
    assert_int_equal(deleted, 0);
    assert_ok(msilo_store_expire(s, NOW + 1, NULL));
    assert_i64_equal(count_of(s, NULL, NULL), 1);
    msilo_message_free(get1(s, d));
    /* an expired reminder is no longer due */
    msilo_store_claim_t rc = reminder_claim(NOW + 200);
    assert_int_equal(claim_n(s, &rc), 0);
}

static void test_expire_many_out_of_order(void **state)
{
    msilo_store_t *s = store_of(state);
    /* expiry times in scrambled order, so an index that assumes id order fails */
    int64_t exp_of[64];
    for (int i = 0; i < 64; i++) {
        exp_of[i] = NOW + (i * 37) % 64;
        add(s, "alice", "example.com", exp_of[i], 0);
    }
    for (int64_t t = NOW; t < NOW + 64; t += 8) {
        size_t deleted = 0;
        assert_ok(msilo_store_expire(s, t, &deleted));
        assert_i64_equal(count_of(s, NULL, NULL), (NOW + 63) - t);
    }
    assert_ok(msilo_store_expire(s, NOW + 63, NULL));
    assert_i64_equal(count_of(s, NULL, NULL), 0);
}

/* -------------------------------------------------------- list, get */

static void test_list_all_paging(void **state)
{
    msilo_store_t *s = store_of(state);
    int64_t ids[7];
    const char *users[] = { "alice", "bob", "carol" };
    for (int i = 0; i < 7; i++)
        ids[i] = add(s, users[i % 3], "example.com", NOW + HOUR, i == 3 ? NOW + 9 : 0);
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
    msilo_store_t *s = store_of(state);
    int64_t mine[5];
    for (int i = 0; i < 5; i++) {
        mine[i] = add(s, "alice", "example.com", NOW + HOUR, 0);
        add(s, "bob", "example.com", NOW + HOUR, 0);
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
    msilo_store_t *s = store_of(state);
    msilo_message_t *m = mk("alice", "example.com", "x");
    g_clear_pointer(&m->domain, g_free);
    int res = 1;
    assert_int_equal(msilo_store_put(s, &m, 1, 0, &res), MSILO_EINVAL);
    msilo_message_free(m);
    assert_i64_equal(count_of(s, NULL, NULL), 0);

    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW);
    msilo_message_t **list = NULL;
    size_t n = 0;
    c.max = 0;
    assert_int_equal(msilo_store_claim(s, &c, &list, &n), MSILO_EINVAL);
    c = owner_claim(NULL, NULL, NOW); /* an owner claim needs the owner */
    assert_int_equal(msilo_store_claim(s, &c, &list, &n), MSILO_EINVAL);
    int64_t cnt = 0;
    assert_int_equal(msilo_store_count(s, "alice", NULL, &cnt), MSILO_EINVAL);
    assert_int_equal(msilo_store_list(s, NULL, "example.com", 0, 10, &list, &n), MSILO_EINVAL);
}

static void test_get_not_found(void **state)
{
    msilo_store_t *s = store_of(state);
    msilo_message_t *m = NULL;
    assert_int_equal(msilo_store_get(s, 1, &m), MSILO_ENOTFOUND);
    assert_int_equal(msilo_store_get(s, INT64_MAX, &m), MSILO_ENOTFOUND);
    assert_null(m);
    int64_t id = add(s, "alice", "example.com", NOW + HOUR, 0);
    assert_int_equal(msilo_store_get(s, id + 1, &m), MSILO_ENOTFOUND);
    assert_null(m);
    m = get1(s, id);
    assert_string_equal(m->user, "alice");
    assert_string_equal(m->domain, "example.com");
    msilo_message_free(m);
}

/* ----------------------------------------------- purge, reset_leases */

static void test_purge(void **state)
{
    msilo_store_t *s = store_of(state);
    for (int i = 0; i < 3; i++)
        add(s, "alice", "example.com", NOW + HOUR, i == 1 ? NOW + 5 : 0);
    int64_t keep = add(s, "bob", "example.com", NOW + HOUR, 0);
    add(s, "alice", "example.net", NOW + HOUR, 0);
    size_t deleted = 0;
    assert_ok(msilo_store_purge(s, "alice", "example.com", &deleted));
    assert_int_equal(deleted, 3);
    assert_i64_equal(count_of(s, "alice", "example.com"), 0);
    assert_i64_equal(count_of(s, NULL, NULL), 2);
    msilo_message_free(get1(s, keep));
    assert_ok(msilo_store_purge(s, "alice", "example.com", &deleted));
    assert_int_equal(deleted, 0);
    assert_ok(msilo_store_purge(s, "nobody", "example.com", NULL));
    /* the owner starts afresh */
    add(s, "alice", "example.com", NOW + HOUR, 0);
    assert_i64_equal(count_of(s, "alice", "example.com"), 1);
    msilo_store_claim_t rc = reminder_claim(NOW + 10);
    assert_int_equal(claim_n(s, &rc), 0);
}

static void test_reset_leases(void **state)
{
    msilo_store_t *s = store_of(state);
    for (int i = 0; i < 3; i++)
        add(s, "alice", "example.com", NOW + HOUR, 0);
    add(s, "bob", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t a = owner_claim("alice", "example.com", NOW);
    a.lease_owner = "host-a:5060/1";
    a.lease_until = NOW + 600;
    assert_int_equal(claim_n(s, &a), 3);
    msilo_store_claim_t b = owner_claim("bob", "example.com", NOW);
    b.lease_owner = "host-b:5060/2";
    b.lease_until = NOW + 600;
    assert_int_equal(claim_n(s, &b), 1);

    size_t n = 99;
    assert_ok(msilo_store_reset_leases(s, "host-a:5060/1", &n));
    assert_int_equal(n, 3);
    /* host-a's messages are claimable at once; host-b keeps its lease */
    msilo_store_claim_t again = owner_claim("alice", "example.com", NOW + 1);
    again.lease_owner = "host-a:5060/9";
    assert_int_equal(claim_n(s, &again), 3);
    again = owner_claim("bob", "example.com", NOW + 1);
    again.lease_owner = "host-a:5060/9";
    assert_int_equal(claim_n(s, &again), 0);
    assert_ok(msilo_store_reset_leases(s, "host-a:5060/1", &n));
    assert_int_equal(n, 0);
    assert_ok(msilo_store_reset_leases(s, "unknown", NULL));
}

/* open_peer: another handle on the same table (PostgreSQL), or ENOTSUP. */
static void test_open_peer(void **state)
{
    msilo_store_t *s = store_of(state);
    msilo_store_t *p = NULL;
    int rc = msilo_store_open_peer(s, &p);
    if (rc == MSILO_ENOTSUP) {
        assert_null(p);
        return;
    }
    assert_ok(rc);
    assert_non_null(p);
    /* what one stores the other sees, at once (committed) */
    add(p, "alice", "example.com", NOW + HOUR, 0);
    add(s, "alice", "example.com", NOW + HOUR, 0);
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

/* -------------------------------------------------------- concurrency */

enum { CONC_MESSAGES = 500, CONC_THREADS = 4 };

typedef struct worker {
    msilo_store_t *store;
    char lease_owner[32];
    GArray *ids;
    int rc;
} worker_t;

/* No cmocka assertions here: they longjmp, which only works on the main thread. */
static gpointer claim_worker(gpointer p)
{
    worker_t *w = p;
    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW);
    c.lease_owner = w->lease_owner;
    c.lease_until = NOW + HOUR;
    c.max = 7;
    /* A store that hands a message out twice would loop forever here; a
     * correct one needs at most CONC_MESSAGES non-empty claims in all. */
    for (int round = 0; round <= CONC_MESSAGES; round++) {
        msilo_message_t **msgs = NULL;
        size_t n = 0;
        w->rc = msilo_store_claim(w->store, &c, &msgs, &n);
        if (w->rc != 0 || n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            g_array_append_val(w->ids, msgs[i]->id);
        msilo_message_array_free(msgs, n);
    }
    return NULL;
}

static void test_concurrent_claim(void **state)
{
    if (!backend->concurrent)
        skip();
    msilo_store_t *s = store_of(state);
    msilo_message_t *batch[CONC_MESSAGES];
    int res[CONC_MESSAGES];
    for (int i = 0; i < CONC_MESSAGES; i++)
        batch[i] = mk("alice", "example.com", "concurrent");
    assert_ok(msilo_store_put(s, batch, CONC_MESSAGES, 0, res));
    GHashTable *want = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    for (int i = 0; i < CONC_MESSAGES; i++) {
        assert_int_equal(res[i], 0);
        g_hash_table_add(want, g_memdup2(&batch[i]->id, sizeof(int64_t)));
        msilo_message_free(batch[i]);
    }

    worker_t w[CONC_THREADS];
    GThread *t[CONC_THREADS];
    for (int i = 0; i < CONC_THREADS; i++) {
        w[i] = (worker_t){ .store = s, .ids = g_array_new(FALSE, FALSE, sizeof(int64_t)) };
        g_snprintf(w[i].lease_owner, sizeof w[i].lease_owner, "host-%d:5060/%d", i, i);
        t[i] = g_thread_new("claimer", claim_worker, &w[i]);
    }
    for (int i = 0; i < CONC_THREADS; i++)
        g_thread_join(t[i]);

    size_t total = 0;
    for (int i = 0; i < CONC_THREADS; i++) {
        assert_ok(w[i].rc);
        for (guint j = 0; j < w[i].ids->len; j++) {
            int64_t id = g_array_index(w[i].ids, int64_t, j);
            /* claimed exactly once: the second time it is no longer in `want` */
            if (!g_hash_table_remove(want, &id))
                fail_msg("message %" PRId64 " claimed twice or unknown", id);
            total++;
        }
        g_array_unref(w[i].ids);
    }
    assert_int_equal(total, CONC_MESSAGES);
    assert_int_equal(g_hash_table_size(want), 0);
    g_hash_table_unref(want);
    msilo_store_claim_t c = owner_claim("alice", "example.com", NOW + 1);
    assert_int_equal(claim_n(s, &c), 0);
}

/* ---------------------------------------------------------------- run */

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int msilo_store_conformance_run(const msilo_conformance_backend_t *b)
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
        T(test_claim_oldest_first_and_max),
        T(test_claim_owner_exact_match),
        T(test_claim_empty),
        T(test_lease_excludes_second_claimer),
        T(test_lease_expiry_makes_claimable),
        T(test_claim_max_next_try),
        T(test_claim_skips_expired),
        T(test_reminders_only_when_due),
        T(test_reminders_any_owner_oldest_first),
        T(test_owner_claim_skips_reminders),
        T(test_reminder_max_next_try),
        T(test_release_writes_and_ends_lease),
        T(test_release_by_stale_owner_ignored),
        T(test_release_clear_snd_time),
        T(test_release_keeps_reminder),
        T(test_remove),
        T(test_remove_leased),
        T(test_count),
        T(test_expire_boundary),
        T(test_expire_many_out_of_order),
        T(test_list_all_paging),
        T(test_list_owner_paging),
        T(test_get_not_found),
        T(test_bad_arguments),
        T(test_purge),
        T(test_reset_leases),
        T(test_open_peer),
        T(test_concurrent_claim),
    };
    if (!b || !b->open)
        return 1;
    backend = b;
    return cmocka_run_group_tests_name(b->name ? b->name : "store", tests, NULL, NULL);
}
