/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The engine's own header, shared by lib/engine*.c and not installed: the
 * engine struct, the jobs, the per-owner and per-send state, and the small
 * helpers that several of its files call per message (static inline, so
 * that splitting the engine into files costs no call on the hot path).
 *
 * Functions declared here are named engine_<what> and are internal to
 * libmsilo: hidden (the visibility pragma below), also in the static copy
 * the unit tests link (lib/meson.build builds the shared library with
 * -fvisibility=hidden anyway), so the compiler may still inline one into
 * its callers in the same file.
 *
 * Threads: everything in struct msilo_engine belongs to the thread that runs
 * the engine's GMainContext ("the loop thread"), except the job queues
 * (todo, done: GAsyncQueue) and the dispatch source's ready time, which the
 * worker threads use too, and the post box (e->box), where transports post
 * the completions they report from other threads. A job belongs to whoever
 * holds it: the loop thread until it is submitted, then one worker until it
 * is pushed on e->done. A send context belongs to the transport from send()
 * until its done(), then to the loop thread again.
 */
#ifndef MSILO_ENGINE_PRIVATE_H
#define MSILO_ENGINE_PRIVATE_H

#include "internal.h"

#include <stdatomic.h>
#include <string.h>

#pragma GCC visibility push(hidden)

/* Seconds whose formatted Date and ctime strings are cached (direct-mapped). */
#define TIME_CACHE 16
/* At most this many expired message/cpim messages taken by one expiry job
 * (engine-periodic.c): bounded memory, and IMDNs sent in rounds. */
#define ENGINE_EXPIRE_TAKE_MAX 64
/* The initial sizes of the delivery buffers (e->hdr_buf, e->body_buf). */
#define DELIVERY_HDR_INITIAL 256
#define DELIVERY_BODY_INITIAL 1024

typedef struct owner owner_t;
typedef struct job job_t;
typedef struct peer_worker peer_worker_t;

/* What a job does, and the member of job_t's union it uses. */
typedef enum {
    JOB_PUT,             /* put: a batch of stores */
    JOB_CLAIM,           /* claim: an owner's messages, for a dump round or a retry */
    JOB_CLAIM_REMINDERS, /* claim (owner NULL): the reminders that are due */
    JOB_REMOVE,          /* batch: int64_t ids of delivered messages, deleted */
    JOB_RELEASE,         /* batch: msilo_store_release_t of failed deliveries */
    JOB_MARK,            /* batch: mark_item_t, delivered to a device (every_device) */
    JOB_EXPIRE,          /* expire: expiry, then the queued_messages count */
    JOB_RESET_LEASES,    /* reset: this instance's leases from before a restart */
    JOB_OPEN_PEER,       /* open_peer: another store handle, opened by the main worker */
    JOB_STOP,            /* (none): the worker thread exits */
} job_kind;

/* Store ops are carved from chunks (engine-store.c), a chunk is freed when
 * its last op is done. */
typedef struct op_chunk {
    size_t refs; /* live ops in it */
    size_t used, size;
    max_align_t mem[];
} op_chunk;

/* A store waiting for or in its put. ONE allocation holds the op, its
 * message and the message's strings and body (buf); only extra_hdrs and the
 * notification strings are separate. The message is the engine's own and is
 * never handed to msilo_message_free(). */
typedef struct store_op {
    struct store_op *next; /* in e->put_wait */
    op_chunk *chunk;
    msilo_store_cb cb;
    void *data;
    gboolean solo; /* retry alone: its batch failed as a whole */
    msilo_message_t *msg; /* = &msg_ */
    /* offline notification, prepared at store time (the request view is borrowed) */
    char *n_ruri, *n_from, *n_to, *n_ctype, *n_headers, *n_body;
    msilo_message_t msg_;
    char buf[];
} store_op;

/* FIFO of store_op linked through ->next (no list node per message). */
typedef struct op_queue {
    store_op *head, *tail;
    size_t length;
} op_queue;

/* One piece of store work: made on the loop thread, executed by a worker
 * (or inline for a non-blocking store), completed on the loop thread. */
struct job {
    job_kind kind;
    int rc;            /* the store call's result */
    /* the store's msilo_error_detail() when rc != 0 (g_malloc'd; NULL on
     * success, so a job that succeeds allocates nothing for it) */
    char *detail;
    peer_worker_t *worker; /* the thread and store handle it runs on; NULL: the main worker */
    union {
        struct {
            GPtrArray *ops; /* store_op* */
            msilo_message_t **msgs; /* made when the job starts (the ops are final) */
            int *results;
            gboolean tracked; /* its owners are in put_owners */
            /* the loop may still append stores to ops (under e->put_lock)
             * until the job starts: engine-store.c, "a batch fills until it
             * starts" */
            gboolean open;
        } put;
        struct {
            msilo_store_claim_t args;
            owner_t *owner; /* NULL for reminders */
            msilo_message_t **out;
            size_t out_n;
        } claim;
        struct {
            GArray *items;
            size_t deleted;
        } batch;
        struct {
            int64_t now;
            size_t deleted;
            int64_t count;
            /* take expired message/cpim first (take_expired), for their
             * <failed/> IMDNs; cleared when the store has no take_expired */
            gboolean take;
            msilo_message_t **taken;
            size_t taken_n;
            gboolean full; /* a full batch taken: more to take, no expire() yet */
        } expire;
        struct {
            size_t taken;
        } reset;
        struct {
            msilo_store_t *handle;
            gboolean for_expiry;
        } open_peer;
    };
};

/* A zeroed job of @kind; job_complete() frees it (and its detail). */
static inline job_t *job_new(job_kind kind)
{
    job_t *j = g_new0(job_t, 1);
    j->kind = kind;
    return j;
}

/* The failed job's store detail for a log line ("" when none). */
static inline const char *job_detail(const job_t *j)
{
    return j->detail ? j->detail : "";
}

/* Makes the failed job's store detail the calling (loop) thread's, so that
 * msilo_error_detail() inside the callback that reports it returns it; set
 * again before each callback (one may call the engine, which clears it). */
static inline void job_detail_set(const job_t *j)
{
    if (j->detail)
        msilo_fail(j->rc, "%s", j->detail);
}

/* Deletes and releases wait here while one of their kind runs, then go to the
 * store together as one job; a failed job's items go back to the front and
 * are retried at the next check (never lost, never a hot loop). */
typedef struct coalescer {
    GArray *wait;
    GArray *spare; /* the last job's array, emptied, for the next wait */
    gboolean running;
    job_kind kind; /* JOB_REMOVE, JOB_RELEASE or JOB_MARK */
} coalescer_t;

/* An item of e->marks: message @id was delivered to @device (a GRefString
 * reference the item holds, engine-device.c). */
typedef struct mark_item {
    int64_t id;
    char *device;
} mark_item_t;

/* A msilo_engine_dump() call, until its callback has run. */
typedef struct dump_op {
    msilo_dump_cb cb;
    void *data;
    msilo_dump_result_t res;
    /* cancel (engine-dump.c): the owner it waits on (NULL once it no longer
     * waits on one), and the result it completes with when not 0 */
    owner_t *owner;
    int result;
} dump_op;

/* Per-owner delivery state; exists while the owner has work or retries due. */
struct owner {
    char *key; /* "user@domain"; with a device "user@domain device" */
    char *user, *domain;
    char *device;        /* every_device: the device of this state (GRefString); else NULL */
    char *contact;       /* where to deliver; NULL = the stored To via outbound_proxy */
    int64_t reg_until;   /* registration lasts until (retries stop after) */
    int64_t retry_at;    /* next retry round; 0 = none */
    gboolean claiming;   /* claim job in flight */
    gboolean again;      /* start another round when this one ends */
    gboolean more;       /* last claim was full: claim again for this round */
    int64_t max_next_try;/* for this round's claims */
    size_t limit_left;   /* messages this round may still take (SIZE_MAX = all) */
    size_t next_limit;   /* for the round after (dump while busy) */
    /* claimed, not yet sent: ready[ready_pos..ready_n) (the claim's array) */
    msilo_message_t **ready;
    size_t ready_pos, ready_n;
    size_t in_flight;
    gboolean pumping;    /* in engine_owner_pump's send loop (a refused send re-enters it) */
    gboolean blocked;    /* in e->blocked: waits for a global in-flight slot */
    GPtrArray *dumps;    /* dump_op* waiting for this owner to go idle */
    /* cancel (engine-dump.c): the claim in flight was cancelled; its
     * messages are released unchanged when it completes */
    gboolean claim_cancelled;
};

/* A thread with a store handle of its own (msilo_store_open_peer): a put
 * worker only commits batches of stores, so that several batches commit at
 * once; the expiry worker runs expiry and the queued_messages count. */
struct peer_worker {
    msilo_engine_t *e;
    msilo_store_t *store;
    GThread *thread;
    GAsyncQueue *todo;
    gboolean busy; /* loop thread only */
};

typedef enum { SEND_OFFLINE, SEND_REMINDER, SEND_NOTIFY } send_kind;

typedef struct postbox postbox_t;

/* A send handed to the transport, until its completion has run. */
typedef struct send_ctx {
    struct send_ctx *next; /* in e->sc_free while unused; in the post box while posted */
    postbox_t *box; /* its engine's; outlives the engine while this send is in flight */
    send_kind kind;
    int status;     /* posted from another thread: the status done() reported */
    gint64 started; /* monotonic, for the latency statistic */
    gint64 answered;/* posted from another thread: when done() was called */
    owner_t *owner;
    msilo_message_t *msg;
} send_ctx;

/* The completions that transports report from threads that do not own the
 * engine's context (engine-deliver.c): done() pushes the send context on a
 * lock-free stack and wakes the dispatch source, which completes it on the
 * loop thread. Refcounted, because a send may outlive its engine: once the
 * engine is freed, head is POSTBOX_CLOSED and a done() only frees what the
 * send held. */
struct postbox {
    _Atomic(send_ctx *) head; /* LIFO through send_ctx.next, or POSTBOX_CLOSED */
    /* the engine's 1; after msilo_engine_free() + 1 per send still in flight;
     * + 1 during each done() on another thread */
    atomic_size_t refs;
    msilo_engine_t *e;      /* valid while head is not POSTBOX_CLOSED */
    GMainContext *ctx;      /* a reference: done() asks whether it runs there */
    GSource *dispatch;      /* a reference: woken from other threads */
};

typedef struct time_slot {
    int64_t t;
    char *s; /* NULL = empty */
} time_slot;

struct msilo_engine {
    msilo_config_t *cfg; /* the engine's own copy; the strings below point into it */
    msilo_store_t *store;
    msilo_transport_t *transport;
    GMainContext *ctx;
    gboolean inline_store; /* MSILO_STORE_NONBLOCKING: jobs run from the dispatch source */

    /* cached configuration */
    int64_t expire_time, check_time, send_time, clean_period, max_messages, max_body;
    int64_t max_attempts, lease_time, dump_batch, dump_window, max_in_flight;
    gboolean every_device; /* deliver_to = every_device (engine-device.c) */
    int64_t device_ttl;
    gboolean use_contact, add_date, use_callid, reminders_on, imdn;
    const char *reminder, *outbound_proxy, *id_header, *default_domain;
    char *extra_hdrs; /* CRLF-terminated or NULL */
    char **transient_types; /* lower-case media types never stored (NULL-terminated) */
    /* ids of the stored messages whose <stored/> IMDN went out, the last
     * IMDN_STORED_MEMORY of them (engine-imdn.c): a put of the same store
     * key again (a retransmission) reports that id, and gets no second one */
    GHashTable *imdn_stored_ids; /* int64_t* set, the keys owned by the queue */
    GQueue imdn_stored_fifo;     /* int64_t*, oldest first */
    GArray *perm_codes;     /* int: delivery statuses that end a message at once */
    char *instance_id;
    msilo_template_t *t_from, *t_contact, *t_ctype, *t_body; /* the notification's */
    msilo_template_t *t_fail; /* failure_message: the notice of a permanent failure */

    msilo_clock_fn clock;
    void *clock_data;
    msilo_log_fn log;
    void *log_data;
    msilo_count_fn count_fn; /* msilo_engine_set_count_hook() */
    void *count_data;
    /* written on the loop thread only, read from any (msilo_engine_stat()):
     * relaxed atomics, plain loads and stores on the usual targets; through
     * stat_get(), stat_add(), stat_set(), gauge_add() */
    _Atomic uint64_t stats[MSILO_STAT_COUNT_];
    gboolean freeing; /* in msilo_engine_free(): no loop to come back to */

    /* jobs (engine-jobs.c) */
    GSource *dispatch;
    GThread *worker;    /* the main worker: e->store, started at the first job */
    GAsyncQueue *todo;  /* to the main worker */
    GAsyncQueue *done;  /* from every worker */
    GQueue inline_todo; /* jobs of a non-blocking store, run by the dispatch source */
    size_t jobs_pending;

    /* the store path (engine-store.c) */
    op_chunk *op_chunk; /* where new store ops are carved */
    op_queue put_wait;
    guint puts_running;
    int64_t store_threads;   /* configured; put workers are opened at the first store */
    gboolean put_workers_tried;
    guint puts_opening;      /* JOB_OPEN_PEER for put workers not completed yet */
    gboolean main_put_running; /* a batch on the main worker (before the put workers are up) */
    /* the submitted batch that has not started yet and takes more stores
     * (NULL: none); its put.open and put.ops are shared with the thread that
     * starts it, under put_lock */
    job_t *put_open;
    GMutex put_lock;
    /* the first store after the puts went idle waits for this source, which
     * runs when the host's sockets have nothing more to read (engine-store.c,
     * "a batch starts when the loop is idle"); put_kick_at: since when */
    GSource *put_kick;
    gint64 put_kick_at;
    int64_t store_wait_us; /* configured: the longest such wait; 0: none */
    gboolean expiry_worker_opening;
    GPtrArray *put_workers;  /* peer_worker_t*; empty: puts run on the main worker */
    /* a set of msilo_message_t*, compared by owner (user, domain): the owners
     * with a batch in flight */
    GHashTable *put_owners;
    peer_worker_t *expiry_worker; /* expiry + count(*) on their own store handle, or NULL */
    /* store failures are logged at most once a second (engine-store.c):
     * when the last line went out (monotonic µs) and how many since */
    gint64 store_fail_logged_at;
    guint64 store_fail_quiet;
    /* and failed deletes of delivered messages (engine-deliver.c), the same way */
    gint64 remove_fail_logged_at;
    guint64 remove_fail_quiet;

    /* delivery (engine-deliver.c) */
    /* formatted times of recent stored seconds (a dump's messages come from a
     * few seconds, interleaved): direct-mapped by second */
    time_slot date_cache[TIME_CACHE], ctime_cache[TIME_CACHE];
    /* a delivery's headers and prefixed body, reused (the transport borrows
     * them only during send()) */
    GString *hdr_buf, *body_buf;
    send_ctx *sc_free;  /* unused send contexts, reused */
    size_t sends_out;   /* sends handed to the transport, not completed yet */
    postbox_t *box;     /* completions posted from other threads */
    /* owner_t* with messages ready but no global slot (max_in_flight), in
     * turn; the pump (engine-dump.c) queues them */
    GQueue blocked;
    gboolean unblocking;
    coalescer_t acks;     /* int64_t ids delivered: delete */
    coalescer_t releases; /* msilo_store_release_t: failed deliveries */
    coalescer_t marks;    /* mark_item_t: delivered to a device (every_device) */

    /* owners and dumps (engine-dump.c) */
    GHashTable *owners;    /* key -> owner_t* */
    GQueue noop_dumps;     /* dump_op*: dumps with nothing to do, completed by dispatch */
    GQueue finished_dumps; /* dump_op*: done, waiting for their deletes to commit */

    /* periodic jobs (engine-periodic.c) */
    GSource *timer;
    gboolean reminders_running, clean_running;
    int64_t next_check, next_clean, next_reminder;

    /* shutdown (engine.c): msilo_engine_shutdown() and the callbacks in progress */
    gboolean stopping;         /* shutdown called: no new work, no claims, no timer */
    gboolean stop_timed_out;   /* its deadline passed: the store handles are interrupted */
    GSource *stop_source;      /* runs the shutdown callback; NULL once it ran */
    msilo_shutdown_cb stop_cb;
    void *stop_data;
    /* > 0 while engine code that uses e after it returns runs an embedder's
     * callback (store, dump, log): msilo_engine_free() refuses then */
    unsigned in_callback;
};

/* Where a round's claims, deliveries and failures are counted: the first
 * dump waiting on @o (NULL: none). Dumps that overlap share one round; each
 * message is counted once, in the oldest of them, so that the dumps' counts
 * add up to what happened (issue 16: a log line per merged dump repeated
 * every claim). */
static inline msilo_dump_result_t *owner_result(const owner_t *o)
{
    return o && o->dumps->len ? &((dump_op *)o->dumps->pdata[0])->res : NULL;
}

/* TRUE once msilo_engine_shutdown() or msilo_engine_free() has started:
 * nothing new is claimed, sent or notified, claimed messages are given back. */
static inline gboolean engine_stopping(const msilo_engine_t *e)
{
    return e->stopping || e->freeing;
}

/* Now, by the engine's (injectable) clock, in seconds. */
static inline int64_t now_of(const msilo_engine_t *e)
{
    return e->clock(e->clock_data);
}

/* Statistics: one writer (the loop thread), so a load and a store make an
 * increment; readers on other threads see a whole value. */
static inline uint64_t stat_get(const msilo_engine_t *e, msilo_stat_t s)
{
    return atomic_load_explicit((_Atomic uint64_t *)&e->stats[s], memory_order_relaxed);
}

static inline void stat_set(msilo_engine_t *e, msilo_stat_t s, uint64_t v)
{
    atomic_store_explicit(&e->stats[s], v, memory_order_relaxed);
}

static inline void stat_add(msilo_engine_t *e, msilo_stat_t s, uint64_t d)
{
    stat_set(e, s, stat_get(e, s) + d);
}

/* Adds @d to a gauge statistic, which never goes below 0. */
static inline void gauge_add(msilo_engine_t *e, msilo_stat_t s, int64_t d)
{
    uint64_t v = stat_get(e, s);
    stat_set(e, s, d < 0 && v < (uint64_t)-d ? 0 : v + (uint64_t)d);
}

/* TRUE when the media type of @ctype (its parameters ignored) is one of
 * transient_types: such a message is never stored (RFC 3994). */
static inline gboolean engine_is_transient(const msilo_engine_t *e, const char *ctype)
{
    if (!ctype || !e->transient_types[0])
        return FALSE;
    size_t n = strcspn(ctype, "; \t");
    for (char **t = e->transient_types; *t; t++)
        if (strlen(*t) == n && g_ascii_strncasecmp(ctype, *t, n) == 0)
            return TRUE;
    return FALSE;
}

/* TRUE when a delivery answered @status ends the message (permanent_failures). */
static inline gboolean engine_is_permanent(const msilo_engine_t *e, int status)
{
    for (guint i = 0; i < e->perm_codes->len; i++)
        if (g_array_index(e->perm_codes, int, i) == status)
            return TRUE;
    return FALSE;
}

/* ---- threads ---------------------------------------------------------------- */

/* Every public engine function but msilo_engine_stat() starts with this: the
 * engine runs on the calling thread for the call, which must own e->ctx
 * (inside a callback or a source of that context, or after
 * g_main_context_acquire()) or be able to take it now, when no other thread
 * runs it. FALSE: another thread runs the engine; return engine_ethread().
 * TRUE is paired with engine_leave(). Ownership is recursive, so a callback
 * that calls the engine again is fine. */
static inline gboolean engine_enter(msilo_engine_t *e)
{
    return g_main_context_acquire(e->ctx);
}

static inline void engine_leave(msilo_engine_t *e)
{
    g_main_context_release(e->ctx);
}

/* MSILO_ETHREAD, with a detail naming @fn. */
int engine_ethread(const char *fn);

/* ---- life cycle and statistics (engine.c) ------------------------------- */

/* Calls the embedder's count-change hook, if any (@user, @domain NULL: any owner). */
void engine_count_changed(msilo_engine_t *e, const char *user, const char *domain);

/* Passes a message to the embedder's log hook, if any. */
void engine_log(msilo_engine_t *e, msilo_log_level_t lvl, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/* ---- jobs and workers (engine-jobs.c) ---------------------------------- */

/* Submits @j (the engine takes it): to the worker it names, the main worker,
 * or the dispatch source for a non-blocking store; while the engine is being
 * freed, executes and completes it at once. */
void engine_job_submit(msilo_engine_t *e, job_t *j);
/* Starts a peer worker's thread on @store (which the worker then owns). */
peer_worker_t *engine_peer_worker_new(msilo_engine_t *e, msilo_store_t *store, const char *name);
/* Frees a stopped peer worker and its store handle; NULL is fine. */
void engine_peer_worker_free(peer_worker_t *pw);
/* Creates e->dispatch and attaches it to e->ctx. */
void engine_dispatch_attach(msilo_engine_t *e);
/* While freeing: lets every worker finish its queue and joins it, then
 * completes what they did and runs what was left for the dispatch source. */
void engine_workers_stop(msilo_engine_t *e);

/* Job completions, on the loop thread, by the part of the engine that made
 * the job; each frees what the job's member holds, not the job. */
void engine_complete_put(msilo_engine_t *e, job_t *j);          /* engine-store.c */
void engine_complete_open_peer(msilo_engine_t *e, job_t *j);    /* engine-store.c */
void engine_complete_claim(msilo_engine_t *e, job_t *j);        /* engine-dump.c */
void engine_complete_remove(msilo_engine_t *e, job_t *j);       /* engine-deliver.c */
void engine_complete_release(msilo_engine_t *e, job_t *j);      /* engine-deliver.c */
void engine_complete_mark(msilo_engine_t *e, job_t *j);         /* engine-deliver.c */
void engine_complete_reminders(msilo_engine_t *e, job_t *j);    /* engine-periodic.c */
void engine_complete_expire(msilo_engine_t *e, job_t *j);       /* engine-periodic.c */
void engine_complete_reset_leases(msilo_engine_t *e, job_t *j); /* engine.c */

/* ---- the store path (engine-store.c) ------------------------------------------ */

/* The worker that runs expiry: the expiry worker once its store handle is
 * open, else NULL (the main worker); asks for the handle the first time,
 * when the store can open one. */
peer_worker_t *engine_worker_for_expiry(msilo_engine_t *e);
/* Hands batches of the waiting stores to the store while a worker can take
 * one (while freeing: all of them, synchronously). */
void engine_schedule_put(msilo_engine_t *e);
void engine_put_kick_attach(msilo_engine_t *e);
/* A GSource of @funcs on e->ctx, woken by g_source_set_ready_time(), with e
 * as its data (engine-jobs.c). */
GSource *engine_source_attach(msilo_engine_t *e, GSourceFuncs *funcs, const char *name,
                              int priority);
/* On the thread that runs put job @j, first: its stores are final from here. */
void engine_put_start(msilo_engine_t *e, job_t *j);
/* The set e->put_owners: msilo_message_t* hashed and compared by owner. */
GHashTable *engine_put_owners_new(void);

/* ---- the request view of a store (engine-request.c) ----------------------- */

/* A MESSAGE request view that passed the checks of msilo_engine_store(),
 * with its URIs parsed and its owner found. It points into itself (the
 * URIs), so it is never copied by value. */
typedef struct store_request {
    msilo_uri_t from, to, ruri, owner_uri;
    gboolean have_ruri;       /* ruri parsed (it is optional, and may be malformed) */
    const msilo_uri_t *owner; /* &owner_uri, &ruri or &to */
    const char *domain;       /* the owner's host, or default_domain for a tel: owner */
    gboolean domain_default;  /* domain is default_domain: lower-case it when copying */
    int64_t snd_time;         /* the reminder time, 0 = none */
    char *extra_hdrs;         /* "Name: value\r\n" lines or NULL: the caller takes it */
} store_request_t;

/* Checks @req (all but its version, which the caller checks first) and
 * fills @r: 0, and the caller calls engine_store_request_clear(); or an
 * MSILO_E* code with a detail, and @r holds nothing. */
int engine_store_request_parse(msilo_engine_t *e, const msilo_request_t *req, const char *owner,
                               store_request_t *r);
/* Frees the URIs of @r (not extra_hdrs, which the caller took). */
static inline void engine_store_request_clear(store_request_t *r)
{
    msilo_uri_clear(&r->from);
    msilo_uri_clear(&r->to);
    msilo_uri_clear(&r->ruri);
    msilo_uri_clear(&r->owner_uri);
}
/* Prepares the offline notification of @op from @req while the request view
 * is still valid, when one is configured and not skipped by flag (@ru may
 * be NULL). */
void engine_prepare_notification(msilo_engine_t *e, const msilo_request_t *req, store_op *op,
                                 const msilo_uri_t *ru, const msilo_uri_t *fu,
                                 const msilo_uri_t *tu);

/* The stored header line that carries the From's display name
 * (engine-request.c adds it, engine-deliver.c puts it back into the From). */
#define DISPLAY_HEADER "X-Msilo-From-Display"

/* Appends @lines ("Name: value" lines, NULL or "" for none) to @s, ending
 * with CRLF (for the notification, and twice per delivered message). */
static inline void append_header_lines(GString *s, const char *lines)
{
    if (!lines || !*lines)
        return;
    g_string_append(s, lines);
    if (!g_str_has_suffix(lines, "\r\n"))
        g_string_append(s, "\r\n");
}

/* ---- delivery (engine-deliver.c) ------------------------------------------- */

/* Sends @m (taken; freed when its delivery has finished): an offline message
 * of owner @o to its contact, or a reminder (@o NULL) to the owner's AoR. A
 * send the transport refuses at once finishes inside this call, as a failed
 * delivery (and pumps @o again). */
void engine_deliver(msilo_engine_t *e, send_kind kind, owner_t *o, msilo_message_t *m);
/* Sends the offline notification prepared in @op (it stays @op's). */
void engine_send_notification(msilo_engine_t *e, store_op *op);
/* Sends a notice to a sender (a SEND_NOTIFY: counted as a notification,
 * never retried); @out is borrowed for the call. */
void engine_send_notice(msilo_engine_t *e, const msilo_outgoing_t *out);
/* Creates e->box (after e->dispatch). */
void engine_postbox_new(msilo_engine_t *e);
/* The dispatch source's part: completes the sends posted from other threads. */
void engine_run_posted(msilo_engine_t *e);
/* While freeing: completes what was posted, closes the post box (a later
 * done() only frees its send) and drops the engine's reference to it. */
void engine_postbox_close(msilo_engine_t *e);
/* Hands what waits in @c to the store as one job, unless one is running. */
void engine_coalesce_schedule(msilo_engine_t *e, coalescer_t *c);

/* ---- telling the sender (engine-imdn.c) ------------------------------------- */

/* @m's delivery failed for good (@status, in permanent_failures): tells its
 * sender, with a <failed/> IMDN when @m asked for negative-delivery, else
 * with the failure notice (failure_message, when the offline notification
 * is configured). @m stays the caller's. */
void engine_tell_sender_failed(msilo_engine_t *e, const msilo_message_t *m, int status);
/* @m was committed: the <stored/> processing IMDN when it is a message/cpim
 * that asks for one (and imdn is on). @m stays the caller's. */
void engine_imdn_stored(msilo_engine_t *e, const msilo_message_t *m);
/* After expiry took @m (undelivered): the <failed/> delivery notification
 * when it asked for negative-delivery (and imdn is on). @m stays the caller's. */
void engine_imdn_expired(msilo_engine_t *e, const msilo_message_t *m);

/* ---- owners and dumps (engine-dump.c) --------------------------------------- */

/* Sends what is ready within @o's window and the global one; ends @o's round
 * when all is done (and may free @o). Re-entered from a refused send, it
 * returns at once and the outer call carries on. */
void engine_owner_pump(msilo_engine_t *e, owner_t *o);
/* Completes the finished dumps when no delete is waiting or running (or at
 * once with @force, after a failed delete that will be retried). */
void engine_flush_finished_dumps(msilo_engine_t *e, gboolean force);
/* Completes the dumps that had nothing to do with @result. */
void engine_complete_noop_dumps(msilo_engine_t *e, int result);
/* Releases claimed messages unchanged (they will not be sent: the engine is
 * being freed), ending their leases (of @device when not NULL: a
 * GRefString); frees @msgs and the array. */
void engine_give_back(msilo_engine_t *e, msilo_message_t **msgs, size_t n, char *device);
/* The tick's part: starts a retry round for each registered owner whose
 * retry is due, and forgets those whose registration has run out. */
void engine_owners_retry(msilo_engine_t *e, int64_t now);
/* While freeing: gives back what was claimed and not sent, completes the
 * dumps waiting on an owner with MSILO_ECANCELLED, frees the owners. */
void engine_owners_free(msilo_engine_t *e);
/* msilo_engine_dump() that also hands back the dump's op (valid until its
 * callback has run), for the blocking wrappers (engine-sync.c). */
int engine_dump_start(msilo_engine_t *e, const msilo_request_t *reg, const char *owner,
                      size_t max, msilo_dump_cb cb, void *data, dump_op **ret_op);
/* Cancels the round @d waits on, as msilo_engine_cancel(owner, NULL) does;
 * @d completes with MSILO_ECANCELLED (never inside this call). */
void engine_dump_cancel(msilo_engine_t *e, dump_op *d);
/* At msilo_engine_shutdown(): gives back what was claimed and not sent and
 * ends the rounds that have nothing out (their dumps complete once their
 * deletes have committed); the others end when their claim or sends do. */
void engine_owners_stop(msilo_engine_t *e);

/* ---- devices (engine-device.c) ------------------------------------------------ */

/* The +sip.instance of a Contact value, unquoted (g_free), or NULL. */
char *engine_contact_instance(const char *contact);
/* The device a dump is for (g_free): the view's device, else the Contact's
 * +sip.instance, else @contact_uri, else the AoR user@domain. */
char *engine_dump_device(const msilo_request_t *reg, const char *contact_uri,
                         const char *user, const char *domain);
/* The one device a stored message is for (g_free), or NULL for every device:
 * the view's device, else the Request-URI's gr parameter as "<urn:...>". */
char *engine_store_device(const msilo_request_t *req);
/* Queues "message @id delivered to @device (GRefString)" for the store. */
void engine_mark_delivered(msilo_engine_t *e, char *device, int64_t id);
/* The JOB_MARK store call: mark_delivered of the whole batch. */
int engine_marks_execute(msilo_store_t *s, GArray *items, size_t *ret_deleted);
/* Releases the device references of @items of coalescer @c (they are done
 * with: committed, or dropped). */
void engine_device_items_drop(coalescer_t *c, GArray *items);

/* ---- periodic jobs (engine-periodic.c) ---------------------------------------- */

/* Creates e->timer, which calls msilo_engine_tick(), and attaches it to e->ctx. */
void engine_timer_attach(msilo_engine_t *e);

#pragma GCC visibility pop

#endif
