/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SQL text of the PostgreSQL store's statements, built once per store
 * from the quoted table and column names (pg-store.c prepares them on each
 * connection). Every value is a parameter; arrays are PostgreSQL's binary
 * arrays, so that a batch is one statement whatever its size; integers are
 * cast to int8 so that one decoder reads a 32-bit Kamailio column and ours.
 */
#include "pg-internal.h"


static char *build_select_list(char *const q[PG_COL_N], const char *prefix)
{
    const char *p = prefix ? prefix : "";
    return g_strdup_printf("%s%s::int8, %s%s, %s%s, %s%s, %s%s, %s%s, %s%s, %s%s, %s%s, "
                           "%s%s::int8, %s%s::int8, %s%s::int8, %s%s::int8, %s%s::int8, %s%s",
                           p, q[PG_COL_ID], p, q[PG_COL_USER], p, q[PG_COL_HOST], p,
                           q[PG_COL_FROM], p, q[PG_COL_TO], p, q[PG_COL_CTYPE], p,
                           q[PG_COL_BODY], p, q[PG_COL_HDRS], p, q[PG_COL_CALLID], p,
                           q[PG_COL_INC], p, q[PG_COL_EXP], p, q[PG_COL_SND], p,
                           q[PG_COL_ATTEMPTS], p, q[PG_COL_NEXT_TRY], p, q[PG_COL_DEVICE]);
}

void pg_sql_build(char *sql[Q_N], const char *t, char *const q[PG_COL_N])
{
    char *cols = build_select_list(q, NULL);
    char *tcols = build_select_list(q, "m.");

    /* Per-owner advisory locks, taken in key order so that two batches
     * never wait on each other in a cycle. The first key keeps tables (and
     * other applications' single-key locks) apart. */
    /* It also makes the put that follows in the same transaction plan for
     * its parameters (set_config(..., true) lasts to the commit): a generic
     * plan made while the table was empty counts an owner's messages with a
     * sequential scan for ever after (measured: 20 000 scans reading 200 M
     * rows for 20 000 stores, bench/e2e/scale). Only stores with a quota pay
     * the planning. */
    sql[Q_LOCK] = g_strdup(
        "WITH msilo_plan AS MATERIALIZED "
        "(SELECT set_config('plan_cache_mode', 'force_custom_plan', true) AS msilo_pcm) "
        "SELECT pg_advisory_xact_lock(hashtext($1::text), k) FROM msilo_plan, "
        "(SELECT DISTINCT hashtext(u || '@' || d) AS k "
        "FROM unnest($2::text[], $3::text[]) AS t(u, d) ORDER BY 1) AS s");

    /* One statement for the whole batch. "acc" keeps the messages within
     * the quota (existing count + rank in the batch; the count stops at the
     * quota, so a full mailbox costs max_messages index entries per store,
     * not its whole size); its ORDER BY makes
     * nextval() run in batch order, so an owner's ids follow storage order.
     * The CTE is evaluated once, so the ids inserted are the ids returned.
     * The sequence goes by OID: oid to regclass costs nothing per row, a
     * name would be looked up for every row. */
    /*
     * Idempotent puts: "old" is the id already stored under a message's key
     * (committed before this statement): such a message is not stored again,
     * nor counted against the quota, and its row in the result carries that
     * id. A key that a concurrent put commits meanwhile (or that comes twice
     * in the batch) is caught by ON CONFLICT on the unique index: not
     * inserted, it comes back with a NULL id, which pg_put() looks up after
     * the commit.
     */
    sql[Q_PUT] = g_strdup_printf(
        "WITH src0 AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
        "$5::text[], $6::bytea[], $7::text[], $8::text[], $9::int8[], $10::int8[], "
        "$11::int8[], $12::int8[], $13::int8[], $16::text[], $17::text[]) WITH ORDINALITY "
        "AS t(u, d, fr, dst, ct, bd, hd, ci, inc, exp, snd, att, nt, k, dv, ord)), "
        "src AS (SELECT s.*, (SELECT m.%s FROM %s m WHERE s.k IS NOT NULL AND m.%s = s.k) "
        "AS old FROM src0 s), "
        "acc AS (SELECT r.*, nextval($15::oid::regclass) AS new_id FROM "
        "(SELECT src.*, row_number() OVER (PARTITION BY u, d ORDER BY ord) AS rn FROM src "
        "WHERE old IS NULL) r "
        "WHERE $14::int8 <= 0 OR r.rn + (SELECT count(*) FROM (SELECT 1 FROM %s m "
        "WHERE m.%s = r.u AND m.%s = r.d LIMIT $14::int8) AS c) <= $14::int8 ORDER BY r.ord), "
        "ins AS (INSERT INTO %s (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "SELECT new_id, u, d, fr, dst, ct, bd, hd, ci, inc, exp, snd, att, nt, k, dv FROM acc "
        "ON CONFLICT (%s) DO NOTHING RETURNING %s AS id) "
        "SELECT ord::int8, old::int8 FROM src WHERE old IS NOT NULL "
        "UNION ALL SELECT a.ord::int8, i.id::int8 FROM acc a LEFT JOIN ins i ON i.id = a.new_id",
        q[PG_COL_ID], t, q[PG_COL_KEY], t, q[PG_COL_USER], q[PG_COL_HOST], t, q[PG_COL_ID],
        q[PG_COL_USER], q[PG_COL_HOST], q[PG_COL_FROM], q[PG_COL_TO], q[PG_COL_CTYPE],
        q[PG_COL_BODY], q[PG_COL_HDRS], q[PG_COL_CALLID], q[PG_COL_INC], q[PG_COL_EXP],
        q[PG_COL_SND], q[PG_COL_ATTEMPTS], q[PG_COL_NEXT_TRY], q[PG_COL_KEY], q[PG_COL_DEVICE],
        q[PG_COL_KEY], q[PG_COL_ID]);
    /* The put without a quota: no rank in the batch, no count of the
     * mailbox and no read of the key before the insert. A key stored before
     * (or twice in the batch) is caught by ON CONFLICT alone, comes back with
     * a NULL id and is looked up after the commit, as above; that is a retry,
     * rare. Same parameters as Q_PUT ($14, the quota, is 0). */
    sql[Q_PUT_FREE] = g_strdup_printf(
        "WITH src AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
        "$5::text[], $6::bytea[], $7::text[], $8::text[], $9::int8[], $10::int8[], "
        "$11::int8[], $12::int8[], $13::int8[], $16::text[], $17::text[]) WITH ORDINALITY "
        "AS t(u, d, fr, dst, ct, bd, hd, ci, inc, exp, snd, att, nt, k, dv, ord)), "
        "acc AS (SELECT src.*, nextval($15::oid::regclass) AS new_id FROM src "
        "WHERE $14::int8 <= 0 ORDER BY ord), "
        "ins AS (INSERT INTO %s (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "SELECT new_id, u, d, fr, dst, ct, bd, hd, ci, inc, exp, snd, att, nt, k, dv FROM acc "
        "ON CONFLICT (%s) DO NOTHING RETURNING %s AS id) "
        "SELECT a.ord::int8, i.id::int8 FROM acc a LEFT JOIN ins i ON i.id = a.new_id",
        t, q[PG_COL_ID], q[PG_COL_USER], q[PG_COL_HOST], q[PG_COL_FROM], q[PG_COL_TO],
        q[PG_COL_CTYPE], q[PG_COL_BODY], q[PG_COL_HDRS], q[PG_COL_CALLID], q[PG_COL_INC],
        q[PG_COL_EXP], q[PG_COL_SND], q[PG_COL_ATTEMPTS], q[PG_COL_NEXT_TRY], q[PG_COL_KEY],
        q[PG_COL_DEVICE], q[PG_COL_KEY], q[PG_COL_ID]);
    sql[Q_BY_KEY] = g_strdup_printf("SELECT %s, %s::int8 FROM %s WHERE %s = ANY($1::text[])",
                                    q[PG_COL_KEY], q[PG_COL_ID], t, q[PG_COL_KEY]);

    /* Claims: SKIP LOCKED lets two claimers take disjoint rows; a row
     * another claimer leased and committed meanwhile is re-checked against
     * the lease condition on its new version, so it is skipped too.
     *
     * A lease is soft state, so a claim commits asynchronously
     * (synchronous_commit off for this transaction only): a database crash
     * can forget the last leases, which at worst lets another instance
     * deliver a message that is in flight, a duplicate that at-least-once
     * delivery allows anyway. Stores and acknowledgements stay synchronous.
     * Its cost otherwise is one WAL flush per claim, as much as the ack. */
#define CLAIM_FMT                                                                          \
    "WITH msilo_async AS MATERIALIZED "                                                    \
    "(SELECT set_config('synchronous_commit', 'off', true) AS msilo_sc), "                 \
    "c AS (SELECT x.%s FROM %s AS x, msilo_async WHERE %s AND %s > $5::int8 "              \
    "AND %s <= $5::int8 AND %s <= $6::int8 ORDER BY %s LIMIT $7::int8 "                    \
    "FOR UPDATE OF x SKIP LOCKED) "                                                        \
    "UPDATE %s m SET %s = $1::text, %s = $2::int8 FROM c WHERE m.%s = c.%s RETURNING %s"
    char *owner_cond = g_strdup_printf("%s = $3::text AND %s = $4::text AND %s = 0",
                                       q[PG_COL_USER], q[PG_COL_HOST], q[PG_COL_SND]);
    /* "snd <> 0" literally, so the partial index applies; $3/$4 unused but
     * typed so both claims take the same parameters. */
    char *rem_cond = g_strdup_printf("%s <> 0 AND %s <= $5::int8 AND $3::text IS NULL "
                                     "AND $4::text IS NULL",
                                     q[PG_COL_SND], q[PG_COL_SND]);
    /* The owner claim orders by the whole owner index (user, domain, id): with
     * the owner fixed that is id order, and it lets even a generic prepared
     * plan walk the owner's index range instead of the primary key in id
     * order (which filters the whole table: measured 10x slower at 100 000
     * rows). */
    char *owner_order = g_strdup_printf("x.%s, x.%s, x.%s", q[PG_COL_USER], q[PG_COL_HOST],
                                        q[PG_COL_ID]);
    char *id_order = g_strdup_printf("x.%s", q[PG_COL_ID]);
    sql[Q_CLAIM_OWNER] = g_strdup_printf(
        CLAIM_FMT, q[PG_COL_ID], t, owner_cond, q[PG_COL_EXP], q[PG_COL_LEASE_UNTIL],
        q[PG_COL_NEXT_TRY], owner_order, t, q[PG_COL_LEASE_OWNER], q[PG_COL_LEASE_UNTIL],
        q[PG_COL_ID], q[PG_COL_ID], tcols);
    sql[Q_CLAIM_REMINDERS] = g_strdup_printf(
        CLAIM_FMT, q[PG_COL_ID], t, rem_cond, q[PG_COL_EXP], q[PG_COL_LEASE_UNTIL],
        q[PG_COL_NEXT_TRY], id_order, t, q[PG_COL_LEASE_OWNER], q[PG_COL_LEASE_UNTIL],
        q[PG_COL_ID], q[PG_COL_ID], tcols);
    g_free(owner_order);
    g_free(id_order);
#undef CLAIM_FMT
    g_free(owner_cond);
    g_free(rem_cond);

    sql[Q_REMOVE] =
        g_strdup_printf("DELETE FROM %s WHERE %s = ANY($1::int8[])", t, q[PG_COL_ID]);
    sql[Q_RELEASE] = g_strdup_printf(
        "UPDATE %s m SET %s = NULL, %s = 0, %s = r.att, %s = r.nt, "
        "%s = CASE WHEN r.clr THEN 0 ELSE m.%s END "
        "FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::bool[], $5::text[]) "
        "AS r(id, att, nt, clr, owner) "
        "WHERE m.%s = r.id AND (r.owner IS NULL OR m.%s IS NOT DISTINCT FROM r.owner)",
        t, q[PG_COL_LEASE_OWNER], q[PG_COL_LEASE_UNTIL], q[PG_COL_ATTEMPTS],
        q[PG_COL_NEXT_TRY], q[PG_COL_SND], q[PG_COL_SND], q[PG_COL_ID], q[PG_COL_LEASE_OWNER]);
    sql[Q_COUNT_OWNER] =
        g_strdup_printf("SELECT count(*)::int8 FROM %s WHERE %s = $1::text AND %s = $2::text", t,
                        q[PG_COL_USER], q[PG_COL_HOST]);
    sql[Q_COUNT_ALL] = g_strdup_printf("SELECT count(*)::int8 FROM %s", t);
    sql[Q_EXPIRE] = g_strdup_printf("DELETE FROM %s WHERE %s <= $1::int8", t, q[PG_COL_EXP]);
    sql[Q_LIST_OWNER] = g_strdup_printf(
        "SELECT %s FROM %s WHERE %s = $1::text AND %s = $2::text AND %s > $3::int8 "
        "ORDER BY %s LIMIT $4::int8",
        cols, t, q[PG_COL_USER], q[PG_COL_HOST], q[PG_COL_ID], q[PG_COL_ID]);
    sql[Q_LIST_ALL] =
        g_strdup_printf("SELECT %s FROM %s WHERE %s > $1::int8 ORDER BY %s LIMIT $2::int8", cols,
                        t, q[PG_COL_ID], q[PG_COL_ID]);
    sql[Q_GET] = g_strdup_printf("SELECT %s FROM %s WHERE %s = $1::int8", cols, t,
                                    q[PG_COL_ID]);
    sql[Q_PURGE] = g_strdup_printf("DELETE FROM %s WHERE %s = $1::text AND %s = $2::text", t,
                                      q[PG_COL_USER], q[PG_COL_HOST]);
    /* Rare (an instance starting): a sequential scan is acceptable, and an
     * index on lease_owner would make every claim a non-HOT update. */
    sql[Q_RESET] = g_strdup_printf("UPDATE %s SET %s = NULL, %s = 0 WHERE %s = $1::text", t,
                                      q[PG_COL_LEASE_OWNER], q[PG_COL_LEASE_UNTIL],
                                      q[PG_COL_LEASE_OWNER]);
    sql[Q_TAKE_EXPIRED] = pg_sql_take_expired(t, q, tcols);
    g_free(cols);
    g_free(tcols);
}
