/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-admin: the commands that change the store. migrate creates or
 * upgrades the table (the one command that does not use the store API: it
 * runs before a store can open). delete, purge and expire remove messages
 * through msilo_store_remove/purge/expire; a big purge goes in pages so that
 * progress shows and no transaction locks every row of a mailbox.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "admin.h"

#include <msilo/stores.h>

int cmd_migrate(int argc, char **argv)
{
    gboolean keep_id = FALSE;
    char **columns = NULL;
    GOptionEntry entries[] = {
        { "keep-id", 0, 0, G_OPTION_ARG_NONE, &keep_id, "keep a 32-bit id column", NULL },
        { "column", 0, 0, G_OPTION_ARG_STRING_ARRAY, &columns, "sc_KEY=NAME", "KEY=NAME" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    int status = parse_command("migrate", entries, 0, &argc, &argv);
    if (status >= 0) {
        g_strfreev(columns);
        return status;
    }
    db_t db = { 0 };
    msilo_config_t *cfg = NULL;
    status = db_resolve(&db);
    if (status)
        goto out;

    size_t changes = 0;
    gint64 t0 = g_get_monotonic_time();
    /* A migration may rewrite a big table (id widening): say what runs. */
    progress("migrating table %s...", db.table);
    if (strcmp(db.kind, "sqlite") == 0 && (columns || keep_id)) {
        print_error(
            "--column and --keep-id are PostgreSQL options (SQLite column names are fixed)");
        status = EXIT_USAGE;
        goto out;
    }
    status = db_store_config(&db, &cfg);
    if (status)
        goto out;
    int e = 0;
    for (char **c = columns; !e && c && *c; c++) {
        char *eq = strchr(*c, '=');
        if (!eq) {
            print_error("--column wants sc_KEY=NAME, not '%s'", *c);
            status = EXIT_USAGE;
            goto out;
        }
        *eq = '\0';
        /* only the column names: the other msilo keys are not options here */
        e = g_str_has_prefix(*c, "sc_") ? msilo_config_set(cfg, *c, eq + 1)
                                        : msilo_store_fail(MSILO_ECONFIG, "unknown option %s", *c);
    }
    if (!e)
        e = msilo_store_migrate(db.url, cfg, keep_id ? MSILO_STORE_OPEN_KEEP_ID : 0, &changes);
    if (e) {
        status = db_open_fail(e, "migrate");
        goto out;
    }
    progress("done in %.1f s", (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC);
    printf("table %s: %zu change%s\n", db.table, changes, changes == 1 ? "" : "s");
    status = EXIT_OK;
out:
    msilo_config_free(cfg);
    db_clear(&db);
    g_strfreev(columns);
    return status;
}

int cmd_delete(int argc, char **argv)
{
    int status = parse_command("delete", NULL, -1, &argc, &argv);
    if (status >= 0)
        return status;
    status = EXIT_OK;
    size_t n = argc > 1 ? (size_t)argc - 1 : 0;
    int64_t *ids = g_new0(int64_t, n + 1);
    for (size_t i = 0; !status && i < n; i++)
        status = parse_id(argv[i + 1], &ids[i]);
    db_t db = { 0 };
    if (!status)
        status = db_open(&db);
    if (!status) {
        /* Duplicates would make "deleted fewer than asked" a false alarm. */
        size_t uniq = 0;
        int64_t *uniq_ids = g_new(int64_t, n);
        GHashTable *seen = g_hash_table_new(g_int64_hash, g_int64_equal);
        for (size_t i = 0; i < n; i++)
            if (g_hash_table_add(seen, &ids[i]))
                uniq_ids[uniq++] = ids[i];
        g_hash_table_unref(seen);
        size_t deleted = 0;
        int e = msilo_store_remove(db.store, uniq_ids, uniq, &deleted);
        g_free(uniq_ids);
        if (e) {
            status = db_fail(&db, e, "delete");
        } else {
            printf("deleted %zu of %zu message%s\n", deleted, uniq, uniq == 1 ? "" : "s");
            if (deleted < uniq) {
                print_error("%zu id%s did not exist", uniq - deleted,
                            uniq - deleted == 1 ? "" : "s");
                status = EXIT_NOTFOUND;
            }
        }
    }
    g_free(ids);
    db_clear(&db);
    return status;
}

int cmd_purge(int argc, char **argv)
{
    int status = parse_command("purge", NULL, 1, &argc, &argv);
    if (status >= 0)
        return status;
    db_t db = { 0 };
    status = db_open_owner(&db, argv[1]);
    if (status)
        goto out;

    int64_t total = 0;
    int e = msilo_store_count(db.store, db.user, db.domain, &total);
    size_t deleted = 0;
    /* A big mailbox goes in batches of ids, so that progress shows and no
     * single transaction holds locks on every row; purge() then takes
     * whatever arrived meanwhile. */
    if (!e && total > PAGE) {
        progress("purging %" PRId64 " messages", total);
        int64_t after = 0;
        for (;;) {
            msilo_message_t **msgs = NULL;
            size_t n = 0;
            e = msilo_store_list(db.store, db.user, db.domain, after, PAGE, &msgs, &n);
            if (e || n == 0) {
                msilo_message_array_free(msgs, n);
                break;
            }
            int64_t *ids = g_new(int64_t, n);
            for (size_t i = 0; i < n; i++)
                ids[i] = msgs[i]->id;
            after = ids[n - 1];
            msilo_message_array_free(msgs, n);
            size_t d = 0;
            e = msilo_store_remove(db.store, ids, n, &d);
            g_free(ids);
            if (e)
                break;
            deleted += d;
            progress("purged %zu/%" PRId64, deleted, total);
        }
    }
    size_t rest = 0;
    if (!e)
        e = msilo_store_purge(db.store, db.user, db.domain, &rest);
    if (e) {
        if (deleted)
            print_error("%zu messages were deleted before the failure", deleted);
        status = db_fail(&db, e, "purge");
        goto out;
    }
    deleted += rest;
    printf("purged %zu message%s\n", deleted, deleted == 1 ? "" : "s");
    status = deleted ? EXIT_OK : EXIT_NOTFOUND;
out:
    db_clear(&db);
    return status;
}

int cmd_expire(int argc, char **argv)
{
    gint64 at = 0;
    GOptionEntry entries[] = {
        { "at", 0, 0, G_OPTION_ARG_INT64, &at, "expire as of this Unix time", "UNIXTIME" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    int status = parse_command("expire", entries, 0, &argc, &argv);
    if (status >= 0)
        return status;
    db_t db = { 0 };
    status = db_open(&db);
    if (!status) {
        int64_t now = at ? at : (int64_t)time(NULL);
        size_t deleted = 0;
        int e = msilo_store_expire(db.store, now, &deleted);
        if (e)
            status = db_fail(&db, e, "expire");
        else
            printf("expired %zu message%s\n", deleted, deleted == 1 ? "" : "s");
    }
    db_clear(&db);
    return status;
}
