/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msilo-server: the configuration file loader (no Sofia-SIP in here, so
 * that tests/fuzz can build it on its own). */
#include <string.h>

#include "config.h"

#ifdef MSILO_SERVER_HAVE_POSTGRES
#include <msilo/postgres.h>
#endif

/* ---- configuration file ----------------------------------------------------- */

static bool parse_uint(const char *text, unsigned max, unsigned *ret)
{
    guint64 v;
    if (!g_ascii_string_to_unsigned(text, 10, 0, max, &v, NULL))
        return false;
    *ret = (unsigned)v;
    return true;
}

/* "SHA-256, MD5": the algorithms in challenge order, each once. */
static bool parse_algorithms(const char *value, int *ret, char **ret_why)
{
    g_auto(GStrv) names = g_strsplit_set(value, ", ", -1);
    int algs[SERVER_DIGEST_MAX + 1] = { 0 };
    size_t n = 0;
    for (size_t i = 0; names[i]; i++) {
        int a;
        if (!names[i][0])
            continue;
        if (g_ascii_strcasecmp(names[i], "SHA-256") == 0)
            a = SERVER_DIGEST_SHA256;
        else if (g_ascii_strcasecmp(names[i], "MD5") == 0)
            a = SERVER_DIGEST_MD5;
        else {
            *ret_why = g_strdup_printf("'%s' is not a Digest algorithm (SHA-256, MD5)", names[i]);
            return false;
        }
        for (size_t j = 0; j < n; j++)
            if (algs[j] == a) {
                *ret_why = g_strdup_printf("'%s' is listed twice", names[i]);
                return false;
            }
        algs[n++] = a;
    }
    if (!n) {
        *ret_why = g_strdup("auth_algorithms needs SHA-256, MD5 or both");
        return false;
    }
    memcpy(ret, algs, sizeof(algs));
    return true;
}

/* "1"/"0"/"true"/"false" (any case). */
static bool parse_bool(const char *text, bool *ret)
{
    if (strcmp(text, "1") == 0 || g_ascii_strcasecmp(text, "true") == 0)
        *ret = true;
    else if (strcmp(text, "0") == 0 || g_ascii_strcasecmp(text, "false") == 0)
        *ret = false;
    else
        return false;
    return true;
}

/* Applies one [server] key. */
static bool set_server_key(server_options_t *opt, const char *key, const char *value,
                           char **ret_why)
{
    if (strcmp(key, "listen") == 0) {
        g_free(opt->listen);
        opt->listen = g_strdup(value);
    } else if (strcmp(key, "store") == 0) {
        if (!server_store_kind_known(value)) {
            *ret_why = g_strdup_printf("store '%s' is not memory, sqlite or postgres", value);
            return false;
        }
        g_free(opt->store);
        opt->store = g_strdup(value);
    } else if (strcmp(key, "forward_timeout") == 0) {
        if (!parse_uint(value, 600000, &opt->forward_timeout))
            goto bad_number;
    } else if (strcmp(key, "delivery_timeout") == 0) {
        if (!parse_uint(value, 600000, &opt->delivery_timeout))
            goto bad_number;
    } else if (strcmp(key, "default_expires") == 0) {
        if (!parse_uint(value, 86400 * 365, &opt->default_expires))
            goto bad_number;
    } else if (strcmp(key, "max_expires") == 0) {
        if (!parse_uint(value, 86400 * 365, &opt->max_expires) || opt->max_expires == 0)
            goto bad_number;
    } else if (strcmp(key, "max_message_size") == 0) {
        if (!parse_uint(value, 64u << 20, &opt->max_message_size) || opt->max_message_size < 1024)
            goto bad_size;
    } else if (strcmp(key, "max_headers") == 0) {
        if (!parse_uint(value, 100000, &opt->max_headers) || opt->max_headers < 8)
            goto bad_size;
    } else if (strcmp(key, "max_header_size") == 0) {
        if (!parse_uint(value, 64u << 20, &opt->max_header_size) || opt->max_header_size < 256)
            goto bad_size;
    } else if (strcmp(key, "max_stored_headers") == 0) {
        if (!parse_uint(value, 64u << 20, &opt->max_stored_headers))
            goto bad_size;
    } else if (strcmp(key, "auth_max_failures") == 0) {
        if (!parse_uint(value, 1000000, &opt->auth_max_failures))
            goto bad_size;
    } else if (strcmp(key, "auth_failure_window") == 0) {
        if (!parse_uint(value, 86400, &opt->auth_failure_window) || opt->auth_failure_window == 0)
            goto bad_number;
    } else if (strcmp(key, "max_bindings") == 0) {
        if (!parse_uint(value, 100000, &opt->max_bindings) || opt->max_bindings == 0)
            goto bad_size;
    } else if (strcmp(key, "dump_backoff") == 0) {
        if (!parse_uint(value, 86400, &opt->dump_backoff))
            goto bad_number;
    } else if (strcmp(key, "memory_max_messages") == 0 || strcmp(key, "memory_max_bytes") == 0) {
        guint64 v;
        if (!g_ascii_string_to_unsigned(value, 10, 0, G_MAXINT64, &v, NULL))
            goto bad_size;
        if (strcmp(key, "memory_max_messages") == 0)
            opt->memory_max_messages = v;
        else
            opt->memory_max_bytes = v;
    } else if (strcmp(key, "sqlite_max_messages") == 0 || strcmp(key, "sqlite_max_bytes") == 0) {
        guint64 v;
        if (!g_ascii_string_to_unsigned(value, 10, 0, G_MAXINT64, &v, NULL))
            goto bad_size;
        if (strcmp(key, "sqlite_max_messages") == 0)
            opt->sqlite_max_messages = v;
        else
            opt->sqlite_max_bytes = v;
    } else if (strcmp(key, "tcp_max_connections") == 0) {
        if (!parse_uint(value, 1000000, &opt->tcp_max_connections))
            goto bad_size;
    } else if (strcmp(key, "metrics_max_connections") == 0) {
        if (!parse_uint(value, 100000, &opt->metrics_max_connections) ||
            opt->metrics_max_connections == 0)
            goto bad_size;
    } else if (strcmp(key, "metrics_timeout") == 0) {
        if (!parse_uint(value, 600000, &opt->metrics_timeout) || opt->metrics_timeout < 100)
            goto bad_number;
    } else if (strcmp(key, "max_transactions") == 0) {
        if (!parse_uint(value, 10000000, &opt->max_transactions))
            goto bad_size;
    } else if (strcmp(key, "tcp_idle_timeout") == 0) {
        if (!parse_uint(value, 86400000, &opt->tcp_idle_timeout) || opt->tcp_idle_timeout < 1000)
            goto bad_number;
    } else if (strcmp(key, "tcp_message_timeout") == 0) {
        if (!parse_uint(value, 600000, &opt->tcp_message_timeout) || opt->tcp_message_timeout < 100)
            goto bad_number;
    } else if (strcmp(key, "mwi") == 0) {
        if (!parse_bool(value, &opt->mwi)) {
            *ret_why = g_strdup_printf("'%s' is not a boolean (0/1/true/false)", value);
            return false;
        }
    } else if (strcmp(key, "subscribe_min_expires") == 0) {
        if (!parse_uint(value, 86400, &opt->subscribe_min_expires) ||
            opt->subscribe_min_expires == 0)
            goto bad_number;
    } else if (strcmp(key, "subscribe_max_expires") == 0) {
        if (!parse_uint(value, 86400 * 7, &opt->subscribe_max_expires) ||
            opt->subscribe_max_expires == 0)
            goto bad_number;
    } else if (strcmp(key, "store_for") == 0) {
        if (strcmp(value, "any") == 0)
            opt->store_for = STORE_FOR_ANY;
        else if (strcmp(value, "users_file") == 0)
            opt->store_for = STORE_FOR_USERS_FILE;
        else if (strcmp(value, "registered") == 0)
            opt->store_for = STORE_FOR_REGISTERED;
        else {
            *ret_why = g_strdup_printf("store_for '%s' is not any, users_file or registered",
                                       value);
            return false;
        }
    } else if (strcmp(key, "registered_within") == 0) {
        if (!parse_uint(value, 86400 * 3650, &opt->registered_within) ||
            opt->registered_within == 0)
            goto bad_number;
    } else if (strcmp(key, "auth_users") == 0) {
        g_free(opt->auth_users);
        opt->auth_users = value[0] ? g_strdup(value) : NULL;
    } else if (strcmp(key, "auth_realm") == 0) {
        if (!value[0] || strpbrk(value, "\"\\\r\n")) {
            *ret_why = g_strdup("the realm must be non-empty, without quotes, backslashes or line breaks");
            return false;
        }
        g_free(opt->auth_realm);
        opt->auth_realm = g_strdup(value);
    } else if (strcmp(key, "auth_message") == 0) {
        if (strcmp(value, "1") == 0 || g_ascii_strcasecmp(value, "true") == 0)
            opt->auth_message = true;
        else if (strcmp(value, "0") == 0 || g_ascii_strcasecmp(value, "false") == 0)
            opt->auth_message = false;
        else {
            *ret_why = g_strdup_printf("'%s' is not a boolean (0/1/true/false)", value);
            return false;
        }
    } else if (strcmp(key, "auth_algorithms") == 0) {
        if (!parse_algorithms(value, opt->auth_algorithms, ret_why))
            return false;
    } else if (strcmp(key, "metrics") == 0) {
        g_free(opt->metrics);
        opt->metrics = value[0] ? g_strdup(value) : NULL;
    } else if (strcmp(key, "domains") == 0) {
        g_strfreev(opt->domains);
        opt->domains = NULL;
        if (value[0]) {
            opt->domains = g_strsplit_set(value, ", ", -1);
            /* drop the empty pieces of "a, b" */
            size_t j = 0;
            for (size_t i = 0; opt->domains[i]; i++) {
                if (opt->domains[i][0])
                    opt->domains[j++] = opt->domains[i];
                else
                    g_free(opt->domains[i]);
            }
            opt->domains[j] = NULL;
        }
    } else {
        *ret_why = g_strdup_printf("unknown key '%s'", key);
        return false;
    }
    return true;
bad_size:
    *ret_why = g_strdup_printf("'%s' is not a valid limit for %s (see --print-config)", value, key);
    return false;
bad_number:
    *ret_why = g_strdup_printf("'%s' is not a valid number of %s", value,
                               strstr(key, "timeout") ? "milliseconds" : "seconds");
    return false;
}

/* Whether @url may be for libpq: any URL (scheme://, a typo included) or
 * key=value text that is not sqlite:. A sqlite: URL or a bare file path
 * holds no password and is shown as it is. */
static bool is_conninfo(const char *url)
{
    return !g_str_has_prefix(url, "sqlite:") && (strstr(url, "://") || strchr(url, '='));
}

/* Whether a database URL/conninfo carries a password, as libpq reads it. */
bool server_url_has_password(const char *url)
{
    if (!url || !is_conninfo(url))
        return false;
#ifdef MSILO_SERVER_HAVE_POSTGRES
    return msilo_pg_conninfo_has_password(url) != 0;
#else
    return true; /* no libpq to read it with: treat it as secret */
#endif
}

/* @url for the log: a conninfo as libpq parsed it with the password masked
 * (g_free it); anything else as it is. */
char *server_mask_db_url(const char *url)
{
    if (!url)
        return g_strdup("(unset)");
    if (!is_conninfo(url))
        return g_strdup(url);
#ifdef MSILO_SERVER_HAVE_POSTGRES
    return msilo_pg_conninfo_mask(url);
#else
    return g_strdup("(conninfo hidden)");
#endif
}

/* The [server] group of msilo_config_load_data(); every other group but
 * [msilo] is refused. */
static int server_group(const char *group, const char *key, const char *value, char **ret_why,
                        void *data)
{
    if (strcmp(group, "server") != 0) {
        *ret_why = g_strdup("unknown group (expected [msilo] or [server])");
        return MSILO_ECONFIG;
    }
    if (!key)
        return 0;
    return set_server_key(data, key, value, ret_why) ? 0 : MSILO_ECONFIG;
}

/* Loads the text of a configuration file: [msilo] holds msilo configuration
 * keys (libmsilo's loader), [server] this program's. Stops at the first error
 * (the caller does not start) with a message naming the line in *ret_error.
 * @path only names the file in messages. */
bool server_config_load_data(const char *path, const char *text, msilo_config_t *cfg,
                             server_options_t *opt, bool *ret_has_password, char **ret_error)
{
    *ret_error = NULL;
    if (msilo_config_load_data(cfg, text, path, server_group, opt) < 0) {
        *ret_error = g_strdup(msilo_error_detail());
        return false;
    }
    /* a db_url the file set (not the default) that holds a password */
    const char *url = msilo_config_get_string(cfg, "db_url");
    msilo_config_t *dflt = NULL;
    if (url && msilo_config_new(&dflt) == 0) {
        const char *d = msilo_config_get_string(dflt, "db_url");
        if ((!d || strcmp(d, url) != 0) && server_url_has_password(url))
            *ret_has_password = true;
        msilo_config_free(dflt);
    }
    return true;
}

void server_options_init(server_options_t *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->listen = g_strdup(DEFAULT_LISTEN);
    opt->store = g_strdup("memory");
    opt->forward_timeout = DEFAULT_FORWARD_TIMEOUT;
    opt->delivery_timeout = DEFAULT_DELIVERY_TIMEOUT;
    opt->default_expires = DEFAULT_EXPIRES;
    opt->max_expires = DEFAULT_MAX_EXPIRES;
    opt->max_message_size = DEFAULT_MAX_MESSAGE_SIZE;
    opt->max_headers = DEFAULT_MAX_HEADERS;
    opt->max_header_size = DEFAULT_MAX_HEADER_SIZE;
    opt->max_stored_headers = DEFAULT_MAX_STORED_HEADERS;
    opt->auth_realm = g_strdup("msilo");
    opt->auth_algorithms[0] = SERVER_DIGEST_SHA256;
    opt->auth_algorithms[1] = SERVER_DIGEST_MD5;
    opt->max_bindings = DEFAULT_MAX_BINDINGS;
    opt->auth_max_failures = DEFAULT_AUTH_MAX_FAILURES;
    opt->auth_failure_window = DEFAULT_AUTH_FAILURE_WINDOW;
    opt->dump_backoff = DEFAULT_DUMP_BACKOFF;
    opt->memory_max_messages = DEFAULT_MEMORY_MAX_MESSAGES;
    opt->memory_max_bytes = DEFAULT_MEMORY_MAX_BYTES;
    opt->sqlite_max_messages = DEFAULT_SQLITE_MAX_MESSAGES;
    opt->sqlite_max_bytes = DEFAULT_SQLITE_MAX_BYTES;
    opt->tcp_max_connections = DEFAULT_TCP_MAX_CONNECTIONS;
    opt->tcp_idle_timeout = DEFAULT_TCP_IDLE_TIMEOUT;
    opt->tcp_message_timeout = DEFAULT_TCP_MESSAGE_TIMEOUT;
    opt->max_transactions = DEFAULT_MAX_TRANSACTIONS;
    opt->metrics_max_connections = DEFAULT_METRICS_MAX_CONNECTIONS;
    opt->metrics_timeout = DEFAULT_METRICS_TIMEOUT;
    opt->mwi = true;
    opt->subscribe_min_expires = DEFAULT_SUBSCRIBE_MIN_EXPIRES;
    opt->subscribe_max_expires = DEFAULT_SUBSCRIBE_MAX_EXPIRES;
    opt->store_for = STORE_FOR_ANY;
    opt->registered_within = DEFAULT_REGISTERED_WITHIN;
}

bool server_store_kind_known(const char *kind)
{
    return strcmp(kind, "memory") == 0 || strcmp(kind, "postgres") == 0 ||
           strcmp(kind, "sqlite") == 0;
}

void server_options_clear(server_options_t *opt)
{
    g_free(opt->listen);
    g_free(opt->store);
    g_strfreev(opt->domains);
    g_free(opt->auth_users);
    g_free(opt->auth_realm);
    g_free(opt->metrics);
    memset(opt, 0, sizeof(*opt));
}

