/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The store suite: claim (owners, leases, backoff, reminders) and release. */
#include "store-suite.h"

static void test_claim_oldest_first_and_max(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t ids[6];
    for (int i = 0; i < 6; i++) {
        ids[i] = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
        kst_add(s, "bob", "example.com", NOW + HOUR, 0); /* interleaved other owner */
    }
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW);
    c.max = 4;
    int64_t got[6];
    assert_int_equal(kst_claim_ids(s, &c, got), 4);
    for (int i = 0; i < 4; i++)
        assert_i64_equal(got[i], ids[i]);
    c.max = 6;
    assert_int_equal(kst_claim_ids(s, &c, got), 2);
    assert_i64_equal(got[0], ids[4]);
    assert_i64_equal(got[1], ids[5]);
    /* claiming never deletes */
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 6);
}

static void test_claim_owner_exact_match(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    kst_add(s, "alice", "example.org", NOW + HOUR, 0);
    kst_add(s, "alice2", "example.com", NOW + HOUR, 0);
    kst_add(s, "Alice", "example.com", NOW + HOUR, 0);
    int64_t id = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW);
    int64_t got[100];
    assert_int_equal(kst_claim_ids(s, &c, got), 1);
    assert_i64_equal(got[0], id);
    c = kst_owner_claim("nobody", "example.com", NOW);
    assert_int_equal(kst_claim_n(s, &c), 0);
}

static void test_claim_empty(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW);
    assert_int_equal(kst_claim_n(s, &c), 0);
    c = kst_reminder_claim(NOW);
    assert_int_equal(kst_claim_n(s, &c), 0);
}

static void test_lease_excludes_second_claimer(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t a = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c1 = kst_owner_claim("alice", "example.com", NOW);
    c1.lease_until = NOW + 30;
    assert_int_equal(kst_claim_n(s, &c1), 1);

    int64_t b = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c2 = kst_owner_claim("alice", "example.com", NOW + 29);
    c2.lease_owner = "host-b:5060/2";
    int64_t got[100];
    /* only the new one: the first is leased until NOW + 30 */
    assert_int_equal(kst_claim_ids(s, &c2, got), 1);
    assert_i64_equal(got[0], b);
    /* the same instance does not get it again either */
    c1.now = NOW + 29;
    assert_int_equal(kst_claim_n(s, &c1), 0);
    (void)a;
}

static void test_lease_expiry_makes_claimable(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t a = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW);
    c.lease_until = NOW + 30;
    assert_int_equal(kst_claim_n(s, &c), 1);
    msilo_store_claim_t c2 = kst_owner_claim("alice", "example.com", NOW + 30); /* lease_until <= now */
    c2.lease_owner = "host-b:5060/2";
    c2.lease_until = NOW + 60;
    int64_t got[100];
    assert_int_equal(kst_claim_ids(s, &c2, got), 1);
    assert_i64_equal(got[0], a);
    /* and now host-b holds it until NOW + 60 */
    c.now = NOW + 59;
    c.lease_until = NOW + 90;
    assert_int_equal(kst_claim_n(s, &c), 0);
}

static void test_claim_max_next_try(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t a = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t b = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t c_id = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW);
    assert_int_equal(kst_claim_n(s, &c), 3);
    msilo_store_release_t rel[3] = {
        { .id = a, .attempts = 1, .next_try = NOW + 100 },
        { .id = b, .attempts = 1, .next_try = NOW + 50 },
        { .id = c_id, .attempts = 1, .next_try = INT64_MAX },
    };
    assert_ok(msilo_store_release(s, rel, 3, sizeof(msilo_store_release_t)));

    int64_t got[100];
    c.now = NOW + 1;
    c.max_next_try = NOW + 49; /* retry timer: nothing due yet */
    assert_int_equal(kst_claim_ids(s, &c, got), 0);
    c.max_next_try = NOW + 50; /* boundary: next_try <= max_next_try */
    assert_int_equal(kst_claim_ids(s, &c, got), 1);
    assert_i64_equal(got[0], b);
    c.max_next_try = INT64_MAX; /* registration: ignore backoff */
    assert_int_equal(kst_claim_ids(s, &c, got), 2);
    assert_i64_equal(got[0], a);
    assert_i64_equal(got[1], c_id);
}

static void test_claim_skips_expired(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    kst_add(s, "alice", "example.com", NOW, 0); /* exp_time == now: expired */
    kst_add(s, "alice", "example.com", NOW - 1, 0);
    int64_t live = kst_add(s, "alice", "example.com", NOW + 1, 0);
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW);
    int64_t got[100];
    assert_int_equal(kst_claim_ids(s, &c, got), 1);
    assert_i64_equal(got[0], live);
    /* expired reminders are not claimed either */
    kst_add(s, "bob", "example.com", NOW, NOW - 10);
    c = kst_reminder_claim(NOW);
    assert_int_equal(kst_claim_n(s, &c), 0);
}

static void test_reminders_only_when_due(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t r1 = kst_add(s, "alice", "example.com", NOW + HOUR, NOW + 10);
    int64_t r2 = kst_add(s, "bob", "example.net", NOW + HOUR, NOW + 20);
    kst_add(s, "carol", "example.com", NOW + HOUR, 0); /* ordinary: never a reminder */
    int64_t got[100];

    msilo_store_claim_t c = kst_reminder_claim(NOW + 9);
    assert_int_equal(kst_claim_ids(s, &c, got), 0);
    c = kst_reminder_claim(NOW + 10); /* snd_time <= now */
    assert_int_equal(kst_claim_ids(s, &c, got), 1);
    assert_i64_equal(got[0], r1);
    c = kst_reminder_claim(NOW + 25);
    assert_int_equal(kst_claim_ids(s, &c, got), 1); /* r1 is leased until NOW + 40 */
    assert_i64_equal(got[0], r2);
}

static void test_reminders_any_owner_oldest_first(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    /* later ids with earlier reminder times: order is by id, not by snd_time */
    int64_t a = kst_add(s, "alice", "example.com", NOW + HOUR, NOW - 1);
    int64_t b = kst_add(s, "bob", "example.com", NOW + HOUR, NOW - 50);
    int64_t c_id = kst_add(s, "carol", "example.org", NOW + HOUR, NOW - 100);
    kst_add(s, "dave", "example.org", NOW + HOUR, NOW + 100); /* not due */
    msilo_store_claim_t c = kst_reminder_claim(NOW);
    c.max = 2;
    int64_t got[100];
    assert_int_equal(kst_claim_ids(s, &c, got), 2);
    assert_i64_equal(got[0], a);
    assert_i64_equal(got[1], b);
    c.max = 10;
    assert_int_equal(kst_claim_ids(s, &c, got), 1);
    assert_i64_equal(got[0], c_id);
}

static void test_owner_claim_skips_reminders(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    kst_add(s, "alice", "example.com", NOW + HOUR, NOW - 5);  /* due reminder */
    kst_add(s, "alice", "example.com", NOW + HOUR, NOW + 50); /* future reminder */
    int64_t plain = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW);
    int64_t got[100];
    assert_int_equal(kst_claim_ids(s, &c, got), 1);
    assert_i64_equal(got[0], plain);
    assert_i64_equal(kst_count_of(s, "alice", "example.com"), 3);
}

static void test_reminder_max_next_try(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t r = kst_add(s, "alice", "example.com", NOW + HOUR, NOW - 5);
    msilo_store_claim_t c = kst_reminder_claim(NOW);
    assert_int_equal(kst_claim_n(s, &c), 1);
    msilo_store_release_t rel = { .id = r, .attempts = 1, .next_try = NOW + 60 };
    assert_ok(msilo_store_release(s, &rel, 1, sizeof(msilo_store_release_t)));
    c = kst_reminder_claim(NOW + 1);
    c.max_next_try = NOW + 1;
    assert_int_equal(kst_claim_n(s, &c), 0);
    c = kst_reminder_claim(NOW + 60);
    c.max_next_try = NOW + 60;
    assert_int_equal(kst_claim_n(s, &c), 1);
}

/* ----------------------------------------------------------- release */

static void test_release_writes_and_ends_lease(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t a = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    int64_t b = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW);
    c.lease_until = NOW + 1000;
    assert_int_equal(kst_claim_n(s, &c), 2);

    msilo_store_release_t rel[2] = {
        { .id = a, .attempts = 2, .next_try = NOW + 120 },
        { .id = b, .attempts = 7, .next_try = INT64_MAX },
    };
    assert_ok(msilo_store_release(s, rel, 2, sizeof(msilo_store_release_t)));
    msilo_message_t *m = kst_get1(s, a);
    assert_int_equal(m->attempts, 2);
    assert_i64_equal(m->next_try, NOW + 120);
    assert_i64_equal(m->snd_time, 0);
    msilo_message_free(m);
    m = kst_get1(s, b);
    assert_int_equal(m->attempts, 7);
    assert_i64_equal(m->next_try, INT64_MAX);
    msilo_message_free(m);

    /* the lease ended long before NOW + 1000: another instance takes them */
    msilo_store_claim_t c2 = kst_owner_claim("alice", "example.com", NOW + 1);
    c2.lease_owner = "host-b:5060/2";
    int64_t got[100];
    assert_int_equal(kst_claim_ids(s, &c2, got), 2);
    assert_i64_equal(got[0], a);
    assert_i64_equal(got[1], b);

    /* releasing an unknown id is harmless */
    msilo_store_release_t gone = { .id = b + 1000, .attempts = 1, .next_try = 0 };
    assert_ok(msilo_store_release(s, &gone, 1, sizeof(msilo_store_release_t)));
    assert_i64_equal(kst_count_of(s, NULL, NULL), 2);
}

/* A release that comes after the lease ran out and another instance claimed
 * the message again must not end that instance's lease. */
static void test_release_by_stale_owner_ignored(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t a = kst_add(s, "alice", "example.com", NOW + HOUR, 0);
    msilo_store_claim_t c = kst_owner_claim("alice", "example.com", NOW);
    c.lease_until = NOW + 10;
    assert_int_equal(kst_claim_n(s, &c), 1);
    msilo_store_claim_t c2 = kst_owner_claim("alice", "example.com", NOW + 11);
    c2.lease_owner = "host-b:5060/2";
    c2.lease_until = NOW + 100;
    assert_int_equal(kst_claim_n(s, &c2), 1);
    /* host-a's late release: ignored */
    msilo_store_release_t late = { .id = a, .attempts = 1, .next_try = 0,
                                   .lease_owner = "host-a:5060/1" };
    assert_ok(msilo_store_release(s, &late, 1, sizeof(msilo_store_release_t)));
    msilo_store_claim_t c3 = kst_owner_claim("alice", "example.com", NOW + 12);
    c3.lease_owner = "host-c:5060/3";
    assert_int_equal(kst_claim_n(s, &c3), 0); /* still leased by host-b */
    msilo_message_t *m = kst_get1(s, a);
    assert_int_equal(m->attempts, 0);
    msilo_message_free(m);
    /* host-b's own release works */
    msilo_store_release_t mine = { .id = a, .attempts = 1, .next_try = 0,
                                   .lease_owner = "host-b:5060/2" };
    assert_ok(msilo_store_release(s, &mine, 1, sizeof(msilo_store_release_t)));
    assert_int_equal(kst_claim_n(s, &c3), 1);
}

static void test_release_clear_snd_time(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t r = kst_add(s, "alice", "example.com", NOW + HOUR, NOW - 5);
    msilo_store_claim_t c = kst_reminder_claim(NOW);
    assert_int_equal(kst_claim_n(s, &c), 1);
    msilo_store_release_t rel = { .id = r, .attempts = 1, .next_try = 0,
                                  .flags = MSILO_RELEASE_CLEAR_SND_TIME };
    assert_ok(msilo_store_release(s, &rel, 1, sizeof(msilo_store_release_t)));

    msilo_message_t *m = kst_get1(s, r);
    assert_i64_equal(m->snd_time, 0);
    assert_int_equal(m->attempts, 1);
    msilo_message_free(m);
    /* now an ordinary offline message: its owner claims it, the reminder
     * timer no longer does */
    c = kst_reminder_claim(NOW + 1);
    assert_int_equal(kst_claim_n(s, &c), 0);
    msilo_store_claim_t oc = kst_owner_claim("alice", "example.com", NOW + 1);
    int64_t got[100];
    assert_int_equal(kst_claim_ids(s, &oc, got), 1);
    assert_i64_equal(got[0], r);
}

static void test_release_keeps_reminder(void **state)
{
    msilo_store_t *s = kst_store_of(state);
    int64_t r = kst_add(s, "alice", "example.com", NOW + HOUR, NOW - 5);
    msilo_store_claim_t c = kst_reminder_claim(NOW);
    assert_int_equal(kst_claim_n(s, &c), 1);
    msilo_store_release_t rel = { .id = r, .attempts = 1, .next_try = 0 };
    assert_ok(msilo_store_release(s, &rel, 1, sizeof(msilo_store_release_t)));
    msilo_message_t *m = kst_get1(s, r);
    assert_i64_equal(m->snd_time, NOW - 5);
    msilo_message_free(m);
    msilo_store_claim_t oc = kst_owner_claim("alice", "example.com", NOW + 1);
    assert_int_equal(kst_claim_n(s, &oc), 0);
    c = kst_reminder_claim(NOW + 1);
    assert_int_equal(kst_claim_n(s, &c), 1);
}

int kst_run_claim(const char *group)
{
    static const struct CMUnitTest tests[] = {
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
    };
    return cmocka_run_group_tests_name(group, tests, NULL, NULL);
}
