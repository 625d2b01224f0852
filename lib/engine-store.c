/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store path: msilo_engine_store(), the store ops it makes, the batches
 * they go to the store in, and the extra store handles (peers) that let
 * batches commit side by side.
 *
 * Owns: the store ops and their chunks (e->op_chunk), the stores waiting for
 * a batch (e->put_wait), the batches in flight (e->puts_running, the set of
 * their owners e->put_owners), the put workers (e->put_workers) and the
 * opening of every peer handle, the expiry worker's included.
 *
 * Invariants:
 * - A store's callback runs once, from the loop, never inside
 *   msilo_engine_store(), with the store's own result once its batch has
 *   committed or failed; 0 means the message is committed. While the engine
 *   is being freed the stores still waiting are written synchronously and
 *   get their real result too.
 * - Stores that arrive while a batch is being written wait and go to the
 *   store together as the next batch, up to PUT_BATCH_MAX, in arrival
 *   order; each still gets its own result. Stores that arrive after a batch
 *   was submitted and before it started join it (put_join_open()).
 *   e->put_lock guards only that: the open batch's ops and put.open.
 * - A batch that fails as a whole (MSILO_ESTORE) is retried one store at a
 *   time, in order, ahead of what came after it, so one message the store
 *   refuses cannot fail the others with it.
 * - With several put workers (store_threads > 1 on a store that can open
 *   peers) a batch takes only waiting stores of owners that have no batch in
 *   flight, so an owner's ids still follow the order its messages were
 *   stored in (the claim order). Until every peer is open, and on stores
 *   that cannot open one, one batch at a time runs on the main worker.
 * - Peer handles are opened by the main worker (connecting blocks), never
 *   on the loop thread; a failure to open one is logged and the engine goes
 *   on without it.
 * - The next batch is handed to the store before the finished batch's
 *   callbacks run (they send the replies, which takes about as long as a
 *   commit).
 * - While the engine is being freed, batches run synchronously until
 *   nothing waits (engine_job_submit()), so every op is done before the
 *   chunks are freed.
 */
#include "engine-private.h"
#include "tsan.h"

/* Stores in one put job (one transaction) at most. */
#define PUT_BATCH_MAX 512

/* Store ops are carved from chunks, freed when their last op is done: ops
 * are short-lived and die in about the order they were made, and a malloc
 * per op interleaved with the store's long-lived entries cost more than the
 * rest of a store (glibc sorting its unsorted bin). In steady state one chunk
 * is reused and nothing is allocated. */
#define OP_CHUNK_SIZE (64 * 1024)

/* ---- store ops ------------------------------------------------------------- */

static void opq_push_tail(op_queue *q, store_op *op)
{
    op->next = NULL;
    if (q->tail)
        q->tail->next = op;
    else
        q->head = op;
    q->tail = op;
    q->length++;
}

static void opq_push_head(op_queue *q, store_op *op)
{
    op->next = q->head;
    q->head = op;
    if (!q->tail)
        q->tail = op;
    q->length++;
}

static store_op *opq_pop_head(op_queue *q)
{
    store_op *op = q->head;
    if (!op)
        return NULL;
    q->head = op->next;
    if (!q->head)
        q->tail = NULL;
    q->length--;
    op->next = NULL;
    return op;
}

/* @size bytes for a store_op, 16-aligned, from the current chunk or a new
 * one (an op larger than a chunk gets a chunk of its own). */
static store_op *store_op_alloc(msilo_engine_t *e, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    op_chunk *c = e->op_chunk;
    if (!c || c->size - c->used < size) {
        size_t cap = MAX((size_t)OP_CHUNK_SIZE, size);
        op_chunk *n = g_malloc(sizeof *n + cap);
        n->refs = 0;
        n->used = 0;
        n->size = cap;
        if (cap == OP_CHUNK_SIZE) {
            /* the old current chunk is freed by its last op, or now */
            if (c && c->refs == 0)
                g_free(c);
            e->op_chunk = n;
        }
        c = n;
    }
    store_op *op = (store_op *)(void *)((char *)c->mem + c->used);
    c->used += size;
    c->refs++;
    op->chunk = c;
    return op;
}

static void store_op_free(msilo_engine_t *e, store_op *op)
{
    g_free(op->msg_.extra_hdrs);
    if (G_UNLIKELY(op->msg_.device)) /* every_device only: no call per store otherwise */
        g_free(op->msg_.device);
    g_free(op->n_ruri);
    g_free(op->n_from);
    g_free(op->n_to);
    g_free(op->n_ctype);
    g_free(op->n_headers);
    g_free(op->n_body);
    op_chunk *c = op->chunk;
    if (--c->refs)
        return;
    if (c == e->op_chunk)
        c->used = 0; /* empty: start over in it */
    else
        g_free(c);
}

/* ---- peer handles and batches ---------------------------------------------- */

/* Owners of the messages in batches being committed, by value (user, domain). */
static guint owner_hash(gconstpointer p)
{
    const msilo_message_t *m = p;
    return g_str_hash(m->user) * 31u + g_str_hash(m->domain);
}

static gboolean owner_equal(gconstpointer a, gconstpointer b)
{
    const msilo_message_t *x = a, *y = b;
    return strcmp(x->user, y->user) == 0 && strcmp(x->domain, y->domain) == 0;
}

GHashTable *engine_put_owners_new(void)
{
    return g_hash_table_new(owner_hash, owner_equal);
}

/* Another store handle is opened by the main worker (it owns e->store, and
 * connecting blocks), never on the loop thread; the worker thread that uses
 * it starts when it is open. */
static void open_peer_job(msilo_engine_t *e, gboolean for_expiry)
{
    job_t *j = job_new(JOB_OPEN_PEER);
    j->open_peer.for_expiry = for_expiry;
    engine_job_submit(e, j);
}

static gboolean can_open_peer(const msilo_engine_t *e)
{
    return !e->inline_store && !engine_stopping(e) && e->store->version >= 2 &&
           e->store->open_peer;
}

/* Opens store_threads more handles on the store, each with a thread that
 * commits batches of stores: while one batch waits for its commit the next
 * one is already being written. Stores that cannot (memory, SQLite) keep one
 * batch at a time on the main worker, as do all stores until the handles are
 * open. */
static void open_put_workers(msilo_engine_t *e)
{
    e->put_workers_tried = TRUE;
    if (!can_open_peer(e) || e->store_threads < 2)
        return;
    for (int64_t i = 0; i < e->store_threads; i++) {
        e->puts_opening++;
        open_peer_job(e, FALSE);
    }
}

/* Expiry and the queued_messages count run on their own store handle when
 * the store can open one: counting a large table takes seconds (2.9-4.2 s at
 * 20 M rows, bench/e2e/scale) and stores and claims must not wait behind it.
 * NULL (the main worker) until it is open. */
peer_worker_t *engine_worker_for_expiry(msilo_engine_t *e)
{
    if (!e->expiry_worker && !e->expiry_worker_opening && can_open_peer(e)) {
        e->expiry_worker_opening = TRUE;
        open_peer_job(e, TRUE);
    }
    return e->expiry_worker;
}

void engine_complete_open_peer(msilo_engine_t *e, job_t *j)
{
    if (j->open_peer.for_expiry)
        e->expiry_worker_opening = FALSE;
    else
        e->puts_opening--;
    if (j->rc) {
        engine_log(e, MSILO_LOG_WARNING, "another store handle (%s): %s: %s",
                   j->open_peer.for_expiry ? "expiry" : "store_threads", msilo_strerror(j->rc),
                   job_detail(j));
    } else if (engine_stopping(e)) {
        msilo_store_free(j->open_peer.handle);
    } else if (j->open_peer.for_expiry) {
        e->expiry_worker = engine_peer_worker_new(e, j->open_peer.handle, "msilo-slow");
    } else {
        g_ptr_array_add(e->put_workers, engine_peer_worker_new(e, j->open_peer.handle, "msilo-put"));
    }
    if (!j->open_peer.for_expiry && !e->puts_opening)
        engine_schedule_put(e);
}

static peer_worker_t *idle_put_worker(const msilo_engine_t *e)
{
    for (guint i = 0; i < e->put_workers->len; i++) {
        peer_worker_t *pw = e->put_workers->pdata[i];
        if (!pw->busy)
            return pw;
    }
    return NULL;
}

/* Takes the next batch from put_wait: the waiting stores of owners with no
 * batch in flight, in arrival order (an owner's messages are never in two
 * batches at once, so its ids follow the order it was stored in). NULL when
 * every waiting store belongs to an owner in flight. */
static job_t *take_batch(msilo_engine_t *e, gboolean track)
{
    store_op *head = e->put_wait.head;
    GPtrArray *ops = g_ptr_array_sized_new((guint)MIN(e->put_wait.length, PUT_BATCH_MAX));
    if (head->solo) {
        /* an op whose batch failed goes alone, so one message the database
         * refuses cannot fail the others with it */
        if (!track || !g_hash_table_contains(e->put_owners, head->msg))
            g_ptr_array_add(ops, opq_pop_head(&e->put_wait));
    } else {
        store_op *prev = NULL, *op = head;
        while (op && ops->len < PUT_BATCH_MAX) {
            store_op *next = op->next;
            if (op->solo)
                break; /* retried alone, ahead of what came after it */
            if (!track || !g_hash_table_contains(e->put_owners, op->msg)) {
                if (prev)
                    prev->next = next;
                else
                    e->put_wait.head = next;
                if (e->put_wait.tail == op)
                    e->put_wait.tail = prev;
                e->put_wait.length--;
                op->next = NULL;
                g_ptr_array_add(ops, op);
            } else {
                prev = op;
            }
            op = next;
        }
    }
    if (ops->len == 0) {
        g_ptr_array_unref(ops);
        return NULL;
    }
    job_t *j = job_new(JOB_PUT);
    j->put.tracked = track;
    j->put.ops = ops;
    if (track)
        for (guint i = 0; i < ops->len; i++)
            g_hash_table_add(e->put_owners, ((store_op *)ops->pdata[i])->msg);
    /* an untracked batch of waiting stores fills until it starts, unless
     * stores still wait behind it (more than PUT_BATCH_MAX, or a solo op)
     * or store_wait_us is 0 */
    j->put.open = !track && e->store_wait_us > 0 && !e->put_wait.head &&
                  !((store_op *)ops->pdata[0])->solo;
    return j;
}

/* A batch fills until it starts. The put worker starts a batch some time
 * after the loop submitted it (tens of microseconds; up to ~0.6 ms when
 * the loop thread, the SIP peer and the database share busy cores). A
 * batch made only of what waited at submit time is, at the head of a burst,
 * the one store that opened it, and the burst then waits for that commit
 * and then for its own: two commits per burst. So a store that arrives while
 * the submitted batch has not started joins it, when nothing waits before
 * it (the order holds) and the batch is untracked (one put at a time) and
 * not full; the thread that starts the batch closes it under e->put_lock.
 * Returns FALSE when @op must wait in put_wait instead. */
static gboolean put_join_open(msilo_engine_t *e, store_op *op)
{
    job_t *j = e->put_open;
    if (!j || e->put_wait.head)
        return FALSE;
    gboolean joined = FALSE;
    g_mutex_lock(&e->put_lock);
    msilo_tsan_acquire(j);
    if (j->put.open && j->put.ops->len < PUT_BATCH_MAX) {
        g_ptr_array_add(j->put.ops, op);
        joined = TRUE;
    }
    msilo_tsan_release(j);
    g_mutex_unlock(&e->put_lock);
    if (!joined)
        e->put_open = NULL; /* started: it takes no more */
    return joined;
}

void engine_put_start(msilo_engine_t *e, job_t *j)
{
    if (j->put.open) { /* read without the lock: only the loop sets it, before the submit */
        g_mutex_lock(&e->put_lock);
        msilo_tsan_acquire(j);
        j->put.open = FALSE;
        msilo_tsan_release(j);
        g_mutex_unlock(&e->put_lock);
    }
    GPtrArray *ops = j->put.ops;
    j->put.msgs = g_new(msilo_message_t *, ops->len);
    j->put.results = g_new0(int, ops->len);
    for (guint i = 0; i < ops->len; i++)
        j->put.msgs[i] = ((store_op *)ops->pdata[i])->msg;
}

void engine_schedule_put(msilo_engine_t *e)
{
    if (!e->put_workers_tried && e->put_wait.head)
        open_put_workers(e);
    /* the put workers take over once all are open and the main worker's batch is done */
    gboolean workers = e->put_workers->len > 0 && !e->puts_opening;
    while (e->put_wait.head) {
        peer_worker_t *pw = NULL;
        if (e->main_put_running || (!workers && e->puts_running))
            return;
        if (workers && !(pw = idle_put_worker(e)))
            return;
        job_t *j = take_batch(e, workers && e->put_workers->len > 1);
        if (!j)
            return;
        j->worker = pw;
        if (pw)
            pw->busy = TRUE;
        else
            e->main_put_running = TRUE;
        e->puts_running++;
        if (j->put.open)
            e->put_open = j;
        engine_job_submit(e, j);
    }
}

/* A database that is down fails every store: one line a second, with the
 * cause (the store's detail, e.g. libpq's message), says so as well as
 * thousands would. The real clock, not the engine's: this paces a log, it
 * decides nothing. */
#define STORE_FAIL_LOG_INTERVAL G_TIME_SPAN_SECOND

static void log_store_failure(msilo_engine_t *e, const store_op *op, int rc, const char *detail)
{
    gint64 now = g_get_monotonic_time();
    if (e->store_fail_logged_at && now - e->store_fail_logged_at < STORE_FAIL_LOG_INTERVAL) {
        e->store_fail_quiet++;
        return;
    }
    if (e->store_fail_quiet)
        engine_log(e, MSILO_LOG_WARNING,
                   "store for %s@%s failed: %s: %s (%" G_GUINT64_FORMAT " more failed stores "
                   "not logged since the previous line)",
                   op->msg->user, op->msg->domain, msilo_strerror(rc), detail,
                   e->store_fail_quiet);
    else
        engine_log(e, MSILO_LOG_WARNING, "store for %s@%s failed: %s: %s", op->msg->user,
                   op->msg->domain, msilo_strerror(rc), detail);
    e->store_fail_logged_at = now;
    e->store_fail_quiet = 0;
}

/* After failures that were not logged: say how many, once stores work. */
static void log_stores_back(msilo_engine_t *e)
{
    if (G_LIKELY(!e->store_fail_quiet))
        return;
    engine_log(e, MSILO_LOG_WARNING,
               "stores succeed again (%" G_GUINT64_FORMAT " more failed stores were not logged)",
               e->store_fail_quiet);
    e->store_fail_quiet = 0;
}

void engine_complete_put(msilo_engine_t *e, job_t *j)
{
    e->puts_running--;
    if (e->put_open == j)
        e->put_open = NULL;
    if (j->worker)
        j->worker->busy = FALSE;
    else
        e->main_put_running = FALSE;
    if (j->put.tracked)
        for (guint i = 0; i < j->put.ops->len; i++)
            g_hash_table_remove(e->put_owners, ((store_op *)j->put.ops->pdata[i])->msg);
    if (j->rc == MSILO_ESTORE && j->put.ops->len > 1) {
        /* retry each alone, in order, ahead of what came later */
        for (guint i = j->put.ops->len; i-- > 0;) {
            store_op *op = j->put.ops->pdata[i];
            op->solo = TRUE;
            op->msg->id = 0;
            opq_push_head(&e->put_wait, op);
        }
        g_ptr_array_set_size(j->put.ops, 0);
    }
    /* the next batch is written while this one's callbacks run (they send
     * the replies, which takes about as long as a commit) */
    engine_schedule_put(e);
    for (guint i = 0; i < j->put.ops->len; i++) {
        store_op *op = j->put.ops->pdata[i];
        int rc = j->rc ? j->rc : j->put.results[i];
        if (rc == 0) {
            stat_add(e, MSILO_STAT_STORED_MESSAGES, 1);
            gauge_add(e, MSILO_STAT_QUEUED, 1);
            if (op->n_ruri && !engine_stopping(e))
                engine_send_notification(e, op);
            if (e->imdn)
                engine_imdn_stored(e, op->msg);
            engine_count_changed(e, op->msg->user, op->msg->domain);
        } else if (rc == MSILO_EFULL) {
            stat_add(e, MSILO_STAT_REJECTED_FULL, 1);
        } else {
            stat_add(e, MSILO_STAT_STORE_ERRORS, 1);
        }
        if (rc == 0)
            log_stores_back(e);
        if (rc && rc != MSILO_EFULL) {
            log_store_failure(e, op, rc, job_detail(j));
            job_detail_set(j); /* msilo_error_detail() in the callback */
        } else if (rc == MSILO_EFULL) {
            msilo_fail(rc, "the mailbox of %s@%s holds max_messages (%lld) already",
                       op->msg->user, op->msg->domain, (long long)e->max_messages);
        }
        if (op->cb)
            op->cb(e, rc, rc == 0 ? op->msg->id : 0, op->data);
        store_op_free(e, op);
    }
    g_ptr_array_unref(j->put.ops);
    g_free(j->put.msgs);
    g_free(j->put.results);
    engine_schedule_put(e);
}

/* A batch starts when the loop is idle. A UA (or sipp) sends MESSAGEs a few
 * at a time; the loop reads them one by one, tens of microseconds apart, and
 * the put worker starts a submitted batch within ~10 us: the first store
 * after an idle spell went alone, and the ones right behind it waited for
 * its commit and then for their own (bench/e2e LAT at 1 000/s: batches of 1
 * and 3 in turn, three messages in four waiting one commit more). So that
 * first store waits for put_kick, a source of idle priority that runs when
 * the sources of the host's sockets have nothing ready, and the batch holds
 * what was read meanwhile. Bounded: a store that finds the wait older than
 * store_wait_us (config; 0: no wait), or PUT_BATCH_MAX stores waiting,
 * submits at once, so a loop that is never idle still writes. Only for a
 * store that blocks (a worker runs its jobs) and one put at a time: with
 * several put workers a store goes at once, to a worker of its own (a
 * non-blocking store runs on the loop anyway). The real clock: this paces
 * work, it decides nothing. */
static gboolean put_kick_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    (void)cb;
    msilo_engine_t *e = data;
    g_source_set_ready_time(src, -1);
    e->put_kick_at = 0;
    engine_schedule_put(e);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs put_kick_funcs = {
    .dispatch = put_kick_dispatch,
};

void engine_put_kick_attach(msilo_engine_t *e)
{
    e->put_kick = engine_source_attach(e, &put_kick_funcs, "msilo-put-kick",
                                       G_PRIORITY_DEFAULT_IDLE);
}

/* After a store was queued in put_wait: schedules its batch now, or when the
 * loop is idle (above). */
static void put_queued(msilo_engine_t *e)
{
    if (e->puts_running || e->inline_store || e->freeing || e->store_wait_us <= 0 ||
        e->store_threads > 1) {
        engine_schedule_put(e); /* it waits for the batch in flight anyway */
        return;
    }
    gint64 now = g_get_monotonic_time();
    if (!e->put_kick_at) {
        e->put_kick_at = now;
        g_source_set_ready_time(e->put_kick, 0);
        return;
    }
    if (now - e->put_kick_at < e->store_wait_us && e->put_wait.length < PUT_BATCH_MAX)
        return;
    e->put_kick_at = 0;
    g_source_set_ready_time(e->put_kick, -1);
    engine_schedule_put(e);
}

/* ---- msilo_engine_store ------------------------------------------------------ */

/* Hex digits of a store key (msilo_message_t.store_key): 128 bits of a
 * SHA-256, enough to tell requests apart, and short enough to index. */
#define STORE_KEY_HEX 32

/* The store key of @req for @owner: a digest of the view's store_key, else
 * of Call-ID, CSeq number and From tag (a UA may send many MESSAGEs with one
 * Call-ID, so without a CSeq there is none). The owner is part of it: one
 * request stored for two owners is two messages; so is the device of a
 * MESSAGE for one device (@device, NULL: none). FALSE: no key. */
static gboolean store_key_of(const msilo_request_t *req, const char *user, const char *domain,
                             const char *device, char out[STORE_KEY_HEX + 1])
{
    const char *key = req->version >= 3 && req->store_key && *req->store_key ? req->store_key
                                                                               : NULL;
    if (!key && (req->version < 3 || !req->cseq || !req->call_id || !*req->call_id))
        return FALSE;
    GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
    char num[16];
    /* fields separated by a byte none of them holds (NUL) */
    const char *parts[] = { key ? "k" : "c", key ? key : req->call_id, num,
                            key || !req->from_tag ? "" : req->from_tag, user, domain };
    g_snprintf(num, sizeof num, "%" G_GUINT32_FORMAT, key ? 0 : req->cseq);
    for (size_t i = 0; i < G_N_ELEMENTS(parts); i++)
        g_checksum_update(c, (const guchar *)parts[i], (gssize)strlen(parts[i]) + 1);
    /* one request stored for two devices (forked, missed by both) is two
     * messages too; without a device the key is what it always was */
    if (device)
        g_checksum_update(c, (const guchar *)device, (gssize)strlen(device) + 1);
    memcpy(out, g_checksum_get_string(c), STORE_KEY_HEX);
    out[STORE_KEY_HEX] = '\0';
    g_checksum_free(c);
    return TRUE;
}

/* One function, not a wrapper around the work: the thread check is on the
 * hot path of every store (bench/engine counts its instructions). */
int msilo_engine_store(msilo_engine_t *e, const msilo_request_t *req, const char *owner,
                       msilo_store_cb cb, void *data)
{
    if (!e || !req)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_store: engine or request is NULL");
    if (!engine_enter(e))
        return engine_ethread("msilo_engine_store");
    int rc;
    store_request_t r;
    if (req->version < 1 || req->version > MSILO_REQUEST_VERSION)
        rc = msilo_fail(MSILO_EVERSION, "request view version %u not supported", req->version);
    else if (e->freeing)
        rc = msilo_fail(MSILO_ECANCELLED, "engine is being freed");
    else if (e->stopping)
        rc = msilo_fail(MSILO_ESHUTDOWN, "msilo_engine_store: the engine is shutting down");
    else
        rc = engine_store_request_parse(e, req, owner, &r);
    if (rc) {
        if (rc == MSILO_ETRANSIENT)
            stat_add(e, MSILO_STAT_REJECTED_TRANSIENT, 1);
        engine_leave(e);
        return rc;
    }
    int64_t now = now_of(e);

    /* the op, its message, the strings and the body in one piece of an op chunk */
    const char *ctype = req->content_type && *req->content_type ? req->content_type : NULL;
    const char *callid = req->call_id && *req->call_id ? req->call_id : NULL;
    size_t user_n = strlen(r.owner->user) + 1, domain_n = strlen(r.domain) + 1;
    size_t src_n = strlen(r.from.uri) + 1, dst_n = strlen(r.to.uri) + 1;
    size_t ctype_n = ctype ? strlen(ctype) + 1 : 0, callid_n = callid ? strlen(callid) + 1 : 0;
    /* every_device: a MESSAGE for one device only (rare: its own allocation) */
    char *device = G_UNLIKELY(e->every_device) ? engine_store_device(req) : NULL;
    char key[STORE_KEY_HEX + 1];
    size_t key_n = store_key_of(req, r.owner->user, r.domain, device, key) ? sizeof key : 0;
    store_op *op = store_op_alloc(e, sizeof *op + req->body_len + user_n + domain_n + src_n +
                                         dst_n + ctype_n + callid_n + key_n);
    op_chunk *chunk = op->chunk;
    memset(op, 0, sizeof *op);
    op->chunk = chunk;
    msilo_message_t *m = &op->msg_;
    op->msg = m;
    op->cb = cb;
    op->data = data;
    char *p = op->buf;
    if (req->body_len) {
        m->body = memcpy(p, req->body, req->body_len);
        p += req->body_len;
    }
    m->body_len = req->body_len;
    m->user = memcpy(p, r.owner->user, user_n);
    p += user_n;
    m->domain = memcpy(p, r.domain, domain_n);
    if (r.domain_default)
        for (char *c = m->domain; *c; c++)
            *c = g_ascii_tolower(*c);
    p += domain_n;
    m->src = memcpy(p, r.from.uri, src_n);
    p += src_n;
    m->dst = memcpy(p, r.to.uri, dst_n);
    p += dst_n;
    if (ctype) {
        m->ctype = memcpy(p, ctype, ctype_n);
        p += ctype_n;
    }
    if (callid) {
        m->callid = memcpy(p, callid, callid_n);
        p += callid_n;
    }
    if (key_n)
        m->store_key = memcpy(p, key, key_n);
    m->extra_hdrs = r.extra_hdrs;
    m->device = device; /* the op owns it */
    m->inc_time = now;
    int64_t life = e->expire_time;
    if (req->expires > 0 && req->expires < life)
        life = req->expires;
    m->exp_time = now + life;
    m->snd_time = r.snd_time;

    if (!r.snd_time) /* a reminder is not "the user is offline" */
        engine_prepare_notification(e, req, op, r.have_ruri ? &r.ruri : NULL, &r.from, &r.to);
    engine_store_request_clear(&r);
    if (!put_join_open(e, op)) {
        opq_push_tail(&e->put_wait, op);
        put_queued(e);
    }
    msilo_error_clear();
    engine_leave(e);
    return 0;
}
