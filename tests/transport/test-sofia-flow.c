/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Sofia transport's flow lookup (msilo_sofia_transport_set_flow_lookup()):
 * a send goes to the flow's next hop with its route set, not to the
 * Request-URI; a lookup error fails the send at once (done never runs); a
 * lookup that returns 0 changes nothing. The peer is a UDP socket on
 * 127.0.0.1 that answers 200. */
#include <stdbool.h>
#include <string.h>

#include <gio/gio.h>
#include <glib.h>

#include <sofia-sip/nta.h>
#include <sofia-sip/su_glib.h>
#include <sofia-sip/su_tag.h>

#include <msilo/errors.h>
#include <msilo/sofia.h>

typedef struct fixture {
    su_root_t *root;
    nta_agent_t *agent;
    msilo_transport_t *t;
    GSocket *peer;
    guint16 peer_port;
    guint16 dead_port;   /* a port nobody listens on: the Request-URI's */
    char *next_hop, *route;
    int lookup_result;
    unsigned lookups;
    char *seen_ruri, *seen_to; /* what the lookup was given */
    char *request;             /* what the peer received */
    int status;                /* done's */
    bool done;
} fixture;

static guint16 bound_port(GSocket *s)
{
    GInetSocketAddress *a = G_INET_SOCKET_ADDRESS(g_socket_get_local_address(s, NULL));
    guint16 p = g_inet_socket_address_get_port(a);
    g_object_unref(a);
    return p;
}

static GSocket *udp_socket(void)
{
    GSocket *s = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                              G_SOCKET_PROTOCOL_UDP, NULL);
    GInetAddress *lo = g_inet_address_new_from_string("127.0.0.1");
    GSocketAddress *a = g_inet_socket_address_new(lo, 0);
    g_assert_true(g_socket_bind(s, a, FALSE, NULL));
    g_object_unref(a);
    g_object_unref(lo);
    return s;
}

/* The 200 for @req: its Via, From, To, Call-ID and CSeq lines. */
static char *answer(const char *req)
{
    GString *out = g_string_new("SIP/2.0 200 OK\r\n");
    char **lines = g_strsplit(req, "\r\n", -1);
    for (char **l = lines + 1; *l && **l; l++) {
        if (g_ascii_strncasecmp(*l, "Via:", 4) == 0 || g_ascii_strncasecmp(*l, "From:", 5) == 0 ||
            g_ascii_strncasecmp(*l, "Call-ID:", 8) == 0 || g_ascii_strncasecmp(*l, "CSeq:", 5) == 0)
            g_string_append_printf(out, "%s\r\n", *l);
        else if (g_ascii_strncasecmp(*l, "To:", 3) == 0)
            g_string_append_printf(out, "%s;tag=peer\r\n", *l);
    }
    g_strfreev(lines);
    g_string_append(out, "Content-Length: 0\r\n\r\n");
    return g_string_free(out, FALSE);
}

static gboolean peer_readable(GSocket *s, GIOCondition cond, gpointer data)
{
    fixture *f = data;
    char buf[65536];
    GSocketAddress *from = NULL;
    gssize n = g_socket_receive_from(s, &from, buf, sizeof buf - 1, NULL, NULL);
    (void)cond;
    if (n > 0) {
        buf[n] = '\0';
        if (strncmp(buf, "MESSAGE ", 8) == 0) {
            g_autofree char *ok = answer(buf);
            g_free(f->request);
            f->request = g_strdup(buf);
            g_socket_send_to(s, from, ok, strlen(ok), NULL, NULL);
        }
    }
    if (from)
        g_object_unref(from);
    return G_SOURCE_CONTINUE;
}

static int lookup(const msilo_outgoing_t *msg, msilo_sofia_flow_t *flow, void *data)
{
    fixture *f = data;
    f->lookups++;
    g_free(f->seen_ruri);
    g_free(f->seen_to);
    f->seen_ruri = g_strdup(msg->ruri);
    f->seen_to = g_strdup(msg->to);
    if (f->lookup_result <= 0)
        return f->lookup_result;
    flow->next_hop = f->next_hop;
    flow->route = f->route;
    return 1;
}

static void sent(int status, void *data)
{
    fixture *f = data;
    f->status = status;
    f->done = true;
}

static void setup(fixture *f, gconstpointer user)
{
    GSocket *dead;
    GSource *src;
    (void)user;
    memset(f, 0, sizeof *f);
    f->root = su_glib_root_create(NULL);
    g_assert_nonnull(f->root);
    g_source_attach(su_glib_root_gsource(f->root), NULL);
    /* UDP only: binding UDP and TCP to one free port makes Sofia retry on
     * another port when TCP's is taken, and after that retry this test's
     * root crashed in su_timer_next_expires() (1.12.11, under parallel load) */
    f->agent = nta_agent_create(f->root, URL_STRING_MAKE("sip:127.0.0.1:*;transport=udp"), NULL, NULL,
                                NTATAG_UA(0), NTATAG_USE_NAPTR(0), NTATAG_USE_SRV(0),
                                NTATAG_UDP_MTU(65535), NTATAG_SIP_T1X64(1000), TAG_END());
    g_assert_nonnull(f->agent);
    g_assert_cmpint(msilo_sofia_transport_new(&f->t, f->agent, f->root), ==, 0);
    g_assert_cmpint(msilo_sofia_transport_set_flow_lookup(f->t, lookup, f), ==, 0);
    f->peer = udp_socket();
    f->peer_port = bound_port(f->peer);
    dead = udp_socket();
    f->dead_port = bound_port(dead);
    g_object_unref(dead); /* closed: nobody listens there */
    src = g_socket_create_source(f->peer, G_IO_IN, NULL);
    g_source_set_callback(src, G_SOURCE_FUNC(peer_readable), f, NULL);
    g_source_attach(src, NULL);
    g_source_unref(src);
    f->next_hop = g_strdup_printf("sip:127.0.0.1:%u;transport=udp", f->peer_port);
    f->route = g_strdup_printf("<sip:127.0.0.1:%u;lr>", f->peer_port);
}

static void teardown(fixture *f, gconstpointer user)
{
    (void)user;
    msilo_transport_free(f->t);
    nta_agent_destroy(f->agent);
    g_source_remove_by_user_data(f);
    g_socket_close(f->peer, NULL);
    g_object_unref(f->peer);
    /* detach the root's source first: left attached, the next test's loop
     * would prepare it with the root gone */
    g_source_destroy(su_glib_root_gsource(f->root));
    su_root_destroy(f->root);
    g_free(f->next_hop);
    g_free(f->route);
    g_free(f->seen_ruri);
    g_free(f->seen_to);
    g_free(f->request);
}

static int send_one(fixture *f)
{
    g_autofree char *ruri = g_strdup_printf("sip:bob@127.0.0.1:%u", f->dead_port);
    msilo_outgoing_t out = {
        .ruri = ruri,
        .from = "sip:alice@127.0.0.1",
        .to = "sip:bob@127.0.0.1",
        .content_type = "text/plain",
        .body = "hi",
        .body_len = 2,
    };
    return msilo_transport_send(f->t, &out, sent, f);
}

static void test_next_hop_and_route(fixture *f, gconstpointer user)
{
    (void)user;
    f->lookup_result = 1;
    g_assert_cmpint(send_one(f), ==, 0);
    while (!f->done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_cmpint(f->status, ==, 200);
    g_assert_cmpuint(f->lookups, ==, 1);
    g_assert_true(g_str_has_prefix(f->seen_ruri, "sip:bob@127.0.0.1:"));
    g_assert_cmpstr(f->seen_to, ==, "sip:bob@127.0.0.1");
    g_assert_nonnull(f->request);
    /* the Request-URI stays the contact; the route set is pre-loaded */
    g_autofree char *line = g_strdup_printf("MESSAGE sip:bob@127.0.0.1:%u SIP/2.0\r\n", f->dead_port);
    g_assert_true(g_str_has_prefix(f->request, line));
    g_autofree char *route = g_strdup_printf("\r\nRoute: <sip:127.0.0.1:%u;lr>\r\n", f->peer_port);
    g_assert_nonnull(strstr(f->request, route));
}

static void test_lookup_error_fails_at_once(fixture *f, gconstpointer user)
{
    (void)user;
    f->lookup_result = MSILO_ETRANSPORT;
    g_assert_cmpint(send_one(f), ==, MSILO_ETRANSPORT);
    g_assert_cmpuint(msilo_sofia_transport_in_flight(f->t), ==, 0);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    g_assert_false(f->done); /* an error return: done never runs */
    g_assert_null(f->request);
}

static void test_lookup_zero_changes_nothing(fixture *f, gconstpointer user)
{
    (void)user;
    f->lookup_result = 0;
    /* to the Request-URI, where nobody listens: ICMP, a transport error */
    g_assert_cmpint(send_one(f), ==, 0);
    while (!f->done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_cmpint(f->status, <, 0);
    g_assert_null(f->request);
}

static void test_set_flow_lookup_checks(void)
{
    g_assert_cmpint(msilo_sofia_transport_set_flow_lookup(NULL, lookup, NULL), ==, MSILO_EINVAL);
}

int main(int argc, char **argv)
{
    int r;
    su_init();
    g_test_init(&argc, &argv, NULL);
    g_test_add("/sofia/flow/next-hop-and-route", fixture, NULL, setup, test_next_hop_and_route,
               teardown);
    g_test_add("/sofia/flow/lookup-error", fixture, NULL, setup, test_lookup_error_fails_at_once,
               teardown);
    g_test_add("/sofia/flow/lookup-zero", fixture, NULL, setup, test_lookup_zero_changes_nothing,
               teardown);
    g_test_add_func("/sofia/flow/checks", test_set_flow_lookup_checks);
    r = g_test_run();
    su_deinit();
    return r;
}
