/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libmsilo-postgres: options, connection helpers, parameter
 * encoding and the table description shared by the store and the migration. */
#ifndef MSILO_PG_INTERNAL_H
#define MSILO_PG_INTERNAL_H

#include <glib.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <msilo/msilo.h>
#include <msilo/postgres.h>

/* Type OIDs we send or inspect (fixed in pg_type.dat since forever). */
#define PG_OID_BOOL 16
#define PG_OID_BYTEA 17
#define PG_OID_INT8 20
#define PG_OID_INT2 21
#define PG_OID_INT4 23
#define PG_OID_TEXT 25
#define PG_OID_VARCHAR 1043

/* Columns of the table. The first PG_COL_NAMED ones have configurable names
 * (sc_* keys, in this order); the rest are libmsilo's own. */
typedef enum pg_col {
    PG_COL_ID,
    PG_COL_FROM,
    PG_COL_TO,
    PG_COL_USER,
    PG_COL_HOST,
    PG_COL_INC,
    PG_COL_EXP,
    PG_COL_SND,
    PG_COL_CTYPE,
    PG_COL_BODY,
    PG_COL_HDRS,
    PG_COL_CALLID,
    PG_COL_NAMED,
    PG_COL_LEASE_OWNER = PG_COL_NAMED,
    PG_COL_LEASE_UNTIL,
    PG_COL_ATTEMPTS,
    PG_COL_NEXT_TRY,
    PG_COL_KEY, /* msilo_message_t.store_key, unique */
    PG_COL_DEVICE, /* msilo_message_t.device: the one device a message is for */
    PG_COL_LEASE_DEVICE, /* every_device: the device whose lease the lease columns hold */
    PG_COL_N
} pg_col_t;

struct msilo_pg_options {
    char *url;
    char *table;
    char *col[PG_COL_NAMED]; /* NULL = default */
};

/* Column name in effect for @p c (default or configured). */
const char *pg_options_col(const msilo_pg_options_t *o, int c);
const char *pg_options_table(const msilo_pg_options_t *o);
msilo_pg_options_t *pg_options_copy(const msilo_pg_options_t *o);

/* msilo_store_fail(): records the calling thread's msilo_error_detail() and
 * returns @code. */
int pg_fail(int code, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Connects (URL, postgresql:// URI or key=value; client_encoding forced to
 * UTF8, notices silenced). NULL on failure with *ret_err = MSILO_ECONFIG (does
 * not parse) or MSILO_ESTORE (unreachable), detail set. */
PGconn *pg_connect(const char *url, int *ret_err);

/* Quoted identifier (g_free), or NULL (detail set) when libpq refuses it. */
char *pg_ident(PGconn *conn, const char *name);

/* MSILO_ESTORE with a detail made of @p what and the server's message; clears
 * @p res. */
int pg_result_fail(PGconn *conn, PGresult *res, const char *what);

/* What the catalog says about one column. */
typedef struct pg_colinfo {
    gboolean present;
    unsigned type; /* type OID */
    int typmod;    /* atttypmod (-1 = none; VARCHAR(n) = n + 4) */
    gboolean notnull;
} pg_colinfo_t;

/* Looks the table up: *ret_exists, and info[c] for every column c. The table
 * name is the quoted identifier. MSILO_ESTORE on failure. */
int pg_describe(PGconn *conn, const char *table_q, const msilo_pg_options_t *o,
                gboolean *ret_exists, pg_colinfo_t info[PG_COL_N]);

/* What the store needs of its table: every column (MSILO_ECONFIG naming the
 * missing ones), a BYTEA body, and the id's sequence (its OID as text in
 * *ret_seq_oid, g_free). MSILO_ESTORE when a query fails. */
int pg_inspect(PGconn *conn, const char *table_q, const msilo_pg_options_t *o,
               pg_colinfo_t info[PG_COL_N], char **ret_seq_oid);

/* ---- parameters in binary format ---- */

#define PG_MAX_PARAMS 20

typedef struct pg_params {
    int n;
    const char *values[PG_MAX_PARAMS];
    int lengths[PG_MAX_PARAMS];
    int formats[PG_MAX_PARAMS];
    GByteArray *bufs[PG_MAX_PARAMS];
} pg_params_t;

/* A one-dimensional array being built in PostgreSQL's binary array format. */
typedef struct pg_array {
    GByteArray *buf;
} pg_array_t;

void pg_params_text(pg_params_t *p, const char *s); /* NULL = SQL NULL */
void pg_params_int8(pg_params_t *p, int64_t v);
void pg_params_array(pg_params_t *p, pg_array_t *a); /* takes a's buffer */
void pg_params_clear(pg_params_t *p);

void pg_array_init(pg_array_t *a, unsigned elem_oid, size_t n);
void pg_array_text(pg_array_t *a, const char *s); /* NULL = NULL element */
void pg_array_bytes(pg_array_t *a, const void *data, size_t len);
void pg_array_int8(pg_array_t *a, int64_t v);
void pg_array_bool(pg_array_t *a, gboolean v);

/* Reads a binary int8 field. */
int64_t pg_get_int8(const PGresult *r, int row, int col);

/* ---- statements (pg-sql.c) ---- */

/* The store's statements, in the order of their prepared names. */
typedef enum {
    Q_LOCK,
    Q_PUT,
    Q_PUT_FREE, /* Q_PUT without a quota (max_messages 0): no count, no rank, no key read */
    Q_CLAIM_OWNER,
    Q_CLAIM_REMINDERS,
    Q_REMOVE,
    Q_RELEASE,
    Q_COUNT_OWNER,
    Q_COUNT_ALL,
    Q_EXPIRE,
    Q_LIST_OWNER,
    Q_LIST_ALL,
    Q_GET,
    Q_PURGE,
    Q_RESET,
    Q_BY_KEY,
    Q_TAKE_EXPIRED,
    /* per-device delivery (pg-devices.c) */
    Q_DEV_CLAIM,
    Q_DEV_RELEASE,
    Q_DEV_LOCK,
    Q_DEV_MARK,
    Q_DEV_FORGET,
    Q_DEV_RESET,
    Q_N
} query_t;

/* Builds the SQL text of every statement for table @t (quoted) and the
 * quoted column names @q into @sql (g_free each). */
void pg_sql_build(char *sql[Q_N], const char *t, char *const q[PG_COL_N]);
/* The SQL of Q_TAKE_EXPIRED (pg-expired.c); @p tcols: the select list with
 * the "m." prefix. */
char *pg_sql_take_expired(const char *t, char *const q[PG_COL_N], const char *tcols);
/* The same for the Q_DEV_* statements, with the quoted per-device tables
 * @v (devices) and @l (deliveries) (pg-devices.c). */
void pg_devices_sql_build(char *sql[Q_N], const char *t, const char *v, const char *l,
                          char *const q[PG_COL_N]);
/* The names of the per-device tables of table @table_name (g_free). */
char *pg_devices_table(const char *table_name, const char *suffix);
/* Migration (inside msilo_pg_migrate()'s transaction): creates the two
 * per-device tables of @table_name (quoted @t) when missing; counts them. */
int pg_devices_migrate(PGconn *conn, const char *table_name, const char *t,
                       char *const q[PG_COL_N], size_t *changes);

/* ---- the store (pg-store.c), shared with its put (pg-put.c) ---- */

typedef struct pg_store {
    msilo_store_t base;
    msilo_pg_options_t *opts;
    PGconn *conn;
    /* pg_interrupt() may come from any thread: conn is replaced and closed
     * only under this lock, so the socket it shuts down is never one that
     * was closed (and its number reused) meanwhile */
    GMutex conn_lock;
    /* a duplicate of conn's socket, for pg_interrupt(): libpq closes its own
     * descriptor when it sees the connection lost, on the worker thread; the
     * duplicate keeps the socket (and its number) until drop_conn() */
    int sock;
    atomic_bool interrupted; /* every later call fails at once */
    guint32 prepared;     /* bit q: Q_* prepared on this connection */
    gint64 reconnect_at;  /* monotonic µs before which we do not retry */
    gint64 backoff;       /* µs; 0 until a reconnect failed */
    char *sql[Q_N];
    char *table_name;     /* unquoted, the advisory lock's namespace */
    char *seq_oid;        /* the id column's sequence: its OID, as text */
    pg_colinfo_t info[PG_COL_N];
    /* the table was inspected and the SQL built: FALSE until the first
     * connection when the store was opened with the database unreachable */
    gboolean ready;
} pg_store;

/* A usable connection (reconnecting, with back-off; the table checked on
 * the first one): 0 or MSILO_ESTORE / MSILO_ECONFIG. */
int pg_ensure_conn(pg_store *s);
/* Prepares statement @p q on the connection once. */
int pg_prepare(pg_store *s, query_t q);
/* Its prepared name. */
const char *pg_stmt_name(query_t q, char buf[32]);
/* Runs prepared statement @p q, retried once on a fresh connection when the
 * connection was lost; consumes @p p; *ret_res to PQclear on success. */
int pg_run(pg_store *s, query_t q, pg_params_t *p, const char *what, PGresult **ret_res);
/* After a failed statement: drops a dead connection, ends a live one's
 * pipeline or transaction. */
void pg_after_failure(pg_store *s);
/* @p v clamped to the range of column @p col's type. */
int64_t pg_clamp_to(const pg_store *s, int col, int64_t v);
/* What put writes for @p v into @p col (see sql_not_null()). */
const char *pg_nn(const pg_store *s, int col, const char *v, const char *subst);
/* The take_expired method (pg-expired.c). */
int pg_take_expired(msilo_store_t *base, int64_t now, const char *ctype, size_t max,
                    msilo_message_t ***ret_msgs, size_t *ret_n);
/* Rows (SELECT list of pg-sql.c) to messages sorted by id (pg-store.c). */
void pg_rows_to_messages(const pg_store *s, const PGresult *r, msilo_message_t ***ret_msgs,
                         size_t *ret_n);
/* Per-device methods (pg-devices.c). */
int pg_devices_claim(pg_store *s, const msilo_store_claim_t *c, msilo_message_t ***ret_msgs,
                     size_t *ret_n);
int pg_devices_release(pg_store *s, const msilo_store_release_t *items, size_t n,
                       size_t item_size);
int pg_mark_delivered(msilo_store_t *base, const msilo_store_mark_t *items, size_t n,
                      size_t item_size, size_t *ret_deleted);
int pg_forget_devices(msilo_store_t *base, int64_t seen_before, size_t *ret_n);
/* The per-device part of reset_leases(). */
int pg_devices_reset(pg_store *s, const char *lease_owner, size_t *ret_n);
/* The put method (pg-put.c). */
int pg_put(msilo_store_t *base, msilo_message_t *const *msgs, size_t n, int64_t max_per_owner,
           int *results);

#endif
