/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The request adapter of libmsilo-sofia: a msilo_request_t filled from a
 * request that Sofia-SIP parsed, so an embedder on Sofia does not write its
 * own. It owns the view's strings (one su_home) and its header array.
 *
 * What it keeps: the identity fields are the URIs Sofia parsed (the ones a
 * Digest check or a registrar reads), never the header text, which the engine
 * would parse a second time and could read differently. Header values are
 * encoded into a buffer with room to spare and their length checked (see
 * msilo_sofia_header_string()).
 */
#include <stddef.h>
#include <string.h>

#include <msilo/errors.h>
#include <msilo/sofia.h>

#include <glib.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

struct msilo_sofia_request {
    su_home_t home[1];
    GArray *headers; /* msilo_header_t, values in home or in the parsed request */
    msilo_request_t view;
};

/* Sofia's encoders return the length a value needs but may leave the last
 * parameter unwritten when the buffer is only just large enough
 * (sip_header_as_string() passed a 4 KiB Content-Type on as "text/plain;"
 * plus uninitialised bytes, found with valgrind): encode into a buffer with
 * room to spare and check the length. */
char *msilo_sofia_header_string(struct su_home_s *home, const union sip_header_u *header)
{
    msg_header_t const *h = (msg_header_t const *)header;
    char tmp[128];
    isize_t len;
    char *buf;

    if (!home || !h)
        return NULL;
    len = msg_header_field_e(tmp, sizeof(tmp), h, 0);
    if (len < 0)
        return NULL;
    buf = su_zalloc(home, (size_t)len + 64);
    if (!buf)
        return NULL;
    if (msg_header_field_e(buf, len + 64, h, 0) != len || strlen(buf) != (size_t)len) {
        su_free(home, buf);
        return NULL;
    }
    return buf;
}

/* The standard headers an adapter may keep with the message (the names of
 * stored_headers): Sofia parses them into these members of sip_t. */
static const struct {
    const char *name;
    size_t offset;
} keepable[] = {
    { "Subject", offsetof(sip_t, sip_subject) },
    { "Priority", offsetof(sip_t, sip_priority) },
    { "In-Reply-To", offsetof(sip_t, sip_in_reply_to) },
    { "Organization", offsetof(sip_t, sip_organization) },
};

#define DEFAULT_KEPT "Subject, Priority, In-Reply-To, Reply-To"

/* Appends the headers of @sip named in @list (comma- or space-separated) to @headers. */
static void keep_standard(su_home_t *home, const sip_t *sip, const char *list, GArray *headers)
{
    gchar **names = g_strsplit_set(list, ", \t", -1);
    for (gchar **n = names; *n; n++) {
        for (size_t i = 0; **n && i < G_N_ELEMENTS(keepable); i++) {
            if (g_ascii_strcasecmp(*n, keepable[i].name) != 0)
                continue;
            sip_header_t const *h = *(sip_header_t *const *)(const void *)
                                         ((const char *)sip + keepable[i].offset);
            for (; h; h = (sip_header_t const *)h->sh_next) {
                char *v = msilo_sofia_header_string(home, h);
                if (!v)
                    continue;
                msilo_header_t mh = { keepable[i].name, v };
                g_array_append_val(headers, mh);
            }
        }
    }
    g_strfreev(names);
}

int msilo_sofia_request_new(msilo_sofia_request_t **ret, const struct sip_s *sip,
                            const char *snd_time_header)
{
    return msilo_sofia_request_new_with(ret, sip, snd_time_header, NULL);
}

int msilo_sofia_request_new_with(msilo_sofia_request_t **ret, const struct sip_s *sip,
                                 const char *snd_time_header, const char *stored_headers)
{
    if (!ret || !sip || !sip->sip_request)
        return MSILO_EINVAL;
    msilo_sofia_request_t *r = g_new0(msilo_sofia_request_t, 1);
    su_home_init(r->home);
    r->headers = g_array_new(FALSE, FALSE, sizeof(msilo_header_t));
    su_home_t *home = r->home;
    msilo_request_t *req = &r->view;

    msilo_request_init(req, MSILO_REQUEST_VERSION);
    req->method = sip->sip_request->rq_method_name;
    req->ruri = url_as_string(home, sip->sip_request->rq_url);
    if (sip->sip_to)
        req->to = url_as_string(home, sip->sip_to->a_url);
    if (sip->sip_from) {
        req->from = url_as_string(home, sip->sip_from->a_url);
        /* the display name is stored and re-sent; the URI is still Sofia's */
        const char *d = sip->sip_from->a_display;
        if (d && *d && !strpbrk(d, "\r\n<"))
            req->from = su_sprintf(home, "%s <%s>", d, req->from);
        req->from_tag = sip->sip_from->a_tag;
    }
    if (sip->sip_cseq)
        req->cseq = sip->sip_cseq->cs_seq;
    if (sip->sip_contact && sip->sip_contact->m_url->url_type != url_any)
        req->contact = url_as_string(home, sip->sip_contact->m_url);
    if (sip->sip_content_type)
        req->content_type = msilo_sofia_header_string(home, (sip_header_t const *)sip->sip_content_type);
    if (sip->sip_payload) {
        req->body = sip->sip_payload->pl_data;
        req->body_len = sip->sip_payload->pl_len;
    }
    if (sip->sip_call_id)
        req->call_id = sip->sip_call_id->i_id;
    if (sip->sip_expires)
        req->expires = (long)sip->sip_expires->ex_delta;
    if (sip->sip_allow)
        req->allow = msilo_sofia_header_string(home, (sip_header_t const *)sip->sip_allow);
    /* Headers this parser does not know (P-Asserted-Identity, X-..., ...) are
     * kept with the message and re-sent on delivery; the reminder time is
     * consumed, not re-sent: a reminder that came back through the same
     * server would be stored again, forever. */
    for (sip_unknown_t const *u = sip->sip_unknown; u; u = u->un_next) {
        if (snd_time_header && snd_time_header[0] && u->un_name &&
            g_ascii_strcasecmp(u->un_name, snd_time_header) == 0) {
            req->snd_time = u->un_value; /* the last one counts */
            continue;
        }
        msilo_header_t h = { u->un_name, u->un_value ? u->un_value : "" };
        g_array_append_val(r->headers, h);
    }
    keep_standard(home, sip, stored_headers ? stored_headers : DEFAULT_KEPT, r->headers);
    req->headers = (const msilo_header_t *)(void *)r->headers->data;
    req->n_headers = r->headers->len;
    req->header_size = sizeof(msilo_header_t); /* the GArray's element size */
    *ret = r;
    return 0;
}

msilo_request_t *msilo_sofia_request_view(msilo_sofia_request_t *r)
{
    return r ? &r->view : NULL;
}

void msilo_sofia_request_free(msilo_sofia_request_t *r)
{
    if (!r)
        return;
    g_array_unref(r->headers);
    su_home_deinit(r->home);
    g_free(r);
}
