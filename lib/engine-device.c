/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Devices (deliver_to = every_device): which device a dump is for and which
 * one a stored message is for, and the store side of per-device delivery
 * (the marks coalescer's job, the device strings its items and the
 * releases' items hold).
 *
 * Owns: the device identity rules (request view's `device`, else the
 * Contact's +sip.instance, else the Contact URI, else the AoR; for a store:
 * the view's `device`, else the Request-URI's `gr` parameter) and the
 * references to device strings (GRefString) that wait in e->marks and
 * e->releases.
 *
 * Invariant: an item of e->marks always holds a device reference; an item
 * of e->releases holds one when its `device` is set. Each is released once
 * its job has committed or the item is dropped (engine_device_items_drop()).
 */
#include "engine-private.h"

/* The value of the parameter @name ("+sip.instance", "gr") of the header
 * value or URI @text, unquoted, g_malloc'd; "" for a parameter without a
 * value; NULL when absent. @in_uri: look inside <...> only (a URI
 * parameter); else outside it (a header parameter), or anywhere in a bare
 * URI. */
static char *param_of(const char *text, const char *name, gboolean in_uri)
{
    const char *lt = strchr(text, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    const char *from = text, *to = text + strlen(text);
    if (lt && gt) {
        if (in_uri) {
            from = lt + 1;
            to = gt;
        } else {
            from = gt + 1;
        }
    } else if (in_uri) {
        to = text + strcspn(text, "?"); /* no URI headers */
    }
    size_t nl = strlen(name);
    for (const char *p = from; p < to; p++) {
        if (*p != ';')
            continue;
        const char *q = p + 1;
        while (*q == ' ' || *q == '\t')
            q++;
        if ((size_t)(to - q) < nl || g_ascii_strncasecmp(q, name, nl) != 0)
            continue;
        q += nl;
        while (*q == ' ' || *q == '\t')
            q++;
        if (q >= to || *q == ';' || *q == '>' || *q == ',')
            return g_strdup("");
        if (*q != '=')
            continue;
        q++;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '"') {
            const char *end = strchr(q + 1, '"');
            if (!end || end > to)
                return NULL;
            return g_strndup(q + 1, (gsize)(end - q - 1));
        }
        size_t n = strcspn(q, ";>, \t");
        if (q + n > to)
            n = (size_t)(to - q);
        return g_strndup(q, n);
    }
    return NULL;
}

char *engine_contact_instance(const char *contact)
{
    char *v = contact ? param_of(contact, "+sip.instance", FALSE) : NULL;
    if (v && !*v)
        g_clear_pointer(&v, g_free);
    return v;
}

char *engine_dump_device(const msilo_request_t *reg, const char *contact_uri,
                         const char *user, const char *domain)
{
    if (reg->version >= 4 && reg->device && *reg->device)
        return g_strdup(reg->device);
    char *inst = engine_contact_instance(reg->contact);
    if (inst)
        return inst;
    if (contact_uri)
        return g_strdup(contact_uri);
    return msilo_aor_to_uri(user, domain);
}

char *engine_store_device(const msilo_request_t *req)
{
    if (req->version >= 4 && req->device && *req->device)
        return g_strdup(req->device);
    /* a MESSAGE to a GRUU (RFC 5627): gr=urn:uuid:... names the instance,
     * which a device's +sip.instance writes as "<urn:uuid:...>" */
    char *gr = req->ruri ? param_of(req->ruri, "gr", TRUE) : NULL;
    if (!gr || !*gr) {
        g_free(gr);
        return NULL; /* a temporary GRUU says nothing the engine can use */
    }
    char *dev = gr[0] == '<' ? g_strdup(gr) : g_strconcat("<", gr, ">", NULL);
    g_free(gr);
    return dev;
}

void engine_mark_delivered(msilo_engine_t *e, char *device, int64_t id)
{
    mark_item_t it = { .id = id, .device = g_ref_string_acquire(device) };
    g_array_append_val(e->marks.wait, it);
    engine_coalesce_schedule(e, &e->marks);
}

/* e->marks' items are handed to the store as they are */
G_STATIC_ASSERT(sizeof(mark_item_t) == sizeof(msilo_store_mark_t));
G_STATIC_ASSERT(G_STRUCT_OFFSET(mark_item_t, id) == G_STRUCT_OFFSET(msilo_store_mark_t, id));
G_STATIC_ASSERT(G_STRUCT_OFFSET(mark_item_t, device) ==
                G_STRUCT_OFFSET(msilo_store_mark_t, device));

int engine_marks_execute(msilo_store_t *s, GArray *items, size_t *ret_deleted)
{
    /* the whole round, every device, in one call (one transaction: a call
     * per device had cost a commit per device) */
    size_t deleted = 0;
    int rc = msilo_store_mark_delivered(s, (const msilo_store_mark_t *)(void *)items->data,
                                        items->len, sizeof(mark_item_t), &deleted);
    /* marking again what committed is harmless: the whole batch is retried */
    if (rc)
        return rc;
    *ret_deleted = deleted;
    return 0;
}

void engine_device_items_drop(coalescer_t *c, GArray *items)
{
    if (c->kind == JOB_MARK) {
        for (guint i = 0; i < items->len; i++)
            g_ref_string_release(g_array_index(items, mark_item_t, i).device);
    } else if (c->kind == JOB_RELEASE) {
        for (guint i = 0; i < items->len; i++) {
            const char *d = g_array_index(items, msilo_store_release_t, i).device;
            if (d)
                g_ref_string_release((char *)d);
        }
    }
}
