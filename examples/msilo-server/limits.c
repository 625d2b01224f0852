/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * msilo-server's TCP connection cap ([server] tcp_max_connections).
 *
 * Sofia-SIP 1.12 has no connection limit: it accepts until accept() fails
 * with EMFILE, and then its listening socket stays readable and the loop
 * spins (issue 17: ~200 % CPU at 1 024 descriptors, new TCP failing and
 * nothing logged). Here the descriptors the process holds beyond those it
 * had once it was listening are counted every 100 ms; at the cap the TCP
 * listeners are stalled (tport_stall(): Sofia stops polling them, so
 * nothing spins and connections wait in the kernel's backlog), below 90 %
 * of it they continue. UDP is never stalled. The soft RLIMIT_NOFILE is
 * raised so that the cap, not the descriptor limit, is what is reached.
 * Connections go away by themselves: idle ones after tcp_idle_timeout
 * (Sofia's TPTAG_IDLE is set too, but a connection that never sent a byte
 * outlived it by far: 70 of them, 3 s idle timeout, still open after 20 s).
 *
 * Slow senders (slowloris): Sofia's TPTAG_TIMEOUT restarts with every byte,
 * so one byte a second kept a connection forever. Here every accepted TCP
 * connection (local port = our TCP port) is looked at once a second: the
 * time of its last complete request (server_limits_request(), from the
 * peer address of each request; the time it was first seen before any)
 * against the kernel's time of its last received data (TCP_INFO
 * tcpi_last_data_recv). Data after the last complete request is a request
 * in progress; one in progress for longer than tcp_message_timeout, on two
 * looks in a row (a request that merely straddles one look completes before
 * the next), has its socket shut down: Sofia sees the end of the stream and
 * closes the connection itself (its descriptor is never closed behind its
 * back). A connection without data for tcp_idle_timeout is shut down the
 * same way. CRLF keep-alives count as data: a client that sends only those for
 * longer than tcp_message_timeout is closed too (it reconnects), unless the
 * connection carries a registered flow (flow.c), which is never closed here.
 *
 * Server transactions ([server] max_transactions): NTA keeps each REGISTER
 * and MESSAGE transaction 32 s after its answer (Timer J, ~8 KB each), so a
 * flood of them grows memory by ~8 KB x rate x 32 s. At the cap (NTA's count
 * of incoming transactions, NTATAG_S_IRQ_HASH_USED) a new request is
 * answered statelessly 503 with Retry-After instead (sip.c): no transaction,
 * nothing stored; retransmissions of the transactions there still find them.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/tport.h>

/* Open descriptors of the process (/proc/self/fd), or -1. */
static int count_fds(void)
{
    GDir *dir = g_dir_open("/proc/self/fd", 0, NULL);
    int n = 0;
    if (!dir)
        return -1;
    while (g_dir_read_name(dir))
        n++;
    g_dir_close(dir);
    return n - 1; /* the directory's own descriptor */
}

typedef struct conn_seen {
    int64_t since;  /* ms (monotonic): first seen, then last complete request */
    bool flagged;   /* in progress for too long at the previous look */
    guint look;     /* the look that last saw it */
} conn_seen;

char *server_peer_key(const struct sockaddr *sa)
{
    char host[64] = "";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        const guint8 *a = (const guint8 *)&in->sin_addr;
        return g_strdup_printf("%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3], ntohs(in->sin_port));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        const guint8 *a = in6->sin6_addr.s6_addr;
        for (int i = 0; i < 16; i += 2)
            g_snprintf(host + strlen(host), sizeof(host) - strlen(host), "%s%02x%02x",
                       i ? ":" : "", a[i], a[i + 1]);
        return g_strdup_printf("[%s]:%u", host, ntohs(in6->sin6_port));
    }
    return NULL;
}

void server_limits_request(server_t *s, msg_t *msg)
{
    su_sockaddr_t const *su = msg_addr(msg);
    conn_seen *c;
    char *key;

    if (!s->conns || !su)
        return;
    key = server_peer_key(&su->su_sa);
    if (!key)
        return;
    c = g_hash_table_lookup(s->conns, key);
    if (!c) {
        c = g_new0(conn_seen, 1);
        g_hash_table_insert(s->conns, key, c);
    } else {
        g_free(key);
    }
    c->since = g_get_monotonic_time() / 1000;
    c->flagged = false;
}

/* Once a second: the slow senders among the accepted TCP connections. */
static void look_at_connections(server_t *s)
{
    GDir *dir = g_dir_open("/proc/self/fd", 0, NULL);
    const char *name;
    int64_t now = g_get_monotonic_time() / 1000;
    GHashTableIter it;
    gpointer value;

    s->conns_look++;
    while (dir && (name = g_dir_read_name(dir))) {
        int fd = atoi(name);
        struct sockaddr_storage local, peer;
        socklen_t ll = sizeof(local), pl = sizeof(peer);
        struct tcp_info ti;
        socklen_t tl = sizeof(ti);
        int type = 0;
        socklen_t yl = sizeof(type);
        unsigned lport;

        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &yl) != 0 || type != SOCK_STREAM)
            continue;
        if (getsockname(fd, (struct sockaddr *)&local, &ll) != 0 ||
            getpeername(fd, (struct sockaddr *)&peer, &pl) != 0)
            continue;
        lport = local.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&local)->sin_port)
                : local.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&local)->sin6_port)
                                              : 0;
        if (lport != s->tcp_port)
            continue; /* ours to a contact, or another server's (metrics) */
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) != 0)
            continue;
        g_autofree char *key = server_peer_key((struct sockaddr *)&peer);
        if (!key)
            continue;
        conn_seen *c = g_hash_table_lookup(s->conns, key);
        if (!c) {
            c = g_new0(conn_seen, 1);
            c->since = now;
            g_hash_table_insert(s->conns, g_steal_pointer(&key), c);
        }
        c->look = s->conns_look;
        int64_t last_data = now - (int64_t)ti.tcpi_last_data_recv;
        bool in_progress = last_data > c->since + 50 && ti.tcpi_last_data_recv < 60000000u;
        bool received = ti.tcpi_last_data_recv < 60000000u; /* else: nothing ever */
        int64_t active = received && last_data > c->since ? last_data : c->since;
        bool slow = in_progress && now - c->since > (int64_t)s->opt.tcp_message_timeout;
        bool idle = !in_progress && now - active > (int64_t)s->opt.tcp_idle_timeout;
        /* a registered flow (flow.c) is kept: its client pings it with
         * CRLFCRLF (RFC 5626: every 95-120 s), which looks like a request
         * in progress here, and its messages can reach it no other way */
        if ((slow || idle) && server_flow_peer(s, key))
            slow = idle = false;
        if (!slow && !idle) {
            c->flagged = false;
            continue;
        }
        if (!c->flagged) {
            c->flagged = true;
            continue;
        }
        if (slow) {
            s->n_slow_closed++;
            g_message("TCP connection from %s: no complete request for %" G_GINT64_FORMAT
                      " ms while sending (tcp_message_timeout): closed",
                      key ? key : "?", now - c->since);
        } else {
            s->n_idle_closed++;
            REQ_LOG("TCP connection from %s: idle for %" G_GINT64_FORMAT
                    " ms (tcp_idle_timeout): closed", key ? key : "?", now - active);
        }
        shutdown(fd, SHUT_RDWR);
        c->flagged = false;
        c->since = now;
    }
    if (dir)
        g_dir_close(dir);
    /* forget connections that are gone */
    g_hash_table_iter_init(&it, s->conns);
    while (g_hash_table_iter_next(&it, NULL, &value))
        if (((conn_seen *)value)->look != s->conns_look)
            g_hash_table_iter_remove(&it);
}

bool server_limits_transactions_full(server_t *s)
{
    usize_t used = 0;
    if (!s->opt.max_transactions)
        return false;
    nta_agent_get_stats(s->agent, NTATAG_S_IRQ_HASH_USED_REF(used), TAG_END());
    if (used < s->opt.max_transactions)
        return false;
    s->n_transactions_refused++;
    int64_t now = g_get_monotonic_time();
    if (!s->transactions_logged || now - s->transactions_logged >= 10 * G_USEC_PER_SEC) {
        s->transactions_logged = now;
        g_warning("%u server transactions (max_transactions): new REGISTER/MESSAGE get 503 "
                  "until some end (%" G_GUINT64_FORMAT " refused so far)",
                  (unsigned)used, s->n_transactions_refused);
    }
    return true;
}

static void set_stalled(server_t *s, bool stall)
{
    tport_t *master = nta_agent_tports(s->agent);
    for (tport_t *tp = master ? tport_primaries(master) : NULL; tp; tp = tport_next(tp)) {
        if (!tport_is_stream(tp))
            continue;
        if (stall)
            tport_stall(tp);
        else
            tport_continue(tp);
    }
    s->tcp_stalled = stall;
}

static gboolean limits_tick(gpointer data)
{
    server_t *s = data;
    int n = count_fds();
    if (++s->limits_ticks % 10 == 0 && s->opt.tcp_message_timeout)
        look_at_connections(s);
    if (n < 0)
        return G_SOURCE_CONTINUE;
    n -= s->fd_baseline;
    s->tcp_connections = n > 0 ? (unsigned)n : 0;
    if (!s->opt.tcp_max_connections)
        return G_SOURCE_CONTINUE;
    if (!s->tcp_stalled && s->tcp_connections >= s->opt.tcp_max_connections) {
        s->n_tcp_stalls++;
        g_warning("%u TCP connections (tcp_max_connections): not accepting new ones until "
                  "some close (idle after %u ms, slow senders after %u ms)",
                  s->tcp_connections, s->opt.tcp_idle_timeout, s->opt.tcp_message_timeout);
        set_stalled(s, true);
    } else if (s->tcp_stalled && s->tcp_connections < s->opt.tcp_max_connections / 10 * 9) {
        g_message("%u TCP connections: accepting again", s->tcp_connections);
        set_stalled(s, false);
    }
    return G_SOURCE_CONTINUE;
}

void server_limits_start(server_t *s)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)s->opt.tcp_max_connections + 256;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
            g_warning("tcp_max_connections %u needs %u descriptors, the limit is %u: "
                      "raise it (ulimit -n, LimitNOFILE=)",
                      s->opt.tcp_max_connections, (unsigned)want, (unsigned)rl.rlim_cur);
    }
    /* what the process holds once listening (store, agent, loop): not connections */
    s->fd_baseline = count_fds();
    s->conns = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (sip_via_t const *v = nta_agent_via(s->agent); v; v = v->v_next)
        if (v->v_protocol && g_str_has_suffix(v->v_protocol, "/TCP"))
            s->tcp_port = v->v_port ? (unsigned)atoi(v->v_port) : 5060;
    s->limits_timer = g_timeout_add(100, limits_tick, s);
}

void server_limits_stop(server_t *s)
{
    if (s->limits_timer)
        g_source_remove(s->limits_timer);
    s->limits_timer = 0;
    if (s->conns)
        g_hash_table_unref(s->conns);
    s->conns = NULL;
}
