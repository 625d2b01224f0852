/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fake clock and run_until_idle() of fake.h. */
#include "fake.h"

int64_t fake_clock_read(void *data)
{
    return ((fake_clock_t *)data)->now;
}

gboolean run_until_idle(msilo_engine_t *e, GMainContext *ctx, gboolean allow_in_flight)
{
    /* bounded: a bug shows up as a failed assertion, never as a hung test */
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    for (int i = 0; i < 100000 && g_get_monotonic_time() < deadline; i++) {
        gboolean busy = msilo_engine_pending(e) > 0 ||
                        (!allow_in_flight && msilo_engine_stat(e, MSILO_STAT_IN_FLIGHT) > 0);
        if (!busy && !g_main_context_pending(ctx))
            return TRUE;
        /* a blocking store answers from its worker thread: wait for it */
        g_main_context_iteration(ctx, msilo_engine_pending(e) > 0 && !g_main_context_pending(ctx));
        if (!busy && !g_main_context_pending(ctx))
            return TRUE;
    }
    return FALSE;
}
