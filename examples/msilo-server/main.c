/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msilo-server: command line, configuration file, start-up and shutdown. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>

#include "server.h"

#include <sofia-sip/su_log.h>

#ifdef MSILO_SERVER_HAVE_POSTGRES
#include <msilo/postgres.h>
#endif

#define DEFAULT_LISTEN "sip:127.0.0.1:5060"

/* ---- configuration file ----------------------------------------------------- */

/* Line number of "key =" inside [group] of @text, or 0 when not found. */
static unsigned find_line(const char *text, const char *group, const char *key)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    bool in_group = false;
    size_t klen = strlen(key);

    for (unsigned i = 0; lines[i]; i++) {
        const char *l = lines[i];
        while (*l == ' ' || *l == '\t')
            l++;
        if (*l == '[') {
            const char *end = strchr(l, ']');
            in_group = end && (size_t)(end - l - 1) == strlen(group) &&
                       strncmp(l + 1, group, strlen(group)) == 0;
            continue;
        }
        if (in_group && strncmp(l, key, klen) == 0) {
            const char *p = l + klen;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == '=')
                return i + 1;
        }
    }
    return 0;
}

static bool parse_uint(const char *text, unsigned max, unsigned *ret)
{
    guint64 v;
    if (!g_ascii_string_to_unsigned(text, 10, 0, max, &v, NULL))
        return false;
    *ret = (unsigned)v;
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
        if (strcmp(value, "memory") != 0 && strcmp(value, "postgres") != 0) {
            *ret_why = g_strdup_printf("store '%s' is neither memory nor postgres", value);
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
bad_number:
    *ret_why = g_strdup_printf("'%s' is not a valid number of %s", value,
                               strstr(key, "timeout") ? "milliseconds" : "seconds");
    return false;
}

/* Loads @path: [msilo] holds msilo configuration keys, [server] this program's. */
static bool load_config_file(const char *path, msilo_config_t *cfg, server_options_t *opt)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    g_auto(GStrv) groups = NULL;

    if (!g_file_get_contents(path, &text, NULL, &error) ||
        !g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_NONE, &error)) {
        fprintf(stderr, "msilo-server: %s: %s\n", path, error->message);
        return false;
    }
    groups = g_key_file_get_groups(kf, NULL);
    for (size_t g = 0; groups[g]; g++) {
        const char *group = groups[g];
        bool is_msilo = strcmp(group, "msilo") == 0;
        g_auto(GStrv) keys = NULL;

        if (!is_msilo && strcmp(group, "server") != 0) {
            fprintf(stderr, "msilo-server: %s: unknown group [%s] (expected [msilo] or [server])\n",
                    path, group);
            return false;
        }
        keys = g_key_file_get_keys(kf, group, NULL, NULL);
        for (size_t k = 0; keys && keys[k]; k++) {
            const char *key = keys[k];
            g_autofree char *value = g_key_file_get_string(kf, group, key, &error);
            g_autofree char *why = NULL;
            bool ok;

            if (!value) {
                why = g_strdup(error->message);
                g_clear_error(&error);
                ok = false;
            } else if (is_msilo) {
                /* An empty value means "unset" (the default). */
                int r = msilo_config_set(cfg, key, value[0] ? value : NULL);
                ok = r == 0;
                if (!ok)
                    why = g_strdup_printf("%s%s%s", msilo_strerror(r),
                                          msilo_error_detail()[0] ? ": " : "",
                                          msilo_error_detail());
            } else {
                ok = set_server_key(opt, key, value, &why);
            }
            if (!ok) {
                fprintf(stderr, "msilo-server: %s:%u: [%s] %s: %s\n", path,
                        find_line(text, group, key), group, key, why);
                return false;
            }
        }
    }
    return true;
}

/* A commented configuration file with every key and its default. */
static void print_config(void)
{
    size_t n = 0;
    const msilo_config_key_t *keys = msilo_config_keys(&n);

    printf("# msilo-server configuration (GLib key file).\n"
           "# Every key is optional; a commented key shows its default.\n"
           "# Escapes: \\r \\n \\t \\s \\\\. No quotes around values.\n\n"
           "[server]\n"
           "# SIP URI to listen on (UDP and TCP)\n#listen = %s\n"
           "# memory or postgres\n#store = memory\n"
           "# ms to wait for an online user's answer before storing the message\n"
           "#forward_timeout = 4000\n"
           "# ms to wait for an answer to a delivered offline message\n"
           "#delivery_timeout = 8000\n"
           "# registration lifetime without Expires (seconds) and its maximum\n"
           "#default_expires = 120\n#max_expires = 3600\n"
           "# domains served (comma-separated); requests for others get 404.\n"
           "# Unset: every domain is local.\n#domains = \n\n[msilo]\n",
           DEFAULT_LISTEN);
    for (size_t i = 0; i < n; i++) {
        const msilo_config_key_t *k = &keys[i];
        printf("# %s (%s)\n", k->help ? k->help : "",
               k->type == MSILO_CONFIG_INT ? "integer"
               : k->type == MSILO_CONFIG_BOOL ? "boolean"
                                              : "string");
        printf("#%s = %s\n\n", k->name, k->default_str ? k->default_str : "");
    }
}

/* ---- logging ------------------------------------------------------------------- */

static void engine_log(msilo_log_level_t level, const char *message, void *data)
{
    GLogLevelFlags l = level <= MSILO_LOG_ERROR     ? G_LOG_LEVEL_CRITICAL
                       : level <= MSILO_LOG_WARNING ? G_LOG_LEVEL_WARNING
                       : level <= MSILO_LOG_INFO    ? G_LOG_LEVEL_INFO
                                                    : G_LOG_LEVEL_DEBUG;
    (void)data;
    g_log_structured("msilo", l, "MESSAGE", "%s", message);
}

/* Sofia logs in fragments; collect whole lines and pass them on as debug. */
static void sofia_log(void *stream, char const *fmt, va_list ap) G_GNUC_PRINTF(2, 0);
static void sofia_log(void *stream, char const *fmt, va_list ap)
{
    static GString *line;
    char *nl;
    (void)stream;
    if (!line)
        line = g_string_new(NULL);
    g_string_append_vprintf(line, fmt, ap);
    while ((nl = strchr(line->str, '\n'))) {
        *nl = '\0';
        if (line->str[0])
            g_log_structured("sofia", G_LOG_LEVEL_DEBUG, "MESSAGE", "%s", line->str);
        g_string_erase(line, 0, nl - line->str + 1);
    }
}

/* ---- statistics and signals ------------------------------------------------------- */

static void print_stats(server_t *s)
{
    GString *out = g_string_new("statistics:");
    for (int i = 0; i < MSILO_STAT_COUNT_; i++) {
        const char *name = msilo_stat_name((msilo_stat_t)i);
        if (name)
            g_string_append_printf(out, " %s=%" PRIu64, name,
                                   msilo_engine_stat(s->engine, (msilo_stat_t)i));
    }
    g_string_append_printf(out,
                           " registers=%" PRIu64 " bindings=%zu messages=%" PRIu64
                           " forwarded=%" PRIu64 " relayed_2xx=%" PRIu64
                           " forward_failed=%" PRIu64,
                           s->n_register, s->registrar ? registrar_count(s->registrar) : 0,
                           s->n_message, s->n_forwarded, s->n_relayed_2xx, s->n_forward_failed);
    g_message("%s", out->str);
    g_string_free(out, TRUE);
}

static gboolean on_quit(gpointer data)
{
    server_t *s = data;
    g_message("signal received: shutting down");
    g_main_loop_quit(s->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean on_usr1(gpointer data)
{
    print_stats(data);
    return G_SOURCE_CONTINUE;
}

static gboolean expire_flag(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Lets stores and deliveries in progress finish (at most @ms milliseconds). */
static void drain(server_t *s, unsigned ms)
{
    gboolean expired = FALSE;
    guint id = g_timeout_add(ms, expire_flag, &expired);
    while (!expired && (msilo_engine_pending(s->engine) > 0 ||
                        msilo_engine_stat(s->engine, MSILO_STAT_IN_FLIGHT) > 0 ||
                        g_hash_table_size(s->stores) > 0))
        g_main_context_iteration(NULL, TRUE);
    if (!expired)
        g_source_remove(id);
}

/* ---- main ------------------------------------------------------------------------ */

#ifdef MSILO_SERVER_HAVE_POSTGRES
/* The PostgreSQL store on db_url/db_table/sc_* of @cfg; @migrate first
 * creates or upgrades the table (msilo_pg_migrate()). */
static int open_pg_store(const msilo_config_t *cfg, bool migrate, msilo_store_t **ret)
{
    msilo_pg_options_t *opts = NULL;
    size_t changes = 0;
    int r = msilo_pg_options_new(&opts);

    if (r == 0)
        r = msilo_pg_options_from_config(opts, cfg);
    if (r == 0 && migrate) {
        r = msilo_pg_migrate(opts, 0, &changes);
        if (r == 0 && changes)
            g_message("table %s: %zu schema changes applied", msilo_pg_options_get(opts, "db_table"),
                      changes);
    }
    if (r == 0)
        r = msilo_pg_store_new(ret, opts);
    if (r < 0)
        fprintf(stderr, "msilo-server: postgres store: %s: %s%s\n", msilo_strerror(r),
                msilo_pg_error_detail(),
                r == MSILO_ECONFIG && !migrate ? " (create or upgrade the table with --migrate "
                                                 "or msilo-admin migrate)"
                                               : "");
    msilo_pg_options_free(opts);
    return r;
}
#endif

static int open_store(const char *kind, const msilo_config_t *cfg, bool migrate,
                      msilo_store_t **ret)
{
    if (strcmp(kind, "memory") == 0)
        return msilo_memory_store_new(ret);
#ifdef MSILO_SERVER_HAVE_POSTGRES
    if (strcmp(kind, "postgres") == 0)
        return open_pg_store(cfg, migrate, ret);
#else
    (void)cfg;
    (void)migrate;
    if (strcmp(kind, "postgres") == 0) {
        fprintf(stderr, "msilo-server: the postgres store is not built in this binary\n");
        return MSILO_ENOTSUP;
    }
#endif
    fprintf(stderr, "msilo-server: unknown store '%s' (memory or postgres)\n", kind);
    return MSILO_EINVAL;
}

int main(int argc, char **argv)
{
    g_autofree char *config_path = NULL, *listen = NULL, *store_kind = NULL, *db_url = NULL;
    gboolean version = FALSE, check = FALSE, print = FALSE, migrate = FALSE;
    int forward_timeout = -1;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
          "Configuration file (GLib key file: [msilo] and [server] groups)", "FILE" },
        { "listen", 'l', 0, G_OPTION_ARG_STRING, &listen,
          "SIP URI to listen on, UDP and TCP (default " DEFAULT_LISTEN ")", "URI" },
        { "store", 's', 0, G_OPTION_ARG_STRING, &store_kind,
          "Message store: memory (default) or postgres", "KIND" },
        { "db-url", 'd', 0, G_OPTION_ARG_STRING, &db_url,
          "Database URL for the postgres store (msilo key db_url)", "URL" },
        { "migrate", 0, 0, G_OPTION_ARG_NONE, &migrate,
          "postgres: create the table, or upgrade an OpenSIPS/Kamailio one, first", NULL },
        { "forward-timeout", 0, 0, G_OPTION_ARG_INT, &forward_timeout,
          "Milliseconds to wait for an online user before storing (default 4000)", "MS" },
        { "check-config", 0, 0, G_OPTION_ARG_NONE, &check,
          "Check the configuration and exit", NULL },
        { "print-config", 0, 0, G_OPTION_ARG_NONE, &print,
          "Print a commented configuration file with every key and exit", NULL },
        { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    g_autoptr(GOptionContext) octx = g_option_context_new("- SIP registrar and offline message store");
    g_autoptr(GError) error = NULL;
    msilo_config_t *cfg = NULL;
    server_t s = { 0 };
    g_autofree char *where = NULL;
    int r, status = 1;

    g_option_context_add_main_entries(octx, entries, NULL);
    g_option_context_set_summary(octx,
        "A SIP registrar + MESSAGE proxy that stores messages for offline users\n"
        "and delivers them when they register (libmsilo on Sofia-SIP).\n"
        "With no options it listens on " DEFAULT_LISTEN " (UDP and TCP) with the\n"
        "in-memory store. SIGUSR1 prints statistics; SIGTERM/SIGINT stop it.");
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "msilo-server: %s (try --help)\n", error->message);
        return 1;
    }
    if (argc > 1) {
        fprintf(stderr, "msilo-server: unexpected argument '%s' (try --help)\n", argv[1]);
        return 1;
    }
    if (version) {
        printf("msilo-server %s (libmsilo %s)\n", MSILO_SERVER_VERSION, msilo_version());
        return 0;
    }
    if (print) {
        print_config();
        return 0;
    }

    s.opt.listen = g_strdup(DEFAULT_LISTEN);
    s.opt.store = g_strdup("memory");
    s.opt.forward_timeout = 4000;
    s.opt.delivery_timeout = 8000;
    s.opt.default_expires = 120; /* registrar default_expires of the sample config */
    s.opt.max_expires = 3600;

    if (msilo_config_new(&cfg) < 0) {
        fprintf(stderr, "msilo-server: out of memory\n");
        return 1;
    }
    if (config_path && !load_config_file(config_path, cfg, &s.opt))
        goto out;
    if (listen) {
        g_free(s.opt.listen);
        s.opt.listen = g_strdup(listen);
    }
    if (store_kind) {
        g_free(s.opt.store);
        s.opt.store = g_strdup(store_kind);
    }
    if (forward_timeout >= 0)
        s.opt.forward_timeout = (unsigned)forward_timeout;
    if (db_url && (r = msilo_config_set(cfg, "db_url", db_url)) < 0) {
        fprintf(stderr, "msilo-server: --db-url: %s\n", msilo_error_detail());
        goto out;
    }
    if ((r = msilo_config_validate(cfg)) < 0) {
        fprintf(stderr, "msilo-server: %s: %s\n", config_path ? config_path : "configuration",
                msilo_error_detail());
        goto out;
    }
    if (strcmp(s.opt.store, "memory") != 0 && strcmp(s.opt.store, "postgres") != 0) {
        fprintf(stderr, "msilo-server: unknown store '%s' (memory or postgres)\n", s.opt.store);
        goto out;
    }
#ifndef MSILO_SERVER_HAVE_POSTGRES
    if (strcmp(s.opt.store, "postgres") == 0) {
        fprintf(stderr, "msilo-server: the postgres store is not built in this binary\n");
        goto out;
    }
#endif
    if (check) {
        printf("configuration OK\n");
        status = 0;
        goto out;
    }

    su_init();
    su_log_redirect(NULL, sofia_log, NULL);
    s.root = su_glib_root_create(&s);
    if (!s.root) {
        fprintf(stderr, "msilo-server: cannot create the Sofia root\n");
        su_deinit();
        goto out;
    }
    s.root_source = su_glib_root_gsource(s.root);
    /* Without this GLib "blocks" the source around each dispatch: it removes
     * and re-adds every Sofia socket from the poll set, and each of those
     * writes the context's eventfd (GLib 2.74: g_main_context_add_poll /
     * remove_poll call g_wakeup_signal). With one UDP datagram per dispatch
     * that was 4 write()s, one extra read() and poll() per SIP message.
     * Recursion cannot happen here: nothing in the server iterates the main
     * context from inside a Sofia callback (drain() runs after the loop). */
    g_source_set_can_recurse(s.root_source, TRUE);
    g_source_attach(s.root_source, NULL);

    if (open_store(s.opt.store, cfg, migrate, &s.store) < 0)
        goto stop;
    if (server_sip_start(&s, &error) < 0) {
        fprintf(stderr, "msilo-server: %s\n", error->message);
        goto stop;
    }
    if ((r = msilo_engine_new(&s.engine, cfg, s.store, s.transport, NULL)) < 0) {
        fprintf(stderr, "msilo-server: %s: %s\n", msilo_strerror(r), msilo_error_detail());
        goto stop;
    }
    msilo_engine_set_log(s.engine, engine_log, NULL);
    s.snd_time_header = msilo_config_get_string(cfg, "snd_time_avp");

    s.loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGTERM, on_quit, &s);
    g_unix_signal_add(SIGINT, on_quit, &s);
    g_unix_signal_add(SIGUSR1, on_usr1, &s);

    where = server_sip_listening(&s);
    g_message("msilo-server %s listening on %s (%s), store %s", MSILO_SERVER_VERSION, where,
              s.opt.listen, s.opt.store);
    g_main_loop_run(s.loop);

    /* Shutdown: nothing accepted is lost. Forwards in progress are stored,
     * stores and deliveries in flight get up to 3 s to finish, then the
     * engine completes what is left (see msilo_engine_free()). */
    server_sip_drain(&s);
    drain(&s, 3000);
    print_stats(&s);
    status = 0;

stop:
    msilo_engine_free(s.engine);
    s.engine = NULL;
    server_sip_stop(&s);
    msilo_store_free(s.store);
    if (s.loop)
        g_main_loop_unref(s.loop);
    g_source_destroy(s.root_source);
    su_root_destroy(s.root);
    su_deinit();
    if (status == 0)
        g_message("stopped");
out:
    msilo_config_free(cfg);
    g_free(s.opt.listen);
    g_free(s.opt.store);
    g_strfreev(s.opt.domains);
    return status;
}
