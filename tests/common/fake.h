/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test doubles shared by the engine tests, the example and the benchmark:
 * a fake clock and a transport that records what it is asked to send and
 * answers when the test says so (or automatically). */
#ifndef MSILO_TESTS_FAKE_H
#define MSILO_TESTS_FAKE_H

#include <glib.h>
#include <msilo/msilo.h>

typedef struct fake_clock {
    int64_t now;
} fake_clock_t;

int64_t fake_clock_read(void *data);

/* One recorded send. */
typedef struct fake_sent {
    char *ruri, *next_hop, *from, *to, *content_type, *headers, *call_id;
    GBytes *body;
    msilo_transport_done_fn done;
    void *data;
    gboolean answered;
} fake_sent_t;

typedef struct fake_transport {
    msilo_transport_t base;
    GMainContext *ctx;
    GPtrArray *sent;   /* fake_sent_t*, in send order */
    int auto_status;   /* != 0: answer every send with this from an idle source */
    int refuse;        /* != 0: send() returns this error */
    guint answered;
} fake_transport_t;

fake_transport_t *fake_transport_new(GMainContext *ctx);
/* Answers send number @i (0-based) with @status (calls done now). */
void fake_transport_answer(fake_transport_t *t, guint i, int status);
/* Answers every unanswered send with @status. Returns how many. */
guint fake_transport_answer_all(fake_transport_t *t, int status);
/* Header value from a recorded send ("Date"), g_malloc'd, NULL if absent. */
char *fake_sent_header(const fake_sent_t *s, const char *name);

/* Iterates @ctx until the engine is idle (no jobs, nothing in flight unless
 * @allow_in_flight) or @max_iterations pass. TRUE when idle. */
gboolean run_until_idle(msilo_engine_t *e, GMainContext *ctx, gboolean allow_in_flight);

#endif
