/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Helpers for the tests that need a real PostgreSQL (see
 * scripts/pg-test-cluster, which exports MSILO_TEST_PG_URL). */
#ifndef MSILO_PG_TEST_UTIL_H
#define MSILO_PG_TEST_UTIL_H

#include <glib.h>
#include <libpq-fe.h>
#include <msilo/msilo.h>
#include <msilo/postgres.h>

/* Exit status that tells meson "skipped". */
#define PGT_SKIP 77

/* MSILO_TEST_PG_URL. When unset: exits 77 (skip), or 1 with a message when
 * MSILO_REQUIRE_PG=1. Call it first in main(). */
const char *pgt_url(void);

/* A table name no other test (or test run) uses: prefix_pid_counter. */
char *pgt_table_name(const char *prefix);

/* A direct connection for setting up and inspecting tables; aborts on failure. */
PGconn *pgt_connect(void);

/* Runs SQL (no parameters); returns FALSE (and prints) on failure. */
gboolean pgt_exec(PGconn *c, const char *sql);

/* One value of a query (first row/column) as a new string, NULL if none. */
char *pgt_value(PGconn *c, const char *sql);

/* Options for @p table on the test database (free with msilo_pg_options_free). */
msilo_pg_options_t *pgt_options(const char *table);

/* Drops @p table if it exists. */
void pgt_drop(PGconn *c, const char *table);

#endif
