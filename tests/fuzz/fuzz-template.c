/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: template compile + expand, and config validation of the
 * templates (the first line of the input is the template, the rest a value). */
#include "internal.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = g_strndup((const char *)data, size);
    char *nl = strchr(s, '\n');
    const char *value = "v";
    if (nl) {
        *nl = '\0';
        value = nl + 1;
    }
    msilo_template_t *t = NULL;
    int rc = msilo_template_compile("fuzz", s, &t);
    g_assert(rc == 0 || rc == MSILO_ECONFIG);
    if (rc == 0) {
        msilo_template_vars_t v = { .ru = value, .rU = value, .rd = value, .fu = value,
                                    .fU = value, .fd = value, .tu = value, .tU = value,
                                    .td = value, .ou = value, .ci = value };
        char *out = msilo_template_expand(t, &v);
        g_free(out);
        msilo_template_free(t);
    }
    msilo_config_t *cfg;
    msilo_config_new(&cfg);
    msilo_config_set(cfg, "offline_message", s);
    msilo_config_set(cfg, "content_type_hdr", value);
    msilo_config_set(cfg, "contact_hdr", value);
    rc = msilo_config_validate(cfg);
    g_assert(rc == 0 || rc == MSILO_ECONFIG);
    msilo_config_free(cfg);
    g_free(s);
    return 0;
}
