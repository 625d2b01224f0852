/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The transport conformance suite: every transport must pass it.
 *
 * The suite runs a real SIP peer on 127.0.0.1 (a second Sofia-SIP NTA agent
 * acting as a UAS, in this process, on the default GMainContext) and a closed
 * port, and checks the contract of include/msilo/sys/transport.h over UDP and
 * over TCP: final statuses, local timeouts, refused destinations, byte-exact
 * bodies, headers, cancellation on free(), and that done() runs exactly once
 * and never from inside send().
 *
 * The peer answers by Request-URI user:
 *   ok -> 200, busy -> 486, error -> 500, never -> no answer at all.
 */
#ifndef MSILO_TESTS_TRANSPORT_CONFORMANCE_H
#define MSILO_TESTS_TRANSPORT_CONFORMANCE_H

#include <msilo/msilo.h>

struct su_root_s;

/* A transport silent peer must be reported as MSILO_ETIMEDOUT within this
 * many milliseconds when no guard is asked for (the factory sets its stack's
 * timers accordingly, e.g. NTATAG_SIP_T1X64). */
#define MSILO_TRANSPORT_CONFORMANCE_TIMEOUT_MS 3000

typedef struct msilo_transport_conformance {
    const char *name;
    /* Opens a transport whose I/O runs on @root (a Sofia root attached to the
     * default GMainContext). @guard_ms > 0 asks for a per-send guard timer
     * of that many milliseconds. 0 or an MSILO_E* code. */
    int (*open)(void *data, struct su_root_s *root, unsigned guard_ms,
                msilo_transport_t **ret);
    /* Frees the transport (and whatever open() made for it). */
    void (*close)(void *data, msilo_transport_t *t);
    /* Sends still in flight (for the leak checks); NULL = not checked. */
    size_t (*in_flight)(void *data, const msilo_transport_t *t);
    void *data;
} msilo_transport_conformance_t;

/* Runs the suite with cmocka; returns the number of failed tests. */
int msilo_transport_conformance_run(const msilo_transport_conformance_t *factory);

#endif
