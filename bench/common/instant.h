/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A transport for benchmarks: accepts every MESSAGE and answers 200 from the
 * main loop right after (never inside send(), as the contract says). */
#ifndef MSILO_BENCH_INSTANT_H
#define MSILO_BENCH_INSTANT_H

#include <msilo/msilo.h>

typedef struct instant_transport instant_transport_t;

/* Attaches to the global default main context. Free with msilo_transport_free(). */
msilo_transport_t *instant_transport_new(void);
uint64_t instant_transport_sent(const msilo_transport_t *t);

/* Iterates the default context until @e has no job, no delivery in flight
 * and nothing else is ready. */
void bench_drain(msilo_engine_t *e);

#endif
