/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-admin: the commands that only read the store, through the public
 * store API (msilo_store_count/list/get), in pages of PAGE messages: count,
 * list, show, and stats (which reads every message once: the store API has
 * no aggregate query). What they print is format.c's.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "admin.h"

int cmd_count(int argc, char **argv)
{
    int status = parse_command("count", NULL, 1, &argc, &argv);
    if (status >= 0)
        return status;
    db_t db = { 0 };
    status = db_open_owner(&db, argv[1]);
    if (!status) {
        int64_t n = 0;
        int e = msilo_store_count(db.store, db.user, db.domain, &n);
        if (e)
            status = db_fail(&db, e, "count");
        else
            printf("%" PRId64 "\n", n);
    }
    db_clear(&db);
    return status;
}

int cmd_list(int argc, char **argv)
{
    gboolean json = FALSE;
    gint64 limit = 0;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "JSON output", NULL },
        { "limit", 0, 0, G_OPTION_ARG_INT64, &limit, "at most N messages", "N" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    int status = parse_command("list", entries, 1, &argc, &argv);
    if (status >= 0)
        return status;
    if (limit < 0) {
        print_error("--limit must be positive");
        return EXIT_USAGE;
    }
    db_t db = { 0 };
    status = db_open_owner(&db, argv[1]);
    if (status)
        goto out;

    GString *out = g_string_new(NULL);
    if (json)
        g_string_append(out, "[");
    else
        list_print_header();
    int64_t after = 0;
    size_t shown = 0;
    for (;;) {
        size_t want = PAGE;
        if (limit > 0 && (size_t)limit - shown < want)
            want = (size_t)limit - shown;
        if (want == 0)
            break;
        msilo_message_t **msgs = NULL;
        size_t n = 0;
        int e = msilo_store_list(db.store, db.user, db.domain, after, want, &msgs, &n);
        if (e) {
            status = db_fail(&db, e, "list");
            break;
        }
        for (size_t i = 0; i < n; i++) {
            const msilo_message_t *m = msgs[i];
            if (json) {
                g_string_append(out, shown || i ? ",\n " : "\n ");
                json_message(out, m, FALSE);
            } else {
                list_print_row(m);
            }
        }
        shown += n;
        if (n)
            after = msgs[n - 1]->id;
        msilo_message_array_free(msgs, n);
        if (n < want)
            break;
    }
    if (json && !status) {
        g_string_append(out, shown ? "\n]\n" : "]\n");
        fputs(out->str, stdout);
    }
    g_string_free(out, TRUE);
out:
    db_clear(&db);
    return status;
}

int cmd_show(int argc, char **argv)
{
    gboolean json = FALSE, raw = FALSE;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "JSON output", NULL },
        { "raw", 0, 0, G_OPTION_ARG_NONE, &raw, "body bytes only", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    int status = parse_command("show", entries, 1, &argc, &argv);
    if (status >= 0)
        return status;
    if (json && raw) {
        print_error("--json and --raw exclude each other");
        return EXIT_USAGE;
    }
    int64_t id = 0;
    db_t db = { 0 };
    status = parse_id(argv[1], &id);
    if (!status)
        status = db_open(&db);
    if (!status) {
        msilo_message_t *m = NULL;
        int e = msilo_store_get(db.store, id, &m);
        if (e == MSILO_ENOTFOUND) {
            print_error("no message with id %" PRId64, id);
            status = EXIT_NOTFOUND;
        } else if (e) {
            status = db_fail(&db, e, "show");
        } else if (raw) {
            fwrite(m->body ? m->body : "", 1, m->body_len, stdout);
        } else if (json) {
            GString *out = g_string_new(NULL);
            json_message(out, m, TRUE);
            printf("%s\n", out->str);
            g_string_free(out, TRUE);
        } else {
            show_text(m);
        }
        msilo_message_free(m);
    }
    db_clear(&db);
    return status;
}

int cmd_stats(int argc, char **argv)
{
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "JSON output", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    int status = parse_command("stats", entries, 0, &argc, &argv);
    if (status >= 0)
        return status;
    db_t db = { 0 };
    status = db_open(&db);
    if (status) {
        db_clear(&db);
        return status;
    }
    stats_t st = { .oldest_time = INT64_MAX };
    int64_t total = 0;
    int e = msilo_store_count(db.store, NULL, NULL, &total);
    int64_t now = (int64_t)time(NULL);
    /* "owner" -> count. The store API has no aggregate query, so this reads
     * every message once, in id order. */
    GHashTable *owners = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    int64_t after = 0;
    gboolean show_progress = total > 10 * PAGE;
    while (!e) {
        msilo_message_t **msgs = NULL;
        size_t n = 0;
        e = msilo_store_list(db.store, NULL, NULL, after, PAGE, &msgs, &n);
        if (e || n == 0) {
            msilo_message_array_free(msgs, n);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            const msilo_message_t *m = msgs[i];
            char *key = g_strdup_printf("%s@%s", m->user, m->domain);
            int64_t *c = g_hash_table_lookup(owners, key);
            if (!c) {
                c = g_new0(int64_t, 1);
                g_hash_table_insert(owners, key, c);
            } else {
                g_free(key);
            }
            (*c)++;
            st.messages++;
            st.bytes += m->body_len;
            if (m->exp_time <= now)
                st.expired++;
            if (m->snd_time)
                st.reminders++;
            if (m->attempts)
                st.leased_retry++;
            if (m->inc_time < st.oldest_time) {
                st.oldest_time = m->inc_time;
                st.oldest_id = m->id;
                g_free(st.oldest_owner);
                st.oldest_owner = g_strdup_printf("%s@%s", m->user, m->domain);
            }
            if (m->id > st.newest_id) {
                st.newest_id = m->id;
                st.newest_time = m->inc_time;
            }
        }
        after = msgs[n - 1]->id;
        msilo_message_array_free(msgs, n);
        if (show_progress && st.messages % (20 * PAGE) < PAGE)
            progress("read %" PRId64 "/%" PRId64 " messages", st.messages, total);
    }
    if (e) {
        status = db_fail(&db, e, "stats");
        goto out;
    }
    st.owners = g_hash_table_size(owners);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, owners);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        int64_t c = *(int64_t *)v;
        /* ties: the smaller name, so the output does not depend on hashing */
        if (c > st.top_count || (c == st.top_count && st.top_owner && strcmp(k, st.top_owner) < 0)) {
            st.top_count = c;
            st.top_owner = k;
        }
    }
    stats_print(&st, db.store->name, db.table, json);
out:
    g_hash_table_unref(owners);
    g_free(st.oldest_owner);
    db_clear(&db);
    return status;
}
