/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Sofia-SIP NTA transport: one client transaction per msilo_outgoing_t.
 *
 * Each send is a `struct sofia_send` on the transport's list until its done
 * callback has run. Three things can finish a send, whichever comes first:
 * the NTA response callback (final status), the guard timer, or free().
 * The done callback is never called from inside send(): when NTA reports a
 * final status synchronously (it does for some transport errors, from inside
 * nta_outgoing_mcreate()), the completion is deferred to a 0 ms su_timer.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct sofia_send;
struct sofia_transport;
#define NTA_OUTGOING_MAGIC_T struct sofia_send
#define SU_TIMER_ARG_T struct sofia_send

#include <sofia-sip/nta.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_uniqueid.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/url.h>

#include <msilo/errors.h>
#include <msilo/sofia.h>

typedef struct sofia_transport sofia_transport_t;
typedef struct sofia_send sofia_send_t;

struct sofia_send {
    sofia_transport_t *t;
    sofia_send_t *prev, *next; /* t->sends */
    nta_outgoing_t *orq;       /* NULL once the transaction is finished/abandoned */
    su_timer_t *guard;         /* guard timer, or NULL */
    su_timer_t *defer;         /* deferred completion, or NULL */
    msilo_transport_done_fn done;
    void *data;
    int status;                /* outcome, valid when finished */
    bool finished;             /* outcome known, done not called yet */
};

struct sofia_transport {
    msilo_transport_t base; /* must stay first */
    nta_agent_t *agent;
    su_root_t *root;
    unsigned timeout_ms;
    uint32_t cseq;
    sofia_send_t *sends; /* in flight (done not yet called) */
    size_t n_sends;
    unsigned in_send;    /* > 0 while inside send() */
    msilo_sofia_flow_fn flow_fn; /* the embedder's registrar, or NULL */
    void *flow_data;
};

static int sofia_send(msilo_transport_t *base, const msilo_outgoing_t *msg,
                      msilo_transport_done_fn done, void *data);
static void sofia_free(msilo_transport_t *base);

static sofia_transport_t *sofia_cast(const msilo_transport_t *base)
{
    if (!base || base->send != sofia_send)
        return NULL;
    return (sofia_transport_t *)base;
}

/* ---- completion ---------------------------------------------------------- */

static void send_unlink(sofia_send_t *s)
{
    sofia_transport_t *t = s->t;
    if (s->prev)
        s->prev->next = s->next;
    else
        t->sends = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    t->n_sends--;
}

static void send_release(sofia_send_t *s)
{
    if (s->orq) {
        /* After destroy NTA never calls our callback again. */
        nta_outgoing_destroy(s->orq);
        s->orq = NULL;
    }
    if (s->guard) {
        su_timer_destroy(s->guard);
        s->guard = NULL;
    }
    if (s->defer) {
        su_timer_destroy(s->defer);
        s->defer = NULL;
    }
}

/* Calls done exactly once and frees the send. */
static void send_complete(sofia_send_t *s, int status)
{
    msilo_transport_done_fn done = s->done;
    void *data = s->data;

    send_release(s);
    send_unlink(s);
    free(s);
    done(status, data);
}

static void defer_fired(su_root_magic_t *magic, su_timer_t *timer, sofia_send_t *s)
{
    (void)magic;
    (void)timer;
    send_complete(s, s->status);
}

/* Records the outcome; completes now, or on the next loop turn when inside send(). */
static void send_finish(sofia_send_t *s, int status)
{
    if (s->finished)
        return;
    s->finished = true;
    s->status = status;
    if (s->orq) {
        nta_outgoing_destroy(s->orq);
        s->orq = NULL;
    }
    if (s->guard) {
        su_timer_destroy(s->guard);
        s->guard = NULL;
    }
    if (s->t->in_send) {
        s->defer = su_timer_create(su_root_task(s->t->root), 0);
        if (s->defer && su_timer_set_interval(s->defer, defer_fired, s, 0) == 0)
            return;
        /* Cannot defer: send() sees s->finished and fails instead (see there). */
        if (s->defer)
            su_timer_destroy(s->defer);
        s->defer = NULL;
        return;
    }
    send_complete(s, status);
}

static int map_status(nta_outgoing_t *orq, sip_t const *sip)
{
    int status = sip && sip->sip_status ? sip->sip_status->st_status
                                        : nta_outgoing_status(orq);
    /* A response without a message, or one NTA made up itself. */
    if (!sip || nta_sip_is_internal(sip)) {
        if (status == 408)
            return MSILO_ETIMEDOUT;
        if (status >= 200 && status < 300)
            return status; /* never seen, but a 2xx is a 2xx */
        return MSILO_ETRANSPORT;
    }
    if (status < 200 || status > 699)
        return MSILO_ETRANSPORT;
    return status;
}

static int response_cb(sofia_send_t *s, nta_outgoing_t *orq, sip_t const *sip)
{
    int status = sip && sip->sip_status ? sip->sip_status->st_status
                                        : nta_outgoing_status(orq);
    if (status < 200)
        return 0;
    if (!s->orq)
        s->orq = orq; /* final status from inside nta_outgoing_mcreate() */
    send_finish(s, map_status(orq, sip));
    return 0;
}

static void guard_fired(su_root_magic_t *magic, su_timer_t *timer, sofia_send_t *s)
{
    (void)magic;
    (void)timer;
    send_finish(s, MSILO_ETIMEDOUT);
}

/* ---- send ---------------------------------------------------------------- */

/* Builds the request. @return 0 or a MSILO_E* code; *ret_route gets next_hop. */
static int build_request(sofia_transport_t *t, msg_t *m, const msilo_outgoing_t *msg,
                         url_t **ret_route)
{
    su_home_t *home = msg_home(m);
    sip_t *sip = sip_object(m);
    url_t *ruri, *route = NULL;
    sip_request_t *rq;
    sip_from_t *from;
    sip_to_t *to;
    sip_call_id_t *cid;
    sip_cseq_t *cseq;
    sip_max_forwards_t *mf;

    ruri = url_make(home, msg->ruri);
    if (!ruri || ruri->url_type <= url_any || !ruri->url_host)
        return MSILO_EURI;
    if (msg->next_hop && msg->next_hop[0]) {
        route = url_make(home, msg->next_hop);
        if (!route || route->url_type <= url_any || !route->url_host)
            return MSILO_EURI;
    }
    rq = sip_request_create(home, sip_method_message, "MESSAGE", (url_string_t *)ruri, NULL);
    if (!rq || sip_header_insert(m, sip, (sip_header_t *)rq) < 0)
        return MSILO_ENOMEM;

    from = sip_from_make(home, msg->from);
    if (!from || from->a_url->url_type <= url_any)
        return MSILO_EURI;
    if (from->a_tag)
        msg_header_remove_param(from->a_common, "tag");
    if (sip_from_tag(home, from, nta_agent_newtag(home, "tag=%s", t->agent)) < 0)
        return MSILO_ENOMEM;
    sip_fragment_clear(from->a_common); /* re-serialise: the tag changed */
    to = sip_to_make(home, msg->to);
    if (!to || to->a_url->url_type <= url_any)
        return MSILO_EURI;
    if (msg->call_id && msg->call_id[0])
        cid = sip_call_id_make(home, msg->call_id);
    else
        cid = sip_call_id_create(home, NULL);
    if (!cid)
        return MSILO_EINVAL;
    if (++t->cseq >= 0x7fffffffu)
        t->cseq = 1;
    cseq = sip_cseq_create(home, t->cseq, sip_method_message, "MESSAGE");
    mf = sip_max_forwards_make(home, "70");
    if (!cseq || !mf)
        return MSILO_ENOMEM;
    if (sip_header_insert(m, sip, (sip_header_t *)from) < 0 ||
        sip_header_insert(m, sip, (sip_header_t *)to) < 0 ||
        sip_header_insert(m, sip, (sip_header_t *)cid) < 0 ||
        sip_header_insert(m, sip, (sip_header_t *)cseq) < 0 ||
        sip_header_insert(m, sip, (sip_header_t *)mf) < 0)
        return MSILO_ENOMEM;

    if (msg->headers && msg->headers[0] &&
        sip_add_tl(m, sip, SIPTAG_HEADER_STR(msg->headers), TAG_END()) < 0)
        return MSILO_EINVAL;
    if (sip->sip_error)
        return MSILO_EINVAL; /* a header line that does not parse */

    if (msg->content_type && msg->content_type[0]) {
        sip_content_type_t *ct = sip_content_type_make(home, msg->content_type);
        if (!ct)
            return MSILO_EINVAL;
        if (sip->sip_content_type)
            sip_header_remove(m, sip, (sip_header_t *)sip->sip_content_type);
        if (sip_header_insert(m, sip, (sip_header_t *)ct) < 0)
            return MSILO_ENOMEM;
    }
    if (msg->body_len > 0) {
        sip_payload_t *pl = sip_payload_create(home, msg->body, (isize_t)msg->body_len);
        if (!pl || sip_header_insert(m, sip, (sip_header_t *)pl) < 0)
            return MSILO_ENOMEM;
    }
    *ret_route = route;
    return 0;
}

/* The registrar's flow for @msg (msilo_sofia_transport_set_flow_lookup()):
 * its next hop replaces *route, its route set becomes Route headers.
 * @return 0, or the hook's error (the send fails with it). */
static int apply_flow(sofia_transport_t *t, msg_t *m, const msilo_outgoing_t *msg, url_t **route)
{
    msilo_sofia_flow_t flow;
    sip_t *sip = sip_object(m);
    int r;

    memset(&flow, 0, sizeof flow);
    r = t->flow_fn(msg, &flow, t->flow_data);
    if (r <= 0)
        return r;
    if (flow.next_hop && flow.next_hop[0]) {
        url_t *hop = url_make(msg_home(m), flow.next_hop);
        if (!hop || hop->url_type <= url_any || !hop->url_host)
            return MSILO_EURI;
        *route = hop;
    }
    if (flow.route && flow.route[0] &&
        (sip_add_tl(m, sip, SIPTAG_ROUTE_STR(flow.route), TAG_END()) < 0 || sip->sip_error))
        return MSILO_EURI;
    return 0;
}

static int sofia_send(msilo_transport_t *base, const msilo_outgoing_t *msg,
                      msilo_transport_done_fn done, void *data)
{
    sofia_transport_t *t = sofia_cast(base);
    sofia_send_t *s;
    url_t *route = NULL;
    nta_outgoing_t *orq;
    msg_t *m;
    int r;

    if (!t || !msg || !done || !msg->ruri || !msg->from || !msg->to ||
        (msg->body_len && !msg->body))
        return MSILO_EINVAL;

    m = nta_msg_create(t->agent, 0);
    if (!m)
        return MSILO_ENOMEM;
    r = build_request(t, m, msg, &route);
    if (r == 0 && t->flow_fn)
        r = apply_flow(t, m, msg, &route);
    if (r < 0) {
        msg_destroy(m);
        return r;
    }

    s = calloc(1, sizeof(*s));
    if (!s) {
        msg_destroy(m);
        return MSILO_ENOMEM;
    }
    s->t = t;
    s->done = done;
    s->data = data;
    s->next = t->sends;
    if (t->sends)
        t->sends->prev = s;
    t->sends = s;
    t->n_sends++;

    /* NTA delivers even its own internal responses through the event loop
     * (outgoing_reply() is delayed while the transaction is being created),
     * so response_cb should not run in here; in_send makes that certain. */
    t->in_send++;
    orq = nta_outgoing_mcreate(t->agent, response_cb, s, (url_string_t *)route, m, TAG_END());
    t->in_send--;
    if (!s->finished)
        s->orq = orq;

    if (!orq && !s->finished) {
        /* Not sent; NTA did not take the message. */
        msg_destroy(m);
        send_unlink(s);
        free(s);
        return MSILO_ETRANSPORT;
    }
    if (s->finished) {
        if (!s->defer) {
            /* Finished inside mcreate and the completion could not be deferred:
             * report the failure as the return value, never through done. */
            r = s->status < 0 ? s->status : MSILO_ETRANSPORT;
            send_release(s);
            send_unlink(s);
            free(s);
            return r;
        }
        return 0;
    }
    if (t->timeout_ms > 0) {
        s->guard = su_timer_create(su_root_task(t->root), (su_duration_t)t->timeout_ms);
        if (!s->guard || su_timer_set(s->guard, guard_fired, s) < 0) {
            /* Without the guard the send still completes through NTA's Timer F. */
            if (s->guard)
                su_timer_destroy(s->guard);
            s->guard = NULL;
        }
    }
    return 0;
}

/* ---- lifetime ------------------------------------------------------------ */

static void sofia_free(msilo_transport_t *base)
{
    sofia_transport_t *t = sofia_cast(base);
    if (!t)
        return;
    /* done() may start new sends on this transport (it should not, it is
     * being freed): they are cancelled too, since we loop until empty. */
    while (t->sends) {
        sofia_send_t *s = t->sends;
        /* An outcome already known (deferred) is reported as it is. */
        send_complete(s, s->finished ? s->status : MSILO_ECANCELLED);
    }
    free(t);
}

int msilo_sofia_transport_new(msilo_transport_t **ret, struct nta_agent_s *agent,
                              struct su_root_s *root)
{
    sofia_transport_t *t;

    if (!ret || !agent || !root)
        return MSILO_EINVAL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return MSILO_ENOMEM;
    t->base.version = MSILO_TRANSPORT_VERSION;
    t->base.name = "sofia";
    t->base.send = sofia_send;
    t->base.free = sofia_free;
    t->agent = agent;
    t->root = root;
    t->cseq = (uint32_t)(su_random() % 0x10000u) + 1;
    *ret = &t->base;
    return 0;
}

int msilo_sofia_transport_set_timeout(msilo_transport_t *base, unsigned timeout_ms)
{
    sofia_transport_t *t = sofia_cast(base);
    if (!t)
        return MSILO_EINVAL;
    t->timeout_ms = timeout_ms;
    return 0;
}

int msilo_sofia_transport_set_flow_lookup(msilo_transport_t *base, msilo_sofia_flow_fn fn,
                                          void *data)
{
    sofia_transport_t *t = sofia_cast(base);
    if (!t)
        return MSILO_EINVAL;
    t->flow_fn = fn;
    t->flow_data = fn ? data : NULL;
    return 0;
}

size_t msilo_sofia_transport_in_flight(const msilo_transport_t *base)
{
    const sofia_transport_t *t = sofia_cast(base);
    return t ? t->n_sends : 0;
}
