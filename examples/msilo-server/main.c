/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msilo-server: command line, configuration file, start-up and shutdown. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server.h"

#include <sofia-sip/su_log.h>

#include <msilo/stores.h>
#ifdef MSILO_SERVER_HAVE_SQLITE
#include <msilo/sqlite.h>
#endif

/* Refuses a secret file that others may read. @what names it in the message. */
static bool private_enough(const char *path, const char *what)
{
    GStatBuf st;
    if (g_stat(path, &st) != 0) {
        fprintf(stderr, "msilo-server: %s: %s\n", path, g_strerror(errno));
        return false;
    }
    if (st.st_mode & S_IROTH) {
        fprintf(stderr,
                "msilo-server: %s is readable by others and %s: refusing it "
                "(chmod o-r %s)\n",
                path, what, path);
        return false;
    }
    return true;
}

/* Loads the configuration file @path (see server_config_load_data()). */
static bool load_config_file(const char *path, msilo_config_t *cfg, server_options_t *opt,
                             bool *ret_has_password)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL, *why = NULL;

    if (!g_file_get_contents(path, &text, NULL, &error)) {
        fprintf(stderr, "msilo-server: %s: %s\n", path, error->message);
        return false;
    }
    if (!server_config_load_data(path, text, cfg, opt, ret_has_password, &why)) {
        fprintf(stderr, "msilo-server: %s\n", why);
        return false;
    }
    return true;
}

/* A commented configuration file with every key and its default. */
static void print_config(void)
{

    printf("# msilo-server configuration (GLib key file).\n"
           "# Every key is optional; a commented key shows its default.\n"
           "# Escapes: \\r \\n \\t \\s \\\\. No quotes around values.\n\n"
           "[server]\n"
           "# SIP URI to listen on (UDP and TCP)\n#listen = %s\n"
           "# memory, sqlite (db_url = sqlite:///path) or postgres\n#store = memory\n"
           "# ms to wait for an online user's answer before storing the message\n"
           "#forward_timeout = 4000\n"
           "# ms to wait for an answer to a delivered offline message\n"
           "#delivery_timeout = 8000\n"
           "# registration lifetime without Expires (seconds) and its maximum\n"
           "#default_expires = 120\n#max_expires = 3600\n"
           "# domains served (comma-separated); requests for others get 404.\n"
           "# Unset: every domain is local.\n#domains = \n"
           "# size limits, checked before anything is stored: a whole request\n"
           "# (bytes, larger gets 413 from the SIP stack), header fields per\n"
           "# request, bytes of one header field, bytes of the extra headers\n"
           "# stored with a message (413 above each)\n"
           "#max_message_size = %u\n#max_headers = %u\n#max_header_size = %u\n"
           "#max_stored_headers = %u\n"
           "# Digest authentication of REGISTER (and, with auth_message, of\n"
           "# MESSAGE as its From user) against a users file of\n"
           "# user:password:realm or user:realm:HA1 lines (HA1: 32 hex digits for MD5,\n"
           "# 64 for SHA-256); unset = no authentication.\n"
           "# The file must not be readable by others.\n"
           "#auth_users = \n#auth_realm = msilo\n#auth_message = 0\n"
           "# Digest algorithms offered, one WWW-Authenticate each, in this order\n"
           "#auth_algorithms = " DEFAULT_AUTH_ALGORITHMS "\n"
           "# wrong credentials from one source address within auth_failure_window\n"
           "# seconds after which its credentials get 403 until the window ends (0: no limit)\n"
           "#auth_max_failures = %u\n#auth_failure_window = %u\n"
           "# contacts per address of record (a REGISTER beyond gets 503)\n#max_bindings = %u\n"
           "# seconds without a dump to a contact that answered none of its last one\n"
           "# (doubling while it stays silent; 0: off)\n#dump_backoff = %u\n"
           "# the memory store's caps over all mailboxes: messages and bytes (0: none);\n"
           "# a MESSAGE beyond them gets 486\n#memory_max_messages = %llu\n#memory_max_bytes = %llu\n"
           "# the same caps for the SQLite store, over its whole table (0: none)\n"
           "#sqlite_max_messages = %llu\n#sqlite_max_bytes = %llu\n"
           "# TCP: open connections before new ones wait (0: no cap), ms without data\n"
           "# before a connection is closed, ms a request may take to arrive once begun\n"
           "#tcp_max_connections = %u\n#tcp_idle_timeout = %u\n#tcp_message_timeout = %u\n"
           "# REGISTER/MESSAGE transactions kept at once (each ~8 KB for 32 s); beyond,\n"
           "# new ones get a stateless 503 with Retry-After (0: no cap)\n"
           "#max_transactions = %u\n"
           "# Prometheus statistics on http://ADDRESS/metrics (loopback only). Unset: off.\n"
           "#metrics = 127.0.0.1:9464\n"
           "# metrics connections open at once (beyond, closed at once), and ms after\n"
           "# which each is shut down, finished or not\n"
           "#metrics_max_connections = %u\n#metrics_timeout = %u\n"
           "# RFC 3842 message-summary: SUBSCRIBE for a local user's waiting count,\n"
           "# Expires below the minimum gets 423, above the maximum is cut (seconds)\n"
           "#mwi = true\n#subscribe_min_expires = %u\n#subscribe_max_expires = %u\n"
           "# who gets a mailbox: any (every user of a local domain), users_file (the\n"
           "# users of auth_users) or registered (users that registered within\n"
           "# registered_within seconds, remembered by this process); others get 404\n"
           "#store_for = any\n#registered_within = %u\n\n[msilo]\n",
           DEFAULT_LISTEN, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_HEADERS, DEFAULT_MAX_HEADER_SIZE,
           DEFAULT_MAX_STORED_HEADERS, DEFAULT_AUTH_MAX_FAILURES, DEFAULT_AUTH_FAILURE_WINDOW,
           DEFAULT_MAX_BINDINGS, DEFAULT_DUMP_BACKOFF, DEFAULT_MEMORY_MAX_MESSAGES,
           DEFAULT_MEMORY_MAX_BYTES, DEFAULT_SQLITE_MAX_MESSAGES, DEFAULT_SQLITE_MAX_BYTES,
           DEFAULT_TCP_MAX_CONNECTIONS, DEFAULT_TCP_IDLE_TIMEOUT,
           DEFAULT_TCP_MESSAGE_TIMEOUT, DEFAULT_MAX_TRANSACTIONS, DEFAULT_METRICS_MAX_CONNECTIONS,
           DEFAULT_METRICS_TIMEOUT, DEFAULT_SUBSCRIBE_MIN_EXPIRES,
           DEFAULT_SUBSCRIBE_MAX_EXPIRES, DEFAULT_REGISTERED_WITHIN);
    const msilo_config_key_t *k;
    for (size_t i = 0; (k = msilo_config_key_at(i)); i++) {
        printf("# %s (%s)\n", k->help ? k->help : "",
               k->type == MSILO_CONFIG_INT ? "integer"
               : k->type == MSILO_CONFIG_BOOL ? "boolean"
                                              : "string");
        /* this server's own default (main(): its registrar tells devices apart) */
        const char *dflt = strcmp(k->name, "deliver_to") == 0 ? "every_device" : k->default_str;
        printf("#%s = %s\n\n", k->name, dflt ? dflt : "");
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
                           " forward_failed=%" PRIu64 " auth_challenged=%" PRIu64
                           " auth_forbidden=%" PRIu64 " loops=%" PRIu64
                           " stored_once=%" PRIu64 " stateless=%" PRIu64
                           " tcp_connections=%u tcp_stalls=%" PRIu64 " tcp_slow_closed=%" PRIu64
                           " tcp_idle_closed=%" PRIu64 " dumps_held=%" PRIu64
                           " too_many_bindings=%" PRIu64 " auth_replays=%" PRIu64
                           " auth_blocked=%" PRIu64 " transactions_refused=%" PRIu64
                           " unknown_users=%" PRIu64 " subscriptions=%u",
                           s->n_register, s->registrar ? registrar_count(s->registrar) : 0,
                           s->n_message, s->n_forwarded, s->n_relayed_2xx, s->n_forward_failed,
                           s->n_auth_challenged, s->n_auth_forbidden, s->n_loops,
                           s->n_stored_once, s->n_stateless, s->tcp_connections, s->n_tcp_stalls,
                           s->n_slow_closed, s->n_idle_closed, s->n_dumps_held,
                           s->n_too_many_bindings, s->n_auth_replays, s->n_auth_blocked,
                           s->n_transactions_refused, s->n_unknown_users, server_mwi_count(s));
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

static void engine_stopped(msilo_engine_t *e, int result, void *data)
{
    server_t *s = data;
    (void)e;
    s->engine_stopped = true;
    s->engine_stop_rc = result;
}

/* Stops the engine within @ms milliseconds (msilo_engine_shutdown()): new
 * MESSAGEs get 503 from then on, stores and deliveries in progress finish;
 * what is unfinished at the deadline keeps its lease in the store and is
 * delivered after a restart (nothing acknowledged is lost). */
static void drain(server_t *s, unsigned ms)
{
    int rc = msilo_engine_shutdown(s->engine, ms, engine_stopped, s);
    if (rc) {
        g_warning("engine shutdown: %s", msilo_strerror(rc));
        return;
    }
    while (!s->engine_stopped)
        g_main_context_iteration(NULL, TRUE);
    if (s->engine_stop_rc)
        g_warning("engine shutdown: %s after %u ms: unfinished deliveries keep their lease "
                  "and are delivered after a restart", msilo_strerror(s->engine_stop_rc), ms);
}

/* ---- main ------------------------------------------------------------------------ */

/* The store @kind_name on the msilo keys of @cfg (msilo_store_open() of
 * libmsilo-stores); @migrate creates or upgrades a PostgreSQL table first
 * (SQLite upgrades its table on open anyway). A sqlite db_url may be a plain
 * file path, which becomes "sqlite:PATH". */
static int open_store(const char *kind_name, const msilo_config_t *cfg, bool migrate,
                      msilo_store_t **ret)
{
    bool pg = strcmp(kind_name, "postgres") == 0, lite = strcmp(kind_name, "sqlite") == 0;
    if (!pg && !lite && strcmp(kind_name, "memory") != 0) {
        fprintf(stderr, "msilo-server: unknown store '%s' (memory, sqlite or postgres)\n",
                kind_name);
        return MSILO_EINVAL;
    }
    if (!pg && !lite)
        return msilo_store_open("memory:", cfg, 0, ret);
    const char *db_url = msilo_config_get_string(cfg, "db_url");
    g_autofree char *url = lite && db_url && !msilo_store_url_kind(db_url)
                               ? g_strconcat("sqlite:", db_url, NULL)
                               : g_strdup(db_url);
    const char *kind = msilo_store_url_kind(url);
    size_t changes = 0;
    int r = 0;
    if (kind && strcmp(kind, kind_name) != 0)
        r = msilo_store_fail(MSILO_ECONFIG, "db_url is not a %s URL", kind_name);
    else if (kind && !msilo_store_url_supported(url))
        r = msilo_store_fail(MSILO_ENOTSUP, "the %s store is not built in this binary", kind_name);
    else if (pg && migrate && (r = msilo_store_migrate(url, cfg, 0, &changes)) == MSILO_ESTORE) {
        /* the database is down: start all the same and answer 503 until it
         * is up (the store connects then); the table must exist by then */
        g_warning("PostgreSQL unreachable, table not migrated: %s", msilo_error_detail());
        r = 0;
    }
    if (changes) {
        const char *table = msilo_config_get_string(cfg, "db_table");
        g_message("table %s: %zu schema changes applied", table ? table : "silo", changes);
    }
    if (r == 0)
        r = msilo_store_open(url, cfg, 0, ret);
    if (r < 0)
        fprintf(stderr, "msilo-server: %s store: %s: %s%s\n", kind_name, msilo_strerror(r),
                url ? msilo_error_detail() : "db_url is not set (--db-url sqlite:///path)",
                r == MSILO_ECONFIG && pg && !migrate ? " (create or upgrade the table with "
                                                       "--migrate or msilo-admin migrate)"
                                                     : "");
    return r;
}

int main(int argc, char **argv)
{
    g_autofree char *config_path = NULL, *listen = NULL, *store_kind = NULL, *db_url = NULL;
    gboolean version = FALSE, check = FALSE, print = FALSE, migrate = FALSE;
    bool file_has_password = false;
    int forward_timeout = -1;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
          "Configuration file (GLib key file: [msilo] and [server] groups)", "FILE" },
        { "listen", 'l', 0, G_OPTION_ARG_STRING, &listen,
          "SIP URI to listen on, UDP and TCP (default " DEFAULT_LISTEN ")", "URI" },
        { "store", 's', 0, G_OPTION_ARG_STRING, &store_kind,
          "Message store: memory (default), sqlite or postgres", "KIND" },
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

    server_options_init(&s.opt);

    if (msilo_config_new(&cfg) < 0) {
        fprintf(stderr, "msilo-server: out of memory\n");
        return 1;
    }
    /* This server's registrar tells devices apart (+sip.instance, else the
     * Contact): each device of a user gets each stored message (issue 15).
     * [msilo] deliver_to = first in the file restores msilo's behaviour. */
    msilo_config_set(cfg, "deliver_to", "every_device");
    if (config_path && !load_config_file(config_path, cfg, &s.opt, &file_has_password))
        goto out;
    /* A file with a password must not be world-readable: refused, not warned
     * about (doc: README, Security). */
    if (config_path && file_has_password &&
        !private_enough(config_path, "holds a database password"))
        goto out;
    if (s.opt.auth_users && !private_enough(s.opt.auth_users, "holds passwords or HA1 hashes"))
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
    /* Every local user can read a command line (/proc/PID/cmdline, ps). */
    if (db_url && server_url_has_password(db_url))
        g_warning("--db-url holds a password, which every local user can read in "
                  "/proc/%d/cmdline: put db_url in a configuration file of mode 0600, or use "
                  "~/.pgpass or PGPASSFILE", (int)getpid());
    if (db_url && (r = msilo_config_set(cfg, "db_url", db_url)) < 0) {
        fprintf(stderr, "msilo-server: --db-url: %s\n", msilo_error_detail());
        goto out;
    }
    if ((r = msilo_config_validate(cfg)) < 0) {
        fprintf(stderr, "msilo-server: %s: %s\n", config_path ? config_path : "configuration",
                msilo_error_detail());
        goto out;
    }
    if (!server_store_kind_known(s.opt.store)) {
        fprintf(stderr, "msilo-server: unknown store '%s' (memory, sqlite or postgres)\n",
                s.opt.store);
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
    s.root = server_root_create(&s, &s.root_source, &s.root_epoll);
    if (!s.root) {
        fprintf(stderr, "msilo-server: cannot create the Sofia root\n");
        su_deinit();
        goto out;
    }
    if (!s.root_epoll)
        g_message("Sofia root: the GLib GSource port (its epoll port was not found): "
                  "closing thousands of TCP connections at once is slow with it");
    g_source_attach(s.root_source, NULL);

    if (strcmp(s.opt.store, "postgres") == 0) {
        /* never the password: only the masked URL goes to the log */
        g_autofree char *masked = server_mask_db_url(msilo_config_get_string(cfg, "db_url"));
        g_message("store postgres: %s, table %s", masked,
                  msilo_config_get_string(cfg, "db_table"));
    }
    if (open_store(s.opt.store, cfg, migrate, &s.store) < 0)
        goto stop;
    if (strcmp(s.opt.store, "memory") == 0 &&
        (msilo_memory_store_set_limit(s.store, MSILO_MEMORY_MAX_MESSAGES,
                                      s.opt.memory_max_messages) < 0 ||
         msilo_memory_store_set_limit(s.store, MSILO_MEMORY_MAX_BYTES,
                                      s.opt.memory_max_bytes) < 0)) {
        fprintf(stderr, "msilo-server: memory store limits: %s\n", msilo_error_detail());
        goto stop;
    }
#ifdef MSILO_SERVER_HAVE_SQLITE
    if (strcmp(s.opt.store, "sqlite") == 0 &&
        (msilo_sqlite_store_set_limit(s.store, MSILO_SQLITE_MAX_MESSAGES,
                                      s.opt.sqlite_max_messages) < 0 ||
         msilo_sqlite_store_set_limit(s.store, MSILO_SQLITE_MAX_BYTES,
                                      s.opt.sqlite_max_bytes) < 0)) {
        fprintf(stderr, "msilo-server: sqlite store limits: %s\n", msilo_error_detail());
        goto stop;
    }
#endif
    if (server_sip_start(&s, &error) < 0) {
        fprintf(stderr, "msilo-server: %s\n", error->message);
        goto stop;
    }
    if ((r = msilo_engine_new(&s.engine, cfg, s.store, s.transport, NULL)) < 0) {
        fprintf(stderr, "msilo-server: %s: %s\n", msilo_strerror(r), msilo_error_detail());
        goto stop;
    }
    msilo_engine_set_log(s.engine, engine_log, NULL);
    if (!server_known_start(&s, &error)) {
        fprintf(stderr, "msilo-server: %s\n", error->message);
        goto stop;
    }
    server_mwi_start(&s);
    s.snd_time_header = msilo_config_get_string(cfg, "snd_time_avp");
    s.stored_headers = msilo_config_get_string(cfg, "stored_headers");
    s.per_device = g_strcmp0(msilo_config_get_string(cfg, "deliver_to"), "every_device") == 0;

    s.loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGTERM, on_quit, &s);
    g_unix_signal_add(SIGINT, on_quit, &s);
    g_unix_signal_add(SIGUSR1, on_usr1, &s);
    if (s.opt.metrics) {
        g_autoptr(GError) merr = NULL;
        if (!server_metrics_start(&s, s.opt.metrics, &merr)) {
            fprintf(stderr, "msilo-server: metrics: %s\n", merr->message);
            goto stop;
        }
    }

    if (!s.opt.auth_users)
        g_warning("AUTHENTICATION IS OFF: anyone who can reach %s can REGISTER any address, "
                  "have its stored messages delivered to a contact of their choice and store "
                  "messages for anybody. Set [server] auth_users (and auth_message) unless "
                  "only trusted hosts can reach this server.", s.opt.listen);
    where = server_sip_listening(&s);
    g_message("msilo-server %s listening on %s (%s), store %s, authentication %s%s%s",
              MSILO_SERVER_VERSION, where, s.opt.listen, s.opt.store,
              !s.opt.auth_users ? "off" : s.opt.auth_message ? "REGISTER and MESSAGE" : "REGISTER",
              s.opt.metrics ? ", metrics on http://" : "", s.opt.metrics ? s.opt.metrics : "");
    g_main_loop_run(s.loop);

    /* Shutdown: nothing accepted is lost. Forwards in progress are stored,
     * stores and deliveries in flight get up to 3 s to finish; then the
     * engine is freed at once, even with a database that hangs (the stores
     * not committed by then were never answered 202). */
    server_sip_drain(&s);
    drain(&s, 3000);
    print_stats(&s);
    status = 0;

stop:
    server_metrics_stop(&s);
    server_mwi_stop(&s);
    msilo_engine_free(s.engine);
    s.engine = NULL;
    server_sip_stop(&s);
    server_known_stop(&s);
    msilo_store_free(s.store);
    if (s.loop)
        g_main_loop_unref(s.loop);
    server_root_destroy(s.root, s.root_source, s.root_epoll);
    su_deinit();
    if (status == 0)
        g_message("stopped");
out:
    msilo_config_free(cfg);
    server_options_clear(&s.opt);
    return status;
}
