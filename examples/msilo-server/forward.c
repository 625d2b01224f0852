/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-server's MESSAGE handling: to a registered user it is forked
 * statefully, in parallel, to each of the user's devices (one binding per
 * +sip.instance; to a GRUU only its device) and the first 2xx is relayed;
 * when no device answers 2xx within forward_timeout it is stored (the
 * failure_route of the msilo admin guide's sample configuration). With
 * deliver_to = every_device a device that did not take it gets it stored
 * for that device alone (the others have it already). A MESSAGE with a reminder time is
 * always stored. The forward takes the binding's flow (flow.c): its Path as
 * route set, or the connection / source address it registered from.
 */
#include <string.h>

#include "server.h"
#include "request.h"

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/url.h>

/* A MESSAGE forked to the registered devices of its user: one fork, a
 * branch per binding, all in parallel. */
typedef struct fork {
    server_t *srv;
    nta_incoming_t *irq; /* the MESSAGE; answered by the first 2xx */
    unsigned pending;    /* branches without a final answer */
    bool answered;       /* a 2xx was relayed */
    GPtrArray *missed;   /* char *: the devices of the branches that failed */
    char *why;           /* the first failure, for the log */
} fork_t;

/* One branch of a fork (the magic of its nta_outgoing_t). */
typedef struct forward {
    fork_t *fork;
    nta_outgoing_t *orq;
    guint guard;
    char *device;     /* the binding's +sip.instance, else its contact URI */
    bool creating;    /* inside nta_outgoing_mcreate() */
    int early_status; /* a final status NTA reported from inside it */
} forward_t;

/* ---- forwarding to an online user ----------------------------------------- */

/* All branches have their answer: a MESSAGE that no device took is stored
 * (the failure_route), for every device; one that some took is stored for
 * those that did not (deliver_to = every_device) or not at all. */
static void fork_finish(fork_t *k)
{
    server_t *s = k->srv;

    if (!k->answered) {
        s->n_forward_failed++;
        g_message("forward failed (%s): storing the message", k->why ? k->why : "?");
        server_store_request(s, k->irq, true);
    } else {
        for (guint i = 0; s->per_device && i < k->missed->len; i++) {
            g_message("forward to device %s failed: storing the message for it",
                      (char *)k->missed->pdata[i]);
            server_store_for_device(s, k->irq, k->missed->pdata[i]);
        }
        nta_incoming_destroy(k->irq);
    }
    g_ptr_array_unref(k->missed);
    g_free(k->why);
    g_free(k);
}

/* A branch is over; @failed: it did not deliver (@why for the log). */
static void forward_end(forward_t *f, bool failed, const char *why)
{
    fork_t *k = f->fork;
    g_hash_table_remove(k->srv->forwards, f);
    if (f->guard)
        g_source_remove(f->guard);
    if (f->orq)
        nta_outgoing_destroy(f->orq);
    if (failed) {
        g_ptr_array_add(k->missed, f->device);
        f->device = NULL;
        if (!k->why)
            k->why = g_strdup(why);
    }
    g_free(f->device);
    g_free(f);
    if (--k->pending == 0)
        fork_finish(k);
}

void server_forward_failed(forward_t *f, const char *why)
{
    forward_end(f, true, why);
}

static int forward_response(forward_t *f, nta_outgoing_t *orq, sip_t const *sip)
{
    int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);
    fork_t *k = f->fork;

    if (status < 200)
        return 0;
    if (f->creating) {
        /* from inside nta_outgoing_mcreate() (a transport error): @f is
         * ended once mcreate() has returned, not under its feet */
        f->early_status = status;
        return 0;
    }
    if (status < 300 && sip && !nta_sip_is_internal(sip)) {
        if (!k->answered) {
            /* the first 2xx answers the sender; the other branches go on
             * (each device gets the message; a non-INVITE is never
             * cancelled, RFC 3261 9.1) */
            msg_t *resp = nta_outgoing_getresponse(orq);
            k->srv->n_relayed_2xx++;
            k->answered = true;
            if (resp) {
                sip_via_remove(resp, sip_object(resp)); /* our own Via */
                nta_incoming_mreply(k->irq, resp);
            } else {
                nta_incoming_treply(k->irq, status, sip_status_phrase(status), TAG_END());
            }
        }
        forward_end(f, false, NULL);
        return 0;
    }
    {
        char why[32];
        g_snprintf(why, sizeof(why), "%d%s", status,
                   sip && nta_sip_is_internal(sip) ? " internal" : "");
        forward_end(f, true, why);
    }
    return 0;
}

static gboolean forward_guard(gpointer data)
{
    forward_t *f = data;
    f->guard = 0;
    forward_end(f, true, "timeout");
    return G_SOURCE_REMOVE;
}

/* Forwards the MESSAGE of @irq to @contact_uri, by @next_hop with the
 * Route values @route when set (the binding's flow, flow.c). @return false
 * when it could not be sent. */
static bool forward_request(fork_t *k, unsigned index, const char *contact_uri,
                            const char *device, const char *next_hop, const char *route)
{
    server_t *s = k->srv;
    msg_t *orig = nta_incoming_getrequest(k->irq);
    msg_t *copy = orig ? msg_copy(orig) : NULL;
    sip_t *sip = copy ? sip_object(copy) : NULL;
    su_home_t *home = copy ? msg_home(copy) : NULL;
    sip_request_t *rq;
    url_t *target, *hop = NULL;
    forward_t *f;
    char branch[SERVER_BRANCH_SIZE + 16];

    /* the branch of the request as it came in: if it comes back unchanged,
     * server_request_looped() recognises it */
    if (orig) {
        server_loop_branch(sip_object(orig), branch);
        /* each branch of a fork its own (RFC 3261 16.6 item 8): NTA matches
         * responses by it, and two forks with one branch took each
         * other's answers */
        if (index)
            g_snprintf(branch + strlen(branch), 16, ".%u", index);
        msg_destroy(orig);
    }
    if (!copy)
        return false;
    target = url_make(home, contact_uri);
    rq = target ? sip_request_create(home, sip->sip_request->rq_method,
                                     sip->sip_request->rq_method_name,
                                     (url_string_t *)target, NULL)
                : NULL;
    if (!rq || msg_header_insert(copy, (msg_pub_t *)sip, (msg_header_t *)rq) < 0) {
        msg_destroy(copy);
        return false;
    }
    /* A UA that uses us as outbound proxy pre-loads Route: <us;lr>; NTA would
     * send to that Route, i.e. back to us. We are that hop: drop it. */
    while (sip->sip_route && server_is_local(s, sip->sip_route->r_url))
        sip_route_remove(copy, sip);
    if ((next_hop && !(hop = url_make(home, next_hop))) ||
        (route && sip_add_tl(copy, sip, SIPTAG_ROUTE_STR(route), TAG_END()) < 0)) {
        msg_destroy(copy);
        return false;
    }
    if (sip->sip_max_forwards) {
        sip->sip_max_forwards->mf_count--;
        sip_fragment_clear(sip->sip_max_forwards->mf_common);
    } else {
        sip_add_tl(copy, sip, SIPTAG_MAX_FORWARDS_STR("70"), TAG_END());
    }

    f = g_new0(forward_t, 1);
    f->fork = k;
    f->device = g_strdup(device);
    k->pending++;
    f->creating = true;
    f->orq = nta_outgoing_mcreate(s->agent, forward_response, f, (url_string_t *)hop, copy,
                                  NTATAG_BRANCH_KEY(branch), TAG_END());
    f->creating = false;
    if (!f->orq) {
        k->pending--;
        msg_destroy(copy);
        g_free(f->device);
        g_free(f);
        return false;
    }
    g_hash_table_add(s->forwards, f);
    s->n_forwarded++;
    if (f->early_status) {
        /* failed at once: its device counts as missed (forward_end) */
        char why[32];
        g_snprintf(why, sizeof why, "%d internal", f->early_status);
        forward_end(f, true, why);
        return true;
    }
    if (s->opt.forward_timeout)
        f->guard = g_timeout_add(s->opt.forward_timeout, forward_guard, f);
    return true;
}

/* The gr parameter of the Request-URI (a MESSAGE to a GRUU, RFC 5627:
 * for that device only), or NULL. */
static char *request_gruu(sip_t const *sip)
{
    char v[256];
    isize_t n;
    url_t const *u = sip->sip_request ? sip->sip_request->rq_url : NULL;
    if (!u || !u->url_params)
        return NULL;
    n = url_param(u->url_params, "gr", v, sizeof v);
    return n > 0 && n < (isize_t)sizeof v && v[0] ? g_strdup(v) : NULL;
}

/* Forks the MESSAGE to each device of @bindings (best first: one binding
 * per device, the device of the GRUU only when the Request-URI is one).
 * A device whose flow has gone or whose branch cannot be sent counts as
 * missed; with nothing sent the message is stored at once. */
static int fork_message(server_t *s, nta_incoming_t *irq, sip_t const *sip, const char *aor,
                        GPtrArray *bindings)
{
    g_autofree char *gr = request_gruu(sip);
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    fork_t *k = g_new0(fork_t, 1);
    unsigned sent = 0;

    k->srv = s;
    k->irq = irq;
    k->missed = g_ptr_array_new_with_free_func(g_free);
    k->pending = 1; /* held by this loop: a branch that ends at once cannot finish it */
    for (guint i = 0; i < bindings->len; i++) {
        binding_t const *b = bindings->pdata[i];
        /* the device as the engine and register.c name it: "<instance>",
         * else the contact URI */
        g_autofree char *inst = b->instance ? g_strdup_printf("<%s>", b->instance) : NULL;
        const char *device = inst ? inst : b->uri;
        const char *hop, *route;
        if (gr && (!b->instance || g_ascii_strcasecmp(b->instance, gr) != 0))
            continue;
        if (!g_hash_table_add(seen, g_strdup(device)))
            continue; /* another flow of a device already taken */
        if (server_flow_route(b->flow, &hop, &route) < 0) {
            REQ_LOG("MESSAGE for %s: %s unreachable, its flow has gone", aor, b->uri);
            g_ptr_array_add(k->missed, g_strdup(device));
            continue;
        }
        if (!forward_request(k, sent + k->missed->len, b->uri, device, hop, route)) {
            g_warning("cannot forward MESSAGE for %s to %s", aor, b->uri);
            g_ptr_array_add(k->missed, g_strdup(device));
            continue;
        }
        sent++;
        REQ_LOG("MESSAGE for %s forwarded to %s%s%s", aor, b->uri, hop ? " via " : "",
                hop ? hop : "");
    }
    if (sent == 0) {
        /* nothing went out (no device of the GRUU, every flow gone): the
         * store's own path, as for an offline user */
        g_ptr_array_unref(k->missed);
        g_free(k);
        server_store_request(s, irq, false);
        return 0;
    }
    if (--k->pending == 0)
        fork_finish(k);
    return 0;
}

int server_handle_message(server_t *s, nta_incoming_t *irq, sip_t const *sip)
{
    g_autofree char *aor = NULL;
    GPtrArray *bindings;

    s->n_message++;
    /* A message with a reminder time is for later: store it, never forward. */
    if (s->snd_time_header && s->snd_time_header[0]) {
        for (sip_unknown_t const *u = sip->sip_unknown; u; u = u->un_next)
            if (u->un_name && g_ascii_strcasecmp(u->un_name, s->snd_time_header) == 0) {
                server_store_request(s, irq, false);
                return 0;
            }
    }
    /* the same owner the store would get (server_message_owner) */
    aor = server_aor_of_url(server_message_owner(sip));
    bindings = aor ? registrar_lookup(s->registrar, aor, server_now()) : NULL;
    if (bindings && bindings->len)
        return fork_message(s, irq, sip, aor, bindings);
    server_store_request(s, irq, false);
    return 0;
}

