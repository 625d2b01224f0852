/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What keeps one MESSAGE from going round and round (and being stored once
 * per round), for msilo-server:
 *
 *  - server_is_local(): whether a URI names this server (one of the agent's
 *    Via host:port). A REGISTER whose Contact is this server is refused, so
 *    the registrar never holds a binding that forwards to itself.
 *  - the forwarding branch (RFC 3261 16.6 item 8): a forwarded MESSAGE
 *    carries Via branch "z9hG4bK" + a hash of what identifies the request at
 *    this hop (R-URI as received, Call-ID, From and To tags, CSeq). When a
 *    request arrives with a Via of ours whose branch is the hash of the
 *    request as it is now, it has looped (RFC 3261 16.3 item 4) and gets 482.
 *    A request that comes back changed (another R-URI) is a spiral and goes
 *    on; Max-Forwards still bounds it. The topmost Via is not in the hash
 *    (16.6 lists it): a looped request's topmost Via is another hop's, so it
 *    would never match.
 *  - the store-once table: a request that has been here before (it carries
 *    one of our Vias) or that we forwarded ourselves can reach m_store more
 *    than once: a spiral stores it at the last hop while an earlier hop's
 *    forward times out and stores it again. Such stores go through a table
 *    keyed by the request's identity (Call-ID, From tag, CSeq): the first
 *    stores, a second one while it runs waits for its result, and one within
 *    a forward timeout after it succeeded is answered 202 without storing.
 *    Ordinary stores (never forwarded, not come back) skip the table.
 */
#include <string.h>

#include "server.h"

#include <sofia-sip/sip_header.h>

/* The sent-by of a Via, or a URI's host:port, with SIP's default port. */
static bool same_hostport(const char *host, const char *port, sip_via_t const *v)
{
    const char *vport = v->v_port && v->v_port[0] ? v->v_port : "5060";
    if (!port || !port[0])
        port = "5060";
    return host && v->v_host && g_ascii_strcasecmp(host, v->v_host) == 0 &&
           strcmp(port, vport) == 0;
}

bool server_is_local(server_t *s, url_t const *url)
{
    if (!url || !url->url_host)
        return false;
    for (sip_via_t const *v = nta_agent_via(s->agent); v; v = v->v_next)
        if (same_hostport(url->url_host, url->url_port, v))
            return true;
    return false;
}

/* Whether @v is a Via this server put into a request it forwarded. */
static bool via_is_ours(server_t *s, sip_via_t const *v)
{
    for (sip_via_t const *a = nta_agent_via(s->agent); a; a = a->v_next)
        if (same_hostport(v->v_host, v->v_port, a))
            return true;
    return false;
}

void server_loop_branch(sip_t const *sip, char out[SERVER_BRANCH_SIZE])
{
    su_home_t home[1] = { SU_HOME_INIT(home) };
    GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
    char const *ruri = url_as_string(home, sip->sip_request->rq_url);
    char cseq[32];
    const char *parts[] = {
        ruri ? ruri : "",
        sip->sip_call_id ? sip->sip_call_id->i_id : "",
        sip->sip_from && sip->sip_from->a_tag ? sip->sip_from->a_tag : "",
        sip->sip_to && sip->sip_to->a_tag ? sip->sip_to->a_tag : "",
        cseq,
    };

    g_snprintf(cseq, sizeof(cseq), "%u", sip->sip_cseq ? (unsigned)sip->sip_cseq->cs_seq : 0u);
    for (size_t i = 0; i < G_N_ELEMENTS(parts); i++)
        g_checksum_update(ck, (const guchar *)parts[i], (gssize)strlen(parts[i]) + 1);
    /* "z9hG4bK" (RFC 3261 magic cookie) + ".ml" + 24 hex digits */
    g_snprintf(out, SERVER_BRANCH_SIZE, "z9hG4bK.ml%.24s", g_checksum_get_string(ck));
    g_checksum_free(ck);
    su_home_deinit(home);
}

bool server_came_back(server_t *s, sip_t const *sip)
{
    for (sip_via_t const *v = sip->sip_via; v; v = v->v_next)
        if (via_is_ours(s, v))
            return true;
    return false;
}

bool server_request_looped(server_t *s, sip_t const *sip)
{
    char branch[SERVER_BRANCH_SIZE];
    bool computed = false;

    for (sip_via_t const *v = sip->sip_via; v; v = v->v_next) {
        if (!v->v_branch || !via_is_ours(s, v))
            continue;
        if (!computed) {
            server_loop_branch(sip, branch);
            computed = true;
        }
        /* a fork's branch is ours + ".N" (forward.c) */
        size_t n = strlen(branch);
        if (g_ascii_strncasecmp(v->v_branch, branch, n) == 0 &&
            (v->v_branch[n] == '\0' || v->v_branch[n] == '.'))
            return true;
    }
    return false;
}

/* ---- store once ------------------------------------------------------------ */

typedef struct once_entry {
    bool running;        /* its store has not completed */
    int64_t until;       /* done: answered 202 without storing until then */
    GPtrArray *waiters;  /* nta_incoming_t* answered with its result */
} once_entry;

static void once_entry_free(gpointer p)
{
    once_entry *e = p;
    if (e->waiters)
        g_ptr_array_unref(e->waiters);
    g_free(e);
}

GHashTable *server_once_new(void)
{
    return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, once_entry_free);
}

char *server_once_key(sip_t const *sip)
{
    return g_strdup_printf("%s\n%s\n%u", sip->sip_call_id ? sip->sip_call_id->i_id : "",
                           sip->sip_from && sip->sip_from->a_tag ? sip->sip_from->a_tag : "",
                           sip->sip_cseq ? (unsigned)sip->sip_cseq->cs_seq : 0u);
}

server_once_t server_once_begin(server_t *s, const char *key, nta_incoming_t *irq, int64_t now)
{
    once_entry *e = g_hash_table_lookup(s->once, key);
    if (e && e->running) {
        g_ptr_array_add(e->waiters, irq);
        return SERVER_ONCE_WAIT;
    }
    if (e && e->until >= now)
        return SERVER_ONCE_STORED;
    e = g_new0(once_entry, 1);
    e->running = true;
    e->waiters = g_ptr_array_new();
    g_hash_table_replace(s->once, g_strdup(key), e);
    return SERVER_ONCE_FIRST;
}

GPtrArray *server_once_end(server_t *s, const char *key, int result, int64_t now)
{
    once_entry *e = g_hash_table_lookup(s->once, key);
    GPtrArray *waiters;

    if (!e)
        return NULL;
    waiters = e->waiters;
    e->waiters = NULL;
    e->running = false;
    /* forward_timeout (ms) bounds how long after this store an earlier hop's
     * forward can still time out and try to store the same request */
    e->until = now + (int64_t)(s->opt.forward_timeout / 1000) + 1;
    if (result != 0)
        g_hash_table_remove(s->once, key); /* failed: a later store may try again */
    return waiters;
}

void server_once_expire(server_t *s, int64_t now)
{
    GHashTableIter it;
    gpointer value;

    g_hash_table_iter_init(&it, s->once);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        once_entry *e = value;
        if (!e->running && e->until < now)
            g_hash_table_iter_remove(&it);
    }
}
