/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-admin: administration of a libmsilo PostgreSQL store.
 *
 *   msilo-admin migrate --db-url URL [--table T] [--keep-id] [--sc-KEY=NAME ...]
 *
 * Only "migrate" exists so far; list/count/delete come later.
 */
#include <glib.h>
#include <msilo/msilo.h>
#include <msilo/postgres.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(FILE *f)
{
    fprintf(f, "usage: msilo-admin migrate --db-url URL [--table TABLE] [--keep-id]\n"
               "                          [--column sc_KEY=NAME ...]\n"
               "  Creates the msilo table, or adds what libmsilo needs to an existing\n"
               "  Kamailio/OpenSIPS silo table. Safe to run again.\n"
               "  --keep-id   do not widen a 32-bit id to BIGINT (that rewrites the table)\n"
               "  --column    a column name other than the default, e.g. sc_mid=mid\n"
               "  The URL may also come from MSILO_DB_URL.\n");
    return f == stderr ? 2 : 0;
}

static int cmd_migrate(int argc, char **argv)
{
    char *url = NULL, *table = NULL;
    char **columns = NULL;
    gboolean keep_id = FALSE, help = FALSE;
    GOptionEntry entries[] = {
        { "db-url", 0, 0, G_OPTION_ARG_STRING, &url, "database URL", "URL" },
        { "table", 0, 0, G_OPTION_ARG_STRING, &table, "table name (default silo)", "T" },
        { "keep-id", 0, 0, G_OPTION_ARG_NONE, &keep_id, "keep a 32-bit id column", NULL },
        { "column", 0, 0, G_OPTION_ARG_STRING_ARRAY, &columns, "sc_KEY=NAME", "KEY=NAME" },
        { "help", 'h', 0, G_OPTION_ARG_NONE, &help, "help", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *ctx = g_option_context_new(NULL);
    g_option_context_set_help_enabled(ctx, FALSE);
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *err = NULL;
    int status = 0;
    msilo_pg_options_t *o = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "msilo-admin migrate: %s\n", err->message);
        g_error_free(err);
        status = 2;
        goto out;
    }
    if (help) {
        status = usage(stdout);
        goto out;
    }
    if (argc > 1) {
        fprintf(stderr, "msilo-admin migrate: unexpected argument '%s'\n", argv[1]);
        status = 2;
        goto out;
    }
    if (!url && getenv("MSILO_DB_URL"))
        url = g_strdup(getenv("MSILO_DB_URL"));
    if (!url) {
        fprintf(stderr, "msilo-admin migrate: --db-url is required\n");
        status = 2;
        goto out;
    }
    msilo_pg_options_new(&o);
    int e = msilo_pg_options_set(o, "db_url", url);
    if (!e && table)
        e = msilo_pg_options_set(o, "db_table", table);
    for (char **c = columns; !e && c && *c; c++) {
        char *eq = strchr(*c, '=');
        if (!eq) {
            fprintf(stderr, "msilo-admin migrate: --column wants KEY=NAME, not '%s'\n", *c);
            status = 2;
            goto out;
        }
        *eq = '\0';
        e = msilo_pg_options_set(o, *c, eq + 1);
    }
    size_t changes = 0;
    if (!e)
        e = msilo_pg_migrate(o, keep_id ? MSILO_PG_MIGRATE_KEEP_ID : 0, &changes);
    if (e) {
        fprintf(stderr, "msilo-admin migrate: %s: %s\n", msilo_strerror(e),
                msilo_pg_error_detail());
        status = 1;
        goto out;
    }
    printf("table %s: %zu change%s\n", msilo_pg_options_get(o, "db_table"), changes,
           changes == 1 ? "" : "s");
out:
    msilo_pg_options_free(o);
    g_option_context_free(ctx);
    g_free(url);
    g_free(table);
    g_strfreev(columns);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (strcmp(argv[1], "migrate") == 0)
        return cmd_migrate(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0)
        return usage(stdout);
    fprintf(stderr, "msilo-admin: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
