/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fake clock, the engine fixture and run_until_idle() of fake.h. */
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

engine_fixture_t *engine_fixture_new(int64_t now)
{
    engine_fixture_t *f = g_new0(engine_fixture_t, 1);
    f->ctx = g_main_context_new();
    f->clock.now = now;
    g_assert_cmpint(msilo_config_new(&f->cfg), ==, 0);
    g_assert_cmpint(msilo_memory_store_new(&f->store), ==, 0);
    f->tr = fake_transport_new(f->ctx);
    return f;
}

void engine_fixture_start(engine_fixture_t *f)
{
    int rc = msilo_engine_new(&f->e, f->cfg, f->store, &f->tr->base, f->ctx);
    if (rc)
        g_error("msilo_engine_new: %s (%s)", msilo_strerror(rc), msilo_error_detail());
    msilo_engine_set_clock(f->e, fake_clock_read, &f->clock);
}

void engine_fixture_free(engine_fixture_t *f)
{
    msilo_engine_free(f->e);
    msilo_transport_free(&f->tr->base);
    msilo_store_free(f->store);
    msilo_config_free(f->cfg);
    while (g_main_context_iteration(f->ctx, FALSE))
        ;
    g_main_context_unref(f->ctx);
    g_free(f);
}
