/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-server: who gets a mailbox ([server] store_for). `any` is msilo's
 * rule, every user of a local domain; `users_file` only the users of the
 * auth users file (its user names, read once at start, for every local
 * domain: the file has no domains); `registered` only the addresses of
 * record that registered within registered_within seconds, as seen by this
 * process: the last-seen table lives in memory, is empty after a restart
 * and is not shared with other servers on the same store.
 *
 * Owns: s->known (the user names, the last-seen table).
 */
#include <string.h>

#include "server.h"

#include <sofia-sip/url.h>

struct known {
    GHashTable *users; /* user name set (users_file) */
    GHashTable *seen;  /* "user@domain" -> int64_t* last REGISTER (registered) */
};

/* The user names of a users file: the first field of every line that is
 * not empty or a comment ("user:password:realm", "user:realm:HA1"). */
static GHashTable *read_users(const char *path, GError **error)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents(path, &text, NULL, error))
        return NULL;
    GHashTable *users = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        char *line = g_strstrip(*l);
        if (!line[0] || line[0] == '#')
            continue;
        size_t n = strcspn(line, ":");
        if (n > 0)
            g_hash_table_add(users, g_strndup(line, n));
    }
    return users;
}

bool server_known_start(server_t *s, GError **error)
{
    s->known = g_new0(struct known, 1);
    if (s->opt.store_for == STORE_FOR_USERS_FILE) {
        if (!s->opt.auth_users) {
            g_set_error(error, g_quark_from_static_string("msilo-server"), 1,
                        "store_for = users_file needs auth_users");
            return false;
        }
        s->known->users = read_users(s->opt.auth_users, error);
        if (!s->known->users)
            return false;
        g_message("store_for users_file: %u users of %s get a mailbox",
                  g_hash_table_size(s->known->users), s->opt.auth_users);
    }
    if (s->opt.store_for == STORE_FOR_REGISTERED)
        s->known->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return true;
}

void server_known_stop(server_t *s)
{
    if (!s->known)
        return;
    if (s->known->users)
        g_hash_table_unref(s->known->users);
    if (s->known->seen)
        g_hash_table_unref(s->known->seen);
    g_clear_pointer(&s->known, g_free);
}

void server_known_seen(server_t *s, const char *aor, int64_t now)
{
    if (!s->known || !s->known->seen)
        return;
    int64_t *t = g_hash_table_lookup(s->known->seen, aor);
    if (!t) {
        t = g_new(int64_t, 1);
        g_hash_table_insert(s->known->seen, g_strdup(aor), t);
    }
    *t = now;
}

bool server_known_user(server_t *s, url_t const *owner)
{
    if (s->opt.store_for == STORE_FOR_ANY || !s->known)
        return true;
    g_autofree char *aor = server_aor_of_url(owner);
    if (!aor)
        return false;
    if (s->known->users) {
        char *at = strrchr(aor, '@');
        if (at)
            *at = '\0';
        return g_hash_table_contains(s->known->users, aor);
    }
    const int64_t *t = s->known->seen ? g_hash_table_lookup(s->known->seen, aor) : NULL;
    return t && *t + (int64_t)s->opt.registered_within >= server_now();
}

void server_known_expire(server_t *s, int64_t now)
{
    if (!s->known || !s->known->seen)
        return;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, s->known->seen);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (*(int64_t *)value + (int64_t)s->opt.registered_within < now)
            g_hash_table_iter_remove(&it);
}
