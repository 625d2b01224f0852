/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Owners and dumps: msilo_engine_dump(), the per-owner delivery state, the
 * claims that fill it, and the pump that sends what was claimed.
 *
 * Owns: e->owners (owner_t by "user@domain", with deliver_to = every_device
 * one per device of the owner, by "user@domain device"), each owner's claimed-but-unsent
 * messages (ready) and the dumps waiting on it (dump_op), e->noop_dumps and
 * e->finished_dumps.
 *
 * Invariants:
 * - An owner exists while it has work (a claim in flight, messages ready or
 *   in flight, a round to follow, dumps waiting) or a retry due while its
 *   registration lasts; then it is forgotten (owner_maybe_forget()).
 * - every_device: the state is per (owner, device): a dump is for the
 *   device of its view (engine-device.c), claims and releases carry that
 *   device, and an un-REGISTER cancels that device's round only.
 * - One round at a time per owner: a dump for a busy owner sends nothing
 *   twice (the claimed messages are leased) and asks for another round.
 *   Claims take at most dump_batch messages; a full claim is followed by
 *   another for the same round, which skips what failed during it.
 * - At most dump_window messages of an owner are in flight, sent in storage
 *   order, and at most max_in_flight in all: an owner without a global slot
 *   waits in e->blocked, in turn (engine-deliver.c unblocks it).
 * - A dump's callback runs once, from the loop, never inside
 *   msilo_engine_dump(): after its owner's round has ended and the deletes
 *   of what it delivered have committed (or failed and been queued again);
 *   with the claim's error when a claim fails; with MSILO_ECANCELLED when
 *   the engine is freed first; from the dispatch source when there was
 *   nothing to do.
 * - Claimed messages that will not be sent (the engine is being freed, or
 *   the owner's round was cancelled) are released unchanged (give_back),
 *   not left to their leases.
 * - Cancel (msilo_engine_cancel(), a dump with expires 0 or contact "*", a
 *   blocking dump that timed out): the owner's dumps complete with
 *   MSILO_ECANCELLED and the counts they had, from the loop; what was
 *   claimed and not sent is released at once, and so is what a claim in
 *   flight brings back; the retries of the registration end (reg_until 0);
 *   sends in flight finish normally (a 2xx still deletes). A later dump
 *   starts a new round as for an owner never seen.
 */
#include "engine-private.h"

/* How long a REGISTER view without Expires (expires < 0) is taken to last, in
 * seconds: retries of its owner stop after it. */
#define REGISTRATION_DEFAULT_TIME 3600

static size_t ready_len(const owner_t *o)
{
    return o->ready_n - o->ready_pos;
}

static msilo_message_t *ready_pop(owner_t *o)
{
    msilo_message_t *m = o->ready[o->ready_pos++];
    if (o->ready_pos == o->ready_n) {
        g_free(o->ready);
        o->ready = NULL;
        o->ready_pos = o->ready_n = 0;
    }
    return m;
}

/* Queues a claim's @n messages; takes @msgs (the array). */
static void ready_add(owner_t *o, msilo_message_t **msgs, size_t n)
{
    if (n == 0) {
        g_free(msgs);
        return;
    }
    if (!o->ready) { /* the usual case: claims run when nothing is ready */
        o->ready = msgs;
        o->ready_pos = 0;
        o->ready_n = n;
        return;
    }
    size_t have = ready_len(o);
    msilo_message_t **v = g_new(msilo_message_t *, have + n);
    memcpy(v, o->ready + o->ready_pos, have * sizeof *v);
    memcpy(v + have, msgs, n * sizeof *v);
    g_free(o->ready);
    g_free(msgs);
    o->ready = v;
    o->ready_pos = 0;
    o->ready_n = have + n;
}

static void owner_free(owner_t *o)
{
    g_free(o->key);
    g_free(o->user);
    g_free(o->domain);
    g_free(o->contact);
    if (o->device)
        g_ref_string_release(o->device);
    while (ready_len(o))
        msilo_message_free(ready_pop(o));
    g_ptr_array_unref(o->dumps);
    g_free(o);
}

/* The owners table's key of user@domain, and of one of its devices: a host
 * has no space, so "user@domain device" names one (and reads well in logs). */
static char *owner_key(const char *user, const char *domain, const char *device)
{
    return device ? g_strconcat(user, "@", domain, " ", device, NULL)
                  : g_strconcat(user, "@", domain, NULL);
}

/* @device: every_device, the device of the state (NULL: deliver_to = first) */
static owner_t *owner_get(msilo_engine_t *e, const char *user, const char *domain,
                          const char *device)
{
    char *key = owner_key(user, domain, device);
    owner_t *o = g_hash_table_lookup(e->owners, key);
    if (o) {
        g_free(key);
        return o;
    }
    o = g_new0(owner_t, 1);
    o->key = key;
    o->user = g_strdup(user);
    o->domain = g_strdup(domain);
    o->device = device ? g_ref_string_new(device) : NULL;
    o->dumps = g_ptr_array_new();
    g_hash_table_insert(e->owners, o->key, o);
    return o;
}

static gboolean owner_busy(const owner_t *o)
{
    return o->claiming || o->in_flight || ready_len(o) || o->more;
}

static void owner_claim(msilo_engine_t *e, owner_t *o)
{
    int64_t now = now_of(e);
    job_t *j = job_new(JOB_CLAIM);
    j->claim.owner = o;
    j->claim.args.user = o->user;
    j->claim.args.domain = o->domain;
    j->claim.args.now = now;
    j->claim.args.max_next_try = o->max_next_try;
    j->claim.args.lease_owner = e->instance_id;
    j->claim.args.lease_until = now + e->lease_time;
    j->claim.args.max = (size_t)MIN((uint64_t)e->dump_batch, (uint64_t)o->limit_left);
    j->claim.args.device = o->device;
    o->claiming = TRUE;
    o->more = FALSE;
    engine_job_submit(e, j);
}

static void owner_start_round(msilo_engine_t *e, owner_t *o, int64_t max_next_try, size_t limit)
{
    o->max_next_try = max_next_try;
    o->limit_left = limit ? limit : SIZE_MAX;
    o->again = FALSE;
    owner_claim(e, o);
}

static void owner_maybe_forget(msilo_engine_t *e, owner_t *o)
{
    if (owner_busy(o) || o->again || o->dumps->len)
        return;
    if (o->retry_at && o->reg_until > now_of(e) && !engine_stopping(e))
        return; /* keep: a retry is due while registered */
    if (o->blocked) /* it got its slots another way meanwhile */
        g_queue_remove(&e->blocked, o);
    g_hash_table_remove(e->owners, o->key);
    owner_free(o);
}

/* Sends what is ready within the window; ends the round when all is done. */
void engine_owner_pump(msilo_engine_t *e, owner_t *o)
{
    /* A send the transport refuses at once finishes inside engine_deliver() and
     * calls back here; the outer call carries on (and may end the round and
     * free the owner), so the inner one must not. */
    if (o->pumping)
        return;
    o->pumping = TRUE;
    while (!engine_stopping(e) && o->in_flight < (size_t)e->dump_window && ready_len(o)) {
        if (stat_get(e, MSILO_STAT_IN_FLIGHT) >= (uint64_t)e->max_in_flight) {
            /* wait for a slot; a finished delivery pumps it again, in turn */
            if (!o->blocked) {
                o->blocked = TRUE;
                g_queue_push_tail(&e->blocked, o);
            }
            break;
        }
        engine_deliver(e, SEND_OFFLINE, o, ready_pop(o));
    }
    o->pumping = FALSE;
    if (o->claiming || ready_len(o))
        return;
    if (o->more && !engine_stopping(e)) {
        /* follow-up claims of this round skip what failed during it */
        o->max_next_try = MIN(o->max_next_try, now_of(e));
        owner_claim(e, o);
        return;
    }
    if (o->in_flight)
        return;
    /* round over: tell the dumps waiting on it */
    GPtrArray *dumps = o->dumps;
    if (dumps->len && !o->again) {
        for (guint i = 0; i < dumps->len; i++) {
            ((dump_op *)dumps->pdata[i])->owner = NULL;
            g_queue_push_tail(&e->finished_dumps, dumps->pdata[i]);
        }
        g_ptr_array_set_size(dumps, 0);
        engine_flush_finished_dumps(e, FALSE);
    }
    if (o->again && !engine_stopping(e)) {
        owner_start_round(e, o, INT64_MAX, o->next_limit == SIZE_MAX ? 0 : o->next_limit);
        return;
    }
    owner_maybe_forget(e, o);
}

/* Ends the leases of claimed messages that will not be sent (the engine is
 * going away), unchanged otherwise; frees @msgs and the array. */
void engine_give_back(msilo_engine_t *e, msilo_message_t **msgs, size_t n, char *device)
{
    for (size_t i = 0; i < n; i++) {
        msilo_store_release_t r = { .id = msgs[i]->id, .attempts = msgs[i]->attempts,
                                    .next_try = msgs[i]->next_try, .lease_owner = e->instance_id,
                                    .device = device ? g_ref_string_acquire(device) : NULL };
        g_array_append_val(e->releases.wait, r);
    }
    msilo_message_array_free(msgs, n);
    engine_coalesce_schedule(e, &e->releases);
}

void engine_complete_claim(msilo_engine_t *e, job_t *j)
{
    owner_t *o = j->claim.owner;
    o->claiming = FALSE;
    gboolean cancelled = o->claim_cancelled;
    o->claim_cancelled = FALSE;
    if (j->rc) {
        engine_log(e, MSILO_LOG_WARNING, "claiming messages of %s failed: %s: %s", o->key,
                   msilo_strerror(j->rc), job_detail(j));
        for (guint i = 0; i < o->dumps->len; i++) {
            dump_op *d = o->dumps->pdata[i];
            job_detail_set(j); /* msilo_error_detail() in the callback */
            if (d->cb)
                d->cb(e, j->rc, &d->res, d->data);
            g_free(d);
        }
        g_ptr_array_set_size(o->dumps, 0);
        /* retry on the next check while registered */
        if (o->reg_until > now_of(e))
            o->retry_at = now_of(e) + e->check_time;
        o->again = FALSE;
        engine_owner_pump(e, o);
        return;
    }
    if (engine_stopping(e) || cancelled) {
        engine_give_back(e, j->claim.out, j->claim.out_n, o->device);
        engine_owner_pump(e, o);
        return;
    }
    if (owner_result(o))
        owner_result(o)->claimed += j->claim.out_n;
    ready_add(o, j->claim.out, j->claim.out_n);
    if (o->limit_left != SIZE_MAX)
        o->limit_left -= j->claim.out_n;
    o->more = j->claim.out_n == j->claim.args.max && o->limit_left > 0;
    engine_owner_pump(e, o);
}

/* Does the REGISTER's contact accept MESSAGE? (Allow header / methods param) */
static gboolean contact_accepts_message(const msilo_request_t *reg)
{
    if (reg->allow) {
        gboolean found = FALSE;
        gchar **toks = g_strsplit_set(reg->allow, ", \t", -1);
        for (gchar **t = toks; *t; t++)
            if (g_ascii_strcasecmp(*t, "MESSAGE") == 0)
                found = TRUE;
        g_strfreev(toks);
        if (!found)
            return FALSE;
    }
    if (reg->contact) {
        const char *m = strstr(reg->contact, ";methods=");
        if (m) {
            m += strlen(";methods=");
            gboolean quoted = *m == '"';
            const char *end = quoted ? strchr(m + 1, '"') : m + strcspn(m, ";>");
            if (!end)
                end = m + strlen(m);
            char *list = g_strndup(m + (quoted ? 1 : 0), (gsize)(end - m - (quoted ? 1 : 0)));
            gboolean found = FALSE;
            gchar **toks = g_strsplit_set(list, ", \t", -1);
            for (gchar **t = toks; *t; t++)
                if (g_ascii_strcasecmp(*t, "MESSAGE") == 0)
                    found = TRUE;
            g_strfreev(toks);
            g_free(list);
            if (!found)
                return FALSE;
        }
    }
    return TRUE;
}

/* Parses the owner @src (@what names it in errors) as the engine keys
 * owners: 0 and @ou filled (msilo_uri_clear() it, g_free(*dflt_host)). */
static int owner_parse(msilo_engine_t *e, const char *src, const char *what, msilo_uri_t *ou,
                       char **dflt_host)
{
    int rc = msilo_uri_parse(src, what, ou);
    if (rc)
        return rc;
    *dflt_host = NULL; /* a tel: owner without phone-context */
    if (ou->scheme == MSILO_SCHEME_TEL && !ou->host && e->default_domain)
        ou->host = *dflt_host = g_ascii_strdown(e->default_domain, -1);
    if (!msilo_uri_is_aor(ou)) {
        g_free(*dflt_host);
        msilo_uri_clear(ou);
        return msilo_fail(MSILO_EURI, "owner '%.64s' is not an address of record", src);
    }
    return 0;
}

/* A Contact value names "*" (every contact)? */
static gboolean contact_is_star(const char *c)
{
    while (*c == ' ')
        c++;
    return *c == '*';
}

static owner_t *owner_find(msilo_engine_t *e, const char *user, const char *domain,
                           const char *device)
{
    char *key = owner_key(user, domain, device);
    owner_t *o = g_hash_table_lookup(e->owners, key);
    g_free(key);
    return o;
}

/* Completes the dumps waiting on @o with MSILO_ECANCELLED and their counts,
 * from the loop (after the deletes in progress, which may be theirs). */
static void owner_cancel_dumps(msilo_engine_t *e, owner_t *o)
{
    gboolean deleting = e->acks.running || e->acks.wait->len || e->marks.running ||
                        e->marks.wait->len;
    for (guint i = 0; i < o->dumps->len; i++) {
        dump_op *d = o->dumps->pdata[i];
        d->owner = NULL;
        d->result = MSILO_ECANCELLED;
        g_queue_push_tail(deleting ? &e->finished_dumps : &e->noop_dumps, d);
    }
    if (o->dumps->len && !deleting)
        g_source_set_ready_time(e->dispatch, 0);
    g_ptr_array_set_size(o->dumps, 0);
}

/* Cancels @o's round and retries (the invariant at the top). The owner is
 * not freed here (this may run from a callback of its own pump): its last
 * delivery in flight forgets it, or else the next check. */
static void owner_cancel(msilo_engine_t *e, owner_t *o)
{
    size_t n = ready_len(o);
    if (n) {
        msilo_message_t **unsent = g_new(msilo_message_t *, n);
        for (size_t i = 0; i < n; i++)
            unsent[i] = ready_pop(o);
        engine_give_back(e, unsent, n, o->device);
    }
    if (o->claiming)
        o->claim_cancelled = TRUE;
    o->more = FALSE;
    o->again = FALSE;
    o->reg_until = 0;
    o->retry_at = now_of(e); /* due: the next check forgets it when idle */
    owner_cancel_dumps(e, o);
    engine_log(e, MSILO_LOG_DEBUG, "dumps and retries of %s cancelled (%zu released)", o->key, n);
}

/* every_device: cancels the rounds of @device of owner @ou (NULL: of each
 * of its devices). */
static void cancel_device(msilo_engine_t *e, const msilo_uri_t *ou, const char *device)
{
    if (device) {
        owner_t *o = owner_find(e, ou->user, ou->host, device);
        if (o)
            owner_cancel(e, o);
        return;
    }
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, e->owners);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        owner_t *o = v; /* owner_cancel() frees nothing: the iteration stays valid */
        if (o->device && strcmp(o->user, ou->user) == 0 && strcmp(o->domain, ou->host) == 0)
            owner_cancel(e, o);
    }
}

/* Cancels the rounds of owner @ou to @contact (NULL: any contact; "" the
 * AoR, a dump without Contact). */
static void cancel_matching(msilo_engine_t *e, const msilo_uri_t *ou, const char *contact)
{
    owner_t *o = owner_find(e, ou->user, ou->host, NULL);
    if (!o)
        return;
    if (contact && (*contact ? !o->contact || g_ascii_strcasecmp(o->contact, contact) != 0
                             : o->contact != NULL))
        return; /* its retries go to another contact: they stay */
    owner_cancel(e, o);
}

/* An un-REGISTER (expires 0 or Contact "*"): ends the retries to its contact. */
static void unregister(msilo_engine_t *e, const msilo_request_t *reg, const msilo_uri_t *ou)
{
    if (e->every_device) {
        /* only the device that leaves: the others' rounds go on */
        if (reg->contact && contact_is_star(reg->contact)) {
            cancel_device(e, ou, NULL);
            return;
        }
        msilo_uri_t cu;
        gboolean have_cu = reg->contact && msilo_uri_parse(reg->contact, "Contact", &cu) == 0;
        char *device = engine_dump_device(reg, have_cu ? cu.uri : NULL, ou->user, ou->host);
        cancel_device(e, ou, device);
        g_free(device);
        if (have_cu)
            msilo_uri_clear(&cu);
        return;
    }
    if (!reg->contact) {
        cancel_matching(e, ou, "");
        return;
    }
    if (contact_is_star(reg->contact)) {
        cancel_matching(e, ou, NULL);
        return;
    }
    msilo_uri_t cu;
    if (msilo_uri_parse(reg->contact, "Contact", &cu) == 0) {
        cancel_matching(e, ou, cu.uri);
        msilo_uri_clear(&cu);
    }
}

int msilo_engine_cancel(msilo_engine_t *e, const char *owner, const char *contact)
{
    if (!e || !owner)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_cancel: engine or owner is NULL");
    if (!engine_enter(e))
        return engine_ethread("msilo_engine_cancel");
    msilo_uri_t ou, cu;
    char *dflt_host = NULL;
    int rc = owner_parse(e, owner, "owner", &ou, &dflt_host);
    if (rc == 0) {
        if (!contact || contact_is_star(contact)) {
            if (e->every_device)
                cancel_device(e, &ou, NULL);
            else
                cancel_matching(e, &ou, NULL);
        } else if ((rc = msilo_uri_parse(contact, "Contact", &cu)) == 0) {
            if (e->every_device) {
                char *inst = engine_contact_instance(contact);
                cancel_device(e, &ou, inst ? inst : cu.uri);
                g_free(inst);
            } else {
                cancel_matching(e, &ou, cu.uri);
            }
            msilo_uri_clear(&cu);
        }
        msilo_uri_clear(&ou);
        g_free(dflt_host);
    }
    if (rc == 0)
        msilo_error_clear();
    engine_leave(e);
    return rc;
}

void engine_dump_cancel(msilo_engine_t *e, dump_op *d)
{
    if (d->owner)
        owner_cancel(e, d->owner);
}

int msilo_engine_dump(msilo_engine_t *e, const msilo_request_t *reg, const char *owner,
                      size_t max, msilo_dump_cb cb, void *data)
{
    if (!e || !reg)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_dump: engine or request is NULL");
    if (!engine_enter(e))
        return engine_ethread("msilo_engine_dump");
    int rc = engine_dump_start(e, reg, owner, max, cb, data, NULL);
    engine_leave(e);
    return rc;
}

int engine_dump_start(msilo_engine_t *e, const msilo_request_t *reg, const char *owner,
                      size_t max, msilo_dump_cb cb, void *data, dump_op **ret_op)
{
    if (reg->version < 1 || reg->version > MSILO_REQUEST_VERSION)
        return msilo_fail(MSILO_EVERSION, "request view version %u not supported", reg->version);
    if (e->freeing)
        return msilo_fail(MSILO_ECANCELLED, "engine is being freed");
    if (e->stopping)
        return msilo_fail(MSILO_ESHUTDOWN, "msilo_engine_dump: the engine is shutting down");
    if (!e->transport)
        return msilo_fail(MSILO_ENOTSUP, "engine has no transport");
    const char *src = owner ? owner : reg->to;
    if (!src || !*src)
        return msilo_fail(MSILO_EMISSING, "REGISTER has no To and no owner was given");
    msilo_uri_t ou;
    char *dflt_host;
    int rc = owner_parse(e, src, owner ? "owner" : "To", &ou, &dflt_host);
    if (rc)
        return rc;
    char *contact = NULL;
    gboolean skip = reg->expires == 0;
    if (skip || (reg->contact && contact_is_star(reg->contact)))
        unregister(e, reg, &ou);
    if (reg->contact && !skip) {
        if (contact_is_star(reg->contact)) {
            skip = TRUE;
        } else {
            msilo_uri_t cu;
            rc = msilo_uri_parse(reg->contact, "Contact", &cu);
            if (rc) {
                msilo_uri_clear(&ou);
                g_free(dflt_host);
                return rc;
            }
            contact = g_strdup(cu.uri);
            msilo_uri_clear(&cu);
        }
    }
    if (!skip && !contact_accepts_message(reg))
        skip = TRUE;

    dump_op *d = g_new0(dump_op, 1);
    d->cb = cb;
    d->data = data;
    if (ret_op)
        *ret_op = d;
    if (skip) {
        /* nothing to send; the callback still never runs inside this call */
        g_queue_push_tail(&e->noop_dumps, d);
        g_source_set_ready_time(e->dispatch, 0);
        g_free(contact);
        msilo_uri_clear(&ou);
        g_free(dflt_host);
        msilo_error_clear();
        return 0;
    }
    char *device = e->every_device ? engine_dump_device(reg, contact, ou.user, ou.host) : NULL;
    owner_t *o = owner_get(e, ou.user, ou.host, device);
    g_free(device);
    msilo_uri_clear(&ou);
    g_free(dflt_host);
    g_free(o->contact);
    o->contact = contact;
    int64_t now = now_of(e);
    o->reg_until = reg->expires > 0 ? now + reg->expires : now + REGISTRATION_DEFAULT_TIME;
    g_ptr_array_add(o->dumps, d);
    d->owner = o;
    if (owner_busy(o)) {
        /* the running round sends nothing twice (leases); another round follows */
        o->next_limit = o->again ? MAX(o->next_limit, max ? max : SIZE_MAX) : (max ? max : SIZE_MAX);
        o->again = TRUE;
    } else {
        o->retry_at = 0;
        owner_start_round(e, o, INT64_MAX, max);
    }
    msilo_error_clear();
    return 0;
}

void engine_complete_noop_dumps(msilo_engine_t *e, int result)
{
    dump_op *d;
    while ((d = g_queue_pop_head(&e->noop_dumps))) {
        if (d->cb)
            d->cb(e, d->result ? d->result : result, &d->res, d->data);
        g_free(d);
    }
}

void engine_flush_finished_dumps(msilo_engine_t *e, gboolean force)
{
    if ((e->acks.running || e->acks.wait->len || e->marks.running || e->marks.wait->len) &&
        !e->freeing && !force)
        return;
    dump_op *d;
    while ((d = g_queue_pop_head(&e->finished_dumps))) {
        if (d->cb)
            d->cb(e, d->result ? d->result : e->freeing ? MSILO_ECANCELLED
                                             : e->stopping ? MSILO_ESHUTDOWN : 0,
                  &d->res, d->data);
        g_free(d);
    }
}

/* ---- for the tick and the end ------------------------------------------------ */

void engine_owners_retry(msilo_engine_t *e, int64_t now)
{
    /* collected first: forgetting an owner removes it from the table */
    GPtrArray *due = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, e->owners);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        owner_t *o = v;
        if (o->retry_at && o->retry_at <= now)
            g_ptr_array_add(due, o);
    }
    for (guint i = 0; i < due->len; i++) {
        owner_t *o = due->pdata[i];
        o->retry_at = 0;
        if (o->reg_until <= now)
            owner_maybe_forget(e, o);
        else if (!owner_busy(o))
            owner_start_round(e, o, now, 0);
    }
    g_ptr_array_unref(due);
}

void engine_owners_free(msilo_engine_t *e)
{
    /* complete waiting dumps, give back claimed-but-unsent messages */
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, e->owners);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        owner_t *o = v;
        size_t n = ready_len(o);
        msilo_message_t **unsent = g_new(msilo_message_t *, n ? n : 1);
        for (size_t i = 0; i < n; i++)
            unsent[i] = ready_pop(o);
        engine_give_back(e, unsent, n, o->device);
        for (guint i = 0; i < o->dumps->len; i++) {
            dump_op *d = o->dumps->pdata[i];
            if (d->cb)
                d->cb(e, MSILO_ECANCELLED, &d->res, d->data);
            g_free(d);
        }
        g_ptr_array_set_size(o->dumps, 0);
    }
    engine_coalesce_schedule(e, &e->releases);
    g_queue_clear(&e->blocked);
    g_hash_table_iter_init(&it, e->owners);
    while (g_hash_table_iter_next(&it, NULL, &v))
        owner_free(v);
    g_hash_table_unref(e->owners);
}

void engine_owners_stop(msilo_engine_t *e)
{
    /* collected first: a round that ends forgets its owner */
    GPtrArray *all = g_ptr_array_new();
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, e->owners);
    while (g_hash_table_iter_next(&it, NULL, &v))
        g_ptr_array_add(all, v);
    for (guint i = 0; i < all->len; i++) {
        owner_t *o = all->pdata[i];
        size_t n = ready_len(o);
        if (n) {
            msilo_message_t **unsent = g_new(msilo_message_t *, n);
            for (size_t k = 0; k < n; k++)
                unsent[k] = ready_pop(o);
            engine_give_back(e, unsent, n, o->device);
        }
        if (o->blocked) {
            g_queue_remove(&e->blocked, o);
            o->blocked = FALSE;
        }
        o->more = o->again = FALSE;
        engine_owner_pump(e, o); /* ends the round unless a claim or a send is out */
    }
    g_ptr_array_unref(all);
}
