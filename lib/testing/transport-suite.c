/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The transport conformance suite of libmsilo-testing
 * (<msilo/testing/transport.h>): its SIP peer, a Sofia-SIP NTA agent acting
 * as a UAS on 127.0.0.1, the tests, and msilo_testing_transport_run().
 * Built when the kit has Sofia-SIP; transport-none.c stands in otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

struct peer;
#define SU_ROOT_MAGIC_T struct peer
#define NTA_LEG_MAGIC_T struct peer
#define NTA_INCOMING_MAGIC_T struct peer

#include <sofia-sip/nta.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_glib.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/tport_tag.h>

#include <cmocka.h>

#include <msilo/testing/transport.h>

/* ---- the peer: a UAS on 127.0.0.1 -------------------------------------- */

typedef struct received {
    char *ruri_user;
    char *call_id;
    char *from;     /* From URI */
    char *from_tag; /* NULL when absent */
    char *to;       /* To URI */
    char *content_type;
    GBytes *body;
    GHashTable *headers; /* lower-case name -> value, for extension headers */
    char *date;          /* Date header, if any */
    unsigned cseq;
    char *cseq_method;
    char *max_forwards;
} received_t;

typedef struct peer {
    su_root_t *root;
    nta_agent_t *agent;
    nta_leg_t *leg;
    char udp_port[16], tcp_port[16];
    unsigned closed_port;
    GPtrArray *received;  /* received_t*, in arrival order */
    GPtrArray *kept;      /* nta_incoming_t* of "never" requests */
} peer_t;

static void received_free(gpointer p)
{
    received_t *r = p;
    g_free(r->ruri_user);
    g_free(r->call_id);
    g_free(r->from);
    g_free(r->from_tag);
    g_free(r->to);
    g_free(r->content_type);
    if (r->body)
        g_bytes_unref(r->body);
    g_hash_table_unref(r->headers);
    g_free(r->date);
    g_free(r->cseq_method);
    g_free(r->max_forwards);
    g_free(r);
}

static char *url_dup_string(url_t const *url)
{
    su_home_t home[1] = { SU_HOME_INIT(home) };
    char *s = url_as_string(home, url);
    char *r = g_strdup(s);
    su_home_deinit(home);
    return r;
}

static int peer_request(peer_t *p, nta_leg_t *leg, nta_incoming_t *irq, sip_t const *sip)
{
    received_t *r = g_new0(received_t, 1);
    const char *user = sip->sip_request->rq_url->url_user;
    su_home_t home[1] = { SU_HOME_INIT(home) };

    (void)leg;
    r->headers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    r->ruri_user = g_strdup(user ? user : "");
    r->call_id = g_strdup(sip->sip_call_id ? sip->sip_call_id->i_id : NULL);
    if (sip->sip_from) {
        r->from = url_dup_string(sip->sip_from->a_url);
        r->from_tag = g_strdup(sip->sip_from->a_tag);
    }
    if (sip->sip_to)
        r->to = url_dup_string(sip->sip_to->a_url);
    if (sip->sip_content_type)
        r->content_type = g_strdup(sip_header_as_string(home, (sip_header_t *)sip->sip_content_type));
    if (sip->sip_payload)
        r->body = g_bytes_new(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
    else
        r->body = g_bytes_new(NULL, 0);
    for (sip_unknown_t *u = sip->sip_unknown; u; u = u->un_next)
        g_hash_table_insert(r->headers, g_ascii_strdown(u->un_name, -1), g_strdup(u->un_value));
    if (sip->sip_date)
        r->date = g_strdup(sip_header_as_string(home, (sip_header_t *)sip->sip_date));
    if (sip->sip_cseq) {
        r->cseq = sip->sip_cseq->cs_seq;
        r->cseq_method = g_strdup(sip->sip_cseq->cs_method_name);
    }
    if (sip->sip_max_forwards)
        r->max_forwards = g_strdup(sip_header_as_string(home, (sip_header_t *)sip->sip_max_forwards));
    su_home_deinit(home);
    g_ptr_array_add(p->received, r);

    if (g_strcmp0(r->ruri_user, "ok") == 0)
        return 200;
    if (g_strcmp0(r->ruri_user, "busy") == 0)
        return 486;
    if (g_strcmp0(r->ruri_user, "error") == 0)
        return 500;
    if (g_strcmp0(r->ruri_user, "never") == 0) {
        g_ptr_array_add(p->kept, irq);
        return 0; /* keep it, never answer */
    }
    return 404;
}

static unsigned closed_port(void)
{
    /* A port nothing listens on: bind, read the port, close. */
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    unsigned port = 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* ---- suite state ------------------------------------------------------- */

typedef struct suite {
    const msilo_testing_transport_suite_t *f;
    peer_t peer;
    GSource *source;
} suite_t;

static suite_t S;

typedef struct tcase {
    const char *proto; /* "udp" / "tcp" */
} tcase_t;

static const tcase_t UDP = { "udp" }, TCP = { "tcp" };

static bool in_send; /* true while the suite is inside msilo_transport_send() */

typedef struct outcome {
    int calls;
    int status;
    int inside; /* calls made from inside send() */
} outcome_t;

static void done_cb(int status, void *data)
{
    outcome_t *o = data;
    o->calls++;
    o->status = status;
    if (in_send)
        o->inside++;
}

static int send_one(msilo_transport_t *t, const msilo_outgoing_t *msg, outcome_t *o)
{
    int r;
    in_send = true;
    r = msilo_transport_send(t, msg, done_cb, o);
    in_send = false;
    return r;
}

static gboolean expire_cb(gpointer p)
{
    *(gboolean *)p = TRUE;
    return G_SOURCE_REMOVE;
}

/* Iterates the default context until cond(arg) or @ms elapsed. */
static bool wait_for(bool (*cond)(void *), void *arg, unsigned ms)
{
    gboolean expired = FALSE;
    guint id = g_timeout_add(ms, expire_cb, &expired);
    while (!(cond && cond(arg)) && !expired)
        g_main_context_iteration(NULL, TRUE);
    if (!expired)
        g_source_remove(id);
    return cond ? cond(arg) : true;
}

static bool all_done(void *arg)
{
    GPtrArray *a = arg;
    for (guint i = 0; i < a->len; i++)
        if (((outcome_t *)a->pdata[i])->calls == 0)
            return false;
    return true;
}

static bool one_done(void *arg)
{
    return ((outcome_t *)arg)->calls > 0;
}

static char *peer_uri(const char *user, const char *proto)
{
    const char *port = strcmp(proto, "tcp") == 0 ? S.peer.tcp_port : S.peer.udp_port;
    return g_strdup_printf("sip:%s@127.0.0.1:%s;transport=%s", user, port, proto);
}

static msilo_outgoing_t basic_msg(const char *ruri)
{
    msilo_outgoing_t m = {
        .ruri = ruri,
        .from = "sip:sender@127.0.0.1",
        .to = "sip:receiver@127.0.0.1",
        .content_type = "text/plain",
        .body = "hello",
        .body_len = 5,
    };
    return m;
}

static msilo_transport_t *open_transport(unsigned guard_ms)
{
    msilo_transport_t *t = NULL;
    msilo_testing_transport_env_t env = {
        .size = sizeof env,
        .context = g_main_context_default(),
        .su_root = S.peer.root,
        .guard_ms = guard_ms,
    };
    assert_int_equal(S.f->open(S.f->data, &env, &t), 0);
    assert_non_null(t);
    assert_int_equal(msilo_transport_check(t), 0);
    return t;
}

static void free_transport(msilo_transport_t *t)
{
    if (S.f->close)
        S.f->close(S.f->data, t);
    else
        msilo_transport_free(t);
}

static void close_transport(msilo_transport_t *t)
{
    if (S.f->in_flight)
        assert_int_equal(S.f->in_flight(S.f->data, t), 0);
    free_transport(t);
}

static received_t *last_received(void)
{
    assert_true(S.peer.received->len > 0);
    return S.peer.received->pdata[S.peer.received->len - 1];
}

/* Sends one message to @user and waits for its outcome. */
static outcome_t send_and_wait(msilo_transport_t *t, const char *user, const char *proto,
                               unsigned ms)
{
    outcome_t o = { 0 };
    g_autofree char *ruri = peer_uri(user, proto);
    msilo_outgoing_t m = basic_msg(ruri);
    assert_int_equal(send_one(t, &m, &o), 0);
    assert_int_equal(o.calls, 0); /* never from inside send() */
    assert_true(wait_for(one_done, &o, ms));
    return o;
}

/* ---- tests --------------------------------------------------------------- */

static void test_2xx_once(void **state)
{
    const tcase_t *tc = *state;
    msilo_transport_t *t = open_transport(0);
    guint before = S.peer.received->len;
    outcome_t o = send_and_wait(t, "ok", tc->proto, 5000);

    assert_int_equal(o.status, 200);
    assert_int_equal(o.inside, 0);
    wait_for(NULL, NULL, 200); /* nothing more may arrive */
    assert_int_equal(o.calls, 1);
    assert_int_equal(S.peer.received->len, before + 1);
    assert_string_equal(last_received()->cseq_method, "MESSAGE");
    close_transport(t);
}

static void test_failure_statuses(void **state)
{
    const tcase_t *tc = *state;
    msilo_transport_t *t = open_transport(0);
    outcome_t o = send_and_wait(t, "busy", tc->proto, 5000);
    assert_int_equal(o.status, 486);
    o = send_and_wait(t, "error", tc->proto, 5000);
    assert_int_equal(o.status, 500);
    o = send_and_wait(t, "nobody", tc->proto, 5000);
    assert_int_equal(o.status, 404);
    wait_for(NULL, NULL, 100);
    assert_int_equal(o.calls, 1);
    close_transport(t);
}

static void test_timeout(void **state)
{
    const tcase_t *tc = *state;
    msilo_transport_t *t = open_transport(0);
    gint64 start = g_get_monotonic_time();
    outcome_t o = send_and_wait(t, "never", tc->proto,
                                MSILO_TESTING_TRANSPORT_TIMEOUT_MS + 2000);
    assert_int_equal(o.status, MSILO_ETIMEDOUT);
    assert_true(g_get_monotonic_time() - start <
                (MSILO_TESTING_TRANSPORT_TIMEOUT_MS + 1000) * 1000);
    wait_for(NULL, NULL, 100);
    assert_int_equal(o.calls, 1);
    close_transport(t);
}

static void test_guard_timeout(void **state)
{
    const tcase_t *tc = *state;
    msilo_transport_t *t = open_transport(300);
    gint64 start = g_get_monotonic_time();
    outcome_t o = send_and_wait(t, "never", tc->proto, 2000);
    gint64 took = g_get_monotonic_time() - start;
    assert_int_equal(o.status, MSILO_ETIMEDOUT);
    assert_true(took >= 250 * 1000);
    assert_true(took < 1500 * 1000);
    /* A late answer can no longer reach done(): wait past the agent's timer. */
    wait_for(NULL, NULL, 200);
    assert_int_equal(o.calls, 1);
    close_transport(t);
}

static void test_refused(void **state)
{
    const tcase_t *tc = *state;
    msilo_transport_t *t = open_transport(0);
    outcome_t o = { 0 };
    g_autofree char *ruri = g_strdup_printf("sip:ok@127.0.0.1:%u;transport=%s",
                                            S.peer.closed_port, tc->proto);
    msilo_outgoing_t m = basic_msg(ruri);
    int r = send_one(t, &m, &o);
    /* Either an error now, or ETRANSPORT later; never a silent success. */
    if (r == 0) {
        assert_int_equal(o.calls, 0);
        assert_true(wait_for(one_done, &o, 5000));
        assert_int_equal(o.status, MSILO_ETRANSPORT);
        wait_for(NULL, NULL, 100);
        assert_int_equal(o.calls, 1);
    } else {
        assert_int_equal(r, MSILO_ETRANSPORT);
        wait_for(NULL, NULL, 100);
        assert_int_equal(o.calls, 0);
    }
    close_transport(t);
}

static void test_body_bytes(void **state)
{
    const tcase_t *tc = *state;
    msilo_transport_t *t = open_transport(0);
    g_autofree char *ruri = peer_uri("ok", tc->proto);
    /* NUL bytes, bytes that are not UTF-8, CR/LF, and a size over the UDP
     * MTU (1300) so that large bodies are covered on both transports. */
    size_t sizes[] = { 1, 300, 4000 };
    for (size_t k = 0; k < G_N_ELEMENTS(sizes); k++) {
        size_t n = sizes[k];
        guint8 *body = g_malloc(n);
        outcome_t o = { 0 };
        for (size_t i = 0; i < n; i++)
            body[i] = (guint8)((i * 7 + k) % 256);
        body[0] = 0;
        if (n > 2)
            body[n / 2] = 0, body[n - 1] = 0xff;
        msilo_outgoing_t m = basic_msg(ruri);
        m.content_type = "application/octet-stream";
        m.body = body;
        m.body_len = n;
        assert_int_equal(send_one(t, &m, &o), 0);
        assert_true(wait_for(one_done, &o, 5000));
        assert_int_equal(o.status, 200);
        received_t *r = last_received();
        gsize got_len = 0;
        const guint8 *got = g_bytes_get_data(r->body, &got_len);
        assert_int_equal(got_len, n);
        assert_memory_equal(got, body, n);
        assert_string_equal(r->content_type, "application/octet-stream");
        g_free(body);
    }
    close_transport(t);
}

static void test_headers(void **state)
{
    const tcase_t *tc = *state;
    msilo_transport_t *t = open_transport(0);
    g_autofree char *ruri = peer_uri("ok", tc->proto);
    outcome_t o = { 0 };
    msilo_outgoing_t m = basic_msg(ruri);
    m.from = "\"Sender\" <sip:sender@127.0.0.1>;tag=stale";
    m.to = "<sip:receiver@127.0.0.1>";
    m.content_type = "text/plain; charset=UTF-8";
    m.call_id = "fixed-call-id-42@msilo";
    m.headers = "X-Msilo-Id: 42\r\n"
                "Date: Fri, 27 Nov 2026 02:01:01 GMT\r\n"
                "P-Asserted-Identity: <sip:alice@127.0.0.1>\r\n";
    assert_int_equal(send_one(t, &m, &o), 0);
    assert_true(wait_for(one_done, &o, 5000));
    assert_int_equal(o.status, 200);

    received_t *r = last_received();
    assert_string_equal(r->call_id, "fixed-call-id-42@msilo");
    assert_string_equal(r->from, "sip:sender@127.0.0.1");
    assert_non_null(r->from_tag);
    assert_string_not_equal(r->from_tag, "stale"); /* a fresh tag */
    assert_string_equal(r->to, "sip:receiver@127.0.0.1");
    assert_non_null(strstr(r->content_type, "text/plain"));
    assert_non_null(strstr(r->content_type, "charset=UTF-8"));
    assert_string_equal(g_hash_table_lookup(r->headers, "x-msilo-id"), "42");
    assert_non_null(g_hash_table_lookup(r->headers, "p-asserted-identity"));
    assert_non_null(strstr(g_hash_table_lookup(r->headers, "p-asserted-identity"),
                           "sip:alice@127.0.0.1"));
    assert_non_null(r->date);
    assert_non_null(strstr(r->date, "27 Nov 2026 02:01:01 GMT"));
    assert_non_null(r->max_forwards);

    /* Without call_id a fresh one each time; the same From tag is never reused. */
    char *tag1 = g_strdup(r->from_tag);
    m.call_id = NULL;
    o = (outcome_t){ 0 };
    assert_int_equal(send_one(t, &m, &o), 0);
    assert_true(wait_for(one_done, &o, 5000));
    r = last_received();
    assert_string_not_equal(r->call_id, "fixed-call-id-42@msilo");
    assert_string_not_equal(r->from_tag, tag1);
    g_free(tag1);
    close_transport(t);
}

static void test_next_hop(void **state)
{
    const tcase_t *tc = *state;
    msilo_transport_t *t = open_transport(0);
    /* The Request-URI points at a closed loopback port; only the next hop
     * (the peer) can answer 200. */
    g_autofree char *ruri = g_strdup_printf("sip:ok@127.0.0.1:%u", S.peer.closed_port);
    g_autofree char *hop = g_strdup_printf("sip:127.0.0.1:%s;transport=%s",
                                           strcmp(tc->proto, "tcp") == 0 ? S.peer.tcp_port
                                                                         : S.peer.udp_port,
                                           tc->proto);
    outcome_t o = { 0 };
    msilo_outgoing_t m = basic_msg(ruri);
    m.next_hop = hop;
    assert_int_equal(send_one(t, &m, &o), 0);
    assert_true(wait_for(one_done, &o, 5000));
    assert_int_equal(o.status, 200);
    assert_string_equal(last_received()->ruri_user, "ok");
    close_transport(t);
}

static void test_free_cancels(void **state)
{
    const tcase_t *tc = *state;
    msilo_transport_t *t = open_transport(0);
    g_autofree char *never = peer_uri("never", tc->proto);
    outcome_t o[3] = { { 0 } };
    guint before = S.peer.received->len;
    for (int i = 0; i < 3; i++) {
        msilo_outgoing_t m = basic_msg(never);
        assert_int_equal(send_one(t, &m, &o[i]), 0);
    }
    /* Let the requests reach the peer, so they are really in flight. */
    for (int i = 0; i < 50 && S.peer.received->len < before + 3; i++)
        wait_for(NULL, NULL, 20);
    if (S.f->in_flight)
        assert_int_equal(S.f->in_flight(S.f->data, t), 3);
    free_transport(t); /* free() cancels them, synchronously */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].status, MSILO_ECANCELLED);
        assert_int_equal(o[i].inside, 0);
    }
    wait_for(NULL, NULL, 300);
    for (int i = 0; i < 3; i++)
        assert_int_equal(o[i].calls, 1);
}

static void test_error_never_calls_done(void **state)
{
    const tcase_t *tc = *state;
    msilo_transport_t *t = open_transport(0);
    outcome_t o = { 0 };
    msilo_outgoing_t m = basic_msg("this is not a uri");
    assert_true(send_one(t, &m, &o) < 0);
    m = basic_msg(NULL); /* missing R-URI */
    assert_int_equal(send_one(t, &m, &o), MSILO_EINVAL);
    g_autofree char *ruri = peer_uri("ok", tc->proto);
    m = basic_msg(ruri);
    m.from = NULL;
    assert_int_equal(send_one(t, &m, &o), MSILO_EINVAL);
    m = basic_msg(ruri);
    m.body = NULL;
    m.body_len = 3;
    assert_int_equal(send_one(t, &m, &o), MSILO_EINVAL);
    wait_for(NULL, NULL, 100);
    assert_int_equal(o.calls, 0);
    close_transport(t);
}

static void test_many_in_flight(void **state)
{
    const tcase_t *tc = *state;
    msilo_transport_t *t = open_transport(0);
    g_autofree char *ok = peer_uri("ok", tc->proto);
    g_autofree char *busy = peer_uri("busy", tc->proto);
    enum { N = 60 };
    outcome_t o[N] = { { 0 } };
    g_autoptr(GPtrArray) all = g_ptr_array_new();
    for (int i = 0; i < N; i++) {
        msilo_outgoing_t m = basic_msg(i % 3 ? ok : busy);
        assert_int_equal(send_one(t, &m, &o[i]), 0);
        g_ptr_array_add(all, &o[i]);
    }
    assert_true(wait_for(all_done, all, 10000));
    wait_for(NULL, NULL, 100);
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].calls, 1);
        assert_int_equal(o[i].inside, 0);
        assert_int_equal(o[i].status, i % 3 ? 200 : 486);
    }
    close_transport(t);
}

/* ---- setup ---------------------------------------------------------------- */

static int suite_setup(void **state)
{
    (void)state;
    memset(&S.peer, 0, sizeof(S.peer));
    if (su_init() != 0)
        return -1;
    S.peer.root = su_glib_root_create(&S.peer);
    if (!S.peer.root)
        return -1;
    S.source = su_glib_root_gsource(S.peer.root);
    g_source_attach(S.source, NULL);
    S.peer.received = g_ptr_array_new_with_free_func(received_free);
    S.peer.kept = g_ptr_array_new();
    S.peer.agent = nta_agent_create(S.peer.root, URL_STRING_MAKE("sip:127.0.0.1:*"), NULL,
                                    NULL, NTATAG_UA(1), NTATAG_USE_NAPTR(0),
                                    NTATAG_USE_SRV(0), NTATAG_UDP_MTU(65535),
                                    NTATAG_SERVER_RPORT(1), TAG_END());
    if (!S.peer.agent)
        return -1;
    S.peer.leg = nta_leg_tcreate(S.peer.agent, peer_request, &S.peer, NTATAG_NO_DIALOG(1),
                                 TAG_END());
    if (!S.peer.leg)
        return -1;
    for (sip_via_t const *v = nta_agent_via(S.peer.agent); v; v = v->v_next) {
        if (g_ascii_strcasecmp(v->v_protocol, sip_transport_udp) == 0)
            g_strlcpy(S.peer.udp_port, v->v_port ? v->v_port : "5060", sizeof(S.peer.udp_port));
        else if (g_ascii_strcasecmp(v->v_protocol, sip_transport_tcp) == 0)
            g_strlcpy(S.peer.tcp_port, v->v_port ? v->v_port : "5060", sizeof(S.peer.tcp_port));
    }
    if (!S.peer.udp_port[0] || !S.peer.tcp_port[0])
        return -1;
    S.peer.closed_port = closed_port();
    return S.peer.closed_port ? 0 : -1;
}

static int suite_teardown(void **state)
{
    (void)state;
    for (guint i = 0; i < S.peer.kept->len; i++)
        nta_incoming_destroy(S.peer.kept->pdata[i]);
    g_ptr_array_free(S.peer.kept, TRUE);
    if (S.peer.leg)
        nta_leg_destroy(S.peer.leg);
    if (S.peer.agent)
        nta_agent_destroy(S.peer.agent);
    g_ptr_array_free(S.peer.received, TRUE);
    g_source_destroy(S.source);
    su_root_destroy(S.peer.root);
    su_deinit();
    return 0;
}

#define T(fn)                                                                       \
    { #fn "/udp", fn, NULL, NULL, (void *)&UDP }, { #fn "/tcp", fn, NULL, NULL, (void *)&TCP }

int msilo_testing_transport_run(const msilo_testing_transport_suite_t *suite)
{
    const struct CMUnitTest tests[] = {
        T(test_2xx_once),      T(test_failure_statuses),      T(test_timeout),
        T(test_guard_timeout), T(test_refused),               T(test_body_bytes),
        T(test_headers),       T(test_next_hop),              T(test_free_cancels),
        T(test_error_never_calls_done), T(test_many_in_flight),
    };
    if (!suite || !suite->open)
        return MSILO_EINVAL;
    if (suite->version < 1 || suite->version > MSILO_TESTING_TRANSPORT_SUITE_VERSION)
        return MSILO_EVERSION;
    S.f = suite;
    int failed = cmocka_run_group_tests_name(suite->name ? suite->name : "transport", tests,
                                             suite_setup, suite_teardown);
    S.f = NULL;
    return failed;
}
