/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The store suite: several claimers at once must never get one message
 * twice. They share the store when it sets MSILO_STORE_THREADSAFE, or use a
 * peer handle each (msilo_store_open_peer()): one database connection per
 * claimer, as several engine instances on one table would. */
#include "store-suite.h"

enum { CONC_MESSAGES = 500, CONC_THREADS = 4 };

/* No cmocka assertions here: they longjmp, which only works on the main thread. */
static gpointer claim_worker(gpointer p)
{
    kst_worker_t *w = p;
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW);
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

/* The store each claimer uses: @p s itself, or a peer of it (NULL when the
 * store has neither threads nor peers). */
static msilo_store_t *claimer_store(msilo_store_t *s)
{
    if (s->flags & MSILO_STORE_THREADSAFE)
        return s;
    msilo_store_t *p = NULL;
    int rc = msilo_store_open_peer(s, &p);
    if (rc == MSILO_ENOTSUP)
        return NULL;
    assert_ok(rc);
    return p;
}

static void test_concurrent_claim(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    kst_worker_t w[CONC_THREADS];
    for (int i = 0; i < CONC_THREADS; i++) {
        w[i] = (kst_worker_t){ .store = claimer_store(s) };
        if (!w[i].store)
            skip(); /* neither MSILO_STORE_THREADSAFE nor open_peer */
    }
    GHashTable *want = kst_put_many(s, CONC_MESSAGES);
    kst_run_workers(w, CONC_THREADS, claim_worker);
    size_t total = kst_collect_once(s, w, CONC_THREADS, want, "claimed");
    assert_int_equal(total, CONC_MESSAGES);
    assert_int_equal(g_hash_table_size(want), 0);
    g_hash_table_unref(want);
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW + 1);
    assert_int_equal(kst_claim_n(s, &c), 0);
}

int kst_run_concurrent(const char *group)
{
    static const struct CMUnitTest tests[] = {
        T(test_concurrent_claim),
    };
    return cmocka_run_group_tests_name(group, tests, NULL, NULL);
}
