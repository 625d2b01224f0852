/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store conformance suite of the test kit (<msilo/testing/store.h>)
 * against the PostgreSQL store.
 * Each test gets a fresh table with a unique name, created by
 * msilo_pg_migrate() and dropped when the suite closes the store.
 */
#include <msilo/testing/store.h>
#include <stdio.h>
#include <stdlib.h>

#include "pg-test-util.h"

typedef struct factory {
    GMutex lock;
    GHashTable *tables; /* msilo_store_t * -> table name */
    PGconn *admin;      /* drops the tables */
} factory_t;

static int pg_open(void *data, msilo_store_t **ret)
{
    factory_t *f = data;
    char *table = pgt_table_name("conf");
    msilo_pg_options_t *o = pgt_options(table);
    int e = msilo_pg_migrate(o, 0, NULL);
    msilo_store_t *s = NULL;
    if (!e)
        e = msilo_pg_store_new(&s, o);
    msilo_pg_options_free(o);
    if (e) {
        fprintf(stderr, "opening a PostgreSQL store on %s: %s: %s\n", table, msilo_strerror(e),
                msilo_error_detail());
        g_free(table);
        return e;
    }
    g_mutex_lock(&f->lock);
    g_hash_table_insert(f->tables, s, table);
    g_mutex_unlock(&f->lock);
    *ret = s;
    return 0;
}

static void pg_close(void *data, msilo_store_t *s)
{
    factory_t *f = data;
    msilo_store_free(s);
    g_mutex_lock(&f->lock);
    char *table = g_hash_table_lookup(f->tables, s);
    if (table) {
        pgt_drop(f->admin, table);
        g_hash_table_remove(f->tables, s);
    }
    g_mutex_unlock(&f->lock);
}

int main(void)
{
    pgt_url(); /* exits 77 when there is no database */
    factory_t f;
    g_mutex_init(&f.lock);
    f.tables = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    f.admin = pgt_connect();
    /* One store is one connection and not thread-safe: the suite's
     * concurrent-claim test gives each claimer a peer (open_peer). */
    msilo_testing_store_suite_t suite = MSILO_TESTING_STORE_SUITE_INIT;
    suite.name = "postgres";
    suite.open = pg_open;
    suite.close = pg_close;
    suite.data = &f;
    int failed = msilo_testing_store_run(&suite);
    /* Tables of stores the suite did not close (a failed test). */
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, f.tables);
    while (g_hash_table_iter_next(&it, &k, &v))
        pgt_drop(f.admin, v);
    g_hash_table_destroy(f.tables);
    PQfinish(f.admin);
    g_mutex_clear(&f.lock);
    return msilo_testing_exit_status(failed);
}
