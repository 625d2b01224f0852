/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the engine's URI / AoR parser. Any input must either
 * parse into a URI with no control characters and a lower-case host, or fail
 * with MSILO_EURI - never crash, leak or read out of bounds - and, quoted as
 * a display name, never change whose address a name-addr is. */
#include "internal.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = g_strndup((const char *)data, size); /* stops at an embedded NUL, as C callers do */
    msilo_uri_t u;
    int rc = msilo_uri_parse(s, "fuzz", &u);
    if (rc == 0) {
        for (const char *p = u.uri; *p; p++)
            g_assert((unsigned char)*p >= 0x20);
        if (u.user)
            for (const char *p = u.user; *p; p++)
                g_assert((unsigned char)*p >= 0x20 && *p != 0x7f);
        if (u.host) {
            char *low = g_ascii_strdown(u.host, -1);
            g_assert(strcmp(low, u.host) == 0);
            g_free(low);
        }
        if (msilo_uri_is_aor(&u)) {
            /* re-serialising the AoR and parsing it again gives the same owner */
            char *aor = msilo_aor_to_uri(u.user, u.host);
            msilo_uri_t v;
            if (msilo_uri_parse(aor, "again", &v) == 0) {
                g_assert(strcmp(v.user, u.user) == 0);
                g_assert(strcmp(v.host, u.host) == 0);
                msilo_uri_clear(&v);
            }
            g_free(aor);
        }
        msilo_uri_clear(&u);
    } else {
        g_assert(rc == MSILO_EURI);
    }
    /* The input as a quoted display name (RFC 3261 quoted-string: '"' and
     * '\\' escaped) never changes whose address it is: whatever '<', '>',
     * '"' or "sip:" it holds, the owner is the addr-spec after it, or the
     * text is refused for a control character. */
    GString *na = g_string_new("\"");
    gboolean ctl = FALSE;
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p < 0x20 && *p != '\t')
            ctl = TRUE;
        if (*p == '"' || *p == '\\')
            g_string_append_c(na, '\\');
        g_string_append_c(na, *p);
    }
    g_string_append(na, "\" <sip:owner@example.org>;tag=1");
    msilo_uri_t w;
    rc = msilo_uri_parse(na->str, "display", &w);
    if (ctl) {
        g_assert(rc == MSILO_EURI);
    } else {
        g_assert(rc == 0);
        g_assert(strcmp(w.user, "owner") == 0 && strcmp(w.host, "example.org") == 0);
        msilo_uri_clear(&w);
    }
    g_string_free(na, TRUE);

    char *user = NULL, *domain = NULL;
    if (msilo_aor_parse(s, "default.example", &user, &domain) == 0) {
        g_assert(user && *user && domain && *domain);
    }
    g_free(user);
    g_free(domain);
    g_free(s);
    return 0;
}
