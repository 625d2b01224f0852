/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msilo_store_init() and msilo_transport_init(): the same value as the
 * _INIT macros, and for an older version not a byte past that version's
 * members (a backend built against an older header embeds a shorter base and
 * keeps its own fields right after it). */
#include <msilo/msilo.h>

#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);           \
            failures++;                                                                        \
        }                                                                                      \
    } while (0)

#define GUARD 0xA5

/* A base followed by room for a backend's own fields, all set to GUARD. */
typedef union {
    msilo_store_t s;
    unsigned char bytes[sizeof(msilo_store_t) + 32];
} store_buf;

typedef union {
    msilo_transport_t t;
    unsigned char bytes[sizeof(msilo_transport_t) + 32];
} transport_buf;

static int untouched_from(const unsigned char *b, size_t from, size_t size)
{
    for (size_t i = from; i < size; i++)
        if (b[i] != GUARD)
            return 0;
    return 1;
}

static void test_store(void)
{
    store_buf b;
    memset(&b, GUARD, sizeof b);
    CHECK(msilo_store_init(&b.s, MSILO_STORE_VERSION) == 0);
    msilo_store_t macro = MSILO_STORE_INIT;
    CHECK(b.s.version == macro.version && b.s.version == MSILO_STORE_VERSION);
    CHECK(b.s.flags == 0 && b.s.name == NULL);
    CHECK(!b.s.put && !b.s.claim && !b.s.remove && !b.s.release && !b.s.count && !b.s.expire &&
          !b.s.free && !b.s.list && !b.s.get && !b.s.purge && !b.s.reset_leases && !b.s.open_peer);
    CHECK(untouched_from(b.bytes, sizeof(msilo_store_t), sizeof b.bytes));

    /* version 1 ends at reset_leases: open_peer is already the backend's */
    memset(&b, GUARD, sizeof b);
    CHECK(msilo_store_init(&b.s, 1) == 0);
    CHECK(b.s.version == 1 && b.s.name == NULL && !b.s.put && !b.s.reset_leases);
    CHECK(untouched_from(b.bytes, offsetof(msilo_store_t, open_peer), sizeof b.bytes));

    /* unknown versions: an error, and nothing written */
    memset(&b, GUARD, sizeof b);
    CHECK(msilo_store_init(&b.s, 0) == MSILO_EVERSION);
    CHECK(msilo_store_init(&b.s, MSILO_STORE_VERSION + 1) == MSILO_EVERSION);
    CHECK(msilo_error_detail() && strstr(msilo_error_detail(), "version"));
    CHECK(untouched_from(b.bytes, 0, sizeof b.bytes));
    CHECK(msilo_store_init(NULL, MSILO_STORE_VERSION) == MSILO_EINVAL);
}

static void test_transport(void)
{
    transport_buf b;
    memset(&b, GUARD, sizeof b);
    CHECK(msilo_transport_init(&b.t, MSILO_TRANSPORT_VERSION) == 0);
    msilo_transport_t macro = MSILO_TRANSPORT_INIT;
    CHECK(b.t.version == macro.version && b.t.version == MSILO_TRANSPORT_VERSION);
    CHECK(b.t.name == NULL && !b.t.send && !b.t.free);
    CHECK(untouched_from(b.bytes, sizeof(msilo_transport_t), sizeof b.bytes));
    /* an initialised transport still needs its name and methods */
    CHECK(msilo_transport_check(&b.t) == MSILO_EINVAL);

    memset(&b, GUARD, sizeof b);
    CHECK(msilo_transport_init(&b.t, 0) == MSILO_EVERSION);
    CHECK(msilo_transport_init(&b.t, MSILO_TRANSPORT_VERSION + 1) == MSILO_EVERSION);
    CHECK(untouched_from(b.bytes, 0, sizeof b.bytes));
    CHECK(msilo_transport_init(NULL, MSILO_TRANSPORT_VERSION) == MSILO_EINVAL);
}

int main(void)
{
    test_store();
    test_transport();
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    else
        printf("init functions: ok\n");
    return failures != 0;
}
