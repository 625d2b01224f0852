/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The PostgreSQL store: the msilo_store_t methods on one libpq connection
 * (the SQL text of its statements is built in pg-sql.c, the put is in
 * pg-put.c). The connection is made lazily when the database is down at
 * open, and remade after it is lost, to whichever host of a multi-host
 * db_url libpq picks (target_session_attrs).
 *
 * Every statement is prepared once per connection with quoted identifiers
 * (PQescapeIdentifier) and takes every value as a parameter; arrays go in
 * PostgreSQL's binary array format so that a batch is one statement whatever
 * its size. Results come back in binary (bodies byte-exact, integers cast to
 * int8 in the SQL so one decoder fits a 32-bit Kamailio column and ours).
 */
#include "pg-internal.h"
#include "sql-rows.h"
#include "../../lib/tsan.h"

#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Back-off between failed reconnects. */
#define BACKOFF_MIN_US (100 * G_TIME_SPAN_MILLISECOND)
#define BACKOFF_MAX_US (5 * G_TIME_SPAN_SECOND)


/* Columns read into a message, in this order (see row_to_message). */
enum { R_ID, R_USER, R_HOST, R_FROM, R_TO, R_CTYPE, R_BODY, R_HDRS, R_CALLID, R_INC, R_EXP,
       R_SND, R_ATTEMPTS, R_NEXT_TRY, R_DEVICE };

/* ---- connection management ---- */

/* s->conn_lock; lib/tsan.h: ThreadSanitizer does not see GMutex */
static void conn_lock(pg_store *s)
{
    g_mutex_lock(&s->conn_lock);
    msilo_tsan_acquire(&s->conn_lock);
}

static void conn_unlock(pg_store *s)
{
    msilo_tsan_release(&s->conn_lock);
    g_mutex_unlock(&s->conn_lock);
}

/* Makes @conn (may be NULL) the store's connection, under the lock. */
static void set_conn(pg_store *s, PGconn *conn)
{
    conn_lock(s);
    if (s->conn)
        PQfinish(s->conn);
    if (s->sock >= 0)
        close(s->sock);
    s->conn = conn;
    s->sock = conn && PQsocket(conn) >= 0 ? fcntl(PQsocket(conn), F_DUPFD_CLOEXEC, 0) : -1;
    conn_unlock(s);
}

static void drop_conn(pg_store *s)
{
    set_conn(s, NULL);
    s->prepared = 0;
}

/* After a failed statement: a dead connection is dropped (the next call
 * reconnects); a live one is brought back to idle. */
void pg_after_failure(pg_store *s)
{
    if (!s->conn)
        return;
    if (PQstatus(s->conn) != CONNECTION_OK) {
        drop_conn(s);
        return;
    }
    if (PQpipelineStatus(s->conn) != PQ_PIPELINE_OFF && PQexitPipelineMode(s->conn) != 1) {
        drop_conn(s);
        return;
    }
    if (PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(s->conn, "ROLLBACK");
        gboolean ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok || PQtransactionStatus(s->conn) != PQTRANS_IDLE)
            drop_conn(s);
    }
}

/* A server that shut down or restarted since our last call has sent a
 * FATAL message and closed the socket. Between our calls the connection is
 * idle and the server has nothing to say (we never LISTEN; a rare
 * ParameterStatus after a configuration reload only costs a reconnect), so a
 * readable socket means "gone": reconnecting then, before sending anything,
 * lets even a put succeed across a restart. One poll(), no round trip. */
static gboolean conn_suspect(PGconn *conn)
{
    struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };
    if (pfd.fd < 0)
        return TRUE;
    int r = poll(&pfd, 1, 0);
    return r != 0; /* readable, hung up, or poll failed */
}

static int fail_interrupted(void)
{
    return pg_fail(MSILO_ESTORE, "the PostgreSQL store was interrupted (msilo_store_interrupt()): "
                                 "it takes no more calls");
}

static int prepare_table(pg_store *s);

int pg_ensure_conn(pg_store *s)
{
    if (G_UNLIKELY(atomic_load_explicit(&s->interrupted, memory_order_relaxed)))
        return fail_interrupted();
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK && !conn_suspect(s->conn))
        return 0;
    drop_conn(s);
    gint64 now = g_get_monotonic_time();
    if (now < s->reconnect_at)
        return pg_fail(MSILO_ESTORE, "PostgreSQL unreachable; next reconnect in %" G_GINT64_FORMAT
                       " ms", (s->reconnect_at - now) / 1000);
    int err;
    PGconn *conn = pg_connect(s->opts->url, &err);
    set_conn(s, conn);
    /* interrupted while connecting (which cannot be cut short): the
     * interrupt found no socket; one after set_conn() shuts this one down */
    if (conn && atomic_load_explicit(&s->interrupted, memory_order_relaxed)) {
        drop_conn(s);
        err = fail_interrupted();
    }
    if (!s->conn) {
        /* The first reconnect after a lost connection is immediate; only
         * repeated failures wait, doubling. */
        s->backoff = s->backoff ? MIN(s->backoff * 2, BACKOFF_MAX_US) : BACKOFF_MIN_US;
        s->reconnect_at = g_get_monotonic_time() + s->backoff;
        return err == MSILO_ECONFIG ? err : MSILO_ESTORE;
    }
    s->backoff = 0;
    s->reconnect_at = 0;
    /* opened while the database was down: the table is looked at on the
     * first connection; a table that is absent there fails this call (and
     * the next ones, until it is created) with MSILO_ECONFIG */
    if (!s->ready && (err = prepare_table(s)) != 0) {
        drop_conn(s);
        s->backoff = BACKOFF_MIN_US;
        s->reconnect_at = g_get_monotonic_time() + s->backoff;
        return err;
    }
    return 0;
}

const char *pg_stmt_name(query_t q, char buf[32])
{
    g_snprintf(buf, 32, "msilo_q%d", (int)q);
    return buf;
}

int pg_prepare(pg_store *s, query_t q)
{
    if (s->prepared & (1u << q))
        return 0;
    char name[32];
    PGresult *r = PQprepare(s->conn, pg_stmt_name(q, name), s->sql[q], 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        int e = pg_result_fail(s->conn, r, "preparing a statement");
        pg_after_failure(s);
        return e;
    }
    PQclear(r);
    s->prepared |= 1u << q;
    return 0;
}

/* Runs prepared statement @p q (binary results) once. */
static int run_once(pg_store *s, query_t q, const pg_params_t *p, const char *what,
                    PGresult **ret_res)
{
    int e = pg_ensure_conn(s);
    if (!e)
        e = pg_prepare(s, q);
    if (e)
        return e;
    char name[32];
    PGresult *r = PQexecPrepared(s->conn, pg_stmt_name(q, name), p->n, p->values, p->lengths,
                                 p->formats, 1);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        e = pg_result_fail(s->conn, r, what);
        pg_after_failure(s);
        return e;
    }
    *ret_res = r;
    return 0;
}

/* Runs prepared statement @p q; on success *ret_res holds the result
 * (PQclear it). Consumes @p p.
 *
 * A connection that was fine at the previous call may have been closed since
 * (server restart, idle timeout in a proxy): libpq only finds out when it
 * uses it. Every statement that goes through here is safe to run twice
 * (reads; deletes and updates by id or owner; a claim whose first run might
 * have committed only leaves those rows leased until lease_until), so such a
 * failure is retried once on a fresh connection. put does not come here: a
 * batch whose commit was lost in transit is run again only when every
 * message has a store key (pg-put.c). */
int pg_run(pg_store *s, query_t q, pg_params_t *p, const char *what, PGresult **ret_res)
{
    gboolean had_conn = s->conn != NULL;
    int e = run_once(s, q, p, what, ret_res);
    if (e == MSILO_ESTORE && had_conn && !s->conn)
        e = run_once(s, q, p, what, ret_res);
    pg_params_clear(p);
    return e;
}

static size_t cmd_tuples(PGresult *r)
{
    return (size_t)g_ascii_strtoull(PQcmdTuples(r), NULL, 10);
}

/* ---- values ---- */

/* A 32-bit column (the INTEGER times of the msilo modules' tables) cannot hold every int64: store
 * the nearest value it can, which for a far expiry means "2038". */
int64_t pg_clamp_to(const pg_store *s, int col, int64_t v)
{
    unsigned t = s->info[col].type;
    if (t == PG_OID_INT4)
        return CLAMP(v, G_MININT32, G_MAXINT32);
    if (t == PG_OID_INT2)
        return CLAMP(v, G_MININT16, G_MAXINT16);
    return v;
}

/* What put writes for @p v into column @p col (see sql_not_null()). */
const char *pg_nn(const pg_store *s, int col, const char *v, const char *subst)
{
    return sql_not_null(v, s->info[col].notnull, subst);
}

/* @p empty_is_null: "" reads as NULL. For extra headers and Call-ID an
 * empty value means none (Kamailio writes '' for "no headers"); for the URIs
 * only where the column is NOT NULL, since there "" is how NULL was stored
 * (see pg_nn()). */
static char *get_str(const PGresult *r, int row, int rcol, gboolean empty_is_null)
{
    if (PQgetisnull(r, row, rcol))
        return NULL;
    int len = PQgetlength(r, row, rcol);
    if (len == 0 && empty_is_null)
        return NULL;
    return g_strndup(PQgetvalue(r, row, rcol), (gsize)len);
}

static msilo_message_t *row_to_message(const pg_store *s, const PGresult *r, int row)
{
    msilo_message_t *m = msilo_message_new();
    m->id = pg_get_int8(r, row, R_ID);
    m->user = get_str(r, row, R_USER, FALSE);
    m->domain = get_str(r, row, R_HOST, FALSE);
    if (!m->user)
        m->user = g_strdup("");
    if (!m->domain)
        m->domain = g_strdup("");
    m->src = get_str(r, row, R_FROM, s->info[PG_COL_FROM].notnull);
    m->dst = get_str(r, row, R_TO, s->info[PG_COL_TO].notnull);
    m->ctype = get_str(r, row, R_CTYPE, FALSE);
    if (!PQgetisnull(r, row, R_BODY) && PQgetlength(r, row, R_BODY) > 0) {
        m->body_len = (size_t)PQgetlength(r, row, R_BODY);
        m->body = g_memdup2(PQgetvalue(r, row, R_BODY), m->body_len);
    }
    m->extra_hdrs = get_str(r, row, R_HDRS, TRUE);
    m->callid = get_str(r, row, R_CALLID, TRUE);
    m->inc_time = pg_get_int8(r, row, R_INC);
    m->exp_time = pg_get_int8(r, row, R_EXP);
    m->snd_time = pg_get_int8(r, row, R_SND);
    int64_t att = pg_get_int8(r, row, R_ATTEMPTS);
    m->attempts = (uint32_t)CLAMP(att, 0, (int64_t)G_MAXUINT32);
    m->next_try = pg_get_int8(r, row, R_NEXT_TRY);
    m->device = get_str(r, row, R_DEVICE, TRUE);
    return m;
}

/* Turns every row into a message, sorted by id (UPDATE ... RETURNING has no
 * defined order). */
void pg_rows_to_messages(const pg_store *s, const PGresult *r, msilo_message_t ***ret_msgs,
                         size_t *ret_n)
{
    int n = PQntuples(r);
    if (n <= 0) {
        *ret_msgs = NULL;
        *ret_n = 0;
        return;
    }
    msilo_message_t **v = g_new(msilo_message_t *, (gsize)n);
    for (int i = 0; i < n; i++)
        v[i] = row_to_message(s, r, i);
    sql_sort_by_id(v, (size_t)n);
    *ret_msgs = v;
    *ret_n = (size_t)n;
}

/* ---- methods ---- */

static int pg_claim(msilo_store_t *base, const msilo_store_claim_t *c,
                    msilo_message_t ***ret_msgs, size_t *ret_n)
{
    pg_store *s = (pg_store *)base;
    if (c->device)
        return pg_devices_claim(s, c, ret_msgs, ret_n);
    pg_params_t p = { 0 };
    pg_params_text(&p, c->lease_owner);
    pg_params_int8(&p, c->lease_until);
    pg_params_text(&p, c->reminders ? NULL : c->user);
    pg_params_text(&p, c->reminders ? NULL : c->domain);
    pg_params_int8(&p, c->now);
    pg_params_int8(&p, c->max_next_try);
    pg_params_int8(&p, sql_limit(c->max));
    PGresult *r = NULL;
    int e = pg_run(s, c->reminders ? Q_CLAIM_REMINDERS : Q_CLAIM_OWNER, &p, "claiming messages", &r);
    if (e)
        return e;
    pg_rows_to_messages(s, r, ret_msgs, ret_n);
    PQclear(r);
    return 0;
}

static int pg_remove(msilo_store_t *base, const int64_t *ids, size_t n, size_t *ret_deleted)
{
    pg_store *s = (pg_store *)base;
    pg_params_t p = { 0 };
    pg_array_t a;
    pg_array_init(&a, PG_OID_INT8, n);
    for (size_t i = 0; i < n; i++)
        pg_array_int8(&a, ids[i]);
    pg_params_array(&p, &a);
    PGresult *r = NULL;
    int e = pg_run(s, Q_REMOVE, &p, "deleting messages", &r);
    if (e)
        return e;
    if (ret_deleted)
        *ret_deleted = cmd_tuples(r);
    PQclear(r);
    return 0;
}

static int pg_release(msilo_store_t *base, const msilo_store_release_t *items, size_t n,
                      size_t item_size)
{
    pg_store *s = (pg_store *)base;
    for (size_t i = 0; i < n; i++) /* any item of a device: the statement for both kinds */
        if (MSILO_STORE_RELEASE_ITEM(items, item_size, i)->device)
            return pg_devices_release(s, items, n, item_size);
    pg_params_t p = { 0 };
    pg_array_t id, att, nt, clr, own;
    pg_array_init(&own, PG_OID_TEXT, n);
    pg_array_init(&id, PG_OID_INT8, n);
    pg_array_init(&att, PG_OID_INT8, n);
    pg_array_init(&nt, PG_OID_INT8, n);
    pg_array_init(&clr, PG_OID_BOOL, n);
    for (size_t i = 0; i < n; i++) {
        const msilo_store_release_t *it = MSILO_STORE_RELEASE_ITEM(items, item_size, i);
        pg_array_int8(&id, it->id);
        pg_array_int8(&att, pg_clamp_to(s, PG_COL_ATTEMPTS, (int64_t)it->attempts));
        pg_array_int8(&nt, pg_clamp_to(s, PG_COL_NEXT_TRY, it->next_try));
        pg_array_bool(&clr, (it->flags & MSILO_RELEASE_CLEAR_SND_TIME) != 0);
        pg_array_text(&own, it->lease_owner);
    }
    pg_params_array(&p, &id);
    pg_params_array(&p, &att);
    pg_params_array(&p, &nt);
    pg_params_array(&p, &clr);
    pg_params_array(&p, &own);
    PGresult *r = NULL;
    int e = pg_run(s, Q_RELEASE, &p, "releasing messages", &r);
    if (e)
        return e;
    PQclear(r);
    return 0;
}

static int pg_count(msilo_store_t *base, const char *user, const char *domain,
                    int64_t *ret_count)
{
    pg_store *s = (pg_store *)base;
    pg_params_t p = { 0 };
    query_t q = Q_COUNT_ALL;
    if (user) {
        q = Q_COUNT_OWNER;
        pg_params_text(&p, user);
        pg_params_text(&p, domain);
    }
    PGresult *r = NULL;
    int e = pg_run(s, q, &p, "counting messages", &r);
    if (e)
        return e;
    *ret_count = PQntuples(r) == 1 ? pg_get_int8(r, 0, 0) : 0;
    PQclear(r);
    return 0;
}

static int pg_expire(msilo_store_t *base, int64_t now, size_t *ret_deleted)
{
    pg_store *s = (pg_store *)base;
    pg_params_t p = { 0 };
    pg_params_int8(&p, now);
    PGresult *r = NULL;
    int e = pg_run(s, Q_EXPIRE, &p, "deleting expired messages", &r);
    if (e)
        return e;
    if (ret_deleted)
        *ret_deleted = cmd_tuples(r);
    PQclear(r);
    return 0;
}

static int pg_list(msilo_store_t *base, const char *user, const char *domain, int64_t after_id,
                   size_t max, msilo_message_t ***ret_msgs, size_t *ret_n)
{
    pg_store *s = (pg_store *)base;
    pg_params_t p = { 0 };
    query_t q = Q_LIST_ALL;
    if (user) {
        q = Q_LIST_OWNER;
        pg_params_text(&p, user);
        pg_params_text(&p, domain);
    }
    pg_params_int8(&p, after_id);
    pg_params_int8(&p, sql_limit(max));
    PGresult *r = NULL;
    int e = pg_run(s, q, &p, "listing messages", &r);
    if (e)
        return e;
    pg_rows_to_messages(s, r, ret_msgs, ret_n);
    PQclear(r);
    return 0;
}

static int pg_get(msilo_store_t *base, int64_t id, msilo_message_t **ret_msg)
{
    pg_store *s = (pg_store *)base;
    pg_params_t p = { 0 };
    pg_params_int8(&p, id);
    PGresult *r = NULL;
    int e = pg_run(s, Q_GET, &p, "reading a message", &r);
    if (e)
        return e;
    if (PQntuples(r) < 1) {
        PQclear(r);
        return pg_fail(MSILO_ENOTFOUND, "no message with id %" G_GINT64_FORMAT, id);
    }
    *ret_msg = row_to_message(s, r, 0);
    PQclear(r);
    return 0;
}

static int pg_purge(msilo_store_t *base, const char *user, const char *domain,
                    size_t *ret_deleted)
{
    pg_store *s = (pg_store *)base;
    pg_params_t p = { 0 };
    pg_params_text(&p, user);
    pg_params_text(&p, domain);
    PGresult *r = NULL;
    int e = pg_run(s, Q_PURGE, &p, "purging messages", &r);
    if (e)
        return e;
    if (ret_deleted)
        *ret_deleted = cmd_tuples(r);
    PQclear(r);
    return 0;
}

static int pg_reset_leases(msilo_store_t *base, const char *lease_owner, size_t *ret_n)
{
    pg_store *s = (pg_store *)base;
    pg_params_t p = { 0 };
    pg_params_text(&p, lease_owner);
    PGresult *r = NULL;
    int e = pg_run(s, Q_RESET, &p, "resetting leases", &r);
    if (e)
        return e;
    size_t n = cmd_tuples(r), per_device = 0;
    PQclear(r);
    /* and the leases of its per-device claims (idempotent: no transaction) */
    e = pg_devices_reset(s, lease_owner, &per_device);
    if (e)
        return e;
    if (ret_n)
        *ret_n = n + per_device;
    return 0;
}

/* Any thread. Shutting the socket down (not closing it: the call blocked on
 * it still owns the PGconn) makes that call's read or write fail at once,
 * libpq reports the connection lost, and the call returns MSILO_ESTORE. */
static void pg_interrupt(msilo_store_t *base)
{
    pg_store *s = (pg_store *)base;
    conn_lock(s);
    atomic_store_explicit(&s->interrupted, 1, memory_order_relaxed);
    if (s->sock >= 0)
        shutdown(s->sock, SHUT_RDWR); /* the socket, whichever descriptor */
    conn_unlock(s);
}

static void pg_free(msilo_store_t *base)
{
    pg_store *s = (pg_store *)base;
    if (!s)
        return;
    drop_conn(s);
    g_mutex_clear(&s->conn_lock);
    for (int i = 0; i < Q_N; i++)
        g_free(s->sql[i]);
    g_free(s->table_name);
    g_free(s->seq_oid);
    msilo_pg_options_free(s->opts);
    g_free(s);
}

static int pg_open_peer(msilo_store_t *base, msilo_store_t **ret)
{
    return msilo_pg_store_new(ret, ((pg_store *)base)->opts);
}

/* ---- construction ---- */

/* On s->conn: checks the table, builds the SQL; s->ready on success. */
static int prepare_table(pg_store *s)
{
    char *table_q = pg_ident(s->conn, s->table_name);
    char *cols_q[PG_COL_N] = { 0 };
    int e = table_q ? 0 : MSILO_ECONFIG;
    for (int c = 0; !e && c < PG_COL_N; c++)
        if (!(cols_q[c] = pg_ident(s->conn, pg_options_col(s->opts, c))))
            e = MSILO_ECONFIG;
    g_free(s->seq_oid);
    s->seq_oid = NULL;
    if (!e)
        e = pg_inspect(s->conn, table_q, s->opts, s->info, &s->seq_oid);
    if (!e) {
        for (int i = 0; i < Q_N; i++)
            g_free(s->sql[i]);
        pg_sql_build(s->sql, table_q, cols_q);
        char *vn = pg_devices_table(s->table_name, "_device");
        char *ln = pg_devices_table(s->table_name, "_delivery");
        char *v = pg_ident(s->conn, vn), *l = pg_ident(s->conn, ln);
        pg_devices_sql_build(s->sql, table_q, v ? v : "\"?\"", l ? l : "\"?\"", cols_q);
        g_free(v);
        g_free(l);
        g_free(vn);
        g_free(ln);
        s->ready = TRUE;
    }
    g_free(table_q);
    for (int c = 0; c < PG_COL_N; c++)
        g_free(cols_q[c]);
    return e;
}

int msilo_pg_store_new(msilo_store_t **ret, const msilo_pg_options_t *opts)
{
    if (!ret || !opts)
        return pg_fail(MSILO_EINVAL, "msilo_pg_store_new: bad arguments");
    if (!opts->url)
        return pg_fail(MSILO_ECONFIG, "db_url is not set");

    pg_store *s = g_new0(pg_store, 1);
    s->base = (msilo_store_t)MSILO_STORE_INIT;
    s->base.name = "postgres";
    /* Blocking and one connection: neither NONBLOCKING nor THREADSAFE. */
    s->base.flags = 0;
    s->base.put = pg_put;
    s->base.claim = pg_claim;
    s->base.remove = pg_remove;
    s->base.release = pg_release;
    s->base.count = pg_count;
    s->base.expire = pg_expire;
    s->base.free = pg_free;
    s->base.list = pg_list;
    s->base.get = pg_get;
    s->base.purge = pg_purge;
    s->base.reset_leases = pg_reset_leases;
    s->base.open_peer = pg_open_peer;
    s->base.interrupt = pg_interrupt;
    s->base.take_expired = pg_take_expired;
    s->base.mark_delivered = pg_mark_delivered;
    s->base.forget_devices = pg_forget_devices;
    g_mutex_init(&s->conn_lock);
    s->sock = -1;
    s->opts = pg_options_copy(opts);
    s->table_name = g_strdup(pg_options_table(opts));

    /* The database may be down (a server starting before PostgreSQL, or
     * during a failover): then the store opens all the same and every call
     * fails with MSILO_ESTORE until a connection succeeds (pg_ensure_conn()).
     * A db_url that does not parse, and a table that is absent or lacks
     * columns on a reachable server, still fail here. */
    int e;
    set_conn(s, pg_connect(s->opts->url, &e));
    if (s->conn) {
        e = prepare_table(s);
    } else if (e == MSILO_ESTORE) {
        e = 0; /* the first call tries again at once; back-off from there */
    }
    if (e) {
        pg_free(&s->base);
        return e;
    }
    *ret = &s->base;
    return 0;
}

int msilo_pg_store_new_url(msilo_store_t **ret, const char *db_url, const char *db_table)
{
    if (!ret || !db_url)
        return pg_fail(MSILO_EINVAL, "msilo_pg_store_new_url: bad arguments");
    msilo_pg_options_t *o;
    int e = msilo_pg_options_new(&o);
    if (!e)
        e = msilo_pg_options_set(o, "db_url", db_url);
    if (!e && db_table)
        e = msilo_pg_options_set(o, "db_table", db_table);
    if (!e)
        e = msilo_pg_store_new(ret, o);
    msilo_pg_options_free(o);
    return e;
}
