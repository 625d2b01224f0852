/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-admin: administration of a libmsilo store (PostgreSQL or SQLite).
 *
 *   msilo-admin [--db-url URL] [--table T] [-c CONFIG] [-q] COMMAND [ARGS]
 *
 * Commands: migrate, count, list, show, delete, purge, expire, stats (see
 * usage() and msilo-admin.1). Everything but migrate goes through the public
 * store API (msilo_store_list/get/remove/purge/count/expire), so the tool
 * works on every backend; the backend is chosen by the URL's scheme.
 *
 * Exit status: 0 ok; 1 not found / nothing done; 2 usage; 3 database error;
 * 4 configuration error; 5 other failure.
 */
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <msilo/msilo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef MSILO_ADMIN_POSTGRES
#include <msilo/postgres.h>
#endif
#ifdef MSILO_ADMIN_SQLITE
#include <msilo/sqlite.h>
#endif

enum {
    EXIT_OK = 0,
    EXIT_NOTFOUND = 1,
    EXIT_USAGE = 2,
    EXIT_DB = 3,
    EXIT_CONFIG = 4,
    EXIT_OTHER = 5,
};

/* Pages of the store's list: big enough to make few round trips, small
 * enough that a page of 64 KiB bodies stays a few tens of MB. */
#define PAGE 500

typedef enum { BACKEND_NONE, BACKEND_POSTGRES, BACKEND_SQLITE } backend_t;

/* Global options, valid before or after the command. */
static char *opt_url;
static char *opt_table;
static char *opt_config;
static gboolean opt_quiet;

static const GOptionEntry global_entries[] = {
    { "db-url", 0, 0, G_OPTION_ARG_STRING, &opt_url, "database URL", "URL" },
    { "table", 0, 0, G_OPTION_ARG_STRING, &opt_table, "table (default silo)", "T" },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, "configuration file", "FILE" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, "no progress on stderr", NULL },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
};

static const char *cmd_name = "msilo-admin";

/* ------------------------------------------------------------ messages */

static void G_GNUC_PRINTF(1, 2) err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "msilo-admin %s: ", cmd_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void G_GNUC_PRINTF(1, 2) progress(const char *fmt, ...)
{
    if (opt_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "msilo-admin %s: ", cmd_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static const char global_help[] =
    "Global options (before or after the command):\n"
    "  --db-url URL    database: postgres://user:pass@host:port/db (or a libpq\n"
    "                  conninfo string) or sqlite:///path/to/file.db;\n"
    "                  default: MSILO_DB_URL, else db_url of the -c file\n"
    "  --table T       table (default: db_table of the -c file, else silo)\n"
    "  -c, --config F  GLib key file, group [msilo], keys as msilo-server's\n"
    "  -q, --quiet     no progress messages on stderr\n";

static const char exit_help[] =
    "Exit status: 0 ok, 1 not found or nothing done, 2 usage, 3 database error,\n"
    "4 configuration error, 5 other failure.\n";

static const struct command_help {
    const char *name;
    const char *synopsis;
    const char *text;
} helps[] = {
    { "migrate", "migrate [--keep-id] [--column sc_KEY=NAME ...]",
      "Creates the table, or adds what libmsilo needs to an existing Kamailio/\n"
      "OpenSIPS silo table. Safe to run again; prints how many changes it made.\n"
      "  --keep-id   (PostgreSQL) do not widen a 32-bit id to BIGINT (rewrites the table)\n"
      "  --column    (PostgreSQL) a column name other than the default, e.g. sc_mid=mid\n" },
    { "count", "count AOR",
      "Prints how many messages AOR (sip:user@domain, user@domain or tel:...) holds,\n"
      "expired ones included until they are cleaned.\n" },
    { "list", "list AOR [--json] [--limit N]",
      "Lists AOR's messages, oldest first: id, time stored (UTC), From, content type,\n"
      "body size, and R for a reminder.\n"
      "  --json      a JSON array of objects instead of a table\n"
      "  --limit N   at most N messages\n" },
    { "show", "show ID [--json | --raw]",
      "Prints one message: its fields, then its body. A body that is not printable\n"
      "UTF-8 text is shown as a hex dump.\n"
      "  --json      a JSON object (body as text, or body_base64)\n"
      "  --raw       only the body bytes, unchanged\n" },
    { "delete", "delete ID...",
      "Deletes messages by id. Exit status 1 when some id did not exist.\n" },
    { "purge", "purge AOR",
      "Deletes all of AOR's messages (in batches, with progress, when they are many).\n"
      "Exit status 1 when there was none.\n" },
    { "expire", "expire [--at UNIXTIME]",
      "Deletes every message whose expiry time has passed (now, or UNIXTIME).\n"
      "Nothing to delete is not an error.\n" },
    { "stats", "stats [--json]",
      "Prints the number of messages, of owners, the oldest and newest message,\n"
      "how many are expired or reminders, the body bytes and the fullest mailbox.\n"
      "Reads every message (with progress on a big store).\n"
      "  --json      a JSON object\n" },
};

static const struct command_help *find_help(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(helps); i++)
        if (strcmp(helps[i].name, name) == 0)
            return &helps[i];
    return NULL;
}

static int usage(FILE *f)
{
    fprintf(f, "usage: msilo-admin [OPTIONS] COMMAND [ARGS]\n\nCommands:\n");
    for (size_t i = 0; i < G_N_ELEMENTS(helps); i++)
        fprintf(f, "  %s\n", helps[i].synopsis);
    fprintf(f, "\n%s\n%s'msilo-admin COMMAND --help' describes a command.\n", global_help,
            exit_help);
    return f == stderr ? EXIT_USAGE : EXIT_OK;
}

static int command_usage(const char *name, FILE *f)
{
    const struct command_help *h = find_help(name);
    if (!h)
        return usage(f);
    if (f == stderr) {
        /* after an error: the short form, the error stays visible */
        fprintf(f, "usage: msilo-admin [OPTIONS] %s\n(msilo-admin %s --help for more)\n",
                h->synopsis, h->name);
        return EXIT_USAGE;
    }
    fprintf(f, "usage: msilo-admin [OPTIONS] %s\n\n%s\n%s\n%s", h->synopsis, h->text, global_help,
            exit_help);
    return f == stderr ? EXIT_USAGE : EXIT_OK;
}

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

/* ------------------------------------------------------- the database */

typedef struct db {
    backend_t backend;
    char *url;
    char *table;
    msilo_config_t *cfg;
    msilo_store_t *store;
} db_t;

static backend_t backend_of(const char *url)
{
    if (g_ascii_strncasecmp(url, "sqlite:", 7) == 0 || strcmp(url, ":memory:") == 0)
        return BACKEND_SQLITE;
    if (g_ascii_strncasecmp(url, "postgres://", 11) == 0 ||
        g_ascii_strncasecmp(url, "postgresql://", 13) == 0 ||
        (strchr(url, '=') && !strstr(url, "://"))) /* libpq "host=... dbname=..." */
        return BACKEND_POSTGRES;
    return BACKEND_NONE;
}

/* The failure detail: the PostgreSQL library keeps its own. */
static const char *detail(const db_t *db)
{
#ifdef MSILO_ADMIN_POSTGRES
    if (db && db->backend == BACKEND_POSTGRES && *msilo_pg_error_detail())
        return msilo_pg_error_detail();
#endif
    (void)db;
    return msilo_error_detail();
}

static int fail(const db_t *db, int e, const char *what)
{
    const char *d = detail(db);
    err("%s: %s%s%s", what, msilo_strerror(e), *d ? ": " : "", d);
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
        err("%s: %s", opt_config, gerr->message);
        status = EXIT_CONFIG;
        goto out;
    }
    gsize n = 0;
    char **keys = g_key_file_get_keys(kf, "msilo", &n, &gerr);
    if (!keys) {
        err("%s: %s", opt_config, gerr->message);
        status = EXIT_CONFIG;
        goto out;
    }
    for (gsize i = 0; i < n && status == EXIT_OK; i++) {
        char *v = g_key_file_get_string(kf, "msilo", keys[i], NULL);
        int e = msilo_config_set(db->cfg, keys[i], v);
        if (e) {
            err("%s: [msilo] %s: %s", opt_config, keys[i], msilo_error_detail());
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

/* Settles URL, table and backend from the options, MSILO_DB_URL and -c. */
static int resolve(db_t *db)
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
        err("no database: give --db-url URL, set MSILO_DB_URL, or -c CONFIG");
        return EXIT_USAGE;
    }
    if (opt_table)
        db->table = g_strdup(opt_table);
    else if (opt_config && msilo_config_get_string(db->cfg, "db_table"))
        db->table = g_strdup(msilo_config_get_string(db->cfg, "db_table"));
    else
        db->table = g_strdup("silo");
    db->backend = backend_of(db->url);
    switch (db->backend) {
    case BACKEND_POSTGRES:
#ifndef MSILO_ADMIN_POSTGRES
        err("this msilo-admin was built without PostgreSQL support");
        return EXIT_CONFIG;
#endif
        break;
    case BACKEND_SQLITE:
#ifndef MSILO_ADMIN_SQLITE
        err("this msilo-admin was built without SQLite support");
        return EXIT_CONFIG;
#endif
        break;
    default:
        /* Never echo a URL: it may hold a password. */
        err("database URL: unknown scheme (use postgres://... or sqlite:///path)");
        return EXIT_CONFIG;
    }
    return EXIT_OK;
}

#ifdef MSILO_ADMIN_POSTGRES
/* PostgreSQL options: the -c file's db_* and sc_* keys, then the command line. */
static int pg_options(db_t *db, msilo_pg_options_t **ret)
{
    msilo_pg_options_t *o = NULL;
    msilo_pg_options_new(&o);
    int e = opt_config ? msilo_pg_options_from_config(o, db->cfg) : 0;
    if (!e)
        e = msilo_pg_options_set(o, "db_url", db->url);
    if (!e)
        e = msilo_pg_options_set(o, "db_table", db->table);
    if (e) {
        msilo_pg_options_free(o);
        return fail(db, e, "options");
    }
    *ret = o;
    return EXIT_OK;
}
#endif

/* Opens the store (resolving the options first unless done already). */
static int open_store(db_t *db)
{
    int status = db->url ? EXIT_OK : resolve(db);
    if (status)
        return status;
    int e = MSILO_ENOTSUP;
#ifdef MSILO_ADMIN_POSTGRES
    if (db->backend == BACKEND_POSTGRES) {
        msilo_pg_options_t *o = NULL;
        status = pg_options(db, &o);
        if (status)
            return status;
        e = msilo_pg_store_new(&db->store, o);
        msilo_pg_options_free(o);
    }
#endif
#ifdef MSILO_ADMIN_SQLITE
    if (db->backend == BACKEND_SQLITE)
        e = msilo_sqlite_store_new_table(&db->store, db->url, db->table);
#endif
    if (e)
        return fail(db, e, "opening the store");
    return EXIT_OK;
}

static void db_clear(db_t *db)
{
    msilo_store_free(db->store);
    msilo_config_free(db->cfg);
    g_free(db->url);
    g_free(db->table);
}

/* ------------------------------------------------------------- values */

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
        err("bad AOR '%s': %s", text, msilo_error_detail());
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int parse_id(const char *text, int64_t *ret)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v <= 0) {
        err("bad message id '%s' (a positive integer)", text);
        return EXIT_USAGE;
    }
    *ret = (int64_t)v;
    return EXIT_OK;
}

/* UTC, ISO 8601: the same output on every machine and in every test. */
static char *fmt_time(int64_t t)
{
    GDateTime *dt = g_date_time_new_from_unix_utc(t);
    if (!dt)
        return g_strdup_printf("%" PRId64, t);
    char *s = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(dt);
    return s;
}

/* Appends @p s as a JSON string. Invalid UTF-8 becomes U+FFFD: the output
 * must parse whatever the database holds. */
static void json_str(GString *out, const char *s)
{
    if (!s) {
        g_string_append(out, "null");
        return;
    }
    char *valid = g_utf8_make_valid(s, -1);
    g_string_append_c(out, '"');
    for (const unsigned char *p = (const unsigned char *)valid; *p; p++) {
        switch (*p) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                g_string_append_printf(out, "\\u%04x", *p);
            else
                g_string_append_c(out, (char)*p);
        }
    }
    g_string_append_c(out, '"');
    g_free(valid);
}

/* Printable text: valid UTF-8 without NULs or control characters other
 * than tab, CR and LF (nothing that could drive the terminal). */
static gboolean body_is_text(const msilo_message_t *m)
{
    if (!m->body_len)
        return TRUE;
    const char *b = m->body;
    if (!g_utf8_validate(b, (gssize)m->body_len, NULL))
        return FALSE;
    for (size_t i = 0; i < m->body_len; i++) {
        unsigned char c = (unsigned char)b[i];
        if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
            return FALSE;
    }
    const char *p = b;
    for (const char *end = b + m->body_len; p < end; p = g_utf8_next_char(p)) {
        gunichar u = g_utf8_get_char(p);
        if (u >= 0x80 && u < 0xa0) /* C1 controls (CSI ...) */
            return FALSE;
    }
    return TRUE;
}

static void hexdump(FILE *f, const unsigned char *b, size_t n)
{
    for (size_t off = 0; off < n; off += 16) {
        fprintf(f, "%08zx ", off);
        for (size_t i = 0; i < 16; i++) {
            if (off + i < n)
                fprintf(f, " %02x", b[off + i]);
            else
                fputs("   ", f);
            if (i == 7)
                fputc(' ', f);
        }
        fputs("  |", f);
        for (size_t i = 0; i < 16 && off + i < n; i++)
            fputc(g_ascii_isprint(b[off + i]) ? b[off + i] : '.', f);
        fputs("|\n", f);
    }
}

/* A one-line, terminal-safe rendering of a string field. */
static char *safe(const char *s)
{
    if (!s)
        return g_strdup("-");
    char *valid = g_utf8_make_valid(s, -1);
    for (char *p = valid; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return valid;
}

static const char *ctype_of(const msilo_message_t *m)
{
    return m->ctype ? m->ctype : "text/plain";
}

static void json_message(GString *out, const msilo_message_t *m, gboolean with_body)
{
    g_string_append_printf(out, "{\"id\": %" PRId64 ", \"user\": ", m->id);
    json_str(out, m->user);
    g_string_append(out, ", \"domain\": ");
    json_str(out, m->domain);
    g_string_append(out, ", \"from\": ");
    json_str(out, m->src);
    g_string_append(out, ", \"to\": ");
    json_str(out, m->dst);
    g_string_append(out, ", \"content_type\": ");
    json_str(out, ctype_of(m));
    g_string_append_printf(out, ", \"size\": %zu", m->body_len);
    char *t = fmt_time(m->inc_time);
    g_string_append_printf(out, ", \"time\": %" PRId64 ", \"time_utc\": \"%s\"", m->inc_time, t);
    g_free(t);
    g_string_append_printf(out, ", \"expires\": %" PRId64 ", \"reminder\": %" PRId64
                                ", \"attempts\": %" PRIu32,
                           m->exp_time, m->snd_time, m->attempts);
    if (with_body) {
        g_string_append(out, ", \"next_try\": ");
        g_string_append_printf(out, "%" PRId64, m->next_try);
        g_string_append(out, ", \"call_id\": ");
        json_str(out, m->callid);
        g_string_append(out, ", \"extra_headers\": ");
        json_str(out, m->extra_hdrs);
        if (body_is_text(m)) {
            char *b = g_strndup(m->body ? m->body : "", m->body_len);
            g_string_append(out, ", \"body\": ");
            json_str(out, b);
            g_free(b);
        } else {
            char *b64 = g_base64_encode(m->body, m->body_len);
            g_string_append_printf(out, ", \"body_base64\": \"%s\"", b64);
            g_free(b64);
        }
    }
    g_string_append_c(out, '}');
}

/* Exactly @p want positional arguments (want < 0: at least one). */
static int want_args(const char *name, int argc, int want)
{
    int have = argc - 1;
    if ((want >= 0 && have != want) || (want < 0 && have < 1)) {
        err(have > want && want >= 0 ? "unexpected argument" : "missing argument");
        return command_usage(name, stderr);
    }
    return -1;
}

/* Parses the command's own options (argv[0] is the command) and checks that
 * @p want positional arguments remain (want < 0: at least one). Returns -1 to
 * go on, or an exit status. */
static int parse_command(const char *name, const GOptionEntry *entries, int want, int *argc,
                         char ***argv)
{
    gboolean help = FALSE;
    GOptionEntry help_entry[] = {
        { "help", 'h', 0, G_OPTION_ARG_NONE, &help, "help", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *ctx = g_option_context_new(NULL);
    g_option_context_set_help_enabled(ctx, FALSE);
    g_option_context_add_main_entries(ctx, help_entry, NULL);
    if (entries)
        g_option_context_add_main_entries(ctx, entries, NULL);
    GError *gerr = NULL;
    int status = -1;
    if (!g_option_context_parse(ctx, argc, argv, &gerr)) {
        err("%s", gerr->message);
        g_error_free(gerr);
        status = command_usage(name, stderr);
    } else if (help) {
        status = command_usage(name, stdout);
    }
    g_option_context_free(ctx);
    return status < 0 ? want_args(name, *argc, want) : status;
}

/* Resolves the store, parses the AOR argument and opens the store: 0 or an
 * exit status (the AOR is checked before anything connects). */
static int open_owner_store(db_t *db, const char *aor, char **ret_user, char **ret_domain)
{
    int status = resolve(db);
    if (!status)
        status = parse_aor(db, aor, ret_user, ret_domain);
    if (!status)
        status = open_store(db);
    return status;
}

/* ------------------------------------------------------------ commands */

static int cmd_migrate(int argc, char **argv)
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
    status = EXIT_OK;
    db_t db = { 0 };
    status = resolve(&db);
    if (status)
        goto out;

    size_t changes = 0;
    int e = MSILO_ENOTSUP;
    gint64 t0 = g_get_monotonic_time();
    /* A migration may rewrite a big table (id widening): say what runs. */
    progress("migrating table %s...", db.table);
#ifdef MSILO_ADMIN_POSTGRES
    if (db.backend == BACKEND_POSTGRES) {
        msilo_pg_options_t *o = NULL;
        status = pg_options(&db, &o);
        if (status)
            goto out;
        e = 0;
        for (char **c = columns; !e && c && *c; c++) {
            char *eq = strchr(*c, '=');
            if (!eq) {
                err("--column wants sc_KEY=NAME, not '%s'", *c);
                msilo_pg_options_free(o);
                status = EXIT_USAGE;
                goto out;
            }
            *eq = '\0';
            e = msilo_pg_options_set(o, *c, eq + 1);
        }
        if (!e)
            e = msilo_pg_migrate(o, keep_id ? MSILO_PG_MIGRATE_KEEP_ID : 0, &changes);
        msilo_pg_options_free(o);
    }
#endif
#ifdef MSILO_ADMIN_SQLITE
    if (db.backend == BACKEND_SQLITE) {
        if (columns || keep_id) {
            err("--column and --keep-id are PostgreSQL options (SQLite column names are fixed)");
            status = EXIT_USAGE;
            goto out;
        }
        e = msilo_sqlite_migrate(db.url, db.table, &changes);
    }
#endif
    if (e) {
        status = fail(&db, e, "migrate");
        goto out;
    }
    progress("done in %.1f s", (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC);
    printf("table %s: %zu change%s\n", db.table, changes, changes == 1 ? "" : "s");
    status = EXIT_OK;
out:
    db_clear(&db);
    g_strfreev(columns);
    return status;
}

static int cmd_count(int argc, char **argv)
{
    int status = parse_command("count", NULL, 1, &argc, &argv);
    if (status >= 0)
        return status;
    status = EXIT_OK;
    db_t db = { 0 };
    char *user = NULL, *domain = NULL;
    status = open_owner_store(&db, argv[1], &user, &domain);
    if (!status) {
        int64_t n = 0;
        int e = msilo_store_count(db.store, user, domain, &n);
        if (e)
            status = fail(&db, e, "count");
        else
            printf("%" PRId64 "\n", n);
    }
    g_free(user);
    g_free(domain);
    db_clear(&db);
    return status;
}

static int cmd_list(int argc, char **argv)
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
    status = EXIT_OK;
    if (limit < 0) {
        err("--limit must be positive");
        return EXIT_USAGE;
    }
    db_t db = { 0 };
    char *user = NULL, *domain = NULL;
    status = open_owner_store(&db, argv[1], &user, &domain);
    if (status)
        goto out;

    GString *out = g_string_new(NULL);
    if (json)
        g_string_append(out, "[");
    else
        printf("%-10s  %-20s  %-32s  %-24s  %8s\n", "ID", "TIME (UTC)", "FROM", "TYPE", "SIZE");
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
        int e = msilo_store_list(db.store, user, domain, after, want, &msgs, &n);
        if (e) {
            status = fail(&db, e, "list");
            break;
        }
        for (size_t i = 0; i < n; i++) {
            const msilo_message_t *m = msgs[i];
            if (json) {
                g_string_append(out, shown || i ? ",\n " : "\n ");
                json_message(out, m, FALSE);
            } else {
                char *t = fmt_time(m->inc_time);
                char *from = safe(m->src);
                char *type = safe(ctype_of(m));
                printf("%-10" PRId64 "  %-20s  %-32s  %-24s  %8zu%s\n", m->id, t, from, type,
                       m->body_len, m->snd_time ? "  R" : "");
                g_free(t);
                g_free(from);
                g_free(type);
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
    g_free(user);
    g_free(domain);
    db_clear(&db);
    return status;
}

static void show_text(const msilo_message_t *m)
{
    char *f;
    printf("id:            %" PRId64 "\n", m->id);
    f = g_strdup_printf("%s@%s", m->user, m->domain);
    char *owner = safe(f);
    printf("owner:         %s\n", owner);
    g_free(owner);
    g_free(f);
#define FIELD(label, value)                                                                \
    do {                                                                                   \
        char *v_ = safe(value);                                                            \
        printf("%-15s%s\n", label, v_);                                                    \
        g_free(v_);                                                                        \
    } while (0)
    FIELD("from:", m->src);
    FIELD("to:", m->dst);
    FIELD("content-type:", ctype_of(m));
    FIELD("call-id:", m->callid);
#undef FIELD
    char *t = fmt_time(m->inc_time);
    printf("stored:        %s (%" PRId64 ")\n", t, m->inc_time);
    g_free(t);
    t = fmt_time(m->exp_time);
    printf("expires:       %s (%" PRId64 ")\n", t, m->exp_time);
    g_free(t);
    if (m->snd_time) {
        t = fmt_time(m->snd_time);
        printf("reminder:      %s (%" PRId64 ")\n", t, m->snd_time);
        g_free(t);
    }
    printf("attempts:      %" PRIu32 "\n", m->attempts);
    if (m->next_try == INT64_MAX)
        printf("next try:      on the next registration\n");
    else if (m->next_try > 0) {
        t = fmt_time(m->next_try);
        printf("next try:      %s\n", t);
        g_free(t);
    }
    if (m->extra_hdrs && *m->extra_hdrs) {
        printf("extra headers:\n");
        char **lines = g_strsplit(m->extra_hdrs, "\r\n", -1);
        for (char **l = lines; *l; l++) {
            if (!**l)
                continue;
            char *v = safe(*l);
            printf("  %s\n", v);
            g_free(v);
        }
        g_strfreev(lines);
    }
    gboolean text = body_is_text(m);
    printf("size:          %zu byte%s%s\n\n", m->body_len, m->body_len == 1 ? "" : "s",
           text ? "" : " (binary, shown in hex)");
    if (text) {
        fwrite(m->body ? m->body : "", 1, m->body_len, stdout);
        if (m->body_len && ((const char *)m->body)[m->body_len - 1] != '\n')
            putchar('\n');
    } else {
        hexdump(stdout, m->body, m->body_len);
    }
}

static int cmd_show(int argc, char **argv)
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
    status = EXIT_OK;
    if (json && raw) {
        err("--json and --raw exclude each other");
        return EXIT_USAGE;
    }
    int64_t id = 0;
    db_t db = { 0 };
    status = parse_id(argv[1], &id);
    if (!status)
        status = open_store(&db);
    if (!status) {
        msilo_message_t *m = NULL;
        int e = msilo_store_get(db.store, id, &m);
        if (e == MSILO_ENOTFOUND) {
            err("no message with id %" PRId64, id);
            status = EXIT_NOTFOUND;
        } else if (e) {
            status = fail(&db, e, "show");
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

static int cmd_delete(int argc, char **argv)
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
        status = open_store(&db);
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
            status = fail(&db, e, "delete");
        } else {
            printf("deleted %zu of %zu message%s\n", deleted, uniq, uniq == 1 ? "" : "s");
            if (deleted < uniq) {
                err("%zu id%s did not exist", uniq - deleted, uniq - deleted == 1 ? "" : "s");
                status = EXIT_NOTFOUND;
            }
        }
    }
    g_free(ids);
    db_clear(&db);
    return status;
}

static int cmd_purge(int argc, char **argv)
{
    int status = parse_command("purge", NULL, 1, &argc, &argv);
    if (status >= 0)
        return status;
    status = EXIT_OK;
    db_t db = { 0 };
    char *user = NULL, *domain = NULL;
    status = open_owner_store(&db, argv[1], &user, &domain);
    if (status)
        goto out;

    int64_t total = 0;
    int e = msilo_store_count(db.store, user, domain, &total);
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
            e = msilo_store_list(db.store, user, domain, after, PAGE, &msgs, &n);
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
        e = msilo_store_purge(db.store, user, domain, &rest);
    if (e) {
        if (deleted)
            err("%zu messages were deleted before the failure", deleted);
        status = fail(&db, e, "purge");
        goto out;
    }
    deleted += rest;
    printf("purged %zu message%s\n", deleted, deleted == 1 ? "" : "s");
    status = deleted ? EXIT_OK : EXIT_NOTFOUND;
out:
    g_free(user);
    g_free(domain);
    db_clear(&db);
    return status;
}

static int cmd_expire(int argc, char **argv)
{
    gint64 at = 0;
    GOptionEntry entries[] = {
        { "at", 0, 0, G_OPTION_ARG_INT64, &at, "expire as of this Unix time", "UNIXTIME" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    int status = parse_command("expire", entries, 0, &argc, &argv);
    if (status >= 0)
        return status;
    status = EXIT_OK;
    db_t db = { 0 };
    status = open_store(&db);
    if (!status) {
        int64_t now = at ? at : (int64_t)time(NULL);
        size_t deleted = 0;
        int e = msilo_store_expire(db.store, now, &deleted);
        if (e)
            status = fail(&db, e, "expire");
        else
            printf("expired %zu message%s\n", deleted, deleted == 1 ? "" : "s");
    }
    db_clear(&db);
    return status;
}

typedef struct stats {
    int64_t messages;
    size_t owners;
    int64_t oldest_id, oldest_time, newest_id, newest_time;
    char *oldest_owner;
    int64_t expired, reminders, leased_retry;
    uint64_t bytes;
    char *top_owner;
    int64_t top_count;
} stats_t;

static int cmd_stats(int argc, char **argv)
{
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "JSON output", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    int status = parse_command("stats", entries, 0, &argc, &argv);
    if (status >= 0)
        return status;
    status = EXIT_OK;
    db_t db = { 0 };
    status = open_store(&db);
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
        status = fail(&db, e, "stats");
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
    if (json) {
        GString *out = g_string_new(NULL);
        g_string_append_printf(out,
                               "{\"backend\": \"%s\", \"table\": ", db.store->name);
        json_str(out, db.table);
        g_string_append_printf(out,
                               ", \"messages\": %" PRId64 ", \"owners\": %zu, \"expired\": %" PRId64
                               ", \"reminders\": %" PRId64 ", \"retrying\": %" PRId64
                               ", \"body_bytes\": %" G_GUINT64_FORMAT,
                               st.messages, st.owners, st.expired, st.reminders, st.leased_retry,
                               (guint64)st.bytes);
        if (st.messages) {
            g_string_append_printf(out, ", \"oldest\": {\"id\": %" PRId64 ", \"time\": %" PRId64
                                        ", \"owner\": ",
                                   st.oldest_id, st.oldest_time);
            json_str(out, st.oldest_owner);
            g_string_append_printf(out, "}, \"newest\": {\"id\": %" PRId64 ", \"time\": %" PRId64
                                        "}, \"fullest\": {\"owner\": ",
                                   st.newest_id, st.newest_time);
            json_str(out, st.top_owner);
            g_string_append_printf(out, ", \"messages\": %" PRId64 "}", st.top_count);
        } else {
            g_string_append(out, ", \"oldest\": null, \"newest\": null, \"fullest\": null");
        }
        g_string_append(out, "}\n");
        fputs(out->str, stdout);
        g_string_free(out, TRUE);
    } else {
        printf("store:      %s, table %s\n", db.store->name, db.table);
        printf("messages:   %" PRId64 "\n", st.messages);
        printf("owners:     %zu\n", st.owners);
        if (st.messages) {
            char *t = fmt_time(st.oldest_time), *o = safe(st.oldest_owner);
            printf("oldest:     %s (id %" PRId64 ", %s)\n", t, st.oldest_id, o);
            g_free(t);
            g_free(o);
            t = fmt_time(st.newest_time);
            printf("newest:     %s (id %" PRId64 ")\n", t, st.newest_id);
            g_free(t);
            o = safe(st.top_owner);
            printf("fullest:    %s (%" PRId64 ")\n", o, st.top_count);
            g_free(o);
        } else {
            printf("oldest:     -\n");
        }
        printf("expired:    %" PRId64 " (not yet cleaned)\n", st.expired);
        printf("reminders:  %" PRId64 "\n", st.reminders);
        printf("retrying:   %" PRId64 " (failed delivery attempts)\n", st.leased_retry);
        printf("body bytes: %" G_GUINT64_FORMAT "\n", (guint64)st.bytes);
    }
out:
    g_hash_table_unref(owners);
    g_free(st.oldest_owner);
    db_clear(&db);
    return status;
}

/* ---------------------------------------------------------------- main */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    { "migrate", cmd_migrate }, { "count", cmd_count },   { "list", cmd_list },
    { "show", cmd_show },       { "delete", cmd_delete }, { "purge", cmd_purge },
    { "expire", cmd_expire },   { "stats", cmd_stats },
};

int main(int argc, char **argv)
{
    /* First pass: the global options, wherever they are; what remains is
     * the command, its arguments and its own options. */
    GOptionContext *ctx = g_option_context_new(NULL);
    g_option_context_set_help_enabled(ctx, FALSE);
    g_option_context_set_ignore_unknown_options(ctx, TRUE);
    g_option_context_add_main_entries(ctx, global_entries, NULL);
    GError *gerr = NULL;
    int status;
    if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
        fprintf(stderr, "msilo-admin: %s\n", gerr->message);
        g_error_free(gerr);
        status = usage(stderr);
        goto out;
    }
    if (argc < 2) {
        status = usage(stderr);
        goto out;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        status = (argc > 2 && find_help(argv[2])) ? command_usage(argv[2], stdout)
                                                  : usage(stdout);
        goto out;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            cmd_name = commands[i].name;
            status = commands[i].run(argc - 1, argv + 1);
            goto out;
        }
    }
    fprintf(stderr, "msilo-admin: unknown command '%s'\n", argv[1]);
    status = usage(stderr);
out:
    g_option_context_free(ctx);
    g_free(opt_url);
    g_free(opt_table);
    g_free(opt_config);
    return status;
}
