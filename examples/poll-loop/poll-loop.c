/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * poll-loop: the engine in a program whose event loop is a plain poll(),
 * not GLib's (no g_main_loop_run(), no g_main_context_iteration()). This is
 * how a SIP server with its own poll()/epoll loop embeds libmsilo: it adds
 * the file descriptors of the engine's GMainContext to its own set and gives
 * GLib the four calls of one loop turn (prepare, query, check, dispatch).
 *
 * The transport is the example's own: a MESSAGE goes out as one datagram on
 * a socketpair, and its answer comes back on that socket, which the same
 * poll() watches. At the other end of the pair a tiny "user agent" (also in
 * this loop) answers 503 to the first attempt of one message and 200 to
 * everything else, so the engine's retry timer has to fire in this loop too.
 *
 * Exit status 0 when each of the stored messages was delivered (answered
 * 2xx) exactly once and the store is empty; 1 otherwise, or after 20 s.
 *   cc poll-loop.c $(pkg-config --cflags --libs msilo)
 */
#include <msilo/msilo.h>

#include <glib.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define N_MESSAGES 3

/* ---- the transport: a datagram per MESSAGE, answers on the same socket ---- */

typedef struct {
    msilo_transport_done_fn done;
    void *data;
} pending_send;

typedef struct {
    msilo_transport_t base; /* first: &t->base is what the engine is given */
    int fd;                 /* our end of the socketpair */
    GHashTable *pending;    /* sequence number -> pending_send*: sent, not answered */
    unsigned seq;
} pipe_transport;

/* send(): called by the engine on its context's thread (ours). It must not
 * call done() itself: the answer comes later, from the loop. */
static int pipe_send(msilo_transport_t *base, const msilo_outgoing_t *m,
                     msilo_transport_done_fn done, void *data)
{
    pipe_transport *t = (pipe_transport *)base;
    unsigned seq = ++t->seq;
    char *dgram = g_strdup_printf("%u %.*s", seq, (int)m->body_len, (const char *)m->body);
    ssize_t n = send(t->fd, dgram, strlen(dgram), 0);
    g_free(dgram);
    if (n < 0)
        return MSILO_ETRANSPORT; /* refused at once: done() will not be called */
    pending_send *p = g_new(pending_send, 1);
    p->done = done;
    p->data = data;
    g_hash_table_insert(t->pending, GUINT_TO_POINTER(seq), p);
    return 0;
}

/* The loop saw our socket readable: one answer "SEQ STATUS". */
static void pipe_read_answer(pipe_transport *t)
{
    char buf[64];
    ssize_t n = recv(t->fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return;
    buf[n] = '\0';
    unsigned seq = 0;
    int status = 0;
    if (sscanf(buf, "%u %d", &seq, &status) != 2)
        return;
    pending_send *p = g_hash_table_lookup(t->pending, GUINT_TO_POINTER(seq));
    if (!p)
        return;
    g_hash_table_steal(t->pending, GUINT_TO_POINTER(seq));
    /* we own the engine's context (acquired in main()), so the engine
     * completes the send inside this call, and may send the next one */
    p->done(status, p->data);
    g_free(p);
}

/* free(): every send still in flight ends with MSILO_ECANCELLED. */
static void pipe_free(msilo_transport_t *base)
{
    pipe_transport *t = (pipe_transport *)base;
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, t->pending);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        pending_send *p = v;
        g_hash_table_iter_steal(&it);
        p->done(MSILO_ECANCELLED, p->data);
        g_free(p);
    }
    g_hash_table_unref(t->pending);
    g_free(t);
}

/* ---- the user agent at the other end ------------------------------------------ */

typedef struct {
    int fd;
    int delivered[N_MESSAGES]; /* 2xx answers per message */
    gboolean refused_once;
} user_agent;

static void ua_answer(user_agent *ua)
{
    char buf[512];
    ssize_t n = recv(ua->fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return;
    buf[n] = '\0';
    unsigned seq = 0;
    int i = -1;
    if (sscanf(buf, "%u msg %d", &seq, &i) != 2 || i < 0 || i >= N_MESSAGES)
        return;
    int status = 200;
    if (i == 1 && !ua->refused_once) { /* busy the first time: the engine retries */
        ua->refused_once = TRUE;
        status = 503;
    }
    if (status == 200)
        ua->delivered[i]++;
    printf("UA: MESSAGE %u \"msg %d\" -> %d\n", seq, i, status);
    char ans[64];
    int len = snprintf(ans, sizeof ans, "%u %d", seq, status);
    if (send(ua->fd, ans, (size_t)len, 0) < 0)
        perror("send");
}

/* ---- the engine's side -------------------------------------------------------- */

static int stored;

static void stored_cb(msilo_engine_t *e, int rc, int64_t id, void *data)
{
    (void)e;
    (void)data;
    printf("stored message %lld: %s\n", (long long)id, msilo_strerror(rc));
    if (rc == 0)
        stored++;
}

int main(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0) {
        perror("socketpair");
        return 1;
    }
    /* The engine gets a context of its own, and this thread owns it for the
     * whole program: the GLib calls of a loop turn need that, and every
     * engine call and done() from this thread then runs at once. */
    GMainContext *ctx = g_main_context_new();
    g_main_context_acquire(ctx);

    msilo_config_t *cfg;
    msilo_store_t *store;
    msilo_engine_t *e;
    msilo_config_new(&cfg);
    msilo_config_set(cfg, "check_time", "1"); /* retry a failure after 1 s */
    msilo_config_set(cfg, "add_date", "0");   /* bodies as stored */
    if (msilo_memory_store_new(&store))
        return 1;
    pipe_transport *tr = g_new0(pipe_transport, 1);
    tr->base = (msilo_transport_t)MSILO_TRANSPORT_INIT;
    tr->base.name = "pipe";
    tr->base.send = pipe_send;
    tr->base.free = pipe_free;
    tr->fd = sv[0];
    tr->pending = g_hash_table_new(NULL, NULL);
    user_agent ua = { .fd = sv[1] };
    int rc = msilo_engine_new(&e, cfg, store, &tr->base, ctx);
    if (rc) {
        fprintf(stderr, "engine: %s: %s\n", msilo_strerror(rc), msilo_error_detail());
        return 1;
    }

    /* Work for the loop: three MESSAGEs for alice while she is offline. */
    for (int i = 0; i < N_MESSAGES; i++) {
        char body[16];
        snprintf(body, sizeof body, "msg %d", i);
        msilo_request_t m = MSILO_REQUEST_INIT;
        m.method = "MESSAGE";
        m.ruri = m.to = "sip:alice@example.org";
        m.from = "<sip:bob@example.org>;tag=1";
        m.body = body;
        m.body_len = strlen(body);
        if (msilo_engine_store(e, &m, NULL, stored_cb, NULL))
            return 1;
    }

    gboolean registered = FALSE;
    GPollFD *gfds = NULL;
    struct pollfd *pfds = NULL;
    gint n_alloc = 0;
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    for (;;) {
        /* 1. GLib's part of the turn: which fds, how long to wait */
        gint max_prio, timeout, n;
        g_main_context_prepare(ctx, &max_prio);
        while ((n = g_main_context_query(ctx, max_prio, &timeout, gfds, n_alloc)) > n_alloc) {
            n_alloc = n;
            gfds = g_renew(GPollFD, gfds, n_alloc);
            pfds = g_renew(struct pollfd, pfds, n_alloc + 2);
        }
        if (!pfds)
            pfds = g_new(struct pollfd, 2);
        /* 2. one poll() for GLib's fds and ours */
        for (gint i = 0; i < n; i++)
            pfds[i] = (struct pollfd){ .fd = gfds[i].fd, .events = (short)gfds[i].events };
        pfds[n] = (struct pollfd){ .fd = tr->fd, .events = POLLIN };
        pfds[n + 1] = (struct pollfd){ .fd = ua.fd, .events = POLLIN };
        if (poll(pfds, (nfds_t)n + 2, timeout) < 0) {
            perror("poll");
            break;
        }
        /* 3. GLib's sources that are ready run: the engine's timer (retries,
         * expiry), its store jobs, what its workers completed */
        for (gint i = 0; i < n; i++)
            gfds[i].revents = (gushort)pfds[i].revents;
        if (g_main_context_check(ctx, max_prio, gfds, n))
            g_main_context_dispatch(ctx);
        /* 4. our own fds: the UA's side, then the transport's answers */
        if (pfds[n + 1].revents & POLLIN)
            ua_answer(&ua);
        if (pfds[n].revents & POLLIN)
            pipe_read_answer(tr);

        /* once everything is stored, alice registers: m_dump() */
        if (stored == N_MESSAGES && !registered) {
            registered = TRUE;
            printf("alice registers\n");
            msilo_request_t reg = MSILO_REQUEST_INIT;
            reg.method = "REGISTER";
            reg.to = "sip:alice@example.org";
            reg.contact = "<sip:alice@192.0.2.1:5070>";
            reg.expires = 3600;
            if (msilo_engine_dump(e, &reg, NULL, 0, NULL, NULL))
                break;
        }
        int64_t left = -1;
        msilo_store_count(store, NULL, NULL, &left);
        if (registered && left == 0 && msilo_engine_pending(e) == 0 &&
            msilo_engine_stat(e, MSILO_STAT_IN_FLIGHT) == 0)
            break; /* all delivered, all deleted */
        if (g_get_monotonic_time() > deadline) {
            fprintf(stderr, "timed out\n");
            break;
        }
    }

    int ok = TRUE;
    for (int i = 0; i < N_MESSAGES; i++) {
        printf("msg %d: delivered %d time(s)\n", i, ua.delivered[i]);
        ok = ok && ua.delivered[i] == 1;
    }
    int64_t left = -1;
    msilo_store_count(store, NULL, NULL, &left);
    printf("%lld left in the store, %llu failed attempts\n", (long long)left,
           (unsigned long long)msilo_engine_stat(e, MSILO_STAT_FAILED_MESSAGES));
    ok = ok && left == 0 && ua.refused_once;
    msilo_engine_free(e);
    msilo_transport_free(&tr->base);
    msilo_store_free(store);
    msilo_config_free(cfg);
    g_main_context_release(ctx);
    g_main_context_unref(ctx);
    g_free(gfds);
    g_free(pfds);
    close(sv[0]);
    close(sv[1]);
    return ok ? 0 : 1;
}
