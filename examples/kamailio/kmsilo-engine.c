/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kmsilo-engine.c: the module's engine process. Forked once by the main
 * process (child_init(PROC_MAIN)), it owns everything libmsilo runs: a
 * GMainContext of its own with a GMainLoop, the store (libmsilo-stores:
 * PostgreSQL or SQLite, on the engine's worker thread) and the engine. It
 * serves the engine socket: STORE (answered STORED after the commit), DUMP,
 * and DONE, the outcome of a delivery, posted by whichever process ran tm's
 * reply callback. Deliveries leave through tm's UAC API (t_request) from
 * this process; the statistics go to Kamailio's counters once a second.
 */
#define _GNU_SOURCE 1 /* accept4 */
#include "kmsilo-wire.h"
#include "kmsilo.h"

#include "core/counters.h"
#include "core/dprint.h"
#include "core/forward.h"
#include "core/globals.h"
#include "core/mem/shm_mem.h"
#include "core/parser/parse_uri.h"
#include "modules/tm/tm_load.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib.h>
#include <msilo/engine.h>
#include <msilo/errors.h>
#include <msilo/stores.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------- statistics */

static stat_var *st_stored, *st_dumped, *st_failed, *st_dumped_rmd, *st_failed_rmd;

static stat_export_t kmsilo_stats[] = {
    { "stored_messages", 0, &st_stored },
    { "dumped_messages", 0, &st_dumped },
    { "failed_messages", 0, &st_failed },
    { "dumped_reminders", 0, &st_dumped_rmd },
    { "failed_reminders", 0, &st_failed_rmd },
    { 0, 0, 0 },
};

int kmsilo_stats_register(const char *module)
{
    if (register_module_stats((char *)module, kmsilo_stats) != 0) {
        LM_ERR("msilo_lib: cannot register the statistics\n");
        return -1;
    }
    return 0;
}

void kmsilo_stats_read(unsigned long v[5])
{
    stat_var *vars[] = { st_stored, st_dumped, st_failed, st_dumped_rmd, st_failed_rmd };
    for (int i = 0; i < 5; i++)
        v[i] = vars[i] ? get_stat_val(vars[i]) : 0;
}

static msilo_engine_t *engine;
struct tm_binds kmsilo_tmb;
#define tmb kmsilo_tmb

int kmsilo_tm_load(void)
{
    if (load_tm_api(&tmb) < 0) {
        LM_ERR("msilo_lib: cannot bind tm (load tm.so before msilo_lib.so)\n");
        return -1;
    }
    return 0;
}

static gboolean push_stats(gpointer unused)
{
    (void)unused;
    static const msilo_stat_t ids[] = { MSILO_STAT_STORED_MESSAGES, MSILO_STAT_DUMPED_MESSAGES,
                                        MSILO_STAT_FAILED_MESSAGES, MSILO_STAT_DUMPED_REMINDERS,
                                        MSILO_STAT_FAILED_REMINDERS };
    stat_var **vars[] = { &st_stored, &st_dumped, &st_failed, &st_dumped_rmd, &st_failed_rmd };
    static uint64_t last[G_N_ELEMENTS(ids)];
    for (size_t i = 0; i < G_N_ELEMENTS(ids); i++) {
        uint64_t v = msilo_engine_stat(engine, ids[i]);
        if (v != last[i] && *vars[i])
            update_stat(*vars[i], (long)(v - last[i]));
        last[i] = v;
    }
    return G_SOURCE_CONTINUE;
}

/* -------------------------------------------------------------- transport */

typedef struct {
    msilo_transport_done_fn done;
    void *data;
} pending_send_t;

static GHashTable *sends; /* token (gint64 *) -> pending_send_t * */
static int64_t next_token;

/* tm's reply callback: runs in whichever process got the final reply (a
 * SIP worker, tm's timer for a local timeout, or this one): it only posts
 * the outcome to the engine process. */
static void tm_done(struct cell *t, int type, struct tmcb_params *ps)
{
    (void)t;
    (void)type;
    if (!ps->param || !*ps->param)
        return;
    int64_t *token = *ps->param;
    int status = ps->code;
    if (ps->rpl == FAKED_REPLY) /* tm's own answer: no final response came */
        status = ps->code == 408 ? MSILO_ETIMEDOUT : MSILO_ETRANSPORT;
    char buf[KMSILO_WIRE_SMALL];
    size_t len = kmsilo_wire_encode_small(KMSILO_OP_DONE, 0, *token, status, buf);
    if (kmsilo_client_send(buf, len) < 0)
        LM_ERR("msilo_lib: outcome %d of delivery %lld lost\n", status, (long long)*token);
    shm_free(token);
    *ps->param = NULL;
}

static int proxy_is_self;

static str mkstr(const char *s) { return (str){ (char *)s, s ? (int)strlen(s) : 0 }; }

static int tm_send(msilo_transport_t *tr, const msilo_outgoing_t *m,
                   msilo_transport_done_fn done, void *data)
{
    (void)tr;
    int64_t *token = shm_malloc(sizeof *token);
    if (!token)
        return MSILO_ENOMEM;
    *token = ++next_token;
    GString *h = g_string_new(NULL);
    if (m->content_type)
        g_string_append_printf(h, "Content-Type: %s\r\n", m->content_type);
    if (m->headers)
        g_string_append(h, m->headers);
    str method = str_init("MESSAGE"), hdrs = { h->str, (int)h->len };
    str body = { (char *)m->body, (int)m->body_len };
    str ruri = mkstr(m->ruri), to = mkstr(m->to), from = mkstr(m->from);
    str hop = mkstr(m->next_hop), callid = mkstr(m->call_id);
    uac_req_t uac;
    set_uac_req(&uac, &method, &hdrs, m->body_len ? &body : NULL, NULL, TMCB_LOCAL_COMPLETED,
                tm_done, token);
    if (m->call_id)
        uac.callid = &callid;
    pending_send_t *p = g_new(pending_send_t, 1);
    p->done = done;
    p->data = data;
    int64_t key = *token;
    g_hash_table_insert(sends, g_memdup2(&key, sizeof key), p);
    int via_hop = m->next_hop && (!proxy_is_self || strcmp(m->ruri, m->to) == 0);
    int rc = tmb.t_request(&uac, &ruri, &to, &from, via_hop ? &hop : NULL);
    g_string_free(h, TRUE);
    if (rc < 0) {
        /* no transaction: tm never calls back for it */
        g_hash_table_remove(sends, &key);
        shm_free(token);
        return MSILO_ETRANSPORT;
    }
    return 0;
}

static void tm_free(msilo_transport_t *tr)
{
    (void)tr;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, sends);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        pending_send_t *p = v;
        g_hash_table_iter_steal(&it);
        g_free(k);
        p->done(MSILO_ECANCELLED, p->data);
        g_free(p);
    }
}

static msilo_transport_t tm_transport = {
    .version = MSILO_TRANSPORT_VERSION, .name = "kamailio-tm", .send = tm_send, .free = tm_free,
};

static void send_done(int64_t token, int status)
{
    pending_send_t *p = g_hash_table_lookup(sends, &token);
    if (!p)
        return; /* a duplicate, or a send of an earlier engine process */
    g_hash_table_steal(sends, &token);
    p->done(status, p->data);
    g_free(p);
}

/* ------------------------------------------------------------ connections */

typedef struct {
    int fd;
    int refs;
} conn_t;

static void conn_unref(conn_t *c)
{
    if (--c->refs == 0) {
        close(c->fd);
        g_free(c);
    }
}

typedef struct {
    conn_t *conn;
    uint32_t seq;
} store_wait_t;

static void answer(conn_t *c, uint32_t seq, int32_t result, int64_t id)
{
    char buf[KMSILO_WIRE_SMALL];
    size_t len = kmsilo_wire_encode_small(KMSILO_OP_STORED, seq, id, result, buf);
    if (send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)len)
        LM_WARN("msilo_lib: answer of store %u not delivered: %s\n", seq, strerror(errno));
}

static void stored(msilo_engine_t *e, int result, int64_t id, void *data)
{
    (void)e;
    store_wait_t *w = data;
    if (result < 0 && result != MSILO_EFULL)
        LM_ERR("msilo_lib: store failed: %s: %s\n", msilo_strerror(result), msilo_error_detail());
    answer(w->conn, w->seq, result, id);
    push_stats(NULL);
    conn_unref(w->conn);
    g_free(w);
}

/* async_reply: the transaction the worker handed over, answered here */
typedef struct {
    unsigned hash, label;
} tm_ident_t;

static void reply_trans(unsigned hash, unsigned label, int result)
{
    struct cell *t = NULL;
    if (tmb.t_lookup_ident(&t, hash, label) < 0 || !t) {
        LM_WARN("msilo_lib: transaction %u:%u of a store is gone\n", hash, label);
        return;
    }
    if (result >= 0)
        tmb.t_reply_trans(t, t->uas.request, 202, "Accepted");
    else
        tmb.t_reply_trans(t, t->uas.request, 503, "Service Unavailable");
    tmb.unref_cell(t);
}

static void stored_async(msilo_engine_t *e, int result, int64_t id, void *data)
{
    (void)e;
    (void)id;
    tm_ident_t *ti = data;
    if (result < 0 && result != MSILO_EFULL)
        LM_ERR("msilo_lib: store failed: %s: %s\n", msilo_strerror(result), msilo_error_detail());
    reply_trans(ti->hash, ti->label, result);
    push_stats(NULL);
    g_free(ti);
}

static void handle(conn_t *c, const char *buf, size_t len)
{
    kmsilo_wire_t w;
    if (kmsilo_wire_decode(buf, len, &w) < 0) {
        LM_ERR("msilo_lib: malformed packet of %zu bytes on the engine socket\n", len);
        return;
    }
    int rc;
    switch (w.op) {
    case KMSILO_OP_STORE: {
        store_wait_t *sw = g_new(store_wait_t, 1);
        sw->conn = c;
        sw->seq = w.seq;
        c->refs++;
        rc = msilo_engine_store(engine, &w.req, w.owner, stored, sw);
        if (rc < 0) { /* no callback comes */
            LM_ERR("msilo_lib: store refused: %s\n", msilo_strerror(rc));
            answer(c, w.seq, rc, 0);
            c->refs--;
            g_free(sw);
        }
        break;
    }
    case KMSILO_OP_STORE_ASYNC: {
        tm_ident_t *ti = g_new(tm_ident_t, 1);
        ti->hash = (unsigned)((uint64_t)w.num >> 32);
        ti->label = (unsigned)((uint64_t)w.num & 0xffffffffu);
        rc = msilo_engine_store(engine, &w.req, w.owner, stored_async, ti);
        if (rc < 0) {
            LM_ERR("msilo_lib: store refused: %s\n", msilo_strerror(rc));
            reply_trans(ti->hash, ti->label, rc);
            g_free(ti);
        }
        break;
    }
    case KMSILO_OP_DUMP:
        rc = msilo_engine_dump(engine, &w.req, w.owner, (size_t)w.num, NULL, NULL);
        if (rc < 0 && rc != MSILO_ENOTFOUND)
            LM_DBG("msilo_lib: dump: %s\n", msilo_strerror(rc));
        break;
    case KMSILO_OP_DONE:
        send_done(w.num, w.status);
        push_stats(NULL); /* kamcmd sees the delivery at once */
        break;
    default:
        break;
    }
    kmsilo_wire_clear(&w);
}

static gboolean conn_readable(gint fd, GIOCondition cond, gpointer data)
{
    conn_t *c = data;
    static char *buf;
    static size_t cap = 1 << 16;
    (void)cond;
    if (!buf)
        buf = g_malloc(cap);
    for (;;) {
        ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT | MSG_PEEK | MSG_TRUNC);
        if (n > 0 && (size_t)n > cap) {
            cap = (size_t)n;
            buf = g_realloc(buf, cap);
        }
        if (n > 0)
            n = recv(fd, buf, cap, MSG_DONTWAIT);
        if (n > 0) {
            handle(c, buf, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return G_SOURCE_CONTINUE;
        conn_unref(c); /* closed by the other end */
        return G_SOURCE_REMOVE;
    }
}

static gboolean accept_ready(gint fd, GIOCondition cond, gpointer ctx)
{
    (void)cond;
    for (;;) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
            return G_SOURCE_CONTINUE;
        conn_t *c = g_new0(conn_t, 1);
        c->fd = cfd;
        c->refs = 1;
        GSource *s = g_unix_fd_source_new(cfd, G_IO_IN | G_IO_HUP | G_IO_ERR);
        g_source_set_callback(s, (GSourceFunc)(void (*)(void))conn_readable, c, NULL);
        g_source_attach(s, ctx);
        g_source_unref(s);
    }
}

/* ----------------------------------------------------------------- main */

static void engine_log(msilo_log_level_t level, const char *message, void *data)
{
    (void)data;
    switch (level) {
    case MSILO_LOG_ERROR: LM_ERR("msilo_lib: %s\n", message); break;
    case MSILO_LOG_WARNING: LM_WARN("msilo_lib: %s\n", message); break;
    case MSILO_LOG_INFO: LM_INFO("msilo_lib: %s\n", message); break;
    default: LM_DBG("msilo_lib: %s\n", message); break;
    }
}

/* msilo needs an outbound_proxy that is this very server to reach the
 * registered contact, as it sends to the AoR. libmsilo sends a delivery to
 * the contact itself, so through such a proxy it would come back here with
 * a Request-URI that is not ours (a script refuses those: "Not relaying").
 * So a message whose Request-URI is not ours skips a proxy that is this
 * server; one to our AoR (a reminder) still goes through it, to lookup(). */
static int uri_is_self(const char *text)
{
    struct sip_uri u;
    if (!text || parse_uri((char *)text, (int)strlen(text), &u) < 0)
        return 0;
    return check_self(&u.host, u.port_no ? u.port_no : SIP_PORT, u.proto) == 1;
}

static gboolean on_term(gpointer loop)
{
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
}

void kmsilo_engine_main(void)
{
    GMainContext *ctx = g_main_context_new();
    g_main_context_push_thread_default(ctx);
    sends = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    if (!kmsilo.store_threads_set) {
        /* as many commits in parallel as msilo would run (one per SIP
         * worker, each on its own connection): a worker waits for its
         * commit, so with fewer the workers' stores queue behind each other */
        int n = children_no + (tcp_disable ? 0 : tcp_children_no);
        msilo_config_set_int(kmsilo.cfg, "store_threads", n < 1 ? 1 : n > 64 ? 64 : n);
    }
    if (!msilo_config_get_string(kmsilo.cfg, "instance_id")) {
        /* stable across restarts, so that a restart after a crash takes back
         * its in-flight messages at once instead of after lease_time; two
         * Kamailio on one host and one table need an engine_param each */
        char *id = g_strdup_printf("msilo_lib@%s", g_get_host_name());
        msilo_config_set(kmsilo.cfg, "instance_id", id);
        g_free(id);
    }
    proxy_is_self = uri_is_self(msilo_config_get_string(kmsilo.cfg, "outbound_proxy"));

    msilo_store_t *store = NULL;
    unsigned flags = kmsilo.migrate ? MSILO_STORE_OPEN_MIGRATE : 0;
    int rc;
    while ((rc = msilo_store_open(NULL, kmsilo.cfg, flags, &store)) < 0) {
        LM_ERR("msilo_lib: cannot open the store (retrying in 1 s): %s: %s\n",
               msilo_strerror(rc), msilo_error_detail());
        if (rc == MSILO_EINVAL || rc == MSILO_ENOTSUP)
            exit(-1);
        sleep(1);
    }
    rc = msilo_engine_new(&engine, kmsilo.cfg, store, &tm_transport, ctx);
    if (rc < 0) {
        LM_ERR("msilo_lib: cannot start the engine: %s: %s\n", msilo_strerror(rc),
               msilo_error_detail());
        exit(-1);
    }
    msilo_engine_set_log(engine, engine_log, NULL);

    GMainLoop *loop = g_main_loop_new(ctx, FALSE);
    GSource *s = g_unix_fd_source_new(kmsilo.listen_fd, G_IO_IN);
    g_source_set_callback(s, (GSourceFunc)(void (*)(void))accept_ready, ctx, NULL);
    g_source_attach(s, ctx);
    g_source_unref(s);
    s = g_timeout_source_new_seconds(1);
    g_source_set_callback(s, push_stats, NULL, NULL);
    g_source_attach(s, ctx);
    g_source_unref(s);
    s = g_unix_signal_source_new(SIGTERM);
    g_source_set_callback(s, on_term, loop, NULL);
    g_source_attach(s, ctx);
    g_source_unref(s);
    LM_NOTICE("msilo_lib: engine process ready on @%s\n", kmsilo.sock_name);
    g_main_loop_run(loop);
    /* SIGTERM: what was accepted commits (free waits for it), claimed
     * messages go back to the store */
    msilo_engine_free(engine);
    msilo_transport_free(&tm_transport);
    msilo_store_free(store);
    _exit(0);
}
