/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-server: RFC 3842 message-summary subscriptions ([server] mwi).
 *
 * A SUBSCRIBE with Event: message-summary for a local (and known, known.c)
 * user, authenticated as that user when auth is on (401/403 as for
 * REGISTER), makes a dialog on a Sofia NTA leg: 200 with the Expires granted
 * (cut to subscribe_max_expires; below subscribe_min_expires 423 with
 * Min-Expires), then a NOTIFY at once and whenever the engine's count hook
 * says the user's count may have changed and it did:
 *
 *   Event: message-summary
 *   Subscription-State: active;expires=3598
 *   Content-Type: application/simple-message-summary
 *
 *   Messages-Waiting: yes
 *   Message-Account: sip:alice@example.org
 *   Text-Message: 3/0
 *
 * A refresh in the dialog gets 200 and a NOTIFY; Expires: 0 or the end of
 * the subscription a final NOTIFY "terminated;reason=timeout". A refresh of
 * a dialog we do not have gets 481 (sip.c, no leg matched it); another event
 * 489 with Allow-Events. A NOTIFY answered with a failure or not at all ends
 * the subscription without another NOTIFY (RFC 6665 4.2.2).
 *
 * Counts: msilo_store_count() on the loop thread for a non-blocking store
 * (memory), else on one worker thread with a store handle of its own (a peer
 * for PostgreSQL, the store itself when it is thread-safe: SQLite), the
 * result posted back to the loop. One count per address in flight; a change
 * meanwhile counts again when it ends, so a NOTIFY never shows an older
 * count after a newer one. Subscriptions live in this process only.
 *
 * Owns: s->mwi, the subscriptions, their legs, timers and NOTIFY
 * transactions, the count thread and its store handle.
 */
#include <inttypes.h>
#include <string.h>

#include "server.h"

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/url.h>

#include "request.h"

#define MWI_EVENT "message-summary"
#define MWI_CTYPE "application/simple-message-summary"
/* RFC 3842 section 4.1: the package's default subscription duration */
#define MWI_DEFAULT_EXPIRES 3600u

typedef struct mwi mwi_t;

/* What a count result finds the subscriptions by: cleared when they are
 * freed, so a result that arrives later is dropped. Loop thread only. */
typedef struct mwi_link {
    mwi_t *m;
} mwi_link;

typedef struct mwi_sub {
    mwi_t *m;
    nta_leg_t *leg;
    char *aor;       /* "user@domain", as the engine names the owner */
    int64_t expires_at;
    guint timer;     /* the end of the subscription */
    int64_t count;   /* last counted; -1: not yet */
    int64_t sent;    /* in the last NOTIFY; -1: none */
    bool need;       /* a NOTIFY is due whatever the count (new, refreshed) */
    nta_outgoing_t *orq; /* the NOTIFY in flight */
    bool pending;    /* another NOTIFY after it */
    bool terminated; /* the next NOTIFY is the final one */
    bool final_sent; /* the one in flight is */
} mwi_sub;

struct mwi {
    server_t *s;
    GHashTable *subs;     /* nta_leg_t* -> mwi_sub* (owned, freed by sub_free) */
    GHashTable *counting; /* aor -> bool* dirty: a count is in flight */
    GThreadPool *pool;    /* one thread; NULL: count on the loop thread */
    msilo_store_t *store; /* what the counts use */
    bool own_store;       /* a peer handle of ours */
    mwi_link *link;       /* a g_rc_box, shared with the counts in flight */
};

typedef struct count_req {
    mwi_link *link; /* a reference (g_rc_box) */
    char *aor, *user, *domain;
    int64_t count;
    int rc;
} count_req;

static void count_request(mwi_t *m, const char *aor);
static void send_notify(mwi_sub *sub);

/* ---- subscriptions ---------------------------------------------------------- */

static void sub_free(mwi_sub *sub)
{
    g_hash_table_remove(sub->m->subs, sub->leg);
    if (sub->timer)
        g_source_remove(sub->timer);
    if (sub->orq)
        nta_outgoing_destroy(sub->orq);
    nta_leg_destroy(sub->leg);
    g_free(sub->aor);
    g_free(sub);
}

static gboolean sub_expired(gpointer data)
{
    mwi_sub *sub = data;
    sub->timer = 0;
    sub->terminated = true;
    REQ_LOG("SUBSCRIBE message-summary %s: expired", sub->aor);
    send_notify(sub);
    return G_SOURCE_REMOVE;
}

/* (Re)arms the end of @sub in @expires seconds. */
static void sub_set_expires(mwi_sub *sub, unsigned expires)
{
    sub->expires_at = server_now() + expires;
    if (sub->timer)
        g_source_remove(sub->timer);
    sub->timer = g_timeout_add_seconds(expires, sub_expired, sub);
}

/* NTA_OUTGOING_MAGIC_T is struct forward in this program: a NOTIFY's magic
 * is its subscription, passed through that type. */
static int notify_cb(struct forward *magic, nta_outgoing_t *orq, sip_t const *sip)
{
    mwi_sub *sub = (mwi_sub *)(void *)magic;
    int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);
    if (status < 200)
        return 0;
    nta_outgoing_destroy(orq);
    sub->orq = NULL;
    if (sub->final_sent) {
        sub_free(sub);
    } else if (status >= 300) {
        g_message("NOTIFY message-summary %s: %d: subscription ended", sub->aor, status);
        sub_free(sub);
    } else if (sub->pending || sub->terminated) {
        sub->pending = false;
        send_notify(sub);
    }
    return 0;
}

/* Sends the NOTIFY of @sub's state and count (the final one once
 * terminated); NULL when it cannot. */
static nta_outgoing_t *notify_out(mwi_sub *sub)
{
    server_t *s = sub->m->s;
    int64_t left = sub->expires_at - server_now();
    if (left <= 0)
        sub->terminated = true;
    char state[64];
    if (sub->terminated)
        g_strlcpy(state, "terminated;reason=timeout", sizeof state);
    else
        g_snprintf(state, sizeof state, "active;expires=%" PRId64, left);
    int64_t n = MAX(sub->count, 0);
    g_autofree char *body = g_strdup_printf("Messages-Waiting: %s\r\n"
                                            "Message-Account: sip:%s\r\n"
                                            "Text-Message: %" PRId64 "/0\r\n",
                                            n > 0 ? "yes" : "no", sub->aor, n);
    nta_outgoing_t *orq = nta_outgoing_tcreate(
        sub->leg, notify_cb, (struct forward *)(void *)sub, NULL, SIP_METHOD_NOTIFY, NULL,
        SIPTAG_EVENT_STR(MWI_EVENT), SIPTAG_SUBSCRIPTION_STATE_STR(state),
        SIPTAG_CONTACT(nta_agent_contact(s->agent)), SIPTAG_CONTENT_TYPE_STR(MWI_CTYPE),
        SIPTAG_PAYLOAD_STR(body), TAG_END());
    sub->need = false;
    sub->sent = n;
    if (orq)
        REQ_LOG("NOTIFY message-summary %s: %" PRId64 " waiting, %s", sub->aor, n, state);
    return orq;
}

/* The NOTIFY of @sub's current count, one at a time per dialog; frees @sub
 * when it cannot be sent. */
static void send_notify(mwi_sub *sub)
{
    if (sub->orq) {
        sub->pending = true;
        return;
    }
    sub->orq = notify_out(sub);
    if (!sub->orq) {
        g_warning("NOTIFY message-summary %s: cannot send: subscription ended", sub->aor);
        sub_free(sub);
        return;
    }
    sub->final_sent = sub->terminated;
}

/* ---- counts ------------------------------------------------------------------- */

static void count_req_free(gpointer data)
{
    count_req *r = data;
    g_rc_box_release(r->link);
    g_free(r->aor);
    g_free(r->user);
    g_free(r->domain);
    g_free(r);
}

/* On the loop thread: the count of r->aor is known. */
static gboolean count_done(gpointer data)
{
    count_req *r = data;
    mwi_t *m = r->link->m;
    if (!m)
        return G_SOURCE_REMOVE; /* the subscriptions are gone */
    bool *dirty = g_hash_table_lookup(m->counting, r->aor);
    if (dirty && *dirty) { /* changed meanwhile: this result may be old */
        g_hash_table_remove(m->counting, r->aor);
        count_request(m, r->aor);
        return G_SOURCE_REMOVE;
    }
    g_hash_table_remove(m->counting, r->aor);
    if (r->rc) {
        g_warning("message-summary: counting the messages of %s: %s", r->aor,
                  msilo_strerror(r->rc));
        return G_SOURCE_REMOVE;
    }
    GHashTableIter it;
    gpointer value;
    GPtrArray *due = g_ptr_array_new();
    g_hash_table_iter_init(&it, m->subs);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        mwi_sub *sub = value;
        if (strcmp(sub->aor, r->aor) != 0)
            continue;
        sub->count = r->count;
        if (sub->need || sub->count != sub->sent)
            g_ptr_array_add(due, sub);
    }
    /* (send_notify may free a subscription: not while iterating) */
    for (guint i = 0; i < due->len; i++)
        send_notify(due->pdata[i]);
    g_ptr_array_unref(due);
    return G_SOURCE_REMOVE;
}

static void count_run(count_req *r, msilo_store_t *store)
{
    r->rc = msilo_store_count(store, r->user, r->domain, &r->count);
}

/* The count thread. */
static void count_worker(gpointer data, gpointer user_data)
{
    count_req *r = data;
    mwi_t *m = user_data; /* alive: the pool is freed (and waited for) first */
    count_run(r, m->store);
    g_main_context_invoke_full(NULL, G_PRIORITY_DEFAULT, count_done, r, count_req_free);
}

/* Counts @aor's messages, then notifies its subscriptions. */
static void count_request(mwi_t *m, const char *aor)
{
    bool *dirty = g_hash_table_lookup(m->counting, aor);
    if (dirty) {
        *dirty = true;
        return;
    }
    const char *at = strrchr(aor, '@');
    if (!at)
        return;
    count_req *r = g_new0(count_req, 1);
    r->link = g_rc_box_acquire(m->link);
    r->aor = g_strdup(aor);
    r->user = g_strndup(aor, (gsize)(at - aor));
    r->domain = g_strdup(at + 1);
    g_hash_table_insert(m->counting, g_strdup(aor), g_new0(bool, 1));
    if (!m->pool) {
        count_run(r, m->store);
        count_done(r);
        count_req_free(r);
        return;
    }
    g_thread_pool_push(m->pool, r, NULL);
}

/* The engine's count hook: @user@@domain's count may have changed (both
 * NULL: anybody's). */
static void count_changed(msilo_engine_t *e, const char *user, const char *domain, void *data)
{
    mwi_t *m = data;
    (void)e;
    if (!g_hash_table_size(m->subs))
        return;
    g_autofree char *aor = user ? g_strdup_printf("%s@%s", user, domain) : NULL;
    g_autoptr(GHashTable) aors = g_hash_table_new(g_str_hash, g_str_equal);
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, m->subs);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        mwi_sub *sub = value;
        if (!aor || strcmp(aor, sub->aor) == 0)
            g_hash_table_add(aors, sub->aor);
    }
    g_hash_table_iter_init(&it, aors);
    gpointer key;
    while (g_hash_table_iter_next(&it, &key, NULL))
        count_request(m, key);
}

/* ---- requests ----------------------------------------------------------------- */

/* The Expires a SUBSCRIBE asks for: 0 (unsubscribe), or at least the
 * minimum (else 0 with *ret_too_brief), cut to the maximum. */
static unsigned granted_expires(server_t *s, sip_t const *sip, bool *ret_too_brief)
{
    unsigned want = sip->sip_expires ? (unsigned)MIN(sip->sip_expires->ex_delta, G_MAXUINT)
                                     : MWI_DEFAULT_EXPIRES;
    *ret_too_brief = want > 0 && want < s->opt.subscribe_min_expires;
    return MIN(want, s->opt.subscribe_max_expires);
}

static void reply_423(server_t *s, nta_incoming_t *irq)
{
    char min[16];
    g_snprintf(min, sizeof min, "%u", s->opt.subscribe_min_expires);
    server_reply(irq, 423, SIPTAG_MIN_EXPIRES_STR(min), TAG_END());
}

/* 200 with the Expires granted and our Contact. */
static void reply_200(server_t *s, nta_incoming_t *irq, unsigned expires)
{
    char exp[16];
    g_snprintf(exp, sizeof exp, "%u", expires);
    server_reply(irq, 200, SIPTAG_EXPIRES_STR(exp), SIPTAG_CONTACT(nta_agent_contact(s->agent)),
                 TAG_END());
}

static bool event_ok(sip_t const *sip)
{
    return sip->sip_event && sip->sip_event->o_type &&
           g_ascii_strcasecmp(sip->sip_event->o_type, MWI_EVENT) == 0;
}

/* Requests in a subscription's dialog. NTA_LEG_MAGIC_T is the server. */
static int leg_cb(server_t *s, nta_leg_t *leg, nta_incoming_t *irq, sip_t const *sip)
{
    mwi_sub *sub = s->mwi ? g_hash_table_lookup(s->mwi->subs, leg) : NULL;
    if (!sub || sub->terminated)
        return 481;
    if (sip->sip_request->rq_method != sip_method_subscribe)
        return 405;
    if (!event_ok(sip)) {
        server_reply(irq, 489, SIPTAG_ALLOW_EVENTS_STR(MWI_EVENT), TAG_END());
        return 0;
    }
    if (s->auth && !server_authenticate(s, irq, sip, sip->sip_to ? sip->sip_to->a_url : NULL))
        return 0;
    bool too_brief;
    unsigned expires = granted_expires(s, sip, &too_brief);
    if (too_brief) {
        reply_423(s, irq);
        return 0;
    }
    reply_200(s, irq, expires);
    if (expires == 0) {
        REQ_LOG("SUBSCRIBE message-summary %s: unsubscribed", sub->aor);
        sub->terminated = true;
        send_notify(sub);
        return 0;
    }
    sub_set_expires(sub, expires);
    sub->need = true;
    count_request(s->mwi, sub->aor);
    return 0;
}

int server_handle_subscribe(server_t *s, nta_incoming_t *irq, sip_t const *sip)
{
    mwi_t *m = s->mwi;
    if (!m)
        return 405;
    /* in a dialog, but no leg of ours took it */
    if (sip->sip_to && sip->sip_to->a_tag)
        return 481;
    if (!event_ok(sip)) {
        server_reply(irq, 489, SIPTAG_ALLOW_EVENTS_STR(MWI_EVENT), TAG_END());
        return 0;
    }
    url_t const *who = server_message_owner(sip);
    g_autofree char *aor = who ? server_aor_of_url(who) : NULL;
    const char *at = aor ? strrchr(aor, '@') : NULL;
    bool local = at && !s->opt.domains;
    for (size_t i = 0; at && !local && s->opt.domains[i]; i++)
        local = g_ascii_strcasecmp(at + 1, s->opt.domains[i]) == 0;
    if (!local || !server_known_user(s, who)) {
        if (local)
            s->n_unknown_users++;
        server_reply(irq, 404, SIPTAG_WARNING_STR(local ? "399 msilo \"Not a known user\""
                                                        : "399 msilo \"Not a local user\""),
                     TAG_END());
        return 0;
    }
    if (s->auth && !server_authenticate(s, irq, sip, who))
        return 0;
    bool too_brief;
    unsigned expires = granted_expires(s, sip, &too_brief);
    if (too_brief) {
        reply_423(s, irq);
        return 0;
    }
    nta_leg_t *leg = nta_leg_tcreate(s->agent, leg_cb, s, SIPTAG_CALL_ID(sip->sip_call_id),
                                     SIPTAG_FROM(sip->sip_to), SIPTAG_TO(sip->sip_from),
                                     TAG_END());
    if (!leg || !nta_leg_tag(leg, NULL) ||
        nta_leg_server_route(leg, sip->sip_record_route, sip->sip_contact) < 0) {
        if (leg)
            nta_leg_destroy(leg);
        return 500;
    }
    nta_incoming_tag(irq, nta_leg_get_tag(leg));
    reply_200(s, irq, expires);

    mwi_sub *sub = g_new0(mwi_sub, 1);
    sub->m = m;
    sub->leg = leg;
    sub->aor = g_steal_pointer(&aor);
    sub->count = sub->sent = -1;
    sub->need = true;
    g_hash_table_insert(m->subs, leg, sub);
    if (expires == 0) /* a fetch: one NOTIFY, terminated */
        sub->terminated = true;
    else
        sub_set_expires(sub, expires);
    REQ_LOG("SUBSCRIBE message-summary %s: %u s", sub->aor, expires);
    count_request(m, sub->aor);
    return 0;
}

/* ---- life cycle ------------------------------------------------------------- */

void server_mwi_start(server_t *s)
{
    if (!s->opt.mwi)
        return;
    mwi_t *m = g_new0(mwi_t, 1);
    m->s = s;
    m->subs = g_hash_table_new(NULL, NULL);
    m->counting = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    m->link = g_rc_box_new0(mwi_link);
    m->link->m = m;
    m->store = s->store;
    if (!(s->store->flags & MSILO_STORE_NONBLOCKING)) {
        if (!(s->store->flags & MSILO_STORE_THREADSAFE)) {
            int r = msilo_store_open_peer(s->store, &m->store);
            if (r < 0) {
                g_warning("message-summary: no store handle to count with (%s): "
                          "SUBSCRIBE gets 405", msilo_strerror(r));
                g_rc_box_release(m->link);
                g_hash_table_unref(m->subs);
                g_hash_table_unref(m->counting);
                g_free(m);
                return;
            }
            m->own_store = true;
        }
        m->pool = g_thread_pool_new(count_worker, m, 1, FALSE, NULL);
    }
    s->mwi = m;
    msilo_engine_set_count_hook(s->engine, count_changed, m);
}

unsigned server_mwi_count(server_t *s)
{
    return s->mwi ? g_hash_table_size(s->mwi->subs) : 0;
}

void server_mwi_stop(server_t *s)
{
    mwi_t *m = s->mwi;
    if (!m)
        return;
    if (s->engine)
        msilo_engine_set_count_hook(s->engine, NULL, NULL);
    /* the counts queued run to the end; their results find no link */
    if (m->pool)
        g_thread_pool_free(m->pool, FALSE, TRUE);
    m->link->m = NULL;
    g_rc_box_release(m->link);
    /* a final NOTIFY for each, not waited for: destroying the transaction
     * only stops its callback (a UDP request is out at once) */
    GList *subs = g_hash_table_get_values(m->subs);
    for (GList *l = subs; l; l = l->next) {
        mwi_sub *sub = l->data;
        if (sub->orq)
            nta_outgoing_destroy(sub->orq);
        sub->terminated = true;
        sub->orq = notify_out(sub);
        sub_free(sub);
    }
    g_list_free(subs);
    g_hash_table_unref(m->subs);
    g_hash_table_unref(m->counting);
    if (m->own_store)
        msilo_store_free(m->store);
    g_free(m);
    s->mwi = NULL;
}
