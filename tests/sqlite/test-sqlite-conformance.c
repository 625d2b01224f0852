/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store conformance suite of the test kit (<msilo/testing/store.h>)
 * against the SQLite store. Each
 * test gets a fresh database file in a private temporary folder, removed when
 * the suite closes the store.
 */
#include <glib/gstdio.h>
#include <msilo/sqlite.h>
#include <msilo/testing/store.h>
#include <stdio.h>

typedef struct factory {
    char *dir;
    unsigned seq;
} factory_t;

static int sq_open(void *data, msilo_store_t **ret)
{
    factory_t *f = data;
    /* Half the tests use the URL form, half a plain path: both must work. */
    char *path = g_strdup_printf("%s/conf-%u.db", f->dir, ++f->seq);
    char *loc = f->seq % 2 ? g_strconcat("sqlite://", path, NULL) : g_strdup(path);
    int e = msilo_sqlite_store_new(ret, loc);
    if (e)
        fprintf(stderr, "opening an SQLite store on %s: %s: %s\n", loc, msilo_strerror(e),
                msilo_error_detail());
    g_free(loc);
    g_free(path);
    return e;
}

static void remove_files(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        char *p = g_build_filename(dir, name, NULL);
        g_unlink(p);
        g_free(p);
    }
    if (d)
        g_dir_close(d);
}

int main(void)
{
    factory_t f = { 0 };
    GError *err = NULL;
    f.dir = g_dir_make_tmp("msilo-sqlite-XXXXXX", &err);
    if (!f.dir) {
        fprintf(stderr, "no temporary folder: %s\n", err->message);
        g_error_free(err);
        return 1;
    }
    msilo_testing_store_suite_t suite = MSILO_TESTING_STORE_SUITE_INIT;
    suite.name = "sqlite";
    suite.open = sq_open;
    suite.data = &f;
    int failed = msilo_testing_store_run(&suite);
    remove_files(f.dir);
    g_rmdir(f.dir);
    g_free(f.dir);
    return msilo_testing_exit_status(failed);
}
