/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The part of msilo-server's request path that needs a parsed request only
 * (no transaction, no server): the checks every request passes before it is
 * handled (size limits, headers Sofia could not parse or found twice, an empty
 * Call-ID, stored extra headers), the owner of a MESSAGE, and the view of a
 * request that the engine is given. tests/fuzz/fuzz-request.c runs whole
 * requests through it, as Sofia parses them off the wire.
 */
#include <string.h>

#include "request.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/url.h>

/* The Warning for the first entry of Sofia's error list. The list holds two
 * kinds of header: those Sofia could not parse (class sip_error_class; their
 * er_name is the header's name, from Sofia's own class table) and the extra
 * copies of a header that may appear only once, which keep their own class
 * (a second Max-Forwards is a sip_max_forwards_t: what sits where er_name
 * would be is its count, not a pointer). Only the class says which. */
static void bad_header_warning(msg_header_t const *h, char *warning, size_t size)
{
    const char *name = NULL;
    bool duplicate = h->sh_class != sip_error_class;

    if (!duplicate)
        name = h->sh_error->er_name;
    else
        name = h->sh_class->hc_name;
    g_snprintf(warning, size, "399 msilo \"%s %.60s\"", duplicate ? "Duplicate" : "Malformed",
               name && name[0] ? name : "header");
    for (char *p = warning; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

int server_check_request(const server_options_t *opt, msg_t *msg, sip_t const *sip,
                         char *warning, size_t size)
{
    msg_header_t **head = msg ? msg_chain_head(msg) : NULL;
    unsigned n = 0;
    size_t stored = 0;
    int status = 0;

    warning[0] = '\0';
    for (msg_header_t const *h = head ? *head : NULL; h && !status; h = h->sh_succ) {
        if (h == (msg_header_t const *)sip->sip_request || h == (msg_header_t const *)sip->sip_separator ||
            h == (msg_header_t const *)sip->sip_payload)
            continue;
        char tmp[64];
        /* the parsed fragments are gone: the encoder gives the length (it
         * writes at most sizeof(tmp) bytes and returns what it needs) */
        isize_t len = msg_header_field_e(tmp, sizeof(tmp), h, 0);
        if (h->sh_class->hc_name)
            len += (isize_t)strlen(h->sh_class->hc_name) + 2;
        if (++n > opt->max_headers) {
            status = 413;
            g_snprintf(warning, size, "399 msilo \"More than %u header fields\"",
                       opt->max_headers);
        } else if ((size_t)len > opt->max_header_size) {
            status = 413;
            g_snprintf(warning, size, "399 msilo \"Header field over %u bytes\"",
                       opt->max_header_size);
        }
    }
    if (!status && sip->sip_error) {
        status = 400;
        bad_header_warning((msg_header_t const *)sip->sip_error, warning, size);
    }
    if (!status && (!sip->sip_call_id || !sip->sip_call_id->i_id || !sip->sip_call_id->i_id[0])) {
        status = 400;
        g_snprintf(warning, size, "399 msilo \"Empty Call-ID\"");
    }
    if (!status && sip->sip_request->rq_method == sip_method_message) {
        for (sip_unknown_t const *u = sip->sip_unknown; u; u = u->un_next)
            stored += strlen(u->un_name ? u->un_name : "") + strlen(u->un_value ? u->un_value : "") + 4;
        if (stored > opt->max_stored_headers) {
            status = 413;
            g_snprintf(warning, size, "399 msilo \"Extra headers over %u bytes\"",
                       opt->max_stored_headers);
        }
    }
    return status;
}

/* The value of header @h as text in @home, or NULL. Sofia's encoders return
 * the length a value needs but may leave the last parameter unwritten when
 * the buffer is only just large enough (sip_header_as_string() then passed on
 * a 4 KiB Content-Type as "text/plain;" plus uninitialised bytes, found with
 * valgrind): encode into a buffer with room to spare and check the length. */
char *server_header_value(su_home_t *home, sip_header_t const *h)
{
    char tmp[128];
    isize_t len;
    char *buf;

    if (!h)
        return NULL;
    len = msg_header_field_e(tmp, sizeof(tmp), (msg_header_t const *)h, 0);
    if (len < 0)
        return NULL;
    buf = su_zalloc(home, (size_t)len + 64);
    if (!buf)
        return NULL;
    if (msg_header_field_e(buf, len + 64, (msg_header_t const *)h, 0) != len ||
        strlen(buf) != (size_t)len) {
        su_free(home, buf);
        return NULL;
    }
    return buf;
}

/* Fills @req from @sip; strings live in @home, headers in @hdrs. */
void server_fill_request(msilo_request_t *req, su_home_t *home, sip_t const *sip,
                         GArray *hdrs, const char *snd_time_header)
{
    msilo_request_init(req);
    req->method = sip->sip_request->rq_method_name;
    req->ruri = url_as_string(home, sip->sip_request->rq_url);
    /* To and From as the URIs Sofia parsed (and Digest authenticated), never
     * header text the engine would parse again: a display name such as
     * "<sip:bob@h>" must not turn mallory's request into bob's. */
    if (sip->sip_to)
        req->to = url_as_string(home, sip->sip_to->a_url);
    if (sip->sip_from)
        req->from = url_as_string(home, sip->sip_from->a_url);
    if (sip->sip_contact && sip->sip_contact->m_url->url_type != url_any)
        req->contact = url_as_string(home, sip->sip_contact->m_url);
    if (sip->sip_content_type)
        req->content_type = server_header_value(home, (sip_header_t const *)sip->sip_content_type);
    if (sip->sip_payload) {
        req->body = sip->sip_payload->pl_data;
        req->body_len = sip->sip_payload->pl_len;
    }
    if (sip->sip_call_id)
        req->call_id = sip->sip_call_id->i_id;
    if (sip->sip_expires)
        req->expires = (long)sip->sip_expires->ex_delta;
    if (sip->sip_allow)
        req->allow = server_header_value(home, (sip_header_t const *)sip->sip_allow);
    /* Headers this parser does not know (P-Asserted-Identity, X-..., ...)
     * are kept with the message and re-sent on delivery. */
    for (sip_unknown_t const *u = sip->sip_unknown; u; u = u->un_next) {
        msilo_header_t h = { u->un_name, u->un_value ? u->un_value : "" };
        /* The reminder time is consumed here, not re-sent: a reminder that
         * came back through this server would be stored again, forever. */
        if (snd_time_header && snd_time_header[0] && u->un_name &&
            g_ascii_strcasecmp(u->un_name, snd_time_header) == 0)
            continue;
        g_array_append_val(hdrs, h);
    }
    /* snd_time_avp names the header that carries a reminder time. */
    if (snd_time_header && snd_time_header[0]) {
        for (sip_unknown_t const *u = sip->sip_unknown; u; u = u->un_next)
            if (u->un_name && g_ascii_strcasecmp(u->un_name, snd_time_header) == 0)
                req->snd_time = u->un_value;
    }
    req->headers = (const msilo_header_t *)(void *)hdrs->data;
    req->n_headers = hdrs->len;
}

/* The owner of a MESSAGE, as the engine's default rule picks it: the R-URI
 * when it names a user (and is not tel:), else the To URI. The domain check
 * and the store use this one URL, so they cannot disagree. */
url_t const *server_message_owner(sip_t const *sip)
{
    url_t const *ru = sip->sip_request->rq_url;
    if (ru->url_type != url_tel && ru->url_user && ru->url_user[0])
        return ru;
    return sip->sip_to ? sip->sip_to->a_url : NULL;
}

