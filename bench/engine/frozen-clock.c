/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LD_PRELOAD shim for steady callgrind counts of bench-engine: the wall clock
 * (CLOCK_REALTIME) stands still, so every message is stamped in one second
 * and the engine's per-second Date/ctime cache always hits, however long the
 * run takes under valgrind; the monotonic clock runs (doc/performance.md,
 * "threading contract").
 *   LD_PRELOAD=build/bench/engine/libfrozen-clock.so valgrind --tool=callgrind ...
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>

int clock_gettime(clockid_t id, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    if (id == CLOCK_REALTIME) {
        ts->tv_sec = 1800000000; /* 2027-01-15T08:00:00Z */
        ts->tv_nsec = 0;
        return 0;
    }
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "clock_gettime"); /* POSIX's way: no cast */
    return real(id, ts);
}
