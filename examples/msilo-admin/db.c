/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-admin: which store a command works on, and opening it. The URL comes
 * from --db-url, else MSILO_DB_URL, else db_url of the -c file; the table
 * from --table, else db_table of the -c file, else silo; the kind from the
 * URL's scheme. Opening goes through msilo_store_open() (libmsilo-stores).
 * Also: a failed store call's message and exit status, and the AOR argument
 * (it may need default_domain of -c).
 */
#include <stdlib.h>
#include <string.h>

#include "admin.h"

#include <msilo/stores.h>
#ifdef MSILO_ADMIN_HAVE_POSTGRES
#include <msilo/postgres.h>
#endif

static int exit_for(int e)
{
    switch (e) {
    case 0:
        return EXIT_OK;
    case MSILO_ENOTFOUND:
        return EXIT_NOTFOUND;
    case MSILO_EINVAL:
    case MSILO_EURI:
        return EXIT_USAGE;
    case MSILO_ESTORE:
        return EXIT_DB;
    case MSILO_ECONFIG:
        return EXIT_CONFIG;
    default:
        return EXIT_OTHER;
    }
}

int db_fail(const db_t *db, int e, const char *what)
{
    /* every store reports through msilo_store_fail(): one place */
    (void)db;
    const char *d = msilo_error_detail();
    print_error("%s: %s%s%s", what, msilo_strerror(e), *d ? ": " : "", d);
    return exit_for(e);
}

int db_open_fail(int e, const char *what)
{
    const char *d = msilo_error_detail();
    print_error("%s: %s%s%s", what, msilo_strerror(e), *d ? ": " : "", d);
    return exit_for(e);
}

/* Reads -c FILE into db->cfg (every key of group [msilo]). */
static int load_config(db_t *db)
{
    msilo_config_new(&db->cfg);
    if (!opt_config)
        return EXIT_OK;
    GKeyFile *kf = g_key_file_new();
    GError *gerr = NULL;
    int status = EXIT_OK;
    if (!g_key_file_load_from_file(kf, opt_config, G_KEY_FILE_NONE, &gerr)) {
        print_error("%s: %s", opt_config, gerr->message);
        status = EXIT_CONFIG;
        goto out;
    }
    gsize n = 0;
    char **keys = g_key_file_get_keys(kf, "msilo", &n, &gerr);
    if (!keys) {
        print_error("%s: %s", opt_config, gerr->message);
        status = EXIT_CONFIG;
        goto out;
    }
    for (gsize i = 0; i < n && status == EXIT_OK; i++) {
        char *v = g_key_file_get_string(kf, "msilo", keys[i], NULL);
        int e = msilo_config_set(db->cfg, keys[i], v);
        if (e) {
            print_error("%s: [msilo] %s: %s", opt_config, keys[i], msilo_error_detail());
            status = EXIT_CONFIG;
        }
        g_free(v);
    }
    g_strfreev(keys);
out:
    g_clear_error(&gerr);
    g_key_file_free(kf);
    return status;
}

int db_resolve(db_t *db)
{
    int status = load_config(db);
    if (status)
        return status;
    if (opt_url)
        db->url = g_strdup(opt_url);
    else if (getenv("MSILO_DB_URL") && *getenv("MSILO_DB_URL"))
        db->url = g_strdup(getenv("MSILO_DB_URL"));
    else if (opt_config)
        db->url = g_strdup(msilo_config_get_string(db->cfg, "db_url"));
    if (!db->url) {
        print_error("no database: give --db-url URL, set MSILO_DB_URL, or -c CONFIG");
        return EXIT_USAGE;
    }
    if (opt_table)
        db->table = g_strdup(opt_table);
    else if (opt_config && msilo_config_get_string(db->cfg, "db_table"))
        db->table = g_strdup(msilo_config_get_string(db->cfg, "db_table"));
    else
        db->table = g_strdup("silo");
    db->kind = msilo_store_url_kind(db->url);
    if (!db->kind || strcmp(db->kind, "memory") == 0) {
        /* memory: lands here too: a store that is empty and ends with the
         * process has nothing to administer. Never echo a URL: it may hold
         * a password. */
        print_error("database URL: unknown scheme (use postgres://... or sqlite:///path)");
        return EXIT_CONFIG;
    }
    if (!msilo_store_url_supported(db->url)) {
        print_error("this msilo-admin was built without %s support",
                    strcmp(db->kind, "postgres") == 0 ? "PostgreSQL" : "SQLite");
        return EXIT_CONFIG;
    }
    return EXIT_OK;
}

int db_store_config(const db_t *db, msilo_config_t **ret)
{
    /* PostgreSQL reads the sc_* column names of the -c file too */
    int e = msilo_config_copy(db->cfg, ret);
    if (!e)
        e = msilo_config_set(*ret, "db_url", db->url);
    if (!e)
        e = msilo_config_set(*ret, "db_table", db->table);
    if (e) {
        msilo_config_free(*ret);
        *ret = NULL;
        return db_open_fail(e, "options");
    }
    return EXIT_OK;
}

int db_open(db_t *db)
{
    int status = db->url ? EXIT_OK : db_resolve(db);
    if (status)
        return status;
    msilo_config_t *cfg = NULL;
    status = db_store_config(db, &cfg);
    if (status)
        return status;
    int e = msilo_store_open(db->url, cfg, 0, &db->store);
    if (e)
        status = db_open_fail(e, "opening the store");
    msilo_config_free(cfg);
    return status;
}

void db_clear(db_t *db)
{
    msilo_store_free(db->store);
    msilo_config_free(db->cfg);
    g_free(db->url);
    g_free(db->table);
    g_free(db->user);
    g_free(db->domain);
}

static int parse_aor(const db_t *db, const char *text, char **ret_user, char **ret_domain)
{
    /* "alice@example.com" is what operators type: the engine's parser
     * wants a URI, so give it one. */
    char *uri = (strchr(text, ':') || strchr(text, '<')) ? g_strdup(text)
                                                          : g_strconcat("sip:", text, NULL);
    const char *dd = db->cfg ? msilo_config_get_string(db->cfg, "default_domain") : NULL;
    int e = msilo_aor_parse(uri, dd, ret_user, ret_domain);
    g_free(uri);
    if (e) {
        print_error("bad AOR '%s': %s", text, msilo_error_detail());
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int db_open_owner(db_t *db, const char *aor)
{
    int status = db_resolve(db);
    if (!status)
        status = parse_aor(db, aor, &db->user, &db->domain);
    if (!status)
        status = db_open(db);
    return status;
}
