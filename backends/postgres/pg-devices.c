/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The PostgreSQL store's per-device delivery (store revision 4, deliver_to =
 * every_device): the two tables beside the silo table T and their
 * migration, and claim and release with a device, mark_delivered and
 * forget_devices.
 *
 * Schema:
 * - T_device (id, username, domain, device, last_seen): the devices known
 *   for each owner, UNIQUE (username, domain, device);
 * - T_delivery (msg_id -> T.id, device_id -> T_device.id, delivered,
 *   lease_owner, lease_until, attempts, next_try), PRIMARY KEY (msg_id,
 *   device_id), both foreign keys ON DELETE CASCADE: deleting a message
 *   (delivered, expired, purged, or by a Kamailio/OpenSIPS module sharing the
 *   table) or forgetting a device drops its rows.
 *
 * Several servers on one table deliver exactly once per device:
 * - A claim is one statement. Its first step upserts the device's row,
 *   which locks it until the claim commits: two claims for one device (two
 *   servers, or two handles) run one after the other. The lease itself is
 *   an INSERT ... ON CONFLICT (msg_id, device_id) DO UPDATE ... WHERE the
 *   lease has run out: on the unique key a second claimer waits for the
 *   first one's row and re-checks the condition on its committed version,
 *   so it never takes a lease the first one holds. Claims for different
 *   devices touch different rows and run side by side. The messages are
 *   read FOR KEY SHARE, so that a concurrent delete waits (or the claim
 *   skips the deleted row) instead of failing the foreign key. A lease
 *   kept in the message row itself (a lone device, see the claim's SQL)
 *   is an UPDATE ... WHERE the row's lease has run out: a second claimer
 *   waits for the first one's row version and re-checks the condition on
 *   it, as with the INSERT, and a message whose row it lost that way is
 *   not returned at all (the first claimer delivers it).
 * - A claim commits asynchronously (synchronous_commit off for that
 *   transaction, as pg-sql.c's claim): its leases are soft state, which a
 *   database crash may forget (at worst a duplicate of a message in flight),
 *   and so is the device's row: the device's next REGISTER makes it again.
 *   What a crash can cost is narrow: a device first seen in the last
 *   moments before it (wal_writer_delay, 200 ms by default, up to three
 *   times that) is unknown until it registers again, and a message another
 *   device of the same user acknowledges meanwhile is not kept for it. No
 *   message is lost to the user. A synchronous first claim had every new
 *   device's REGISTER wait for a WAL flush on the store's one connection
 *   (bench/e2e: 2 000 new devices, ~0.3 s of a 2.3 s DUMP).
 * - A mark (a round of deliveries, of any number of devices) locks its
 *   messages' rows (FOR UPDATE) in a first statement and decides in a second
 *   one, in one transaction (a pipeline): marks of two devices for one
 *   message by two calls run one after the other, and the second one's
 *   statement, with a snapshot taken after the lock, sees the first one's
 *   delivery, so the last device to get a message is the one that deletes
 *   it (one statement with both would decide on a snapshot from before its
 *   wait, and neither would delete).
 */
#include "pg-internal.h"
#include "sql-rows.h"

#include <string.h>

char *pg_devices_table(const char *table_name, const char *suffix)
{
    /* cut as the migration's index names are: within 63 bytes */
    char *base = g_strndup(table_name, 63 - strlen(suffix));
    char *name = g_strconcat(base, suffix, NULL);
    g_free(base);
    return name;
}

void pg_devices_sql_build(char *sql[Q_N], const char *t, const char *v, const char *l,
                          char *const q[PG_COL_N])
{
    const char *id = q[PG_COL_ID], *u = q[PG_COL_USER], *h = q[PG_COL_HOST];
    const char *dv = q[PG_COL_DEVICE];
    const char *lo = q[PG_COL_LEASE_OWNER], *lu = q[PG_COL_LEASE_UNTIL];
    const char *at = q[PG_COL_ATTEMPTS], *nt = q[PG_COL_NEXT_TRY], *ld = q[PG_COL_LEASE_DEVICE];
    /* the message's columns (pg-sql.c's SELECT list), the device's
     * attempts and next_try in their places */
    char *cols = g_strdup_printf(
        "m.%s::int8, m.%s, m.%s, m.%s, m.%s, m.%s, m.%s, m.%s, m.%s, m.%s::int8, m.%s::int8, "
        "m.%s::int8, got.att::int8, got.nt::int8, m.%s",
        id, u, h, q[PG_COL_FROM], q[PG_COL_TO], q[PG_COL_CTYPE], q[PG_COL_BODY],
        q[PG_COL_HDRS], q[PG_COL_CALLID], q[PG_COL_INC], q[PG_COL_EXP], q[PG_COL_SND], dv);
    /* $1 lease_owner, $2 lease_until, $3 user, $4 domain, $5 now,
     * $6 max_next_try, $7 limit, $8 device.
     * - Skipped: what the device has, or holds a lease on, or waits to
     *   retry, in its T_delivery row or in the message's own lease columns
     *   (lease_device = the device).
     * - "solo" (no other device of the owner is known), or the lease
     *   columns hold this device's state already, and they are free: the
     *   lease goes there, as with deliver_to = first (rw); otherwise into
     *   the device's T_delivery row (up). A second device that appears
     *   later ignores a lease held in the message row by another device and
     *   takes its own. For the usual user with one device a delivery
     *   writes no T_delivery row at all.
     * - "(NOT EXISTS ...) IS TRUE": a sub-plan, not an anti join, which a
     *   generic plan made while T_delivery was tiny ran as a merge over the
     *   whole of its primary key on every claim (790 rows read for 10
     *   candidates). */
    sql[Q_DEV_CLAIM] = g_strdup_printf(
        "WITH msilo_async AS MATERIALIZED "
        "(SELECT set_config('synchronous_commit', 'off', true) AS msilo_sc, NOT EXISTS (SELECT 1 FROM %s "
        "WHERE username = $3::text AND domain = $4::text AND device <> $8::text) AS solo), "
        "dev AS (INSERT INTO %s AS v (username, domain, device, last_seen) "
        "VALUES ($3::text, $4::text, $8::text, $5::int8) ON CONFLICT (username, domain, device) "
        "DO UPDATE SET last_seen = GREATEST(v.last_seen, excluded.last_seen) RETURNING v.id), "
        "cand AS (SELECT m.%s AS mid, ((a.solo OR m.%s IS NOT DISTINCT FROM $8::text) AND "
        "m.%s <= $5::int8 AND (m.%s IS DISTINCT FROM $8::text OR m.%s <= $6::int8)) AS inrow "
        "FROM %s m, msilo_async a "
        "WHERE m.%s = $3::text AND m.%s = $4::text "
        "AND m.%s = 0 AND m.%s > $5::int8 AND (m.%s IS NULL OR m.%s = $8::text) "
        "AND (m.%s IS DISTINCT FROM $8::text OR (m.%s <= $5::int8 AND m.%s <= $6::int8)) "
        "AND (NOT EXISTS "
        "(SELECT 1 FROM %s d, dev WHERE d.msg_id = m.%s AND d.device_id = dev.id AND "
        "(d.delivered OR d.lease_until > $5::int8 OR d.next_try > $6::int8))) IS TRUE "
        "ORDER BY m.%s, m.%s, m.%s LIMIT $7::int8 FOR KEY SHARE OF m), "
        "rw AS (UPDATE %s m SET %s = $1::text, %s = $2::int8, "
        "%s = CASE WHEN m.%s IS DISTINCT FROM $8::text THEN 0 ELSE m.%s END, "
        "%s = CASE WHEN m.%s IS DISTINCT FROM $8::text THEN 0 ELSE m.%s END, %s = $8::text "
        "FROM cand WHERE cand.inrow AND m.%s = cand.mid AND m.%s <= $5::int8 AND "
        "(m.%s IS DISTINCT FROM $8::text OR m.%s <= $6::int8) RETURNING m.%s AS mid, "
        "m.%s AS att, m.%s AS nt), "
        "up AS (INSERT INTO %s AS l (msg_id, device_id, lease_owner, lease_until) "
        "SELECT cand.mid, dev.id, $1::text, $2::int8 FROM cand, dev WHERE NOT cand.inrow "
        "ON CONFLICT (msg_id, device_id) DO UPDATE SET lease_owner = excluded.lease_owner, "
        "lease_until = excluded.lease_until WHERE NOT l.delivered AND l.lease_until <= $5::int8 "
        "AND l.next_try <= $6::int8 RETURNING l.msg_id AS mid, l.attempts AS att, "
        "l.next_try AS nt), "
        "got AS (SELECT * FROM rw UNION ALL SELECT * FROM up) "
        "SELECT %s FROM got JOIN %s m ON m.%s = got.mid",
        v, v,
        /* cand */ id, ld, lu, ld, nt, t, u, h, q[PG_COL_SND], q[PG_COL_EXP], dv, dv, ld, lu, nt,
        l, id, u, h, id,
        /* rw */ t, lo, lu, at, ld, at, nt, ld, nt, ld, id, lu, ld, nt, id, at, nt,
        /* up */ l, cols, t, id);
    /* Both kinds in one statement (atomic): items with a device end that
     * device's lease, in its T_delivery row and in the message's lease
     * columns where the device holds them; the others the message's
     * (pg-sql.c's Q_RELEASE). One UPDATE of T for both: a statement
     * changes a row once. */
    sql[Q_DEV_RELEASE] = g_strdup_printf(
        "WITH r AS (SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::bool[], "
        "$5::text[], $6::text[]) AS r(id, att, nt, clr, owner, dev)), "
        "dr AS (UPDATE %s d SET lease_owner = NULL, lease_until = 0, attempts = r.att, "
        "next_try = r.nt FROM r, %s m, %s v WHERE r.dev IS NOT NULL AND m.%s = r.id AND "
        "v.username = m.%s AND v.domain = m.%s AND v.device = r.dev AND d.msg_id = r.id AND "
        "d.device_id = v.id AND NOT d.delivered AND (r.owner IS NULL OR d.lease_owner IS NULL "
        "OR d.lease_owner = r.owner) RETURNING 1) "
        "UPDATE %s m SET %s = NULL, %s = 0, %s = r.att, %s = r.nt, "
        "%s = CASE WHEN r.clr AND r.dev IS NULL THEN 0 ELSE m.%s END FROM r "
        "WHERE m.%s = r.id AND ((r.dev IS NULL AND (r.owner IS NULL OR m.%s IS NOT DISTINCT "
        "FROM r.owner)) OR (r.dev IS NOT NULL AND m.%s = r.dev AND (r.owner IS NULL OR m.%s "
        "IS NULL OR m.%s = r.owner)))",
        l, t, v, id, u, h, t, lo, lu, at, nt, q[PG_COL_SND], q[PG_COL_SND], id, lo, ld, lo, lo);
    /* the mark's first statement: its messages, locked in id order */
    sql[Q_DEV_LOCK] = g_strdup_printf(
        "SELECT 1 FROM %s WHERE %s = ANY($1::int8[]) ORDER BY %s FOR UPDATE", t, id, id);
    /* $1 ids, $2 their devices (one round of deliveries, of many devices).
     * "done": the message was for the item's device only, or no other
     * known device of its owner lacks it (a device that has it in this
     * round counts as having it: two items for one message in one
     * statement see only the snapshot); done ones are deleted (their
     * delivery rows go with them), the others get the item's device's. */
    sql[Q_DEV_MARK] = g_strdup_printf(
        "WITH r AS (SELECT * FROM unnest($1::int8[], $2::text[]) AS r(mid, dev)), "
        "lk AS (SELECT m.%s AS mid, m.%s AS mu, m.%s AS mh, m.%s AS mdv, r.dev FROM %s m "
        "JOIN r ON m.%s = r.mid), "
        "kn AS (INSERT INTO %s AS v (username, domain, device, last_seen) "
        "SELECT DISTINCT mu, mh, dev, 0::int8 FROM lk ON CONFLICT (username, domain, device) "
        "DO UPDATE SET last_seen = v.last_seen RETURNING v.id, v.username, v.domain, v.device), "
        "dec AS (SELECT lk.*, (coalesce(lk.mdv = lk.dev, false) OR NOT EXISTS (SELECT 1 "
        "FROM %s o WHERE o.username = lk.mu AND o.domain = lk.mh AND o.device <> lk.dev AND "
        "NOT EXISTS (SELECT 1 FROM %s d WHERE d.msg_id = lk.mid AND d.device_id = o.id AND "
        "d.delivered) AND NOT EXISTS (SELECT 1 FROM r r2 WHERE r2.mid = lk.mid AND "
        "r2.dev = o.device))) AS done FROM lk), "
        "mk AS (INSERT INTO %s AS l (msg_id, device_id, delivered) SELECT DISTINCT dec.mid, kn.id, "
        "true FROM dec JOIN kn ON kn.username = dec.mu AND kn.domain = dec.mh AND "
        "kn.device = dec.dev WHERE NOT dec.done "
        "ON CONFLICT (msg_id, device_id) DO UPDATE SET delivered = true, lease_owner = NULL, "
        "lease_until = 0 RETURNING 1), "
        "del AS (DELETE FROM %s m WHERE m.%s IN (SELECT mid FROM dec WHERE done) RETURNING 1) "
        "SELECT (SELECT count(*) FROM del)::int8, (SELECT count(*) FROM mk)::int8",
        id, u, h, dv, t, id, v, v, l, l, t, id);
    /* $1 seen_before. Before the devices go, the messages that some device
     * has, of owners with a device to forget, that no device to keep lacks;
     * then the devices (their delivery rows cascade). One statement, one
     * snapshot: both deletes decide on the same state. Driven by the owners
     * of the devices to forget (one pass over the devices table, then the
     * owner index): not by every delivery row of the table. */
    sql[Q_DEV_FORGET] = g_strdup_printf(
        "WITH fo AS MATERIALIZED (SELECT DISTINCT username, domain FROM %s "
        "WHERE last_seen < $1::int8), "
        "gone AS (DELETE FROM %s m USING fo WHERE m.%s = fo.username AND m.%s = fo.domain "
        "AND EXISTS (SELECT 1 FROM %s d WHERE d.msg_id = m.%s AND d.delivered) "
        "AND NOT EXISTS (SELECT 1 FROM %s v WHERE v.username = m.%s "
        "AND v.domain = m.%s AND v.last_seen >= $1::int8 AND NOT EXISTS (SELECT 1 FROM %s d "
        "WHERE d.msg_id = m.%s AND d.device_id = v.id AND d.delivered)) RETURNING 1), "
        "fv AS (DELETE FROM %s WHERE last_seen < $1::int8 RETURNING 1) "
        "SELECT (SELECT count(*) FROM fv)::int8, (SELECT count(*) FROM gone)::int8",
        v, t, u, h, l, id, v, u, h, l, id, v);
    /* rare (an instance restarting): a scan, no index on lease_owner */
    sql[Q_DEV_RESET] = g_strdup_printf(
        "UPDATE %s SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = $1::text", l);
    g_free(cols);
}

/* ---- migration ---- */

static int exec_counted(PGconn *conn, char *sql, const char *what, size_t *changes)
{
    PGresult *r = PQexec(conn, sql);
    g_free(sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return pg_result_fail(conn, r, what);
    PQclear(r);
    (*changes)++;
    return 0;
}

static int relation_exists(PGconn *conn, const char *name_q, gboolean *ret)
{
    const char *params[1] = { name_q };
    PGresult *r = PQexecParams(conn, "SELECT to_regclass($1::text) IS NOT NULL", 1, NULL,
                               params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return pg_result_fail(conn, r, "looking for a per-device table");
    *ret = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return 0;
}

int pg_devices_migrate(PGconn *conn, const char *table_name, const char *t,
                       char *const q[PG_COL_N], size_t *changes)
{
    char *vn = pg_devices_table(table_name, "_device");
    char *ln = pg_devices_table(table_name, "_delivery");
    char *xn = pg_devices_table(table_name, "_delivery_dev_idx");
    char *v = pg_ident(conn, vn), *l = pg_ident(conn, ln), *x = pg_ident(conn, xn);
    int e = v && l && x ? 0 : MSILO_ECONFIG;
    gboolean have = FALSE;
    if (!e)
        e = relation_exists(conn, v, &have);
    if (!e && !have)
        e = exec_counted(conn,
                         g_strdup_printf("CREATE TABLE IF NOT EXISTS %s (id BIGSERIAL PRIMARY KEY, "
                                         "username VARCHAR NOT NULL, domain VARCHAR NOT NULL, "
                                         "device TEXT NOT NULL, last_seen BIGINT NOT NULL "
                                         "DEFAULT 0, UNIQUE (username, domain, device))",
                                         v),
                         "creating the devices table", changes);
    if (!e)
        e = relation_exists(conn, l, &have);
    if (!e && !have)
        e = exec_counted(conn,
                         g_strdup_printf("CREATE TABLE IF NOT EXISTS %s ("
                                         "msg_id BIGINT NOT NULL REFERENCES %s (%s) ON DELETE "
                                         "CASCADE, device_id BIGINT NOT NULL REFERENCES %s (id) "
                                         "ON DELETE CASCADE, delivered BOOLEAN NOT NULL DEFAULT "
                                         "false, lease_owner TEXT, lease_until BIGINT NOT NULL "
                                         "DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, "
                                         "next_try BIGINT NOT NULL DEFAULT 0, "
                                         "PRIMARY KEY (msg_id, device_id))",
                                         l, t, q[PG_COL_ID], v),
                         "creating the deliveries table", changes);
    /* forgetting a device cascades to its rows: found by device */
    if (!e)
        e = relation_exists(conn, x, &have);
    if (!e && !have)
        e = exec_counted(conn,
                         g_strdup_printf("CREATE INDEX IF NOT EXISTS %s ON %s (device_id)", x, l),
                         "creating an index", changes);
    g_free(x);
    g_free(l);
    g_free(v);
    g_free(xn);
    g_free(ln);
    g_free(vn);
    return e;
}

/* ---- methods ---- */

static size_t count_col(const PGresult *r, int col)
{
    return PQntuples(r) == 1 ? (size_t)MAX(pg_get_int8(r, 0, col), 0) : 0;
}

int pg_devices_claim(pg_store *s, const msilo_store_claim_t *c, msilo_message_t ***ret_msgs,
                     size_t *ret_n)
{
    if (c->reminders || !c->user || !c->domain)
        return pg_fail(MSILO_EINVAL, "postgres claim: a device claim is for one owner");
    pg_params_t p = { 0 };
    pg_params_text(&p, c->lease_owner);
    pg_params_int8(&p, c->lease_until);
    pg_params_text(&p, c->user);
    pg_params_text(&p, c->domain);
    pg_params_int8(&p, c->now);
    pg_params_int8(&p, c->max_next_try);
    pg_params_int8(&p, sql_limit(c->max));
    pg_params_text(&p, c->device);
    PGresult *r = NULL;
    int e = pg_run(s, Q_DEV_CLAIM, &p, "claiming messages for a device", &r);
    if (e)
        return e;
    pg_rows_to_messages(s, r, ret_msgs, ret_n);
    PQclear(r);
    return 0;
}

int pg_devices_release(pg_store *s, const msilo_store_release_t *items, size_t n,
                       size_t item_size)
{
    pg_params_t p = { 0 };
    pg_array_t id, att, nt, clr, own, dev;
    pg_array_init(&id, PG_OID_INT8, n);
    pg_array_init(&att, PG_OID_INT8, n);
    pg_array_init(&nt, PG_OID_INT8, n);
    pg_array_init(&clr, PG_OID_BOOL, n);
    pg_array_init(&own, PG_OID_TEXT, n);
    pg_array_init(&dev, PG_OID_TEXT, n);
    for (size_t i = 0; i < n; i++) {
        const msilo_store_release_t *it = MSILO_STORE_RELEASE_ITEM(items, item_size, i);
        pg_array_int8(&id, it->id);
        pg_array_int8(&att, pg_clamp_to(s, PG_COL_ATTEMPTS, (int64_t)it->attempts));
        pg_array_int8(&nt, pg_clamp_to(s, PG_COL_NEXT_TRY, it->next_try));
        pg_array_bool(&clr, (it->flags & MSILO_RELEASE_CLEAR_SND_TIME) != 0);
        pg_array_text(&own, it->lease_owner);
        pg_array_text(&dev, it->device);
    }
    pg_params_array(&p, &id);
    pg_params_array(&p, &att);
    pg_params_array(&p, &nt);
    pg_params_array(&p, &clr);
    pg_params_array(&p, &own);
    pg_params_array(&p, &dev);
    PGresult *r = NULL;
    int e = pg_run(s, Q_DEV_RELEASE, &p, "releasing messages", &r);
    if (e)
        return e;
    PQclear(r);
    return 0;
}

/* The lock and the mark in one pipeline, one implicit transaction (see the
 * top); *ret_res the mark's result. */
static int mark_once(pg_store *s, const pg_params_t *lock, const pg_params_t *mark,
                     PGresult **ret_res)
{
    int e = pg_ensure_conn(s);
    if (!e)
        e = pg_prepare(s, Q_DEV_LOCK);
    if (!e)
        e = pg_prepare(s, Q_DEV_MARK);
    if (e)
        return e;
    char name[32];
    gboolean sent = PQenterPipelineMode(s->conn) == 1;
    if (sent)
        sent = PQsendQueryPrepared(s->conn, pg_stmt_name(Q_DEV_LOCK, name), lock->n,
                                   lock->values, lock->lengths, lock->formats, 1) == 1;
    if (sent)
        sent = PQsendQueryPrepared(s->conn, pg_stmt_name(Q_DEV_MARK, name), mark->n,
                                   mark->values, mark->lengths, mark->formats, 1) == 1;
    if (sent)
        sent = PQpipelineSync(s->conn) == 1;
    if (!sent) {
        e = pg_fail(MSILO_ESTORE, "recording deliveries: %s", PQerrorMessage(s->conn));
        pg_after_failure(s);
        return e;
    }
    PGresult *res = NULL;
    for (int q = 0; q < 2 && !e; q++) {
        PGresult *r;
        gboolean got = FALSE;
        while ((r = PQgetResult(s->conn)) != NULL) {
            got = TRUE;
            if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                if (!e)
                    e = pg_result_fail(s->conn, r, "recording deliveries");
                else
                    PQclear(r);
            } else if (q == 1 && !res) {
                res = r;
            } else {
                PQclear(r);
            }
        }
        if (!got && !e)
            e = pg_fail(MSILO_ESTORE, "recording deliveries: %s", PQerrorMessage(s->conn));
    }
    if (PQstatus(s->conn) == CONNECTION_OK) {
        /* the statements after a failed one are skipped: their NULL
         * results come before the sync's */
        PGresult *r;
        while ((r = PQgetResult(s->conn)) != NULL) {
            gboolean sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
            if (!sync && PQresultStatus(r) != PGRES_PIPELINE_ABORTED && !e)
                e = pg_result_fail(s->conn, r, "committing deliveries");
            else
                PQclear(r);
            if (sync)
                break;
        }
    } else if (!e) {
        e = pg_fail(MSILO_ESTORE, "recording deliveries: %s", PQerrorMessage(s->conn));
    }
    if (!e && PQexitPipelineMode(s->conn) != 1)
        e = pg_fail(MSILO_ESTORE, "leaving pipeline mode: %s", PQerrorMessage(s->conn));
    if (e) {
        PQclear(res);
        pg_after_failure(s);
        return e;
    }
    if (!res)
        return pg_fail(MSILO_ESTORE, "recording deliveries: no result");
    *ret_res = res;
    return 0;
}

int pg_mark_delivered(msilo_store_t *base, const msilo_store_mark_t *items, size_t n,
                      size_t item_size, size_t *ret_deleted)
{
    pg_store *s = (pg_store *)base;
    if (!items && n)
        return pg_fail(MSILO_EINVAL, "postgres mark_delivered: bad arguments");
    pg_params_t lock = { 0 }, mark = { 0 };
    pg_array_t a, b, d;
    pg_array_init(&a, PG_OID_INT8, n);
    pg_array_init(&b, PG_OID_INT8, n);
    pg_array_init(&d, PG_OID_TEXT, n);
    for (size_t i = 0; i < n; i++) {
        const msilo_store_mark_t *it = MSILO_STORE_MARK_ITEM(items, item_size, i);
        pg_array_int8(&a, it->id);
        pg_array_int8(&b, it->id);
        pg_array_text(&d, it->device);
    }
    pg_params_array(&lock, &a);
    pg_params_array(&mark, &b);
    pg_params_array(&mark, &d);
    /* marking twice changes nothing more: safe to run again on a fresh
     * connection when the first one was lost, as pg_run() does */
    gboolean had_conn = s->conn != NULL;
    PGresult *r = NULL;
    int e = mark_once(s, &lock, &mark, &r);
    if (e == MSILO_ESTORE && had_conn && !s->conn)
        e = mark_once(s, &lock, &mark, &r);
    pg_params_clear(&lock);
    pg_params_clear(&mark);
    if (e)
        return e;
    if (ret_deleted)
        *ret_deleted = count_col(r, 0);
    PQclear(r);
    return 0;
}

int pg_forget_devices(msilo_store_t *base, int64_t seen_before, size_t *ret_n)
{
    pg_store *s = (pg_store *)base;
    pg_params_t p = { 0 };
    pg_params_int8(&p, seen_before);
    PGresult *r = NULL;
    int e = pg_run(s, Q_DEV_FORGET, &p, "forgetting devices", &r);
    if (e)
        return e;
    if (ret_n)
        *ret_n = count_col(r, 0);
    PQclear(r);
    return 0;
}

int pg_devices_reset(pg_store *s, const char *lease_owner, size_t *ret_n)
{
    pg_params_t p = { 0 };
    pg_params_text(&p, lease_owner);
    PGresult *r = NULL;
    int e = pg_run(s, Q_DEV_RESET, &p, "resetting per-device leases", &r);
    if (e)
        return e;
    *ret_n = (size_t)g_ascii_strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}
