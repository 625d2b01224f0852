/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store conformance suite of libmsilo-testing (<msilo/testing/store.h>):
 * the per-test fixture, the helpers every topic uses (store-suite.h), and
 * msilo_testing_store_run(), which runs the topics (store-put.c,
 * store-claim.c, store-other.c, store-concurrent.c, store-expired.c,
 * store-devices.c) as cmocka groups. Every test opens a fresh, empty store
 * through the suite's open(), uses only the
 * public wrappers of <msilo/sys/store.h>, and drives time through the `now`
 * arguments.
 */
#include "store-suite.h"

const msilo_testing_store_suite_t *kst_suite;

/* ------------------------------------------------------------- fixture */

typedef struct fixture {
    msilo_store_t *store;
} fixture_t;

int kst_setup(void **state)
{
    fixture_t *f = g_new0(fixture_t, 1);
    int rc = kst_suite->open(kst_suite->data, &f->store);
    if (rc != 0 || !f->store) {
        print_error("cannot open store '%s': %d (%s)\n", kst_suite->name ? kst_suite->name : "store",
                    rc, msilo_error_detail());
        g_free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int kst_teardown(void **state)
{
    fixture_t *f = *state;
    if (!f)
        return 0;
    if (kst_suite->close)
        kst_suite->close(kst_suite->data, f->store);
    else
        msilo_store_free(f->store);
    g_free(f);
    return 0;
}

msilo_store_t *kst_store_of(void **state)
{
    return ((fixture_t *)*state)->store;
}

/* ------------------------------------------------------------- helpers */

msilo_message_t *kst_mk(const char *user, const char *domain, const char *body)
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

int64_t kst_put1(msilo_store_t *s, msilo_message_t *m)
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

int64_t kst_add(msilo_store_t *s, const char *user, const char *domain, int64_t exp_time,
                   int64_t snd_time)
{
    static unsigned seq;
    char body[32];
    g_snprintf(body, sizeof body, "msg %u", ++seq);
    msilo_message_t *m = kst_mk(user, domain, body);
    m->exp_time = exp_time;
    m->snd_time = snd_time;
    return kst_put1(s, m);
}

msilo_store_claim_t kst_owner_claim(const char *user, const char *domain, int64_t now)
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

msilo_store_claim_t kst_reminder_claim(int64_t now)
{
    msilo_store_claim_t c = kst_owner_claim(NULL, NULL, now);
    c.reminders = 1;
    return c;
}

/* Claims with @p c; writes the ids (in the returned order) to @p ids (room
 * for c->max) and returns how many. */
size_t kst_claim_ids(msilo_store_t *s, const msilo_store_claim_t *c, int64_t *ids)
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

size_t kst_claim_n(msilo_store_t *s, const msilo_store_claim_t *c)
{
    int64_t *ids = g_new(int64_t, c->max);
    size_t n = kst_claim_ids(s, c, ids);
    g_free(ids);
    return n;
}

int64_t kst_count_of(msilo_store_t *s, const char *user, const char *domain)
{
    int64_t n = -1;
    assert_ok(msilo_store_count(s, user, domain, &n));
    return n;
}

msilo_message_t *kst_get1(msilo_store_t *s, int64_t id)
{
    msilo_message_t *m = NULL;
    assert_ok(msilo_store_get(s, id, &m));
    assert_non_null(m);
    assert_i64_equal(m->id, id);
    return m;
}

static void kst_assert_str_or_null(const char *what, const char *got, const char *want)
{
    if (!want && !got)
        return;
    if (!want || !got || strcmp(got, want) != 0)
        fail_msg("%s: got %s%s%s, expected %s%s%s", what, got ? "'" : "", got ? got : "NULL",
                 got ? "'" : "", want ? "'" : "", want ? want : "NULL", want ? "'" : "");
}

/* Every stored field of @p got equals @p want (id included). */
void kst_assert_same_message(const msilo_message_t *got, const msilo_message_t *want)
{
    assert_i64_equal(got->id, want->id);
    kst_assert_str_or_null("user", got->user, want->user);
    kst_assert_str_or_null("domain", got->domain, want->domain);
    kst_assert_str_or_null("src", got->src, want->src);
    kst_assert_str_or_null("dst", got->dst, want->dst);
    kst_assert_str_or_null("ctype", got->ctype, want->ctype);
    kst_assert_str_or_null("extra_hdrs", got->extra_hdrs, want->extra_hdrs);
    kst_assert_str_or_null("callid", got->callid, want->callid);
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
void kst_assert_round_trip(msilo_store_t *s, msilo_message_t *m)
{
    int res = 1;
    assert_ok(msilo_store_put(s, &m, 1, 0, &res));
    assert_int_equal(res, 0);

    msilo_message_t *got = kst_get1(s, m->id);
    kst_assert_same_message(got, m);
    msilo_message_free(got);

    msilo_message_t **list = NULL;
    size_t n = 0;
    assert_ok(msilo_store_list(s, m->user, m->domain, 0, 10, &list, &n));
    assert_int_equal(n, 1);
    kst_assert_same_message(list[0], m);
    msilo_message_array_free(list, n);

    msilo_store_claim_t c = kst_owner_claim(m->user, m->domain, NOW);
    if (m->snd_time) {
        c = kst_reminder_claim(m->snd_time);
    }
    assert_ok(msilo_store_claim(s, &c, &list, &n));
    assert_int_equal(n, 1);
    kst_assert_same_message(list[0], m);
    msilo_message_array_free(list, n);
    msilo_message_free(m);
}

/* ---------------------------------------------------------------- run */

int msilo_testing_store_suite_init(msilo_testing_store_suite_t *suite, unsigned version)
{
    if (!suite)
        return MSILO_EINVAL;
    if (version < 1 || version > MSILO_TESTING_STORE_SUITE_VERSION)
        return MSILO_EVERSION;
    /* Version 1 is the whole struct; a version 2 writes only the members
     * the caller's version has (a size per version, as lib/store.c does). */
    *suite = (msilo_testing_store_suite_t)MSILO_TESTING_STORE_SUITE_INIT;
    return 0;
}

int msilo_testing_store_run(const msilo_testing_store_suite_t *suite)
{
    if (!suite || !suite->open)
        return MSILO_EINVAL;
    if (suite->version < 1 || suite->version > MSILO_TESTING_STORE_SUITE_VERSION)
        return MSILO_EVERSION;
    const char *name = suite->name ? suite->name : "store";
    static int (*const topics[])(const char *) = { kst_run_put, kst_run_claim, kst_run_other,
                                                   kst_run_concurrent, kst_run_expired,
                                                   kst_run_devices };
    static const char *const topic_names[] = { "put", "claim", "other", "concurrent",
                                               "expired", "devices" };
    int failed = 0;
    kst_suite = suite;
    for (size_t i = 0; i < G_N_ELEMENTS(topics); i++) {
        char *group = g_strdup_printf("%s/%s", name, topic_names[i]);
        failed += topics[i](group);
        g_free(group);
    }
    kst_suite = NULL;
    return failed;
}

GHashTable *kst_put_many(msilo_store_t *s, int n)
{
    msilo_message_t **batch = g_new(msilo_message_t *, n);
    int *res = g_new(int, n);
    for (int i = 0; i < n; i++)
        batch[i] = kst_mk("alice", "example.com", "concurrent");
    assert_ok(msilo_store_put(s, batch, (size_t)n, 0, res));
    GHashTable *want = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    for (int i = 0; i < n; i++) {
        assert_int_equal(res[i], 0);
        g_hash_table_add(want, g_memdup2(&batch[i]->id, sizeof(int64_t)));
        msilo_message_free(batch[i]);
    }
    g_free(batch);
    g_free(res);
    return want;
}

void kst_run_workers(kst_worker_t *w, int n, GThreadFunc fn)
{
    GThread **t = g_new(GThread *, n);
    for (int i = 0; i < n; i++) {
        w[i].ids = g_array_new(FALSE, FALSE, sizeof(int64_t));
        g_snprintf(w[i].lease_owner, sizeof w[i].lease_owner, "host-%d:5060/%d", i, i);
        t[i] = g_thread_new("kst-worker", fn, &w[i]);
    }
    for (int i = 0; i < n; i++)
        g_thread_join(t[i]);
    g_free(t);
}

size_t kst_collect_once(msilo_store_t *s, kst_worker_t *w, int n, GHashTable *want,
                        const char *what)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (w[i].store != s)
            msilo_store_free(w[i].store);
        assert_ok(w[i].rc);
        for (guint j = 0; j < w[i].ids->len; j++) {
            int64_t id = g_array_index(w[i].ids, int64_t, j);
            /* exactly once: the second time it is no longer in @want */
            if (!g_hash_table_remove(want, &id))
                fail_msg("message %" PRId64 " %s twice or unknown", id, what);
            total++;
        }
        g_array_unref(w[i].ids);
    }
    return total;
}
