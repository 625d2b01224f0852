/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The request view of a MESSAGE to store: its checks, and the offline
 * notification prepared from it.
 *
 * Owns: nothing that outlives a call. engine_store_request_parse() checks a
 * msilo_request_t for msilo_engine_store() and parses its URIs into a
 * store_request_t on the caller's stack; engine_prepare_notification() fills
 * the notification strings of a store op (sent by engine-deliver.c once the
 * store has committed).
 *
 * Invariants:
 * - The request view is borrowed for the duration of the call only: what
 *   the engine keeps (the message, the notification) is copied out of it
 *   before msilo_engine_store() returns.
 * - What reaches the store is sane: the owner is an address of record, the
 *   text fields stored in text columns (Content-Type, Call-ID) are single
 *   lines of UTF-8 up to TEXT_MAX_LEN bytes, each extra header is one
 *   "Name: value" line (a token name, no CR or LF), the body fits
 *   max_body_size. A request that fails a check leaves nothing behind.
 * - The checks run in a fixed order, so the same bad request always gets the
 *   same error (and SIP status, msilo_error_sip_status()).
 */
#include "engine-private.h"

/* Text header fields stored in text columns (Content-Type, Call-ID), in bytes at most. */
#define TEXT_MAX_LEN 255

/* ---- the checks ------------------------------------------------------------ */

/* Joins the request's extra headers into "Name: value\r\n" lines. */
static int build_extra_headers(const msilo_request_t *req, char **ret)
{
    *ret = NULL;
    if (!req->n_headers)
        return 0;
    if (!req->headers)
        return msilo_fail(MSILO_EINVAL, "n_headers set but headers is NULL");
    if (msilo_request_header_step(req) < MSILO_HEADER_V1_SIZE)
        return msilo_fail(MSILO_EINVAL, "header_size %zu is too small (use MSILO_REQUEST_INIT)",
                          msilo_request_header_step(req));
    GString *s = g_string_new(NULL);
    for (size_t i = 0; i < req->n_headers; i++) {
        const msilo_header_t *h = msilo_request_header(req, i);
        gboolean ok = h->name && *h->name && h->value;
        for (const char *p = ok ? h->name : ""; ok && *p; p++)
            if (!g_ascii_isalnum(*p) && !strchr("-.!%*_+`'~", *p))
                ok = FALSE;
        for (const char *p = ok ? h->value : ""; ok && *p; p++)
            if (*p == '\r' || *p == '\n')
                ok = FALSE;
        if (ok && !g_utf8_validate(h->value, -1, NULL))
            ok = FALSE;
        if (!ok) {
            g_string_free(s, TRUE);
            return msilo_fail(MSILO_EINVAL, "extra header %zu is not a valid single header line", i);
        }
        g_string_append_printf(s, "%s: %s\r\n", h->name, h->value);
    }
    *ret = g_string_free(s, FALSE);
    return 0;
}

/* The display name of a From header value ("Bob" <sip:bob@x>;tag=1 gives
 * "Bob" with its quotes), g_malloc'd; NULL when there is none or it cannot be
 * one header line of UTF-8. */
static char *from_display(const char *from)
{
    const char *lt = from ? strchr(from, '<') : NULL;
    if (!lt)
        return NULL;
    /* trimmed in place first: most From values have no display name, and a
     * store must not allocate for nothing (this runs for every MESSAGE) */
    const char *b = from;
    while (b < lt && g_ascii_isspace(*b))
        b++;
    const char *z = lt;
    while (z > b && g_ascii_isspace(z[-1]))
        z--;
    if (z == b)
        return NULL;
    char *d = g_strndup(b, (gsize)(z - b));
    gboolean ok = *d && g_utf8_validate(d, -1, NULL) && strlen(d) <= 255;
    for (const char *p = d; ok && *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            ok = FALSE;
    if (!ok) {
        g_free(d);
        return NULL;
    }
    return d;
}

/* Short single-line UTF-8 text (stored in text columns). NULL is fine. */
static gboolean text_ok(const char *s)
{
    if (!s)
        return TRUE;
    /* one pass for the usual ASCII value (control characters, length);
     * g_utf8_validate only when a byte is not ASCII */
    unsigned char any = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c < 0x20 && c != '\t')
            return FALSE;
        any |= c;
    }
    return n <= TEXT_MAX_LEN && (any < 0x80 || g_utf8_validate(s, (gssize)n, NULL));
}

int engine_store_request_parse(msilo_engine_t *e, const msilo_request_t *req, const char *owner,
                               store_request_t *r)
{
    if (req->method && g_ascii_strcasecmp(req->method, "MESSAGE") != 0)
        return msilo_fail(MSILO_EMETHOD, "m_store of a %.16s request", req->method);
    if (!req->from || !*req->from)
        return msilo_fail(MSILO_EMISSING, "request has no From");
    if (!req->to || !*req->to)
        return msilo_fail(MSILO_EMISSING, "request has no To");
    if (req->body_len && !req->body)
        return msilo_fail(MSILO_EINVAL, "body_len set but body is NULL");
    if ((int64_t)req->body_len > e->max_body)
        return msilo_fail(MSILO_ETOOBIG, "body of %zu bytes exceeds max_body_size %lld",
                          req->body_len, (long long)e->max_body);
    if (!text_ok(req->content_type))
        return msilo_fail(MSILO_EINVAL, "invalid Content-Type (control characters, not UTF-8, "
                          "or over %d bytes)", TEXT_MAX_LEN);
    if (!text_ok(req->call_id))
        return msilo_fail(MSILO_EINVAL, "invalid Call-ID (control characters, not UTF-8, or over "
                          "%d bytes)", TEXT_MAX_LEN);
    if (engine_is_transient(e, req->content_type))
        return msilo_fail(MSILO_ETRANSIENT, "content type '%.64s' is transient (transient_types): "
                          "not stored", req->content_type);

    /* from and to are set by their parse, which leaves nothing behind when it fails */
    msilo_uri_init(&r->ruri);
    msilo_uri_init(&r->owner_uri);
    r->extra_hdrs = NULL;
    int rc = msilo_uri_parse(req->from, "From", &r->from);
    if (rc)
        return rc;
    rc = msilo_uri_parse(req->to, "To", &r->to);
    if (rc) {
        msilo_uri_clear(&r->from);
        return rc;
    }
    r->have_ruri = req->ruri && msilo_uri_parse(req->ruri, "R-URI", &r->ruri) == 0;
    if (owner) {
        rc = msilo_uri_parse(owner, "owner", &r->owner_uri);
        if (rc)
            goto fail;
        r->owner = &r->owner_uri;
    } else if (r->have_ruri && r->ruri.scheme != MSILO_SCHEME_TEL && msilo_uri_is_aor(&r->ruri)) {
        r->owner = &r->ruri;
    } else {
        r->owner = &r->to;
    }
    /* a tel: owner without phone-context takes default_domain (lower case) */
    r->domain = r->owner->host;
    r->domain_default = !r->domain && r->owner->scheme == MSILO_SCHEME_TEL && e->default_domain;
    if (r->domain_default)
        r->domain = e->default_domain;
    if (!r->owner->user || !r->domain) {
        /* the detail first: clearing the URIs frees the owner's text */
        int bad = msilo_fail(MSILO_EURI, "owner '%.64s' is not an address of record (user@host)",
                             r->owner->uri);
        engine_store_request_clear(r);
        return bad;
    }

    r->snd_time = 0;
    if (req->snd_time && *req->snd_time) {
        rc = msilo_time_parse(req->snd_time, &r->snd_time);
        if (!rc && !e->reminders_on)
            rc = msilo_fail(MSILO_ENOTSUP, "reminder time given but reminders are disabled "
                            "(set reminder and send_time)");
        if (rc)
            goto fail;
        if (r->snd_time <= 0)
            r->snd_time = 1; /* 0 means "no reminder" in the store */
    }
    rc = build_extra_headers(req, &r->extra_hdrs);
    if (rc)
        goto fail;
    /* the sender's display name goes with the stored headers (no column of
     * its own: the table stays the msilo modules'); delivery takes it back
     * out into the From */
    char *display = from_display(req->from);
    if (display) {
        char *x = g_strconcat(r->extra_hdrs ? r->extra_hdrs : "", DISPLAY_HEADER ": ", display,
                              "\r\n", NULL);
        g_free(r->extra_hdrs);
        g_free(display);
        r->extra_hdrs = x;
    }
    return 0;

fail:
    engine_store_request_clear(r);
    return rc;
}

/* ---- the offline notification ------------------------------------------------ */

/* Control characters other than tab (the Call-ID then expands to ""). */
static gboolean has_ctl(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return TRUE;
    return FALSE;
}

/* Splits an expanded content_type_hdr "Content-Type: x\r\n..." into the type
 * and the remaining header lines. */
static void split_ctype_hdr(const char *hdr, char **ret_type, GString *rest)
{
    static const char name[] = "Content-Type";
    const ptrdiff_t name_n = (ptrdiff_t)sizeof name - 1;
    *ret_type = NULL;
    gchar **lines = g_strsplit(hdr, "\r\n", -1);
    for (gchar **l = lines; *l; l++) {
        if (!**l)
            continue;
        const char *colon = strchr(*l, ':');
        if (colon && !*ret_type &&
            ((colon - *l == name_n && g_ascii_strncasecmp(*l, name, (gsize)name_n) == 0) ||
             (colon - *l == 1 && g_ascii_tolower(**l) == 'c')))
            *ret_type = g_strstrip(g_strdup(colon + 1));
        else
            g_string_append_printf(rest, "%s\r\n", *l);
    }
    g_strfreev(lines);
}


void engine_prepare_notification(msilo_engine_t *e, const msilo_request_t *req, store_op *op,
                                 const msilo_uri_t *ru, const msilo_uri_t *fu,
                                 const msilo_uri_t *tu)
{
    if (!e->t_from || !e->t_body || !e->transport || (req->flags & MSILO_REQUEST_SKIP_NOTIFICATION))
        return;
    msilo_uri_t cu;
    msilo_uri_init(&cu);
    const char *target = fu->uri;
    if (e->use_contact && req->contact && msilo_uri_parse(req->contact, "Contact", &cu) == 0 &&
        cu.scheme != MSILO_SCHEME_TEL)
        target = cu.uri;
    msilo_template_vars_t v = {
        .ru = ru ? ru->uri : NULL, .rU = ru ? ru->user_raw : NULL, .rd = ru ? ru->host : NULL,
        .fu = fu->uri, .fU = fu->user_raw, .fd = fu->host,
        .tu = tu->uri, .tU = tu->user_raw, .td = tu->host,
        .ou = req->orig_ruri ? req->orig_ruri : (ru ? ru->uri : NULL),
        .ci = has_ctl(req->call_id) ? NULL : req->call_id,
    };
    op->n_ruri = g_strdup(target);
    op->n_from = msilo_template_expand(e->t_from, &v);
    op->n_to = g_strdup(fu->uri);
    op->n_body = msilo_template_expand(e->t_body, &v);
    GString *hdrs = g_string_new(NULL);
    if (e->t_contact) {
        char *c = msilo_template_expand(e->t_contact, &v);
        append_header_lines(hdrs, c);
        g_free(c);
    }
    if (e->t_ctype) {
        char *c = msilo_template_expand(e->t_ctype, &v);
        split_ctype_hdr(c, &op->n_ctype, hdrs);
        g_free(c);
    }
    op->n_headers = g_string_free(hdrs, FALSE);
    msilo_uri_clear(&cu);
}
