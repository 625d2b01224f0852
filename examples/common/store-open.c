/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Opening a store from a URL or a kind and the msilo parameters (see
 * store-open.h): which kind a URL names, and for each kind where its keys
 * are kept, how its table is migrated and how the store is opened. The only
 * place in the examples that calls a backend's constructor.
 *
 * A backend that is not built leaves no trace but store_kind_built() saying
 * so: STORE_OPEN_HAVE_POSTGRES / STORE_OPEN_HAVE_SQLITE come from meson.
 */
#include "store-open.h"

#include <glib.h>
#include <stdarg.h>
#include <string.h>

#ifdef STORE_OPEN_HAVE_POSTGRES
#include <msilo/postgres.h>
#endif
#ifdef STORE_OPEN_HAVE_SQLITE
#include <msilo/sqlite.h>
#endif

struct store_spec {
    store_kind_t kind;
    char *url;   /* sqlite (memory: kept, unused): NULL = unset */
    char *table; /* sqlite (memory: kept, unused): NULL = "silo" */
#ifdef STORE_OPEN_HAVE_POSTGRES
    msilo_pg_options_t *pg; /* postgres: every key, db_url and db_table included */
#endif
    char *error; /* detail of the latest failure; NULL = none */
};

static const char *const kind_names[] = {
    [STORE_KIND_UNKNOWN] = "unknown",
    [STORE_KIND_MEMORY] = "memory",
    [STORE_KIND_SQLITE] = "sqlite",
    [STORE_KIND_POSTGRES] = "postgres",
};

store_kind_t store_kind_from_name(const char *name)
{
    if (!name)
        return STORE_KIND_UNKNOWN;
    for (int k = STORE_KIND_MEMORY; k <= STORE_KIND_POSTGRES; k++)
        if (strcmp(name, kind_names[k]) == 0)
            return (store_kind_t)k;
    return STORE_KIND_UNKNOWN;
}

store_kind_t store_kind_from_url(const char *url)
{
    if (!url)
        return STORE_KIND_UNKNOWN;
    if (g_ascii_strncasecmp(url, "sqlite:", 7) == 0 || strcmp(url, ":memory:") == 0)
        return STORE_KIND_SQLITE;
    if (strcmp(url, "memory:") == 0)
        return STORE_KIND_MEMORY;
    if (g_ascii_strncasecmp(url, "postgres://", 11) == 0 ||
        g_ascii_strncasecmp(url, "postgresql://", 13) == 0 ||
        (strchr(url, '=') && !strstr(url, "://"))) /* libpq "host=... dbname=..." */
        return STORE_KIND_POSTGRES;
    return STORE_KIND_UNKNOWN;
}

const char *store_kind_name(store_kind_t kind)
{
    return kind > STORE_KIND_UNKNOWN && kind <= STORE_KIND_POSTGRES ? kind_names[kind] : "unknown";
}

bool store_kind_built(store_kind_t kind)
{
    switch (kind) {
    case STORE_KIND_MEMORY:
        return true;
    case STORE_KIND_SQLITE:
#ifdef STORE_OPEN_HAVE_SQLITE
        return true;
#else
        return false;
#endif
    case STORE_KIND_POSTGRES:
#ifdef STORE_OPEN_HAVE_POSTGRES
        return true;
#else
        return false;
#endif
    default:
        return false;
    }
}

const char *store_kind_error_detail(store_kind_t kind)
{
#ifdef STORE_OPEN_HAVE_POSTGRES
    /* libmsilo-postgres keeps a detail of its own (libmsilo's is not
     * reachable from a backend library) */
    if (kind == STORE_KIND_POSTGRES && *msilo_pg_error_detail())
        return msilo_pg_error_detail();
#endif
    (void)kind;
    return msilo_error_detail();
}

/* Keeps the backend's detail of failure @p e (0: nothing failed). Returns @p e. */
static int backend_result(store_spec_t *spec, int e)
{
    if (e) {
        g_free(spec->error);
        spec->error = g_strdup(store_kind_error_detail(spec->kind));
    }
    return e;
}

/* A failure found here, not in a backend. Returns @p e. */
static int G_GNUC_PRINTF(3, 4) spec_fail(store_spec_t *spec, int e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_free(spec->error);
    spec->error = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return e;
}

/* Both programs that use this file take the URL as --db-url. */
static int url_unset(store_spec_t *spec)
{
    return spec_fail(spec, MSILO_ECONFIG, "db_url is not set (--db-url sqlite:///path)");
}

int store_spec_new(store_spec_t **ret_spec, store_kind_t kind)
{
    if (!ret_spec || kind <= STORE_KIND_UNKNOWN || kind > STORE_KIND_POSTGRES)
        return MSILO_EINVAL;
    if (!store_kind_built(kind))
        return MSILO_ENOTSUP;
    store_spec_t *spec = g_new0(store_spec_t, 1);
    spec->kind = kind;
#ifdef STORE_OPEN_HAVE_POSTGRES
    if (kind == STORE_KIND_POSTGRES) {
        int e = msilo_pg_options_new(&spec->pg);
        if (e) {
            g_free(spec);
            return e;
        }
    }
#endif
    *ret_spec = spec;
    return 0;
}

void store_spec_free(store_spec_t *spec)
{
    if (!spec)
        return;
#ifdef STORE_OPEN_HAVE_POSTGRES
    msilo_pg_options_free(spec->pg);
#endif
    g_free(spec->url);
    g_free(spec->table);
    g_free(spec->error);
    g_free(spec);
}

int store_spec_set(store_spec_t *spec, const char *key, const char *value)
{
    if (!spec || !key)
        return MSILO_EINVAL;
#ifdef STORE_OPEN_HAVE_POSTGRES
    if (spec->kind == STORE_KIND_POSTGRES)
        return backend_result(spec, msilo_pg_options_set(spec->pg, key, value));
#endif
    char **slot = strcmp(key, "db_url") == 0     ? &spec->url
                  : strcmp(key, "db_table") == 0 ? &spec->table
                                                 : NULL;
    if (!slot)
        return spec_fail(spec, MSILO_ECONFIG, "the %s store has no option '%s'",
                         store_kind_name(spec->kind), key);
    g_free(*slot);
    *slot = g_strdup(value);
    return 0;
}

int store_spec_set_config(store_spec_t *spec, const msilo_config_t *cfg)
{
    if (!spec || !cfg)
        return MSILO_EINVAL;
#ifdef STORE_OPEN_HAVE_POSTGRES
    if (spec->kind == STORE_KIND_POSTGRES)
        return backend_result(spec, msilo_pg_options_from_config(spec->pg, cfg));
#endif
    static const char *const keys[] = { "db_url", "db_table" };
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        const char *v = msilo_config_get_string(cfg, keys[i]);
        int e = v ? store_spec_set(spec, keys[i], v) : 0;
        if (e)
            return e;
    }
    return 0;
}

int store_spec_migrate(store_spec_t *spec, unsigned flags, size_t *ret_changes)
{
    if (!spec)
        return MSILO_EINVAL;
    size_t changes = 0;
    int e = 0;
    switch (spec->kind) {
#ifdef STORE_OPEN_HAVE_POSTGRES
    case STORE_KIND_POSTGRES: {
        unsigned pg_flags = (flags & STORE_OPEN_KEEP_ID) ? MSILO_PG_MIGRATE_KEEP_ID : 0;
        e = backend_result(spec, msilo_pg_migrate(spec->pg, pg_flags, &changes));
        break;
    }
#endif
#ifdef STORE_OPEN_HAVE_SQLITE
    case STORE_KIND_SQLITE:
        e = spec->url ? backend_result(spec, msilo_sqlite_migrate(spec->url, spec->table, &changes))
                      : url_unset(spec);
        break;
#endif
    default: /* memory: there is no table */
        break;
    }
    if (!e && ret_changes)
        *ret_changes = changes;
    return e;
}

int store_spec_open(store_spec_t *spec, msilo_store_t **ret_store)
{
    if (!spec || !ret_store)
        return MSILO_EINVAL;
    msilo_store_t *store = NULL;
    int e = MSILO_ENOTSUP; /* not reached: store_spec_new() refuses what is not built */
    switch (spec->kind) {
    case STORE_KIND_MEMORY:
        e = backend_result(spec, msilo_memory_store_new(&store));
        break;
#ifdef STORE_OPEN_HAVE_SQLITE
    case STORE_KIND_SQLITE:
        e = spec->url ? backend_result(spec, msilo_sqlite_store_new_table(&store, spec->url,
                                                                          spec->table))
                      : url_unset(spec);
        break;
#endif
#ifdef STORE_OPEN_HAVE_POSTGRES
    case STORE_KIND_POSTGRES:
        e = backend_result(spec, msilo_pg_store_new(&store, spec->pg));
        break;
#endif
    default:
        break;
    }
    if (!e)
        *ret_store = store;
    return e;
}

const char *store_spec_error(const store_spec_t *spec)
{
    return spec && spec->error ? spec->error : "";
}

int store_open(store_kind_t kind, const msilo_config_t *cfg, unsigned flags,
               msilo_store_t **ret_store, size_t *ret_changes, char **ret_error)
{
    store_spec_t *spec = NULL;
    if (ret_changes)
        *ret_changes = 0;
    int e = ret_store && (cfg || kind == STORE_KIND_MEMORY) ? store_spec_new(&spec, kind)
                                                            : MSILO_EINVAL;
    if (!e && cfg)
        e = store_spec_set_config(spec, cfg);
    if (!e && (flags & STORE_OPEN_MIGRATE))
        e = store_spec_migrate(spec, flags, ret_changes);
    if (!e)
        e = store_spec_open(spec, ret_store);
    if (e && ret_error) {
        if (spec)
            *ret_error = g_strdup(store_spec_error(spec));
        else if (e == MSILO_ENOTSUP)
            *ret_error = g_strdup_printf("the %s store is not built in this program",
                                         store_kind_name(kind));
        else
            *ret_error = g_strdup("store_open: bad arguments");
    }
    store_spec_free(spec);
    return e;
}
