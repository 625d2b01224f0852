/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store suite: per-device delivery (store revision 4, deliver_to =
 * every_device): claims with a device, release with a device,
 * mark_delivered and forget_devices. A store without mark_delivered skips
 * the group (it cannot serve every_device; the engine refuses it then).
 */
#include "store-suite.h"

#include <string.h>

#define DEV_A "<urn:uuid:00000000-0000-0000-0000-00000000000a>"
#define DEV_B "<urn:uuid:00000000-0000-0000-0000-00000000000b>"
#define DEV_C "sip:alice@192.0.2.3:5062"

static msilo_store_t *dev_store(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    if (s->version < 4 || !s->mark_delivered || !s->forget_devices)
        skip();
    return s;
}

/* A claim of alice@example.com's messages for @device at @now. */
static msilo_store_claim_t dev_claim(const char *device, int64_t now)
{
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", now);
    c.device = device;
    return c;
}

static size_t dev_claim_ids(msilo_store_t *s, const char *device, int64_t now, int64_t *ids)
{
    msilo_store_claim_t c = dev_claim(device, now);
    return kst_claim_ids(s, &c, ids);
}

/* Makes @device known for alice (a claim that finds nothing yet). */
static void dev_register(msilo_store_t *s, const char *device, int64_t now)
{
    int64_t ids[100];
    assert_int_equal(dev_claim_ids(s, device, now, ids), 0);
}

/* A caller's item bigger than the library's: the store must step by
 * item_size (a caller built against a later revision). */
typedef struct big_mark {
    msilo_store_mark_t m;
    char pad[24];
} big_mark_t;

static size_t dev_mark_items(msilo_store_t *s, const char *const *devices, const int64_t *ids,
                             size_t n)
{
    big_mark_t *items = g_new0(big_mark_t, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        items[i].m = (msilo_store_mark_t){ .id = ids[i], .device = devices[i] };
        memset(items[i].pad, 0xa5, sizeof items[i].pad);
    }
    size_t deleted = 12345;
    assert_ok(msilo_store_mark_delivered(s, &items[0].m, n, sizeof items[0], &deleted));
    assert_true(deleted <= n);
    g_free(items);
    return deleted;
}

static size_t dev_mark(msilo_store_t *s, const char *device, const int64_t *ids, size_t n)
{
    const char **devices = g_new(const char *, n ? n : 1);
    for (size_t i = 0; i < n; i++)
        devices[i] = device;
    size_t deleted = dev_mark_items(s, devices, ids, n);
    g_free(devices);
    return deleted;
}

static void assert_same_ids(const int64_t *got, size_t n, const int64_t *want, size_t wn)
{
    assert_int_equal(n, wn);
    for (size_t i = 0; i < n; i++)
        assert_i64_equal(got[i], want[i]);
}

/* Releases @want (@n ids) for @device with @attempts and @next_try, as a
 * failed delivery does. */
static void dev_release(msilo_store_t *s, const char *device, const int64_t *want, size_t n,
                        int attempts, int64_t next_try)
{
    msilo_store_release_t *r = g_new0(msilo_store_release_t, n);
    for (size_t i = 0; i < n; i++)
        r[i] = (msilo_store_release_t){ .id = want[i], .attempts = attempts,
                                        .next_try = next_try, .lease_owner = "host-a:5060/1",
                                        .device = device };
    assert_ok(msilo_store_release(s, r, n, sizeof r[0]));
    g_free(r);
}

/* Claims with @c and checks that it gets @want (@n ids, in order), each
 * with @attempts and, unless @next_try is negative, @next_try. */
static void dev_claim_expect(msilo_store_t *s, const msilo_store_claim_t *c, const int64_t *want,
                             size_t n, int attempts, int64_t next_try)
{
    msilo_message_t **msgs = NULL;
    size_t got = 0;
    assert_ok(msilo_store_claim(s, c, &msgs, &got));
    assert_int_equal(got, n);
    for (size_t i = 0; i < got; i++) {
        assert_i64_equal(msgs[i]->id, want[i]);
        assert_int_equal(msgs[i]->attempts, attempts);
        if (next_try >= 0)
            assert_i64_equal(msgs[i]->next_try, next_try);
    }
    msilo_message_array_free(msgs, got);
}

/* One call with the deliveries of two devices (one round of the engine):
 * a message both have goes, one only A has stays, and one of another
 * owner that its only device has goes. */
static void test_one_call_several_devices(void **state)
{
    msilo_store_t *s = dev_store(state);
    dev_register(s, DEV_A, NOW - 10);
    dev_register(s, DEV_B, NOW - 10);
    int64_t both = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t only_a = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t bobs = kst_add(s, "bob", "example.com", NOW + HOUR, 0);
    const int64_t ids[] = { both, only_a, bobs, both };
    const char *const devices[] = { DEV_A, DEV_A, DEV_C, DEV_B };
    assert_int_equal(dev_mark_items(s, devices, ids, 4), 2);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 1);
    assert_i64_equal(kst_count_of(s, "bob", "example.com"), 0);
    /* only_a waits for B, and A never gets it again */
    int64_t got[100];
    assert_int_equal(dev_claim_ids(s, DEV_A, NOW + LEASE + 5, got), 0);
    assert_same_ids(got, dev_claim_ids(s, DEV_B, NOW + 1, got), &only_a, 1);
    /* no device in an item: refused, nothing marked */
    msilo_store_mark_t bad[] = { { .id = only_a, .device = DEV_B }, { .id = only_a } };
    assert_int_equal(msilo_store_mark_delivered(s, bad, 2, sizeof bad[0], NULL), MSILO_EINVAL);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 1);
}

static void test_two_devices_each_get_each_once(void **state)
{
    msilo_store_t *s = dev_store(state);
    dev_register(s, DEV_A, NOW - 10);
    dev_register(s, DEV_B, NOW - 10);
    int64_t want[3], got[100];
    for (int i = 0; i < 3; i++)
        want[i] = kst_add(s, "alice", "example.com", NOW + HOUR, 0);

    assert_same_ids(got, dev_claim_ids(s, DEV_A, NOW, got), want, 3);
    /* leased to A: not again for A, but B has its own lease */
    assert_int_equal(dev_claim_ids(s, DEV_A, NOW + 1, got), 0);
    assert_same_ids(got, dev_claim_ids(s, DEV_B, NOW + 1, got), want, 3);
    /* A has them: B still lacks them, nothing goes */
    assert_int_equal(dev_mark(s, DEV_A, want, 3), 0);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 3);
    /* A never gets them again, not even once its lease has run out */
    assert_int_equal(dev_claim_ids(s, DEV_A, NOW + LEASE + 5, got), 0);
    /* B's delivery fails: released for B only, with B's attempts */
    dev_release(s, DEV_B, want, 3, 1, NOW + 100);
    msilo_store_claim_t c = dev_claim(DEV_B, NOW + 2);
    c.max_next_try = NOW + 2; /* backoff: not due yet */
    assert_int_equal(kst_claim_n(s, &c), 0);
    c.max_next_try = INT64_MAX;
    dev_claim_expect(s, &c, want, 3, 1, NOW + 100);
    /* B has them now: every known device does, they go */
    assert_int_equal(dev_mark(s, DEV_B, want, 3), 3);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 0);
    /* unknown ids are ignored */
    assert_int_equal(dev_mark(s, DEV_B, want, 3), 0);
}

static void test_deleted_when_all_known_have_it(void **state)
{
    msilo_store_t *s = dev_store(state);
    /* no device known yet: the first that has it is every known device */
    int64_t id = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t got[100];
    assert_same_ids(got, dev_claim_ids(s, DEV_A, NOW, got), &id, 1);
    assert_int_equal(dev_mark(s, DEV_A, &id, 1), 1);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 0);

    /* a message for one device only (a GRUU): the others never see it, and
     * it goes when that one has it */
    dev_register(s, DEV_B, NOW);
    msilo_message_t *m = kst_mk("alice", "example.com", "for b");
    m->device = g_strdup(DEV_B);
    int64_t only_b = kst_put1(s, m);
    msilo_message_t *back = kst_get1(s, only_b);
    assert_string_equal(back->device, DEV_B);
    msilo_message_free(back);
    assert_int_equal(dev_claim_ids(s, DEV_A, NOW + 1, got), 0);
    assert_same_ids(got, dev_claim_ids(s, DEV_B, NOW + 1, got), &only_b, 1);
    assert_int_equal(dev_mark(s, DEV_B, &only_b, 1), 1);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 0);

    /* another owner's devices do not count for alice */
    msilo_store_claim_t c = kst_owner_claim("bob", "example.com", NOW);
    c.device = "<urn:uuid:bob>";
    assert_int_equal(kst_claim_n(s, &c), 0);
    id = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    assert_same_ids(got, dev_claim_ids(s, DEV_A, NOW + 2, got), &id, 1);
    assert_int_equal(dev_mark(s, DEV_A, &id, 1), 0); /* B (alice's) lacks it */
    assert_same_ids(got, dev_claim_ids(s, DEV_B, NOW + 2, got), &id, 1);
    assert_int_equal(dev_mark(s, DEV_B, &id, 1), 1);
}

static void test_new_device_gets_old_messages(void **state)
{
    msilo_store_t *s = dev_store(state);
    dev_register(s, DEV_A, NOW - 10);
    dev_register(s, DEV_B, NOW - 10);
    int64_t id = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t got[100];
    assert_same_ids(got, dev_claim_ids(s, DEV_A, NOW, got), &id, 1);
    assert_int_equal(dev_mark(s, DEV_A, &id, 1), 0);
    /* C is seen for the first time after the message was stored */
    assert_same_ids(got, dev_claim_ids(s, DEV_C, NOW + 1, got), &id, 1);
    assert_int_equal(dev_mark(s, DEV_C, &id, 1), 0); /* B still lacks it */
    assert_same_ids(got, dev_claim_ids(s, DEV_B, NOW + 2, got), &id, 1);
    assert_int_equal(dev_mark(s, DEV_B, &id, 1), 1);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 0);
}

static void test_forget_devices_lets_it_go(void **state)
{
    msilo_store_t *s = dev_store(state);
    dev_register(s, DEV_B, NOW - 2 * HOUR); /* B: not seen for two hours */
    dev_register(s, DEV_A, NOW - 10);
    int64_t id = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t keep = kst_add(s, "alice", "example.com", NOW + HOUR, 0); /* nobody has it */
    int64_t got[100];
    assert_int_equal(dev_claim_ids(s, DEV_A, NOW, got), 2);
    assert_int_equal(dev_mark(s, DEV_A, &id, 1), 0);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 2);
    size_t n = 12345;
    assert_ok(msilo_store_forget_devices(s, NOW - HOUR, &n));
    assert_int_equal(n, 1); /* B; A was seen at NOW */
    /* the message A has waits for nobody now; the one nobody has stays */
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 1);
    msilo_message_t *m = kst_get1(s, keep);
    msilo_message_free(m);
    assert_ok(msilo_store_forget_devices(s, NOW - HOUR, &n));
    assert_int_equal(n, 0);
    /* B comes back: it is a new device, and gets what is still stored */
    assert_same_ids(got, dev_claim_ids(s, DEV_B, NOW + 1, got), &keep, 1);
}

static void test_reset_leases_ends_device_leases(void **state)
{
    msilo_store_t *s = dev_store(state);
    int64_t id = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t got[100];
    msilo_store_claim_t c = dev_claim(DEV_A, NOW);
    c.lease_owner = "crashed:5060/1";
    c.lease_until = NOW + HOUR;
    assert_int_equal(kst_claim_ids(s, &c, got), 1);
    c.lease_owner = "host-a:5060/1";
    c.now = NOW + 1;
    assert_int_equal(kst_claim_n(s, &c), 0); /* leased to the crashed instance */
    /* the instance restarts under its name: its in-flight messages come back */
    size_t n = 0;
    assert_ok(msilo_store_reset_leases(s, "crashed:5060/1", &n));
    assert_int_equal(n, 1);
    c.lease_owner = "crashed:5060/1";
    assert_same_ids(got, kst_claim_ids(s, &c, got), &id, 1);
}

/* The only device known (a store may keep its lease where deliver_to =
 * first keeps one, in the message itself): a device that appears later is
 * not held up by it, the first one's lease and backoff stay its own. */
static void test_second_device_after_a_lone_one(void **state)
{
    msilo_store_t *s = dev_store(state);
    int64_t want[2], got[100];
    for (int i = 0; i < 2; i++)
        want[i] = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    assert_same_ids(got, dev_claim_ids(s, DEV_A, NOW, got), want, 2);
    /* B appears while A's deliveries are in flight: B gets them too */
    assert_same_ids(got, dev_claim_ids(s, DEV_B, NOW + 1, got), want, 2);
    /* A's lease holds for A, B's for B */
    assert_int_equal(dev_claim_ids(s, DEV_A, NOW + 2, got), 0);
    assert_int_equal(dev_claim_ids(s, DEV_B, NOW + 2, got), 0);
    /* A's delivery fails: A waits for its retry, B is not concerned */
    dev_release(s, DEV_A, want, 2, 2, NOW + 100);
    msilo_store_claim_t c = dev_claim(DEV_A, NOW + 3);
    c.max_next_try = NOW + 3;
    assert_int_equal(kst_claim_n(s, &c), 0);
    c.max_next_try = INT64_MAX;
    dev_claim_expect(s, &c, want, 2, 2, NOW + 100);
    /* B's leases ran out: B's attempts are B's own */
    c = dev_claim(DEV_B, NOW + LEASE + 5);
    dev_claim_expect(s, &c, want, 2, 0, -1);
    /* A has them, B lacks them: they stay; then B has them: they go */
    assert_int_equal(dev_mark(s, DEV_A, want, 2), 0);
    assert_int_equal(dev_claim_ids(s, DEV_A, NOW + 2 * LEASE + 10, got), 0);
    assert_int_equal(dev_mark(s, DEV_B, want, 2), 2);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 0);
}

enum { DEV_CONC_MESSAGES = 200, DEV_CONC_THREADS = 2 };

/* No cmocka assertions here: they longjmp, which only works on the main thread. */
static gpointer dev_claim_worker(gpointer p)
{
    kst_worker_t *w = p;
    msilo_store_claim_t c = dev_claim(DEV_A, NOW);
    c.lease_owner = w->lease_owner;
    c.lease_until = NOW + HOUR;
    c.max = 7;
    for (int round = 0; round <= DEV_CONC_MESSAGES; round++) {
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

/* Two handles claim for one device; @lone: no other device is known. */
static void concurrent_device_claims(void **state, gboolean lone)
{
    msilo_store_t *s = dev_store(state);
    kst_worker_t w[DEV_CONC_THREADS];
    /* a handle each (a connection each, as two servers on one table) when
     * the store can open one, else the one handle from two threads */
    for (int i = 0; i < DEV_CONC_THREADS; i++) {
        w[i] = (kst_worker_t){ .store = s };
        int rc = msilo_store_open_peer(s, &w[i].store);
        if (rc == MSILO_ENOTSUP) {
            if (!(s->flags & MSILO_STORE_THREADSAFE))
                skip();
            w[i].store = s;
        } else {
            assert_ok(rc);
        }
    }
    if (!lone)
        dev_register(s, DEV_B, NOW - 1);
    GHashTable *want = kst_put_many(s, DEV_CONC_MESSAGES);
    kst_run_workers(w, DEV_CONC_THREADS, dev_claim_worker);
    size_t total = kst_collect_once(s, w, DEV_CONC_THREADS, want, "claimed for one device");
    assert_int_equal(total, DEV_CONC_MESSAGES);
    g_hash_table_unref(want);
    /* the other device's leases are its own: it gets every message */
    msilo_store_claim_t c = dev_claim(DEV_B, NOW + 1);
    c.max = DEV_CONC_MESSAGES + 1;
    assert_int_equal(kst_claim_n(s, &c), DEV_CONC_MESSAGES);
}

static void test_concurrent_device_claims(void **state)
{
    concurrent_device_claims(state, FALSE);
}

static void test_concurrent_lone_device_claims(void **state)
{
    concurrent_device_claims(state, TRUE);
}

int kst_run_devices(const char *group)
{
    static const struct CMUnitTest tests[] = {
        T(test_two_devices_each_get_each_once),
        T(test_deleted_when_all_known_have_it),
        T(test_new_device_gets_old_messages),
        T(test_forget_devices_lets_it_go),
        T(test_reset_leases_ends_device_leases),
        T(test_concurrent_device_claims),
        T(test_one_call_several_devices),
        T(test_second_device_after_a_lone_one),
        T(test_concurrent_lone_device_claims),
    };
    return cmocka_run_group_tests_name(group, tests, NULL, NULL);
}
