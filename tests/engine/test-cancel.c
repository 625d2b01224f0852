/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cancel: an un-REGISTER (a dump with expires 0, or Contact "*") ends the
 * owner's retries to that contact; msilo_engine_cancel() ends the dumps in
 * progress (MSILO_ECANCELLED, their counts), releases what was claimed and
 * not sent at once, and lets the sends in flight finish (a 2xx still
 * deletes). The memory store, the recording transport and a fake clock: time
 * moves only when a test says so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake.h"

#define T0 1800000000 /* 2027-01-15T08:00:00Z */
#define ALICE "sip:alice@example.org"
#define CONTACT "<sip:alice@192.0.2.1:5070>"
#define CONTACT2 "<sip:alice@192.0.2.2:5070>"

typedef engine_fixture_t fixture;

static int setup(void **state)
{
    fixture *f = engine_fixture_new(T0);
    assert_int_equal(msilo_config_set(f->cfg, "check_time", "10"), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    engine_fixture_free(*state);
    return 0;
}

/* Creates the engine from f->cfg (tests set keys first). */
static void start(fixture *f)
{
    engine_fixture_start(f);
}

static void store_n(fixture *f, int n)
{
    for (int i = 0; i < n; i++) {
        char *body = g_strdup_printf("msg %d", i);
        msilo_request_t r = MSILO_REQUEST_INIT;
        r.method = "MESSAGE";
        r.ruri = ALICE;
        r.to = ALICE;
        r.from = "<sip:bob@example.org>;tag=1";
        r.body = body;
        r.body_len = strlen(body);
        int64_t id = 0;
        assert_int_equal(msilo_engine_store_sync(f->e, &r, NULL, &id), 0);
        g_free(body);
    }
}

static msilo_request_t register_req(const char *contact, long expires)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.method = "REGISTER";
    r.to = ALICE;
    r.from = ALICE;
    r.contact = contact;
    r.expires = expires;
    return r;
}

typedef struct {
    int calls, rc;
    msilo_dump_result_t res;
} dump_rec;

static void dump_cb(msilo_engine_t *e, int rc, const msilo_dump_result_t *res, void *data)
{
    (void)e;
    dump_rec *d = data;
    d->calls++;
    d->rc = rc;
    d->res = *res;
}

static void dump(fixture *f, const char *contact, long expires, dump_rec *rec)
{
    msilo_request_t reg = register_req(contact, expires);
    int rc = msilo_engine_dump(f->e, &reg, NULL, 0, dump_cb, rec);
    if (rc)
        fail_msg("dump: %s (%s)", msilo_strerror(rc), msilo_error_detail());
    assert_int_equal(rec->calls, 0); /* never from inside the call */
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
}

static int64_t count(fixture *f)
{
    int64_t n = -1;
    assert_int_equal(msilo_store_count(f->store, "alice", "example.org", &n), 0);
    return n;
}

/* Moves the clock by @secs, check by check, ticking each time. */
static void pass_time(fixture *f, int64_t secs)
{
    for (int64_t t = 0; t < secs; t += 5) {
        f->clock.now += 5;
        msilo_engine_tick(f->e);
        assert_true(run_until_idle(f->e, f->ctx, TRUE));
        fake_transport_answer_all(f->tr, 500);
        assert_true(run_until_idle(f->e, f->ctx, TRUE));
    }
}

/* Claims alice's messages straight from the store, as another instance
 * would, at the engine's time: what is not leased. */
static size_t claim_now(fixture *f, uint32_t *attempts0)
{
    msilo_store_claim_t c = { .user = "alice", .domain = "example.org", .now = f->clock.now,
                              .max_next_try = INT64_MAX, .lease_owner = "other",
                              .lease_until = f->clock.now + 60, .max = 100 };
    msilo_message_t **msgs = NULL;
    size_t n = 0;
    assert_int_equal(msilo_store_claim(f->store, &c, &msgs, &n), 0);
    if (attempts0 && n)
        *attempts0 = msgs[0]->attempts;
    msilo_message_array_free(msgs, n);
    return n;
}

/* ---- un-REGISTER ---------------------------------------------------------- */

static void test_unregister_stops_retries(void **state)
{
    fixture *f = *state;
    start(f);
    store_n(f, 2);
    dump_rec d = { 0 };
    dump(f, CONTACT, 3600, &d);
    assert_int_equal(f->tr->sent->len, 2);
    fake_transport_answer_all(f->tr, 500);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.res.failed, 2);
    /* the retries run while registered */
    pass_time(f, 15);
    guint before = f->tr->sent->len;
    assert_true(before > 2);
    /* the UA un-REGISTERs its contact: a dump with expires 0, as every
     * embedder passes it already */
    dump_rec u = { 0 };
    dump(f, CONTACT, 0, &u);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(u.calls, 1);
    assert_int_equal(u.rc, 0);
    assert_int_equal(u.res.claimed, 0);
    pass_time(f, 600); /* many check_time periods */
    assert_int_equal(f->tr->sent->len, before); /* not one more MESSAGE */
    assert_int_equal(count(f), 2);              /* kept for the next REGISTER */
    dump_rec again = { 0 };
    dump(f, CONTACT, 3600, &again);
    assert_int_equal(f->tr->sent->len, before + 2);
    fake_transport_answer_all(f->tr, 200);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(again.res.delivered, 2);
    assert_int_equal(count(f), 0);
}

static void test_unregister_other_contact_keeps_retries(void **state)
{
    fixture *f = *state;
    start(f);
    store_n(f, 1);
    dump_rec d = { 0 };
    dump(f, CONTACT, 3600, &d);
    fake_transport_answer_all(f->tr, 500);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    dump_rec u = { 0 };
    dump(f, CONTACT2, 0, &u); /* another contact of alice goes away */
    guint before = f->tr->sent->len;
    pass_time(f, 15);
    assert_true(f->tr->sent->len > before); /* the retries to CONTACT go on */
}

static void test_unregister_star_stops_all(void **state)
{
    fixture *f = *state;
    start(f);
    store_n(f, 1);
    dump_rec d = { 0 };
    dump(f, CONTACT, 3600, &d);
    fake_transport_answer_all(f->tr, 500);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    dump_rec u = { 0 };
    dump(f, "*", 0, &u);
    guint before = f->tr->sent->len;
    pass_time(f, 120);
    assert_int_equal(f->tr->sent->len, before);
}

/* ---- msilo_engine_cancel() --------------------------------------------------- */

static void test_cancel_during_dump(void **state)
{
    fixture *f = *state;
    assert_int_equal(msilo_config_set(f->cfg, "dump_window", "1"), 0);
    start(f);
    store_n(f, 3);
    dump_rec d = { 0 };
    dump(f, CONTACT, 3600, &d);
    assert_int_equal(f->tr->sent->len, 1); /* one in flight, two claimed and waiting */
    assert_int_equal(msilo_engine_cancel(f->e, ALICE, NULL), 0);
    assert_int_equal(d.calls, 0); /* never inside the call */
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.rc, MSILO_ECANCELLED);
    assert_int_equal(d.res.claimed, 3);
    assert_int_equal(d.res.delivered, 0);
    /* released at once: another claimer gets them now, not after lease_time,
     * with their attempts unchanged; the one in flight stays leased */
    uint32_t attempts = 99;
    assert_int_equal(claim_now(f, &attempts), 2);
    assert_int_equal(attempts, 0);
    assert_int_equal(f->tr->sent->len, 1);
}

static void test_cancel_then_new_dump_and_in_flight_2xx(void **state)
{
    fixture *f = *state;
    assert_int_equal(msilo_config_set(f->cfg, "dump_window", "1"), 0);
    start(f);
    store_n(f, 3);
    dump_rec d = { 0 };
    dump(f, CONTACT, 3600, &d);
    assert_int_equal(f->tr->sent->len, 1);
    assert_int_equal(msilo_engine_cancel(f->e, ALICE, CONTACT), 0);
    /* a new dump at the same second: it takes the two released messages
     * after the send still in flight has finished */
    dump_rec d2 = { 0 };
    dump(f, CONTACT, 3600, &d2);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.rc, MSILO_ECANCELLED);
    assert_int_equal(f->tr->sent->len, 1);
    fake_transport_answer(f->tr, 0, 200); /* the in-flight one: still deletes */
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(count(f), 2);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_MESSAGES), 1);
    assert_int_equal(f->tr->sent->len, 2); /* the new round, clock unmoved */
    fake_transport_answer(f->tr, 1, 200);
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    assert_int_equal(f->tr->sent->len, 3);
    fake_transport_answer(f->tr, 2, 200);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(count(f), 0);
    assert_int_equal(d2.calls, 1);
    assert_int_equal(d2.rc, 0);
    /* as any dump for a busy owner, it counts the delivery that finished
     * while it waited (the one in flight at the cancel), and its own two */
    assert_int_equal(d2.res.claimed, 2);
    assert_int_equal(d2.res.delivered, 3);
    assert_int_equal(d.calls, 1); /* the cancelled dump ran once only */
}

static void test_cancel_claim_in_flight(void **state)
{
    fixture *f = *state;
    start(f);
    store_n(f, 2);
    msilo_request_t reg = register_req(CONTACT, 3600);
    dump_rec d = { 0 };
    assert_int_equal(msilo_engine_dump(f->e, &reg, NULL, 0, dump_cb, &d), 0);
    /* the claim has not run yet (the loop has not turned) */
    assert_int_equal(msilo_engine_cancel(f->e, ALICE, NULL), 0);
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.rc, MSILO_ECANCELLED);
    assert_int_equal(f->tr->sent->len, 0);
    assert_int_equal(claim_now(f, NULL), 2); /* what the claim brought back: released */
}

static void test_cancel_other_contact_or_nothing(void **state)
{
    fixture *f = *state;
    f->tr->auto_status = 200;
    start(f);
    store_n(f, 2);
    assert_int_equal(msilo_engine_cancel(f->e, "sip:nobody@example.org", NULL), 0);
    msilo_request_t reg = register_req(CONTACT, 3600);
    dump_rec d = { 0 };
    assert_int_equal(msilo_engine_dump(f->e, &reg, NULL, 0, dump_cb, &d), 0);
    assert_int_equal(msilo_engine_cancel(f->e, ALICE, CONTACT2), 0); /* not where it goes */
    assert_true(run_until_idle(f->e, f->ctx, FALSE));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.rc, 0);
    assert_int_equal(d.res.delivered, 2);
    assert_int_equal(count(f), 0);
}

static void test_cancel_errors(void **state)
{
    fixture *f = *state;
    start(f);
    assert_int_equal(msilo_engine_cancel(NULL, ALICE, NULL), MSILO_EINVAL);
    assert_int_equal(msilo_engine_cancel(f->e, NULL, NULL), MSILO_EINVAL);
    assert_int_equal(msilo_engine_cancel(f->e, "sip:example.org", NULL), MSILO_EURI);
    assert_int_equal(msilo_engine_cancel(f->e, "garbage", NULL), MSILO_EURI);
    assert_int_equal(msilo_engine_cancel(f->e, ALICE, "garbage"), MSILO_EURI);
    assert_int_equal(msilo_engine_cancel(f->e, ALICE, "*"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unregister_stops_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregister_other_contact_keeps_retries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unregister_star_stops_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_during_dump, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_then_new_dump_and_in_flight_2xx, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_claim_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_other_contact_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
