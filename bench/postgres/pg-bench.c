/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Benchmark of the PostgreSQL store against the access pattern of the msilo modules
 * (not a test: it measures, it does not judge).
 *
 *   scripts/pg-test-cluster run -- build/bench/postgres/pg-bench [options]
 *
 * Store path:   msilo_store_put() in batches  vs  one INSERT per transaction.
 * Delivery:     claim + one DELETE ... = ANY per owner  vs  one DELETE per message.
 * Both sides use the same table, in the same run, with the server's default
 * durability (fsync and synchronous_commit on).
 *
 * This drives the store directly (the engine, which forms the batches from
 * concurrent stores, did not exist yet when it was written): --batch is the
 * number of stores the engine would hand over at once.
 */
#include <glib.h>
#include <libpq-fe.h>
#include <msilo/msilo.h>
#include <msilo/postgres.h>

#include "instant.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gint64 n_msgs = 100000, n_owners = 10000, batch = 100, plain_n = 5000, claim_max = 100;
static gint64 quota = 0;
static gint64 inflight = 64, reg_chunk = 64;
static double plain_store_rate, plain_deliver_rate;
static char *url, *table, *deliver_to;

static double secs(gint64 t0)
{
    return (double)(g_get_monotonic_time() - t0) / 1e6;
}

static msilo_message_t *mk(gint64 i)
{
    msilo_message_t *m = msilo_message_new();
    gint64 o = i % n_owners;
    m->user = g_strdup_printf("user%" G_GINT64_FORMAT, o);
    m->domain = g_strdup("bench.example");
    m->src = g_strdup("sip:sender@example.org");
    m->dst = g_strdup_printf("sip:user%" G_GINT64_FORMAT "@bench.example", o);
    m->ctype = g_strdup("text/plain;charset=UTF-8");
    m->body = g_strdup_printf("message %" G_GINT64_FORMAT " of the benchmark, some text", i);
    m->body_len = strlen(m->body);
    m->callid = g_strdup_printf("%" G_GINT64_FORMAT "@bench", i);
    m->inc_time = 1700000000;
    m->exp_time = 1700000000 + 86400;
    return m;
}

static void die(const char *what, int e)
{
    fprintf(stderr, "%s: %s: %s\n", what, msilo_strerror(e), msilo_error_detail());
    exit(1);
}

static PGresult *exec_or_die(PGconn *c, const char *sql, int n, const char *const *v)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
        exit(1);
    }
    return r;
}

static void count_fail(msilo_engine_t *e, int rc, int64_t id, void *data)
{
    (void)e;
    (void)id;
    if (rc)
        (*(long *)data)++;
}

/* Stores n_msgs through an engine (inflight stores at a time, as concurrent
 * SIP requests would arrive), then registers every owner and lets the engine
 * claim, deliver (instant 200) and delete. The engine runs the store on its
 * worker thread and batches what arrives while a commit is running. */
static void engine_phase(const msilo_pg_options_t *o)
{
    msilo_store_t *s;
    int e = msilo_pg_store_new(&s, o);
    if (e)
        die("open", e);
    msilo_config_t *cfg;
    msilo_config_new(&cfg);
    msilo_config_set_int(cfg, "dump_batch", claim_max);
    if (deliver_to && msilo_config_set(cfg, "deliver_to", deliver_to))
        die("deliver_to", MSILO_EINVAL);
    msilo_transport_t *tr = instant_transport_new();
    msilo_engine_t *eng;
    if ((e = msilo_engine_new(&eng, cfg, s, tr, NULL)))
        die("engine", e);
    long failed = 0;
    gint64 t0 = g_get_monotonic_time();
    for (gint64 i = 0; i < n_msgs; i += inflight) {
        for (gint64 j = i; j < i + inflight && j < n_msgs; j++) {
            msilo_message_t *m = mk(j);
            msilo_request_t r = MSILO_REQUEST_INIT;
            r.ruri = m->dst;
            r.to = m->dst;
            r.from = m->src;
            r.body = m->body;
            r.body_len = m->body_len;
            r.call_id = m->callid;
            if (msilo_engine_store(eng, &r, NULL, count_fail, &failed))
                failed++;
            msilo_message_free(m);
        }
        bench_drain(eng);
    }
    double store_rate = (double)n_msgs / secs(t0);
    t0 = g_get_monotonic_time();
    for (gint64 ow = 0; ow < n_owners; ow += reg_chunk) {
        for (gint64 k = ow; k < ow + reg_chunk && k < n_owners; k++) {
            char *to = g_strdup_printf("sip:user%" G_GINT64_FORMAT "@bench.example", k);
            char *contact = g_strdup_printf("sip:user%" G_GINT64_FORMAT "@127.0.0.1:5090", k);
            msilo_request_t reg = MSILO_REQUEST_INIT;
            reg.to = to;
            reg.contact = contact;
            reg.device = contact; /* one device per owner (every_device) */
            reg.expires = 3600;
            if (msilo_engine_dump(eng, &reg, NULL, 0, NULL, NULL))
                failed++;
            g_free(to);
            g_free(contact);
        }
        bench_drain(eng);
    }
    double dump_rate = (double)msilo_engine_stat(eng, MSILO_STAT_DUMPED_MESSAGES) / secs(t0);
    int64_t left = -1;
    msilo_store_count(s, NULL, NULL, &left);
    printf("engine:   store, %-4" G_GINT64_FORMAT " in flight      %10.0f msg/s   ratio %.1fx vs plain INSERT\n",
           inflight, store_rate, store_rate / plain_store_rate);
    printf("          dump (claim+send+ack)        %10.0f msg/s   ratio %.1fx vs plain DELETE"
           "  (delivered %llu, left %lld, errors %ld)\n",
           dump_rate, dump_rate / plain_deliver_rate,
           (unsigned long long)msilo_engine_stat(eng, MSILO_STAT_DUMPED_MESSAGES), (long long)left,
           failed);
    msilo_engine_free(eng);
    msilo_transport_free(tr);
    msilo_store_free(s);
    msilo_config_free(cfg);
}

int main(int argc, char **argv)
{
    GOptionEntry entries[] = {
        { "messages", 'n', 0, G_OPTION_ARG_INT64, &n_msgs, "messages stored by the store (100000)", "N" },
        { "owners", 'o', 0, G_OPTION_ARG_INT64, &n_owners, "owners (10000)", "N" },
        { "batch", 'b', 0, G_OPTION_ARG_INT64, &batch, "messages per put (100)", "N" },
        { "plain", 'p', 0, G_OPTION_ARG_INT64, &plain_n, "messages for the plain loops (5000)", "N" },
        { "inflight", 'i', 0, G_OPTION_ARG_INT64, &inflight, "engine: stores in flight (64, as sipp -l 64)", "N" },
        { "quota", 'q', 0, G_OPTION_ARG_INT64, &quota, "max_per_owner for put (0 = none)", "N" },
        { "db-url", 0, 0, G_OPTION_ARG_STRING, &url, "database (default $MSILO_TEST_PG_URL)", "URL" },
        { "table", 0, 0, G_OPTION_ARG_STRING, &table, "table (default msilo_bench)", "T" },
        { "registers", 'r', 0, G_OPTION_ARG_INT64, &reg_chunk, "engine: REGISTERs at a time (64)", "N" },
        { "deliver-to", 0, 0, G_OPTION_ARG_STRING, &deliver_to, "engine: deliver_to (first)", "first|every_device" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *ctx = g_option_context_new("- PostgreSQL store benchmark");
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *err = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "%s\n", err->message);
        return 2;
    }
    g_option_context_free(ctx);
    if (!url && getenv("MSILO_TEST_PG_URL"))
        url = g_strdup(getenv("MSILO_TEST_PG_URL"));
    if (!url) {
        fprintf(stderr, "no database: --db-url or MSILO_TEST_PG_URL\n");
        return 2;
    }
    if (!table)
        table = g_strdup("msilo_bench");
    if (n_msgs < 1 || n_owners < 1 || batch < 1 || plain_n < 1)
        return 2;

    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "%s", PQerrorMessage(c));
        return 1;
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    char *tq = PQescapeIdentifier(c, table, strlen(table));
    /* CASCADE: the per-device tables refer to it (their foreign keys go) */
    char *sql = g_strdup_printf("DROP TABLE IF EXISTS %s CASCADE", tq);
    PQclear(exec_or_die(c, sql, 0, NULL));
    g_free(sql);

    msilo_pg_options_t *o;
    msilo_pg_options_new(&o);
    msilo_pg_options_set(o, "db_url", url);
    msilo_pg_options_set(o, "db_table", table);
    int e = msilo_pg_migrate(o, 0, NULL);
    if (e)
        die("migrate", e);
    msilo_store_t *s;
    if ((e = msilo_pg_store_new(&s, o)))
        die("open", e);
    char *v = NULL;
    PGresult *r = exec_or_die(c, "SELECT current_setting('fsync') || '/' || "
                                 "current_setting('synchronous_commit')", 0, NULL);
    v = g_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    printf("pg-bench: %" G_GINT64_FORMAT " messages, %" G_GINT64_FORMAT " owners, batch %"
           G_GINT64_FORMAT ", quota %" G_GINT64_FORMAT ", plain loops %" G_GINT64_FORMAT
           " messages, fsync/synchronous_commit %s\n",
           n_msgs, n_owners, batch, quota, plain_n, v);
    g_free(v);

    /* --- plain store loop: what the msilo modules do per MESSAGE --- */
    char *ins = g_strdup_printf(
        "INSERT INTO %s (src_addr, dst_addr, username, domain, body, ctype, exp_time, inc_time, "
        "snd_time, callid) VALUES ($1, $2, $3, $4, $5::bytea, $6, $7, $8, 0, $9)",
        tq);
    gint64 t0 = g_get_monotonic_time();
    for (gint64 i = 0; i < plain_n; i++) {
        msilo_message_t *m = mk(n_msgs + i);
        char exp[32], inc[32];
        g_snprintf(exp, sizeof exp, "%" G_GINT64_FORMAT, m->exp_time);
        g_snprintf(inc, sizeof inc, "%" G_GINT64_FORMAT, m->inc_time);
        const char *p[9] = { m->src, m->dst, m->user, m->domain, m->body, m->ctype, exp, inc,
                             m->callid };
        PQclear(exec_or_die(c, ins, 9, p));
        msilo_message_free(m);
    }
    double plain_store = (double)plain_n / secs(t0);
    plain_store_rate = plain_store;
    g_free(ins);

    /* --- the store, batched --- */
    msilo_message_t **msgs = g_new(msilo_message_t *, (gsize)batch);
    int *res = g_new(int, (gsize)batch);
    t0 = g_get_monotonic_time();
    for (gint64 i = 0; i < n_msgs; i += batch) {
        gint64 k = MIN(batch, n_msgs - i);
        for (gint64 j = 0; j < k; j++)
            msgs[j] = mk(i + j);
        if ((e = msilo_store_put(s, msgs, (size_t)k, quota, res)))
            die("put", e);
        for (gint64 j = 0; j < k; j++)
            msilo_message_free(msgs[j]);
    }
    double store_rate = (double)n_msgs / secs(t0);
    PQclear(exec_or_die(c, "VACUUM ANALYZE", 0, NULL));

    /* --- plain delivery loop: one DELETE per delivered message --- */
    /* The plain loop's rows have the smallest ids: deliver those. */
    sql = g_strdup_printf("SELECT id FROM %s ORDER BY id LIMIT %" G_GINT64_FORMAT, tq, plain_n);
    r = exec_or_die(c, sql, 0, NULL);
    g_free(sql);
    char *del = g_strdup_printf("DELETE FROM %s WHERE id = $1", tq);
    int nplain = PQntuples(r);
    t0 = g_get_monotonic_time();
    for (int i = 0; i < nplain; i++) {
        const char *p[1] = { PQgetvalue(r, i, 0) };
        PQclear(exec_or_die(c, del, 1, p));
    }
    double plain_deliver = (double)nplain / secs(t0);
    plain_deliver_rate = plain_deliver;
    PQclear(r);
    g_free(del);

    /* --- delivery through the store: claim per owner, ack with one DELETE ... = ANY ---
     * First half of the owners: each owner's acks in their own DELETE (one
     * delivery at a time). Second half: acks of deliveries that complete
     * together go out as one DELETE of up to --batch ids, as the engine's
     * worker batches them. */
    gint64 delivered[2] = { 0, 0 };
    double deliver_rate[2];
    GArray *pending = g_array_new(FALSE, FALSE, sizeof(int64_t));
    for (int mode = 0; mode < 2; mode++) {
        gint64 first = mode == 0 ? 0 : n_owners / 2, last = mode == 0 ? n_owners / 2 : n_owners;
        t0 = g_get_monotonic_time();
        for (gint64 ow = first; ow < last; ow++) {
            char *user = g_strdup_printf("user%" G_GINT64_FORMAT, ow);
            for (;;) {
                msilo_store_claim_t cl = { .user = user, .domain = "bench.example",
                                           .now = 1700000000, .max_next_try = INT64_MAX,
                                           .lease_owner = "bench", .lease_until = 1700000030,
                                           .max = (size_t)claim_max };
                msilo_message_t **got;
                size_t n;
                if ((e = msilo_store_claim(s, &cl, &got, &n)))
                    die("claim", e);
                for (size_t i = 0; i < n; i++)
                    g_array_append_val(pending, got[i]->id);
                delivered[mode] += (gint64)n;
                msilo_message_array_free(got, n);
                gboolean last_owner = ow == last - 1;
                if (pending->len && (mode == 0 || pending->len >= (guint)batch || last_owner)) {
                    if ((e = msilo_store_remove(s, (int64_t *)(void *)pending->data,
                                                pending->len, NULL)))
                        die("remove", e);
                    g_array_set_size(pending, 0);
                }
                if (n < (size_t)claim_max)
                    break;
            }
            g_free(user);
        }
        deliver_rate[mode] = (double)delivered[mode] / secs(t0);
    }
    g_array_free(pending, TRUE);

    printf("store:    plain INSERT per transaction %10.0f msg/s\n", plain_store);
    printf("          msilo_store_put, batch %-6" G_GINT64_FORMAT " %10.0f msg/s   ratio %.1fx\n",
           batch, store_rate, store_rate / plain_store);
    printf("delivery: plain DELETE per message     %10.0f msg/s\n", plain_deliver);
    printf("          claim + ack per owner        %10.0f msg/s   ratio %.1fx  (%" G_GINT64_FORMAT
           " messages)\n",
           deliver_rate[0], deliver_rate[0] / plain_deliver, delivered[0]);
    printf("          claim + acks batched by %-4" G_GINT64_FORMAT " %10.0f msg/s   ratio %.1fx  (%"
           G_GINT64_FORMAT " messages)\n",
           batch, deliver_rate[1], deliver_rate[1] / plain_deliver, delivered[1]);

    /* --- the same through the engine: what a server does --- */
    sql = g_strdup_printf("TRUNCATE %s CASCADE", tq);
    PQclear(exec_or_die(c, sql, 0, NULL));
    g_free(sql);
    PQclear(exec_or_die(c, "CHECKPOINT", 0, NULL));
    engine_phase(o);

    sql = g_strdup_printf("DROP TABLE %s CASCADE", tq);
    PQclear(exec_or_die(c, sql, 0, NULL));
    g_free(sql);
    PQfreemem(tq);
    g_free(msgs);
    g_free(res);
    msilo_store_free(s);
    msilo_pg_options_free(o);
    PQfinish(c);
    g_free(url);
    g_free(table);
    return 0;
}
