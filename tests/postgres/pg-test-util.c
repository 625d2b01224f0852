/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "pg-test-util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *pgt_url(void)
{
    const char *url = getenv("MSILO_TEST_PG_URL");
    if (url && *url)
        return url;
    const char *req = getenv("MSILO_REQUIRE_PG");
    if (req && strcmp(req, "1") == 0) {
        fprintf(stderr, "MSILO_TEST_PG_URL is not set but MSILO_REQUIRE_PG=1: "
                        "run under scripts/pg-test-cluster run -- ...\n");
        exit(1);
    }
    fprintf(stderr, "MSILO_TEST_PG_URL not set: skipping (scripts/pg-test-cluster run -- ...)\n");
    exit(PGT_SKIP);
}

char *pgt_table_name(const char *prefix)
{
    static gint counter;
    return g_strdup_printf("%s_%ld_%d", prefix, (long)getpid(), g_atomic_int_add(&counter, 1));
}

PGconn *pgt_connect(void)
{
    PGconn *c = PQconnectdb(pgt_url());
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to %s: %s", pgt_url(), PQerrorMessage(c));
        abort();
    }
    /* IF EXISTS notices would clutter the test log. */
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

gboolean pgt_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    gboolean ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "SQL failed: %s\n  %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

char *pgt_value(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    char *v = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = g_strdup(PQgetvalue(r, 0, 0));
    else if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "SQL failed: %s\n  %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return v;
}

msilo_pg_options_t *pgt_options(const char *table)
{
    msilo_pg_options_t *o;
    if (msilo_pg_options_new(&o) || msilo_pg_options_set(o, "db_url", pgt_url()) ||
        (table && msilo_pg_options_set(o, "db_table", table)))
        abort();
    return o;
}

void pgt_drop(PGconn *c, const char *table)
{
    /* the per-device tables first: they refer to the table */
    static const char *const suffixes[] = { "_delivery", "_device", "" };
    for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
        char *name = g_strconcat(table, suffixes[i], NULL);
        char *q = PQescapeIdentifier(c, name, strlen(name));
        char *sql = g_strdup_printf("DROP TABLE IF EXISTS %s", q);
        pgt_exec(c, sql);
        g_free(sql);
        PQfreemem(q);
        g_free(name);
    }
}
