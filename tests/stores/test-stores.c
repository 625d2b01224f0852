/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo_store_open() / msilo_store_migrate() (libmsilo-stores): every URL
 * form opens the store it names and the store works (a put reads back), the
 * keys of the configuration reach the backend (db_table), a migration is
 * counted and safe to repeat, and what is not a store URL is a clear
 * MSILO_ECONFIG whose detail never repeats the URL (it may hold a password).
 * PostgreSQL with MSILO_TEST_PG_URL (scripts/pg-test-cluster), else skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include <msilo/msilo.h>
#include <msilo/stores.h>

/* Stores one message for bob@example.org and counts it back. */
static void put_and_count(msilo_store_t *s)
{
    msilo_message_t *m = msilo_message_new();
    m->user = g_strdup("bob");
    m->domain = g_strdup("example.org");
    m->src = g_strdup("sip:alice@example.org");
    m->dst = g_strdup("sip:bob@example.org");
    m->body = g_memdup2("hi", 2);
    m->body_len = 2;
    m->inc_time = 1000;
    m->exp_time = 4000000000;
    msilo_message_t *batch[1] = { m };
    int result = -1;
    assert_int_equal(msilo_store_put(s, batch, 1, 0, &result), 0);
    assert_int_equal(result, 0);
    int64_t n = -1;
    assert_int_equal(msilo_store_count(s, "bob", "example.org", &n), 0);
    assert_int_equal(n, 1);
    msilo_message_free(m);
}

static void test_memory(void **state)
{
    (void)state;
    msilo_store_t *s = NULL;
    assert_true(msilo_store_url_supported("memory:"));
    assert_int_equal(msilo_store_open("memory:", NULL, MSILO_STORE_OPEN_MIGRATE, &s), 0);
    put_and_count(s);
    msilo_store_free(s);
}

static void test_sqlite(void **state)
{
    (void)state;
    char *dir = g_dir_make_tmp("msilo-stores-XXXXXX", NULL);
    char *url = g_strdup_printf("sqlite://%s/silo.db", dir);
    msilo_config_t *cfg = NULL;
    assert_int_equal(msilo_config_new(&cfg), 0);
    assert_int_equal(msilo_config_set(cfg, "db_table", "my_silo"), 0);
    assert_int_equal(msilo_config_set(cfg, "db_url", url), 0);

    size_t changes = 0;
    assert_int_equal(msilo_store_migrate(NULL, cfg, 0, &changes), 0); /* db_url of cfg */
    assert_true(changes > 0);
    assert_int_equal(msilo_store_migrate(url, cfg, 0, &changes), 0);
    assert_int_equal(changes, 0); /* safe to repeat */

    msilo_store_t *s = NULL;
    assert_int_equal(msilo_store_open(url, cfg, 0, &s), 0);
    put_and_count(s);
    msilo_store_free(s);
    /* the table of cfg was used: the default table is empty in the same file */
    assert_int_equal(msilo_store_open(url, NULL, 0, &s), 0);
    int64_t n = -1;
    assert_int_equal(msilo_store_count(s, "bob", "example.org", &n), 0);
    assert_int_equal(n, 0);
    msilo_store_free(s);

    char *path = g_build_filename(dir, "silo.db", NULL);
    g_unlink(path);
    g_free(path);
    path = g_build_filename(dir, "silo.db-wal", NULL);
    g_unlink(path);
    g_free(path);
    path = g_build_filename(dir, "silo.db-shm", NULL);
    g_unlink(path);
    g_free(path);
    g_rmdir(dir);
    g_free(url);
    g_free(dir);
    msilo_config_free(cfg);
}

static void test_postgres(void **state)
{
    (void)state;
    const char *url = getenv("MSILO_TEST_PG_URL");
    if (!url) {
        if (getenv("MSILO_REQUIRE_PG"))
            fail_msg("MSILO_REQUIRE_PG=1 but MSILO_TEST_PG_URL is not set");
        skip();
    }
    char *table = g_strdup_printf("stores_%d", (int)getpid());
    msilo_config_t *cfg = NULL;
    assert_int_equal(msilo_config_new(&cfg), 0);
    assert_int_equal(msilo_config_set(cfg, "db_table", table), 0);
    msilo_store_t *s = NULL;
    /* no table yet: a clear error that says to migrate */
    assert_int_equal(msilo_store_open(url, cfg, 0, &s), MSILO_ECONFIG);
    assert_true(msilo_error_detail()[0] != '\0');
    assert_int_equal(msilo_store_open(url, cfg, MSILO_STORE_OPEN_MIGRATE, &s), 0);
    put_and_count(s);
    msilo_store_free(s);
    size_t changes = 1;
    assert_int_equal(msilo_store_migrate(url, cfg, 0, &changes), 0);
    assert_int_equal(changes, 0);
    /* unreachable: the store opens (it connects on its first call, so a server
     * can start before its database); each call fails with MSILO_ESTORE and
     * libpq's reason, never the password */
    assert_int_equal(msilo_store_open("postgresql://u:S3cretPw@127.0.0.1:1/db", cfg, 0, &s), 0);
    int64_t n = 0;
    assert_int_equal(msilo_store_count(s, NULL, NULL, &n), MSILO_ESTORE);
    assert_non_null(strstr(msilo_error_detail(), "127.0.0.1"));
    assert_null(strstr(msilo_error_detail(), "S3cretPw"));
    msilo_store_free(s);
    g_free(table);
    msilo_config_free(cfg);
}

static void test_not_a_store(void **state)
{
    (void)state;
    static const char *const bad[] = { "mysql://root:S3cretPw@localhost/msilo", "/var/lib/x.db",
                                       "", "memory", "http://example.org/" };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        msilo_store_t *s = NULL;
        assert_false(msilo_store_url_supported(bad[i]));
        assert_int_equal(msilo_store_open(bad[i], NULL, 0, &s), MSILO_ECONFIG);
        assert_null(s);
        assert_null(strstr(msilo_error_detail(), "S3cretPw"));
    }
    msilo_store_t *s = NULL;
    assert_int_equal(msilo_store_open(NULL, NULL, 0, &s), MSILO_ECONFIG); /* no URL at all */
    assert_non_null(strstr(msilo_error_detail(), "db_url"));
    assert_int_equal(msilo_store_open("memory:", NULL, 0, NULL), MSILO_EINVAL);
    assert_false(msilo_store_url_supported(NULL));
    assert_string_equal(msilo_store_url_kind("postgresql://h/db"), "postgres");
    assert_string_equal(msilo_store_url_kind("host=h dbname=x"), "postgres");
    assert_string_equal(msilo_store_url_kind("SQLITE:///x.db"), "sqlite");
    assert_string_equal(msilo_store_url_kind(":memory:"), "sqlite");
    assert_string_equal(msilo_store_url_kind("memory:"), "memory");
    assert_null(msilo_store_url_kind("/var/lib/x.db"));
    assert_null(msilo_store_url_kind(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_sqlite),
        cmocka_unit_test(test_postgres),
        cmocka_unit_test(test_not_a_store),
    };
    return cmocka_run_group_tests_name("stores", tests, NULL, NULL);
}
