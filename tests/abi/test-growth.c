/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ABI can grow: every array of public structs that crosses the API is
 * read with the caller's element size, every caller's struct only as far as
 * its revision goes, and a message's fields are the caller's to g_free().
 * Callers "from another revision" are simulated with structs that are
 * longer (a newer header) or allocations that end where an older revision
 * ends (ASan sees any byte read past them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "fake.h"

#define NOW 1700000000

/* ---- messages --------------------------------------------------------- */

static msilo_message_t *sample(const char *user)
{
    msilo_message_t *m = msilo_message_new();
    m->user = g_strdup(user);
    m->domain = g_strdup("example.org");
    m->src = g_strdup("sip:bob@example.org");
    m->dst = g_strdup("sip:alice@example.org");
    m->body = g_strdup("hello");
    m->body_len = 5;
    m->callid = g_strdup("c1");
    m->inc_time = NOW;
    m->exp_time = NOW + 3600;
    return m;
}

static void put_one(msilo_store_t *s, const char *user)
{
    msilo_message_t *m = sample(user);
    int res = -1;
    assert_int_equal(msilo_store_put(s, &m, 1, 0, &res), 0);
    assert_int_equal(res, 0);
    msilo_message_free(m);
}

/* What a claim gives any caller is an ordinary message: its fields may be
 * freed and replaced one by one (ASan: no bad free, no leak). */
static void test_claimed_fields_are_callers(void **state)
{
    (void)state;
    msilo_store_t *s = NULL;
    assert_int_equal(msilo_memory_store_new(&s), 0);
    put_one(s, "alice");
    msilo_store_claim_t c = { .user = "alice", .domain = "example.org", .now = NOW,
                              .max_next_try = INT64_MAX, .lease_owner = "me",
                              .lease_until = NOW + 60, .max = 10 };
    msilo_message_t **msgs = NULL;
    size_t n = 0;
    assert_int_equal(msilo_store_claim(s, &c, &msgs, &n), 0);
    assert_int_equal(n, 1);
    msilo_message_t *m = msgs[0];
    assert_string_equal(m->user, "alice");
    g_free(m->user);
    m->user = g_strdup("carol");
    g_free(m->body);
    m->body = NULL;
    m->body_len = 0;
    g_free(m->callid);
    m->callid = NULL;
    msilo_message_t *copy = msilo_message_copy(m);
    assert_string_equal(copy->user, "carol");
    assert_string_equal(copy->dst, "sip:alice@example.org");
    msilo_message_free(copy);
    msilo_message_array_free(msgs, n);
    msilo_store_free(s);
}

/* ---- release items ---------------------------------------------------- */

/* An item as a newer header might have it: the same members, then more. */
typedef struct {
    msilo_store_release_t r;
    int64_t future;
} newer_release_t;

/* A store that records the item size it was given, then forwards. */
typedef struct {
    msilo_store_t base;
    msilo_store_t *inner;
    size_t got_item_size;
} size_store_t;

static int ss_release(msilo_store_t *s, const msilo_store_release_t *items, size_t n,
                      size_t item_size)
{
    size_store_t *ss = (size_store_t *)s;
    ss->got_item_size = item_size;
    return ss->inner->release(ss->inner, items, n, item_size);
}

static void test_release_item_size(void **state)
{
    (void)state;
    size_store_t ss = { 0 };
    assert_int_equal(msilo_memory_store_new(&ss.inner), 0);
    ss.base = *ss.inner; /* the memory store's methods, but release */
    ss.base.release = ss_release;
    ss.base.free = NULL;
    for (int i = 0; i < 3; i++)
        put_one(ss.inner, "alice");
    msilo_store_claim_t c = { .user = "alice", .domain = "example.org", .now = NOW,
                              .max_next_try = INT64_MAX, .lease_owner = "me",
                              .lease_until = NOW + 60, .max = 10 };
    msilo_message_t **msgs = NULL;
    size_t n = 0;
    assert_int_equal(msilo_store_claim(ss.inner, &c, &msgs, &n), 0);
    assert_int_equal(n, 3);

    newer_release_t items[3];
    for (size_t i = 0; i < 3; i++)
        items[i] = (newer_release_t){ .r = { .id = msgs[i]->id, .attempts = (uint32_t)(i + 7),
                                             .next_try = NOW + 100 },
                                      .future = -1 };
    /* too small for even the first revision: refused, nothing released */
    assert_int_equal(msilo_store_release(&ss.base, &items[0].r, 3, sizeof(int64_t)), MSILO_EINVAL);
    assert_int_equal(msilo_store_release(&ss.base, &items[0].r, 3, sizeof items[0]), 0);
    /* the backend gets the library's own stride, whatever the caller's */
    assert_int_equal(ss.got_item_size, sizeof(msilo_store_release_t));
    for (size_t i = 0; i < 3; i++) {
        msilo_message_t *m = NULL;
        assert_int_equal(msilo_store_get(ss.inner, msgs[i]->id, &m), 0);
        assert_int_equal(m->attempts, i + 7);
        assert_int_equal(m->next_try, NOW + 100);
        msilo_message_free(m);
    }
    /* the macro steps by the size it is given */
    assert_ptr_equal(MSILO_STORE_RELEASE_ITEM(&items[0].r, sizeof items[0], 2), &items[2].r);
    msilo_message_array_free(msgs, n);
    msilo_store_free(ss.inner);
}

/* ---- request views ---------------------------------------------------- */

#define MEMBER_END(type, m) (offsetof(type, m) + sizeof(((type *)0)->m))
#define REQUEST_V1_SIZE MEMBER_END(msilo_request_t, flags)

/* A header as a newer header might have it. */
typedef struct {
    msilo_header_t h;
    const char *future;
} newer_header_t;

static void test_request_init_versions(void **state)
{
    (void)state;
    union {
        msilo_request_t r;
        unsigned char b[sizeof(msilo_request_t) + 16];
    } u;
    memset(&u, 0xA5, sizeof u);
    assert_int_equal(msilo_request_init(&u.r, MSILO_REQUEST_VERSION), 0);
    msilo_request_t macro = MSILO_REQUEST_INIT;
    assert_int_equal(memcmp(&u.r, &macro, sizeof macro), 0);
    assert_int_equal(u.r.header_size, sizeof(msilo_header_t));
    assert_int_equal(u.b[sizeof(msilo_request_t)], 0xA5);

    /* revision 1 ends at flags: header_size is someone else's memory */
    memset(&u, 0xA5, sizeof u);
    assert_int_equal(msilo_request_init(&u.r, 1), 0);
    assert_int_equal(u.r.version, 1);
    assert_int_equal(u.r.expires, -1);
    for (size_t i = REQUEST_V1_SIZE; i < sizeof u.b; i++)
        assert_int_equal(u.b[i], 0xA5);

    assert_int_equal(msilo_request_init(&u.r, 0), MSILO_EVERSION);
    assert_int_equal(msilo_request_init(&u.r, MSILO_REQUEST_VERSION + 1), MSILO_EVERSION);
    assert_int_equal(msilo_request_init(NULL, MSILO_REQUEST_VERSION), MSILO_EINVAL);
}

static void test_request_copy_revisions(void **state)
{
    (void)state;
    /* a revision-1 view in an allocation that ends with its last member */
    msilo_request_t full;
    assert_int_equal(msilo_request_init(&full, 1), 0);
    msilo_header_t h1[2] = { { "X-One", "1" }, { "X-Two", "2" } };
    full.ruri = "sip:alice@example.org";
    full.headers = h1;
    full.n_headers = 2;
    msilo_request_t *v1 = g_memdup2(&full, REQUEST_V1_SIZE);
    msilo_request_t *c = NULL;
    assert_int_equal(msilo_request_copy(v1, &c), 0);
    assert_int_equal(c->version, MSILO_REQUEST_VERSION);
    assert_int_equal(c->header_size, sizeof(msilo_header_t));
    assert_string_equal(c->ruri, "sip:alice@example.org");
    assert_string_equal(c->headers[1].name, "X-Two");
    assert_int_equal(c->expires, -1);
    msilo_request_free(c);
    g_free(v1);

    /* a view whose headers are longer than this library's */
    newer_header_t hn[2] = { { { "X-A", "a" }, "?" }, { { "X-B", "b" }, "?" } };
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.headers = &hn[0].h;
    r.n_headers = 2;
    r.header_size = sizeof hn[0];
    assert_int_equal(msilo_request_copy(&r, &c), 0);
    assert_string_equal(c->headers[0].name, "X-A");
    assert_string_equal(c->headers[1].name, "X-B");
    assert_string_equal(c->headers[1].value, "b");
    msilo_request_free(c);

    r.header_size = 1;
    assert_int_equal(msilo_request_copy(&r, &c), MSILO_EINVAL);
}

typedef struct {
    GMainContext *ctx;
    msilo_store_t *store;
    fake_transport_t *t;
    msilo_engine_t *e;
    fake_clock_t clock;
} eng_t;

static int eng_setup(void **state)
{
    eng_t *f = g_new0(eng_t, 1);
    f->ctx = g_main_context_new();
    f->clock.now = NOW;
    assert_int_equal(msilo_memory_store_new(&f->store), 0);
    f->t = fake_transport_new(f->ctx);
    f->t->auto_status = 200;
    assert_int_equal(msilo_engine_new(&f->e, NULL, f->store, &f->t->base, f->ctx), 0);
    assert_int_equal(msilo_engine_set_clock(f->e, fake_clock_read, &f->clock), 0);
    *state = f;
    return 0;
}

static int eng_teardown(void **state)
{
    eng_t *f = *state;
    msilo_engine_free(f->e);
    msilo_transport_free(&f->t->base);
    msilo_store_free(f->store);
    g_main_context_unref(f->ctx);
    g_free(f);
    return 0;
}

static msilo_request_t message_view(void)
{
    msilo_request_t r = MSILO_REQUEST_INIT;
    r.ruri = "sip:alice@example.org";
    r.to = "sip:alice@example.org";
    r.from = "sip:bob@example.org";
    r.body = "hi";
    r.body_len = 2;
    return r;
}

/* The engine steps through a view's headers by its header_size. */
static void test_engine_header_stride(void **state)
{
    eng_t *f = *state;
    newer_header_t hn[2] = { { { "X-A", "a" }, "?" }, { { "X-B", "b" }, "?" } };
    msilo_request_t r = message_view();
    r.headers = &hn[0].h;
    r.n_headers = 2;
    r.header_size = sizeof hn[0];
    int64_t id = 0;
    assert_int_equal(msilo_engine_store_sync(f->e, &r, NULL, &id), 0);
    msilo_message_t *m = NULL;
    assert_int_equal(msilo_store_get(f->store, id, &m), 0);
    assert_non_null(m->extra_hdrs);
    assert_non_null(strstr(m->extra_hdrs, "X-A: a\r\n"));
    assert_non_null(strstr(m->extra_hdrs, "X-B: b\r\n"));
    msilo_message_free(m);

    r.header_size = 3;
    assert_int_equal(msilo_engine_store_sync(f->e, &r, NULL, &id), MSILO_EINVAL);
}

/* dump_sync writes no more than the caller's size, and zeroes what this
 * library does not know of a longer one. */
static void test_dump_result_size(void **state)
{
    eng_t *f = *state;
    msilo_request_t r = message_view();
    assert_int_equal(msilo_engine_store_sync(f->e, &r, NULL, NULL), 0);
    msilo_request_t reg = MSILO_REQUEST_INIT;
    reg.method = "REGISTER";
    reg.to = "sip:alice@example.org";
    reg.contact = "sip:alice@192.0.2.1";
    reg.expires = 3600;

    struct {
        msilo_dump_result_t res;
        size_t future;
    } longer;
    memset(&longer, 0xA5, sizeof longer);
    assert_int_equal(msilo_engine_dump_sync(f->e, &reg, NULL, 0, &longer.res, sizeof longer), 0);
    assert_int_equal(longer.res.claimed, 1);
    assert_int_equal(longer.res.delivered, 1);
    assert_int_equal(longer.res.failed, 0);
    assert_int_equal(longer.future, 0);

    msilo_dump_result_t res;
    assert_int_equal(msilo_engine_dump_sync(f->e, &reg, NULL, 0, &res, sizeof(size_t)),
                     MSILO_EINVAL);
    assert_int_equal(msilo_engine_dump_sync(f->e, &reg, NULL, 0, &res, sizeof res), 0);
    assert_int_equal(res.claimed, 0);
}

/* ---- configuration keys ----------------------------------------------- */

static void test_config_keys_by_pointer(void **state)
{
    (void)state;
    size_t n = 0;
    for (const msilo_config_key_t *k; (k = msilo_config_key_at(n)); n++) {
        assert_non_null(k->name);
        assert_ptr_equal(msilo_config_key_find(k->name), k);
    }
    assert_true(n >= 26);
    assert_null(msilo_config_key_at(n));
    assert_null(msilo_config_key_at(SIZE_MAX));
    assert_string_equal(msilo_config_key_find("db_table")->default_str, "silo");
    assert_null(msilo_config_key_find("no_such_key"));
    assert_null(msilo_config_key_find(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claimed_fields_are_callers),
        cmocka_unit_test(test_release_item_size),
        cmocka_unit_test(test_request_init_versions),
        cmocka_unit_test(test_request_copy_revisions),
        cmocka_unit_test_setup_teardown(test_engine_header_stride, eng_setup, eng_teardown),
        cmocka_unit_test_setup_teardown(test_dump_result_size, eng_setup, eng_teardown),
        cmocka_unit_test(test_config_keys_by_pointer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
