/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Argument and vtable checks in front of every store method. */
#include "internal.h"

#include <stdarg.h>
#include <string.h>

/* How many bytes of msilo_store_t each version has: up to the end of the last
 * member it knows. A backend compiled against an older header embeds that
 * shorter struct, and its own fields follow it. */
#define MEMBER_END(type, m) (offsetof(type, m) + sizeof(((type *)0)->m))
static const size_t store_version_size[] = {
    [1] = MEMBER_END(msilo_store_t, reset_leases),
    [2] = MEMBER_END(msilo_store_t, open_peer),
    [3] = MEMBER_END(msilo_store_t, interrupt), /* + release() got its item_size */
    [4] = MEMBER_END(msilo_store_t, forget_devices),
};
/* A new version appends a row above. */
G_STATIC_ASSERT(G_N_ELEMENTS(store_version_size) == MSILO_STORE_VERSION + 1);

int msilo_store_init(msilo_store_t *s, unsigned version)
{
    if (!s)
        return msilo_fail(MSILO_EINVAL, "msilo_store_init: store is NULL");
    if (version < 1 || version > MSILO_STORE_VERSION)
        return msilo_fail(MSILO_EVERSION,
                          "msilo_store_init: store version %u not supported (1..%u)", version,
                          (unsigned)MSILO_STORE_VERSION);
    msilo_store_t init = MSILO_STORE_INIT;
    init.version = version;
    memcpy(s, &init, store_version_size[version]);
    return 0;
}

int msilo_store_check(const msilo_store_t *s)
{
    if (!s)
        return msilo_fail(MSILO_EINVAL, "store is NULL");
    if (s->version < 1 || s->version > MSILO_STORE_VERSION)
        return msilo_fail(MSILO_EVERSION, "store version %u not supported (1..%u)", s->version,
                          (unsigned)MSILO_STORE_VERSION);
    if (!s->name)
        return msilo_fail(MSILO_EINVAL, "store has no name");
#define REQUIRE(m)                                                                             \
    if (!s->m)                                                                                 \
        return msilo_fail(MSILO_EINVAL, "store '%s' lacks required method '%s'", s->name, #m);
    REQUIRE(put)
    REQUIRE(claim)
    REQUIRE(remove)
    REQUIRE(release)
    REQUIRE(count)
    REQUIRE(expire)
    REQUIRE(free)
#undef REQUIRE
    return 0;
}

static gboolean owner_ok(const char *user, const char *domain)
{
    /* both set, or both NULL ("every owner") */
    return (user == NULL) == (domain == NULL);
}

int msilo_store_put(msilo_store_t *s, msilo_message_t *const *msgs, size_t n,
                    int64_t max_per_owner, int *results)
{
    if (!s || (!msgs && n) || (!results && n) || max_per_owner < 0)
        return msilo_fail(MSILO_EINVAL, "msilo_store_put: bad arguments");
    for (size_t i = 0; i < n; i++)
        if (!msgs[i] || !msgs[i]->user || !msgs[i]->domain || (msgs[i]->body_len && !msgs[i]->body))
            return msilo_fail(MSILO_EINVAL, "msilo_store_put: message %zu incomplete", i);
    if (n == 0)
        return 0;
    return s->put(s, msgs, n, max_per_owner, results);
}

int msilo_store_claim(msilo_store_t *s, const msilo_store_claim_t *c, msilo_message_t ***ret_msgs,
                      size_t *ret_n)
{
    if (!s || !c || !ret_msgs || !ret_n || c->max == 0 || !c->lease_owner)
        return msilo_fail(MSILO_EINVAL, "msilo_store_claim: bad arguments");
    if (!c->reminders && (!c->user || !c->domain))
        return msilo_fail(MSILO_EINVAL, "msilo_store_claim: owner required");
    return s->claim(s, c, ret_msgs, ret_n);
}

int msilo_store_claim_engine(msilo_store_t *s, const msilo_store_claim_t *c,
                             msilo_message_t ***ret_msgs, size_t *ret_n)
{
    if (s && msilo_memory_store_is(s)) /* which checks its arguments */
        return msilo_memory_claim_packed(s, c, ret_msgs, ret_n);
    return msilo_store_claim(s, c, ret_msgs, ret_n);
}

int msilo_store_remove(msilo_store_t *s, const int64_t *ids, size_t n, size_t *ret_deleted)
{
    if (!s || (!ids && n))
        return msilo_fail(MSILO_EINVAL, "msilo_store_remove: bad arguments");
    if (n == 0) {
        if (ret_deleted)
            *ret_deleted = 0;
        return 0;
    }
    return s->remove(s, ids, n, ret_deleted);
}

/* The first revision of msilo_store_release_t ends at lease_owner. */
#define RELEASE_V1_SIZE MEMBER_END(msilo_store_release_t, lease_owner)

int msilo_store_release(msilo_store_t *s, const msilo_store_release_t *items, size_t n,
                        size_t item_size)
{
    if (!s || (!items && n) || item_size < RELEASE_V1_SIZE)
        return msilo_fail(MSILO_EINVAL, "msilo_store_release: bad arguments");
    if (n == 0)
        return 0;
    if (item_size == sizeof *items) /* the engine's, and any caller's of this revision */
        return s->release(s, items, n, item_size);
    /* A caller compiled against another revision: the library's own items,
     * the members it did not know zeroed (their defaults). */
    size_t known = MIN(item_size, sizeof *items);
    msilo_store_release_t *own = g_new0(msilo_store_release_t, n);
    for (size_t i = 0; i < n; i++)
        memcpy(&own[i], (const char *)items + i * item_size, known);
    int rc = s->release(s, own, n, sizeof *own);
    g_free(own);
    return rc;
}

int msilo_store_count(msilo_store_t *s, const char *user, const char *domain, int64_t *ret_count)
{
    if (!s || !ret_count || !owner_ok(user, domain))
        return msilo_fail(MSILO_EINVAL, "msilo_store_count: bad arguments");
    return s->count(s, user, domain, ret_count);
}

int msilo_store_expire(msilo_store_t *s, int64_t now, size_t *ret_deleted)
{
    if (!s)
        return msilo_fail(MSILO_EINVAL, "msilo_store_expire: store is NULL");
    return s->expire(s, now, ret_deleted);
}

int msilo_store_list(msilo_store_t *s, const char *user, const char *domain, int64_t after_id,
                     size_t max, msilo_message_t ***ret_msgs, size_t *ret_n)
{
    if (!s || !ret_msgs || !ret_n || max == 0 || !owner_ok(user, domain))
        return msilo_fail(MSILO_EINVAL, "msilo_store_list: bad arguments");
    if (!s->list)
        return msilo_fail(MSILO_ENOTSUP, "store '%s' cannot list", s->name);
    return s->list(s, user, domain, after_id, max, ret_msgs, ret_n);
}

int msilo_store_get(msilo_store_t *s, int64_t id, msilo_message_t **ret_msg)
{
    if (!s || !ret_msg)
        return msilo_fail(MSILO_EINVAL, "msilo_store_get: bad arguments");
    if (!s->get)
        return msilo_fail(MSILO_ENOTSUP, "store '%s' cannot get", s->name);
    return s->get(s, id, ret_msg);
}

int msilo_store_purge(msilo_store_t *s, const char *user, const char *domain, size_t *ret_deleted)
{
    if (!s || !user || !domain)
        return msilo_fail(MSILO_EINVAL, "msilo_store_purge: bad arguments");
    if (!s->purge)
        return msilo_fail(MSILO_ENOTSUP, "store '%s' cannot purge", s->name);
    return s->purge(s, user, domain, ret_deleted);
}

int msilo_store_reset_leases(msilo_store_t *s, const char *lease_owner, size_t *ret_n)
{
    if (!s || !lease_owner)
        return msilo_fail(MSILO_EINVAL, "msilo_store_reset_leases: bad arguments");
    if (!s->reset_leases)
        return msilo_fail(MSILO_ENOTSUP, "store '%s' cannot reset leases", s->name);
    return s->reset_leases(s, lease_owner, ret_n);
}

int msilo_store_open_peer(msilo_store_t *s, msilo_store_t **ret)
{
    if (!s || !ret)
        return msilo_fail(MSILO_EINVAL, "msilo_store_open_peer: bad arguments");
    *ret = NULL;
    if (s->version < 2 || !s->open_peer)
        return msilo_fail(MSILO_ENOTSUP, "store '%s' cannot open another handle", s->name);
    int rc = s->open_peer(s, ret);
    if (rc == 0 && (rc = msilo_store_check(*ret))) {
        msilo_store_free(*ret);
        *ret = NULL;
    }
    return rc;
}

int msilo_store_interrupt(msilo_store_t *s)
{
    if (!s)
        return msilo_fail(MSILO_EINVAL, "msilo_store_interrupt: store is NULL");
    if (s->version < 3 || !s->interrupt)
        return msilo_fail(MSILO_ENOTSUP, "store '%s' cannot be interrupted", s->name);
    s->interrupt(s);
    return 0;
}

int msilo_store_take_expired(msilo_store_t *s, int64_t now, const char *ctype, size_t max,
                             msilo_message_t ***ret_msgs, size_t *ret_n)
{
    if (!s || !ret_msgs || !ret_n || max == 0)
        return msilo_fail(MSILO_EINVAL, "msilo_store_take_expired: bad arguments");
    *ret_msgs = NULL;
    *ret_n = 0;
    if (s->version < 4 || !s->take_expired)
        return msilo_fail(MSILO_ENOTSUP, "store '%s' cannot take expired messages", s->name);
    return s->take_expired(s, now, ctype, max, ret_msgs, ret_n);
}

int msilo_store_mark_delivered(msilo_store_t *s, const msilo_store_mark_t *items, size_t n,
                               size_t item_size, size_t *ret_deleted)
{
    if (!s || (n && !items) || item_size < sizeof(msilo_store_mark_t))
        return msilo_fail(MSILO_EINVAL, "msilo_store_mark_delivered: bad arguments");
    for (size_t i = 0; i < n; i++)
        if (!MSILO_STORE_MARK_ITEM(items, item_size, i)->device)
            return msilo_fail(MSILO_EINVAL, "msilo_store_mark_delivered: item %zu has no device",
                              i);
    if (s->version < 4 || !s->mark_delivered)
        return msilo_fail(MSILO_ENOTSUP, "store '%s' has no per-device delivery", s->name);
    if (ret_deleted)
        *ret_deleted = 0;
    return n ? s->mark_delivered(s, items, n, item_size, ret_deleted) : 0;
}

int msilo_store_forget_devices(msilo_store_t *s, int64_t seen_before, size_t *ret_n)
{
    if (!s)
        return msilo_fail(MSILO_EINVAL, "msilo_store_forget_devices: store is NULL");
    if (s->version < 4 || !s->forget_devices)
        return msilo_fail(MSILO_ENOTSUP, "store '%s' has no per-device delivery", s->name);
    return s->forget_devices(s, seen_before, ret_n);
}

int msilo_store_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *d = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    /* a detail is one line: database messages span several ("...\n\tThis
     * probably means..." from libpq) */
    g_strchomp(d);
    g_strdelimit(d, "\r\n\t", ' ');
    msilo_fail(code, "%s", d);
    g_free(d);
    return code;
}

void msilo_store_free(msilo_store_t *s)
{
    if (s && s->free)
        s->free(s);
}
