/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SQLite store's statements: the text of each, prepared once by
 * sqlite-store.c (persistent, parameters only). What each must guarantee
 * (one statement chooses and leases, idempotent puts, take_expired atomic
 * inside BEGIN IMMEDIATE) is written beside it.
 */
#include "sqlite-internal.h"

void sq_sql_build(char *sql[Q_N], const char *t)
{
    sql[Q_BEGIN] = g_strdup("BEGIN IMMEDIATE");
    sql[Q_COMMIT] = g_strdup("COMMIT");
    sql[Q_ROLLBACK] = g_strdup("ROLLBACK");
    sql[Q_INSERT] = g_strdup_printf(
        "INSERT INTO %s (username, domain, src_addr, dst_addr, ctype, body, extra_hdrs, "
        "callid, inc_time, exp_time, snd_time, attempts, next_try, msg_key, device) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) RETURNING id",
        t);
    /* idempotent puts: the message stored already under this key (the
     * unique index on msg_key finds it) */
    sql[Q_BY_KEY] = g_strdup_printf("SELECT id FROM %s WHERE msg_key = ?1", t);
    sql[Q_COUNT_OWNER] =
        g_strdup_printf("SELECT count(*) FROM %s WHERE username = ?1 AND domain = ?2", t);
    sql[Q_COUNT_ALL] = g_strdup_printf("SELECT count(*) FROM %s", t);
    /* One statement chooses and leases: the rows it returns are the rows it
     * updated. RETURNING has no defined order; the caller sorts by id. */
    sql[Q_CLAIM_OWNER] = g_strdup_printf(
        "UPDATE %s SET lease_owner = ?1, lease_until = ?2 WHERE id IN "
        "(SELECT id FROM %s WHERE username = ?3 AND domain = ?4 AND snd_time = 0 "
        "AND exp_time > ?5 AND lease_until <= ?5 AND next_try <= ?6 ORDER BY id LIMIT ?7) "
        "RETURNING " SELECT_COLS,
        t, t);
    sql[Q_CLAIM_REMINDERS] = g_strdup_printf(
        "UPDATE %s SET lease_owner = ?1, lease_until = ?2 WHERE id IN "
        "(SELECT id FROM %s WHERE snd_time <> 0 AND snd_time <= ?5 "
        "AND exp_time > ?5 AND lease_until <= ?5 AND next_try <= ?6 ORDER BY id LIMIT ?7) "
        "RETURNING " SELECT_COLS,
        t, t);
    sql[Q_REMOVE] = g_strdup_printf("DELETE FROM %s WHERE id = ?1", t);
    /* A release by an instance whose lease ran out and was taken by another
     * claimer is ignored; a message that nobody leases any more (reset)
     * takes it, as in the memory store. */
    sql[Q_RELEASE] = g_strdup_printf(
        "UPDATE %s SET lease_owner = NULL, lease_until = 0, attempts = ?2, next_try = ?3, "
        "snd_time = CASE WHEN ?4 THEN 0 ELSE snd_time END "
        "WHERE id = ?1 AND (?5 IS NULL OR lease_owner IS NULL OR lease_owner = ?5)",
        t);
    sql[Q_EXPIRE] = g_strdup_printf("DELETE FROM %s WHERE exp_time <= ?1", t);
    sql[Q_LIST_OWNER] = g_strdup_printf("SELECT " SELECT_COLS " FROM %s WHERE username = ?1 "
                                        "AND domain = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
                                        t);
    sql[Q_LIST_ALL] = g_strdup_printf(
        "SELECT " SELECT_COLS " FROM %s WHERE id > ?1 ORDER BY id LIMIT ?2", t);
    sql[Q_GET] = g_strdup_printf("SELECT " SELECT_COLS " FROM %s WHERE id = ?1", t);
    sql[Q_PURGE] = g_strdup_printf("DELETE FROM %s WHERE username = ?1 AND domain = ?2", t);
    /* Rare (an instance starting): a scan is fine, and an index on
     * lease_owner would cost every claim an index update. */
    sql[Q_RESET] = g_strdup_printf(
        "UPDATE %s SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = ?1", t);

    /* take_expired: chooses and deletes in one statement inside BEGIN
     * IMMEDIATE, so no other connection takes the same rows. The media
     * type is the stored Content-Type up to its parameters, trimmed and
     * lower-cased; a missing one reads as text/plain. */
    sql[Q_TAKE_EXPIRED] = g_strdup_printf(
        "DELETE FROM %s WHERE id IN (SELECT id FROM (SELECT id, exp_time, "
        "coalesce(nullif(ctype, ''), 'text/plain') AS c FROM %s WHERE exp_time <= ?1) "
        "WHERE ?2 IS NULL OR lower(trim(CASE WHEN instr(c, ';') > 0 "
        "THEN substr(c, 1, instr(c, ';') - 1) ELSE c END, ' ' || char(9))) = lower(?2) "
        "ORDER BY id LIMIT ?3) RETURNING " SELECT_COLS,
        t, t);
}
