/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the files of the store suite share (private to libmsilo-testing):
 * the suite being run, the per-test fixture, the message and claim helpers,
 * and each topic's group runner. store-suite.c owns the fixture, the helpers
 * and msilo_testing_store_run(); store-put.c, store-claim.c, store-other.c,
 * store-concurrent.c and store-devices.c hold the tests by topic.
 */
#ifndef MSILO_TESTING_STORE_SUITE_H
#define MSILO_TESTING_STORE_SUITE_H

#include <msilo/testing/store.h>

#include <glib.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* cmocka gives a test no argument but its state, so the suite under test
 * lives here for the duration of msilo_testing_store_run(). */
extern const msilo_testing_store_suite_t *kst_suite;

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

/* ---- several threads on one store (store-concurrent.c, -devices.c, -expired.c) ---- */

/* One thread's store handle (the store itself or a peer), its lease owner,
 * what it got and its last result. */
typedef struct kst_worker {
    msilo_store_t *store;
    char lease_owner[32];
    GArray *ids; /* int64_t */
    int rc;
} kst_worker_t;

/* Puts @p n messages for alice@example.com; the set of their ids (int64_t *
 * keys; g_hash_table_unref it). */
GHashTable *kst_put_many(msilo_store_t *s, int n);
/* Runs @p fn on each of the @p n workers in its own thread (ids and
 * lease_owner set first) and joins them. No cmocka assertion may run in @p fn. */
void kst_run_workers(kst_worker_t *w, int n, GThreadFunc fn);
/* Each worker succeeded and got only ids of @p want, none twice (removed
 * from it as they are seen; @p what names the act in the failure);
 * frees the workers' peers of @p s and their ids. @return ids seen in all. */
size_t kst_collect_once(msilo_store_t *s, kst_worker_t *w, int n, GHashTable *want,
                        const char *what);

/* Every test runs on a fresh store from the suite's open(). */
int kst_setup(void **state);
int kst_teardown(void **state);
#define T(f) cmocka_unit_test_setup_teardown(f, kst_setup, kst_teardown)
msilo_store_t *kst_store_of(void **state);

/* A complete ordinary message for user@domain, valid for an hour. */
msilo_message_t *kst_mk(const char *user, const char *domain, const char *body);
/* Stores @p m alone (no limit), frees it, returns its id. */
int64_t kst_put1(msilo_store_t *s, msilo_message_t *m);
/* Stores a message with these times; returns its id. */
int64_t kst_add(msilo_store_t *s, const char *user, const char *domain, int64_t exp_time,
                int64_t snd_time);
/* A claim of user@domain's messages by "host-a:5060/1", leased for LEASE. */
msilo_store_claim_t kst_owner_claim(const char *user, const char *domain, int64_t now);
/* A claim of due reminders, any owner. */
msilo_store_claim_t kst_reminder_claim(int64_t now);
/* Claims with @p c; writes the ids (in the returned order) to @p ids (room
 * for c->max) and returns how many. */
size_t kst_claim_ids(msilo_store_t *s, const msilo_store_claim_t *c, int64_t *ids);
size_t kst_claim_n(msilo_store_t *s, const msilo_store_claim_t *c);
int64_t kst_count_of(msilo_store_t *s, const char *user, const char *domain);
/* The message @p id, which must exist. */
msilo_message_t *kst_get1(msilo_store_t *s, int64_t id);
/* Every stored field of @p got equals @p want (id included). */
void kst_assert_same_message(const msilo_message_t *got, const msilo_message_t *want);
/* Stores @p m, then reads it back through get, list and claim. Frees @p m. */
void kst_assert_round_trip(msilo_store_t *s, msilo_message_t *m);

/* Each topic runs as a cmocka group of its own; they return its failures. */
int kst_run_put(const char *group);
int kst_run_claim(const char *group);
int kst_run_other(const char *group);
int kst_run_concurrent(const char *group);
int kst_run_expired(const char *group); /* store-expired.c */
int kst_run_devices(const char *group);

#endif
