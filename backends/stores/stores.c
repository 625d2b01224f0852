/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libmsilo-stores: msilo_store_open() / msilo_store_migrate(), the one place
 * that turns a URL into a store of whichever backend it names. It only calls
 * the public API of libmsilo, libmsilo-postgres and libmsilo-sqlite, and
 * compiles in the backends that are built (MSILO_STORES_HAVE_* from meson).
 * Every failure's detail ends up in libmsilo's msilo_error_detail():
 * libmsilo-postgres keeps its own, which is copied over.
 */
#include <msilo/errors.h>
#include <msilo/memory.h>
#include <msilo/stores.h>

#include <glib.h>
#include <string.h>

#ifdef MSILO_STORES_HAVE_POSTGRES
#include <msilo/postgres.h>
#endif
#ifdef MSILO_STORES_HAVE_SQLITE
#include <msilo/sqlite.h>
#endif

typedef enum { KIND_NONE, KIND_MEMORY, KIND_SQLITE, KIND_POSTGRES } kind_t;

static kind_t kind_of(const char *url)
{
    if (!url)
        return KIND_NONE;
    if (g_ascii_strncasecmp(url, "sqlite:", 7) == 0 || strcmp(url, ":memory:") == 0)
        return KIND_SQLITE;
    if (strcmp(url, "memory:") == 0)
        return KIND_MEMORY;
    if (g_ascii_strncasecmp(url, "postgres://", 11) == 0 ||
        g_ascii_strncasecmp(url, "postgresql://", 13) == 0 ||
        (strchr(url, '=') && !strstr(url, "://"))) /* libpq "host=... dbname=..." */
        return KIND_POSTGRES;
    return KIND_NONE;
}

static int kind_built(kind_t k)
{
    switch (k) {
    case KIND_MEMORY:
        return 1;
#ifdef MSILO_STORES_HAVE_SQLITE
    case KIND_SQLITE:
        return 1;
#endif
#ifdef MSILO_STORES_HAVE_POSTGRES
    case KIND_POSTGRES:
        return 1;
#endif
    default:
        return 0;
    }
}

const char *msilo_store_url_kind(const char *url)
{
    static const char *const names[] = { NULL, "memory", "sqlite", "postgres" };
    return names[kind_of(url)];
}

int msilo_store_url_supported(const char *url)
{
    return kind_built(kind_of(url));
}

/* The URL to use and its kind; an error (with its detail) when there is none
 * that can be opened here. */
static int resolve(const char *url, const msilo_config_t *cfg, const char **ret_url,
                   kind_t *ret_kind)
{
    if (!url && cfg)
        url = msilo_config_get_string(cfg, "db_url");
    if (!url || !*url)
        return msilo_store_fail(MSILO_ECONFIG, "no store URL (db_url is not set)");
    kind_t k = kind_of(url);
    if (k == KIND_NONE)
        /* never the URL itself: it may hold a password */
        return msilo_store_fail(MSILO_ECONFIG, "not a store URL (memory:, sqlite:///path, "
                                               "postgres://... or a libpq key=value string)");
    if (!kind_built(k))
        return msilo_store_fail(MSILO_ENOTSUP, "the %s store is not built in this libmsilo",
                                k == KIND_SQLITE ? "sqlite" : "postgres");
    *ret_url = url;
    *ret_kind = k;
    return 0;
}

#ifdef MSILO_STORES_HAVE_POSTGRES
/* libmsilo-postgres reports its details through msilo_store_fail() already. */
static int pg_result(int e)
{
    return e;
}

static int pg_options(const char *url, const msilo_config_t *cfg, msilo_pg_options_t **ret)
{
    int e = pg_result(msilo_pg_options_new(ret));
    if (!e && cfg)
        e = pg_result(msilo_pg_options_from_config(*ret, cfg));
    if (!e)
        e = pg_result(msilo_pg_options_set(*ret, "db_url", url));
    if (e) {
        msilo_pg_options_free(*ret);
        *ret = NULL;
    }
    return e;
}
#endif

#ifdef MSILO_STORES_HAVE_SQLITE
static const char *sqlite_table(const msilo_config_t *cfg)
{
    return cfg ? msilo_config_get_string(cfg, "db_table") : NULL;
}
#endif

int msilo_store_migrate(const char *url, const msilo_config_t *cfg, unsigned flags,
                        size_t *ret_changes)
{
    kind_t k = KIND_NONE;
    size_t changes = 0;
    int e = resolve(url, cfg, &url, &k);
    if (e)
        return e;
    switch (k) {
#ifdef MSILO_STORES_HAVE_POSTGRES
    case KIND_POSTGRES: {
        msilo_pg_options_t *o = NULL;
        e = pg_options(url, cfg, &o);
        if (!e)
            e = pg_result(msilo_pg_migrate(
                o, (flags & MSILO_STORE_OPEN_KEEP_ID) ? MSILO_PG_MIGRATE_KEEP_ID : 0, &changes));
        msilo_pg_options_free(o);
        break;
    }
#endif
#ifdef MSILO_STORES_HAVE_SQLITE
    case KIND_SQLITE:
        e = msilo_sqlite_migrate(url, sqlite_table(cfg), &changes);
        break;
#endif
    default: /* memory: there is no table */
        break;
    }
    if (!e && ret_changes)
        *ret_changes = changes;
    return e;
}

int msilo_store_open(const char *url, const msilo_config_t *cfg, unsigned flags,
                     msilo_store_t **ret)
{
    if (!ret)
        return msilo_store_fail(MSILO_EINVAL, "msilo_store_open: ret is NULL");
    kind_t k = KIND_NONE;
    int e = resolve(url, cfg, &url, &k);
    if (!e && (flags & MSILO_STORE_OPEN_MIGRATE))
        e = msilo_store_migrate(url, cfg, flags, NULL);
    if (e)
        return e;
    switch (k) {
    case KIND_MEMORY:
        return msilo_memory_store_new(ret);
#ifdef MSILO_STORES_HAVE_SQLITE
    case KIND_SQLITE:
        return msilo_sqlite_store_new_table(ret, url, sqlite_table(cfg));
#endif
#ifdef MSILO_STORES_HAVE_POSTGRES
    case KIND_POSTGRES: {
        msilo_pg_options_t *o = NULL;
        e = pg_options(url, cfg, &o);
        if (!e)
            e = pg_result(msilo_pg_store_new(ret, o));
        msilo_pg_options_free(o);
        return e;
    }
#endif
    default:
        return msilo_store_fail(MSILO_ENOTSUP, "no backend for this URL");
    }
}
