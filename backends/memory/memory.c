/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The in-memory store: the embedded default and the reference backend of the
 * conformance suite.
 *
 * Layout, chosen so that a million stored messages cost little beyond their
 * bytes (the benchmark budget is 200 bytes of overhead per message):
 *
 * - An entry is ONE allocation: a fixed header followed by the body and the
 *   NUL-terminated strings (src, dst, ctype, extra_hdrs, callid, store_key; a bit in
 *   `flags` says which are not NULL). No per-field mallocs. The default
 *   content type "text/plain" is a bit, not 11 bytes, and so is a dst that
 *   is exactly the owner's sip: address ("sip:" user "@" domain, the usual
 *   To of a message to an address of record), rebuilt on the way out.
 * - The owner (user, domain) is interned once in an owner_t; entries point to
 *   it. The owner's messages form an intrusive doubly-linked list in id order
 *   (ids only grow, so a put appends): claim walks only that owner's
 *   messages, removal unlinks in O(1), count is the owner's counter.
 * - Ids index: a sorted array of 8-byte slots (ids only grow, so a put
 *   appends). A deleted slot becomes a tombstone that keeps its id, so binary
 *   search still works; the array is compacted once tombstones outnumber the
 *   live slots. This gives get/remove in O(log n) and list-all in id order
 *   without a tree node per message.
 * - Expiry: a binary min-heap of (exp_time, id) pairs with lazy deletion.
 *   A delete leaves its pair behind (removing it from the middle cost a sift
 *   through ~log n entries, each a cache miss, per delivered message);
 *   expire pops due pairs and skips ids that are gone; the heap is rebuilt
 *   from the live entries once stale pairs outnumber them (O(1) amortized,
 *   memory proportional to the live count). Keys are inline: no entry is
 *   touched while sifting.
 * - Reminder times: a binary min-heap of entries; the entry stores its
 *   position, so removal is O(log n). Everything due (key <= now) is found
 *   by walking the heap from the root and stopping at any node that is not
 *   due: O(result), never a scan of all messages.
 * - A lease is two fields of the entry: until, and the holder as an index
 *   into a small table of interned lease_owner strings (one per engine
 *   instance, refcounted by the entries leased to it). A claim interns its
 *   lease_owner once; leasing and dropping a lease are field writes, with no
 *   malloc and no hash operation per message (a side table cost both, a
 *   third of a claim-and-delete). reset_leases scans the live entries, and
 *   only while the holder still has leases.
 *
 * - Per-device delivery (claim/release with a device, mark_delivered,
 *   forget_devices: deliver_to = every_device) lives in memory-devices.c,
 *   beside the entries: an entry stays one allocation, and a store that
 *   never sees a device pays one field test per delete.
 *
 * One GMutex guards everything; every method is short and never blocks on
 * anything else, hence MSILO_STORE_NONBLOCKING | MSILO_STORE_THREADSAFE.
 *
 * Why one file of ~1 470 lines: the structures above are small static
 * helpers that the compiler inlines into put, claim and remove, the store's
 * per-message path (bench/engine counts its instructions). Split across
 * files they would become calls (the build has no LTO). The sections below
 * (heaps, expiry heap, id index, owners, leases, entries, methods) are the
 * seams if that ever changes. Methods off that path live in files of their
 * own and reach these structures through memory-internal.h
 * (memory-expired.c: take_expired, on mem_take_due() below).
 */
#include "memory-internal.h"
#include "../../lib/tsan.h"
#include "memory-devices.h"

#include <inttypes.h>
#include <string.h>

typedef struct owner owner_t;

/* Entry flags. HAS_*: which optional strings follow the body in data[]. */
enum {
    HAS_SRC = 1u << 0,
    HAS_DST = 1u << 1,
    HAS_CTYPE = 1u << 2,
    HAS_EXTRA = 1u << 3,
    HAS_CALLID = 1u << 4,
    CTYPE_TEXT_PLAIN = 1u << 5, /* ctype is "text/plain" (HAS_CTYPE unset) */
    DST_AOR = 1u << 6,          /* dst is "sip:" user "@" domain of the owner (HAS_DST unset) */
    HAS_KEY = 1u << 7,          /* store_key follows the HAS_* strings (in m->keys) */
};

static const char text_plain[] = "text/plain";

#define NOT_IN_HEAP UINT32_MAX

typedef struct entry {
    int64_t id;
    owner_t *owner;
    struct entry *prev, *next; /* owner's list, id order */
    int64_t inc_time;
    int64_t exp_time;
    int64_t snd_time;
    int64_t next_try;
    int64_t lease_until; /* 0 when holder is 0 */
    uint32_t holder;   /* index + 1 into memory_store_t.holders, 0: not leased */
    uint32_t body_len; /* put refuses larger bodies */
    uint32_t attempts;
    uint32_t rem_pos;  /* position in the reminder heap, NOT_IN_HEAP if snd_time == 0 */
    uint8_t flags;     /* HAS_*, CTYPE_TEXT_PLAIN */
    /* body bytes, then each present string with its NUL, in HAS_* order */
    char data[];
} entry_t;

struct owner {
    const char *user;   /* both point into buf */
    const char *domain;
    entry_t *head, *tail;
    int64_t count;
    uint32_t hash;      /* owner_hash(user, domain) */
    char buf[];
};

/* The owners: open addressing, linear probing, the hash in the slot (a probe
 * compares names only on a hash match), backward-shift deletion (no
 * tombstones). One cache miss for the slot and one for the owner, where
 * GHashTable had three (hashes, keys, the owner); mem_put also prefetches
 * both for a window of its batch before it stores them. */
typedef struct owner_slot {
    owner_t *o; /* NULL: empty */
    uint32_t hash;
} owner_slot_t;

typedef struct owner_table {
    owner_slot_t *v;
    size_t mask; /* capacity - 1, capacity a power of two */
    size_t n;
} owner_table_t;

/* A lease_owner with leased entries. A lease that ran out stays until the
 * entry is claimed again, released or deleted. */
typedef struct holder {
    char *name; /* NULL: free slot */
    size_t refs; /* entries leased to it */
} holder_t;

/* A binary min-heap of entries keyed by a time. `rem` selects which time
 * and which position field, so one implementation serves both indexes. */
typedef struct heap {
    entry_t **v;
    uint32_t n, cap;
} heap_t;

/* The expiry heap: (exp_time, id) pairs, some stale (see the top). */
typedef struct exp_item {
    int64_t t;
    int64_t id;
} exp_item_t;

typedef struct exp_heap {
    exp_item_t *v;
    size_t n, cap;
    size_t stale; /* pairs whose entry is gone */
} exp_heap_t;

/* Sorted id index. A slot holds either a live entry pointer (low bit 0: g_malloc
 * aligns to at least 8) or a tombstone (id << 1) | 1 that keeps the order. */
typedef struct id_index {
    uint64_t *v;
    size_t n, cap, dead;
} id_index_t;

typedef struct memory_store {
    msilo_store_t base; /* first: the core sees an msilo_store_t */
    GMutex lock;
    int64_t next_id;
    int64_t total;
    owner_table_t owners;
    holder_t *holders;  /* slots, some free */
    uint32_t n_holders, cap_holders;
    GHashTable *holder_ids; /* name (holders[i].name) -> i + 1 */
    id_index_t ids;
    exp_heap_t exp_heap;
    heap_t rem_heap;
    /* store_key (in the entry's data) -> entry, for the entries with a key */
    GHashTable *keys;
    /* global caps (msilo_memory_store_set_limit()); 0 = none */
    int64_t max_total;
    uint64_t max_bytes;
    uint64_t bytes; /* entry_bytes() of every stored entry */
    /* per-device delivery (store revision 4), memory-devices.c */
    memdev_t dev;
} memory_store_t;

/* ---------------------------------------------------------------- heaps */

/* (the entry heap serves the reminder times only) */
static inline int64_t heap_key(const heap_t *h, const entry_t *e)
{
    (void)h;
    return e->snd_time;
}

static inline uint32_t *heap_pos(const heap_t *h, entry_t *e)
{
    (void)h;
    return &e->rem_pos;
}

/* No tie-break on id: expire takes every key <= now and reminder claims sort
 * what is due by id, so the order among equal times never shows. */
static inline gboolean heap_less(const heap_t *h, const entry_t *a, const entry_t *b)
{
    return heap_key(h, a) < heap_key(h, b);
}

static inline void heap_set(heap_t *h, uint32_t i, entry_t *e)
{
    h->v[i] = e;
    *heap_pos(h, e) = i;
}

static void heap_sift_up(heap_t *h, uint32_t i)
{
    entry_t *e = h->v[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!heap_less(h, e, h->v[parent]))
            break;
        heap_set(h, i, h->v[parent]);
        i = parent;
    }
    heap_set(h, i, e);
}

static void heap_sift_down(heap_t *h, uint32_t i)
{
    entry_t *e = h->v[i];
    for (;;) {
        uint32_t l = 2 * i + 1, m;
        if (l >= h->n)
            break;
        m = (l + 1 < h->n && heap_less(h, h->v[l + 1], h->v[l])) ? l + 1 : l;
        if (!heap_less(h, h->v[m], e))
            break;
        heap_set(h, i, h->v[m]);
        i = m;
    }
    heap_set(h, i, e);
}

/* Room for @p more entries; the caller checked that the count fits in uint32. */
static void heap_reserve(heap_t *h, size_t more)
{
    size_t need = (size_t)h->n + more;
    if (need <= h->cap)
        return;
    size_t cap = h->cap ? h->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > NOT_IN_HEAP)
        cap = NOT_IN_HEAP;
    h->v = g_renew(entry_t *, h->v, cap);
    h->cap = (uint32_t)cap;
}

static void heap_push(heap_t *h, entry_t *e)
{
    heap_reserve(h, 1);
    h->v[h->n] = e;
    heap_sift_up(h, h->n++);
}

static void heap_remove(heap_t *h, entry_t *e)
{
    uint32_t i = *heap_pos(h, e);
    *heap_pos(h, e) = NOT_IN_HEAP;
    h->n--;
    if (i == h->n)
        return;
    heap_set(h, i, h->v[h->n]);
    /* the moved entry may belong above or below its new place */
    if (i > 0 && heap_less(h, h->v[i], h->v[(i - 1) / 2]))
        heap_sift_up(h, i);
    else
        heap_sift_down(h, i);
    /* give memory back after a mass delete (expire, purge) */
    if (h->cap > 1024 && h->n < h->cap / 4) {
        h->cap /= 2;
        h->v = g_renew(entry_t *, h->v, h->cap);
    }
}

/* Appends every entry with key <= now to @p out: a node that is not due has
 * no due descendant, so this visits at most 2 * result + 1 nodes. Recursion
 * depth is the heap height (<= 32). */
static void heap_collect_due(const heap_t *h, uint32_t i, int64_t now, GPtrArray *out)
{
    if (i >= h->n || heap_key(h, h->v[i]) > now)
        return;
    g_ptr_array_add(out, h->v[i]);
    if (i < (NOT_IN_HEAP - 2) / 2) {
        heap_collect_due(h, 2 * i + 1, now, out);
        heap_collect_due(h, 2 * i + 2, now, out);
    }
}

/* --------------------------------------------------------- expiry heap */

static void exp_sift_up(exp_heap_t *h, size_t i)
{
    exp_item_t it = h->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->v[parent].t <= it.t)
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = it;
}

static void exp_sift_down(exp_heap_t *h, size_t i)
{
    exp_item_t it = h->v[i];
    for (;;) {
        size_t l = 2 * i + 1, c;
        if (l >= h->n)
            break;
        c = (l + 1 < h->n && h->v[l + 1].t < h->v[l].t) ? l + 1 : l;
        if (h->v[c].t >= it.t)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    h->v[i] = it;
}

static void exp_reserve(exp_heap_t *h, size_t more)
{
    if (h->n + more <= h->cap)
        return;
    size_t cap = h->cap ? h->cap : 64;
    while (cap < h->n + more)
        cap *= 2;
    h->v = g_renew(exp_item_t, h->v, cap);
    h->cap = cap;
}

static void exp_push(exp_heap_t *h, exp_item_t it)
{
    exp_reserve(h, 1);
    h->v[h->n] = it;
    exp_sift_up(h, h->n++);
}

static exp_item_t exp_pop(exp_heap_t *h)
{
    exp_item_t top = h->v[0];
    h->v[0] = h->v[--h->n];
    if (h->n)
        exp_sift_down(h, 0);
    return top;
}

/* ------------------------------------------------------------ id index */

static inline int64_t slot_id(uint64_t s)
{
    return (s & 1) ? (int64_t)(s >> 1) : ((const entry_t *)(uintptr_t)s)->id;
}

static inline entry_t *slot_entry(uint64_t s)
{
    return (s & 1) ? NULL : (entry_t *)(uintptr_t)s;
}

/* First slot whose id is >= @p id (n when none). */
static size_t ids_lower_bound(const id_index_t *x, int64_t id)
{
    size_t lo = 0, hi = x->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (slot_id(x->v[mid]) < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static entry_t *ids_find(const id_index_t *x, int64_t id, size_t *ret_pos)
{
    size_t i = ids_lower_bound(x, id);
    if (i >= x->n)
        return NULL;
    entry_t *e = slot_entry(x->v[i]);
    if (!e || e->id != id)
        return NULL;
    if (ret_pos)
        *ret_pos = i;
    return e;
}

static void ids_reserve(id_index_t *x, size_t more)
{
    if (x->n + more <= x->cap)
        return;
    size_t cap = x->cap ? x->cap : 64;
    while (cap < x->n + more)
        cap *= 2;
    x->v = g_renew(uint64_t, x->v, cap);
    x->cap = cap;
}

static void ids_append(id_index_t *x, entry_t *e)
{
    ids_reserve(x, 1);
    x->v[x->n++] = (uint64_t)(uintptr_t)e;
}

static void ids_kill(id_index_t *x, size_t pos)
{
    int64_t id = slot_id(x->v[pos]);
    x->v[pos] = ((uint64_t)id << 1) | 1;
    x->dead++;
    /* Compacting when tombstones outnumber live slots keeps searches and
     * memory proportional to the live count, at O(1) amortized per delete. */
    if (x->dead > 32 && x->dead > x->n - x->dead) {
        size_t j = 0;
        for (size_t i = 0; i < x->n; i++)
            if (!(x->v[i] & 1))
                x->v[j++] = x->v[i];
        x->n = j;
        x->dead = 0;
        if (x->cap > 64 && x->cap > 2 * x->n) {
            x->cap = MAX((size_t)64, 2 * x->n);
            x->v = g_renew(uint64_t, x->v, x->cap);
        }
    }
}

/* An entry was deleted (its id slot is a tombstone already): its pair in
 * the expiry heap is stale. Rebuilds the heap from the live entries once
 * stale pairs outnumber live ones. */
static void exp_forget(memory_store_t *m)
{
    exp_heap_t *h = &m->exp_heap;
    h->stale++;
    if (h->stale <= 32 || h->stale <= h->n - h->stale)
        return;
    size_t j = 0;
    for (size_t i = 0; i < m->ids.n; i++) {
        const entry_t *e = slot_entry(m->ids.v[i]);
        if (e)
            h->v[j++] = (exp_item_t){ e->exp_time, e->id };
    }
    h->n = j;
    h->stale = 0;
    for (size_t i = h->n / 2; i-- > 0;)
        exp_sift_down(h, i);
    if (h->cap > 64 && h->cap > 2 * h->n) {
        h->cap = MAX((size_t)64, 2 * h->n);
        h->v = g_renew(exp_item_t, h->v, h->cap);
    }
}

/* -------------------------------------------------------------- owners */

static uint32_t owner_hash(const char *user, const char *domain)
{
    /* FNV-1a over user, a separator and domain, then a final mix: the table
     * index is the low bits */
    uint32_t h = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)user; *c; c++)
        h = (h ^ *c) * 16777619u;
    h = (h ^ '@') * 16777619u;
    for (const unsigned char *c = (const unsigned char *)domain; *c; c++)
        h = (h ^ *c) * 16777619u;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    return h;
}

#define OWNER_TABLE_MIN 64

static void otab_init(owner_table_t *t)
{
    t->v = g_new0(owner_slot_t, OWNER_TABLE_MIN);
    t->mask = OWNER_TABLE_MIN - 1;
    t->n = 0;
}

static owner_t *otab_find(const owner_table_t *t, uint32_t h, const char *user,
                          const char *domain)
{
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const owner_slot_t *sl = &t->v[i];
        if (!sl->o)
            return NULL;
        if (sl->hash == h && strcmp(sl->o->user, user) == 0 && strcmp(sl->o->domain, domain) == 0)
            return sl->o;
    }
}

static void otab_resize(owner_table_t *t, size_t cap)
{
    owner_slot_t *old = t->v;
    size_t old_cap = t->mask + 1;
    t->v = g_new0(owner_slot_t, cap);
    t->mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].o)
            continue;
        size_t j = old[i].hash & t->mask;
        while (t->v[j].o)
            j = (j + 1) & t->mask;
        t->v[j] = old[i];
    }
    g_free(old);
}

static void otab_insert(owner_table_t *t, owner_t *o)
{
    if ((t->n + 1) * 4 > (t->mask + 1) * 3) /* load <= 3/4 */
        otab_resize(t, 2 * (t->mask + 1));
    size_t i = o->hash & t->mask;
    while (t->v[i].o)
        i = (i + 1) & t->mask;
    t->v[i] = (owner_slot_t){ o, o->hash };
    t->n++;
}

static void otab_remove(owner_table_t *t, const owner_t *o)
{
    size_t i = o->hash & t->mask;
    while (t->v[i].o != o)
        i = (i + 1) & t->mask;
    /* backward shift: move up every later slot of the run that may live at i */
    for (size_t j = i;;) {
        j = (j + 1) & t->mask;
        if (!t->v[j].o)
            break;
        size_t k = t->v[j].hash & t->mask; /* its home */
        /* it stays if its home lies cyclically in (i, j] */
        gboolean stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            t->v[i] = t->v[j];
            i = j;
        }
    }
    t->v[i].o = NULL;
    t->n--;
    /* give memory back after a mass delete */
    if (t->mask + 1 > OWNER_TABLE_MIN && t->n * 8 < t->mask + 1)
        otab_resize(t, (t->mask + 1) / 2);
}

static owner_t *owner_lookup(memory_store_t *m, const char *user, const char *domain)
{
    return otab_find(&m->owners, owner_hash(user, domain), user, domain);
}

/* Creates the owner that owner_lookup() did not find; @p h is its hash. */
static owner_t *owner_add(memory_store_t *m, uint32_t h, const char *user, const char *domain)
{
    owner_t *o;
    size_t ul = strlen(user) + 1, dl = strlen(domain) + 1;
    o = g_malloc0(sizeof *o + ul + dl);
    memcpy(o->buf, user, ul);
    memcpy(o->buf + ul, domain, dl);
    o->user = o->buf;
    o->domain = o->buf + ul;
    o->hash = h;
    otab_insert(&m->owners, o);
    return o;
}

/* -------------------------------------------------------------- leases */

/* The holder index (+ 1) of @p name, 0 if it holds no lease. */
static uint32_t holder_find(const memory_store_t *m, const char *name)
{
    return GPOINTER_TO_UINT(g_hash_table_lookup(m->holder_ids, name));
}

/* The holder index (+ 1) of @p name, interned if new; the caller takes a
 * reference (holder_ref) before anything can drop the holder's last one. */
static uint32_t holder_intern(memory_store_t *m, const char *name)
{
    uint32_t h = holder_find(m, name);
    if (h)
        return h;
    uint32_t i = 0;
    while (i < m->n_holders && m->holders[i].name)
        i++;
    if (i == m->n_holders) {
        if (m->n_holders == m->cap_holders) {
            m->cap_holders = m->cap_holders ? 2 * m->cap_holders : 4;
            m->holders = g_renew(holder_t, m->holders, m->cap_holders);
        }
        m->n_holders++;
    }
    m->holders[i].name = g_strdup(name);
    m->holders[i].refs = 0;
    g_hash_table_insert(m->holder_ids, m->holders[i].name, GUINT_TO_POINTER(i + 1));
    return i + 1;
}

static void holder_unref(memory_store_t *m, uint32_t h)
{
    holder_t *x = &m->holders[h - 1];
    if (--x->refs)
        return;
    g_hash_table_remove(m->holder_ids, x->name);
    g_free(x->name);
    x->name = NULL;
    while (m->n_holders && !m->holders[m->n_holders - 1].name)
        m->n_holders--;
}

static void lease_drop(memory_store_t *m, entry_t *e)
{
    if (!e->holder)
        return;
    uint32_t h = e->holder;
    e->holder = 0;
    e->lease_until = 0;
    holder_unref(m, h);
}

/* @p h from holder_intern() */
static void lease_set(memory_store_t *m, entry_t *e, uint32_t h, int64_t until)
{
    m->holders[h - 1].refs++; /* first: dropping e's old lease must not free h */
    lease_drop(m, e);
    e->holder = h;
    e->lease_until = until;
}

static int64_t lease_until(const memory_store_t *m, const entry_t *e)
{
    (void)m;
    return e->lease_until;
}

/* ------------------------------------------------------------- entries */

/* Copy for the engine's claim in ONE allocation (msilo_message_new_packed();
 * the core frees it with msilo_message_free()): the owner's names, then the
 * entry's data block as it is (body and strings are already contiguous
 * there). Only msilo_memory_claim_packed() gives these out; the vtable's
 * claim, list and get, which admin tools, embedders and the conformance
 * suite call, give ordinary messages (entry_to_plain_message()). */
static msilo_message_t *entry_to_message(const entry_t *e)
{
    size_t off[5]; /* where each present string starts in data[], in HAS_* order */
    size_t at = e->body_len;
    for (unsigned i = 0; i < G_N_ELEMENTS(off); i++) {
        off[i] = 0;
        if (e->flags & (1u << i)) {
            off[i] = at;
            at += strlen(e->data + at) + 1;
        }
    }
    size_t key_off = at;
    if (e->flags & HAS_KEY)
        at += strlen(e->data + at) + 1;
    size_t data_len = at;
    gboolean plain = (e->flags & CTYPE_TEXT_PLAIN) != 0;
    gboolean aor = (e->flags & DST_AOR) != 0;
    size_t ul = strlen(e->owner->user) + 1, dl = strlen(e->owner->domain) + 1;
    char *buf;
    msilo_message_t *msg = msilo_message_new_packed(
        ul + dl + data_len + (plain ? sizeof text_plain : 0) + (aor ? ul + dl + 4 : 0), &buf);
    msg->user = memcpy(buf, e->owner->user, ul);
    msg->domain = memcpy(buf + ul, e->owner->domain, dl);
    char *d = memcpy(buf + ul + dl, e->data, data_len);
    msg->body = e->body_len ? d : NULL;
    msg->body_len = e->body_len;
    msg->src = (e->flags & HAS_SRC) ? d + off[0] : NULL;
    msg->dst = (e->flags & HAS_DST) ? d + off[1] : NULL;
    msg->ctype = (e->flags & HAS_CTYPE) ? d + off[2] : NULL;
    if (plain)
        msg->ctype = memcpy(d + data_len, text_plain, sizeof text_plain);
    if (aor) { /* "sip:" user "@" domain */
        char *x = d + data_len + (plain ? sizeof text_plain : 0);
        memcpy(x, "sip:", 4);
        memcpy(x + 4, e->owner->user, ul - 1);
        x[3 + ul] = '@';
        memcpy(x + 4 + ul, e->owner->domain, dl);
        msg->dst = x;
    }
    msg->extra_hdrs = (e->flags & HAS_EXTRA) ? d + off[3] : NULL;
    msg->callid = (e->flags & HAS_CALLID) ? d + off[4] : NULL;
    msg->store_key = (e->flags & HAS_KEY) ? d + key_off : NULL;
    msg->id = e->id;
    msg->inc_time = e->inc_time;
    msg->exp_time = e->exp_time;
    msg->snd_time = e->snd_time;
    msg->attempts = e->attempts;
    msg->next_try = e->next_try;
    return msg;
}

/* A message whose every string is its own allocation, as message.h
 * describes for messages in general. */
static msilo_message_t *entry_to_plain_message(const memory_store_t *m, const entry_t *e)
{
    msilo_message_t *p = entry_to_message(e);
    msilo_message_t *c = msilo_message_copy(p);
    msilo_message_free(p);
    c->device = g_strdup(memdev_target(&m->dev, e->id));
    return c;
}

/* Is the stored Content-Type exactly "text/plain", the one value an entry
 * keeps as a flag instead of a string? (Not the media-type test of delivery,
 * engine-deliver.c, which also takes parameters and any case: this is about
 * bytes that can be rebuilt exactly.) */
static gboolean ctype_is_flagged(const char *ctype)
{
    return ctype && strcmp(ctype, text_plain) == 0;
}

/* Is @p dst exactly "sip:" user "@" domain? */
static gboolean is_owner_uri(const char *dst, const char *user, const char *domain)
{
    if (strncmp(dst, "sip:", 4) != 0)
        return FALSE;
    size_t ul = strlen(user);
    return strncmp(dst + 4, user, ul) == 0 && dst[4 + ul] == '@' &&
           strcmp(dst + 5 + ul, domain) == 0;
}

/* Copies @p msg into one allocation. The caller checked body_len <= UINT32_MAX;
 * the sizes cannot overflow since every part is already in memory. */
static entry_t *entry_new(const msilo_message_t *msg)
{
    /* in HAS_* bit order */
    const char *strs[] = { msg->src, msg->dst, msg->ctype, msg->extra_hdrs, msg->callid };
    enum { DST_INDEX = 1, CTYPE_INDEX = 2 };
    gboolean dst_aor = msg->dst && is_owner_uri(msg->dst, msg->user, msg->domain);
    if (dst_aor)
        strs[DST_INDEX] = NULL;
    size_t size = offsetof(entry_t, data) + msg->body_len;
    for (size_t i = 0; i < G_N_ELEMENTS(strs); i++)
        if (strs[i] && !(i == CTYPE_INDEX && ctype_is_flagged(strs[i])))
            size += strlen(strs[i]) + 1;
    if (msg->store_key)
        size += strlen(msg->store_key) + 1;

    entry_t *e = g_malloc(size);
    memset(e, 0, offsetof(entry_t, data));
    e->inc_time = msg->inc_time;
    e->exp_time = msg->exp_time;
    e->snd_time = msg->snd_time;
    e->next_try = msg->next_try;
    e->attempts = msg->attempts;
    e->body_len = (uint32_t)msg->body_len;
    e->rem_pos = NOT_IN_HEAP;
    if (dst_aor)
        e->flags |= DST_AOR;
    char *p = e->data;
    if (msg->body_len) {
        memcpy(p, msg->body, msg->body_len);
        p += msg->body_len;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(strs); i++) {
        if (!strs[i])
            continue;
        if (i == CTYPE_INDEX && ctype_is_flagged(strs[i])) {
            e->flags |= CTYPE_TEXT_PLAIN;
            continue;
        }
        size_t len = strlen(strs[i]) + 1;
        memcpy(p, strs[i], len);
        p += len;
        e->flags |= (uint8_t)(1u << i);
    }
    if (msg->store_key) {
        memcpy(p, msg->store_key, strlen(msg->store_key) + 1);
        e->flags |= HAS_KEY;
    }
    return e;
}

/* The entry's store_key (in data[]), or NULL. */
static const char *entry_key(const entry_t *e)
{
    if (!(e->flags & HAS_KEY))
        return NULL;
    const char *p = e->data + e->body_len;
    for (unsigned i = 0; i < 5; i++)
        if (e->flags & (1u << i))
            p += strlen(p) + 1;
    return p;
}

/* What an entry costs against max_bytes: its one allocation. */
static size_t entry_bytes(const entry_t *e)
{
    size_t size = offsetof(entry_t, data) + e->body_len;
    const char *p = e->data + e->body_len;
    for (unsigned i = 0; i < 5; i++) /* the HAS_* bits, in the order of the strings */
        if (e->flags & (1u << i)) {
            size_t len = strlen(p) + 1;
            size += len;
            p += len;
        }
    if (e->flags & HAS_KEY) /* the store_key, after them */
        size += strlen(p) + 1;
    return size;
}

static void entry_insert(memory_store_t *m, owner_t *o, entry_t *e)
{
    e->id = m->next_id++;
    e->owner = o;
    e->prev = o->tail;
    if (o->tail)
        o->tail->next = e;
    else
        o->head = e;
    o->tail = e;
    o->count++;
    m->total++;
    if (m->max_bytes)
        m->bytes += entry_bytes(e);
    ids_append(&m->ids, e);
    exp_push(&m->exp_heap, (exp_item_t){ e->exp_time, e->id });
    if (e->snd_time != 0)
        heap_push(&m->rem_heap, e);
}

/* Unlinks @p e from every index and frees it. @p pos: its slot in the id index
 * if the caller knows it, else (size_t)-1. */
static void entry_delete(memory_store_t *m, entry_t *e, size_t pos)
{
    if (pos == (size_t)-1 && !ids_find(&m->ids, e->id, &pos))
        g_assert_not_reached();
    ids_kill(&m->ids, pos);
    exp_forget(m); /* after ids_kill: a rebuild must not see @e */
    if (e->rem_pos != NOT_IN_HEAP)
        heap_remove(&m->rem_heap, e);
    lease_drop(m, e);

    owner_t *o = e->owner;
    if (e->prev)
        e->prev->next = e->next;
    else
        o->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        o->tail = e->prev;
    m->total--;
    if (m->max_bytes)
        m->bytes -= MIN(m->bytes, (uint64_t)entry_bytes(e));
    if (--o->count == 0) {
        otab_remove(&m->owners, o);
        g_free(o);
    }
    if (e->flags & HAS_KEY)
        g_hash_table_remove(m->keys, entry_key(e));
    if (G_UNLIKELY(m->dev.tracked))
        memdev_drop(&m->dev, e->id);
    g_free(e);
}

static gboolean claimable(const memory_store_t *m, const entry_t *e,
                          const msilo_store_claim_t *c)
{
    return e->exp_time > c->now && e->next_try <= c->max_next_try &&
           lease_until(m, e) <= c->now;
}

static gint entry_cmp_id(gconstpointer a, gconstpointer b)
{
    const entry_t *x = *(const entry_t *const *)a, *y = *(const entry_t *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

/* ------------------------------------------------------------- methods */

/* Declares `m` and holds the store's lock until the end of the enclosing
 * block, so that no early return can leave it locked. (The locker is only
 * used by its cleanup: clang would call it unused.) */
static inline GMutex *mem_lock(GMutex *l)
{
    g_mutex_lock(l);
    msilo_tsan_acquire(l); /* lib/tsan.h: ThreadSanitizer does not see GMutex */
    return l;
}

static inline void mem_unlock(GMutex **l)
{
    msilo_tsan_release(*l);
    g_mutex_unlock(*l);
}

#define LOCKED(s)                                                                          \
    memory_store_t *m = (memory_store_t *)(s);                                             \
    G_GNUC_UNUSED GMutex *locker_ __attribute__((cleanup(mem_unlock))) = mem_lock(&m->lock)

static int mem_put(msilo_store_t *s, msilo_message_t *const *msgs, size_t n,
                   int64_t max_per_owner, int *results)
{
    if ((!msgs && n) || (!results && n))
        return msilo_fail(MSILO_EINVAL, "memory put: bad arguments");
    /* Check the whole batch first: a failed put stores none of it. */
    gboolean devices = FALSE; /* a message for one device: recorded after the loop */
    for (size_t i = 0; i < n; i++) {
        devices |= msgs[i] && msgs[i]->device;
        if (!msgs[i] || !msgs[i]->user || !msgs[i]->domain ||
            (msgs[i]->body_len && !msgs[i]->body))
            return msilo_fail(MSILO_EINVAL, "memory put: message %zu incomplete", i);
        if (msgs[i]->body_len > UINT32_MAX)
            return msilo_fail(MSILO_ETOOBIG, "memory put: body of message %zu exceeds 4 GiB", i);
    }

    LOCKED(s);
    /* Heap positions are uint32_t; a tombstone in the id index holds id << 1. */
    if (n > (size_t)(NOT_IN_HEAP - 1) - (size_t)m->total ||
        (int64_t)n > INT64_MAX / 2 - m->next_id)
        return msilo_fail(MSILO_ENOMEM, "memory store is full (%" PRId64 " messages)",
                          m->total);
    /* Reserve index space up front so the batch cannot fail half way. */
    ids_reserve(&m->ids, n);
    exp_reserve(&m->exp_heap, n);
    const int64_t first_new = m->next_id;

    /* In windows of the batch: hash, then prefetch each message's slot, its
     * owner and the owner's last entry (the put links the new entry after
     * it), then store. The owners of a batch are spread over a large table,
     * and the misses of one window overlap instead of following each other.
     * The prefetches are hints only: the stores below look up for real. */
    enum { WINDOW = 32 };
    uint32_t hs[WINDOW];
    for (size_t w = 0; w < n; w += WINDOW) {
        size_t k = MIN((size_t)WINDOW, n - w);
        const owner_table_t *t = &m->owners;
        for (size_t i = 0; i < k; i++) {
            hs[i] = owner_hash(msgs[w + i]->user, msgs[w + i]->domain);
            __builtin_prefetch(&t->v[hs[i] & t->mask]);
        }
        for (size_t i = 0; i < k; i++) {
            const owner_t *o = t->v[hs[i] & t->mask].o;
            if (o)
                __builtin_prefetch(o);
        }
        for (size_t i = 0; i < k; i++) {
            const owner_t *o = t->v[hs[i] & t->mask].o;
            if (o && o->tail)
                __builtin_prefetch(&o->tail->next, 1);
        }
        for (size_t i = 0; i < k; i++) {
            msilo_message_t *msg = msgs[w + i];
            const entry_t *dup = msg->store_key ? g_hash_table_lookup(m->keys, msg->store_key)
                                                : NULL;
            if (dup) { /* stored already (a retry): its id, nothing stored */
                msg->id = dup->id;
                results[w + i] = 0;
                continue;
            }
            owner_t *o = otab_find(&m->owners, hs[i], msg->user, msg->domain);
            /* An owner with no messages is not in the table, and the refusal
             * path must not create an empty one. */
            if (max_per_owner > 0 && o && o->count >= max_per_owner) {
                results[w + i] = MSILO_EFULL;
                continue;
            }
            /* the global caps: the store is full for everybody */
            if (m->max_total > 0 && m->total >= m->max_total) {
                results[w + i] = MSILO_EFULL;
                continue;
            }
            entry_t *e = entry_new(msg);
            if (m->max_bytes && m->bytes + entry_bytes(e) > m->max_bytes) {
                g_free(e);
                results[w + i] = MSILO_EFULL;
                continue;
            }
            entry_insert(m, o ? o : owner_add(m, hs[i], msg->user, msg->domain), e);
            if (e->flags & HAS_KEY)
                g_hash_table_insert(m->keys, (gpointer)entry_key(e), e);
            msgs[w + i]->id = e->id;
            results[w + i] = 0;
        }
    }
    /* out of the loop above, the store's per-message path (bench/engine) */
    for (size_t i = 0; G_UNLIKELY(devices) && i < n; i++)
        if (msgs[i]->device && results[i] == 0 && msgs[i]->id >= first_new) /* not a dup */
            memdev_set_target(&m->dev, msgs[i]->id, msgs[i]->device);
    return 0;
}

/* A claim for one device (deliver_to = every_device): the owner's offline
 * messages that device may have (memory-devices.c decides), leased to it. */
static int claim_device(memory_store_t *m, const msilo_store_claim_t *c,
                        msilo_message_t ***ret_msgs, size_t *ret_n, gboolean packed)
{
    memdev_seen(&m->dev, c->user, c->domain, c->device, c->now);
    owner_t *o = owner_lookup(m, c->user, c->domain);
    size_t cap = o ? MIN(c->max, (size_t)o->count) : 0, n = 0;
    msilo_message_t **out = cap ? g_new(msilo_message_t *, cap) : NULL;
    for (entry_t *e = o ? o->head : NULL; e && n < cap; e = e->next) {
        memdev_view_t v;
        if (e->snd_time != 0 || e->exp_time <= c->now || !memdev_claimable(&m->dev, e->id, c, &v))
            continue;
        memdev_lease(&m->dev, e->id, c);
        msilo_message_t *msg = packed ? entry_to_message(e) : entry_to_plain_message(m, e);
        msg->attempts = v.attempts;
        msg->next_try = v.next_try;
        if (packed) /* a packed message's fields may be replaced (message.h) */
            msg->device = g_strdup(memdev_target(&m->dev, e->id));
        out[n++] = msg;
    }
    if (n == 0)
        g_clear_pointer(&out, g_free);
    *ret_msgs = out;
    *ret_n = n;
    return 0;
}

/* @p packed: messages in one allocation each, for the engine only */
static int claim_as(msilo_store_t *s, const msilo_store_claim_t *c, msilo_message_t ***ret_msgs,
                    size_t *ret_n, gboolean packed)
{
    if (!c || !ret_msgs || !ret_n || c->max == 0 || !c->lease_owner ||
        (!c->reminders && (!c->user || !c->domain)))
        return msilo_fail(MSILO_EINVAL, "memory claim: bad arguments");

    if (c->device && c->reminders)
        return msilo_fail(MSILO_EINVAL, "memory claim: a device claim takes no reminders");
    LOCKED(s);
    if (c->device)
        return claim_device(m, c, ret_msgs, ret_n, packed);
    if (!c->reminders) {
        /* the owner's messages straight into the result: no list of hits */
        owner_t *o = owner_lookup(m, c->user, c->domain);
        size_t cap = o ? MIN(c->max, (size_t)o->count) : 0, n = 0;
        msilo_message_t **out = cap ? g_new(msilo_message_t *, cap) : NULL;
        uint32_t h = 0;
        for (entry_t *e = o ? o->head : NULL; e && n < cap; e = e->next) {
            if (e->snd_time != 0 || !claimable(m, e, c))
                continue;
            if (!h)
                h = holder_intern(m, c->lease_owner);
            lease_set(m, e, h, c->lease_until);
            out[n++] = packed ? entry_to_message(e) : entry_to_plain_message(m, e);
        }
        if (n == 0) {
            g_free(out);
            out = NULL;
        }
        *ret_msgs = out;
        *ret_n = n;
        return 0;
    }
    g_autoptr(GPtrArray) got = g_ptr_array_new();
    {
        /* Due reminders of every owner, then oldest id first. */
        g_autoptr(GPtrArray) due = g_ptr_array_new();
        heap_collect_due(&m->rem_heap, 0, c->now, due);
        g_ptr_array_sort(due, entry_cmp_id);
        for (guint i = 0; i < due->len && got->len < c->max; i++) {
            entry_t *e = due->pdata[i];
            if (claimable(m, e, c))
                g_ptr_array_add(got, e);
        }
    }

    if (got->len == 0) {
        *ret_msgs = NULL;
        *ret_n = 0;
        return 0;
    }
    msilo_message_t **out = g_new(msilo_message_t *, got->len);
    uint32_t h = holder_intern(m, c->lease_owner);
    for (guint i = 0; i < got->len; i++) {
        entry_t *e = got->pdata[i];
        lease_set(m, e, h, c->lease_until);
        out[i] = packed ? entry_to_message(e) : entry_to_plain_message(m, e);
    }
    *ret_msgs = out;
    *ret_n = got->len;
    return 0;
}

static int mem_claim(msilo_store_t *s, const msilo_store_claim_t *c, msilo_message_t ***ret_msgs,
                     size_t *ret_n)
{
    return claim_as(s, c, ret_msgs, ret_n, FALSE);
}

gboolean msilo_memory_store_is(const msilo_store_t *s)
{
    return s->claim == mem_claim;
}

int msilo_memory_claim_packed(msilo_store_t *s, const msilo_store_claim_t *c,
                              msilo_message_t ***ret_msgs, size_t *ret_n)
{
    return claim_as(s, c, ret_msgs, ret_n, TRUE);
}

static int mem_remove(msilo_store_t *s, const int64_t *ids, size_t n, size_t *ret_deleted)
{
    if (!ids && n)
        return msilo_fail(MSILO_EINVAL, "memory remove: bad arguments");
    LOCKED(s);
    size_t deleted = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pos;
        entry_t *e = ids_find(&m->ids, ids[i], &pos);
        if (e) {
            entry_delete(m, e, pos);
            deleted++;
        }
    }
    if (ret_deleted)
        *ret_deleted = deleted;
    return 0;
}

static int mem_release(msilo_store_t *s, const msilo_store_release_t *items, size_t n,
                       size_t item_size)
{
    if (!items && n)
        return msilo_fail(MSILO_EINVAL, "memory release: bad arguments");
    LOCKED(s);
    for (size_t i = 0; i < n; i++) {
        const msilo_store_release_t *it = MSILO_STORE_RELEASE_ITEM(items, item_size, i);
        /* The message may have expired or been removed meanwhile: nothing
         * left to release then. */
        entry_t *e = ids_find(&m->ids, it->id, NULL);
        if (!e)
            continue;
        if (item_size >= offsetof(msilo_store_release_t, device) + sizeof it->device &&
            it->device) {
            memdev_release(&m->dev, it);
            continue;
        }
        if (it->lease_owner) {
            if (e->holder && strcmp(m->holders[e->holder - 1].name, it->lease_owner) != 0)
                continue; /* someone claimed it again after our lease ran out */
        }
        e->attempts = it->attempts;
        e->next_try = it->next_try;
        lease_drop(m, e);
        if ((it->flags & MSILO_RELEASE_CLEAR_SND_TIME) && e->snd_time != 0) {
            if (e->rem_pos != NOT_IN_HEAP)
                heap_remove(&m->rem_heap, e);
            e->snd_time = 0;
        }
    }
    return 0;
}

static int mem_count(msilo_store_t *s, const char *user, const char *domain, int64_t *ret_count)
{
    if (!ret_count || (user == NULL) != (domain == NULL))
        return msilo_fail(MSILO_EINVAL, "memory count: bad arguments");
    LOCKED(s);
    if (!user) {
        *ret_count = m->total;
    } else {
        owner_t *o = owner_lookup(m, user, domain);
        *ret_count = o ? o->count : 0;
    }
    return 0;
}

static int mem_expire(msilo_store_t *s, int64_t now, size_t *ret_deleted)
{
    LOCKED(s);
    size_t deleted = 0;
    exp_heap_t *h = &m->exp_heap;
    while (h->n > 0 && h->v[0].t <= now) {
        exp_item_t it = exp_pop(h);
        size_t pos;
        entry_t *e = ids_find(&m->ids, it.id, &pos);
        if (e && e->exp_time == it.t) {
            /* counts the popped pair as stale, or rebuilds without it */
            entry_delete(m, e, pos);
            deleted++;
        }
        /* the popped pair is gone from the heap */
        if (h->stale)
            h->stale--;
    }
    if (ret_deleted)
        *ret_deleted = deleted;
    return 0;
}

/* The due pairs of the expiry heap under node @p i (a due node's children
 * may be due, a node that is not due has no due descendants). */
static void exp_collect_due(const exp_heap_t *h, size_t i, int64_t now, GArray *out)
{
    if (i >= h->n || h->v[i].t > now)
        return;
    g_array_append_val(out, h->v[i]);
    exp_collect_due(h, 2 * i + 1, now, out);
    exp_collect_due(h, 2 * i + 2, now, out);
}

/* The entry's content type as stored ("text/plain" when flagged), or NULL. */
static const char *entry_ctype(const entry_t *e)
{
    if (e->flags & CTYPE_TEXT_PLAIN)
        return text_plain;
    if (!(e->flags & HAS_CTYPE))
        return NULL;
    const char *p = e->data + e->body_len;
    for (unsigned i = 0; i < 2; i++) /* src, dst come before it */
        if (e->flags & (1u << i))
            p += strlen(p) + 1;
    return p;
}

int mem_take_due(msilo_store_t *s, int64_t now, mem_ctype_match_fn match, const void *data,
                 size_t max, msilo_message_t ***ret_msgs, size_t *ret_n)
{
    LOCKED(s);
    g_autoptr(GArray) due = g_array_new(FALSE, FALSE, sizeof(exp_item_t));
    exp_collect_due(&m->exp_heap, 0, now, due);
    g_autoptr(GPtrArray) got = g_ptr_array_new();
    for (guint i = 0; i < due->len; i++) {
        const exp_item_t *it = &g_array_index(due, exp_item_t, i);
        entry_t *e = ids_find(&m->ids, it->id, NULL);
        /* a pair whose entry is gone is stale; expire() drops it */
        if (e && e->exp_time == it->t && match(entry_ctype(e), data))
            g_ptr_array_add(got, e);
    }
    g_ptr_array_sort(got, entry_cmp_id);
    size_t n = MIN((size_t)got->len, max);
    msilo_message_t **out = n ? g_new(msilo_message_t *, n) : NULL;
    for (size_t i = 0; i < n; i++) {
        entry_t *e = got->pdata[i];
        out[i] = entry_to_plain_message(m, e);
        entry_delete(m, e, (size_t)-1); /* leaves its pair stale, as every delete */
    }
    *ret_msgs = out;
    *ret_n = n;
    return 0;
}

static int mem_list(msilo_store_t *s, const char *user, const char *domain, int64_t after_id,
                    size_t max, msilo_message_t ***ret_msgs, size_t *ret_n)
{
    if (!ret_msgs || !ret_n || max == 0 || (user == NULL) != (domain == NULL))
        return msilo_fail(MSILO_EINVAL, "memory list: bad arguments");
    LOCKED(s);
    g_autoptr(GPtrArray) got = g_ptr_array_new();
    if (!user) {
        for (size_t i = ids_lower_bound(&m->ids, after_id == INT64_MAX ? after_id : after_id + 1);
             i < m->ids.n && got->len < max; i++) {
            entry_t *e = slot_entry(m->ids.v[i]);
            if (e && e->id > after_id)
                g_ptr_array_add(got, e);
        }
    } else {
        owner_t *o = owner_lookup(m, user, domain);
        entry_t *e = o ? o->head : NULL;
        /* Paging passes the last id it got: start right after it instead of
         * walking the owner's list from the head on every page. */
        entry_t *last = o ? ids_find(&m->ids, after_id, NULL) : NULL;
        if (last && last->owner == o)
            e = last->next;
        for (; e && got->len < max; e = e->next)
            if (e->id > after_id)
                g_ptr_array_add(got, e);
    }

    msilo_message_t **out = NULL;
    if (got->len) {
        out = g_new(msilo_message_t *, got->len);
        for (guint i = 0; i < got->len; i++)
            out[i] = entry_to_plain_message(m, got->pdata[i]);
    }
    *ret_msgs = out;
    *ret_n = got->len;
    return 0;
}

static int mem_get(msilo_store_t *s, int64_t id, msilo_message_t **ret_msg)
{
    if (!ret_msg)
        return msilo_fail(MSILO_EINVAL, "memory get: bad arguments");
    LOCKED(s);
    entry_t *e = ids_find(&m->ids, id, NULL);
    if (!e)
        return msilo_fail(MSILO_ENOTFOUND, "no message with id %" PRId64, id);
    *ret_msg = entry_to_plain_message(m, e);
    return 0;
}

static int mem_purge(msilo_store_t *s, const char *user, const char *domain, size_t *ret_deleted)
{
    if (!user || !domain)
        return msilo_fail(MSILO_EINVAL, "memory purge: bad arguments");
    LOCKED(s);
    size_t deleted = 0;
    owner_t *o = owner_lookup(m, user, domain);
    if (o) {
        /* Deleting the last entry frees the owner: count before, and never
         * read o after the loop. */
        size_t n = (size_t)o->count;
        for (size_t i = 0; i < n; i++)
            entry_delete(m, o->head, (size_t)-1);
        deleted = n;
    }
    if (ret_deleted)
        *ret_deleted = deleted;
    return 0;
}

static int mem_reset_leases(msilo_store_t *s, const char *lease_owner, size_t *ret_n)
{
    if (!lease_owner)
        return msilo_fail(MSILO_EINVAL, "memory reset_leases: bad arguments");
    LOCKED(s);
    size_t n = 0;
    uint32_t h = holder_find(m, lease_owner);
    /* every leased entry is live: walk the id index until the holder's last
     * lease is gone (the slot is freed then) */
    for (size_t i = 0; h && i < m->ids.n; i++) {
        entry_t *e = slot_entry(m->ids.v[i]);
        if (!e || e->holder != h)
            continue;
        n++;
        if (m->holders[h - 1].refs == 1) {
            lease_drop(m, e);
            break;
        }
        lease_drop(m, e);
    }
    if (m->dev.tracked) /* and the leases of its per-device claims */
        n += memdev_reset(&m->dev, lease_owner);
    if (ret_n)
        *ret_n = n;
    return 0;
}

static int mem_mark_delivered(msilo_store_t *s, const msilo_store_mark_t *items, size_t n,
                              size_t item_size, size_t *ret_deleted)
{
    if (!items && n)
        return msilo_fail(MSILO_EINVAL, "memory mark_delivered: bad arguments");
    LOCKED(s);
    size_t deleted = 0;
    for (size_t i = 0; i < n; i++) {
        const msilo_store_mark_t *it = MSILO_STORE_MARK_ITEM(items, item_size, i);
        size_t pos;
        entry_t *e = it->device ? ids_find(&m->ids, it->id, &pos) : NULL;
        /* one item after another: a later item of the call sees the
         * earlier ones' marks */
        if (e && memdev_mark(&m->dev, e->id, e->owner->user, e->owner->domain, it->device)) {
            entry_delete(m, e, pos);
            deleted++;
        }
    }
    if (ret_deleted)
        *ret_deleted = deleted;
    return 0;
}

static int mem_forget_devices(msilo_store_t *s, int64_t seen_before, size_t *ret_n)
{
    LOCKED(s);
    size_t n = 0;
    g_autoptr(GPtrArray) owners = g_ptr_array_new_with_free_func(g_free);
    memdev_forget(&m->dev, seen_before, &n, owners);
    /* an owner that lost a device: its messages that every remaining device
     * has are complete now (the owner may go with its last entry: step first) */
    for (guint i = 0; i < owners->len; i++) {
        char *user = owners->pdata[i], *nl = strchr(user, '\n');
        *nl = '\0';
        owner_t *o = owner_lookup(m, user, nl + 1);
        for (entry_t *e = o ? o->head : NULL, *next; e; e = next) {
            next = e->next;
            if (memdev_complete(&m->dev, e->id, user, nl + 1)) {
                gboolean last = o->count == 1;
                entry_delete(m, e, (size_t)-1);
                if (last)
                    break;
            }
        }
    }
    if (ret_n)
        *ret_n = n;
    return 0;
}

static void mem_free(msilo_store_t *s)
{
    memory_store_t *m = (memory_store_t *)s;
    if (!m)
        return;
    for (size_t i = 0; i < m->ids.n; i++)
        g_free(slot_entry(m->ids.v[i]));
    g_free(m->ids.v);
    g_free(m->exp_heap.v);
    g_free(m->rem_heap.v);
    for (uint32_t i = 0; i < m->n_holders; i++)
        g_free(m->holders[i].name);
    g_free(m->holders);
    g_hash_table_unref(m->holder_ids);
    g_hash_table_unref(m->keys);
    memdev_clear(&m->dev);
    for (size_t i = 0; i <= m->owners.mask; i++)
        g_free(m->owners.v[i].o);
    g_free(m->owners.v);
    g_mutex_clear(&m->lock);
    g_free(m);
}

int msilo_memory_store_set_limit(msilo_store_t *store, msilo_memory_limit_t limit,
                                 uint64_t value)
{
    if (!store || store->free != mem_free)
        return msilo_fail(MSILO_EINVAL, "msilo_memory_store_set_limit: not a memory store");
    if (limit != MSILO_MEMORY_MAX_MESSAGES && limit != MSILO_MEMORY_MAX_BYTES)
        return msilo_fail(MSILO_EINVAL, "msilo_memory_store_set_limit: unknown limit %d",
                          (int)limit);
    if (limit == MSILO_MEMORY_MAX_MESSAGES && value > (uint64_t)INT64_MAX)
        return msilo_fail(MSILO_EINVAL, "msilo_memory_store_set_limit: %" PRIu64 " messages",
                          value);
    memory_store_t *m = (memory_store_t *)store;
    g_mutex_lock(&m->lock);
    if (limit == MSILO_MEMORY_MAX_MESSAGES) {
        m->max_total = (int64_t)value;
    } else {
        /* counted from now on: recount what is stored when the cap turns on */
        if (value && !m->max_bytes) {
            m->bytes = 0;
            for (size_t i = 0; i < m->ids.n; i++)
                if (slot_entry(m->ids.v[i]))
                    m->bytes += entry_bytes(slot_entry(m->ids.v[i]));
        }
        m->max_bytes = value;
    }
    g_mutex_unlock(&m->lock);
    return 0;
}

int msilo_memory_store_new(msilo_store_t **ret)
{
    if (!ret)
        return msilo_fail(MSILO_EINVAL, "msilo_memory_store_new: ret is NULL");
    memory_store_t *m = g_new0(memory_store_t, 1);
    m->base = (msilo_store_t)MSILO_STORE_INIT;
    m->base.name = "memory";
    m->base.flags = MSILO_STORE_NONBLOCKING | MSILO_STORE_THREADSAFE;
    m->base.put = mem_put;
    m->base.claim = mem_claim;
    m->base.remove = mem_remove;
    m->base.release = mem_release;
    m->base.count = mem_count;
    m->base.expire = mem_expire;
    m->base.free = mem_free;
    m->base.list = mem_list;
    m->base.get = mem_get;
    m->base.purge = mem_purge;
    m->base.reset_leases = mem_reset_leases;
    m->base.take_expired = mem_take_expired;
    m->base.mark_delivered = mem_mark_delivered;
    m->base.forget_devices = mem_forget_devices;
    memdev_init(&m->dev);
    g_mutex_init(&m->lock);
    m->next_id = 1;
    otab_init(&m->owners);
    m->holder_ids = g_hash_table_new(g_str_hash, g_str_equal);
    m->keys = g_hash_table_new(g_str_hash, g_str_equal);
    *ret = &m->base;
    return 0;
}
