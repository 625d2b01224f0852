/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/testing/transport.h
 * @brief The transport conformance suite of the msilo-testing kit, for
 *        transport implementers.
 *
 * Every transport (include/msilo/sys/transport.h) must pass this suite. It
 * runs a real SIP peer on 127.0.0.1 (a Sofia-SIP NTA agent acting as a UAS,
 * in this process, on the default GMainContext) and a closed port, and
 * checks the transport contract over UDP and over TCP: final statuses, local
 * timeouts, refused destinations, byte-exact bodies, headers, the next hop,
 * cancellation on free(), argument errors, many sends in flight, and that
 * done() runs exactly once and never from inside send().
 *
 * The peer answers by Request-URI user: `ok` 200, `busy` 486, `error` 500,
 * `never` no answer at all, anyone else 404.
 *
 * @code
 * static int open_mine(void *data, const msilo_testing_transport_env_t *env,
 *                      msilo_transport_t **ret)
 * {
 *     return my_transport_new(ret, env->context, env->guard_ms);
 * }
 *
 * int main(void)
 * {
 *     msilo_testing_transport_suite_t suite = MSILO_TESTING_TRANSPORT_SUITE_INIT;
 *     suite.name = "mine";
 *     suite.open = open_mine;
 *     return msilo_testing_exit_status(msilo_testing_transport_run(&suite));
 * }
 * @endcode
 *
 * Build it with `cc test-mine.c $(pkg-config --cflags --libs msilo-testing)`.
 * The suite needs the Sofia-SIP peer, which the kit has when it was built
 * with Sofia-SIP; without it msilo_testing_transport_run() returns
 * MSILO_ENOTSUP (exit status 77, "skipped").
 *
 * The transport runs on the default GMainContext: the suite iterates it
 * (and only it) while it waits. A transport on Sofia-SIP can use the suite's
 * own Sofia root (env->su_root), which is attached to that context.
 *
 * Thread-safety: run one suite at a time in a process, from one thread.
 */
#ifndef MSILO_TESTING_TRANSPORT_H
#define MSILO_TESTING_TRANSPORT_H

#include <glib.h>
#include <msilo/msilo.h>
#include <msilo/testing/suite.h>

MSILO_BEGIN_DECLS

/** Sofia-SIP's root object (su_root_t), for transports built on Sofia-SIP. */
struct su_root_s;

/**
 * A peer that never answers must be reported as MSILO_ETIMEDOUT within this
 * many milliseconds when no guard is asked for (env->guard_ms == 0): the
 * open callback sets its stack's timers accordingly (e.g. NTATAG_SIP_T1X64).
 */
#define MSILO_TESTING_TRANSPORT_TIMEOUT_MS 3000

/**
 * What the suite gives the open callback; valid during the call only. The
 * suite fills it; later versions of the kit append members, and `size`
 * (sizeof the struct as the kit was built) says which are there.
 */
typedef struct msilo_testing_transport_env {
    /** sizeof(msilo_testing_transport_env_t) in the kit that filled it. */
    size_t size;
    /** The context the transport runs on (the default GMainContext). */
    GMainContext *context;
    /** The suite's Sofia-SIP root, attached to @ref context. */
    struct su_root_s *su_root;
    /**
     * > 0: the test wants a per-send guard timer of this many milliseconds
     * (a send not answered by then ends with MSILO_ETIMEDOUT); 0: none.
     */
    unsigned guard_ms;
} msilo_testing_transport_env_t;

/** The version of msilo_testing_transport_suite_t this header describes. */
#define MSILO_TESTING_TRANSPORT_SUITE_VERSION 1

/**
 * What the transport suite is run on: filled by the implementer, read by
 * msilo_testing_transport_run() during the call only. Start from
 * MSILO_TESTING_TRANSPORT_SUITE_INIT (or msilo_testing_transport_suite_init())
 * and set members by name: later versions only append members.
 */
typedef struct msilo_testing_transport_suite {
    /** MSILO_TESTING_TRANSPORT_SUITE_VERSION, set by the initialisers. */
    unsigned version;
    /** Name of the cmocka group ("transport" when NULL). */
    const char *name;
    /**
     * Required. Opens a transport that runs on env->context and writes it to
     * @p ret. Returns 0 or a negative MSILO_E* code (the test then fails).
     */
    int (*open)(void *data, const msilo_testing_transport_env_t *env, msilo_transport_t **ret);
    /** Frees a transport open() made, and what open() made for it.
     *  NULL = msilo_transport_free(). */
    void (*close)(void *data, msilo_transport_t *transport);
    /** How many sends are still in flight (checked to be 0 before close, 3
     *  with three unanswered sends); NULL = not checked. */
    size_t (*in_flight)(void *data, const msilo_transport_t *transport);
    /** Passed to every callback. */
    void *data;
} msilo_testing_transport_suite_t;

/** Static initialiser: version set, everything else NULL. */
#define MSILO_TESTING_TRANSPORT_SUITE_INIT                                                         \
    { MSILO_TESTING_TRANSPORT_SUITE_VERSION, NULL, NULL, NULL, NULL, NULL }

/**
 * Sets @p suite to MSILO_TESTING_TRANSPORT_SUITE_INIT, for C++ and other
 * callers that cannot use the macro. Pass MSILO_TESTING_TRANSPORT_SUITE_VERSION:
 * only the members that version has are written.
 *
 * @return 0; MSILO_EINVAL if @p suite is NULL; MSILO_EVERSION for a version
 *         this kit does not know.
 */
MSILO_API int msilo_testing_transport_suite_init(msilo_testing_transport_suite_t *suite,
                                                 unsigned version);

/**
 * Runs the whole transport suite with cmocka, printing its report. Iterates
 * the default GMainContext, which no other thread may run meanwhile.
 *
 * @return the number of failed tests (0: the transport conforms; every
 *         test fails when the peer cannot be set up); or, when the suite
 *         could not run at all, MSILO_EINVAL (@p suite or its `open` is NULL),
 *         MSILO_EVERSION (a suite version this kit does not know) or
 *         MSILO_ENOTSUP (this kit was built without Sofia-SIP: no peer).
 *         msilo_testing_exit_status() turns it into main()'s exit status.
 */
MSILO_API int msilo_testing_transport_run(const msilo_testing_transport_suite_t *suite);

MSILO_END_DECLS

#endif
