/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The admin guide must name every configuration key and every statistic,
 * so a new key cannot ship undocumented. */
#include <msilo/msilo.h>

#include <glib.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    gchar *text = NULL;
    if (!g_file_get_contents(argv[1], &text, NULL, NULL)) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    int missing = 0, checked = 0;
    const msilo_config_key_t *k;
    for (size_t i = 0; (k = msilo_config_key_at(i)); i++, checked++) {
        gchar *needle = g_strdup_printf("`%s`", k->name);
        if (!strstr(text, needle)) {
            fprintf(stderr, "doc/admin-guide.md does not document key %s\n", k->name);
            missing++;
        }
        g_free(needle);
    }
    for (int s = 0; s < MSILO_STAT_COUNT_; s++, checked++) {
        const char *name = msilo_stat_name((msilo_stat_t)s);
        if (!strstr(text, name)) {
            fprintf(stderr, "doc/admin-guide.md does not document statistic %s\n", name);
            missing++;
        }
    }
    g_free(text);
    printf("%d names checked, %d missing\n", checked, missing);
    return missing ? 1 : 0;
}
