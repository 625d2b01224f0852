/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/testing/fake-transport.h
 * @brief A recording transport of the msilo-testing kit, for testing code
 *        that drives an engine.
 *
 * It sends nothing: it records every MESSAGE the engine asks it to send and
 * answers it when the test says so (msilo_testing_fake_transport_answer()),
 * or at once from its context (`auto_status`). It keeps the transport
 * contract of include/msilo/sys/transport.h: send() either returns an error
 * (`refuse`) and never answers, or returns 0 and the send is answered exactly
 * once, never from inside send(); free() answers what is still unanswered
 * with MSILO_ECANCELLED.
 *
 * @code
 * msilo_testing_fake_transport_t *t;
 * msilo_testing_fake_transport_new(&t, NULL);
 * msilo_engine_new(&engine, cfg, store, &t->base, NULL);
 * ... the engine sends ...
 * const msilo_testing_sent_t *s = t->sent->pdata[0];
 * msilo_testing_fake_transport_answer(t, 0, 200);
 * @endcode
 *
 * The struct is the kit's own allocation and is read by the test: its
 * members are documented below, later versions only append members, and
 * tests never allocate or copy one.
 *
 * Thread-safety: not thread-safe; use it on the thread of its context.
 */
#ifndef MSILO_TESTING_FAKE_TRANSPORT_H
#define MSILO_TESTING_FAKE_TRANSPORT_H

#include <glib.h>
#include <msilo/msilo.h>

MSILO_BEGIN_DECLS

/** One recorded send: copies of what send() was given, owned by the transport. */
typedef struct msilo_testing_sent {
    char *ruri;         /**< Request-URI */
    char *next_hop;     /**< outbound proxy, NULL when none */
    char *from;         /**< From */
    char *to;           /**< To */
    char *content_type; /**< Content-Type, NULL when none */
    char *headers;      /**< extra header lines ("Name: value\r\n"...), NULL when none */
    char *call_id;      /**< Call-ID asked for, NULL when the transport would make one */
    GBytes *body;       /**< the body bytes (possibly empty, never NULL) */
    msilo_transport_done_fn done; /**< the engine's completion callback */
    void *data;                   /**< its argument */
    gboolean answered;            /**< done() was called (answer, auto_status or free()) */
} msilo_testing_sent_t;

/** The recording transport. Read `sent` and `answered`; set `auto_status`
 *  and `refuse` between sends; the rest is the transport's. */
typedef struct msilo_testing_fake_transport {
    msilo_transport_t base; /**< first: &t->base is what the engine is given */
    GMainContext *ctx;      /**< where auto answers run (a reference) */
    GPtrArray *sent;        /**< msilo_testing_sent_t *, in send order */
    int auto_status;        /**< != 0: answer every send with this, from an idle source on ctx */
    int refuse;             /**< != 0: send() returns this error (a negative MSILO_E* code) */
    guint answered;         /**< how many sends were answered (by answer() or auto_status; free()
                                 cancelling does not count) */
} msilo_testing_fake_transport_t;

/**
 * Creates a recording transport whose answers run on @p ctx (NULL: the
 * global default context) and writes it to @p ret. Free it with
 * msilo_transport_free(&t->base) (which also frees the records).
 *
 * @return 0, or MSILO_EINVAL when @p ret is NULL.
 */
MSILO_API int msilo_testing_fake_transport_new(msilo_testing_fake_transport_t **ret,
                                               GMainContext *ctx);

/**
 * Answers send number @p index (0-based, in send order) with @p status (a
 * SIP status or a negative MSILO_E* code): calls its done() now, holding
 * t->ctx (acquired unless another thread runs it), so that the engine
 * completes the send inside this call, as from one of the context's sources.
 *
 * @return 0; MSILO_EINVAL when @p t is NULL, @p index is out of range or that
 *         send was answered already (done() is then not called).
 */
MSILO_API int msilo_testing_fake_transport_answer(msilo_testing_fake_transport_t *t,
                                                  guint index, int status);

/**
 * Answers every send that is unanswered now with @p status; sends that the
 * answers cause are left for later.
 *
 * @return how many sends were answered (0 when @p t is NULL).
 */
MSILO_API guint msilo_testing_fake_transport_answer_all(msilo_testing_fake_transport_t *t,
                                                        int status);

/**
 * The value of the header @p name (case-insensitive) among a recorded send's
 * extra header lines, trimmed.
 *
 * @return a string to g_free(), or NULL when absent (or an argument is NULL).
 */
MSILO_API char *msilo_testing_sent_header(const msilo_testing_sent_t *sent, const char *name);

MSILO_END_DECLS

#endif
