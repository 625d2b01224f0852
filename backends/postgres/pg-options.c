/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Options of the PostgreSQL store, addressed by the msilo parameter names. */
#include "pg-internal.h"

#include <string.h>

/* sc_* keys, in pg_col_t order. Their defaults, like db_table's, are
 * libmsilo's (lib/config.c, read through msilo_config_key_find()): the msilo
 * parameters have one table of names and defaults, whoever reads them. */
static const char *const named_keys[PG_COL_NAMED] = {
    [PG_COL_ID] = "sc_mid",
    [PG_COL_FROM] = "sc_from",
    [PG_COL_TO] = "sc_to",
    [PG_COL_USER] = "sc_uri_user",
    [PG_COL_HOST] = "sc_uri_host",
    [PG_COL_INC] = "sc_inc_time",
    [PG_COL_EXP] = "sc_exp_time",
    [PG_COL_SND] = "sc_snd_time",
    [PG_COL_CTYPE] = "sc_ctype",
    [PG_COL_BODY] = "sc_body",
    [PG_COL_HDRS] = "sc_stored_hdrs",
    [PG_COL_CALLID] = "sc_callid",
};

/* libmsilo's own columns: fixed names, so that every deployment's table
 * looks the same to operators. */
static const char *const own_cols[PG_COL_N - PG_COL_NAMED] = {
    "lease_owner",
    "lease_until",
    "attempts",
    "next_try",
    "msg_key",
    "device",
    "lease_device",
};

/* libmsilo's default of the msilo parameter @p key (static text). Every key
 * asked for here has one there (tests/postgres checks them all). */
static const char *param_default(const char *key)
{
    const msilo_config_key_t *k = msilo_config_key_find(key);
    if (k && k->default_str)
        return k->default_str;
    g_assert_not_reached();
    return NULL;
}

const char *pg_options_col(const msilo_pg_options_t *o, int c)
{
    if (c >= PG_COL_NAMED)
        return own_cols[c - PG_COL_NAMED];
    return o->col[c] ? o->col[c] : param_default(named_keys[c]);
}

const char *pg_options_table(const msilo_pg_options_t *o)
{
    return o->table ? o->table : param_default("db_table");
}

int msilo_pg_options_new(msilo_pg_options_t **ret)
{
    if (!ret)
        return pg_fail(MSILO_EINVAL, "msilo_pg_options_new: ret is NULL");
    *ret = g_new0(msilo_pg_options_t, 1);
    return 0;
}

void msilo_pg_options_free(msilo_pg_options_t *o)
{
    if (!o)
        return;
    g_free(o->url);
    g_free(o->table);
    for (int i = 0; i < PG_COL_NAMED; i++)
        g_free(o->col[i]);
    g_free(o);
}

msilo_pg_options_t *pg_options_copy(const msilo_pg_options_t *o)
{
    msilo_pg_options_t *c = g_new0(msilo_pg_options_t, 1);
    c->url = g_strdup(o->url);
    c->table = g_strdup(o->table);
    for (int i = 0; i < PG_COL_NAMED; i++)
        c->col[i] = g_strdup(o->col[i]);
    return c;
}

/* Finds the slot of @p key; NULL when unknown. *ret_ident says whether the
 * value names an identifier (must not be empty). */
static char **slot(msilo_pg_options_t *o, const char *key, gboolean *ret_ident)
{
    *ret_ident = TRUE;
    if (strcmp(key, "db_url") == 0) {
        *ret_ident = FALSE;
        return &o->url;
    }
    if (strcmp(key, "db_table") == 0)
        return &o->table;
    for (int i = 0; i < PG_COL_NAMED; i++)
        if (strcmp(key, named_keys[i]) == 0)
            return &o->col[i];
    return NULL;
}

int msilo_pg_options_set(msilo_pg_options_t *o, const char *key, const char *value)
{
    if (!o || !key)
        return pg_fail(MSILO_EINVAL, "msilo_pg_options_set: bad arguments");
    gboolean ident;
    char **p = slot(o, key, &ident);
    if (!p)
        return pg_fail(MSILO_ECONFIG, "unknown PostgreSQL store option '%s'", key);
    if (value && !*value)
        return pg_fail(MSILO_ECONFIG, "option '%s' is empty", key);
    if (value && ident && strlen(value) > 63)
        /* PostgreSQL would silently truncate it (NAMEDATALEN - 1). */
        return pg_fail(MSILO_ECONFIG, "option '%s': identifier longer than 63 bytes", key);
    g_free(*p);
    *p = g_strdup(value);
    return 0;
}

const char *msilo_pg_options_get(const msilo_pg_options_t *o, const char *key)
{
    if (!o || !key)
        return NULL;
    gboolean ident;
    char **p = slot((msilo_pg_options_t *)o, key, &ident);
    if (!p)
        return NULL;
    if (*p || p == &o->url)
        return *p;
    if (p == &o->table)
        return pg_options_table(o);
    return pg_options_col(o, (int)(p - o->col));
}

int msilo_pg_options_from_config(msilo_pg_options_t *opts, const msilo_config_t *cfg)
{
    if (!opts || !cfg)
        return pg_fail(MSILO_EINVAL, "msilo_pg_options_from_config: bad arguments");
    const char *keys[2 + PG_COL_NAMED] = { "db_url", "db_table" };
    for (int i = 0; i < PG_COL_NAMED; i++)
        keys[2 + i] = named_keys[i];
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        const char *v = msilo_config_get_string(cfg, keys[i]);
        if (!v)
            continue;
        int e = msilo_pg_options_set(opts, keys[i], v);
        if (e)
            return e;
    }
    return 0;
}
