/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-wire.c: the packets of examples/kamailio/kmsilo-wire.c round-trip
 * (every field of a request view, NULLs and a body with NUL bytes), and
 * truncated or corrupt packets are refused instead of read past their end.
 */
#include "kmsilo-wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <glib.h>
#include <string.h>

static void round_trip(void **state)
{
    (void)state;
    static const char body[] = { 'a', '\0', 'b' };
    msilo_header_t h[2] = { { "P-Asserted-Identity", "<sip:a@x>" }, { "X-A", "1" } };
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.method = "MESSAGE";
    r.ruri = "sip:bob@example.org";
    r.to = "<sip:bob@example.org>";
    r.from = "\"A\" <sip:alice@example.org>;tag=1";
    r.content_type = "text/plain;charset=utf-8";
    r.body = body;
    r.body_len = sizeof body;
    r.call_id = "c1";
    r.expires = 3600;
    r.headers = h;
    r.n_headers = 2;
    r.snd_time = "20260101120000";
    r.flags = MSILO_REQUEST_SKIP_NOTIFICATION;
    char *buf;
    size_t len = kmsilo_wire_encode_request(KMSILO_OP_STORE, 7, &r, "sip:o@example.org", 0, &buf);
    kmsilo_wire_t w;
    assert_int_equal(kmsilo_wire_decode(buf, len, &w), 0);
    assert_int_equal(w.op, KMSILO_OP_STORE);
    assert_int_equal(w.seq, 7);
    assert_string_equal(w.owner, "sip:o@example.org");
    assert_string_equal(w.req.method, "MESSAGE");
    assert_string_equal(w.req.ruri, r.ruri);
    assert_null(w.req.orig_ruri);
    assert_null(w.req.contact);
    assert_null(w.req.allow);
    assert_string_equal(w.req.from, r.from);
    assert_string_equal(w.req.content_type, r.content_type);
    assert_int_equal(w.req.body_len, sizeof body);
    assert_memory_equal(w.req.body, body, sizeof body);
    assert_int_equal(w.req.expires, 3600);
    assert_int_equal(w.req.flags, MSILO_REQUEST_SKIP_NOTIFICATION);
    assert_string_equal(w.req.snd_time, r.snd_time);
    assert_int_equal(w.req.n_headers, 2);
    assert_string_equal(w.req.headers[1].name, "X-A");
    assert_string_equal(w.req.headers[0].value, "<sip:a@x>");
    kmsilo_wire_clear(&w);
    /* every shorter prefix is refused */
    for (size_t n = 0; n < len; n++)
        assert_int_equal(kmsilo_wire_decode(buf, n, &w), -1);
    g_free(buf);
}

static void small_packets(void **state)
{
    (void)state;
    char buf[KMSILO_WIRE_SMALL];
    size_t len = kmsilo_wire_encode_small(KMSILO_OP_DONE, 0, 12345678901LL, -110, buf);
    kmsilo_wire_t w;
    assert_int_equal(kmsilo_wire_decode(buf, len, &w), 0);
    assert_int_equal(w.op, KMSILO_OP_DONE);
    assert_int_equal(w.num, 12345678901LL);
    assert_int_equal(w.status, -110);
    buf[0] = 99; /* unknown op */
    assert_int_equal(kmsilo_wire_decode(buf, len, &w), -1);
}

static void corrupt_string(void **state)
{
    (void)state;
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.ruri = "sip:bob@example.org";
    char *buf;
    size_t len = kmsilo_wire_encode_request(KMSILO_OP_DUMP, 0, &r, NULL, 5, &buf);
    kmsilo_wire_t w;
    assert_int_equal(kmsilo_wire_decode(buf, len, &w), 0);
    assert_int_equal(w.num, 5);
    assert_null(w.owner);
    /* the ruri's NUL terminator replaced: the length no longer matches */
    char *nul = memchr(buf + 20 + 4 + 4 + strlen("sip:bob@example.org") - 1 + 4, '\0', len);
    assert_non_null(nul);
    *nul = 'x';
    assert_int_equal(kmsilo_wire_decode(buf, len, &w), -1);
    g_free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(small_packets),
        cmocka_unit_test(corrupt_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
