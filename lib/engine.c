/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The engine: m_store / m_dump semantics, reminders, expiry, retries.
 *
 * Everything here runs on the engine's GMainContext thread except job
 * execution for a blocking store, which happens on one worker thread. Store
 * work is expressed as jobs; a job is executed (worker or, for a
 * non-blocking store, inline from the dispatch source) and then "completed"
 * on the loop thread. Stores that arrive while a put job is running queue up
 * and go to the store together as the next batch; deletes and releases are
 * coalesced the same way. The dispatch source is one persistent GSource that
 * the worker wakes with g_source_set_ready_time(), so the engine never has
 * sources it could forget to remove.
 */
#include "engine-private.h"

#include <string.h>

/* Stores in one put job (one transaction) at most. */
#define PUT_BATCH_MAX 512

/* ---- store ops ------------------------------------------------------- */

/* Store ops are carved from chunks, freed when their last op is done: ops
 * are short-lived and die in about the order they were made, and a malloc
 * per op interleaved with the store's long-lived entries cost more than the
 * rest of a store (glibc sorting its unsorted bin). In steady state one chunk
 * is reused and nothing is allocated. */
#define OP_CHUNK_SIZE (64 * 1024)

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

/* ---- statistics ---------------------------------------------------------- */

static const char *const stat_names[MSILO_STAT_COUNT_] = {
    "stored_messages",   "dumped_messages",        "failed_messages",
    "dumped_reminders",  "failed_reminders",       "rejected_full",
    "store_errors",      "expired_messages",       "notifications_sent",
    "notifications_failed", "queued_messages",     "deliveries_in_flight",
    "delivery_latency_us",  "deliveries_timed",
};

const char *msilo_stat_name(msilo_stat_t stat)
{
    if ((int)stat < 0 || stat >= MSILO_STAT_COUNT_)
        return NULL;
    return stat_names[stat];
}

void engine_log(msilo_engine_t *e, msilo_log_level_t lvl, const char *fmt, ...)
{
    if (!e->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    e->log(lvl, s, e->log_data);
    g_free(s);
}

static int64_t real_clock(void *data)
{
    (void)data;
    return g_get_real_time() / G_USEC_PER_SEC;
}

/* ---- store -------------------------------------------------------------- */

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
    return !e->inline_store && !e->freeing && e->store->version >= 2 && e->store->open_peer;
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

static void schedule_put(msilo_engine_t *e);

void engine_complete_open_peer(msilo_engine_t *e, job_t *j)
{
    if (j->open_peer.for_expiry)
        e->expiry_worker_opening = FALSE;
    else
        e->puts_opening--;
    if (j->rc) {
        engine_log(e, MSILO_LOG_WARNING, "another store handle (%s): %s",
                   j->open_peer.for_expiry ? "expiry" : "store_threads", msilo_strerror(j->rc));
    } else if (e->freeing) {
        msilo_store_free(j->open_peer.handle);
    } else if (j->open_peer.for_expiry) {
        e->expiry_worker = engine_peer_worker_new(e, j->open_peer.handle, "msilo-slow");
    } else {
        g_ptr_array_add(e->put_workers, engine_peer_worker_new(e, j->open_peer.handle, "msilo-put"));
    }
    if (!j->open_peer.for_expiry && !e->puts_opening)
        schedule_put(e);
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
    j->put.msgs = g_new(msilo_message_t *, ops->len);
    j->put.results = g_new0(int, ops->len);
    for (guint i = 0; i < ops->len; i++) {
        j->put.msgs[i] = ((store_op *)ops->pdata[i])->msg;
        if (track)
            g_hash_table_add(e->put_owners, j->put.msgs[i]);
    }
    return j;
}

static void schedule_put(msilo_engine_t *e)
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
        engine_job_submit(e, j);
    }
}

void engine_complete_put(msilo_engine_t *e, job_t *j)
{
    e->puts_running--;
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
    schedule_put(e);
    for (guint i = 0; i < j->put.ops->len; i++) {
        store_op *op = j->put.ops->pdata[i];
        int rc = j->rc ? j->rc : j->put.results[i];
        if (rc == 0) {
            e->stats[MSILO_STAT_STORED_MESSAGES]++;
            gauge_add(e, MSILO_STAT_QUEUED, 1);
            if (op->n_ruri && !e->freeing)
                engine_send_notification(e, op);
        } else if (rc == MSILO_EFULL) {
            e->stats[MSILO_STAT_REJECTED_FULL]++;
        } else {
            e->stats[MSILO_STAT_STORE_ERRORS]++;
        }
        if (rc && rc != MSILO_EFULL)
            engine_log(e, MSILO_LOG_WARNING, "store for %s@%s failed: %s", op->msg->user,
                       op->msg->domain, msilo_strerror(rc));
        if (op->cb)
            op->cb(e, rc, rc == 0 ? op->msg->id : 0, op->data);
        store_op_free(e, op);
    }
    g_ptr_array_unref(j->put.ops);
    g_free(j->put.msgs);
    g_free(j->put.results);
    schedule_put(e);
}

int msilo_engine_store(msilo_engine_t *e, const msilo_request_t *req, const char *owner,
                       msilo_store_cb cb, void *data)
{
    if (!e || !req)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_store: engine or request is NULL");
    if (req->version < 1 || req->version > MSILO_REQUEST_VERSION)
        return msilo_fail(MSILO_EVERSION, "request view version %u not supported", req->version);
    if (e->freeing)
        return msilo_fail(MSILO_ECANCELLED, "engine is being freed");
    store_request_t r;
    int rc = engine_store_request_parse(e, req, owner, &r);
    if (rc)
        return rc;
    int64_t now = now_of(e);

    /* the op, its message, the strings and the body in one piece of an op chunk */
    const char *ctype = req->content_type && *req->content_type ? req->content_type : NULL;
    const char *callid = req->call_id && *req->call_id ? req->call_id : NULL;
    size_t user_n = strlen(r.owner->user) + 1, domain_n = strlen(r.domain) + 1;
    size_t src_n = strlen(r.from.uri) + 1, dst_n = strlen(r.to.uri) + 1;
    size_t ctype_n = ctype ? strlen(ctype) + 1 : 0, callid_n = callid ? strlen(callid) + 1 : 0;
    store_op *op = store_op_alloc(e, sizeof *op + req->body_len + user_n + domain_n + src_n +
                                         dst_n + ctype_n + callid_n);
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
    if (callid)
        m->callid = memcpy(p, callid, callid_n);
    m->extra_hdrs = r.extra_hdrs;
    m->inc_time = now;
    int64_t life = e->expire_time;
    if (req->expires > 0 && req->expires < life)
        life = req->expires;
    m->exp_time = now + life;
    m->snd_time = r.snd_time;

    if (!r.snd_time) /* a reminder is not "the user is offline" */
        engine_prepare_notification(e, req, op, r.have_ruri ? &r.ruri : NULL, &r.from, &r.to);
    engine_store_request_clear(&r);
    opq_push_tail(&e->put_wait, op);
    schedule_put(e);
    msilo_error_clear();
    return 0;
}

/* ---- life cycle ------------------------------------------------------------ */

void engine_complete_reset_leases(msilo_engine_t *e, job_t *j)
{
    if (j->rc == 0 && j->reset.taken)
        engine_log(e, MSILO_LOG_INFO, "took back %zu messages leased by %s before a restart",
                   j->reset.taken, e->instance_id);
}

static int64_t cfg_int(const msilo_config_t *cfg, const char *key)
{
    int64_t v = 0;
    int rc = msilo_config_get_int(cfg, key, &v);
    g_assert(rc == 0);
    return v;
}

static int compile_opt(const msilo_config_t *cfg, const char *key, msilo_template_t **ret)
{
    const char *t = msilo_config_get_string(cfg, key);
    *ret = NULL;
    return t ? msilo_template_compile(key, t, ret) : 0;
}

int msilo_engine_new(msilo_engine_t **ret, const msilo_config_t *cfg, msilo_store_t *store,
                     msilo_transport_t *transport, GMainContext *ctx)
{
    if (!ret || !store)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_new: ret or store is NULL");
    int rc = msilo_store_check(store);
    if (rc)
        return rc;
    if (transport && (rc = msilo_transport_check(transport)))
        return rc;
    msilo_config_t *own = NULL;
    rc = cfg ? msilo_config_copy(cfg, &own) : msilo_config_new(&own);
    if (rc)
        return rc;
    if ((rc = msilo_config_validate(own))) {
        msilo_config_free(own);
        return rc;
    }
    msilo_engine_t *e = g_new0(msilo_engine_t, 1);
    e->cfg = own;
    e->store = store;
    e->transport = transport;
    e->ctx = g_main_context_ref(ctx ? ctx : g_main_context_default());
    e->inline_store = (store->flags & MSILO_STORE_NONBLOCKING) != 0;
    e->clock = real_clock;

    e->expire_time = cfg_int(own, "expire_time");
    e->check_time = cfg_int(own, "check_time");
    e->send_time = cfg_int(own, "send_time");
    e->clean_period = cfg_int(own, "clean_period");
    e->max_messages = cfg_int(own, "max_messages");
    e->max_body = cfg_int(own, "max_body_size");
    e->max_attempts = cfg_int(own, "max_attempts");
    e->lease_time = cfg_int(own, "lease_time");
    e->dump_batch = cfg_int(own, "dump_batch");
    e->dump_window = cfg_int(own, "dump_window");
    e->max_in_flight = cfg_int(own, "max_in_flight");
    e->store_threads = cfg_int(own, "store_threads");
    e->use_contact = cfg_int(own, "use_contact") != 0;
    e->add_date = cfg_int(own, "add_date") != 0;
    e->use_callid = cfg_int(own, "use_callid") != 0;
    e->reminder = msilo_config_get_string(own, "reminder");
    e->outbound_proxy = msilo_config_get_string(own, "outbound_proxy");
    e->default_domain = msilo_config_get_string(own, "default_domain");
    e->id_header = msilo_config_get_string(own, "id_header");
    if (e->id_header && !*e->id_header)
        e->id_header = NULL;
    e->reminders_on = e->reminder && e->send_time > 0;
    const char *xh = msilo_config_get_string(own, "extra_hdrs");
    if (xh && *xh)
        e->extra_hdrs = g_str_has_suffix(xh, "\r\n") ? g_strdup(xh) : g_strconcat(xh, "\r\n", NULL);
    const char *iid = msilo_config_get_string(own, "instance_id");
    e->instance_id = iid && *iid ? g_strdup(iid)
                                 : g_strdup_printf("%s/%08x%08x", g_get_host_name(),
                                                   g_random_int(), g_random_int());
    /* templates were validated above; compiling again cannot fail */
    compile_opt(own, "from_address", &e->t_from);
    compile_opt(own, "contact_hdr", &e->t_contact);
    compile_opt(own, "content_type_hdr", &e->t_ctype);
    compile_opt(own, "offline_message", &e->t_body);

    e->todo = g_async_queue_new();
    e->done = g_async_queue_new();
    g_queue_init(&e->inline_todo);
    g_queue_init(&e->noop_dumps);
    g_queue_init(&e->finished_dumps);
    g_queue_init(&e->blocked);
    g_queue_init(&e->sends);
    e->acks = (coalescer_t){ .wait = g_array_new(FALSE, FALSE, sizeof(int64_t)),
                             .kind = JOB_REMOVE };
    e->releases = (coalescer_t){ .wait = g_array_new(FALSE, FALSE, sizeof(msilo_store_release_t)),
                                 .kind = JOB_RELEASE };
    e->owners = g_hash_table_new(g_str_hash, g_str_equal);
    e->hdr_buf = g_string_sized_new(DELIVERY_HDR_INITIAL);
    e->body_buf = g_string_sized_new(DELIVERY_BODY_INITIAL);
    e->put_workers = g_ptr_array_new();
    e->put_owners = g_hash_table_new(owner_hash, owner_equal);

    engine_dispatch_attach(e);
    engine_timer_attach(e);

    int64_t now = now_of(e);
    e->next_check = now + e->check_time;
    e->next_clean = now; /* first expiry (and gauge) at the first tick */
    e->next_reminder = now;

    if (iid && *iid && store->version >= 1 && store->reset_leases) {
        engine_job_submit(e, job_new(JOB_RESET_LEASES));
    }
    msilo_error_clear();
    *ret = e;
    return 0;
}

void msilo_engine_set_clock(msilo_engine_t *e, msilo_clock_fn fn, void *data)
{
    if (!e)
        return;
    e->clock = fn ? fn : real_clock;
    e->clock_data = fn ? data : NULL;
    int64_t now = now_of(e);
    e->next_check = now + e->check_time;
    e->next_clean = now;
    e->next_reminder = now;
}

void msilo_engine_set_log(msilo_engine_t *e, msilo_log_fn fn, void *data)
{
    if (!e)
        return;
    e->log = fn;
    e->log_data = data;
}

uint64_t msilo_engine_stat(const msilo_engine_t *e, msilo_stat_t stat)
{
    if (!e || (int)stat < 0 || stat >= MSILO_STAT_COUNT_)
        return 0;
    return e->stats[stat];
}

size_t msilo_engine_pending(const msilo_engine_t *e)
{
    if (!e)
        return 0;
    return e->jobs_pending + e->put_wait.length + e->acks.wait->len + e->releases.wait->len +
           e->noop_dumps.length + e->finished_dumps.length;
}

void msilo_engine_free(msilo_engine_t *e)
{
    if (!e)
        return;
    e->freeing = TRUE;
    g_source_destroy(e->timer);
    g_source_unref(e->timer);
    engine_workers_stop(e);
    schedule_put(e);     /* runs synchronously now (freeing) until the queue is empty */
    engine_coalesce_schedule(e, &e->acks);     /* delete what was delivered */
    engine_coalesce_schedule(e, &e->releases);
    /* sends in flight: the transport calls back later; those contexts just free */
    GList *l;
    while ((l = g_queue_pop_head_link(&e->sends))) {
        send_ctx *sc = l->data;
        sc->e = NULL;
    }
    engine_owners_free(e);
    engine_complete_noop_dumps(e, 0);
    engine_flush_finished_dumps(e, FALSE);
    g_source_destroy(e->dispatch);
    g_source_unref(e->dispatch);
    g_async_queue_unref(e->todo);
    g_async_queue_unref(e->done);
    for (guint i = 0; i < e->put_workers->len; i++)
        engine_peer_worker_free(e->put_workers->pdata[i]);
    engine_peer_worker_free(e->expiry_worker);
    g_ptr_array_unref(e->put_workers);
    g_hash_table_unref(e->put_owners);
    g_array_unref(e->acks.wait);
    g_array_unref(e->releases.wait);
    if (e->acks.spare)
        g_array_unref(e->acks.spare);
    if (e->releases.spare)
        g_array_unref(e->releases.spare);
    msilo_template_free(e->t_from);
    msilo_template_free(e->t_contact);
    msilo_template_free(e->t_ctype);
    msilo_template_free(e->t_body);
    g_free(e->extra_hdrs);
    g_free(e->instance_id);
    for (size_t i = 0; i < TIME_CACHE; i++) {
        g_free(e->date_cache[i].s);
        g_free(e->ctime_cache[i].s);
    }
    /* every op is done: schedule_put() ran what was waiting, synchronously */
    g_assert(!e->op_chunk || e->op_chunk->refs == 0);
    g_free(e->op_chunk);
    g_string_free(e->hdr_buf, TRUE);
    g_string_free(e->body_buf, TRUE);
    while (e->sc_free) {
        send_ctx *sc = e->sc_free;
        e->sc_free = sc->next_free;
        g_free(sc);
    }
    msilo_config_free(e->cfg);
    g_main_context_unref(e->ctx);
    g_free(e);
}
