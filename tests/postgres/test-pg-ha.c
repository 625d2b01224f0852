/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The PostgreSQL store when the database is not where it should be: opened
 * while the server is unreachable (every call MSILO_ESTORE, then it works
 * without a new open), and a multi-host db_url whose first host is down.
 *
 * "The server comes up" is a loopback proxy in front of the test cluster
 * whose socket is bound but not yet listening (connections are refused, as
 * for a stopped server) until the test calls listen(): the shared cluster is
 * never stopped, so this test runs in parallel with the others.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pg-test-util.h"

#define NOW 1700000000

/* ---- a TCP proxy to the test cluster ---- */

typedef struct proxy {
    int lsock;
    int port;
    int upstream_port;
    GThread *thread;
} proxy_t;

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Copies both ways until either side closes. */
static gpointer pipe_thread(gpointer data)
{
    int *fds = data;
    struct pollfd p[2] = { { .fd = fds[0], .events = POLLIN }, { .fd = fds[1], .events = POLLIN } };
    char buf[16384];
    for (;;) {
        if (poll(p, 2, -1) < 0)
            break;
        int i = (p[0].revents & (POLLIN | POLLHUP | POLLERR)) ? 0 : 1;
        ssize_t n = read(p[i].fd, buf, sizeof(buf));
        if (n <= 0 || write(p[1 - i].fd, buf, (size_t)n) != n)
            break;
    }
    close(fds[0]);
    close(fds[1]);
    g_free(fds);
    return NULL;
}

static gpointer accept_thread(gpointer data)
{
    proxy_t *px = data;
    int c;
    while ((c = accept(px->lsock, NULL, NULL)) >= 0) {
        int *fds = g_new(int, 2);
        fds[0] = c;
        fds[1] = tcp_connect(px->upstream_port);
        if (fds[1] < 0) {
            close(c);
            g_free(fds);
            continue;
        }
        g_thread_unref(g_thread_new("pg-pipe", pipe_thread, fds));
    }
    return NULL;
}

/* Bound to a free port, not listening: connections are refused. */
static void proxy_init(proxy_t *px, int upstream_port)
{
    memset(px, 0, sizeof(*px));
    px->upstream_port = upstream_port;
    px->lsock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(px->lsock, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(px->lsock, (struct sockaddr *)&a, &len), 0);
    px->port = ntohs(a.sin_port);
}

/* "The server is up". */
static void proxy_listen(proxy_t *px)
{
    assert_int_equal(listen(px->lsock, 16), 0);
    px->thread = g_thread_new("pg-proxy", accept_thread, px);
}

/* The test cluster's URL parts. */
static char *url_with_hosts(const char *hosts)
{
    PQconninfoOption *o = PQconninfoParse(pgt_url(), NULL);
    assert_non_null(o);
    const char *user = "postgres", *db = "msilo_test";
    for (PQconninfoOption *i = o; i->keyword; i++) {
        if (strcmp(i->keyword, "user") == 0 && i->val)
            user = i->val;
        if (strcmp(i->keyword, "dbname") == 0 && i->val)
            db = i->val;
    }
    char *url = g_strdup_printf("postgresql://%s@%s/%s?connect_timeout=5", user, hosts, db);
    PQconninfoFree(o);
    return url;
}

static int cluster_port(void)
{
    PQconninfoOption *o = PQconninfoParse(pgt_url(), NULL);
    int port = 5432;
    for (PQconninfoOption *i = o; i->keyword; i++)
        if (strcmp(i->keyword, "port") == 0 && i->val)
            port = atoi(i->val);
    PQconninfoFree(o);
    return port;
}

static char *migrated_table(void)
{
    char *table = pgt_table_name("ha");
    msilo_pg_options_t *o = pgt_options(table);
    assert_int_equal(msilo_pg_migrate(o, 0, NULL), 0);
    msilo_pg_options_free(o);
    return table;
}

static msilo_message_t *mk(const char *body)
{
    msilo_message_t *m = msilo_message_new();
    m->user = g_strdup("hank");
    m->domain = g_strdup("example.com");
    m->dst = g_strdup("sip:hank@example.com");
    m->body_len = strlen(body);
    m->body = g_memdup2(body, m->body_len);
    m->inc_time = NOW;
    m->exp_time = NOW + 3600;
    return m;
}

static msilo_store_t *open_on(const char *url, const char *table)
{
    msilo_store_t *s = NULL;
    int e = msilo_pg_store_new_url(&s, url, table);
    if (e)
        fprintf(stderr, "open %s: %s: %s\n", url, msilo_strerror(e), msilo_error_detail());
    assert_int_equal(e, 0);
    assert_non_null(s);
    return s;
}

/* ---- tests ---- */

/* Opened with the database down: opens; every call fails with MSILO_ESTORE
 * and leaves its results alone. A store opened while down whose first call
 * comes after the server is up just works: the open's failed attempt starts
 * no back-off (the back-off after failed calls is test_outage's, in
 * test-pg.c). Proxies are static: their threads outlive the test. */
static proxy_t px_down, px_up, px_notable, px_dead;

static void test_open_while_down(void **state)
{
    (void)state;
    char *table = migrated_table();
    proxy_init(&px_down, cluster_port());
    char hosts[64];
    g_snprintf(hosts, sizeof(hosts), "127.0.0.1:%d", px_down.port);
    char *url = url_with_hosts(hosts);
    msilo_store_t *s = open_on(url, table);
    int64_t n = -1;
    assert_int_equal(msilo_store_count(s, "hank", "example.com", &n), MSILO_ESTORE);
    assert_int_equal(n, -1);
    fprintf(stderr, "while down: %s\n", msilo_error_detail());
    assert_non_null(strstr(msilo_error_detail(), "PostgreSQL"));
    msilo_message_t *m = mk("while down");
    int res = 42;
    assert_int_equal(msilo_store_put(s, &m, 1, 0, &res), MSILO_ESTORE);
    assert_int_equal(res, 42);
    assert_int_equal(m->id, 0);
    msilo_store_free(s);
    g_free(url);

    proxy_init(&px_up, cluster_port());
    g_snprintf(hosts, sizeof(hosts), "127.0.0.1:%d", px_up.port);
    url = url_with_hosts(hosts);
    s = open_on(url, table);
    proxy_listen(&px_up); /* the database comes up */
    assert_int_equal(msilo_store_put(s, &m, 1, 0, &res), 0);
    assert_int_equal(res, 0);
    assert_true(m->id > 0);
    assert_int_equal(msilo_store_count(s, "hank", "example.com", &n), 0);
    assert_int_equal(n, 1);
    msilo_store_free(s);
    g_free(url);

    /* Opened while down on a table that does not exist: the first call on
     * the reachable server says MSILO_ECONFIG. */
    proxy_init(&px_notable, cluster_port());
    g_snprintf(hosts, sizeof(hosts), "127.0.0.1:%d", px_notable.port);
    s = open_on(url = url_with_hosts(hosts), "ha_no_such_table");
    proxy_listen(&px_notable);
    assert_int_equal(msilo_store_count(s, NULL, NULL, &n), MSILO_ECONFIG);
    assert_non_null(strstr(msilo_error_detail(), "does not exist"));
    msilo_store_free(s);
    g_free(url);

    /* A URL that does not parse still fails the open. */
    msilo_store_t *bad = NULL;
    assert_int_equal(msilo_pg_store_new_url(&bad, "postgresql://[::1", NULL), MSILO_ECONFIG);
    assert_null(bad);
    msilo_message_free(m);
    g_free(table);
}

/* A multi-host URL whose first host refuses connections: libpq goes on to
 * the next one, and target_session_attrs=read-write is accepted. */
static void test_multi_host(void **state)
{
    (void)state;
    char *table = migrated_table();
    proxy_t *dead = &px_dead;
    proxy_init(dead, cluster_port()); /* never listens */
    char hosts[96];
    g_snprintf(hosts, sizeof(hosts), "127.0.0.1:%d,127.0.0.1:%d", dead->port, cluster_port());
    char *base = url_with_hosts(hosts);
    char *url = g_strconcat(base, "&target_session_attrs=read-write", NULL);
    msilo_store_t *s = open_on(url, table);
    msilo_message_t *m = mk("multi-host");
    int res = 42;
    assert_int_equal(msilo_store_put(s, &m, 1, 0, &res), 0);
    assert_int_equal(res, 0);
    int64_t n = 0;
    assert_int_equal(msilo_store_count(s, "hank", "example.com", &n), 0);
    assert_int_equal(n, 1);
    msilo_message_free(m);
    msilo_store_free(s);
    close(dead->lsock);
    g_free(url);
    g_free(base);
    g_free(table);
}

int main(void)
{
    pgt_url(); /* exits 77 when there is no database */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_while_down),
        cmocka_unit_test(test_multi_host),
    };
    return cmocka_run_group_tests_name("postgres-ha", tests, NULL, NULL);
}
