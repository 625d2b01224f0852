/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-server's Digest authentication, on Sofia-SIP's auth module (the
 * htdigest-style users file, MD5, qop=auth); the identity check is ours.
 */
#include <string.h>

#include "server.h"
#include "request.h"

#include <sofia-sip/auth_module.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/url.h>

/* ---- Digest authentication ------------------------------------------------ */

/* Authenticates the request of @irq with the users file: the credentials must
 * be valid and name @user (the AoR's user for REGISTER, the From user for
 * MESSAGE). @return true when it may go on; otherwise it has been answered:
 * 401 with a challenge (no or stale or wrong credentials), 403 (valid
 * credentials of another user). */
bool server_authenticate(server_t *s, nta_incoming_t *irq, sip_t const *sip, url_t const *who)
{
    static auth_challenger_t const challenger = {
        401, sip_401_Unauthorized, sip_www_authenticate_class, sip_authentication_info_class
    };
    su_home_t home[1] = { SU_HOME_INIT(home) };
    auth_status_t *as = auth_status_new(home);
    bool ok = false;

    if (!as) {
        server_reply(irq, 500, TAG_END());
        su_home_deinit(home);
        return false;
    }
    as->as_method = sip->sip_request->rq_method_name;
    as->as_uri = url_as_string(as->as_home, sip->sip_request->rq_url);
    as->as_realm = s->opt.auth_realm;
    as->as_user_uri = who;
    if (sip->sip_payload) {
        as->as_body = sip->sip_payload->pl_data;
        as->as_bodylen = (isize_t)sip->sip_payload->pl_len;
    }
    auth_mod_verify(s->auth, as, sip->sip_authorization, &challenger);
    if (as->as_status == 0) {
        /* valid credentials: are they the AoR's (or sender's) own? */
        if (who && who->url_user && as->as_user && strcmp(as->as_user, who->url_user) == 0) {
            ok = true;
        } else {
            s->n_auth_forbidden++;
            g_message("%s: user '%s' may not act for %s@%s: 403", as->as_method,
                      as->as_user ? as->as_user : "", who && who->url_user ? who->url_user : "",
                      who && who->url_host ? who->url_host : "");
            server_reply(irq, 403, SIPTAG_WARNING_STR("399 msilo \"Credentials of another user\""),
                              TAG_END());
        }
    } else if (as->as_status >= 300) {
        s->n_auth_challenged++;
        g_info("%s: %d %s", as->as_method, as->as_status, as->as_phrase ? as->as_phrase : "");
        server_reply(irq, as->as_status, SIPTAG_HEADER((sip_header_t const *)as->as_response),
                          TAG_END());
    } else {
        /* the file-based module is synchronous: anything else is a bug */
        server_reply(irq, 500, TAG_END());
    }
    auth_status_unref(as);
    su_home_deinit(home);
    return ok;
}

