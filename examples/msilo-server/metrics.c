/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Statistics in the Prometheus text format on a loopback HTTP port
 * ([server] metrics = 127.0.0.1:9464), served by libsoup 3 on the server's
 * GLib main loop: GET /metrics. Loopback only, so it needs no access control.
 */
#include "server.h"

#include <libsoup/soup.h>
#include <string.h>

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
    char *text = server_metrics_text(data);
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
    soup_server_message_set_response(msg, "text/plain; version=0.0.4; charset=utf-8",
                                     SOUP_MEMORY_TAKE, text, strlen(text));
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
    g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(addr, port);
    s->metrics = soup_server_new("server-header", "msilo-server", NULL);
    soup_server_add_handler(s->metrics, "/metrics", handle_metrics, s, NULL);
    if (!soup_server_listen(s->metrics, sa, 0, error)) {
        g_clear_object(&s->metrics);
        return false;
    }
    return true;
}

void server_metrics_stop(server_t *s)
{
    if (!s->metrics)
        return;
    soup_server_disconnect(s->metrics);
    g_clear_object(&s->metrics);
}
