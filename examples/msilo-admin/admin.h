/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-admin's own interfaces between its files:
 *   msilo-admin.c  command table, help, argument parsing, messages, main
 *   db.c           which store (options, MSILO_DB_URL, -c) and opening it
 *   format.c       output: times, JSON, terminal-safe text, hex dumps
 *   read.c         count, list, show, stats
 *   write.c        migrate, delete, purge, expire
 */
#ifndef MSILO_ADMIN_H
#define MSILO_ADMIN_H

#include <glib.h>
#include <msilo/msilo.h>
#include <stdint.h>
#include <stdio.h>

#include <msilo/stores.h>

/* Exit status of every command (msilo-admin.1, EXIT STATUS). */
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

/* ---- msilo-admin.c -------------------------------------------------------- */

/* Global options, valid before or after the command (g_free'd by main). */
extern char *opt_url;
extern char *opt_table;
extern char *opt_config;
extern gboolean opt_quiet;

/* "msilo-admin COMMAND: ..." on stderr; progress() stays quiet with -q. */
void G_GNUC_PRINTF(1, 2) print_error(const char *fmt, ...);
void G_GNUC_PRINTF(1, 2) progress(const char *fmt, ...);

/* Parses the command's own options (argv[0] is the command) and checks that
 * @p want positional arguments remain (want < 0: at least one). Returns -1 to
 * go on, or an exit status. */
int parse_command(const char *name, const GOptionEntry *entries, int want, int *argc,
                  char ***argv);

/* A message id argument: a positive integer. EXIT_OK or EXIT_USAGE. */
int parse_id(const char *text, int64_t *ret);

/* ---- db.c ----------------------------------------------------------------- */

typedef struct db {
    const char *kind; /* "sqlite" or "postgres" (msilo_store_url_kind()) */
    char *url;
    char *table;
    msilo_config_t *cfg;
    msilo_store_t *store;
    char *user, *domain; /* the AOR argument, for the commands that take one */
} db_t;

/* Settles URL, table and kind from the options, MSILO_DB_URL and -c. */
int db_resolve(db_t *db);
/* The msilo keys for @p db's store: those of -c, with db_url and db_table as
 * resolved: EXIT_OK and *ret (msilo_config_free() it) or an exit status, the
 * error printed. */
int db_store_config(const db_t *db, msilo_config_t **ret);
/* Opens the store (resolving the options first unless done already). */
int db_open(db_t *db);
/* Resolves the store, parses the AOR argument into db->user and db->domain
 * and opens the store: 0 or an exit status (the AOR is checked before
 * anything connects). */
int db_open_owner(db_t *db, const char *aor);
void db_clear(db_t *db);

/* Prints "WHAT: error: detail" for a failed store call and returns the exit
 * status of @p e. */
int db_fail(const db_t *db, int e, const char *what);
/* The same for a failure of msilo_store_open() / msilo_store_migrate() or of
 * the configuration (libmsilo's detail). */
int db_open_fail(int e, const char *what);

/* ---- format.c ------------------------------------------------------------- */

/* UTC, ISO 8601 (g_free it). */
char *fmt_time(int64_t t);
/* A one-line, terminal-safe rendering of a string field; "-" for NULL (g_free it). */
char *safe(const char *s);
/* Appends @p s as a JSON string; NULL as null. */
void json_str(GString *out, const char *s);
/* The content type, text/plain when the message has none. */
const char *ctype_of(const msilo_message_t *m);

/* list: the header line, then one row per message (text or JSON). */
void list_print_header(void);
void list_print_row(const msilo_message_t *m);
void json_message(GString *out, const msilo_message_t *m, gboolean with_body);
/* show: every field, then the body (text, or a hex dump). */
void show_text(const msilo_message_t *m);

/* What stats gathers. */
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

void stats_print(const stats_t *st, const char *store_name, const char *table, gboolean json);

/* ---- read.c, write.c ------------------------------------------------------ */

int cmd_count(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_stats(int argc, char **argv);

int cmd_migrate(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_purge(int argc, char **argv);
int cmd_expire(int argc, char **argv);

#endif
