/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/testing/store.h
 * @brief The store conformance suite of the msilo-testing kit, for backend
 *        implementers.
 *
 * Every storage backend (include/msilo/sys/store.h) must pass this suite:
 * about forty cmocka tests of the store contract (ids, round trips of every
 * field, per-owner limits, claims and leases, reminders, release, remove,
 * expire, paging, purge, reset_leases, open_peer, concurrent claimers,
 * take_expired: skipped for a store without it). Each
 * test opens a fresh, EMPTY store through the implementer's `open` callback,
 * uses only the public wrappers of <msilo/sys/store.h>, drives time through
 * their `now` arguments (never the wall clock) and closes the store again.
 *
 * @code
 * static int open_mine(void *data, msilo_store_t **ret) { return my_store_new(ret); }
 *
 * int main(void)
 * {
 *     msilo_testing_store_suite_t suite = MSILO_TESTING_STORE_SUITE_INIT;
 *     suite.name = "mine";
 *     suite.open = open_mine;
 *     return msilo_testing_exit_status(msilo_testing_store_run(&suite));
 * }
 * @endcode
 *
 * Build it with `cc test-mine.c $(pkg-config --cflags --libs msilo-testing)`.
 * The output is cmocka's (CMOCKA_MESSAGE_OUTPUT=TAP, xml, ... as usual).
 *
 * Concurrency: the concurrent-claim test runs several claimers at once on
 * one store when it sets MSILO_STORE_THREADSAFE; otherwise on one peer
 * handle each (msilo_store_open_peer()) when the store has them; otherwise
 * it is skipped.
 *
 * Thread-safety: run one suite at a time in a process, from one thread.
 */
#ifndef MSILO_TESTING_STORE_H
#define MSILO_TESTING_STORE_H

#include <msilo/msilo.h>
#include <msilo/testing/suite.h>

MSILO_BEGIN_DECLS

/** The version of msilo_testing_store_suite_t this header describes. */
#define MSILO_TESTING_STORE_SUITE_VERSION 1

/**
 * What the store suite is run on: filled by the implementer, read by
 * msilo_testing_store_run() during the call only. Start from
 * MSILO_TESTING_STORE_SUITE_INIT (or msilo_testing_store_suite_init()) and
 * set members by name: later versions only append members.
 */
typedef struct msilo_testing_store_suite {
    /** MSILO_TESTING_STORE_SUITE_VERSION, set by the initialisers. */
    unsigned version;
    /** Name of the cmocka group ("store" when NULL). */
    const char *name;
    /**
     * Required. Opens a fresh, empty store and writes it to @p ret (for a
     * database: a new table or file). Returns 0 or a negative MSILO_E* code;
     * the test then fails and @p ret is not used. Called once per test, on
     * the thread that runs the suite.
     */
    int (*open)(void *data, msilo_store_t **ret);
    /** Closes a store open() made (drop its table...). NULL = msilo_store_free(). */
    void (*close)(void *data, msilo_store_t *store);
    /** Passed to open() and close(). */
    void *data;
} msilo_testing_store_suite_t;

/** Static initialiser: version set, everything else NULL. */
#define MSILO_TESTING_STORE_SUITE_INIT { MSILO_TESTING_STORE_SUITE_VERSION, NULL, NULL, NULL, NULL }

/**
 * Sets @p suite to MSILO_TESTING_STORE_SUITE_INIT, for C++ and other
 * callers that cannot use the macro. Pass MSILO_TESTING_STORE_SUITE_VERSION:
 * only the members that version has are written.
 *
 * @return 0; MSILO_EINVAL if @p suite is NULL; MSILO_EVERSION for a version
 *         this kit does not know.
 */
MSILO_API int msilo_testing_store_suite_init(msilo_testing_store_suite_t *suite, unsigned version);

/**
 * Runs the whole store suite with cmocka, printing its report.
 *
 * @return the number of failed tests (0: the backend conforms); or, when the
 *         suite could not run at all, MSILO_EINVAL (@p suite or its `open` is
 *         NULL) or MSILO_EVERSION (a suite version this kit does not know).
 *         msilo_testing_exit_status() turns it into main()'s exit status.
 */
MSILO_API int msilo_testing_store_run(const msilo_testing_store_suite_t *suite);

MSILO_END_DECLS

#endif
