/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Jobs, the worker threads that execute them, and the dispatch source that
 * completes them (and the sends posted from other threads, engine-deliver.c).
 *
 * Owns: e->worker (the main worker, on e->store, started at the first job
 * that needs it), the peer workers' threads (each on a store handle of its
 * own, see engine-store.c for when they are opened), the queues between the
 * loop thread and the workers (e->todo, e->done, e->inline_todo) and the
 * dispatch source.
 *
 * Invariants:
 * - The loop thread never calls a blocking store. A job of a blocking store
 *   runs on the worker named in the job (the main worker when NULL); a job
 *   of a store with MSILO_STORE_NONBLOCKING runs from the dispatch source.
 *   Either way it is completed on the loop thread, never inside the call
 *   that submitted it (but see the last point), so the callbacks of
 *   msilo_engine_store() and msilo_engine_dump() never run inside them.
 * - Each worker runs its jobs one at a time, in the order they came; the
 *   completion of a job runs after every job submitted before it to the same
 *   worker has been completed.
 * - One persistent GSource per engine receives the workers' results: a
 *   worker wakes it with g_source_set_ready_time() (thread-safe), so there
 *   are no per-result sources that could outlive the engine.
 * - While the engine is being freed there is no loop to come back to: a job
 *   is executed and completed inside engine_job_submit().
 * - e->jobs_pending counts the jobs submitted and not yet completed.
 */
#include "engine-private.h"
#include "tsan.h"

static void job_complete(msilo_engine_t *e, job_t *j);

/* A job changes threads only through these: the queue hands it over, and
 * lib/tsan.h tells ThreadSanitizer so (GAsyncQueue is GLib's, unseen). */
static void job_push(GAsyncQueue *q, job_t *j)
{
    msilo_tsan_release(j);
    g_async_queue_push(q, j);
}

static job_t *job_pop(GAsyncQueue *q, gboolean wait)
{
    job_t *j = wait ? g_async_queue_pop(q) : g_async_queue_try_pop(q);
    if (j)
        msilo_tsan_acquire(j);
    return j;
}

/* Runs the job's store call, on the store handle of the worker it names. */
static void job_execute(msilo_engine_t *e, job_t *j)
{
    msilo_store_t *s = j->worker ? j->worker->store : e->store;
    /* a detail left by an earlier call must not pass for this job's (a
     * thread-local read when there is none) */
    if (G_UNLIKELY(*msilo_error_detail()))
        msilo_error_clear();
    switch (j->kind) {
    case JOB_PUT:
        engine_put_start(e, j);
        j->rc = msilo_store_put(s, j->put.msgs, j->put.ops->len, e->max_messages, j->put.results);
        break;
    case JOB_CLAIM:
    case JOB_CLAIM_REMINDERS:
        j->rc = msilo_store_claim_engine(s, &j->claim.args, &j->claim.out, &j->claim.out_n);
        break;
    case JOB_REMOVE:
        j->rc = msilo_store_remove(s, (const int64_t *)(void *)j->batch.items->data,
                                   j->batch.items->len, &j->batch.deleted);
        break;
    case JOB_RELEASE:
        j->rc = msilo_store_release(s, (const msilo_store_release_t *)(void *)j->batch.items->data,
                                    j->batch.items->len, sizeof(msilo_store_release_t));
        break;
    case JOB_MARK:
        j->rc = engine_marks_execute(s, j->batch.items, &j->batch.deleted);
        break;
    case JOB_EXPIRE:
        /* devices not seen for device_ttl: messages wait for them no longer */
        if (e->every_device &&
            (j->rc = msilo_store_forget_devices(s, j->expire.now - e->device_ttl, NULL)) != 0)
            break;
        if (j->expire.take) {
            /* expired message/cpim first, a bounded batch: the loop thread
             * sends their IMDNs and submits the next batch while one is full */
            j->rc = msilo_store_take_expired(s, j->expire.now, "message/cpim",
                                             ENGINE_EXPIRE_TAKE_MAX, &j->expire.taken,
                                             &j->expire.taken_n);
            if (j->rc == MSILO_ENOTSUP) { /* the old way: expire() deletes them */
                j->rc = 0;
                j->expire.take = FALSE;
            } else if (j->rc == 0 && j->expire.taken_n == ENGINE_EXPIRE_TAKE_MAX) {
                j->expire.full = TRUE;
                break;
            }
        }
        if (j->rc == 0)
            j->rc = msilo_store_expire(s, j->expire.now, &j->expire.deleted);
        if (j->rc == 0)
            j->rc = msilo_store_count(s, NULL, NULL, &j->expire.count);
        break;
    case JOB_RESET_LEASES:
        j->rc = msilo_store_reset_leases(s, e->instance_id, &j->reset.taken);
        break;
    case JOB_OPEN_PEER:
        j->rc = msilo_store_open_peer(s, &j->open_peer.handle);
        break;
    case JOB_STOP:
        break;
    }
    /* the detail is the worker's (thread-local): it travels with the job to
     * the loop thread, where the callbacks that report the failure run */
    if (G_UNLIKELY(j->rc)) {
        const char *d = msilo_error_detail();
        j->detail = g_strdup(*d ? d : msilo_strerror(j->rc));
        msilo_error_clear();
    }
}

/* A worker thread: runs the jobs of its queue until JOB_STOP and hands each
 * back to the loop (the main worker with e->store, a put or the expiry
 * worker with its own handle, named in the job). */
static void worker_loop(msilo_engine_t *e, GAsyncQueue *todo)
{
    for (;;) {
        job_t *j = job_pop(todo, TRUE);
        if (j->kind == JOB_STOP) {
            g_free(j);
            return;
        }
        job_execute(e, j);
        job_push(e->done, j);
        g_source_set_ready_time(e->dispatch, 0); /* thread-safe wake-up */
    }
}

static gpointer worker_main(gpointer data)
{
    msilo_engine_t *e = data;
    worker_loop(e, e->todo);
    return NULL;
}

static gpointer peer_worker_main(gpointer data)
{
    peer_worker_t *pw = data;
    worker_loop(pw->e, pw->todo);
    return NULL;
}

peer_worker_t *engine_peer_worker_new(msilo_engine_t *e, msilo_store_t *store, const char *name)
{
    peer_worker_t *pw = g_new0(peer_worker_t, 1);
    pw->e = e;
    pw->store = store;
    pw->todo = g_async_queue_new();
    pw->thread = g_thread_new(name, peer_worker_main, pw);
    return pw;
}

/* Lets the thread finish what it was given, then joins it. */
static void peer_worker_stop(peer_worker_t *pw)
{
    job_push(pw->todo, job_new(JOB_STOP));
    g_thread_join(pw->thread);
    pw->thread = NULL;
}

void engine_peer_worker_free(peer_worker_t *pw)
{
    if (!pw)
        return;
    msilo_store_free(pw->store);
    g_async_queue_unref(pw->todo);
    g_free(pw);
}

void engine_job_submit(msilo_engine_t *e, job_t *j)
{
    e->jobs_pending++;
    if (e->freeing) {
        /* no loop to come back to: do it now, synchronously */
        job_execute(e, j);
        job_complete(e, j);
        return;
    }
    if (e->inline_store) {
        g_queue_push_tail(&e->inline_todo, j);
        g_source_set_ready_time(e->dispatch, 0);
        return;
    }
    if (j->worker) {
        job_push(j->worker->todo, j);
        return;
    }
    if (!e->worker)
        e->worker = g_thread_new("msilo-store", worker_main, e);
    job_push(e->todo, j);
}

static gboolean dispatch_source_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    (void)cb;
    msilo_engine_t *e = data;
    g_source_set_ready_time(src, -1);
    e->in_callback++; /* the callbacks below run with e used after them */
    job_t *j;
    /* jobs queued by what completes here wait for the next dispatch, so a
     * stream of work cannot starve the rest of the loop */
    guint n = g_queue_get_length(&e->inline_todo);
    while (n-- && (j = g_queue_pop_head(&e->inline_todo))) {
        job_execute(e, j);
        job_complete(e, j);
    }
    while ((j = job_pop(e->done, FALSE)))
        job_complete(e, j);
    engine_run_posted(e); /* sends that done() completed on other threads */
    engine_complete_noop_dumps(e, 0);
    e->in_callback--;
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs dispatch_funcs = {
    .dispatch = dispatch_source_dispatch,
};

GSource *engine_source_attach(msilo_engine_t *e, GSourceFuncs *funcs, const char *name,
                              int priority)
{
    GSource *src = g_source_new(funcs, sizeof(GSource));
    g_source_set_callback(src, NULL, e, NULL);
    g_source_set_priority(src, priority);
    g_source_set_name(src, name);
    g_source_attach(src, e->ctx);
    return src;
}

void engine_dispatch_attach(msilo_engine_t *e)
{
    e->dispatch = engine_source_attach(e, &dispatch_funcs, "msilo-dispatch", G_PRIORITY_DEFAULT);
}

void engine_workers_stop(msilo_engine_t *e)
{
    /* let the workers finish what they were given (committed stores get
     * their real result), then run the rest here */
    if (e->worker) {
        job_push(e->todo, job_new(JOB_STOP));
        g_thread_join(e->worker);
    }
    for (guint i = 0; i < e->put_workers->len; i++)
        peer_worker_stop(e->put_workers->pdata[i]);
    if (e->expiry_worker)
        peer_worker_stop(e->expiry_worker);
    job_t *j;
    while ((j = g_queue_pop_head(&e->inline_todo))) {
        job_execute(e, j);
        job_complete(e, j);
    }
    while ((j = job_pop(e->done, FALSE)))
        job_complete(e, j);
}

/* On the loop thread: hands the job to the part of the engine that made it,
 * then frees it (the completions free what the job's member holds). */
static void job_complete(msilo_engine_t *e, job_t *j)
{
    e->jobs_pending--;
    job_detail_set(j);
    switch (j->kind) {
    case JOB_PUT: engine_complete_put(e, j); break;
    case JOB_CLAIM: engine_complete_claim(e, j); break;
    case JOB_CLAIM_REMINDERS: engine_complete_reminders(e, j); break;
    case JOB_REMOVE: engine_complete_remove(e, j); break;
    case JOB_RELEASE: engine_complete_release(e, j); break;
    case JOB_MARK: engine_complete_mark(e, j); break;
    case JOB_EXPIRE: engine_complete_expire(e, j); break;
    case JOB_RESET_LEASES: engine_complete_reset_leases(e, j); break;
    case JOB_OPEN_PEER: engine_complete_open_peer(e, j); break;
    case JOB_STOP: break;
    }
    g_free(j->detail);
    g_free(j);
}
