/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SQLite store's global caps (msilo_sqlite_store_set_limit()): messages
 * and bytes over the whole table, refused with MSILO_EFULL per message as
 * the memory store's caps are, kept right across deletes (any method), a
 * failed batch and another connection writing to the same file.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <msilo/msilo.h>
#include <msilo/sqlite.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#define NOW INT64_C(1700000000)

#define assert_ok(expr)                                                                    \
    do {                                                                                   \
        int rc_ = (expr);                                                                  \
        if (rc_ != 0)                                                                      \
            fail_msg("%s = %d: %s", #expr, rc_, msilo_error_detail());                     \
    } while (0)

static char *tmpdir;

static msilo_message_t *mk(const char *user, size_t body_len)
{
    msilo_message_t *m = msilo_message_new();
    m->user = g_strdup(user);
    m->domain = g_strdup("example.com");
    char *body = g_malloc(body_len + 1);
    memset(body, 'b', body_len);
    body[body_len] = '\0';
    m->body = body;
    m->body_len = body_len;
    m->inc_time = NOW;
    m->exp_time = NOW + 3600;
    return m;
}

/* Puts one message of @body_len bytes for @user: its result (0 or MSILO_EFULL). */
static int put1(msilo_store_t *s, const char *user, size_t body_len, int64_t *ret_id)
{
    msilo_message_t *m = mk(user, body_len);
    int r = -1;
    assert_ok(msilo_store_put(s, &m, 1, 0, &r));
    if (ret_id)
        *ret_id = m->id;
    msilo_message_free(m);
    return r;
}

static msilo_store_t *open_store(const char *name)
{
    g_autofree char *path = g_build_filename(tmpdir, name, NULL);
    msilo_store_t *s = NULL;
    assert_ok(msilo_sqlite_store_new(&s, path));
    return s;
}

static void test_max_messages(void **state)
{
    (void)state;
    msilo_store_t *s = open_store("messages.db");
    int64_t first = 0;
    assert_int_equal(put1(s, "alice", 10, &first), 0); /* stored before the cap: counted */
    assert_ok(msilo_sqlite_store_set_limit(s, MSILO_SQLITE_MAX_MESSAGES, 3));
    assert_int_equal(put1(s, "bob", 10, NULL), 0);
    assert_int_equal(put1(s, "carol", 10, NULL), 0);
    /* every owner is refused now, per message, and nothing is stored */
    assert_int_equal(put1(s, "dave", 10, NULL), MSILO_EFULL);
    int64_t n = 0;
    assert_ok(msilo_store_count(s, NULL, NULL, &n));
    assert_int_equal(n, 3);
    /* a batch: what fits is stored, the rest refused */
    assert_ok(msilo_sqlite_store_set_limit(s, MSILO_SQLITE_MAX_MESSAGES, 5));
    msilo_message_t *b[3] = { mk("e", 1), mk("f", 1), mk("g", 1) };
    int res[3];
    assert_ok(msilo_store_put(s, b, 3, 0, res));
    assert_int_equal(res[0], 0);
    assert_int_equal(res[1], 0);
    assert_int_equal(res[2], MSILO_EFULL);
    assert_true(b[2]->id == 0);
    for (int i = 0; i < 3; i++)
        msilo_message_free(b[i]);
    /* a delete makes room */
    assert_int_equal(put1(s, "h", 1, NULL), MSILO_EFULL);
    assert_ok(msilo_store_remove(s, &first, 1, NULL));
    assert_int_equal(put1(s, "h", 1, NULL), 0);
    assert_int_equal(put1(s, "i", 1, NULL), MSILO_EFULL);
    /* expiry too (another delete statement) */
    size_t gone = 0;
    assert_ok(msilo_store_expire(s, NOW + 7200, &gone));
    assert_int_equal(gone, 5);
    assert_int_equal(put1(s, "j", 1, NULL), 0);
    /* 0 turns it off */
    assert_ok(msilo_sqlite_store_set_limit(s, MSILO_SQLITE_MAX_MESSAGES, 1));
    assert_int_equal(put1(s, "k", 1, NULL), MSILO_EFULL);
    assert_ok(msilo_sqlite_store_set_limit(s, MSILO_SQLITE_MAX_MESSAGES, 0));
    assert_int_equal(put1(s, "k", 1, NULL), 0);
    msilo_store_free(s);
}

static void test_max_bytes(void **state)
{
    (void)state;
    msilo_store_t *s = open_store("bytes.db");
    /* the messages of mk() count their body only (no addresses, no type) */
    assert_ok(msilo_sqlite_store_set_limit(s, MSILO_SQLITE_MAX_BYTES, 200000));
    int got[5];
    for (int i = 0; i < 5; i++)
        got[i] = put1(s, "big", 60000, NULL);
    assert_int_equal(got[0], 0);
    assert_int_equal(got[1], 0);
    assert_int_equal(got[2], 0);
    assert_int_equal(got[3], MSILO_EFULL);
    assert_int_equal(got[4], MSILO_EFULL);
    /* what still fits does: 20 000 bytes are left */
    assert_int_equal(put1(s, "small", 20000, NULL), 0);
    assert_int_equal(put1(s, "small", 1, NULL), MSILO_EFULL);
    /* the addresses count too */
    assert_ok(msilo_sqlite_store_set_limit(s, MSILO_SQLITE_MAX_BYTES, 200010));
    msilo_message_t *m = mk("small", 1);
    m->src = g_strdup("sip:a-long-address@example.org");
    int r = -1;
    assert_ok(msilo_store_put(s, &m, 1, 0, &r));
    assert_int_equal(r, MSILO_EFULL);
    msilo_message_free(m);
    assert_int_equal(put1(s, "small", 10, NULL), 0);
    msilo_store_free(s);
}

static void test_other_connection_counts(void **state)
{
    (void)state;
    msilo_store_t *a = open_store("shared.db");
    msilo_store_t *b = open_store("shared.db");
    assert_ok(msilo_sqlite_store_set_limit(a, MSILO_SQLITE_MAX_MESSAGES, 3));
    assert_int_equal(put1(a, "x", 1, NULL), 0); /* a counts its totals now */
    assert_int_equal(put1(b, "y", 1, NULL), 0); /* b has no cap */
    assert_int_equal(put1(b, "y", 1, NULL), 0);
    /* a sees b's two commits (data_version): the table is full */
    assert_int_equal(put1(a, "x", 1, NULL), MSILO_EFULL);
    int64_t n = 0;
    assert_ok(msilo_store_count(a, NULL, NULL, &n));
    assert_int_equal(n, 3);
    msilo_store_free(b);
    msilo_store_free(a);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    msilo_store_t *mem = NULL;
    assert_ok(msilo_memory_store_new(&mem));
    assert_int_equal(msilo_sqlite_store_set_limit(mem, MSILO_SQLITE_MAX_MESSAGES, 1),
                     MSILO_EINVAL);
    assert_int_equal(msilo_sqlite_store_set_limit(NULL, MSILO_SQLITE_MAX_MESSAGES, 1),
                     MSILO_EINVAL);
    msilo_store_free(mem);
    msilo_store_t *s = open_store("bad.db");
    assert_int_equal(msilo_sqlite_store_set_limit(s, (msilo_sqlite_limit_t)7, 1), MSILO_EINVAL);
    assert_int_equal(msilo_sqlite_store_set_limit(s, MSILO_SQLITE_MAX_BYTES, UINT64_MAX),
                     MSILO_EINVAL);
    msilo_store_free(s);
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
    tmpdir = g_dir_make_tmp("msilo-sqlite-limit-XXXXXX", NULL);
    if (!tmpdir)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_messages),
        cmocka_unit_test(test_max_bytes),
        cmocka_unit_test(test_other_connection_counts),
        cmocka_unit_test(test_bad_arguments),
    };
    int failed = cmocka_run_group_tests_name("sqlite-limit", tests, NULL, NULL);
    remove_files(tmpdir);
    g_rmdir(tmpdir);
    g_free(tmpdir);
    return failed;
}
