/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Telling the sender what became of a stored message: RFC 5438 IMDNs for a
 * stored message/cpim that asks for them (a processing notification
 * <stored/> once the store has committed it, a delivery notification
 * <failed/> when its delivery failed for good or it expired undelivered),
 * else the failure notice of
 * a permanent delivery failure (failure_message, through the offline
 * notification's from_address and contact_hdr).
 *
 * Owns: nothing that outlives a call; what it sends is a SEND_NOTIFY
 * (engine-deliver.c), counted as a notification and never retried.
 *
 * Invariants:
 * - The stored message is read, never changed: a CPIM body is parsed here
 *   (its headers only), never rewritten.
 * - An IMDN is only sent for a CPIM message with an imdn.Message-ID and a
 *   Disposition-Notification naming the kind (RFC 5438 6.2); the namespace
 *   prefix is the one its NS header binds to urn:ietf:params:imdn.
 * - The IMDN goes to the first IMDN-Record-Route when there is one (all of
 *   them copied into IMDN-Route headers, in order), else to the CPIM From;
 *   its body is a message/imdn+xml document valid against RFC 5438's schema
 *   (tests/engine/imdn.xsd).
 * - Nothing is sent without a transport, or while the engine stops.
 * - One <stored/> per stored message: a store of the same store key again
 *   (the put reports the stored message's id) sends none, as long as this
 *   engine remembers the id (the last IMDN_STORED_MEMORY; another server
 *   on the same store does not know them).
 */
#include "engine-private.h"

#define IMDN_NS "urn:ietf:params:imdn"

/* What the CPIM headers of a stored message say about IMDNs. */
typedef struct cpim_imdn {
    gboolean processing, negative;
    char *msg_id, *datetime, *from, *to;
    GPtrArray *record_route; /* char*: the IMDN-Record-Route URIs, in order */
} cpim_imdn;

static void cpim_imdn_clear(cpim_imdn *c)
{
    g_free(c->msg_id);
    g_free(c->datetime);
    g_free(c->from);
    g_free(c->to);
    if (c->record_route)
        g_ptr_array_unref(c->record_route);
}

/* The URI of a CPIM address ("Name <uri>" or "uri"), g_malloc'd. */
static char *cpim_uri(const char *v)
{
    const char *lt = strchr(v, '<');
    const char *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt)
        return g_strndup(lt + 1, (gsize)(gt - lt - 1));
    return g_strstrip(g_strdup(v));
}

static gboolean is_cpim(const char *ctype)
{
    static const char t[] = "message/cpim";
    if (!ctype || g_ascii_strncasecmp(ctype, t, sizeof t - 1) != 0)
        return FALSE;
    char c = ctype[sizeof t - 1];
    return c == '\0' || c == ';' || c == ' ' || c == '\t';
}

/* Reads the CPIM message headers of @m (up to the first empty line). FALSE
 * when @m is not message/cpim or asks for nothing this file sends. */
static gboolean cpim_imdn_parse(const msilo_message_t *m, cpim_imdn *c)
{
    memset(c, 0, sizeof *c);
    if (!is_cpim(m->ctype) || !m->body || !m->body_len)
        return FALSE;
    const char *end = g_strstr_len(m->body, (gssize)m->body_len, "\r\n\r\n");
    if (!end)
        end = g_strstr_len(m->body, (gssize)m->body_len, "\n\n");
    if (!end)
        return FALSE;
    char *head = g_strndup(m->body, (gsize)(end - (const char *)m->body));
    gchar **lines = g_strsplit_set(head, "\r\n", -1);
    g_free(head);
    /* the prefix first: NS may come after the headers that use it */
    char *prefix = NULL;
    for (gchar **l = lines; *l && !prefix; l++) {
        if (g_ascii_strncasecmp(*l, "NS:", 3) != 0 || !strstr(*l, "<" IMDN_NS ">"))
            continue;
        const char *p = *l + 3;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, " \t<");
        prefix = g_strndup(p, n);
    }
    c->record_route = g_ptr_array_new_with_free_func(g_free);
    char *disp = NULL;
    size_t pn = prefix ? strlen(prefix) : 0;
    for (gchar **l = lines; *l; l++) {
        char *colon = strchr(*l, ':');
        if (!colon)
            continue;
        *colon = '\0';
        const char *name = g_strstrip(*l), *value = g_strstrip(colon + 1);
        if (g_ascii_strcasecmp(name, "From") == 0 && !c->from)
            c->from = cpim_uri(value);
        else if (g_ascii_strcasecmp(name, "To") == 0 && !c->to)
            c->to = cpim_uri(value);
        else if (g_ascii_strcasecmp(name, "DateTime") == 0 && !c->datetime)
            c->datetime = g_strdup(value);
        else if (prefix && *prefix && strlen(name) > pn + 1 &&
                 g_ascii_strncasecmp(name, prefix, pn) == 0 && name[pn] == '.') {
            const char *h = name + pn + 1;
            if (g_ascii_strcasecmp(h, "Message-ID") == 0 && !c->msg_id)
                c->msg_id = g_strdup(value);
            else if (g_ascii_strcasecmp(h, "Disposition-Notification") == 0 && !disp)
                disp = g_ascii_strdown(value, -1);
            else if (g_ascii_strcasecmp(h, "IMDN-Record-Route") == 0)
                g_ptr_array_add(c->record_route, cpim_uri(value));
        }
    }
    g_strfreev(lines);
    g_free(prefix);
    if (disp) {
        gchar **kinds = g_strsplit(disp, ",", -1);
        for (gchar **k = kinds; *k; k++) {
            g_strstrip(*k);
            if (strcmp(*k, "processing") == 0)
                c->processing = TRUE;
            else if (strcmp(*k, "negative-delivery") == 0)
                c->negative = TRUE;
        }
        g_strfreev(kinds);
        g_free(disp);
    }
    /* the message-id is what the sender matches the IMDN with; the From
     * (or a route) is where it goes */
    if (!c->msg_id || !*c->msg_id || (!c->from && !c->record_route->len) ||
        (!c->processing && !c->negative)) {
        cpim_imdn_clear(c);
        memset(c, 0, sizeof *c);
        return FALSE;
    }
    return TRUE;
}

/* RFC 3339 in UTC ("2026-12-02T06:54:20Z"), g_malloc'd. */
static char *rfc3339(int64_t t)
{
    GDateTime *d = g_date_time_new_from_unix_utc(t);
    char *s = d ? g_date_time_format(d, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("1970-01-01T00:00:00Z");
    if (d)
        g_date_time_unref(d);
    return s;
}

/* Sends the IMDN of @kind ("processing-notification") with @status
 * ("stored") for @m, whose CPIM headers are @c. */
static void send_imdn(msilo_engine_t *e, const msilo_message_t *m, const cpim_imdn *c,
                      const char *kind, const char *status)
{
    const char *recipient = m->dst;
    char *now = rfc3339(now_of(e));
    char *orig_dt = c->datetime ? g_strdup(c->datetime) : rfc3339(m->inc_time);
    char *x_id = g_markup_escape_text(c->msg_id, -1);
    char *x_dt = g_markup_escape_text(orig_dt, -1);
    char *x_rcpt = g_markup_escape_text(recipient, -1);
    char *xml = g_strdup_printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
                                "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\">\r\n"
                                "<message-id>%s</message-id>\r\n"
                                "<datetime>%s</datetime>\r\n"
                                "<recipient-uri>%s</recipient-uri>\r\n"
                                "<original-recipient-uri>%s</original-recipient-uri>\r\n"
                                "<%s><status><%s/></status></%s>\r\n"
                                "</imdn>\r\n",
                                x_id, x_dt, x_rcpt, x_rcpt, kind, status, kind);
    const char *sender = c->from ? c->from : m->src;
    GString *b = g_string_new(NULL);
    g_string_append_printf(b, "From: <%s>\r\nTo: <%s>\r\nNS: imdn <" IMDN_NS ">\r\n",
                           recipient, sender);
    g_string_append_printf(b, "imdn.Message-ID: %08x%08x\r\nDateTime: %s\r\n",
                           g_random_int(), g_random_int(), now);
    for (guint i = 0; i < c->record_route->len; i++)
        g_string_append_printf(b, "imdn.IMDN-Route: <%s>\r\n",
                               (const char *)c->record_route->pdata[i]);
    g_string_append_printf(b, "\r\nContent-Type: message/imdn+xml\r\n"
                              "Content-Disposition: notification\r\n"
                              "Content-Length: %zu\r\n\r\n%s",
                           strlen(xml), xml);
    const char *ruri = c->record_route->len ? c->record_route->pdata[0] : sender;
    msilo_outgoing_t out = {
        .ruri = ruri,
        .next_hop = e->outbound_proxy,
        .from = recipient,
        .to = sender,
        .content_type = "message/cpim",
        .body = b->str,
        .body_len = b->len,
        .headers = "Priority: non-urgent\r\n",
    };
    engine_send_notice(e, &out);
    stat_add(e, MSILO_STAT_IMDN_SENT, 1);
    g_string_free(b, TRUE);
    g_free(xml);
    g_free(x_id);
    g_free(x_dt);
    g_free(x_rcpt);
    g_free(orig_dt);
    g_free(now);
}

/* How many ids of sent <stored/> IMDNs are remembered: a retransmission
 * comes seconds after its original, not thousands of IMDNs later. */
#define IMDN_STORED_MEMORY 4096

/* TRUE when the <stored/> of message @id went out already (a put of the
 * same store key reports the stored message's id); else remembers it. */
static gboolean stored_sent_before(msilo_engine_t *e, int64_t id)
{
    if (g_hash_table_contains(e->imdn_stored_ids, &id))
        return TRUE;
    int64_t *k = g_new(int64_t, 1);
    *k = id;
    g_hash_table_add(e->imdn_stored_ids, k);
    g_queue_push_tail(&e->imdn_stored_fifo, k);
    if (e->imdn_stored_fifo.length > IMDN_STORED_MEMORY) {
        int64_t *old = g_queue_pop_head(&e->imdn_stored_fifo);
        g_hash_table_remove(e->imdn_stored_ids, old);
        g_free(old);
    }
    return FALSE;
}

void engine_imdn_stored(msilo_engine_t *e, const msilo_message_t *m)
{
    if (!e->imdn || !e->transport || !is_cpim(m->ctype) || engine_stopping(e))
        return; /* (checked before the parse: this runs for every store) */
    cpim_imdn c;
    if (!cpim_imdn_parse(m, &c))
        return;
    if (c.processing && !stored_sent_before(e, m->id))
        send_imdn(e, m, &c, "processing-notification", "stored");
    cpim_imdn_clear(&c);
}

void engine_imdn_expired(msilo_engine_t *e, const msilo_message_t *m)
{
    if (!e->imdn || !e->transport || engine_stopping(e))
        return;
    cpim_imdn c;
    if (!cpim_imdn_parse(m, &c))
        return;
    if (c.negative)
        send_imdn(e, m, &c, "delivery-notification", "failed");
    cpim_imdn_clear(&c);
}

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
    /* a negative-delivery IMDN when the message asked for one, else the notice */
    cpim_imdn c;
    gboolean negative = FALSE;
    if (e->imdn && cpim_imdn_parse(m, &c)) {
        negative = c.negative;
        if (negative)
            send_imdn(e, m, &c, "delivery-notification", "failed");
        cpim_imdn_clear(&c);
    }
    if (!negative)
        send_failure_notice(e, m);
}
