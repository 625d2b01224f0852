/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test doubles of the engine tests: a fake clock, the recording transport
 * (examples/inprocess/fake-transport.h, shared with the in-process example)
 * and helpers that read what it recorded and run the loop until idle. */
#ifndef MSILO_TESTS_FAKE_H
#define MSILO_TESTS_FAKE_H

#include <glib.h>
#include <msilo/msilo.h>

#include "fake-transport.h"

typedef struct fake_clock {
    int64_t now;
} fake_clock_t;

int64_t fake_clock_read(void *data);

/* Header value from a recorded send ("Date"), g_malloc'd, NULL if absent. */
char *fake_sent_header(const fake_sent_t *s, const char *name);

/* Iterates @ctx until the engine is idle (no jobs, nothing in flight unless
 * @allow_in_flight) or @max_iterations pass. TRUE when idle. */
gboolean run_until_idle(msilo_engine_t *e, GMainContext *ctx, gboolean allow_in_flight);

#endif
