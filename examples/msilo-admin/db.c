/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-admin: which store a command works on, and opening it. The URL comes
 * from --db-url, else MSILO_DB_URL, else db_url of the -c file; the table
 * from --table, else db_table of the -c file, else silo; the kind from the
 * URL's scheme. Opening goes through the examples' shared helper
 * (examples/common/store-open.h). Also: a failed store call's message and
 * exit status, and the AOR argument (it may need default_domain of -c).
 */
#include <stdlib.h>
#include <string.h>

#include "admin.h"

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
    const char *d = store_kind_error_detail(db ? db->kind : STORE_KIND_UNKNOWN);
    print_error("%s: %s%s%s", what, msilo_strerror(e), *d ? ": " : "", d);
    return exit_for(e);
}

int db_spec_fail(const store_spec_t *spec, int e, const char *what)
{
    const char *d = store_spec_error(spec);
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
    db->kind = store_kind_from_url(db->url);
    switch (db->kind) {
    case STORE_KIND_POSTGRES:
    case STORE_KIND_SQLITE:
        if (!store_kind_built(db->kind)) {
            print_error("this msilo-admin was built without %s support",
                        db->kind == STORE_KIND_POSTGRES ? "PostgreSQL" : "SQLite");
            return EXIT_CONFIG;
        }
        break;
    default:
        /* memory: lands here too: a store that is empty and ends with the
         * process has nothing to administer. Never echo a URL: it may hold
         * a password. */
        print_error("database URL: unknown scheme (use postgres://... or sqlite:///path)");
        return EXIT_CONFIG;
    }
    return EXIT_OK;
}

int db_spec(db_t *db, store_spec_t **ret)
{
    store_spec_t *spec = NULL;
    int e = store_spec_new(&spec, db->kind);
    if (e)
        return db_fail(db, e, "options");
    /* PostgreSQL reads the sc_* column names of the -c file too */
    if (opt_config)
        e = store_spec_set_config(spec, db->cfg);
    if (!e)
        e = store_spec_set(spec, "db_url", db->url);
    if (!e)
        e = store_spec_set(spec, "db_table", db->table);
    if (e) {
        int status = db_spec_fail(spec, e, "options");
        store_spec_free(spec);
        return status;
    }
    *ret = spec;
    return EXIT_OK;
}

int db_open(db_t *db)
{
    int status = db->url ? EXIT_OK : db_resolve(db);
    if (status)
        return status;
    store_spec_t *spec = NULL;
    status = db_spec(db, &spec);
    if (status)
        return status;
    int e = store_spec_open(spec, &db->store);
    if (e)
        status = db_spec_fail(spec, e, "opening the store");
    store_spec_free(spec);
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
