/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-server's MESSAGE handling: to a registered user it is forwarded
 * statefully to the best binding and a 2xx is relayed; a failure, or no final
 * answer within forward_timeout, stores it (the failure_route of the msilo
 * admin guide's sample configuration). A MESSAGE with a reminder time is
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

/* A MESSAGE forwarded to a registered contact. */
typedef struct forward {
    server_t *srv;
    nta_incoming_t *irq;
    nta_outgoing_t *orq;
    guint guard;
} forward_t;

/* ---- forwarding to an online user ----------------------------------------- */

static void forward_end(forward_t *f)
{
    g_hash_table_remove(f->srv->forwards, f);
    if (f->guard)
        g_source_remove(f->guard);
    if (f->orq)
        nta_outgoing_destroy(f->orq);
    g_free(f);
}

/* The failure_route: store the message, answer 202 from the store callback. */
void server_forward_failed(forward_t *f, const char *why)
{
    server_t *s = f->srv;
    nta_incoming_t *irq = f->irq;
    s->n_forward_failed++;
    g_message("forward failed (%s): storing the message", why);
    f->irq = NULL;
    forward_end(f);
    server_store_request(s, irq, true);
}

static int forward_response(forward_t *f, nta_outgoing_t *orq, sip_t const *sip)
{
    int status = sip && sip->sip_status ? sip->sip_status->st_status : nta_outgoing_status(orq);

    if (status < 200)
        return 0;
    if (status < 300 && sip && !nta_sip_is_internal(sip)) {
        msg_t *resp = nta_outgoing_getresponse(orq);
        f->srv->n_relayed_2xx++;
        if (resp) {
            sip_via_remove(resp, sip_object(resp)); /* our own Via */
            nta_incoming_mreply(f->irq, resp);
        } else {
            nta_incoming_treply(f->irq, status, sip_status_phrase(status), TAG_END());
        }
        nta_incoming_destroy(f->irq);
        f->irq = NULL;
        forward_end(f);
        return 0;
    }
    {
        char why[32];
        g_snprintf(why, sizeof(why), "%d%s", status,
                   sip && nta_sip_is_internal(sip) ? " internal" : "");
        server_forward_failed(f, why);
    }
    return 0;
}

static gboolean forward_guard(gpointer data)
{
    forward_t *f = data;
    f->guard = 0;
    server_forward_failed(f, "timeout");
    return G_SOURCE_REMOVE;
}

/* Forwards the MESSAGE of @irq to @contact_uri, by @next_hop with the
 * Route values @route when set (the binding's flow, flow.c). @return false
 * when it could not be sent. */
static bool forward_request(server_t *s, nta_incoming_t *irq, const char *contact_uri,
                            const char *next_hop, const char *route)
{
    msg_t *orig = nta_incoming_getrequest(irq);
    msg_t *copy = orig ? msg_copy(orig) : NULL;
    sip_t *sip = copy ? sip_object(copy) : NULL;
    su_home_t *home = copy ? msg_home(copy) : NULL;
    sip_request_t *rq;
    url_t *target, *hop = NULL;
    forward_t *f;
    char branch[SERVER_BRANCH_SIZE];

    /* the branch of the request as it came in: if it comes back unchanged,
     * server_request_looped() recognises it */
    if (orig) {
        server_loop_branch(sip_object(orig), branch);
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
    f->srv = s;
    f->irq = irq;
    f->orq = nta_outgoing_mcreate(s->agent, forward_response, f, (url_string_t *)hop, copy,
                                  NTATAG_BRANCH_KEY(branch), TAG_END());
    if (!f->orq) {
        msg_destroy(copy);
        g_free(f);
        return false;
    }
    g_hash_table_add(s->forwards, f);
    if (s->opt.forward_timeout)
        f->guard = g_timeout_add(s->opt.forward_timeout, forward_guard, f);
    s->n_forwarded++;
    return true;
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
    /* the best binding that can be reached (an outbound flow whose
     * connection went cannot) */
    for (guint i = 0; bindings && i < bindings->len; i++) {
        binding_t const *b = bindings->pdata[i];
        const char *hop, *route;
        if (server_flow_route(b->flow, &hop, &route) < 0) {
            REQ_LOG("MESSAGE for %s: %s unreachable, its flow has gone", aor, b->uri);
            continue;
        }
        if (forward_request(s, irq, b->uri, hop, route)) {
            REQ_LOG("MESSAGE for %s forwarded to %s%s%s", aor, b->uri, hop ? " via " : "",
                    hop ? hop : "");
            return 0;
        }
        g_warning("cannot forward MESSAGE for %s to %s: storing it", aor, b->uri);
        break;
    }
    server_store_request(s, irq, false);
    return 0;
}

