/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Telling the sender what became of a stored message: the failure notice of
 * a permanent delivery failure (failure_message, through the offline
 * notification's from_address and contact_hdr).
 *
 * Owns: nothing that outlives a call; what it sends is a SEND_NOTIFY
 * (engine-deliver.c), counted as a notification and never retried.
 *
 * Invariants:
 * - The stored message is read, never changed: a body (CPIM included) goes
 *   nowhere from here.
 * - Nothing is sent without a transport, or while the engine stops.
 */
#include "engine-private.h"

/* The failure notice, when the offline notification is configured
 * (from_address): To and Request-URI are the stored From, the body is
 * failure_message (text/plain). */
static void send_failure_notice(msilo_engine_t *e, const msilo_message_t *m)
{
    if (!e->t_from || !e->t_fail || !m->src)
        return;
    msilo_uri_t fu, tu;
    if (msilo_uri_parse(m->src, "From", &fu) != 0)
        return;
    if (msilo_uri_parse(m->dst, "To", &tu) != 0) {
        msilo_uri_clear(&fu);
        return;
    }
    msilo_template_vars_t v = {
        .ru = tu.uri, .rU = tu.user_raw, .rd = tu.host,
        .fu = fu.uri, .fU = fu.user_raw, .fd = fu.host,
        .tu = tu.uri, .tU = tu.user_raw, .td = tu.host,
        .ou = tu.uri, .ci = m->callid,
    };
    char *from = msilo_template_expand(e->t_from, &v);
    char *body = msilo_template_expand(e->t_fail, &v);
    GString *hdrs = g_string_new(NULL);
    if (e->t_contact) {
        char *c = msilo_template_expand(e->t_contact, &v);
        append_header_lines(hdrs, c);
        g_free(c);
    }
    msilo_outgoing_t out = {
        .ruri = fu.uri,
        .next_hop = e->outbound_proxy,
        .from = from,
        .to = fu.uri,
        .content_type = "text/plain",
        .body = body,
        .body_len = strlen(body),
        .headers = hdrs->str,
    };
    engine_send_notice(e, &out);
    g_string_free(hdrs, TRUE);
    g_free(from);
    g_free(body);
    msilo_uri_clear(&fu);
    msilo_uri_clear(&tu);
}

void engine_tell_sender_failed(msilo_engine_t *e, const msilo_message_t *m, int status)
{
    (void)status;
    if (!e->transport || engine_stopping(e))
        return;
    send_failure_notice(e, m);
}
