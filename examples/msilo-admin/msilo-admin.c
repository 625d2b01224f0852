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
 *
 * This file: the global options, the command table and the help texts,
 * parsing a command's arguments, messages on stderr, main(). What the
 * other files do: admin.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"

/* Global options, valid before or after the command. */
char *opt_url;
char *opt_table;
char *opt_config;
gboolean opt_quiet;

static const GOptionEntry global_entries[] = {
    { "db-url", 0, 0, G_OPTION_ARG_STRING, &opt_url, "database URL", "URL" },
    { "table", 0, 0, G_OPTION_ARG_STRING, &opt_table, "table (default silo)", "T" },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config, "configuration file", "FILE" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, "no progress on stderr", NULL },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
};

static const char *cmd_name = "msilo-admin";

/* ------------------------------------------------------------ messages */

static void G_GNUC_PRINTF(1, 0) say(const char *fmt, va_list ap)
{
    fprintf(stderr, "msilo-admin %s: ", cmd_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void print_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
}

void progress(const char *fmt, ...)
{
    if (opt_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    say(fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- help */

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

/* ----------------------------------------------------------- arguments */

/* Exactly @p want positional arguments (want < 0: at least one). */
static int want_args(const char *name, int argc, int want)
{
    int have = argc - 1;
    if ((want >= 0 && have != want) || (want < 0 && have < 1)) {
        print_error(have > want && want >= 0 ? "unexpected argument" : "missing argument");
        return command_usage(name, stderr);
    }
    return -1;
}

int parse_command(const char *name, const GOptionEntry *entries, int want, int *argc,
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
        print_error("%s", gerr->message);
        g_error_free(gerr);
        status = command_usage(name, stderr);
    } else if (help) {
        status = command_usage(name, stdout);
    }
    g_option_context_free(ctx);
    return status < 0 ? want_args(name, *argc, want) : status;
}

int parse_id(const char *text, int64_t *ret)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v <= 0) {
        print_error("bad message id '%s' (a positive integer)", text);
        return EXIT_USAGE;
    }
    *ret = (int64_t)v;
    return EXIT_OK;
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
