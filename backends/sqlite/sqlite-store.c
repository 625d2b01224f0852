/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The SQLite store: the msilo_store_t methods on one SQLite connection.
 *
 * Every statement is prepared once (persistent) and takes its values as
 * parameters. Every write runs in BEGIN IMMEDIATE ... COMMIT: the write lock
 * is taken before the first read, so what a claim or a quota check reads
 * cannot change before it writes, even with other processes on the file
 * (with a deferred transaction SQLite would instead fail the upgrade with
 * SQLITE_BUSY_SNAPSHOT, without waiting). Reads (count, list, get) run in
 * autocommit and, thanks to WAL, never wait for a writer.
 *
 * One GMutex guards the connection, so the store is THREADSAFE: calls from
 * several threads queue on it (a connection does one statement at a time).
 * The statements' text is sqlite-sql.c's.
 */
#include "sqlite-internal.h"
#include "sql-rows.h"

#include <stdatomic.h>
#include <string.h>

typedef struct sq_store {
    msilo_store_t base; /* first: the core sees an msilo_store_t */
    GMutex lock;
    sqlite3 *db;
    sqlite3_stmt *st[Q_N];
    sq_schema_t schema;
    sq_devices_t *dev; /* per-device delivery (sqlite-devices.c) */
    atomic_bool interrupted; /* sq_interrupt(): every later statement fails */
    sq_limits_t limits;      /* sqlite-limit.c */
} sq_store;

/* The columns of SELECT_COLS (sqlite-internal.h), by position. */
enum { R_ID, R_USER, R_HOST, R_FROM, R_TO, R_CTYPE, R_BODY, R_HDRS, R_CALLID, R_INC, R_EXP,
       R_SND, R_ATTEMPTS, R_NEXT_TRY, R_DEVICE };

/* Declares `s` and holds the store's lock until the end of the enclosing
 * block, so that no early return can leave it locked. */
#define LOCKED(base)                                                                       \
    sq_store *s = (sq_store *)(base);                                                      \
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker_ = g_mutex_locker_new(&s->lock)

/* sqlite3_step(), or SQLITE_INTERRUPT at once once the store was
 * interrupted; a rollback still runs, so no transaction stays open (and
 * holds the file's write lock) after an interrupt. */
static int step(sq_store *s, sqlite3_stmt *st)
{
    if (G_UNLIKELY(atomic_load_explicit(&s->interrupted, memory_order_relaxed)) &&
        st != s->st[Q_ROLLBACK])
        return SQLITE_INTERRUPT;
    int rc = sqlite3_step(st);
    if (G_UNLIKELY(rc != SQLITE_ROW && rc != SQLITE_DONE &&
                   atomic_load_explicit(&s->interrupted, memory_order_relaxed)))
        return SQLITE_INTERRUPT; /* a busy wait given up, say why */
    return rc;
}

/* The busy handler: SQLite's default steps (1 ms growing to 100 ms) up to
 * SQ_BUSY_TIMEOUT_MS, but it gives up as soon as the store is interrupted
 * (sqlite3_interrupt() does not end a busy wait). */
static int busy_wait(void *data, int count)
{
    static const int delays[] = { 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 };
    enum { N = G_N_ELEMENTS(delays), TOTAL_N = 328 }; /* TOTAL_N: the sum of delays */
    sq_store *s = data;
    if (atomic_load_explicit(&s->interrupted, memory_order_relaxed))
        return 0;
    int delay, prior;
    if (count < N) {
        delay = delays[count];
        prior = 0;
        for (int i = 0; i < count; i++)
            prior += delays[i];
    } else {
        delay = delays[N - 1];
        prior = TOTAL_N + (count - N) * delay;
    }
    if (prior >= SQ_BUSY_TIMEOUT_MS)
        return 0;
    sqlite3_sleep(MIN(delay, SQ_BUSY_TIMEOUT_MS - prior));
    return 1;
}

static int prepare_all(sq_store *s, const char *t)
{
    char *sql[Q_N] = { 0 };
    sq_sql_build(sql, t);
    int e = 0;
    for (int q = 0; q < Q_N; q++) {
        if (!e) {
            int rc = sqlite3_prepare_v3(s->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT, &s->st[q],
                                        NULL);
            if (rc != SQLITE_OK)
                e = sq_fail(s->db, rc, "preparing a statement");
        }
        g_free(sql[q]);
    }
    return e;
}

/* ---- statements ---- */

/* Makes @p st ready for the next use (bindings cleared). */
static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows. *ret_changes (may be NULL) gets
 * the number of rows it changed. */
static int run(sq_store *s, query_t q, const char *what, size_t *ret_changes)
{
    sqlite3_stmt *st = s->st[q];
    int rc = step(s, st);
    int e = 0;
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        if (ret_changes)
            *ret_changes = (size_t)sqlite3_changes64(s->db);
    } else {
        e = sq_fail(s->db, rc, what);
    }
    done(st);
    return e;
}

static int begin(sq_store *s)
{
    return run(s, Q_BEGIN, "starting a transaction", NULL);
}

/* Commits, or after an error @p e rolls back. Returns the first error. */
static int end(sq_store *s, int e)
{
    if (!e) {
        e = run(s, Q_COMMIT, "committing", NULL);
        if (!e)
            return 0;
    }
    /* Some errors (I/O, full disk) roll the transaction back by themselves. */
    if (!sqlite3_get_autocommit(s->db))
        run(s, Q_ROLLBACK, "rolling back", NULL);
    return e;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* ---- rows ---- */

/* @p empty_is_null: "" reads as NULL. For extra headers and Call-ID an empty
 * value means none (Kamailio writes '' for "no headers"); for the URIs only
 * where the column is NOT NULL, since there "" is how NULL was stored. */
static char *col_str(sqlite3_stmt *st, int col, gboolean empty_is_null)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    const unsigned char *v = sqlite3_column_text(st, col);
    int len = sqlite3_column_bytes(st, col);
    if (!v || (len == 0 && empty_is_null))
        return NULL;
    return g_strndup((const char *)v, (gsize)len);
}

msilo_message_t *sq_row_to_message(const sq_schema_t *schema, sqlite3_stmt *st)
{
    msilo_message_t *m = msilo_message_new();
    m->id = sqlite3_column_int64(st, R_ID);
    m->user = col_str(st, R_USER, FALSE);
    m->domain = col_str(st, R_HOST, FALSE);
    if (!m->user)
        m->user = g_strdup("");
    if (!m->domain)
        m->domain = g_strdup("");
    m->src = col_str(st, R_FROM, schema->notnull[SQ_COL_FROM]);
    m->dst = col_str(st, R_TO, schema->notnull[SQ_COL_TO]);
    m->ctype = col_str(st, R_CTYPE, FALSE);
    if (sqlite3_column_type(st, R_BODY) != SQLITE_NULL) {
        const void *b = sqlite3_column_blob(st, R_BODY);
        int len = sqlite3_column_bytes(st, R_BODY);
        if (b && len > 0) {
            m->body = g_memdup2(b, (gsize)len);
            m->body_len = (size_t)len;
        }
    }
    m->extra_hdrs = col_str(st, R_HDRS, TRUE);
    m->callid = col_str(st, R_CALLID, TRUE);
    m->inc_time = sqlite3_column_int64(st, R_INC);
    m->exp_time = sqlite3_column_int64(st, R_EXP);
    m->snd_time = sqlite3_column_int64(st, R_SND);
    int64_t att = sqlite3_column_int64(st, R_ATTEMPTS);
    m->attempts = (uint32_t)CLAMP(att, 0, (int64_t)G_MAXUINT32);
    m->next_try = sqlite3_column_int64(st, R_NEXT_TRY);
    m->device = col_str(st, R_DEVICE, TRUE);
    return m;
}

/* Steps @p q to the end, turning every row into a message, sorted by id.
 * Writes the outputs only on success. */
static int collect(sq_store *s, query_t q, const char *what, msilo_message_t ***ret_msgs,
                   size_t *ret_n)
{
    sqlite3_stmt *st = s->st[q];
    GPtrArray *got = g_ptr_array_new();
    int rc;
    while ((rc = step(s, st)) == SQLITE_ROW)
        g_ptr_array_add(got, sq_row_to_message(&s->schema, st));
    int e = rc == SQLITE_DONE ? 0 : sq_fail(s->db, rc, what);
    done(st);
    if (e) {
        g_ptr_array_set_free_func(got, (GDestroyNotify)msilo_message_free);
        g_ptr_array_unref(got);
        return e;
    }
    size_t n = got->len;
    sql_sort_by_id((msilo_message_t **)got->pdata, n);
    *ret_n = n;
    *ret_msgs = n ? (msilo_message_t **)g_ptr_array_free(got, FALSE) : NULL;
    if (!n)
        g_ptr_array_unref(got);
    return 0;
}

/* ---- methods ---- */

/* What insert writes for @p v into column @p col (see sql_not_null()). */
static const char *nn(const sq_store *s, sq_col_t col, const char *v, const char *subst)
{
    return sql_not_null(v, s->schema.notnull[col], subst);
}

static int count_owner(sq_store *s, const char *user, const char *domain, int64_t *ret)
{
    sqlite3_stmt *st = s->st[Q_COUNT_OWNER];
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
    int rc = step(s, st);
    int e = 0;
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int64(st, 0);
    else
        e = sq_fail(s->db, rc, "counting messages");
    done(st);
    return e;
}

static int insert(sq_store *s, const msilo_message_t *m, int64_t *ret_id)
{
    sqlite3_stmt *st = s->st[Q_INSERT];
    bind_text(st, 1, m->user);
    bind_text(st, 2, m->domain);
    bind_text(st, 3, nn(s, SQ_COL_FROM, m->src, ""));
    bind_text(st, 4, nn(s, SQ_COL_TO, m->dst, ""));
    bind_text(st, 5, nn(s, SQ_COL_CTYPE, m->ctype, "text/plain"));
    /* Always a value (possibly empty), as the PostgreSQL store does. */
    sqlite3_bind_blob64(st, 6, m->body_len ? m->body : "", m->body_len, SQLITE_STATIC);
    bind_text(st, 7, nn(s, SQ_COL_HDRS, m->extra_hdrs, ""));
    bind_text(st, 8, nn(s, SQ_COL_CALLID, m->callid, ""));
    sqlite3_bind_int64(st, 9, m->inc_time);
    sqlite3_bind_int64(st, 10, m->exp_time);
    sqlite3_bind_int64(st, 11, m->snd_time);
    sqlite3_bind_int64(st, 12, (int64_t)m->attempts);
    sqlite3_bind_int64(st, 13, m->next_try);
    bind_text(st, 14, m->store_key);
    bind_text(st, 15, m->device);
    int rc = step(s, st);
    int e = 0;
    if (rc == SQLITE_ROW) {
        *ret_id = sqlite3_column_int64(st, 0);
        rc = step(s, st); /* finishes the statement */
        if (rc != SQLITE_DONE)
            e = sq_fail(s->db, rc, "storing a message");
    } else {
        e = sq_fail(s->db, rc, "storing a message");
    }
    done(st);
    return e;
}

/* *ret_id: the id of the message stored under @p key, 0 if none. */
static int find_key(sq_store *s, const char *key, int64_t *ret_id)
{
    sqlite3_stmt *st = s->st[Q_BY_KEY];
    bind_text(st, 1, key);
    int rc = step(s, st);
    int e = 0;
    *ret_id = 0;
    if (rc == SQLITE_ROW)
        *ret_id = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        e = sq_fail(s->db, rc, "looking up a store key");
    done(st);
    return e;
}

static int sq_put(msilo_store_t *base, msilo_message_t *const *msgs, size_t n,
                  int64_t max_per_owner, int *results)
{
    for (size_t i = 0; i < n; i++)
        if (!msgs[i] || !msgs[i]->user || !msgs[i]->domain ||
            (msgs[i]->body_len && !msgs[i]->body))
            return msilo_store_fail(MSILO_EINVAL, "sqlite put: message %zu incomplete", i);
    LOCKED(base);
    /* Results are written only after the commit: a failed put writes none. */
    int64_t *ids = g_new0(int64_t, n);
    int e = begin(s);
    for (size_t i = 0; !e && i < n; i++) {
        /* stored already (a retry, a retransmission): its id, nothing stored */
        if (msgs[i]->store_key && ((e = find_key(s, msgs[i]->store_key, &ids[i])) || ids[i]))
            continue;
        if (max_per_owner > 0) {
            /* Inside the transaction the count includes this batch's
             * earlier messages. */
            int64_t have = 0;
            e = count_owner(s, msgs[i]->user, msgs[i]->domain, &have);
            if (e || have >= max_per_owner)
                continue; /* ids[i] stays 0: refused */
        }
        bool fits = true;
        if ((e = sq_limits_admit(&s->limits, s->db, msgs[i], &fits)) || !fits)
            continue; /* the global cap: refused as a full mailbox is */
        e = insert(s, msgs[i], &ids[i]);
        if (!e)
            sq_limits_added(&s->limits, msgs[i]);
    }
    e = end(s, e);
    if (e)
        s->limits.valid = false;
    if (!e) {
        for (size_t i = 0; i < n; i++) {
            results[i] = ids[i] > 0 ? 0 : MSILO_EFULL;
            if (ids[i] > 0)
                msgs[i]->id = ids[i];
        }
    }
    g_free(ids);
    return e;
}

static int sq_claim(msilo_store_t *base, const msilo_store_claim_t *c,
                    msilo_message_t ***ret_msgs, size_t *ret_n)
{
    if (!c || !ret_msgs || !ret_n || c->max == 0 || !c->lease_owner ||
        (!c->reminders && (!c->user || !c->domain)) || (c->device && c->reminders))
        return msilo_store_fail(MSILO_EINVAL, "sqlite claim: bad arguments");
    LOCKED(base);
    if (c->device) {
        msilo_message_t **msgs = NULL;
        size_t n = 0;
        int e = begin(s);
        if (!e)
            e = sqd_claim(s->dev, &s->schema, c, &msgs, &n);
        e = end(s, e);
        if (e) {
            msilo_message_array_free(msgs, n);
            return e;
        }
        *ret_msgs = msgs;
        *ret_n = n;
        return 0;
    }
    query_t q = c->reminders ? Q_CLAIM_REMINDERS : Q_CLAIM_OWNER;
    sqlite3_stmt *st = s->st[q];
    sqlite3_bind_text(st, 1, c->lease_owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->lease_until);
    if (!c->reminders) {
        sqlite3_bind_text(st, 3, c->user, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, c->domain, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 5, c->now);
    sqlite3_bind_int64(st, 6, c->max_next_try);
    sqlite3_bind_int64(st, 7, sql_limit(c->max));
    msilo_message_t **msgs = NULL;
    size_t n = 0;
    int e = begin(s);
    if (!e)
        e = collect(s, q, "claiming messages", &msgs, &n);
    else
        done(st);
    e = end(s, e);
    if (e) {
        msilo_message_array_free(msgs, n);
        return e;
    }
    *ret_msgs = msgs;
    *ret_n = n;
    return 0;
}

static int sq_remove(msilo_store_t *base, const int64_t *ids, size_t n, size_t *ret_deleted)
{
    if (!ids && n)
        return msilo_store_fail(MSILO_EINVAL, "sqlite remove: bad arguments");
    LOCKED(base);
    size_t deleted = 0;
    int e = begin(s);
    for (size_t i = 0; !e && i < n; i++) {
        size_t ch = 0;
        sqlite3_bind_int64(s->st[Q_REMOVE], 1, ids[i]);
        e = run(s, Q_REMOVE, "deleting messages", &ch);
        deleted += ch;
    }
    e = end(s, e);
    if (!e && ret_deleted)
        *ret_deleted = deleted;
    return e;
}

static int sq_release(msilo_store_t *base, const msilo_store_release_t *items, size_t n,
                      size_t item_size)
{
    if (!items && n)
        return msilo_store_fail(MSILO_EINVAL, "sqlite release: bad arguments");
    LOCKED(base);
    int e = begin(s);
    sqlite3_stmt *st = s->st[Q_RELEASE];
    for (size_t i = 0; !e && i < n; i++) {
        const msilo_store_release_t *it = MSILO_STORE_RELEASE_ITEM(items, item_size, i);
        if (it->device) { /* item_size >= the core's sizeof: the member is there */
            e = sqd_release(s->dev, it);
            continue;
        }
        sqlite3_bind_int64(st, 1, it->id);
        sqlite3_bind_int64(st, 2, (int64_t)it->attempts);
        sqlite3_bind_int64(st, 3, it->next_try);
        sqlite3_bind_int(st, 4, (it->flags & MSILO_RELEASE_CLEAR_SND_TIME) != 0);
        bind_text(st, 5, it->lease_owner);
        e = run(s, Q_RELEASE, "releasing messages", NULL);
    }
    return end(s, e);
}

static int sq_count(msilo_store_t *base, const char *user, const char *domain,
                    int64_t *ret_count)
{
    if (!ret_count || (user == NULL) != (domain == NULL))
        return msilo_store_fail(MSILO_EINVAL, "sqlite count: bad arguments");
    LOCKED(base);
    if (user)
        return count_owner(s, user, domain, ret_count);
    sqlite3_stmt *st = s->st[Q_COUNT_ALL];
    int rc = step(s, st);
    int e = 0;
    if (rc == SQLITE_ROW)
        *ret_count = sqlite3_column_int64(st, 0);
    else
        e = sq_fail(s->db, rc, "counting messages");
    done(st);
    return e;
}

static int sq_expire(msilo_store_t *base, int64_t now, size_t *ret_deleted)
{
    LOCKED(base);
    size_t deleted = 0;
    int e = begin(s);
    if (!e) {
        sqlite3_bind_int64(s->st[Q_EXPIRE], 1, now);
        e = run(s, Q_EXPIRE, "deleting expired messages", &deleted);
    }
    e = end(s, e);
    if (!e && ret_deleted)
        *ret_deleted = deleted;
    return e;
}

static int sq_take_expired(msilo_store_t *base, int64_t now, const char *ctype, size_t max,
                           msilo_message_t ***ret_msgs, size_t *ret_n)
{
    if (!ret_msgs || !ret_n || max == 0)
        return msilo_store_fail(MSILO_EINVAL, "sqlite take_expired: bad arguments");
    g_autofree char *want = ctype ? sql_media_type(ctype) : NULL;
    LOCKED(base);
    msilo_message_t **msgs = NULL;
    size_t n = 0;
    int e = begin(s);
    if (!e) {
        sqlite3_stmt *st = s->st[Q_TAKE_EXPIRED];
        sqlite3_bind_int64(st, 1, now);
        bind_text(st, 2, want);
        sqlite3_bind_int64(st, 3, sql_limit(max));
        e = collect(s, Q_TAKE_EXPIRED, "taking expired messages", &msgs, &n);
    }
    e = end(s, e);
    if (e) {
        msilo_message_array_free(msgs, n);
        return e;
    }
    *ret_msgs = msgs;
    *ret_n = n;
    return 0;
}

static int sq_list(msilo_store_t *base, const char *user, const char *domain, int64_t after_id,
                   size_t max, msilo_message_t ***ret_msgs, size_t *ret_n)
{
    if (!ret_msgs || !ret_n || max == 0 || (user == NULL) != (domain == NULL))
        return msilo_store_fail(MSILO_EINVAL, "sqlite list: bad arguments");
    LOCKED(base);
    query_t q = user ? Q_LIST_OWNER : Q_LIST_ALL;
    sqlite3_stmt *st = s->st[q];
    int i = 1;
    if (user) {
        sqlite3_bind_text(st, i++, user, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, domain, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, i++, after_id);
    sqlite3_bind_int64(st, i, sql_limit(max));
    return collect(s, q, "listing messages", ret_msgs, ret_n);
}

static int sq_get(msilo_store_t *base, int64_t id, msilo_message_t **ret_msg)
{
    if (!ret_msg)
        return msilo_store_fail(MSILO_EINVAL, "sqlite get: bad arguments");
    LOCKED(base);
    sqlite3_bind_int64(s->st[Q_GET], 1, id);
    msilo_message_t **msgs = NULL;
    size_t n = 0;
    int e = collect(s, Q_GET, "reading a message", &msgs, &n);
    if (e)
        return e;
    if (n == 0)
        return msilo_store_fail(MSILO_ENOTFOUND, "no message with id %" G_GINT64_FORMAT, id);
    *ret_msg = msgs[0];
    for (size_t i = 1; i < n; i++) /* id is the primary key: never */
        msilo_message_free(msgs[i]);
    g_free(msgs);
    return 0;
}

static int sq_purge(msilo_store_t *base, const char *user, const char *domain,
                    size_t *ret_deleted)
{
    if (!user || !domain)
        return msilo_store_fail(MSILO_EINVAL, "sqlite purge: bad arguments");
    LOCKED(base);
    size_t deleted = 0;
    int e = begin(s);
    if (!e) {
        sqlite3_bind_text(s->st[Q_PURGE], 1, user, -1, SQLITE_STATIC);
        sqlite3_bind_text(s->st[Q_PURGE], 2, domain, -1, SQLITE_STATIC);
        e = run(s, Q_PURGE, "purging messages", &deleted);
    }
    e = end(s, e);
    if (!e && ret_deleted)
        *ret_deleted = deleted;
    return e;
}

static int sq_reset_leases(msilo_store_t *base, const char *lease_owner, size_t *ret_n)
{
    if (!lease_owner)
        return msilo_store_fail(MSILO_EINVAL, "sqlite reset_leases: bad arguments");
    LOCKED(base);
    size_t changed = 0;
    int e = begin(s);
    if (!e) {
        sqlite3_bind_text(s->st[Q_RESET], 1, lease_owner, -1, SQLITE_STATIC);
        e = run(s, Q_RESET, "resetting leases", &changed);
    }
    size_t per_device = 0; /* and the leases of its per-device claims */
    if (!e)
        e = sqd_reset(s->dev, lease_owner, &per_device);
    changed += per_device;
    e = end(s, e);
    if (!e && ret_n)
        *ret_n = changed;
    return e;
}

static int sq_mark_delivered(msilo_store_t *base, const msilo_store_mark_t *items, size_t n,
                             size_t item_size, size_t *ret_deleted)
{
    if (!items && n)
        return msilo_store_fail(MSILO_EINVAL, "sqlite mark_delivered: bad arguments");
    LOCKED(base);
    size_t deleted = 0;
    int e = begin(s);
    /* one transaction; an item sees the earlier items' marks */
    for (size_t i = 0; !e && i < n; i++) {
        const msilo_store_mark_t *it = MSILO_STORE_MARK_ITEM(items, item_size, i);
        size_t d = 0;
        if (!it->device)
            continue;
        e = sqd_mark(s->dev, it->device, it->id, &d);
        deleted += d;
    }
    e = end(s, e);
    if (!e && ret_deleted)
        *ret_deleted = deleted;
    return e;
}

static int sq_forget_devices(msilo_store_t *base, int64_t seen_before, size_t *ret_n)
{
    LOCKED(base);
    size_t n = 0;
    int e = begin(s);
    if (!e)
        e = sqd_forget(s->dev, seen_before, &n);
    e = end(s, e);
    if (!e && ret_n)
        *ret_n = n;
    return e;
}

/* Any thread, without the store's lock (the call that holds it may be the
 * one to cut short): the db handle lives until sq_free(), and
 * sqlite3_interrupt() may be called from any thread while it is open. */
static void sq_interrupt(msilo_store_t *base)
{
    sq_store *s = (sq_store *)base;
    atomic_store_explicit(&s->interrupted, 1, memory_order_relaxed);
    sqlite3_interrupt(s->db);
}

static void sq_free(msilo_store_t *base)
{
    sq_store *s = (sq_store *)base;
    if (!s)
        return;
    for (int q = 0; q < Q_N; q++)
        sqlite3_finalize(s->st[q]); /* NULL is a no-op */
    sq_limits_clear(&s->limits);
    sqd_free(s->dev);
    /* close_v2: never fails with "busy"; the WAL is checkpointed when the
     * last connection closes. */
    sqlite3_close_v2(s->db);
    g_mutex_clear(&s->lock);
    g_free(s);
}

/* ---- construction ---- */

int msilo_sqlite_store_new_table(msilo_store_t **ret, const char *path_or_url, const char *table)
{
    if (!ret || !path_or_url)
        return msilo_store_fail(MSILO_EINVAL, "msilo_sqlite_store_new: bad arguments");
    if (!table)
        table = SQ_DEFAULT_TABLE;
    if (!*table)
        return msilo_store_fail(MSILO_ECONFIG, "empty table name");

    sq_store *s = g_new0(sq_store, 1);
    s->base = (msilo_store_t)MSILO_STORE_INIT;
    s->base.name = "sqlite";
    /* Blocking (disk I/O), but every call holds the store's mutex. */
    s->base.flags = MSILO_STORE_THREADSAFE;
    s->base.put = sq_put;
    s->base.claim = sq_claim;
    s->base.remove = sq_remove;
    s->base.release = sq_release;
    s->base.count = sq_count;
    s->base.expire = sq_expire;
    s->base.free = sq_free;
    s->base.list = sq_list;
    s->base.get = sq_get;
    s->base.purge = sq_purge;
    s->base.reset_leases = sq_reset_leases;
    s->base.interrupt = sq_interrupt;
    s->base.take_expired = sq_take_expired;
    s->base.mark_delivered = sq_mark_delivered;
    s->base.forget_devices = sq_forget_devices;
    g_mutex_init(&s->lock);

    int e = sq_open(path_or_url, &s->db);
    if (!e)
        sqlite3_busy_handler(s->db, busy_wait, s); /* instead of sq_open's busy timeout */
    if (!e)
        e = sq_migrate(s->db, table, NULL, &s->schema);
    if (!e) {
        char *t = sq_ident(table);
        e = prepare_all(s, t);
        if (!e)
            e = sq_limits_init(&s->limits, s->db, table, t);
        g_free(t);
    }
    if (!e)
        e = sqd_new(s->db, table, &s->dev);
    if (e) {
        sq_free(&s->base);
        return e;
    }
    *ret = &s->base;
    return 0;
}

int msilo_sqlite_store_new(msilo_store_t **ret, const char *path_or_url)
{
    return msilo_sqlite_store_new_table(ret, path_or_url, NULL);
}

int msilo_sqlite_store_set_limit(msilo_store_t *store, msilo_sqlite_limit_t limit,
                                 uint64_t value)
{
    if (!store || store->put != sq_put)
        return msilo_store_fail(MSILO_EINVAL, "msilo_sqlite_store_set_limit: not a SQLite store");
    if (limit != MSILO_SQLITE_MAX_MESSAGES && limit != MSILO_SQLITE_MAX_BYTES)
        return msilo_store_fail(MSILO_EINVAL, "msilo_sqlite_store_set_limit: unknown limit %d",
                                (int)limit);
    if (value > (uint64_t)INT64_MAX)
        return msilo_store_fail(MSILO_EINVAL, "msilo_sqlite_store_set_limit: %" G_GUINT64_FORMAT
                                " is too large", value);
    LOCKED(store);
    if (limit == MSILO_SQLITE_MAX_MESSAGES)
        s->limits.max_messages = value;
    else
        s->limits.max_bytes = value;
    return 0;
}
