/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test doubles of the engine tests: a fake clock, the recording transport
 * of the test kit (<msilo/testing/fake-transport.h>, libmsilo-testing) under
 * the short names these tests use, the usual engine fixture, and helpers
 * that run the loop until idle. */
#ifndef MSILO_TESTS_FAKE_H
#define MSILO_TESTS_FAKE_H

#include <glib.h>
#include <msilo/msilo.h>
#include <msilo/testing/fake-transport.h>

typedef msilo_testing_fake_transport_t fake_transport_t;
typedef msilo_testing_sent_t fake_sent_t;

/* The kit's transport on @ctx (NULL: the global default context). */
static inline fake_transport_t *fake_transport_new(GMainContext *ctx)
{
    fake_transport_t *t = NULL;
    g_assert_cmpint(msilo_testing_fake_transport_new(&t, ctx), ==, 0);
    return t;
}

/* Answers send @i, which must exist and be unanswered (else: abort). */
static inline void fake_transport_answer(fake_transport_t *t, guint i, int status)
{
    g_assert_cmpint(msilo_testing_fake_transport_answer(t, i, status), ==, 0);
}

static inline guint fake_transport_answer_all(fake_transport_t *t, int status)
{
    return msilo_testing_fake_transport_answer_all(t, status);
}

/* Header value from a recorded send ("Date"), g_malloc'd, NULL if absent. */
static inline char *fake_sent_header(const fake_sent_t *s, const char *name)
{
    return msilo_testing_sent_header(s, name);
}

typedef struct fake_clock {
    int64_t now;
} fake_clock_t;

int64_t fake_clock_read(void *data);

/* The engine tests' usual fixture: a context of its own, a fake clock at
 * @now, a configuration to set keys on before engine_fixture_start(), the
 * memory store and the recording transport on that context. */
typedef struct engine_fixture {
    GMainContext *ctx;
    fake_clock_t clock;
    msilo_config_t *cfg;
    msilo_store_t *store;
    fake_transport_t *tr;
    msilo_engine_t *e; /* NULL until engine_fixture_start() */
} engine_fixture_t;

engine_fixture_t *engine_fixture_new(int64_t now);
/* Creates f->e from f->cfg on the fake clock (aborts the test on an error). */
void engine_fixture_start(engine_fixture_t *f);
/* Frees the engine, transport, store, configuration, drains and frees the
 * context. */
void engine_fixture_free(engine_fixture_t *f);

/* Iterates @ctx until the engine is idle (no jobs, nothing in flight unless
 * @allow_in_flight) or @max_iterations pass. TRUE when idle. */
gboolean run_until_idle(msilo_engine_t *e, GMainContext *ctx, gboolean allow_in_flight);

#endif
