/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The global caps of the SQLite store (msilo_sqlite_store_set_limit()):
 * how many messages and how many bytes the whole table holds, checked inside
 * the put's BEGIN IMMEDIATE transaction, so that two connections (threads,
 * processes) on one file cannot both take the last place.
 *
 * A count(*) and sum() over the table per put would cost O(table). Instead
 * the totals are counted once and then kept: a put adds what it inserts;
 * a delete of this connection (the update hook sees every row it deletes,
 * whichever method runs it) or a rollback marks them stale; a commit of
 * another connection changes PRAGMA data_version, read under the write lock
 * at each check. Stale totals are counted again at the next check: a flood
 * of stores is O(1) per message, a put after a delivery O(table) once.
 * Nothing of it runs while no cap is set.
 *
 * Bytes are those of the body, addresses, content type, extra headers and
 * Call-ID (SQLite's length(): characters for text columns), without the
 * row's overhead, so the file is somewhat larger than the cap.
 */
#include "sqlite-internal.h"

#include <string.h>

static void on_update(void *data, int op, const char *db, const char *table, sqlite3_int64 row)
{
    sq_limits_t *l = data;
    (void)db;
    (void)row;
    if (op == SQLITE_DELETE && strcmp(table, l->table) == 0)
        l->valid = false;
}

static void on_rollback(void *data)
{
    ((sq_limits_t *)data)->valid = false;
}

int sq_limits_init(sq_limits_t *l, sqlite3 *db, const char *table, const char *quoted)
{
    memset(l, 0, sizeof(*l));
    l->table = g_strdup(table);
    g_autofree char *sql = g_strdup_printf(
        "SELECT count(*), coalesce(sum(ifnull(length(body), 0) + ifnull(length(src_addr), 0) + "
        "ifnull(length(dst_addr), 0) + ifnull(length(ctype), 0) + ifnull(length(extra_hdrs), 0) "
        "+ ifnull(length(callid), 0)), 0) FROM %s",
        quoted);
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &l->totals, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(db, "PRAGMA data_version", -1, SQLITE_PREPARE_PERSISTENT,
                                &l->version, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(db, rc, "preparing the cap's statements");
    sqlite3_update_hook(db, on_update, l);
    sqlite3_rollback_hook(db, on_rollback, l);
    return 0;
}

void sq_limits_clear(sq_limits_t *l)
{
    sqlite3_finalize(l->totals);
    sqlite3_finalize(l->version);
    g_free(l->table);
    memset(l, 0, sizeof(*l));
}

uint64_t sq_limits_size(const msilo_message_t *m)
{
    const char *texts[] = { m->src, m->dst, m->ctype, m->extra_hdrs, m->callid };
    uint64_t n = m->body_len;
    for (size_t i = 0; i < G_N_ELEMENTS(texts); i++)
        n += texts[i] ? g_utf8_strlen(texts[i], -1) : 0;
    return n;
}

/* Brings the totals up to date (inside the put's transaction). */
static int refresh(sq_limits_t *l, sqlite3 *db)
{
    int rc = sqlite3_step(l->version);
    int64_t version = rc == SQLITE_ROW ? sqlite3_column_int64(l->version, 0) : -1;
    sqlite3_reset(l->version);
    if (rc != SQLITE_ROW)
        return sq_fail(db, rc, "reading data_version");
    if (l->valid && version == l->data_version)
        return 0;
    rc = sqlite3_step(l->totals);
    if (rc == SQLITE_ROW) {
        l->messages = (uint64_t)sqlite3_column_int64(l->totals, 0);
        l->bytes = (uint64_t)sqlite3_column_int64(l->totals, 1);
    }
    sqlite3_reset(l->totals);
    if (rc != SQLITE_ROW)
        return sq_fail(db, rc, "counting the stored messages");
    l->valid = true;
    l->data_version = version;
    return 0;
}

int sq_limits_admit(sq_limits_t *l, sqlite3 *db, const msilo_message_t *m, bool *ret_fits)
{
    *ret_fits = true;
    if (!l->max_messages && !l->max_bytes)
        return 0;
    int e = refresh(l, db);
    if (e)
        return e;
    *ret_fits = (!l->max_messages || l->messages < l->max_messages) &&
                (!l->max_bytes || l->bytes + sq_limits_size(m) <= l->max_bytes);
    return 0;
}

void sq_limits_added(sq_limits_t *l, const msilo_message_t *m)
{
    if (!l->valid)
        return;
    l->messages++;
    l->bytes += sq_limits_size(m);
}
