/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The PostgreSQL store when the database is not where it should be: opened
 * while the server is unreachable (every call MSILO_ESTORE, then it works
 * without a new open), a multi-host db_url whose first host is down, and a
 * connection lost while a put commits (idempotent by store key).
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
    /* set: the next bytes the server sends are dropped with both
     * connections (a connection lost after the server committed) */
    gint cut_next_reply;
    gint accepted;
} proxy_t;

typedef struct pipe_ends {
    int fd[2]; /* client, server */
    proxy_t *px;
} pipe_ends;

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
    pipe_ends *pe = data;
    struct pollfd p[2] = { { .fd = pe->fd[0], .events = POLLIN },
                           { .fd = pe->fd[1], .events = POLLIN } };
    char buf[16384];
    for (;;) {
        if (poll(p, 2, -1) < 0)
            break;
        int i = (p[0].revents & (POLLIN | POLLHUP | POLLERR)) ? 0 : 1;
        ssize_t n = read(p[i].fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        if (i == 1 && g_atomic_int_compare_and_exchange(&pe->px->cut_next_reply, 1, 0))
            break; /* the reply is lost, and the connection with it */
        if (write(p[1 - i].fd, buf, (size_t)n) != n)
            break;
    }
    close(pe->fd[0]);
    close(pe->fd[1]);
    g_free(pe);
    return NULL;
}

static gpointer accept_thread(gpointer data)
{
    proxy_t *px = data;
    int c;
    while ((c = accept(px->lsock, NULL, NULL)) >= 0) {
        pipe_ends *pe = g_new(pipe_ends, 1);
        pe->fd[0] = c;
        pe->fd[1] = tcp_connect(px->upstream_port);
        pe->px = px;
        if (pe->fd[1] < 0) {
            close(c);
            g_free(pe);
            continue;
        }
        g_atomic_int_inc(&px->accepted);
        g_thread_unref(g_thread_new("pg-pipe", pipe_thread, pe));
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
static proxy_t px_down, px_up, px_notable, px_dead, px_cut;

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

static char *count_key(PGconn *c, const char *table, const char *key)
{
    char *sql = g_strdup_printf("SELECT count(*) || ' ' || coalesce(min(id), 0) FROM %s "
                                "WHERE msg_key = '%s'", table, key);
    char *v = pgt_value(c, sql);
    g_free(sql);
    return v;
}

/* The connection is lost after the server committed a put and before its
 * answer arrived (the proxy drops the reply; PostgreSQL sends a pipeline's
 * results when it reaches the Sync, i.e. after the commit): the outcome is
 * unknown to the store. With store keys the store runs the put again on a
 * fresh connection, which finds the committed row: success, that row's id,
 * one row. Without a key it must not guess: MSILO_ESTORE, and the row that
 * did commit is there once (no retry stored it twice). */
static void test_commit_outcome_lost(void **state)
{
    (void)state;
    char *table = migrated_table();
    proxy_init(&px_cut, cluster_port());
    proxy_listen(&px_cut);
    char hosts[64];
    g_snprintf(hosts, sizeof(hosts), "127.0.0.1:%d", px_cut.port);
    char *url = url_with_hosts(hosts);
    msilo_store_t *s = open_on(url, table);
    PGconn *direct = pgt_connect();

    /* a first put prepares the statement: the next one is one round trip */
    msilo_message_t *warm = mk("warm");
    warm->store_key = g_strdup("key-warm");
    int res = 42;
    assert_int_equal(msilo_store_put(s, &warm, 1, 0, &res), 0);

    msilo_message_t *m = mk("cut during commit");
    m->store_key = g_strdup("key-cut");
    g_atomic_int_set(&px_cut.cut_next_reply, 1);
    int before = g_atomic_int_get(&px_cut.accepted);
    res = 42;
    assert_int_equal(msilo_store_put(s, &m, 1, 0, &res), 0);
    assert_int_equal(g_atomic_int_get(&px_cut.cut_next_reply), 0); /* it was cut */
    assert_int_equal(g_atomic_int_get(&px_cut.accepted), before + 1); /* and redone */
    assert_int_equal(res, 0);
    char *want = g_strdup_printf("1 %" G_GINT64_FORMAT, m->id);
    char *got = count_key(direct, table, "key-cut");
    assert_string_equal(got, want);
    g_free(got);
    g_free(want);

    /* without a key: not retried */
    msilo_message_t *plain = mk("no key, cut");
    g_atomic_int_set(&px_cut.cut_next_reply, 1);
    res = 42;
    assert_int_equal(msilo_store_put(s, &plain, 1, 0, &res), MSILO_ESTORE);
    assert_int_equal(res, 42);
    char *sql = g_strdup_printf("SELECT count(*) FROM %s WHERE body = 'no key, cut'", table);
    got = pgt_value(direct, sql);
    assert_string_equal(got, "1");
    g_free(got);
    g_free(sql);

    PQfinish(direct);
    msilo_message_free(warm);
    msilo_message_free(m);
    msilo_message_free(plain);
    msilo_store_free(s);
    g_free(url);
    g_free(table);
}

int main(void)
{
    pgt_url(); /* exits 77 when there is no database */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_while_down),
        cmocka_unit_test(test_multi_host),
        cmocka_unit_test(test_commit_outcome_lost),
    };
    return cmocka_run_group_tests_name("postgres-ha", tests, NULL, NULL);
}
