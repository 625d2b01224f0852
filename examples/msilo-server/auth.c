/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-server's Digest authentication on the request path: digest.c checks
 * the response (MD5 and SHA-256, RFC 8760; the users file; nonces); here are
 * (issue 17):
 *  - the identity: the credentials' realm must be auth_realm, and their user
 *    the AoR's user -- or, for a users-file line "user@domain", the AoR's
 *    user@domain -- so one user's password is not valid for every domain;
 *  - replay protection: digest.c's nonces are stateless (valid
 *    DIGEST_NONCE_LIFETIME seconds), so a captured Authorization could be sent again. Each (user,
 *    nonce)'s highest nonce-count is kept while the nonce is valid; a request whose nc
 *    is not above it (or a second use of a nonce without qop) gets a fresh
 *    challenge, as a stale nonce does;
 *  - a failure limit per source address: auth_max_failures wrong credentials
 *    within auth_failure_window seconds, and further requests with credentials
 *    from that address get 403 without being checked until the window ends.
 * The 401 carries one WWW-Authenticate per algorithm of [server]
 * auth_algorithms, in its order (SHA-256 first by default, RFC 8760 2.4).
 */
#include <stdlib.h>
#include <string.h>

#include <netdb.h>
#include <sys/socket.h>

#include "server.h"
#include "request.h"
#include "digest.h"

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/url.h>

/* ---- Digest authentication ------------------------------------------------ */



typedef struct nonce_seen {
    uint64_t nc;   /* highest nonce-count accepted */
    int64_t first; /* s: when it was first accepted */
} nonce_seen;

typedef struct source_failures {
    unsigned count;
    int64_t since; /* s: start of the window */
    bool logged;
} source_failures;

/* The source address of the request of @irq, numeric (g_free it). */
static char *source_of(nta_incoming_t *irq)
{
    msg_t *msg = nta_incoming_getrequest(irq);
    su_sockaddr_t const *su = msg ? msg_addr(msg) : NULL;
    char host[NI_MAXHOST] = "";
    if (su && getnameinfo(&su->su_sa, (socklen_t)su_sockaddr_size(su), host, sizeof(host), NULL,
                          0, NI_NUMERICHOST) != 0)
        host[0] = '\0';
    if (msg)
        msg_destroy(msg);
    return g_strdup(host);
}

/* Whether @as_user (the credentials' user) may act for @who. */
static bool same_identity(const char *as_user, url_t const *who)
{
    const char *at;
    if (!as_user || !who || !who->url_user)
        return false;
    at = strchr(as_user, '@');
    if (!at)
        return strcmp(as_user, who->url_user) == 0;
    return who->url_host && strlen(who->url_user) == (size_t)(at - as_user) &&
           strncmp(as_user, who->url_user, (size_t)(at - as_user)) == 0 &&
           g_ascii_strcasecmp(at + 1, who->url_host) == 0;
}

/* Records nonce-count @ar_nc of @user for @nonce (each user that answers a
 * challenge counts on its own); false when it is a replay. */
static bool fresh_nonce_count(server_t *s, const char *user, const char *nonce, const char *ar_nc)
{
    uint64_t nc = ar_nc ? g_ascii_strtoull(ar_nc, NULL, 16) : 0;
    g_autofree char *key = g_strdup_printf("%s\n%s", user ? user : "", nonce);
    nonce_seen *n = g_hash_table_lookup(s->nonces, key);
    if (n && (nc == 0 || nc <= n->nc))
        return false;
    if (!n) {
        n = g_new0(nonce_seen, 1);
        n->first = server_now();
        g_hash_table_insert(s->nonces, g_steal_pointer(&key), n);
    }
    n->nc = nc ? nc : 1;
    return true;
}

void server_auth_init(server_t *s)
{
    s->nonces = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    s->auth_failures = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

void server_auth_clear(server_t *s)
{
    if (s->nonces)
        g_hash_table_unref(s->nonces);
    if (s->auth_failures)
        g_hash_table_unref(s->auth_failures);
    s->nonces = s->auth_failures = NULL;
}

void server_auth_expire(server_t *s, int64_t now)
{
    GHashTableIter it;
    gpointer value;
    if (!s->nonces)
        return;
    g_hash_table_iter_init(&it, s->nonces);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (((nonce_seen *)value)->first + DIGEST_NONCE_LIFETIME + 60 < now)
            g_hash_table_iter_remove(&it);
    g_hash_table_iter_init(&it, s->auth_failures);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (((source_failures *)value)->since + (int64_t)s->opt.auth_failure_window < now)
            g_hash_table_iter_remove(&it);
}

/* Counts a failure of @source; true when it is over the limit now. */
static bool count_failure(server_t *s, const char *source)
{
    source_failures *f;
    int64_t now = server_now();
    if (!s->opt.auth_max_failures || !source[0])
        return false;
    f = g_hash_table_lookup(s->auth_failures, source);
    if (!f || f->since + (int64_t)s->opt.auth_failure_window < now) {
        if (!f) {
            f = g_new0(source_failures, 1);
            g_hash_table_insert(s->auth_failures, g_strdup(source), f);
        }
        f->count = 0;
        f->since = now;
        f->logged = false;
    }
    f->count++;
    return f->count >= s->opt.auth_max_failures;
}

static bool source_blocked(server_t *s, const char *source)
{
    source_failures *f = s->opt.auth_max_failures && source[0]
                             ? g_hash_table_lookup(s->auth_failures, source)
                             : NULL;
    if (!f || f->count < s->opt.auth_max_failures ||
        f->since + (int64_t)s->opt.auth_failure_window < server_now())
        return false;
    if (!f->logged) {
        f->logged = true;
        g_message("%s: %u failed authentications within %u s: credentials from it are refused "
                  "(403) until the window ends", source, f->count, s->opt.auth_failure_window);
    }
    return true;
}

/* Answers @irq with a 401 that challenges with every algorithm offered. */
static void challenge(server_t *s, nta_incoming_t *irq, bool stale)
{
    g_autofree char *www = digest_challenge(s->auth, stale);
    server_reply(irq, 401, SIPTAG_HEADER_STR(www), TAG_END());
}

/* Authenticates the request of @irq with the users file: the credentials must
 * be valid and name @user (the AoR's user for REGISTER, the From user for
 * MESSAGE). @return true when it may go on; otherwise it has been answered:
 * 401 with a challenge (no or stale or wrong credentials), 403 (valid
 * credentials of another user). */
bool server_authenticate(server_t *s, nta_incoming_t *irq, sip_t const *sip, url_t const *who)
{
    su_home_t home[1] = { SU_HOME_INIT(home) };
    const char *method = sip->sip_request->rq_method_name;
    digest_check_t ck;
    digest_result_t r = digest_verify(s->auth, home, sip, &ck);
    g_autofree char *source = source_of(irq);
    bool ok = false;

    if (r != DIGEST_NONE && source_blocked(s, source)) {
        s->n_auth_blocked++;
        server_reply(irq, 403,
                     SIPTAG_WARNING_STR("399 msilo \"Too many failed authentications\""),
                     TAG_END());
        su_home_deinit(home);
        return false;
    }
    if (r == DIGEST_OK && !fresh_nonce_count(s, ck.user, ck.nonce, ck.nc)) {
        /* a replay (or a nonce used again without qop): a fresh challenge */
        s->n_auth_replays++;
        g_message("%s: nonce-count %s of a nonce seen before from %s: challenged again",
                  method, ck.nc ? ck.nc : "(none)", source);
        s->n_auth_challenged++;
        challenge(s, irq, false);
    } else if (r == DIGEST_OK) {
        /* valid credentials of our realm: are they the AoR's (or sender's) own? */
        if (same_identity(ck.user, who)) {
            ok = true;
        } else {
            s->n_auth_forbidden++;
            count_failure(s, source);
            g_message("%s: user '%s' may not act for %s@%s: 403", method, ck.user,
                      who && who->url_user ? who->url_user : "",
                      who && who->url_host ? who->url_host : "");
            server_reply(irq, 403, SIPTAG_WARNING_STR("399 msilo \"Credentials of another user\""),
                         TAG_END());
        }
    } else {
        s->n_auth_challenged++;
        /* wrong credentials count; none, a stale nonce or an algorithm we do
         * not offer do not */
        if (r == DIGEST_WRONG)
            count_failure(s, source);
        g_info("%s: 401 (%s%s%s)", method,
               r == DIGEST_NONE ? "no credentials" : r == DIGEST_STALE ? "stale nonce"
               : r == DIGEST_WRONG ? "wrong credentials" : "unsupported algorithm or qop",
               ck.algorithm ? ", " : "", ck.algorithm ? ck.algorithm : "");
        challenge(s, irq, r == DIGEST_STALE);
    }
    su_home_deinit(home);
    return ok;
}
