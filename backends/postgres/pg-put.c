/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The PostgreSQL store's put: a batch in one pipeline and one commit,
 * idempotent by store key (pg-sql.c's Q_PUT), retried once on a fresh
 * connection when its outcome is unknown and every message has a key.
 */
#include "pg-internal.h"

#include <string.h>

/* Reads every result of a pipeline up to its sync. *ret_put receives the
 * put's result. */
static int pipeline_collect(pg_store *s, int nqueries, PGresult **ret_put)
{
    int err = 0;
    PGresult *put = NULL;
    for (int q = 0; q < nqueries; q++) {
        PGresult *r;
        gboolean got = FALSE;
        while ((r = PQgetResult(s->conn)) != NULL) {
            got = TRUE;
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_TUPLES_OK && q == nqueries - 1 && !put) {
                put = r;
                continue;
            }
            if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && !err)
                err = pg_result_fail(s->conn, r, "storing messages");
            else
                PQclear(r);
        }
        if (!got && !err) {
            /* No result at all: the connection died under us. */
            err = pg_fail(MSILO_ESTORE, "storing messages: %s", PQerrorMessage(s->conn));
            break;
        }
        if (PQstatus(s->conn) != CONNECTION_OK)
            break;
    }
    /* The sync's own result closes the pipeline's implicit transaction. */
    if (PQstatus(s->conn) == CONNECTION_OK) {
        PGresult *r = PQgetResult(s->conn);
        if (PQresultStatus(r) != PGRES_PIPELINE_SYNC && !err)
            err = pg_result_fail(s->conn, r, "committing messages");
        else
            PQclear(r);
    } else if (!err) {
        err = pg_fail(MSILO_ESTORE, "storing messages: %s", PQerrorMessage(s->conn));
    }
    if (err) {
        PQclear(put);
        return err;
    }
    if (!put)
        return pg_fail(MSILO_ESTORE, "storing messages: no result");
    *ret_put = put;
    return 0;
}

/* The ids of the messages of @p msgs whose put result had none (their key
 * was committed by a concurrent put, or came twice in the batch): read after
 * the commit, so that they are visible. */
static int ids_by_key(pg_store *s, msilo_message_t *const *msgs, const GArray *which)
{
    pg_params_t p = { 0 };
    pg_array_t a;
    pg_array_init(&a, PG_OID_TEXT, which->len);
    for (guint i = 0; i < which->len; i++)
        pg_array_text(&a, msgs[g_array_index(which, size_t, i)]->store_key);
    pg_params_array(&p, &a);
    PGresult *r = NULL;
    int e = pg_run(s, Q_BY_KEY, &p, "reading the ids of stored keys", &r);
    if (e)
        return e;
    for (int row = 0; row < PQntuples(r); row++) {
        const char *k = PQgetvalue(r, row, 0);
        for (guint i = 0; i < which->len; i++) {
            msilo_message_t *m = msgs[g_array_index(which, size_t, i)];
            if (strcmp(m->store_key, k) == 0)
                m->id = pg_get_int8(r, row, 1);
        }
    }
    PQclear(r);
    return 0;
}

static int put_once(pg_store *s, msilo_message_t *const *msgs, size_t n, int64_t max_per_owner,
                    int *results)
{
    int e = pg_ensure_conn(s);
    if (!e && max_per_owner > 0)
        e = pg_prepare(s, Q_LOCK);
    query_t put_q = max_per_owner > 0 ? Q_PUT : Q_PUT_FREE;
    if (!e)
        e = pg_prepare(s, put_q);
    if (e)
        return e;

    pg_params_t lock = { 0 };
    pg_params_t put = { 0 };
    pg_array_t a[15];
    static const unsigned types[15] = { PG_OID_TEXT, PG_OID_TEXT, PG_OID_TEXT,  PG_OID_TEXT,
                                        PG_OID_TEXT, PG_OID_BYTEA, PG_OID_TEXT, PG_OID_TEXT,
                                        PG_OID_INT8, PG_OID_INT8,  PG_OID_INT8, PG_OID_INT8,
                                        PG_OID_INT8, PG_OID_TEXT,  PG_OID_TEXT };
    for (int i = 0; i < 15; i++)
        pg_array_init(&a[i], types[i], n);
    for (size_t i = 0; i < n; i++) {
        const msilo_message_t *m = msgs[i];
        pg_array_text(&a[0], m->user);
        pg_array_text(&a[1], m->domain);
        pg_array_text(&a[2], pg_nn(s, PG_COL_FROM, m->src, ""));
        pg_array_text(&a[3], pg_nn(s, PG_COL_TO, m->dst, ""));
        pg_array_text(&a[4], pg_nn(s, PG_COL_CTYPE, m->ctype, "text/plain"));
        /* Always a value (possibly empty): OpenSIPS' body may be NOT NULL. */
        pg_array_bytes(&a[5], m->body, m->body_len);
        pg_array_text(&a[6], pg_nn(s, PG_COL_HDRS, m->extra_hdrs, ""));
        pg_array_text(&a[7], pg_nn(s, PG_COL_CALLID, m->callid, ""));
        pg_array_int8(&a[8], pg_clamp_to(s, PG_COL_INC, m->inc_time));
        pg_array_int8(&a[9], pg_clamp_to(s, PG_COL_EXP, m->exp_time));
        pg_array_int8(&a[10], pg_clamp_to(s, PG_COL_SND, m->snd_time));
        pg_array_int8(&a[11], pg_clamp_to(s, PG_COL_ATTEMPTS, (int64_t)m->attempts));
        pg_array_int8(&a[12], pg_clamp_to(s, PG_COL_NEXT_TRY, m->next_try));
        pg_array_text(&a[13], m->store_key);
        pg_array_text(&a[14], m->device);
    }
    int nq = 0;
    if (max_per_owner > 0) {
        pg_array_t u, d;
        pg_array_init(&u, PG_OID_TEXT, n);
        pg_array_init(&d, PG_OID_TEXT, n);
        for (size_t i = 0; i < n; i++) {
            pg_array_text(&u, msgs[i]->user);
            pg_array_text(&d, msgs[i]->domain);
        }
        pg_params_text(&lock, s->table_name);
        pg_params_array(&lock, &u);
        pg_params_array(&lock, &d);
    }
    for (int i = 0; i < 13; i++)
        pg_params_array(&put, &a[i]);
    pg_params_int8(&put, max_per_owner);
    pg_params_text(&put, s->seq_oid);
    pg_params_array(&put, &a[13]);
    pg_params_array(&put, &a[14]);

    /* One round trip and one commit: the lock and the insert go out in a
     * pipeline that ends with one sync, which makes them one implicit
     * transaction. The lock is its own statement so that the insert's
     * snapshot (taken when it starts) sees every row committed by a writer
     * that held the lock before us. */
    char name[32];
    gboolean sent = PQenterPipelineMode(s->conn) == 1;
    if (sent && max_per_owner > 0) {
        sent = PQsendQueryPrepared(s->conn, pg_stmt_name(Q_LOCK, name), lock.n, lock.values,
                                   lock.lengths, lock.formats, 0) == 1;
        nq++;
    }
    if (sent) {
        sent = PQsendQueryPrepared(s->conn, pg_stmt_name(put_q, name), put.n, put.values,
                                   put.lengths, put.formats, 1) == 1;
        nq++;
    }
    if (sent)
        sent = PQpipelineSync(s->conn) == 1;
    pg_params_clear(&lock);
    pg_params_clear(&put);

    PGresult *r = NULL;
    if (!sent)
        e = pg_fail(MSILO_ESTORE, "storing messages: %s", PQerrorMessage(s->conn));
    else
        e = pipeline_collect(s, nq, &r);
    if (!e && PQexitPipelineMode(s->conn) != 1)
        e = pg_fail(MSILO_ESTORE, "leaving pipeline mode: %s", PQerrorMessage(s->conn));
    if (e) {
        PQclear(r);
        pg_after_failure(s);
        return e;
    }

    /* Committed: now, and only now, write the results. */
    GArray *lookup = NULL;
    for (size_t i = 0; i < n; i++)
        results[i] = MSILO_EFULL;
    for (int row = 0; row < PQntuples(r); row++) {
        int64_t ord = pg_get_int8(r, row, 0);
        if (ord < 1 || (uint64_t)ord > n)
            continue;
        size_t i = (size_t)ord - 1;
        results[i] = 0;
        msgs[i]->id = PQgetisnull(r, row, 1) ? 0 : pg_get_int8(r, row, 1);
        if (!msgs[i]->id && msgs[i]->store_key) {
            if (!lookup)
                lookup = g_array_new(FALSE, FALSE, sizeof(size_t));
            g_array_append_val(lookup, i);
        }
    }
    PQclear(r);
    /* Stored, whatever this says: a failure leaves those ids at 0 (and a
     * message delivered meanwhile is not found either). */
    if (lookup) {
        ids_by_key(s, msgs, lookup);
        g_array_unref(lookup);
    }
    return 0;
}

/* A put whose connection was lost may have committed or not: that outcome
 * is unknown. When every message has a store key it is safe to run again
 * (what committed is found by its key, not stored twice), so it is, once, on
 * a fresh connection, as pg_run() does for the other statements. */
int pg_put(msilo_store_t *base, msilo_message_t *const *msgs, size_t n,
                  int64_t max_per_owner, int *results)
{
    pg_store *s = (pg_store *)base;
    if (n > G_MAXINT32)
        return pg_fail(MSILO_EINVAL, "batch too large");
    gboolean had_conn = s->conn != NULL;
    int e = put_once(s, msgs, n, max_per_owner, results);
    if (e != MSILO_ESTORE || !had_conn || s->conn)
        return e;
    for (size_t i = 0; i < n; i++)
        if (!msgs[i]->store_key)
            return e;
    return put_once(s, msgs, n, max_per_owner, results);
}

