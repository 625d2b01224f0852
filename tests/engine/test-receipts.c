/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the engine keeps and what it tells the sender (issue 16): transient
 * content types are never stored (MSILO_ETRANSIENT, 480, counted); a
 * delivery answered with a permanent failure ends the message at once
 * (deleted, counted, no retry) and the sender gets the failure notice; the
 * From display name and the stored headers come back on delivery; the date
 * prefix has its UTC offset. The memory store, the recording transport, a
 * fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <msilo/sys/store.h>

#include "fake.h"

#define T0 1800000000
#define ALICE "sip:alice@example.org"
#define BOB "sip:bob@example.org"

typedef struct fixture {
    engine_fixture_t *ef;
} fixture;

static int setup(void **state)
{
    fixture *f = g_new0(fixture, 1);
    f->ef = engine_fixture_new(T0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    engine_fixture_free(f->ef);
    g_free(f);
    return 0;
}

static void set(fixture *f, const char *key, const char *value)
{
    if (msilo_config_set(f->ef->cfg, key, value) != 0)
        fail_msg("%s: %s", key, msilo_error_detail());
}

static msilo_request_t message(const char *ctype, const char *body)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.method = "MESSAGE";
    r.ruri = ALICE;
    r.to = ALICE;
    r.from = "\"Bob\" <" BOB ">;tag=b1";
    r.call_id = "call-1@example.org";
    r.content_type = ctype;
    r.body = body;
    r.body_len = strlen(body);
    return r;
}

static int64_t count(fixture *f)
{
    int64_t n = -1;
    assert_int_equal(msilo_store_count(f->ef->store, "alice", "example.org", &n), 0);
    return n;
}

static int store(fixture *f, const char *ctype)
{
    msilo_request_t r = message(ctype, "<isComposing/>");
    int64_t id = 0;
    return msilo_engine_store_sync(f->ef->e, &r, NULL, &id);
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

static void dump(fixture *f, dump_rec *rec)
{
    msilo_request_t reg = MSILO_REQUEST_INIT;
    reg.method = "REGISTER";
    reg.to = ALICE;
    reg.from = ALICE;
    reg.contact = "<sip:alice@127.0.0.1:5070>";
    reg.expires = 3600;
    assert_int_equal(msilo_engine_dump(f->ef->e, &reg, NULL, 0, dump_cb, rec), 0);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, TRUE));
}

static const fake_sent_t *sent(fixture *f, guint i)
{
    assert_true(i < f->ef->tr->sent->len);
    return f->ef->tr->sent->pdata[i];
}

/* ---- transient content -------------------------------------------------- */

/* isComposing (RFC 3994) is refused with MSILO_ETRANSIENT (480), whatever
 * its parameters and case; nothing is stored; each refusal is counted. */
static void test_transient_not_stored(void **state)
{
    fixture *f = *state;
    engine_fixture_start(f->ef);
    assert_int_equal(store(f, "application/im-iscomposing+xml"), MSILO_ETRANSIENT);
    assert_int_equal(msilo_error_sip_status(MSILO_ETRANSIENT), 480);
    assert_string_equal(msilo_error_name(MSILO_ETRANSIENT), "MSILO_ETRANSIENT");
    assert_non_null(strstr(msilo_error_detail(), "transient"));
    assert_int_equal(store(f, "Application/IM-isComposing+XML ; charset=utf-8"), MSILO_ETRANSIENT);
    assert_int_equal(count(f), 0);
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_REJECTED_TRANSIENT), 2);
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_STORED_MESSAGES), 0);
    assert_string_equal(msilo_stat_name(MSILO_STAT_REJECTED_TRANSIENT), "rejected_transient");
    /* a type that only starts like it is stored */
    assert_int_equal(store(f, "application/im-iscomposing+xml2"), 0);
    assert_int_equal(store(f, "text/plain"), 0);
    assert_int_equal(count(f), 2);
}

/* The list is configurable: empty stores everything, another list refuses its types. */
static void test_transient_configurable(void **state)
{
    fixture *f = *state;
    set(f, "transient_types", "text/x-typing, application/x-status");
    engine_fixture_start(f->ef);
    assert_int_equal(store(f, "application/im-iscomposing+xml"), 0);
    assert_int_equal(store(f, "application/x-status"), MSILO_ETRANSIENT);
    assert_int_equal(store(f, "text/x-typing;a=b"), MSILO_ETRANSIENT);
    assert_int_equal(count(f), 1);
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_REJECTED_TRANSIENT), 2);
}

static void test_transient_none(void **state)
{
    fixture *f = *state;
    set(f, "transient_types", "");
    engine_fixture_start(f->ef);
    assert_int_equal(store(f, "application/im-iscomposing+xml"), 0);
    assert_int_equal(count(f), 1);
}

/* ---- permanent failures ------------------------------------------------- */

/* A 415 on delivery deletes the message at once: no release, no retry at
 * the next check or the next REGISTER; counted; the notice goes to the
 * sender's From with from_address and failure_message. */
static void test_permanent_failure_ends_message(void **state)
{
    fixture *f = *state;
    set(f, "from_address", "sip:silo@example.org");
    set(f, "failure_message", "Not delivered to $tU.");
    set(f, "contact_hdr", "Contact: <sip:silo@example.org>");
    engine_fixture_start(f->ef);
    assert_int_equal(store(f, "text/plain"), 0);
    assert_int_equal(f->ef->tr->sent->len, 0); /* no offline_message: no offline notification */
    dump_rec d = { 0 };
    dump(f, &d);
    assert_int_equal(f->ef->tr->sent->len, 1);
    fake_transport_answer(f->ef->tr, 0, 415);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, TRUE));
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.res.failed, 1);
    assert_int_equal(count(f), 0);
    msilo_engine_t *e = f->ef->e;
    assert_int_equal(msilo_engine_stat(e, MSILO_STAT_PERMANENT_FAILURES), 1);
    assert_int_equal(msilo_engine_stat(e, MSILO_STAT_FAILED_MESSAGES), 1);
    assert_int_equal(msilo_engine_stat(e, MSILO_STAT_QUEUED), 0);

    /* the notice: to bob, from the silo, text/plain */
    assert_int_equal(f->ef->tr->sent->len, 2);
    const fake_sent_t *n = sent(f, 1);
    assert_string_equal(n->ruri, BOB);
    assert_string_equal(n->to, BOB);
    assert_string_equal(n->from, "sip:silo@example.org");
    assert_string_equal(n->content_type, "text/plain");
    gsize len = 0;
    const char *body = g_bytes_get_data(n->body, &len);
    assert_int_equal(len, strlen("Not delivered to alice."));
    assert_memory_equal(body, "Not delivered to alice.", len);
    char *contact = fake_sent_header(n, "Contact");
    assert_string_equal(contact, "<sip:silo@example.org>");
    g_free(contact);
    fake_transport_answer(f->ef->tr, 1, 200);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, TRUE));
    assert_int_equal(msilo_engine_stat(e, MSILO_STAT_NOTIFICATIONS_SENT), 1);

    /* nothing more: not at the checks, not at the next REGISTER */
    for (int i = 0; i < 10; i++) {
        f->ef->clock.now += 60;
        msilo_engine_tick(e);
        assert_true(run_until_idle(e, f->ef->ctx, TRUE));
    }
    dump_rec d2 = { 0 };
    dump(f, &d2);
    assert_int_equal(f->ef->tr->sent->len, 2);
}

/* A status not in the list (503) is retried as before; without from_address
 * a permanent failure tells nobody (there is no channel configured). */
static void test_transient_failure_kept_and_no_notice(void **state)
{
    fixture *f = *state;
    set(f, "permanent_failures", "404, 415");
    engine_fixture_start(f->ef);
    assert_int_equal(store(f, "text/plain"), 0);
    assert_int_equal(store(f, "text/plain"), 0);
    dump_rec d = { 0 };
    dump(f, &d);
    assert_int_equal(f->ef->tr->sent->len, 2);
    fake_transport_answer(f->ef->tr, 0, 503);
    fake_transport_answer(f->ef->tr, 1, 404);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, TRUE));
    assert_int_equal(count(f), 1); /* the 503 one waits for its retry */
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_PERMANENT_FAILURES), 1);
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_FAILED_MESSAGES), 2);
    assert_int_equal(f->ef->tr->sent->len, 2); /* no notice */
}

/* The list is checked when the configuration is: 300..699 only. */
static void test_permanent_list_validated(void **state)
{
    fixture *f = *state;
    set(f, "permanent_failures", "415 200");
    assert_int_equal(msilo_config_validate(f->ef->cfg), MSILO_ECONFIG);
    assert_non_null(strstr(msilo_error_detail(), "permanent_failures"));
    set(f, "permanent_failures", "415 abc");
    assert_int_equal(msilo_config_validate(f->ef->cfg), MSILO_ECONFIG);
    set(f, "permanent_failures", "");
    assert_int_equal(msilo_config_validate(f->ef->cfg), 0);
}

/* ---- the sender's identity and headers ---------------------------------- */

/* The From's display name and the stored headers (Subject...) come back on
 * delivery, the display name in the From (not as a header); the date prefix
 * carries its UTC offset (TZ=UTC: +0000). */
static void test_display_name_and_headers(void **state)
{
    fixture *f = *state;
    engine_fixture_start(f->ef);
    msilo_request_t r = message("text/plain", "hi");
    r.from = "\"Bob B.\" <" BOB ">;tag=b1";
    const msilo_header_t hdrs[] = { { "Subject", "lunch?" }, { "Priority", "urgent" } };
    r.headers = hdrs;
    r.n_headers = 2;
    int64_t id = 0;
    assert_int_equal(msilo_engine_store_sync(f->ef->e, &r, NULL, &id), 0);
    dump_rec d = { 0 };
    dump(f, &d);
    assert_int_equal(f->ef->tr->sent->len, 1);
    const fake_sent_t *s = sent(f, 0);
    assert_string_equal(s->from, "\"Bob B.\" <" BOB ">");
    char *v = fake_sent_header(s, "Subject");
    assert_string_equal(v, "lunch?");
    g_free(v);
    v = fake_sent_header(s, "Priority");
    assert_string_equal(v, "urgent");
    g_free(v);
    assert_null(strstr(s->headers, "X-Msilo-From-Display"));
    gsize len = 0;
    const char *body = g_bytes_get_data(s->body, &len);
    char *b = g_strndup(body, len);
    assert_true(g_str_has_prefix(b, "[Offline message - "));
    assert_non_null(strstr(b, " +0000] hi"));
    g_free(b);
    /* the dump completes once its delivery has (d lives on this stack) */
    fake_transport_answer(f->ef->tr, 0, 200);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, FALSE));
    assert_int_equal(d.calls, 1);
}

/* Without a display name the From is the bare stored URI, as before. */
static void test_no_display_name(void **state)
{
    fixture *f = *state;
    engine_fixture_start(f->ef);
    msilo_request_t r = message("text/plain", "hi");
    r.from = "<" BOB ">;tag=b1";
    int64_t id = 0;
    assert_int_equal(msilo_engine_store_sync(f->ef->e, &r, NULL, &id), 0);
    dump_rec d = { 0 };
    dump(f, &d);
    assert_string_equal(sent(f, 0)->from, BOB);
    assert_true(sent(f, 0)->headers == NULL ||
                strstr(sent(f, 0)->headers, "X-Msilo-From-Display") == NULL);
    fake_transport_answer(f->ef->tr, 0, 200);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, FALSE));
    assert_int_equal(d.calls, 1);
}

/* ---- overlapping dumps ---------------------------------------------------- */

/* Two REGISTERs whose dumps overlap share one round: each message is
 * counted once across the two results (it was counted in both). */
static void test_merged_dumps_count_once(void **state)
{
    fixture *f = *state;
    engine_fixture_start(f->ef);
    for (int i = 0; i < 3; i++)
        assert_int_equal(store(f, "text/plain"), 0);
    dump_rec a = { 0 }, b = { 0 };
    dump(f, &a);
    dump(f, &b); /* while a's deliveries are out */
    assert_int_equal(fake_transport_answer_all(f->ef->tr, 200), 3);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, FALSE));
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(a.res.claimed + b.res.claimed, 3);
    assert_int_equal(a.res.delivered + b.res.delivered, 3);
    assert_int_equal(a.res.failed + b.res.failed, 0);
    assert_int_equal(count(f), 0);
}

/* ---- the count-change hook ------------------------------------------------ */

typedef struct {
    GPtrArray *calls; /* "user@domain" or "*" */
} count_rec;

static void count_hook(msilo_engine_t *e, const char *user, const char *domain, void *data)
{
    (void)e;
    count_rec *c = data;
    g_ptr_array_add(c->calls, user ? g_strdup_printf("%s@%s", user, domain) : g_strdup("*"));
}

/* The hook hears of a committed store (its owner), of the delete of
 * delivered messages and of expiry (any owner); NULL removes it. */
static void test_count_hook(void **state)
{
    fixture *f = *state;
    set(f, "expire_time", "100");
    engine_fixture_start(f->ef);
    count_rec c = { g_ptr_array_new_with_free_func(g_free) };
    assert_int_equal(msilo_engine_set_count_hook(NULL, count_hook, &c), MSILO_EINVAL);
    assert_int_equal(msilo_engine_set_count_hook(f->ef->e, count_hook, &c), 0);
    assert_int_equal(store(f, "text/plain"), 0);
    assert_int_equal(c.calls->len, 1);
    assert_string_equal(c.calls->pdata[0], "alice@example.org");
    assert_int_equal(store(f, "application/im-iscomposing+xml"), MSILO_ETRANSIENT);
    assert_int_equal(c.calls->len, 1); /* nothing stored, nothing changed */

    dump_rec d = { 0 };
    dump(f, &d);
    fake_transport_answer(f->ef->tr, 0, 200);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, FALSE));
    assert_int_equal(c.calls->len, 2);
    assert_string_equal(c.calls->pdata[1], "*");
    assert_int_equal(count(f), 0);

    assert_int_equal(store(f, "text/plain"), 0);
    assert_int_equal(c.calls->len, 3);
    f->ef->clock.now += 1000; /* past expire_time: the next tick expires it */
    msilo_engine_tick(f->ef->e);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, TRUE));
    assert_int_equal(count(f), 0);
    assert_int_equal(c.calls->len, 4);
    assert_string_equal(c.calls->pdata[3], "*");

    assert_int_equal(msilo_engine_set_count_hook(f->ef->e, NULL, NULL), 0);
    assert_int_equal(store(f, "text/plain"), 0);
    assert_int_equal(c.calls->len, 4);
    g_ptr_array_unref(c.calls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_transient_not_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_configurable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_failure_ends_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_failure_kept_and_no_notice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_list_validated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_display_name_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_display_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merged_dumps_count_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_hook, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
