/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: msilo-server's configuration file loader
 * (examples/msilo-server/config.c) on arbitrary file text, then the checks
 * main() runs before it starts (msilo_config_validate()), and the masking of
 * the database URL: whatever the text, no crash, an error always comes with a
 * message naming the file, and the password of a user:password@ URL never
 * comes out. */
#include "../../examples/msilo-server/config.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = g_strndup((const char *)data, size);
    msilo_config_t *cfg = NULL;
    server_options_t opt;
    bool has_password = false;
    char *error = NULL;

    g_assert(msilo_config_new(&cfg) == 0);
    server_options_init(&opt);
    if (server_config_load_data("fuzz.conf", text, cfg, &opt, &has_password, &error)) {
        g_assert(error == NULL);
        (void)msilo_config_validate(cfg);
    } else {
        g_assert(error != NULL && strncmp(error, "fuzz.conf", 9) == 0);
    }
    g_free(error);

    /* the masking, on the configured URL and on the raw text */
    const char *urls[] = { msilo_config_get_string(cfg, "db_url"), text };
    for (size_t i = 0; i < G_N_ELEMENTS(urls); i++) {
        char *masked = server_mask_db_url(urls[i]);
        const char *u = urls[i] ? strstr(urls[i], "://") : NULL;
        const char *at = u ? strchr(u + 3, '@') : NULL;
        const char *colon = u ? strchr(u + 3, ':') : NULL;
        g_assert(masked != NULL);
        /* scheme://user:PASSWORD@host: the password never comes out (a
         * sqlite: URL names a file and is shown as it is) */
        if (colon && at && colon + 1 < at && !memchr(u + 3, '/', (size_t)(colon - u - 3)) &&
            !g_str_has_prefix(urls[i], "sqlite:")) {
            char *pw = g_strndup(colon, (size_t)(at - colon + 1)); /* ":PASSWORD@" */
            g_assert(server_url_has_password(urls[i]));
            g_assert(strstr(masked, pw) == NULL);
            g_free(pw);
        }
        g_free(masked);
    }
    server_options_clear(&opt);
    msilo_config_free(cfg);
    g_free(text);
    return 0;
}
