/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The PostgreSQL store's take_expired (store revision 4): one DELETE that
 * chooses the oldest expired rows of a media type with FOR UPDATE SKIP
 * LOCKED and returns them, so two servers (or two handles) on one table
 * never take the same row: a row one of them has locked the other skips,
 * and a row deleted and committed meanwhile is gone when it re-checks.
 *
 * The media type is the stored Content-Type up to its first ';', trimmed
 * and lower-cased (a missing or empty one reads as text/plain), compared to
 * the caller's, lower-cased here the same way. No index serves the type:
 * the rows are found by exp_time, whose index the expiry uses too.
 *
 * pg_run() retries a statement once when the connection was lost: if the
 * first DELETE committed but its answer was lost, those rows are gone
 * without reaching the caller (their <failed/> notifications are not
 * sent); nothing is ever taken twice.
 */
#include "pg-internal.h"
#include "sql-rows.h"

#include <string.h>

char *pg_sql_take_expired(const char *t, char *const q[PG_COL_N], const char *tcols)
{
    return g_strdup_printf(
        "DELETE FROM %s m WHERE m.%s IN (SELECT x.%s FROM %s AS x WHERE x.%s <= $1::int8 "
        "AND ($2::text IS NULL OR lower(btrim(split_part(coalesce(nullif(x.%s, ''), "
        "'text/plain'), ';', 1), E' \\t')) = $2::text) ORDER BY x.%s LIMIT $3::int8 "
        "FOR UPDATE OF x SKIP LOCKED) RETURNING %s",
        t, q[PG_COL_ID], q[PG_COL_ID], t, q[PG_COL_EXP], q[PG_COL_CTYPE], q[PG_COL_ID], tcols);
}

int pg_take_expired(msilo_store_t *base, int64_t now, const char *ctype, size_t max,
                    msilo_message_t ***ret_msgs, size_t *ret_n)
{
    if (!ret_msgs || !ret_n || max == 0)
        return pg_fail(MSILO_EINVAL, "postgres take_expired: bad arguments");
    pg_store *s = (pg_store *)base;
    char *want = ctype ? sql_media_type(ctype) : NULL;
    pg_params_t p = { 0 };
    pg_params_int8(&p, now);
    pg_params_text(&p, want);
    pg_params_int8(&p, sql_limit(max));
    PGresult *r = NULL;
    int e = pg_run(s, Q_TAKE_EXPIRED, &p, "taking expired messages", &r);
    g_free(want); /* (the parameter pointed to it) */
    if (e)
        return e;
    pg_rows_to_messages(s, r, ret_msgs, ret_n);
    PQclear(r);
    return 0;
}
