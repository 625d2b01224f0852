/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store conformance suite: every storage backend must pass it.
 *
 * A backend's test program provides a factory that opens a fresh, EMPTY store
 * (for PostgreSQL: a new table in the test database) and calls
 * msilo_store_conformance_run() from main(). The suite uses only the public
 * store API (include/msilo/sys/store.h) and drives time through the `now`
 * arguments, never the wall clock.
 */
#ifndef MSILO_TESTS_STORE_CONFORMANCE_H
#define MSILO_TESTS_STORE_CONFORMANCE_H

#include <msilo/msilo.h>

typedef struct msilo_conformance_backend {
    const char *name;
    /* Opens a fresh, empty store; 0 or an MSILO_E* code. */
    int (*open)(void *data, msilo_store_t **ret);
    /* Closes it (NULL = msilo_store_free). */
    void (*close)(void *data, msilo_store_t *store);
    void *data;
    /* Backend may be called from several threads at once (enables the
     * concurrent-claim test with threads). */
    int concurrent;
} msilo_conformance_backend_t;

/* Runs the whole suite with cmocka; returns the number of failed tests
 * (use as main()'s exit status). */
int msilo_store_conformance_run(const msilo_conformance_backend_t *backend);

#endif
