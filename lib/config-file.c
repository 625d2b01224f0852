/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The msilo parameters from a configuration file (GLib key-file format):
 * msilo_config_load_data() / msilo_config_load_file().
 *
 * The [msilo] group holds msilo parameters by their admin-guide names; other
 * groups belong to the embedder and go to its callback. Loading stops at the
 * first error, whose detail names the file, the line, the group and the key,
 * so an operator can go straight to it; what only the whole set can tell
 * (msilo_config_validate()) names the line of the key it is about.
 */
#include "internal.h"

#include <string.h>

/* Line number of "key =" inside [group] of @text (key NULL: the "[group]"
 * line itself), or 0 when not found. */
static unsigned find_line(const char *text, const char *group, const char *key)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    gboolean in_group = FALSE;
    size_t glen = strlen(group), klen = key ? strlen(key) : 0;

    for (unsigned i = 0; lines[i]; i++) {
        const char *l = lines[i];
        while (*l == ' ' || *l == '\t')
            l++;
        if (*l == '[') {
            const char *end = strchr(l, ']');
            in_group = end && (size_t)(end - l - 1) == glen && strncmp(l + 1, group, glen) == 0;
            if (in_group && !key)
                return i + 1;
            continue;
        }
        if (in_group && key && strncmp(l, key, klen) == 0) {
            const char *p = l + klen;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == '=')
                return i + 1;
        }
    }
    return 0;
}

/* One [msilo] key: msilo_config_set(), an empty value meaning "unset".
 * @return 0 or an error with the reason in *ret_why. */
static int set_msilo_key(msilo_config_t *cfg, const char *key, const char *value, char **ret_why)
{
    int r = msilo_config_set(cfg, key, value[0] ? value : NULL);
    if (r < 0) {
        const char *detail = msilo_error_detail();
        *ret_why = g_strdup_printf("%s%s%s", msilo_strerror(r), detail[0] ? ": " : "", detail);
    }
    return r;
}

int msilo_config_load_data(msilo_config_t *cfg, const char *text, const char *path,
                           msilo_config_group_fn other, void *data)
{
    if (!cfg || !text)
        return msilo_fail(MSILO_EINVAL, "msilo_config_load_data: NULL configuration or text");
    if (!path)
        path = "configuration";
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) error = NULL;
    if (!g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_NONE, &error))
        return msilo_fail(MSILO_ECONFIG, "%s: %s", path, error->message);

    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    for (size_t g = 0; groups[g]; g++) {
        const char *group = groups[g];
        gboolean is_msilo = strcmp(group, "msilo") == 0;
        g_autofree char *why = NULL;

        if (!is_msilo && (!other || other(group, NULL, NULL, &why, data) < 0)) {
            unsigned line = find_line(text, group, NULL);
            return msilo_fail(MSILO_ECONFIG, "%s:%u: [%s] %s", path, line, group,
                              why ? why : "unknown group (expected [msilo])");
        }
        g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
        for (size_t k = 0; keys && keys[k]; k++) {
            const char *key = keys[k];
            g_autofree char *value = g_key_file_get_string(kf, group, key, &error);
            int r;

            /* GLib returns a value *and* sets the error for a bad escape
             * ("\q"): the error decides (found by fuzzing: the value was used
             * and the error left set for the next key) */
            if (!value || error) {
                why = g_strdup(error ? error->message : "cannot be read");
                g_clear_error(&error);
                r = MSILO_ECONFIG;
            } else if (is_msilo) {
                r = set_msilo_key(cfg, key, value, &why);
            } else {
                r = other(group, key, value, &why, data);
            }
            if (r < 0)
                return msilo_fail(MSILO_ECONFIG, "%s:%u: [%s] %s: %s", path,
                                  find_line(text, group, key), group, key,
                                  why ? why : "refused");
        }
    }
    /* What only the whole set can tell (a template with an unknown variable,
     * offline_message without content_type_hdr): the detail starts with the
     * key; name its line when the file sets it. */
    if (msilo_config_validate(cfg) < 0) {
        g_autofree char *detail = g_strdup(msilo_error_detail());
        g_autofree char *key = g_strndup(detail, strcspn(detail, ": "));
        unsigned line = key[0] ? find_line(text, "msilo", key) : 0;
        return line ? msilo_fail(MSILO_ECONFIG, "%s:%u: [msilo] %s", path, line, detail)
                    : msilo_fail(MSILO_ECONFIG, "%s: %s", path, detail);
    }
    msilo_error_clear();
    return 0;
}

int msilo_config_load_file(msilo_config_t *cfg, const char *path, msilo_config_group_fn other,
                           void *data)
{
    if (!cfg || !path)
        return msilo_fail(MSILO_EINVAL, "msilo_config_load_file: NULL configuration or path");
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(path, &text, NULL, &error))
        return msilo_fail(MSILO_ECONFIG, "%s", error->message);
    return msilo_config_load_data(cfg, text, path, other, data);
}
