/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What ThreadSanitizer cannot see for itself. GLib is not built with it, and
 * its GMutex, GCond and GAsyncQueue are futexes and atomics inside that
 * uninstrumented library: to TSan, memory handed from one thread to another
 * through them looks unsynchronised. The code that relies on one of them
 * says so here, in TSan builds only (-Db_sanitize=thread): msilo_tsan_release(p)
 * where a thread publishes through p (before the push, the unlock),
 * msilo_tsan_acquire(p) where another takes it (after the pop, the lock).
 * These are statements about real synchronisation, not suppressions: every
 * access is still checked. Elsewhere they compile to nothing.
 *
 * Not installed; lib/, backends/ and tests/ include it.
 */
#ifndef MSILO_TSAN_H
#define MSILO_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define MSILO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MSILO_TSAN 1
#endif
#endif

#ifdef MSILO_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define msilo_tsan_acquire(p) __tsan_acquire((void *)(p))
#define msilo_tsan_release(p) __tsan_release((void *)(p))
#else
#define msilo_tsan_acquire(p) ((void)(p))
#define msilo_tsan_release(p) ((void)(p))
#endif

#endif
