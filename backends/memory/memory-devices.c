/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The memory store's per-device delivery state (memory-devices.h): which
 * devices each owner has, and which device has or leases which message.
 * Hash tables, since only deployments with deliver_to = every_device fill
 * them, and a user has a handful of devices: the per-message cost of the
 * default mode (deliver_to = first) stays in memory.c's packed entries.
 * Called by memory.c with the store's lock held.
 */
#include "memory-devices.h"

#include <string.h>

typedef struct dstate {
    gboolean delivered;
    uint32_t attempts;
    int64_t next_try;
    int64_t lease_until;
    char *holder; /* lease_owner of the lease, NULL = none */
} dstate_t;

static void dstate_free(gpointer p)
{
    dstate_t *s = p;
    g_free(s->holder);
    g_free(s);
}

static char *owner_key(const char *user, const char *domain)
{
    return g_strconcat(user, "\n", domain, NULL);
}

void memdev_init(memdev_t *d)
{
    d->owners = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify)g_hash_table_unref);
    d->states = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                      (GDestroyNotify)g_hash_table_unref);
    d->targets = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    d->tracked = 0;
}

void memdev_clear(memdev_t *d)
{
    g_hash_table_unref(d->owners);
    g_hash_table_unref(d->states);
    g_hash_table_unref(d->targets);
}

static void recount(memdev_t *d)
{
    d->tracked = g_hash_table_size(d->states) + g_hash_table_size(d->targets);
}

void memdev_seen(memdev_t *d, const char *user, const char *domain, const char *device,
                 int64_t now)
{
    char *key = owner_key(user, domain);
    GHashTable *devs = g_hash_table_lookup(d->owners, key);
    if (!devs) {
        devs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_hash_table_insert(d->owners, key, devs);
    } else {
        g_free(key);
    }
    int64_t *seen = g_hash_table_lookup(devs, device);
    if (!seen) {
        seen = g_new(int64_t, 1);
        g_hash_table_insert(devs, g_strdup(device), seen);
    }
    *seen = now;
}

void memdev_set_target(memdev_t *d, int64_t id, const char *device)
{
    g_hash_table_insert(d->targets, g_memdup2(&id, sizeof id), g_strdup(device));
    recount(d);
}

const char *memdev_target(const memdev_t *d, int64_t id)
{
    return d->tracked ? g_hash_table_lookup(d->targets, &id) : NULL;
}

static dstate_t *state_of(const memdev_t *d, int64_t id, const char *device)
{
    GHashTable *per = g_hash_table_lookup(d->states, &id);
    return per ? g_hash_table_lookup(per, device) : NULL;
}

static dstate_t *state_get(memdev_t *d, int64_t id, const char *device)
{
    GHashTable *per = g_hash_table_lookup(d->states, &id);
    if (!per) {
        per = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, dstate_free);
        g_hash_table_insert(d->states, g_memdup2(&id, sizeof id), per);
        recount(d);
    }
    dstate_t *s = g_hash_table_lookup(per, device);
    if (!s) {
        s = g_new0(dstate_t, 1);
        g_hash_table_insert(per, g_strdup(device), s);
    }
    return s;
}

gboolean memdev_claimable(const memdev_t *d, int64_t id, const msilo_store_claim_t *c,
                          memdev_view_t *view)
{
    const char *target = memdev_target(d, id);
    if (target && strcmp(target, c->device) != 0)
        return FALSE;
    const dstate_t *s = state_of(d, id, c->device);
    *view = (memdev_view_t){ 0, 0 };
    if (!s)
        return TRUE;
    if (s->delivered || (s->holder && s->lease_until > c->now) || s->next_try > c->max_next_try)
        return FALSE;
    *view = (memdev_view_t){ s->attempts, s->next_try };
    return TRUE;
}

void memdev_lease(memdev_t *d, int64_t id, const msilo_store_claim_t *c)
{
    dstate_t *s = state_get(d, id, c->device);
    g_free(s->holder);
    s->holder = g_strdup(c->lease_owner);
    s->lease_until = c->lease_until;
}

void memdev_release(memdev_t *d, const msilo_store_release_t *it)
{
    dstate_t *s = state_of(d, it->id, it->device);
    if (!s || s->delivered)
        return;
    if (it->lease_owner && s->holder && strcmp(s->holder, it->lease_owner) != 0)
        return; /* claimed again by another instance after our lease ran out */
    s->attempts = it->attempts;
    s->next_try = it->next_try;
    g_clear_pointer(&s->holder, g_free);
    s->lease_until = 0;
}

static gboolean every_device_has(const memdev_t *d, int64_t id, const char *user,
                                 const char *domain)
{
    char *key = owner_key(user, domain);
    GHashTable *devs = g_hash_table_lookup(d->owners, key);
    g_free(key);
    if (!devs)
        return TRUE;
    GHashTableIter it;
    gpointer dev;
    g_hash_table_iter_init(&it, devs);
    while (g_hash_table_iter_next(&it, &dev, NULL)) {
        const dstate_t *s = state_of(d, id, dev);
        if (!s || !s->delivered)
            return FALSE;
    }
    return TRUE;
}

gboolean memdev_mark(memdev_t *d, int64_t id, const char *user, const char *domain,
                     const char *device)
{
    const char *target = memdev_target(d, id);
    if (target && strcmp(target, device) == 0)
        return TRUE;
    dstate_t *s = state_get(d, id, device);
    s->delivered = TRUE;
    g_clear_pointer(&s->holder, g_free);
    s->lease_until = 0;
    return every_device_has(d, id, user, domain);
}

gboolean memdev_complete(const memdev_t *d, int64_t id, const char *user, const char *domain)
{
    GHashTable *per = d->tracked ? g_hash_table_lookup(d->states, &id) : NULL;
    if (!per)
        return FALSE;
    gboolean any = FALSE;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, per);
    while (!any && g_hash_table_iter_next(&it, NULL, &v))
        any = ((const dstate_t *)v)->delivered;
    return any && every_device_has(d, id, user, domain);
}

void memdev_forget(memdev_t *d, int64_t seen_before, size_t *ret_n, GPtrArray *owners)
{
    size_t n = 0;
    GHashTableIter it;
    gpointer key, devs;
    g_hash_table_iter_init(&it, d->owners);
    while (g_hash_table_iter_next(&it, &key, &devs)) {
        size_t before = n;
        GHashTableIter di;
        gpointer seen;
        g_hash_table_iter_init(&di, devs);
        while (g_hash_table_iter_next(&di, NULL, &seen))
            if (*(int64_t *)seen < seen_before) {
                g_hash_table_iter_remove(&di);
                n++;
            }
        if (n != before)
            g_ptr_array_add(owners, g_strdup(key));
        if (g_hash_table_size(devs) == 0)
            g_hash_table_iter_remove(&it);
    }
    *ret_n = n;
}

size_t memdev_reset(memdev_t *d, const char *lease_owner)
{
    size_t n = 0;
    GHashTableIter it, di;
    gpointer per, v;
    g_hash_table_iter_init(&it, d->states);
    while (g_hash_table_iter_next(&it, NULL, &per)) {
        g_hash_table_iter_init(&di, per);
        while (g_hash_table_iter_next(&di, NULL, &v)) {
            dstate_t *s = v;
            if (s->holder && strcmp(s->holder, lease_owner) == 0) {
                g_clear_pointer(&s->holder, g_free);
                s->lease_until = 0;
                n++;
            }
        }
    }
    return n;
}

void memdev_drop(memdev_t *d, int64_t id)
{
    g_hash_table_remove(d->states, &id);
    g_hash_table_remove(d->targets, &id);
    recount(d);
}
