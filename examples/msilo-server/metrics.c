/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Statistics in the Prometheus text format on a loopback HTTP port
 * ([server] metrics = 127.0.0.1:9464): GET /metrics, served by libsoup 3.
 * Loopback only, so it needs no access control.
 *
 * Nothing of it can stall the SIP loop (issue 17): the endpoint runs in a
 * thread of its own with its own GMainContext (GSocketService accepting,
 * SoupServer speaking HTTP on the accepted streams). It never reads the
 * server's state: the SIP loop publishes the text (a GBytes under a mutex)
 * every second, and again when a request asks for it (an idle callback on
 * the SIP loop); a request waits at most 100 ms for that fresh snapshot and
 * is otherwise answered with the last one. At most metrics_max_connections
 * connections are open (beyond, a new one is closed at once) and each is
 * shut down metrics_timeout ms after it was accepted, finished or not, so
 * slow clients that never complete a request hold nothing for long.
 */
#include "server.h"

#include <libsoup/soup.h>
#include <string.h>

#define REFRESH_WAIT_US (100 * G_TIME_SPAN_MILLISECOND)

typedef struct server_metrics {
    gint ref;           /* atomic: the owner, the thread, each pending refresh */
    server_t *s;        /* read on the SIP loop only */
    GMutex lock;        /* guards what follows, up to the thread's own part */
    GCond cond;
    GBytes *snapshot;   /* the latest text */
    guint64 generation; /* bumped by every publish */
    bool stopped;       /* server_metrics_stop() began: refreshes do nothing */
    bool started;       /* the thread is listening, or has failed (error) */
    GError *error;
    gint refresh_pending; /* atomic: a refresh is queued on the SIP loop */
    guint publish_timer;  /* on the SIP loop */
    /* the thread's own */
    GThread *thread;
    GMainContext *ctx;
    GMainLoop *loop;
    GSocketAddress *address;
    unsigned max_connections, timeout_ms;
    unsigned open;      /* connections accepted and not finalized */
    uint64_t refused;   /* closed at once at max_connections */
    int64_t refused_logged;
} server_metrics_t;

static server_metrics_t *metrics_ref(server_metrics_t *m)
{
    g_atomic_int_inc(&m->ref);
    return m;
}

static void metrics_unref(gpointer p)
{
    server_metrics_t *m = p;
    if (!g_atomic_int_dec_and_test(&m->ref))
        return;
    if (m->snapshot)
        g_bytes_unref(m->snapshot);
    g_clear_error(&m->error);
    g_clear_object(&m->address);
    g_mutex_clear(&m->lock);
    g_cond_clear(&m->cond);
    g_free(m);
}

static const char *stat_help(msilo_stat_t st, const char **ret_type)
{
    *ret_type = (st == MSILO_STAT_QUEUED || st == MSILO_STAT_IN_FLIGHT) ? "gauge" : "counter";
    switch (st) {
    case MSILO_STAT_STORED_MESSAGES: return "Messages stored (m_store committed).";
    case MSILO_STAT_DUMPED_MESSAGES: return "Offline messages delivered (2xx).";
    case MSILO_STAT_FAILED_MESSAGES: return "Offline message deliveries that failed.";
    case MSILO_STAT_DUMPED_REMINDERS: return "Reminders delivered (2xx).";
    case MSILO_STAT_FAILED_REMINDERS: return "Reminders that failed.";
    case MSILO_STAT_QUEUED: return "Messages in the store (last counted, adjusted since).";
    case MSILO_STAT_IN_FLIGHT: return "Deliveries waiting for a final response.";
    default: return "libmsilo engine statistic.";
    }
}

static void add_metric(GString *out, const char *name, const char *type, const char *help,
                       uint64_t value)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" G_GUINT64_FORMAT "\n", name,
                           help, name, type, name, value);
}

char *server_metrics_text(server_t *s)
{
    GString *out = g_string_new(NULL);
    for (int i = 0; i < MSILO_STAT_COUNT_; i++) {
        msilo_stat_t st = (msilo_stat_t)i;
        if (st == MSILO_STAT_DELIVERY_LATENCY_US || st == MSILO_STAT_DELIVERIES_TIMED)
            continue; /* exported below as a summary */
        const char *type;
        const char *help = stat_help(st, &type);
        char *name = g_strconcat("msilo_", msilo_stat_name(st),
                                 strcmp(type, "counter") == 0 ? "_total" : "", NULL);
        add_metric(out, name, type, help, msilo_engine_stat(s->engine, st));
        g_free(name);
    }
    uint64_t lat = msilo_engine_stat(s->engine, MSILO_STAT_DELIVERY_LATENCY_US);
    uint64_t n = msilo_engine_stat(s->engine, MSILO_STAT_DELIVERIES_TIMED);
    g_string_append_printf(out,
                           "# HELP msilo_delivery_latency_seconds Time from sending a stored "
                           "message to its final response.\n"
                           "# TYPE msilo_delivery_latency_seconds summary\n"
                           "msilo_delivery_latency_seconds_sum %.6f\n"
                           "msilo_delivery_latency_seconds_count %" G_GUINT64_FORMAT "\n",
                           (double)lat / 1e6, n);
    add_metric(out, "msilo_server_registers_total", "counter", "REGISTER requests.",
               s->n_register);
    add_metric(out, "msilo_server_messages_total", "counter", "MESSAGE requests.", s->n_message);
    add_metric(out, "msilo_server_forwarded_total", "counter",
               "MESSAGEs forwarded to a registered user.", s->n_forwarded);
    add_metric(out, "msilo_server_forward_failed_total", "counter",
               "Forwards that failed and were stored.", s->n_forward_failed);
    add_metric(out, "msilo_server_loops_total", "counter",
               "MESSAGEs that came back unchanged (answered 482).", s->n_loops);
    add_metric(out, "msilo_server_stored_once_total", "counter",
               "Stores of a request that was stored already (answered, not stored again).",
               s->n_stored_once);
    add_metric(out, "msilo_server_transactions_refused_total", "counter",
               "REGISTER/MESSAGE answered 503 statelessly at max_transactions.",
               s->n_transactions_refused);
    add_metric(out, "msilo_server_bindings", "gauge", "Registered contacts.",
               registrar_count(s->registrar));
    return g_string_free(out, FALSE);
}

/* ---- the SIP loop's side ------------------------------------------------------ */

static void publish(server_metrics_t *m)
{
    char *text = server_metrics_text(m->s);
    GBytes *b = g_bytes_new_take(text, strlen(text));
    g_mutex_lock(&m->lock);
    if (m->snapshot)
        g_bytes_unref(m->snapshot);
    m->snapshot = b;
    m->generation++;
    g_cond_broadcast(&m->cond);
    g_mutex_unlock(&m->lock);
}

static gboolean publish_tick(gpointer data)
{
    publish(data);
    return G_SOURCE_CONTINUE;
}

/* An idle callback on the SIP loop, queued by a request (holds a reference). */
static gboolean refresh(gpointer data)
{
    server_metrics_t *m = data;
    g_atomic_int_set(&m->refresh_pending, 0);
    g_mutex_lock(&m->lock);
    bool stopped = m->stopped;
    g_mutex_unlock(&m->lock);
    if (!stopped) /* server_metrics_stop() runs on this loop too: no race on m->s */
        publish(m);
    return G_SOURCE_REMOVE;
}

/* ---- the metrics thread ---------------------------------------------------------- */

/* The freshest snapshot within REFRESH_WAIT_US (g_bytes_unref it). */
static GBytes *current_text(server_metrics_t *m)
{
    g_mutex_lock(&m->lock);
    guint64 gen = m->generation;
    if (g_atomic_int_compare_and_exchange(&m->refresh_pending, 0, 1))
        g_main_context_invoke_full(NULL, G_PRIORITY_DEFAULT, refresh, metrics_ref(m),
                                   metrics_unref);
    gint64 until = g_get_monotonic_time() + REFRESH_WAIT_US;
    while (m->generation == gen && !m->stopped && g_cond_wait_until(&m->cond, &m->lock, until))
        ;
    GBytes *b = g_bytes_ref(m->snapshot);
    g_mutex_unlock(&m->lock);
    return b;
}

static void handle_metrics(SoupServer *server, SoupServerMessage *msg, const char *path,
                           GHashTable *query, gpointer data)
{
    (void)server;
    (void)path;
    (void)query;
    const char *method = soup_server_message_get_method(msg);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        soup_server_message_set_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    g_autoptr(GBytes) text = current_text(data);
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
    soup_server_message_set_response(msg, "text/plain; version=0.0.4; charset=utf-8",
                                     SOUP_MEMORY_COPY, g_bytes_get_data(text, NULL),
                                     g_bytes_get_size(text));
}

static void connection_gone(gpointer data, GObject *where)
{
    (void)where;
    ((server_metrics_t *)data)->open--;
}

/* metrics_timeout after the accept: the connection is shut down, finished
 * or not (libsoup sees the end of the stream and closes it itself). */
static gboolean connection_timeout(gpointer data)
{
    g_autoptr(GSocketConnection) c = g_weak_ref_get(data);
    if (c)
        g_socket_shutdown(g_socket_connection_get_socket(c), TRUE, TRUE, NULL);
    return G_SOURCE_REMOVE;
}

static void weak_ref_free(gpointer data)
{
    g_weak_ref_clear(data);
    g_free(data);
}

static gboolean on_incoming(GSocketService *service, GSocketConnection *c, GObject *source,
                            gpointer data)
{
    server_metrics_t *m = data;
    SoupServer *soup = g_object_get_data(G_OBJECT(service), "soup");
    (void)source;
    if (m->open >= m->max_connections) {
        m->refused++;
        int64_t now = g_get_monotonic_time();
        if (!m->refused_logged || now - m->refused_logged >= 10 * G_USEC_PER_SEC) {
            m->refused_logged = now;
            g_message("metrics: %u connections open (metrics_max_connections): a new one "
                      "closed (%" G_GUINT64_FORMAT " so far)", m->open, m->refused);
        }
        g_io_stream_close(G_IO_STREAM(c), NULL, NULL);
        return TRUE;
    }
    m->open++;
    g_object_weak_ref(G_OBJECT(c), connection_gone, m);
    GWeakRef *w = g_new0(GWeakRef, 1);
    g_weak_ref_init(w, c);
    GSource *t = g_timeout_source_new(m->timeout_ms);
    g_source_set_callback(t, connection_timeout, w, weak_ref_free);
    g_source_attach(t, m->ctx);
    g_source_unref(t);
    g_autoptr(GError) error = NULL;
    g_autoptr(GSocketAddress) local = g_socket_connection_get_local_address(c, NULL);
    g_autoptr(GSocketAddress) remote = g_socket_connection_get_remote_address(c, NULL);
    if (!soup_server_accept_iostream(soup, G_IO_STREAM(c), local, remote, &error))
        g_message("metrics: %s", error->message);
    return TRUE;
}

static gpointer metrics_thread(gpointer data)
{
    server_metrics_t *m = data;
    GError *error = NULL;
    g_main_context_push_thread_default(m->ctx);
    SoupServer *soup = soup_server_new("server-header", "msilo-server", NULL);
    soup_server_add_handler(soup, "/metrics", handle_metrics, m, NULL);
    GSocketService *service = g_socket_service_new();
    g_object_set_data(G_OBJECT(service), "soup", soup);
    bool ok = g_socket_listener_add_address(G_SOCKET_LISTENER(service), m->address,
                                            G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                            NULL, &error);
    if (ok) {
        g_signal_connect(service, "incoming", G_CALLBACK(on_incoming), m);
        g_socket_service_start(service);
    }
    g_mutex_lock(&m->lock);
    m->started = true;
    m->error = error;
    g_cond_broadcast(&m->cond);
    g_mutex_unlock(&m->lock);
    if (ok)
        g_main_loop_run(m->loop);
    g_socket_service_stop(service);
    g_socket_listener_close(G_SOCKET_LISTENER(service));
    g_object_unref(service);
    soup_server_disconnect(soup);
    g_object_unref(soup);
    /* what closing left behind (connection sources, timeouts) */
    while (g_main_context_iteration(m->ctx, FALSE))
        ;
    g_main_context_pop_thread_default(m->ctx);
    metrics_unref(m);
    return NULL;
}

bool server_metrics_start(server_t *s, const char *hostport, GError **error)
{
    g_autofree char *host = NULL;
    guint16 port = 0;
    g_autoptr(GNetworkAddress) parsed =
        G_NETWORK_ADDRESS(g_network_address_parse(hostport, 9464, error));
    if (!parsed)
        return false;
    host = g_strdup(g_network_address_get_hostname(parsed));
    port = g_network_address_get_port(parsed);
    g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(host);
    if (!addr || !g_inet_address_get_is_loopback(addr)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "metrics address '%s' is not a loopback address", hostport);
        return false;
    }
    server_metrics_t *m = g_new0(server_metrics_t, 1);
    m->ref = 1;
    m->s = s;
    g_mutex_init(&m->lock);
    g_cond_init(&m->cond);
    m->address = g_inet_socket_address_new(addr, port);
    m->max_connections = s->opt.metrics_max_connections;
    m->timeout_ms = s->opt.metrics_timeout;
    publish(m); /* a snapshot before the first request */
    m->ctx = g_main_context_new();
    m->loop = g_main_loop_new(m->ctx, FALSE);
    m->thread = g_thread_new("metrics", metrics_thread, metrics_ref(m));
    g_mutex_lock(&m->lock);
    while (!m->started)
        g_cond_wait(&m->cond, &m->lock);
    GError *e = g_steal_pointer(&m->error);
    g_mutex_unlock(&m->lock);
    s->metrics = m;
    if (e) {
        g_propagate_error(error, e);
        server_metrics_stop(s);
        return false;
    }
    m->publish_timer = g_timeout_add_seconds(1, publish_tick, m);
    return true;
}

static gboolean quit_loop(gpointer data)
{
    g_main_loop_quit(data);
    return G_SOURCE_REMOVE;
}

void server_metrics_stop(server_t *s)
{
    server_metrics_t *m = s->metrics;
    if (!m)
        return;
    s->metrics = NULL;
    if (m->publish_timer)
        g_source_remove(m->publish_timer);
    g_mutex_lock(&m->lock);
    m->stopped = true;
    g_cond_broadcast(&m->cond);
    g_mutex_unlock(&m->lock);
    g_main_context_invoke(m->ctx, quit_loop, m->loop);
    g_thread_join(m->thread);
    g_main_loop_unref(m->loop);
    g_main_context_unref(m->ctx);
    m->loop = NULL;
    m->ctx = NULL;
    metrics_unref(m); /* refreshes still queued on the SIP loop hold their own */
}
