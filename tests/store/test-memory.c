/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The conformance suite of the test kit (<msilo/testing/store.h>) on the
 * in-memory store, then what only this backend
 * promises (ids from 1, its flags) and a randomized comparison with a naive
 * model: the conformance suite stores a few messages, which never exercises
 * the heaps' reordering or the id index's compaction at scale.
 */
#include <msilo/testing/store.h>

#include <glib.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static int open_memory(void *data, msilo_store_t **ret)
{
    (void)data;
    return msilo_memory_store_new(ret);
}

static void test_identity(void **state)
{
    (void)state;
    msilo_store_t *s = NULL;
    assert_int_equal(msilo_memory_store_new(NULL), MSILO_EINVAL);
    assert_int_equal(msilo_memory_store_new(&s), 0);
    assert_int_equal(msilo_store_check(s), 0);
    assert_string_equal(s->name, "memory");
    assert_int_equal(s->flags, MSILO_STORE_NONBLOCKING | MSILO_STORE_THREADSAFE);
    assert_non_null(s->list);
    assert_non_null(s->get);
    assert_non_null(s->purge);
    assert_non_null(s->reset_leases);

    /* ids start at 1 and are never reused */
    msilo_message_t *m = msilo_message_new();
    m->user = g_strdup("alice");
    m->domain = g_strdup("example.com");
    m->exp_time = 100;
    int res = 1;
    for (int64_t want = 1; want <= 3; want++) {
        assert_int_equal(msilo_store_put(s, &m, 1, 0, &res), 0);
        assert_int_equal(m->id, want);
    }
    int64_t ids[] = { 1, 2, 3 };
    assert_int_equal(msilo_store_remove(s, ids, 3, NULL), 0);
    assert_int_equal(msilo_store_put(s, &m, 1, 0, &res), 0);
    assert_int_equal(m->id, 4);
    msilo_message_free(m);
    msilo_store_free(s);
    msilo_store_free(NULL);
}

/* ------------------------------------------------------ model check */

enum { OWNERS = 7, OPS = 20000 };

typedef struct model_msg {
    int64_t id;
    int owner;
    int64_t exp_time, snd_time, next_try, lease_until;
    uint32_t attempts;
} model_msg_t;

typedef struct model {
    GArray *msgs; /* model_msg_t in id order */
} model_t;

static const char *owner_user(int o)
{
    static const char *const users[OWNERS] = { "a", "b", "c", "d", "e", "f", "g" };
    return users[o];
}

static model_msg_t *model_find(model_t *md, int64_t id)
{
    for (guint i = 0; i < md->msgs->len; i++) {
        model_msg_t *x = &g_array_index(md->msgs, model_msg_t, i);
        if (x->id == id)
            return x;
    }
    return NULL;
}

static int64_t model_count(model_t *md, int owner)
{
    int64_t n = 0;
    for (guint i = 0; i < md->msgs->len; i++)
        if (owner < 0 || g_array_index(md->msgs, model_msg_t, i).owner == owner)
            n++;
    return n;
}

static void check_claim(msilo_store_t *s, model_t *md, const msilo_store_claim_t *c, int owner)
{
    GArray *want = g_array_new(FALSE, FALSE, sizeof(int64_t));
    for (guint i = 0; i < md->msgs->len && want->len < c->max; i++) {
        model_msg_t *x = &g_array_index(md->msgs, model_msg_t, i);
        gboolean match = c->reminders ? (x->snd_time > 0 && x->snd_time <= c->now)
                                      : (x->owner == owner && x->snd_time == 0);
        if (match && x->exp_time > c->now && x->lease_until <= c->now &&
            x->next_try <= c->max_next_try) {
            g_array_append_val(want, x->id);
            x->lease_until = c->lease_until;
        }
    }
    msilo_message_t **got = NULL;
    size_t n = 0;
    assert_int_equal(msilo_store_claim(s, c, &got, &n), 0);
    assert_int_equal(n, want->len);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i]->id, g_array_index(want, int64_t, i));
    msilo_message_array_free(got, n);
    g_array_unref(want);
}

static void check_all(msilo_store_t *s, model_t *md)
{
    int64_t n = -1;
    assert_int_equal(msilo_store_count(s, NULL, NULL, &n), 0);
    assert_int_equal(n, model_count(md, -1));
    for (int o = 0; o < OWNERS; o++) {
        assert_int_equal(msilo_store_count(s, owner_user(o), "x.test", &n), 0);
        assert_int_equal(n, model_count(md, o));
    }
    /* the whole store, page by page, with every stored field */
    int64_t after = 0;
    guint seen = 0;
    for (;;) {
        msilo_message_t **list = NULL;
        size_t got = 0;
        assert_int_equal(msilo_store_list(s, NULL, NULL, after, 97, &list, &got), 0);
        for (size_t i = 0; i < got; i++, seen++) {
            assert_true(seen < md->msgs->len);
            model_msg_t *x = &g_array_index(md->msgs, model_msg_t, seen);
            assert_int_equal(list[i]->id, x->id);
            assert_string_equal(list[i]->user, owner_user(x->owner));
            assert_int_equal(list[i]->exp_time, x->exp_time);
            assert_int_equal(list[i]->snd_time, x->snd_time);
            assert_int_equal(list[i]->next_try, x->next_try);
            assert_int_equal(list[i]->attempts, x->attempts);
        }
        if (got)
            after = list[got - 1]->id;
        msilo_message_array_free(list, got);
        if (!got)
            break;
    }
    assert_int_equal(seen, md->msgs->len);
}

static void test_model(void **state)
{
    (void)state;
    msilo_store_t *s = NULL;
    assert_int_equal(msilo_memory_store_new(&s), 0);
    model_t md = { .msgs = g_array_new(FALSE, FALSE, sizeof(model_msg_t)) };
    GRand *rnd = g_rand_new_with_seed(20240611);
    int64_t now = 1000, next_id = 1;

    for (int op = 0; op < OPS; op++) {
        /* first half: the store grows to thousands of messages; second
         * half: time runs fast, so the heaps and the id index shrink */
        gboolean growing = op < OPS / 2;
        int kind = g_rand_int_range(rnd, 0, 100);
        if (kind < (growing ? 40 : 20)) { /* put a batch, sometimes with a limit */
            int64_t limit = g_rand_int_range(rnd, 0, 5) ? 0 : g_rand_int_range(rnd, 1, 1000);
            msilo_message_t *b[4];
            int res[4];
            int nb = g_rand_int_range(rnd, 1, 5);
            for (int i = 0; i < nb; i++) {
                b[i] = msilo_message_new();
                int o = g_rand_int_range(rnd, 0, OWNERS);
                b[i]->user = g_strdup(owner_user(o));
                b[i]->domain = g_strdup("x.test");
                b[i]->exp_time = now + g_rand_int_range(rnd, 0, 3000);
                b[i]->snd_time = g_rand_int_range(rnd, 0, 4) ? 0 : now + g_rand_int_range(rnd, -5, 60);
                b[i]->next_try = g_rand_int_range(rnd, 0, 3) ? 0 : now + 10;
            }
            assert_int_equal(msilo_store_put(s, b, (size_t)nb, limit, res), 0);
            for (int i = 0; i < nb; i++) {
                int o = 0;
                while (strcmp(owner_user(o), b[i]->user) != 0)
                    o++;
                if (limit > 0 && model_count(&md, o) >= limit) {
                    assert_int_equal(res[i], MSILO_EFULL);
                } else {
                    assert_int_equal(res[i], 0);
                    assert_int_equal(b[i]->id, next_id);
                    model_msg_t x = { .id = next_id++, .owner = o, .exp_time = b[i]->exp_time,
                                      .snd_time = b[i]->snd_time, .next_try = b[i]->next_try };
                    g_array_append_val(md.msgs, x);
                }
                msilo_message_free(b[i]);
            }
        } else if (kind < 55) { /* claim an owner's messages */
            int o = g_rand_int_range(rnd, 0, OWNERS);
            msilo_store_claim_t c = {
                .user = owner_user(o), .domain = "x.test", .now = now,
                .max_next_try = g_rand_boolean(rnd) ? INT64_MAX : now,
                .lease_owner = g_rand_boolean(rnd) ? "i1" : "i2",
                .lease_until = now + g_rand_int_range(rnd, 0, 30),
                .max = (size_t)g_rand_int_range(rnd, 1, 10),
            };
            check_claim(s, &md, &c, o);
        } else if (kind < 62) { /* claim due reminders */
            msilo_store_claim_t c = {
                .reminders = 1, .now = now, .max_next_try = now,
                .lease_owner = "i1", .lease_until = now + 20,
                .max = (size_t)g_rand_int_range(rnd, 1, 10),
            };
            check_claim(s, &md, &c, -1);
        } else if (kind < 75) { /* release a few (maybe unknown) ids */
            msilo_store_release_t r[3];
            for (int i = 0; i < 3; i++) {
                r[i] = (msilo_store_release_t){
                    .id = g_rand_int_range(rnd, 1, (gint32)next_id + 2),
                    .attempts = (uint32_t)g_rand_int_range(rnd, 0, 9),
                    .next_try = now + g_rand_int_range(rnd, 0, 20),
                    .flags = g_rand_boolean(rnd) ? MSILO_RELEASE_CLEAR_SND_TIME : 0,
                };
                model_msg_t *x = model_find(&md, r[i].id);
                if (x) {
                    x->attempts = r[i].attempts;
                    x->next_try = r[i].next_try;
                    x->lease_until = 0;
                    if (r[i].flags & MSILO_RELEASE_CLEAR_SND_TIME)
                        x->snd_time = 0;
                }
            }
            assert_int_equal(msilo_store_release(s, r, 3, sizeof(msilo_store_release_t)), 0);
        } else if (kind < 88) { /* remove a few ids, some unknown or repeated */
            int64_t ids[4];
            size_t want = 0;
            for (int i = 0; i < 4; i++) {
                ids[i] = g_rand_int_range(rnd, 1, (gint32)next_id + 2);
                for (guint j = 0; j < md.msgs->len; j++)
                    if (g_array_index(md.msgs, model_msg_t, j).id == ids[i]) {
                        g_array_remove_index(md.msgs, j);
                        want++;
                        break;
                    }
            }
            size_t deleted = 99;
            assert_int_equal(msilo_store_remove(s, ids, 4, &deleted), 0);
            assert_int_equal(deleted, want);
        } else if (kind < 93) { /* expire */
            size_t want = 0, deleted = 99;
            for (guint j = md.msgs->len; j-- > 0;)
                if (g_array_index(md.msgs, model_msg_t, j).exp_time <= now) {
                    g_array_remove_index(md.msgs, j);
                    want++;
                }
            assert_int_equal(msilo_store_expire(s, now, &deleted), 0);
            assert_int_equal(deleted, want);
        } else if (kind < 94 && !growing) { /* purge an owner */
            int o = g_rand_int_range(rnd, 0, OWNERS);
            size_t want = 0, deleted = 99;
            for (guint j = md.msgs->len; j-- > 0;)
                if (g_array_index(md.msgs, model_msg_t, j).owner == o) {
                    g_array_remove_index(md.msgs, j);
                    want++;
                }
            assert_int_equal(msilo_store_purge(s, owner_user(o), "x.test", &deleted), 0);
            assert_int_equal(deleted, want);
        } else if (kind < 95) { /* an instance restarts */
            size_t n = 99;
            assert_int_equal(msilo_store_reset_leases(s, "i2", &n), 0);
            /* the model does not track holders: make every lease end, as
             * resetting both instances does */
            assert_int_equal(msilo_store_reset_leases(s, "i1", NULL), 0);
            for (guint j = 0; j < md.msgs->len; j++)
                g_array_index(md.msgs, model_msg_t, j).lease_until = 0;
        } else { /* time passes */
            now += g_rand_int_range(rnd, 0, growing ? 3 : 60);
        }
        if (op % 500 == 0)
            check_all(s, &md);
    }
    check_all(s, &md);
    g_rand_free(rnd);
    g_array_unref(md.msgs);
    msilo_store_free(s);
}

int main(void)
{
    msilo_testing_store_suite_t suite = MSILO_TESTING_STORE_SUITE_INIT;
    suite.name = "store-memory";
    suite.open = open_memory;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_model),
    };
    int failed = msilo_testing_store_run(&suite);
    if (failed < 0)
        return msilo_testing_exit_status(failed);
    failed += cmocka_run_group_tests_name("memory-specific", tests, NULL, NULL);
    return msilo_testing_exit_status(failed);
}
