/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SQLite store's per-device delivery (store revision 4, deliver_to =
 * every_device): its two tables, their migration, and the statements of
 * claim and release with a device, mark_delivered and forget_devices.
 *
 * Schema, next to the silo table T (whose `device` column says which one
 * device a message is for, NULL = every device):
 * - T_device (id, username, domain, device, last_seen): the devices known
 *   for each owner, unique by (username, domain, device);
 * - T_delivery (msg_id -> T.id, device_id -> T_device.id, delivered,
 *   lease_owner, lease_until, attempts, next_try): one row per message and
 *   device that claimed it, both foreign keys ON DELETE CASCADE, so that
 *   deleting a message (delivered, expired, purged) or forgetting a device
 *   drops its rows. sq_open() turns foreign_keys on for every connection;
 *   a row left behind by a connection that had them off names an id that
 *   is never used again (the silo table is AUTOINCREMENT) and harms nothing.
 *
 * Concurrency: every call runs in the caller's BEGIN IMMEDIATE transaction
 * (sqlite-store.c), which holds the file's write lock from its first
 * statement, so two connections (two servers on one file) never claim the
 * same (message, device) at once, and a mark never misses another device's
 * mark of the same message.
 */
#include "sqlite-internal.h"
#include "sql-rows.h"

#include <string.h>

typedef enum {
    D_SEEN,       /* upsert the device, its id */
    D_CANDIDATES, /* the owner's messages the device may have */
    D_LEASE,      /* upsert the (message, device) lease */
    D_RELEASE,
    D_KNOW,       /* the device of a mark, known if it was not */
    D_MARK,
    D_DELETE_DONE,
    D_FORGET_MSGS,
    D_FORGET,
    D_RESET,
    D_N
} dq_t;

struct sq_devices {
    sqlite3 *db;
    sqlite3_stmt *st[D_N];
};

/* Columns of a device claim: those of SELECT_COLS (sqlite-store.c), with
 * the device's attempts and next_try in their places. */
#define CLAIM_COLS                                                                         \
    "m.id, m.username, m.domain, m.src_addr, m.dst_addr, m.ctype, m.body, m.extra_hdrs, "  \
    "m.callid, m.inc_time, m.exp_time, m.snd_time, coalesce(d.attempts, 0), "              \
    "coalesce(d.next_try, 0), m.device"

static int exec(sqlite3 *db, const char *sql, const char *what)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sq_fail(db, rc, what);
}

static int table_exists(sqlite3 *db, const char *name, gboolean *ret)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND "
                                "name = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(db, rc, "looking for a table");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int e = 0;
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        *ret = rc == SQLITE_ROW;
    else
        e = sq_fail(db, rc, "looking for a table");
    sqlite3_finalize(st);
    return e;
}

/* Creates T_name with @cols (a parenthesised definition) when it is missing. */
static int ensure_table(sqlite3 *db, const char *table, const char *suffix, const char *cols,
                        size_t *changes)
{
    char *name = g_strconcat(table, suffix, NULL);
    gboolean exists = FALSE;
    int e = table_exists(db, name, &exists);
    if (!e && !exists) {
        char *name_q = sq_ident(name);
        char *sql = g_strdup_printf("CREATE TABLE IF NOT EXISTS %s %s", name_q, cols);
        e = exec(db, sql, "creating a per-device table");
        if (!e)
            (*changes)++;
        g_free(sql);
        g_free(name_q);
    }
    g_free(name);
    return e;
}

int sqd_migrate(sqlite3 *db, const char *table, size_t *changes)
{
    char *t = sq_ident(table);
    char *devt = g_strconcat(table, "_device", NULL), *devt_q = sq_ident(devt);
    char *dev_cols = g_strdup(
        "(id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL, domain TEXT NOT NULL, "
        "device TEXT NOT NULL, last_seen INTEGER NOT NULL DEFAULT 0, "
        "UNIQUE (username, domain, device))");
    /* WITHOUT ROWID: the (msg_id, device_id) key is the row; the cascade
     * from a deleted message looks it up by its prefix. */
    char *del_cols = g_strdup_printf(
        "(msg_id INTEGER NOT NULL REFERENCES %s (id) ON DELETE CASCADE, "
        "device_id INTEGER NOT NULL REFERENCES %s (id) ON DELETE CASCADE, "
        "delivered INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, "
        "lease_until INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, "
        "next_try INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (msg_id, device_id)) WITHOUT ROWID",
        t, devt_q);
    int e = ensure_table(db, table, "_device", dev_cols, changes);
    if (!e)
        e = ensure_table(db, table, "_delivery", del_cols, changes);
    /* forgetting a device cascades to its rows: find them by device */
    if (!e) {
        char *idx = g_strconcat(table, "_delivery_dev_idx", NULL), *idx_q = sq_ident(idx);
        char *delt = g_strconcat(table, "_delivery", NULL), *delt_q = sq_ident(delt);
        char *sql = g_strdup_printf("CREATE INDEX IF NOT EXISTS %s ON %s (device_id)", idx_q,
                                    delt_q);
        e = exec(db, sql, "creating a per-device index");
        g_free(sql);
        g_free(delt_q);
        g_free(delt);
        g_free(idx_q);
        g_free(idx);
    }
    g_free(dev_cols);
    g_free(del_cols);
    g_free(devt_q);
    g_free(devt);
    g_free(t);
    return e;
}

void sqd_free(sq_devices_t *d)
{
    if (!d)
        return;
    for (int q = 0; q < D_N; q++)
        sqlite3_finalize(d->st[q]);
    g_free(d);
}

int sqd_new(sqlite3 *db, const char *table, sq_devices_t **ret)
{
    char *t = sq_ident(table);
    char *dn = g_strconcat(table, "_device", NULL), *v = sq_ident(dn);
    char *ln = g_strconcat(table, "_delivery", NULL), *l = sq_ident(ln);
    char *sql[D_N] = { 0 };
    sql[D_SEEN] = g_strdup_printf(
        "INSERT INTO %s (username, domain, device, last_seen) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (username, domain, device) DO UPDATE SET last_seen = excluded.last_seen "
        "RETURNING id", v);
    sql[D_CANDIDATES] = g_strdup_printf(
        "SELECT " CLAIM_COLS " FROM %s m LEFT JOIN %s d ON d.msg_id = m.id AND d.device_id = ?1 "
        "WHERE m.username = ?2 AND m.domain = ?3 AND m.snd_time = 0 AND m.exp_time > ?4 "
        "AND (m.device IS NULL OR m.device = ?5) AND (d.msg_id IS NULL OR (d.delivered = 0 "
        "AND d.lease_until <= ?4 AND d.next_try <= ?6)) ORDER BY m.id LIMIT ?7", t, l);
    sql[D_LEASE] = g_strdup_printf(
        "INSERT INTO %s (msg_id, device_id, lease_owner, lease_until) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (msg_id, device_id) DO UPDATE SET lease_owner = excluded.lease_owner, "
        "lease_until = excluded.lease_until", l);
    /* as the message-level release: a late release after another
     * instance took the lease again is ignored */
    sql[D_RELEASE] = g_strdup_printf(
        "UPDATE %s SET lease_owner = NULL, lease_until = 0, attempts = ?3, next_try = ?4 "
        "WHERE msg_id = ?1 AND delivered = 0 AND device_id = (SELECT v.id FROM %s v JOIN %s m "
        "ON m.username = v.username AND m.domain = v.domain WHERE m.id = ?1 AND v.device = ?2) "
        "AND (?5 IS NULL OR lease_owner IS NULL OR lease_owner = ?5)", l, v, t);
    sql[D_KNOW] = g_strdup_printf(
        "INSERT INTO %s (username, domain, device, last_seen) SELECT username, domain, ?2, 0 "
        "FROM %s WHERE id = ?1 ON CONFLICT (username, domain, device) DO NOTHING", v, t);
    sql[D_MARK] = g_strdup_printf(
        "INSERT INTO %s (msg_id, device_id, delivered) SELECT m.id, v.id, 1 FROM %s m JOIN %s v "
        "ON v.username = m.username AND v.domain = m.domain AND v.device = ?2 WHERE m.id = ?1 "
        "ON CONFLICT (msg_id, device_id) DO UPDATE SET delivered = 1, lease_owner = NULL, "
        "lease_until = 0", l, t, v);
    /* the message goes when it was for this device only, or when no known
     * device of its owner lacks it */
    sql[D_DELETE_DONE] = g_strdup_printf(
        "DELETE FROM %s WHERE id = ?1 AND (device = ?2 OR NOT EXISTS (SELECT 1 FROM %s v "
        "WHERE v.username = %s.username AND v.domain = %s.domain AND NOT EXISTS (SELECT 1 "
        "FROM %s d WHERE d.msg_id = %s.id AND d.device_id = v.id AND d.delivered = 1)))",
        t, v, t, t, l, t);
    /* before the devices go: messages some device has, of owners with a
     * device to forget, that no device to keep lacks */
    sql[D_FORGET_MSGS] = g_strdup_printf(
        "DELETE FROM %s WHERE id IN (SELECT msg_id FROM %s WHERE delivered = 1) "
        "AND EXISTS (SELECT 1 FROM %s v WHERE v.username = %s.username AND "
        "v.domain = %s.domain AND v.last_seen < ?1) AND NOT EXISTS (SELECT 1 FROM %s v "
        "WHERE v.username = %s.username AND v.domain = %s.domain AND v.last_seen >= ?1 AND "
        "NOT EXISTS (SELECT 1 FROM %s d WHERE d.msg_id = %s.id AND d.device_id = v.id AND "
        "d.delivered = 1))", t, l, v, t, t, v, t, t, l, t);
    sql[D_FORGET] = g_strdup_printf("DELETE FROM %s WHERE last_seen < ?1", v);
    sql[D_RESET] = g_strdup_printf(
        "UPDATE %s SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = ?1", l);

    sq_devices_t *d = g_new0(sq_devices_t, 1);
    d->db = db;
    int e = 0;
    for (int q = 0; q < D_N; q++) {
        if (!e) {
            int rc = sqlite3_prepare_v3(db, sql[q], -1, SQLITE_PREPARE_PERSISTENT, &d->st[q],
                                        NULL);
            if (rc != SQLITE_OK)
                e = sq_fail(db, rc, "preparing a per-device statement");
        }
        g_free(sql[q]);
    }
    g_free(l);
    g_free(ln);
    g_free(v);
    g_free(dn);
    g_free(t);
    if (e) {
        sqd_free(d);
        return e;
    }
    *ret = d;
    return 0;
}

static void reset(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no rows; *ret_changes (may be NULL). */
static int run(sq_devices_t *d, dq_t q, const char *what, size_t *ret_changes)
{
    int rc = sqlite3_step(d->st[q]);
    int e = 0;
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        if (ret_changes)
            *ret_changes = (size_t)sqlite3_changes64(d->db);
    } else {
        e = sq_fail(d->db, rc, what);
    }
    reset(d->st[q]);
    return e;
}

int sqd_claim(sq_devices_t *d, const sq_schema_t *schema, const msilo_store_claim_t *c,
              msilo_message_t ***ret_msgs, size_t *ret_n)
{
    sqlite3_stmt *st = d->st[D_SEEN];
    sqlite3_bind_text(st, 1, c->user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, c->now);
    int rc = sqlite3_step(st);
    int64_t dev_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(d->db, rc, "recording a device");

    st = d->st[D_CANDIDATES];
    sqlite3_bind_int64(st, 1, dev_id);
    sqlite3_bind_text(st, 2, c->user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->domain, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, c->now);
    sqlite3_bind_text(st, 5, c->device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, c->max_next_try);
    sqlite3_bind_int64(st, 7, sql_limit(c->max));
    GPtrArray *got = g_ptr_array_new_with_free_func((GDestroyNotify)msilo_message_free);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        g_ptr_array_add(got, sq_row_to_message(schema, st));
    reset(st);
    int e = rc == SQLITE_DONE ? 0 : sq_fail(d->db, rc, "claiming messages for a device");
    for (guint i = 0; !e && i < got->len; i++) {
        st = d->st[D_LEASE];
        sqlite3_bind_int64(st, 1, ((msilo_message_t *)got->pdata[i])->id);
        sqlite3_bind_int64(st, 2, dev_id);
        sqlite3_bind_text(st, 3, c->lease_owner, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, c->lease_until);
        e = run(d, D_LEASE, "leasing messages to a device", NULL);
    }
    if (e) {
        g_ptr_array_unref(got);
        return e;
    }
    *ret_n = got->len;
    g_ptr_array_set_free_func(got, NULL);
    *ret_msgs = got->len ? (msilo_message_t **)(void *)g_ptr_array_free(got, FALSE) : NULL;
    if (!*ret_msgs)
        g_ptr_array_unref(got);
    return 0;
}

int sqd_release(sq_devices_t *d, const msilo_store_release_t *it)
{
    sqlite3_stmt *st = d->st[D_RELEASE];
    sqlite3_bind_int64(st, 1, it->id);
    sqlite3_bind_text(st, 2, it->device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)it->attempts);
    sqlite3_bind_int64(st, 4, it->next_try);
    if (it->lease_owner)
        sqlite3_bind_text(st, 5, it->lease_owner, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    return run(d, D_RELEASE, "releasing messages of a device", NULL);
}

int sqd_mark(sq_devices_t *d, const char *device, int64_t id, size_t *ret_deleted)
{
    static const dq_t steps[] = { D_KNOW, D_MARK, D_DELETE_DONE };
    size_t deleted = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
        sqlite3_stmt *st = d->st[steps[i]];
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, device, -1, SQLITE_STATIC);
        int e = run(d, steps[i], "recording a delivery to a device",
                    steps[i] == D_DELETE_DONE ? &deleted : NULL);
        if (e)
            return e;
    }
    *ret_deleted = deleted;
    return 0;
}

int sqd_forget(sq_devices_t *d, int64_t seen_before, size_t *ret_n)
{
    sqlite3_bind_int64(d->st[D_FORGET_MSGS], 1, seen_before);
    int e = run(d, D_FORGET_MSGS, "deleting messages nobody waits for", NULL);
    if (e)
        return e;
    sqlite3_bind_int64(d->st[D_FORGET], 1, seen_before);
    return run(d, D_FORGET, "forgetting devices", ret_n);
}

int sqd_reset(sq_devices_t *d, const char *lease_owner, size_t *ret_n)
{
    sqlite3_bind_text(d->st[D_RESET], 1, lease_owner, -1, SQLITE_STATIC);
    return run(d, D_RESET, "resetting per-device leases", ret_n);
}
