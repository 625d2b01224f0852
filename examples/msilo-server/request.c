/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The part of msilo-server's request path that needs a parsed request only
 * (no transaction, no server): the checks every request passes before it is
 * handled (size limits, headers Sofia could not parse or found twice, an empty
 * Call-ID, stored extra headers) and the owner of a MESSAGE. (The view the
 * engine is given comes from libmsilo-sofia's msilo_sofia_request_new().)
 * tests/fuzz/fuzz-request.c runs whole requests through both, as Sofia parses
 * them off the wire.
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

