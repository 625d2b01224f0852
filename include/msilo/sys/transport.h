/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/sys/transport.h
 * @brief The SIP transport vtable, for transport implementers.
 *
 * A transport sends one MESSAGE request and reports its final outcome once.
 * Like a store, a transport is a struct whose first member is an
 * msilo_transport_t filled with MSILO_TRANSPORT_INIT.
 *
 * Contract (checked by the transport conformance suite, see below):
 * - send() runs on the engine's main-context thread and must not block.
 * - send() returns 0 and then calls @p done exactly once, later (never from
 *   inside send()), with the final status; or it returns a negative MSILO_E*
 *   code and never calls @p done. A transaction that cannot be started is
 *   therefore either an error return or a done() call - never silence.
 * - done() may be called from any thread. From a thread that owns the
 *   engine's GMainContext (g_main_context_is_owner(): one of the context's
 *   sources, e.g. a SIP stack run as a GSource there) the engine completes
 *   the send inside done(), and may call send() again from it. From any
 *   other thread (a SIP stack's own thread) done() only hands the outcome
 *   to the context, without locks or waiting, and returns; the engine
 *   completes it there at its next iteration. Either way the engine's state
 *   and callbacks stay on the context's thread. done() may also run while
 *   send() has not returned yet on the engine's thread (the transaction was
 *   handed to another thread that answered at once): the engine expects it.
 *   done() may even come after msilo_engine_free(): it then only frees what
 *   the send held. A transport that hands sends to another thread does so
 *   through something that synchronises (a mutex, a queue): what the engine
 *   wrote before send() must be visible to the thread that calls done().
 * - status passed to done(): a SIP final status 200..699 from the peer, or a
 *   negative code for a local outcome: MSILO_ETIMEDOUT (no final response),
 *   MSILO_ETRANSPORT (ICMP unreachable, refused/broken connection).
 *   Internally generated SIP statuses (e.g. Sofia's own 408/503) are mapped
 *   to those negative codes.
 * - free() calls done(MSILO_ECANCELLED) for every send still in flight, so
 *   nothing stays in flight forever.
 * - Version: the struct only grows by appending. `version` is a revision,
 *   not a count: the MSILO_TRANSPORT_VERSION of the header the transport was
 *   compiled with, which tells the library which members its base has.
 *   msilo_outgoing_t grows by appending too, and is always the library's own.
 *
 * Every transport must pass the transport conformance suite: it is installed
 * as the test kit libmsilo-testing (header msilo/testing/transport.h,
 * pkg-config `msilo-testing`), which brings its own SIP peer (Sofia-SIP, on
 * 127.0.0.1), and this project's Sofia-SIP transport runs it the same way:
 *
 * @code
 * msilo_testing_transport_suite_t suite = MSILO_TESTING_TRANSPORT_SUITE_INIT;
 * suite.open = my_open; // (void *data, const msilo_testing_transport_env_t *, msilo_transport_t **)
 * return msilo_testing_exit_status(msilo_testing_transport_run(&suite));
 * @endcode
 */
#ifndef MSILO_SYS_TRANSPORT_H
#define MSILO_SYS_TRANSPORT_H

#include <msilo/common.h>

MSILO_BEGIN_DECLS

#define MSILO_TRANSPORT_VERSION 1

/** One MESSAGE to send. All pointers are borrowed for the duration of send(). */
typedef struct msilo_outgoing {
    const char *ruri;         /**< Request-URI */
    const char *next_hop;     /**< outbound proxy URI, NULL = route by ruri */
    const char *from;         /**< From URI (the transport adds a fresh tag) */
    const char *to;           /**< To URI */
    const char *content_type; /**< Content-Type value; NULL = no body type */
    const void *body;         /**< body bytes; may contain NUL */
    size_t body_len;
    const char *headers;      /**< extra header lines "Name: value\r\n"...; may be NULL.
                                   Includes the Date header on deliveries. */
    const char *call_id;      /**< Call-ID to use; NULL = transport makes one */
} msilo_outgoing_t;

/** Final outcome of a send: SIP status 200..699 or a negative MSILO_E* code. */
typedef void (*msilo_transport_done_fn)(int status, void *data);

typedef struct msilo_transport msilo_transport_t;

struct msilo_transport {
    unsigned version;  /**< revision of this header the transport was compiled with
                            (MSILO_TRANSPORT_VERSION): says which members exist */
    const char *name;  /**< "sofia", "fake", ... (static) */

    /* ---- required (version 1) ---- */
    int (*send)(msilo_transport_t *t, const msilo_outgoing_t *msg,
                msilo_transport_done_fn done, void *data);
    void (*free)(msilo_transport_t *t);
};

#define MSILO_TRANSPORT_INIT { .version = MSILO_TRANSPORT_VERSION }

/**
 * Sets @p t to MSILO_TRANSPORT_INIT, for callers that cannot use the macro
 * (C++ before C++20): `msilo_transport_init(&my->base, MSILO_TRANSPORT_VERSION);`.
 *
 * @p version says which msilo_transport_t the caller was compiled with: pass
 * MSILO_TRANSPORT_VERSION, not a number. Only the members of that version are
 * written, as with msilo_store_init().
 *
 * @return 0; MSILO_EINVAL (@p t NULL); MSILO_EVERSION when @p version is 0 or
 *         newer than this library knows (@p t is left untouched).
 */
MSILO_API int msilo_transport_init(msilo_transport_t *t, unsigned version);

/** Checks version, name and required methods. @return 0, MSILO_EINVAL or MSILO_EVERSION. */
MSILO_API int msilo_transport_check(const msilo_transport_t *t);

/** Validates @p msg (ruri, from, to set) then calls t->send. */
MSILO_API int msilo_transport_send(msilo_transport_t *t, const msilo_outgoing_t *msg,
                                   msilo_transport_done_fn done, void *data);

/** Calls t->free. NULL is a no-op. */
MSILO_API void msilo_transport_free(msilo_transport_t *t);

MSILO_END_DECLS

#endif
