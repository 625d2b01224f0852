/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * RFC 5438 IMDNs from the store (lib/engine-imdn.c): a stored message/cpim
 * asking for processing gets a <stored/> processing notification once
 * committed, one asking for negative-delivery a <failed/> delivery
 * notification when its delivery fails for good (instead of the failure
 * notice); IMDN-Record-Route becomes the Request-URI and IMDN-Route; the
 * original's Message-ID and DateTime are in the document, which validates
 * against RFC 5438's schema (xmllint, tests/engine/imdn.xsd, given in
 * MSILO_IMDN_XSD); the stored CPIM body is never changed. A message/cpim
 * that expires undelivered gets its <failed/> from the expiry run (in
 * bounded batches); a store without take_expired keeps the old expiry. The
 * memory store, the recording transport, a fake clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <glib/gstdio.h>

#include <msilo/sys/store.h>

#include "fake.h"

#define T0 1800000000
#define ALICE "sip:alice@example.org"
#define BOB "sip:bob@example.org"

#define CPIM_HEAD(prefix, disp)                                                        \
    "From: Bob <" BOB ">\r\n"                                                          \
    "To: Alice <" ALICE ">\r\n"                                                        \
    "NS: " prefix " <urn:ietf:params:imdn>\r\n"                                        \
    prefix ".Message-ID: 34jk324j\r\n"                                                 \
    "DateTime: 2026-12-01T10:00:00Z\r\n"                                               \
    prefix ".Disposition-Notification: " disp "\r\n"
#define CPIM_TAIL                                                                      \
    "\r\n"                                                                             \
    "Content-Type: text/plain\r\n"                                                     \
    "Content-Length: 5\r\n"                                                            \
    "\r\n"                                                                             \
    "hello"

static const char cpim_full[] =
    CPIM_HEAD("imdn", "positive-delivery, negative-delivery, processing")
    "imdn.IMDN-Record-Route: <sip:proxy1.example.org>\r\n"
    "imdn.IMDN-Record-Route: <sip:proxy2.example.org;lr>\r\n" CPIM_TAIL;
static const char cpim_positive_only[] =
    CPIM_HEAD("x", "positive-delivery") CPIM_TAIL;
static const char cpim_negative_only[] =
    CPIM_HEAD("imdn", "negative-delivery") CPIM_TAIL;

typedef struct fixture {
    engine_fixture_t *ef;
    int dumps; /* dump callbacks run (a dump may complete after dump() returned) */
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

static int64_t store_keyed(fixture *f, const char *ctype, const char *body, const char *key)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.store_key = key;
    r.method = "MESSAGE";
    r.ruri = ALICE;
    r.to = ALICE;
    r.from = "<" BOB ">;tag=b1";
    r.content_type = ctype;
    r.body = body;
    r.body_len = strlen(body);
    int64_t id = 0;
    int rc = msilo_engine_store_sync(f->ef->e, &r, NULL, &id);
    if (rc)
        fail_msg("store: %s (%s)", msilo_strerror(rc), msilo_error_detail());
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, TRUE));
    return id;
}

static int64_t store(fixture *f, const char *ctype, const char *body)
{
    return store_keyed(f, ctype, body, NULL);
}

static void dump_cb(msilo_engine_t *e, int rc, const msilo_dump_result_t *res, void *data)
{
    (void)e;
    (void)rc;
    (void)res;
    ++*(int *)data;
}

static void dump(fixture *f)
{
    msilo_request_t reg = MSILO_REQUEST_INIT;
    reg.method = "REGISTER";
    reg.to = ALICE;
    reg.from = ALICE;
    reg.contact = "<sip:alice@127.0.0.1:5070>";
    reg.expires = 3600;
    assert_int_equal(msilo_engine_dump(f->ef->e, &reg, NULL, 0, dump_cb, &f->dumps), 0);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, TRUE));
}

static const fake_sent_t *sent(fixture *f, guint i)
{
    assert_true(i < f->ef->tr->sent->len);
    return f->ef->tr->sent->pdata[i];
}

/* The body of a send, NUL-terminated (g_free). */
static char *body_of(const fake_sent_t *s)
{
    gsize n = 0;
    const char *b = g_bytes_get_data(s->body, &n);
    return g_strndup(b, n);
}

/* The XML part of an IMDN's CPIM body, checked with xmllint against the
 * schema; returns it (g_free). */
static char *validated_xml(const fake_sent_t *s)
{
    assert_string_equal(s->content_type, "message/cpim");
    char *body = body_of(s);
    assert_non_null(strstr(body, "Content-Type: message/imdn+xml\r\n"));
    assert_non_null(strstr(body, "Content-Disposition: notification\r\n"));
    const char *xml = strstr(body, "<?xml");
    assert_non_null(xml);
    char *doc = g_strdup(xml);
    g_free(body);

    const char *xsd = g_getenv("MSILO_IMDN_XSD");
    assert_non_null(xsd);
    char *path = NULL;
    int fd = g_file_open_tmp("imdn-XXXXXX.xml", &path, NULL);
    assert_true(fd >= 0);
    assert_true(g_file_set_contents(path, doc, -1, NULL));
    g_close(fd, NULL);
    const char *argv[] = { "xmllint", "--noout", "--schema", xsd, path, NULL };
    int status = -1;
    char *err = NULL;
    gboolean ran = g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH |
                                G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err, &status, NULL);
    g_unlink(path);
    g_free(path);
    assert_true(ran);
    if (!g_spawn_check_wait_status(status, NULL))
        fail_msg("IMDN does not validate against RFC 5438's schema: %s\n%s", err, doc);
    g_free(err);
    return doc;
}

/* ---- tests ---- */

/* processing asked: <stored/> after the commit, to the first
 * IMDN-Record-Route, with both routes as IMDN-Route, the original's
 * Message-ID and DateTime; the stored body is the CPIM as received. */
static void test_stored_notification(void **state)
{
    fixture *f = *state;
    engine_fixture_start(f->ef);
    int64_t id = store(f, "message/cpim", cpim_full);
    assert_int_equal(f->ef->tr->sent->len, 1);
    const fake_sent_t *s = sent(f, 0);
    assert_string_equal(s->ruri, "sip:proxy1.example.org");
    assert_string_equal(s->to, BOB);
    assert_string_equal(s->from, ALICE);
    char *body = body_of(s);
    const char *r1 = strstr(body, "imdn.IMDN-Route: <sip:proxy1.example.org>\r\n");
    const char *r2 = strstr(body, "imdn.IMDN-Route: <sip:proxy2.example.org;lr>\r\n");
    assert_true(r1 && r2 && r1 < r2);
    assert_non_null(strstr(body, "To: <" BOB ">\r\n"));
    assert_non_null(strstr(body, "NS: imdn <urn:ietf:params:imdn>\r\n"));
    assert_null(strstr(body, "34jk324j\r\n")); /* its own Message-ID, not the original's */
    g_free(body);
    char *xml = validated_xml(s);
    assert_non_null(strstr(xml, "<message-id>34jk324j</message-id>"));
    assert_non_null(strstr(xml, "<datetime>2026-12-01T10:00:00Z</datetime>"));
    assert_non_null(strstr(xml, "<recipient-uri>" ALICE "</recipient-uri>"));
    assert_non_null(strstr(xml, "<processing-notification><status><stored/></status>"));
    g_free(xml);
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_IMDN_SENT), 1);
    assert_string_equal(msilo_stat_name(MSILO_STAT_IMDN_SENT), "imdn_sent");

    /* the stored CPIM is the one received, byte for byte */
    msilo_message_t *m = NULL;
    assert_int_equal(msilo_store_get(f->ef->store, id, &m), 0);
    assert_int_equal(m->body_len, strlen(cpim_full));
    assert_memory_equal(m->body, cpim_full, m->body_len);
    msilo_message_free(m);
}

/* negative-delivery asked: a permanent failure sends <failed/> (and not the
 * failure notice, although from_address is set); the delivery itself
 * carried the CPIM body unchanged. */
static void test_failed_notification(void **state)
{
    fixture *f = *state;
    set(f, "from_address", "sip:silo@example.org");
    engine_fixture_start(f->ef);
    store(f, "message/cpim", cpim_full);
    fake_transport_answer(f->ef->tr, 0, 200); /* the <stored/> IMDN */
    dump(f);
    assert_int_equal(f->ef->tr->sent->len, 2);
    char *delivered = body_of(sent(f, 1));
    assert_string_equal(delivered, cpim_full); /* add_date leaves CPIM alone */
    g_free(delivered);
    fake_transport_answer(f->ef->tr, 1, 415);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, TRUE));
    assert_int_equal(f->ef->tr->sent->len, 3);
    const fake_sent_t *s = sent(f, 2);
    assert_string_equal(s->ruri, "sip:proxy1.example.org");
    char *xml = validated_xml(s);
    assert_non_null(strstr(xml, "<delivery-notification><status><failed/></status>"));
    assert_non_null(strstr(xml, "<message-id>34jk324j</message-id>"));
    g_free(xml);
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_IMDN_SENT), 2);
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_PERMANENT_FAILURES), 1);
}

/* Only positive-delivery asked (under another NS prefix): no <stored/>, and
 * a permanent failure gets the failure notice instead. */
static void test_not_asked(void **state)
{
    fixture *f = *state;
    set(f, "from_address", "sip:silo@example.org");
    engine_fixture_start(f->ef);
    store(f, "Message/CPIM", cpim_positive_only);
    assert_int_equal(f->ef->tr->sent->len, 0);
    dump(f);
    fake_transport_answer(f->ef->tr, 0, 488);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, TRUE));
    assert_int_equal(f->ef->tr->sent->len, 2);
    assert_string_equal(sent(f, 1)->content_type, "text/plain");
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_IMDN_SENT), 0);
}

/* imdn = 0, or a CPIM-looking text/plain body: no IMDN. */
static void test_off_and_not_cpim(void **state)
{
    fixture *f = *state;
    set(f, "imdn", "0");
    engine_fixture_start(f->ef);
    store(f, "message/cpim", cpim_full);
    assert_int_equal(f->ef->tr->sent->len, 0);
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_IMDN_SENT), 0);
}

static void test_not_cpim(void **state)
{
    fixture *f = *state;
    engine_fixture_start(f->ef);
    store(f, "text/plain", cpim_full);
    store(f, "message/cpimx", cpim_full);
    assert_int_equal(f->ef->tr->sent->len, 0);
}

/* The same store key twice (a retransmission after a lost 202): one
 * message, one <stored/>; another key: another message and its own. */
static void test_stored_once_per_message(void **state)
{
    fixture *f = *state;
    engine_fixture_start(f->ef);
    int64_t a = store_keyed(f, "message/cpim", cpim_full, "<k1@example.org>");
    int64_t b = store_keyed(f, "message/cpim", cpim_full, "<k1@example.org>");
    assert_true(a > 0);
    assert_int_equal(a, b);
    assert_int_equal(f->ef->tr->sent->len, 1);
    int64_t c = store_keyed(f, "message/cpim", cpim_full, "<k2@example.org>");
    assert_true(c != a);
    assert_int_equal(f->ef->tr->sent->len, 2);
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_IMDN_SENT), 2);
}

/* Moves the fake clock to @p t and runs the expiry (and everything it
 * starts) to the end. */
static void expire_at(fixture *f, int64_t t)
{
    f->ef->clock.now = t;
    assert_int_equal(msilo_engine_tick(f->ef->e), 0);
    assert_true(run_until_idle(f->ef->e, f->ef->ctx, TRUE));
}

static int64_t stored_count(fixture *f)
{
    int64_t n = -1;
    assert_int_equal(msilo_store_count(f->ef->store, NULL, NULL, &n), 0);
    return n;
}

/* negative-delivery asked and never delivered: expiry deletes the message
 * and sends <failed/> (to the first IMDN-Record-Route, schema-valid, with
 * the original's Message-ID); a text/plain message expires silently. */
static void test_failed_on_expiry(void **state)
{
    fixture *f = *state;
    set(f, "expire_time", "600");
    set(f, "check_time", "1");
    set(f, "clean_period", "1"); /* expiry at every tick a second apart */
    engine_fixture_start(f->ef);
    store(f, "message/cpim", cpim_full);
    store(f, "text/plain", "plain");
    assert_int_equal(f->ef->tr->sent->len, 1); /* <stored/> */
    fake_transport_answer(f->ef->tr, 0, 200);
    expire_at(f, T0 + 599); /* not yet */
    assert_int_equal(f->ef->tr->sent->len, 1);
    assert_int_equal(stored_count(f), 2);
    expire_at(f, T0 + 700);
    assert_int_equal(stored_count(f), 0);
    assert_int_equal(f->ef->tr->sent->len, 2);
    const fake_sent_t *s = sent(f, 1);
    assert_string_equal(s->ruri, "sip:proxy1.example.org");
    assert_string_equal(s->to, BOB);
    char *xml = validated_xml(s);
    assert_non_null(strstr(xml, "<delivery-notification><status><failed/></status>"));
    assert_non_null(strstr(xml, "<message-id>34jk324j</message-id>"));
    assert_non_null(strstr(xml, "<datetime>2026-12-01T10:00:00Z</datetime>"));
    g_free(xml);
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_EXPIRED_MESSAGES), 2);
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_IMDN_SENT), 2);
}

/* More expired CPIM messages than one batch takes: every one gets its
 * <failed/> exactly once, in one expiry run (the batches follow each
 * other), and those that did not ask get none. */
static void test_failed_on_expiry_batches(void **state)
{
    fixture *f = *state;
    set(f, "expire_time", "600");
    engine_fixture_start(f->ef);
    enum { N = 150 }; /* > 2 x ENGINE_EXPIRE_TAKE_MAX (64) */
    for (int i = 0; i < N; i++)
        store(f, "message/cpim", cpim_negative_only);
    store(f, "message/cpim", cpim_positive_only);
    assert_int_equal(f->ef->tr->sent->len, 0); /* nobody asked for processing */
    expire_at(f, T0 + 601);
    assert_int_equal(stored_count(f), 0);
    assert_int_equal(f->ef->tr->sent->len, N);
    for (guint i = 0; i < f->ef->tr->sent->len; i++) {
        char *b = body_of(sent(f, i));
        assert_non_null(strstr(b, "<failed/>"));
        g_free(b);
    }
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_EXPIRED_MESSAGES), N + 1);
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_QUEUED), 0);
}

/* A store of revision 3 (no take_expired): expiry deletes as before, and
 * no IMDN goes out. The memory store's methods under an older version. */
static void test_expiry_without_take(void **state)
{
    fixture *f = *state;
    set(f, "expire_time", "600");
    f->ef->store->version = 3;
    engine_fixture_start(f->ef);
    store(f, "message/cpim", cpim_negative_only);
    expire_at(f, T0 + 601);
    assert_int_equal(stored_count(f), 0);
    assert_int_equal(f->ef->tr->sent->len, 0);
    assert_int_equal(msilo_engine_stat(f->ef->e, MSILO_STAT_EXPIRED_MESSAGES), 1);
}

/* imdn = 0: the message expires without an IMDN. */
static void test_expiry_imdn_off(void **state)
{
    fixture *f = *state;
    set(f, "expire_time", "600");
    set(f, "imdn", "0");
    engine_fixture_start(f->ef);
    store(f, "message/cpim", cpim_negative_only);
    expire_at(f, T0 + 601);
    assert_int_equal(stored_count(f), 0);
    assert_int_equal(f->ef->tr->sent->len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stored_notification, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_notification, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_asked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_off_and_not_cpim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_cpim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stored_once_per_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_on_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_on_expiry_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_without_take, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_imdn_off, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
