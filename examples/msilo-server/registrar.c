/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* In-memory location service: AoR -> contacts with expiry (usrloc db_mode 0),
 * each with the flow its REGISTER came on (flow.c; freed with the binding).
 * Every binding that goes away (removed by its UA, all removed with
 * "Contact: *", or expired) is reported to the removed hook, so that the
 * engine stops retrying deliveries to it (register.c). A device
 * (+sip.instance) has one binding per reg-id: registering from a new contact
 * replaces the old one (RFC 5626 6, RFC 5627). */
#include "server.h"

struct registrar {
    GHashTable *aors; /* char *aor -> GPtrArray of binding_t* */
    int64_t seq;
    registrar_removed_fn removed;
    void *removed_data;
};

void registrar_set_removed(registrar_t *r, registrar_removed_fn fn, void *data)
{
    r->removed = fn;
    r->removed_data = data;
}

static void report_removed(registrar_t *r, const char *aor, const binding_t *b)
{
    if (r->removed)
        r->removed(aor, b->uri, r->removed_data);
}

static void binding_free(gpointer p)
{
    binding_t *b = p;
    g_free(b->uri);
    g_free(b->contact);
    g_free(b->instance);
    g_free(b->reg_id);
    server_flow_free(b->flow);
    g_free(b);
}

registrar_t *registrar_new(void)
{
    registrar_t *r = g_new0(registrar_t, 1);
    r->aors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify)g_ptr_array_unref);
    return r;
}

void registrar_free(registrar_t *r)
{
    if (!r)
        return;
    g_hash_table_unref(r->aors);
    g_free(r);
}

static void drop_expired(registrar_t *r, const char *aor, GPtrArray *a, int64_t now)
{
    for (guint i = a->len; i-- > 0;) {
        binding_t *b = a->pdata[i];
        if (b->expires <= now) {
            report_removed(r, aor, b);
            g_ptr_array_remove_index(a, i);
        }
    }
}

static gint binding_order(gconstpointer pa, gconstpointer pb)
{
    const binding_t *a = *(binding_t *const *)pa, *b = *(binding_t *const *)pb;
    if (a->q != b->q)
        return a->q > b->q ? -1 : 1;
    return a->seq > b->seq ? -1 : a->seq < b->seq ? 1 : 0;
}

GPtrArray *registrar_lookup(registrar_t *r, const char *aor, int64_t now)
{
    GPtrArray *a = g_hash_table_lookup(r->aors, aor);
    if (!a)
        return NULL;
    drop_expired(r, aor, a, now);
    if (a->len == 0) {
        g_hash_table_remove(r->aors, aor);
        return NULL;
    }
    g_ptr_array_sort(a, binding_order);
    return a;
}

GPtrArray *registrar_peek(registrar_t *r, const char *aor)
{
    return g_hash_table_lookup(r->aors, aor);
}

/* Whether @b is the binding of a Contact with @uri, or with @instance and
 * @reg_id (RFC 5626 6: the key of an outbound binding is the instance and
 * the reg-id; without reg-id the instance alone, RFC 5627 4.1 ties a
 * binding to its device). */
bool binding_matches(const binding_t *b, const char *uri, const char *instance,
                         const char *reg_id)
{
    if (g_ascii_strcasecmp(b->uri, uri) == 0)
        return true;
    if (!instance || !b->instance || g_ascii_strcasecmp(b->instance, instance) != 0)
        return false;
    return g_strcmp0(b->reg_id, reg_id) == 0;
}

void registrar_update(registrar_t *r, const char *aor, const char *uri, const char *contact,
                      const char *instance, const char *reg_id,
                      int64_t expires, double q, int64_t now, flow_t *flow)
{
    GPtrArray *a = g_hash_table_lookup(r->aors, aor);
    binding_t *b = NULL;

    for (guint i = 0; a && i < a->len; i++) {
        binding_t *x = a->pdata[i];
        if (!binding_matches(x, uri, instance, reg_id))
            continue;
        if (expires <= 0) {
            report_removed(r, aor, x);
            g_ptr_array_remove_index(a, i--);
            continue; /* the device's binding and its contact's, if both */
        }
        if (!b) {
            b = x;
            continue;
        }
        /* a second match (the contact of one device, the instance of
         * another): one binding stays */
        report_removed(r, aor, x);
        g_ptr_array_remove_index(a, i--);
    }
    if (expires <= 0) {
        if (a && a->len == 0)
            g_hash_table_remove(r->aors, aor);
        server_flow_free(flow);
        return;
    }
    if (!a) {
        a = g_ptr_array_new_with_free_func(binding_free);
        g_hash_table_insert(r->aors, g_strdup(aor), a);
    }
    if (!b) {
        b = g_new0(binding_t, 1);
        b->uri = g_strdup(uri);
        g_ptr_array_add(a, b);
    } else if (g_ascii_strcasecmp(b->uri, uri) != 0) {
        /* the device registered from a new contact: the old one is gone */
        report_removed(r, aor, b);
        g_free(b->uri);
        b->uri = g_strdup(uri);
    }
    g_free(b->contact);
    b->contact = g_strdup(contact);
    g_free(b->instance);
    b->instance = g_strdup(instance);
    g_free(b->reg_id);
    b->reg_id = g_strdup(reg_id);
    b->expires = now + expires;
    b->q = q;
    b->seq = ++r->seq;
    if (flow) {
        server_flow_free(b->flow);
        b->flow = flow;
    }
}

void registrar_remove_all(registrar_t *r, const char *aor)
{
    GPtrArray *a = g_hash_table_lookup(r->aors, aor);
    for (guint i = 0; a && i < a->len; i++)
        report_removed(r, aor, a->pdata[i]);
    g_hash_table_remove(r->aors, aor);
}

size_t registrar_expire(registrar_t *r, int64_t now)
{
    GHashTableIter it;
    gpointer key, value;
    size_t n = 0;

    g_hash_table_iter_init(&it, r->aors);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        GPtrArray *a = value;
        guint before = a->len;
        drop_expired(r, key, a, now);
        n += before - a->len;
        if (a->len == 0)
            g_hash_table_iter_remove(&it);
    }
    return n;
}

size_t registrar_count(const registrar_t *r)
{
    GHashTableIter it;
    gpointer key, value;
    size_t n = 0;

    g_hash_table_iter_init(&it, r->aors);
    while (g_hash_table_iter_next(&it, &key, &value))
        n += ((GPtrArray *)value)->len;
    return n;
}
