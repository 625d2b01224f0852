/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The test kit's own API (libmsilo-testing, <msilo/testing/...>): the suite
 * initialisers against their _INIT macros, the argument and version checks
 * of the run functions, the exit-status mapping, and the recording
 * transport's contract and errors. Then that the store suite is not
 * vacuous: run on a memory store with one deliberate bug, it must fail.
 */
#include <msilo/testing/fake-transport.h>
#include <msilo/testing/store.h>
#include <msilo/testing/transport.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* A failing test leaves what it allocated (cmocka longjmps out of it): the
 * broken store's run is expected to leak, so LeakSanitizer does not watch it. */
#if defined(__SANITIZE_ADDRESS__)
#define KIT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KIT_ASAN 1
#endif
#endif
#ifdef KIT_ASAN
#include <sanitizer/lsan_interface.h>
#define leaks_ignored_begin() __lsan_disable()
#define leaks_ignored_end() __lsan_enable()
#else
#define leaks_ignored_begin() ((void)0)
#define leaks_ignored_end() ((void)0)
#endif

static int open_memory(void *data, msilo_store_t **ret)
{
    (void)data;
    return msilo_memory_store_new(ret);
}

static void test_suite_init(void **state)
{
    (void)state;
    msilo_testing_store_suite_t s;
    const msilo_testing_store_suite_t s_init = MSILO_TESTING_STORE_SUITE_INIT;
    memset(&s, 0xa5, sizeof s);
    assert_int_equal(msilo_testing_store_suite_init(&s, MSILO_TESTING_STORE_SUITE_VERSION), 0);
    assert_int_equal(s.version, s_init.version);
    assert_int_equal(s.version, MSILO_TESTING_STORE_SUITE_VERSION);
    assert_null(s.name);
    assert_null(s.open);
    assert_null(s.close);
    assert_null(s.data);
    assert_int_equal(msilo_testing_store_suite_init(NULL, 1), MSILO_EINVAL);
    assert_int_equal(msilo_testing_store_suite_init(&s, 0), MSILO_EVERSION);
    assert_int_equal(msilo_testing_store_suite_init(&s, MSILO_TESTING_STORE_SUITE_VERSION + 1),
                     MSILO_EVERSION);

    msilo_testing_transport_suite_t t;
    const msilo_testing_transport_suite_t t_init = MSILO_TESTING_TRANSPORT_SUITE_INIT;
    memset(&t, 0xa5, sizeof t);
    assert_int_equal(msilo_testing_transport_suite_init(&t, MSILO_TESTING_TRANSPORT_SUITE_VERSION),
                     0);
    assert_int_equal(t.version, t_init.version);
    assert_null(t.name);
    assert_null(t.open);
    assert_null(t.close);
    assert_null(t.in_flight);
    assert_null(t.data);
    assert_int_equal(msilo_testing_transport_suite_init(NULL, 1), MSILO_EINVAL);
    assert_int_equal(msilo_testing_transport_suite_init(&t, 0), MSILO_EVERSION);
}

static int open_never(void *data, const msilo_testing_transport_env_t *env, msilo_transport_t **ret)
{
    (void)data, (void)env, (void)ret;
    return MSILO_ENOTSUP;
}

/* A run that cannot start says why and runs nothing (no cmocka output). */
static void test_run_errors(void **state)
{
    (void)state;
    msilo_testing_store_suite_t s = MSILO_TESTING_STORE_SUITE_INIT;
    assert_int_equal(msilo_testing_store_run(NULL), MSILO_EINVAL);
    assert_int_equal(msilo_testing_store_run(&s), MSILO_EINVAL); /* no open */
    s.open = open_memory;
    s.version = 0;
    assert_int_equal(msilo_testing_store_run(&s), MSILO_EVERSION);
    s.version = MSILO_TESTING_STORE_SUITE_VERSION + 1;
    assert_int_equal(msilo_testing_store_run(&s), MSILO_EVERSION);

    msilo_testing_transport_suite_t t = MSILO_TESTING_TRANSPORT_SUITE_INIT;
    assert_int_equal(msilo_testing_transport_run(NULL), MSILO_EINVAL);
    assert_int_equal(msilo_testing_transport_run(&t), MSILO_EINVAL);
    t.open = open_never;
    t.version = 0;
    assert_int_equal(msilo_testing_transport_run(&t), MSILO_EVERSION);
}

static void test_exit_status(void **state)
{
    (void)state;
    assert_int_equal(msilo_testing_exit_status(0), 0);
    assert_int_equal(msilo_testing_exit_status(1), 1);
    assert_int_equal(msilo_testing_exit_status(300), 1); /* not 300 % 256 == 44 */
    assert_int_equal(msilo_testing_exit_status(MSILO_ENOTSUP), 77);
    assert_int_equal(msilo_testing_exit_status(MSILO_EINVAL), 99);
    assert_int_equal(msilo_testing_exit_status(MSILO_EVERSION), 99);
}

typedef struct outcome {
    int calls, status;
} outcome_t;

static void done_cb(int status, void *data)
{
    outcome_t *o = data;
    o->calls++;
    o->status = status;
}

static int send_to(msilo_transport_t *t, const char *ruri, outcome_t *o)
{
    msilo_outgoing_t m = {
        .ruri = ruri,
        .from = "sip:bob@example.org",
        .to = ruri,
        .content_type = "text/plain",
        .body = "hi\0there",
        .body_len = 8,
        .headers = "Date: Fri, 27 Nov 2026 02:01:01 GMT\r\nX-Msilo-Id:  7 \r\n",
    };
    return msilo_transport_send(t, &m, done_cb, o);
}

static void test_fake_records_and_answers(void **state)
{
    (void)state;
    msilo_testing_fake_transport_t *t = NULL;
    assert_int_equal(msilo_testing_fake_transport_new(NULL, NULL), MSILO_EINVAL);
    assert_int_equal(msilo_testing_fake_transport_new(&t, NULL), 0);
    assert_int_equal(msilo_transport_check(&t->base), 0);

    outcome_t o[3] = { { 0 } };
    assert_int_equal(send_to(&t->base, "sip:alice@example.org", &o[0]), 0);
    assert_int_equal(send_to(&t->base, "sip:carol@example.org", &o[1]), 0);
    assert_int_equal(o[0].calls + o[1].calls, 0); /* never from inside send() */
    assert_int_equal(t->sent->len, 2);

    const msilo_testing_sent_t *s = t->sent->pdata[0];
    assert_string_equal(s->ruri, "sip:alice@example.org");
    assert_null(s->next_hop);
    assert_null(s->call_id);
    gsize n = 0;
    const char *body = g_bytes_get_data(s->body, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(body, "hi\0there", 8);
    char *v = msilo_testing_sent_header(s, "x-msilo-id");
    assert_string_equal(v, "7");
    g_free(v);
    v = msilo_testing_sent_header(s, "date");
    assert_string_equal(v, "Fri, 27 Nov 2026 02:01:01 GMT");
    g_free(v);
    assert_null(msilo_testing_sent_header(s, "X-Msilo"));
    assert_null(msilo_testing_sent_header(s, NULL));
    assert_null(msilo_testing_sent_header(NULL, "Date"));

    assert_int_equal(msilo_testing_fake_transport_answer(t, 2, 200), MSILO_EINVAL);
    assert_int_equal(msilo_testing_fake_transport_answer(NULL, 0, 200), MSILO_EINVAL);
    assert_int_equal(msilo_testing_fake_transport_answer(t, 1, 486), 0);
    assert_int_equal(o[1].calls, 1);
    assert_int_equal(o[1].status, 486);
    assert_int_equal(msilo_testing_fake_transport_answer(t, 1, 200), MSILO_EINVAL); /* once */
    assert_int_equal(o[1].calls, 1);
    assert_int_equal(t->answered, 1);

    /* refuse: an error, no record, no done() */
    t->refuse = MSILO_ETRANSPORT;
    assert_int_equal(send_to(&t->base, "sip:dave@example.org", &o[2]), MSILO_ETRANSPORT);
    assert_int_equal(t->sent->len, 2);
    t->refuse = 0;

    assert_int_equal(msilo_testing_fake_transport_answer_all(t, 200), 1);
    assert_int_equal(o[0].calls, 1);
    assert_int_equal(o[0].status, 200);
    assert_int_equal(msilo_testing_fake_transport_answer_all(t, 200), 0);
    assert_int_equal(msilo_testing_fake_transport_answer_all(NULL, 200), 0);

    /* auto_status: answered from the context, not from inside send() */
    t->auto_status = 202;
    assert_int_equal(send_to(&t->base, "sip:erin@example.org", &o[2]), 0);
    assert_int_equal(o[2].calls, 0);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    assert_int_equal(o[2].calls, 1);
    assert_int_equal(o[2].status, 202);
    assert_int_equal(t->answered, 3);
    msilo_transport_free(&t->base);
}

static void test_fake_free_cancels(void **state)
{
    (void)state;
    msilo_testing_fake_transport_t *t = NULL;
    assert_int_equal(msilo_testing_fake_transport_new(&t, NULL), 0);
    outcome_t o[2] = { { 0 } };
    assert_int_equal(send_to(&t->base, "sip:alice@example.org", &o[0]), 0);
    t->auto_status = 200; /* its idle answer is still pending at free() */
    assert_int_equal(send_to(&t->base, "sip:bob@example.org", &o[1]), 0);
    msilo_transport_free(&t->base);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].status, MSILO_ECANCELLED);
    }
    while (g_main_context_iteration(NULL, FALSE))
        ;
    assert_int_equal(o[1].calls, 1);
}

/* ---- the suite catches a broken store ------------------------------------ */

static int (*memory_count)(msilo_store_t *, const char *, const char *, int64_t *);

/* Counts one message too many once there are any. */
static int broken_count(msilo_store_t *s, const char *user, const char *domain, int64_t *ret)
{
    int rc = memory_count(s, user, domain, ret);
    if (rc == 0 && *ret > 0)
        (*ret)++;
    return rc;
}

static int open_broken(void *data, msilo_store_t **ret)
{
    (void)data;
    int rc = msilo_memory_store_new(ret);
    if (rc == 0) {
        memory_count = (*ret)->count;
        (*ret)->count = broken_count;
    }
    return rc;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite_init),
        cmocka_unit_test(test_run_errors),
        cmocka_unit_test(test_exit_status),
        cmocka_unit_test(test_fake_records_and_answers),
        cmocka_unit_test(test_fake_free_cancels),
    };
    int failed = cmocka_run_group_tests_name("testing-kit", tests, NULL, NULL);

    msilo_testing_store_suite_t broken = MSILO_TESTING_STORE_SUITE_INIT;
    broken.name = "deliberately-broken-count (failures expected)";
    broken.open = open_broken;
    leaks_ignored_begin();
    int found = msilo_testing_store_run(&broken);
    leaks_ignored_end();
    printf("the store suite found %d failing tests in a store whose count is off by one\n", found);
    if (found <= 0) {
        printf("FAILED: the suite passed a broken store\n");
        failed++;
    }
    return failed ? 1 : 0;
}
