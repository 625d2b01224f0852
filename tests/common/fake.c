/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fake.h"

#include <string.h>

int64_t fake_clock_read(void *data)
{
    return ((fake_clock_t *)data)->now;
}

char *fake_sent_header(const fake_sent_t *s, const char *name)
{
    if (!s->headers)
        return NULL;
    gchar **lines = g_strsplit(s->headers, "\r\n", -1);
    char *v = NULL;
    size_t n = strlen(name);
    for (gchar **l = lines; *l && !v; l++)
        if (g_ascii_strncasecmp(*l, name, n) == 0 && (*l)[n] == ':')
            v = g_strstrip(g_strdup(*l + n + 1));
    g_strfreev(lines);
    return v;
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
