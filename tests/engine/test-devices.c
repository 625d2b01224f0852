/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Several devices (issue 15, deliver_to = every_device): each device of a
 * user (+sip.instance, else Contact) gets each stored message once; an
 * un-REGISTER of one device leaves the others' rounds alone; a device seen
 * for the first time while a message is still stored gets it; a permanent
 * failure ends the message for that device only; a MESSAGE to a GRUU is
 * for that device only; forgotten devices (device_ttl) no longer hold a
 * message back. And deliver_to = first (the default) is what it was. The
 * memory store, the recording transport and a fake clock.
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
#define URI_A "sip:alice@192.0.2.1:5070"
#define URI_B "sip:alice@192.0.2.2:5070"
#define URI_C "sip:alice@192.0.2.3:5070"
#define PHONE_A "<" URI_A ">;+sip.instance=\"<urn:uuid:aaaaaaaa-0000-0000-0000-000000000001>\""
#define PHONE_B "<" URI_B ">;+sip.instance=\"<urn:uuid:bbbbbbbb-0000-0000-0000-000000000002>\""
#define PHONE_C "<" URI_C ">" /* no instance: the Contact URI is the device */

typedef engine_fixture_t fixture;

static int setup(void **state)
{
    fixture *f = engine_fixture_new(T0);
    assert_int_equal(msilo_config_set(f->cfg, "check_time", "10"), 0);
    assert_int_equal(msilo_config_set(f->cfg, "deliver_to", "every_device"), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    engine_fixture_free(*state);
    return 0;
}

static void store_to(fixture *f, const char *ruri, const char *body)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.method = "MESSAGE";
    r.ruri = ruri;
    r.to = ALICE;
    r.from = "<sip:bob@example.org>;tag=1";
    r.body = body;
    r.body_len = strlen(body);
    int64_t id = 0;
    int rc = msilo_engine_store_sync(f->e, &r, NULL, &id);
    if (rc)
        fail_msg("store: %s (%s)", msilo_strerror(rc), msilo_error_detail());
    assert_true(id > 0);
}

static void store_n(fixture *f, int n)
{
    for (int i = 0; i < n; i++) {
        char *body = g_strdup_printf("msg %d", i);
        store_to(f, ALICE, body);
        g_free(body);
    }
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

/* A REGISTER of @contact (@expires), its dump started and the loop run. */
static void dump(fixture *f, const char *contact, long expires, dump_rec *rec)
{
    msilo_request_t reg = MSILO_REQUEST_INIT;
    reg.method = "REGISTER";
    reg.to = ALICE;
    reg.from = ALICE;
    reg.contact = contact;
    reg.expires = expires;
    *rec = (dump_rec){ 0 };
    int rc = msilo_engine_dump(f->e, &reg, NULL, 0, dump_cb, rec);
    if (rc)
        fail_msg("dump: %s (%s)", msilo_strerror(rc), msilo_error_detail());
    assert_int_equal(rec->calls, 0); /* never from inside the call */
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
}

/* A dump of @contact that must find nothing to send. */
static void dump_nothing(fixture *f, const char *contact)
{
    guint before = f->tr->sent->len;
    dump_rec rec;
    dump(f, contact, 3600, &rec);
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.rc, 0);
    assert_int_equal(rec.res.claimed, 0);
    assert_int_equal(f->tr->sent->len, before);
}

/* Sends to @ruri from send number @from on, answered or not. */
static guint sent_to(fixture *f, guint from, const char *ruri)
{
    guint n = 0;
    for (guint i = from; i < f->tr->sent->len; i++)
        if (strcmp(((fake_sent_t *)f->tr->sent->pdata[i])->ruri, ruri) == 0)
            n++;
    return n;
}

/* Answers every unanswered send to @ruri with @status, then runs the loop. */
static guint answer_to(fixture *f, const char *ruri, int status)
{
    guint n = 0;
    for (guint i = 0; i < f->tr->sent->len; i++) {
        fake_sent_t *s = f->tr->sent->pdata[i];
        if (!s->answered && strcmp(s->ruri, ruri) == 0) {
            fake_transport_answer(f->tr, i, status);
            n++;
        }
    }
    assert_true(run_until_idle(f->e, f->ctx, TRUE));
    return n;
}

static int64_t count(fixture *f)
{
    int64_t n = -1;
    assert_int_equal(msilo_store_count(f->store, "alice", "example.org", &n), 0);
    return n;
}

/* A device gets what it lacks: @n sends to @uri, all answered 200. */
static void deliver_all(fixture *f, const char *contact, const char *uri, guint n)
{
    guint before = f->tr->sent->len;
    dump_rec rec;
    dump(f, contact, 3600, &rec);
    assert_int_equal(sent_to(f, before, uri), n);
    assert_int_equal(f->tr->sent->len - before, n);
    assert_int_equal(answer_to(f, uri, 200), n);
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.rc, 0);
    assert_int_equal(rec.res.delivered, n);
}

static void test_two_devices_each_get_three_once(void **state)
{
    fixture *f = *state;
    engine_fixture_start(f);
    dump_nothing(f, PHONE_A); /* both phones registered once: known */
    dump_nothing(f, PHONE_B);
    store_n(f, 3);
    deliver_all(f, PHONE_A, URI_A, 3);
    assert_int_equal(count(f), 3); /* B lacks them */
    dump_nothing(f, PHONE_A);      /* re-REGISTER: no duplicate */
    deliver_all(f, PHONE_B, URI_B, 3);
    assert_int_equal(count(f), 0);
    dump_nothing(f, PHONE_B);
    dump_nothing(f, PHONE_A);
    assert_int_equal(msilo_engine_stat(f->e, MSILO_STAT_DUMPED_MESSAGES), 6);
}

static void test_unregister_of_one_leaves_the_other(void **state)
{
    fixture *f = *state;
    engine_fixture_start(f);
    dump_nothing(f, PHONE_A);
    dump_nothing(f, PHONE_B);
    store_n(f, 2);
    dump_rec ra, rb;
    dump(f, PHONE_A, 3600, &ra);
    dump(f, PHONE_B, 3600, &rb);
    assert_int_equal(sent_to(f, 0, URI_A), 2);
    assert_int_equal(sent_to(f, 0, URI_B), 2);
    /* both fail: each device's retries are due later */
    answer_to(f, URI_A, 500);
    answer_to(f, URI_B, 500);
    assert_int_equal(ra.calls, 1);
    assert_int_equal(rb.calls, 1);
    /* A leaves */
    dump_rec ru;
    dump(f, PHONE_A, 0, &ru);
    assert_int_equal(ru.calls, 1);
    guint mark = f->tr->sent->len;
    for (int step = 0; step < 12; step++) { /* two minutes, check by check */
        f->clock.now += 10;
        msilo_engine_tick(f->e);
        assert_true(run_until_idle(f->e, f->ctx, TRUE));
        answer_to(f, URI_B, 500);
    }
    assert_int_equal(sent_to(f, mark, URI_A), 0); /* A's retries ended */
    assert_true(sent_to(f, mark, URI_B) >= 2);    /* B's go on */
    /* B at last takes them; A still lacks them */
    f->clock.now += 3600;
    deliver_all(f, PHONE_B, URI_B, 2);
    assert_int_equal(count(f), 2);
    deliver_all(f, PHONE_A, URI_A, 2);
    assert_int_equal(count(f), 0);
}

static void test_new_device_after_store(void **state)
{
    fixture *f = *state;
    engine_fixture_start(f);
    dump_nothing(f, PHONE_A);
    dump_nothing(f, PHONE_B);
    store_n(f, 3);
    deliver_all(f, PHONE_A, URI_A, 3);
    /* C registers for the first time after the messages were stored */
    deliver_all(f, PHONE_C, URI_C, 3);
    assert_int_equal(count(f), 3); /* B still lacks them */
    deliver_all(f, PHONE_B, URI_B, 3);
    assert_int_equal(count(f), 0);
}

static void test_permanent_failure_on_one_device(void **state)
{
    fixture *f = *state;
    engine_fixture_start(f);
    dump_nothing(f, PHONE_A);
    dump_nothing(f, PHONE_B);
    store_n(f, 1);
    dump_rec ra;
    dump(f, PHONE_A, 3600, &ra);
    assert_int_equal(sent_to(f, 0, URI_A), 1);
    assert_int_equal(answer_to(f, URI_A, 415), 1); /* A cannot take it, ever */
    assert_int_equal(ra.res.failed, 1);
    assert_int_equal(count(f), 1);  /* B may */
    dump_nothing(f, PHONE_A);       /* not retried on A */
    deliver_all(f, PHONE_B, URI_B, 1);
    assert_int_equal(count(f), 0);
}

static void test_gruu_message_for_one_device(void **state)
{
    fixture *f = *state;
    engine_fixture_start(f);
    dump_nothing(f, PHONE_A);
    dump_nothing(f, PHONE_B);
    store_to(f, ALICE ";gr=urn:uuid:bbbbbbbb-0000-0000-0000-000000000002", "for b only");
    dump_nothing(f, PHONE_A);
    deliver_all(f, PHONE_B, URI_B, 1);
    assert_int_equal(count(f), 0); /* A never waited for it */
}

static void test_forgotten_device_holds_nothing_back(void **state)
{
    fixture *f = *state;
    assert_int_equal(msilo_config_set(f->cfg, "device_ttl", "100"), 0);
    assert_int_equal(msilo_config_set(f->cfg, "clean_period", "1"), 0);
    engine_fixture_start(f);
    dump_nothing(f, PHONE_B); /* B registers once, then never again */
    f->clock.now += 60;
    dump_nothing(f, PHONE_A);
    store_n(f, 1);
    deliver_all(f, PHONE_A, URI_A, 1);
    assert_int_equal(count(f), 1); /* waits for B */
    for (int step = 0; step < 6; step++) { /* B's last REGISTER is 120 s old at the end */
        f->clock.now += 10;
        msilo_engine_tick(f->e);
        assert_true(run_until_idle(f->e, f->ctx, TRUE));
    }
    assert_int_equal(count(f), 0);
}

static void test_first_mode_unchanged(void **state)
{
    fixture *f = *state;
    assert_int_equal(msilo_config_set(f->cfg, "deliver_to", "first"), 0);
    engine_fixture_start(f);
    dump_nothing(f, PHONE_B);
    store_n(f, 3);
    deliver_all(f, PHONE_A, URI_A, 3);
    assert_int_equal(count(f), 0); /* the first device took them */
    dump_nothing(f, PHONE_B);
}

static void test_every_device_needs_a_capable_store(void **state)
{
    fixture *f = *state;
    /* a store of revision 4 without per-device delivery */
    f->store->mark_delivered = NULL;
    msilo_engine_t *e = NULL;
    int rc = msilo_engine_new(&e, f->cfg, f->store, &f->tr->base, f->ctx);
    assert_int_equal(rc, MSILO_ECONFIG);
    assert_null(e);
    assert_non_null(strstr(msilo_error_detail(), "every_device"));
    /* and no such mode */
    assert_int_equal(msilo_config_set(f->cfg, "deliver_to", "each"), 0);
    assert_int_equal(msilo_config_validate(f->cfg), MSILO_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_devices_each_get_three_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregister_of_one_leaves_the_other, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_device_after_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_failure_on_one_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gruu_message_for_one_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forgotten_device_holds_nothing_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_first_mode_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_device_needs_a_capable_store, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
