/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A transport that sends nothing: it records every MESSAGE the engine asks
 * it to send and answers it when its user says so, or at once from the loop
 * (auto_status). The in-process example (msilo-demo.c) and the engine tests
 * (tests/engine, through tests/common/fake.h) both use it.
 *
 * It keeps the transport contract of include/msilo/sys/transport.h: send()
 * either returns an error (refuse) and never answers, or returns 0 and the
 * send is answered exactly once, never from inside send(); free() answers
 * what is still unanswered with MSILO_ECANCELLED.
 *
 * Needs libmsilo and GLib only:
 *   cc msilo-demo.c fake-transport.c $(pkg-config --cflags --libs msilo)
 * Not thread-safe: use it on the thread of its main context.
 */
#ifndef MSILO_FAKE_TRANSPORT_H
#define MSILO_FAKE_TRANSPORT_H

#include <glib.h>
#include <msilo/msilo.h>

/* One recorded send: copies of what send() was given. */
typedef struct fake_sent {
    char *ruri, *next_hop, *from, *to, *content_type, *headers, *call_id;
    GBytes *body;
    msilo_transport_done_fn done;
    void *data;
    gboolean answered;
} fake_sent_t;

typedef struct fake_transport {
    msilo_transport_t base; /* first: &t->base is what the engine is given */
    GMainContext *ctx;
    GPtrArray *sent;   /* fake_sent_t*, in send order */
    int auto_status;   /* != 0: answer every send with this from an idle source */
    int refuse;        /* != 0: send() returns this error */
    guint answered;
} fake_transport_t;

/* A transport answering from @ctx (NULL: the global default context); free
 * it with msilo_transport_free(&t->base). */
fake_transport_t *fake_transport_new(GMainContext *ctx);
/* Answers send number @i (0-based) with @status: calls done now, holding
 * t->ctx (acquired if no other thread runs it), so that the engine completes
 * the send inside this call, as from one of the context's sources. */
void fake_transport_answer(fake_transport_t *t, guint i, int status);
/* Answers every unanswered send with @status. Returns how many. */
guint fake_transport_answer_all(fake_transport_t *t, int status);

#endif
