/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the reminder-time parser (YYYYMMDDHHMMSS). */
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = g_strndup((const char *)data, size);
    int64_t t = -1;
    int rc = msilo_time_parse(s, &t);
    g_assert(rc == 0 || rc == MSILO_ETIME);
    if (rc == 0) {
        g_assert(t >= -86400); /* 1970 in any time zone */
        char *c = msilo_format_ctime(t);
        char *h = msilo_format_http_date(t);
        g_free(c);
        g_free(h);
    }
    g_free(s);
    return 0;
}
