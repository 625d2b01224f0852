/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The blocking wrappers: msilo_engine_store_sync(), msilo_engine_dump_sync()
 * and their _timeout forms (the plain forms are the _timeout forms with no
 * timeout, -1).
 *
 * Each starts the asynchronous call and iterates the engine's GMainContext
 * until its callback has run or the timeout's own source on that context
 * has fired. Invariants:
 * - The context is acquired first and released before returning, so a
 *   wrapper called from a thread that does not own the context fails with
 *   MSILO_ETHREAD instead of deadlocking; called from inside an engine
 *   callback on the owning thread it nests (GLib allows the owner to
 *   iterate recursively).
 * - The state the callback fills is on the heap, not the wrapper's stack:
 *   after a timeout the wrapper returns and the callback still runs once,
 *   later (the async contract). The wrapper then marks the state abandoned
 *   and the late callback logs the outcome and frees it; until then the
 *   wrapper frees it itself. Either way exactly one of them frees it.
 * - A dump that times out is cancelled (engine_dump_cancel(): its claimed
 *   messages not sent are released at once, the context turned a few times
 *   without waiting so that the release reaches a store that runs on the
 *   loop) and returns the counts it had when the time ran out.
 *   A store that times out cannot be taken back: it may still commit.
 * - No sleeping and no polling: the wait is g_main_context_iteration(TRUE),
 *   woken by the engine's sources or the deadline's timeout source.
 */
#include "engine-private.h"

/* Rounds of the context a timed-out dump runs, without waiting, after its
 * cancel. */
#define SYNC_DRAIN_ROUNDS 16

typedef struct {
    gboolean done, abandoned, timed_out;
    int rc;
    int64_t id;
    msilo_dump_result_t res;
} sync_state;

static void sync_store_cb(msilo_engine_t *e, int result, int64_t id, void *data)
{
    sync_state *st = data;
    if (st->abandoned) {
        /* the caller got MSILO_ETIMEDOUT: this is the outcome it never saw */
        if (result == 0)
            engine_log(e, MSILO_LOG_WARNING,
                       "a store that timed out committed later (message %lld)", (long long)id);
        else
            engine_log(e, MSILO_LOG_WARNING, "a store that timed out failed later: %s",
                       msilo_strerror(result));
        g_free(st);
        return;
    }
    st->done = TRUE;
    st->rc = result;
    st->id = id;
}

static void sync_dump_cb(msilo_engine_t *e, int result, const msilo_dump_result_t *res, void *data)
{
    sync_state *st = data;
    if (st->abandoned) {
        engine_log(e, MSILO_LOG_INFO,
                   "a dump that timed out ended: %s, %zu claimed, %zu delivered, %zu failed",
                   result ? msilo_strerror(result) : "done", res->claimed, res->delivered,
                   res->failed);
        g_free(st);
        return;
    }
    st->done = TRUE;
    st->rc = result;
    st->res = *res;
}

static gboolean deadline_cb(gpointer data)
{
    ((sync_state *)data)->timed_out = TRUE;
    return G_SOURCE_REMOVE;
}

/* Iterates the engine's context until @st is done or @timeout_ms (< 0: no
 * limit) passed; TRUE when done. */
static gboolean sync_wait(msilo_engine_t *e, sync_state *st, int timeout_ms)
{
    GSource *deadline = NULL;
    if (timeout_ms >= 0 && !st->done) {
        deadline = g_timeout_source_new((guint)timeout_ms);
        g_source_set_callback(deadline, deadline_cb, st, NULL);
        g_source_set_name(deadline, "msilo-sync-deadline");
        g_source_attach(deadline, e->ctx);
    }
    while (!st->done && !st->timed_out)
        g_main_context_iteration(e->ctx, TRUE);
    if (deadline) {
        g_source_destroy(deadline);
        g_source_unref(deadline);
    }
    return st->done;
}

int msilo_engine_store_sync_timeout(msilo_engine_t *e, const msilo_request_t *req,
                                    const char *owner, int timeout_ms, int64_t *ret_id)
{
    if (!e)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_store_sync: engine is NULL");
    if (!g_main_context_acquire(e->ctx))
        return msilo_fail(MSILO_ETHREAD, "another thread runs the engine's main context; "
                          "use msilo_engine_store() there");
    sync_state *st = g_new0(sync_state, 1);
    int rc = msilo_engine_store(e, req, owner, sync_store_cb, st);
    if (rc) {
        g_free(st); /* the callback never runs */
    } else if (sync_wait(e, st, timeout_ms)) {
        rc = st->rc;
        if (rc == 0 && ret_id)
            *ret_id = st->id;
        g_free(st);
    } else {
        st->abandoned = TRUE; /* the late callback frees it */
        rc = msilo_fail(MSILO_ETIMEDOUT, "the store did not complete within %d ms; "
                        "it may still commit", timeout_ms);
    }
    g_main_context_release(e->ctx);
    return rc;
}

int msilo_engine_store_sync(msilo_engine_t *e, const msilo_request_t *req, const char *owner,
                            int64_t *ret_id)
{
    return msilo_engine_store_sync_timeout(e, req, owner, -1, ret_id);
}

/* The first revision of msilo_dump_result_t ends at failed. */
#define DUMP_RESULT_V1_SIZE (offsetof(msilo_dump_result_t, failed) + sizeof(size_t))

/* Writes @res into the caller's struct, as far as it goes. */
static void copy_result(msilo_dump_result_t *ret_res, size_t res_size, const msilo_dump_result_t *res)
{
    if (!ret_res)
        return;
    memset(ret_res, 0, res_size);
    memcpy(ret_res, res, MIN(res_size, sizeof *res));
}

int msilo_engine_dump_sync_timeout(msilo_engine_t *e, const msilo_request_t *reg,
                                   const char *owner, size_t max, int timeout_ms,
                                   msilo_dump_result_t *ret_res, size_t res_size)
{
    if (!e || !reg)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_dump_sync: engine or request is NULL");
    if (ret_res && res_size < DUMP_RESULT_V1_SIZE)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_dump_sync: res_size %zu too small",
                          res_size);
    if (!g_main_context_acquire(e->ctx))
        return msilo_fail(MSILO_ETHREAD, "another thread runs the engine's main context; "
                          "use msilo_engine_dump() there");
    sync_state *st = g_new0(sync_state, 1);
    dump_op *d = NULL;
    int rc = engine_dump_start(e, reg, owner, max, sync_dump_cb, st, &d);
    if (rc) {
        g_free(st);
    } else if (sync_wait(e, st, timeout_ms)) {
        rc = st->rc;
        copy_result(ret_res, res_size, &st->res);
        g_free(st);
    } else {
        /* d is alive: its callback has not run. Cancelled, it completes
         * later (never inside engine_dump_cancel()), and frees st then. */
        copy_result(ret_res, res_size, &d->res);
        st->abandoned = TRUE;
        engine_dump_cancel(e, d);
        /* one bounded pass, without waiting: the releases reach a store that
         * runs on the loop (a worker's store has them already), and the
         * cancelled callback may run, freeing st */
        for (int i = 0; i < SYNC_DRAIN_ROUNDS && g_main_context_iteration(e->ctx, FALSE); i++)
            ;
        rc = msilo_fail(MSILO_ETIMEDOUT, "the dump did not complete within %d ms; cancelled",
                        timeout_ms);
    }
    g_main_context_release(e->ctx);
    return rc;
}

int msilo_engine_dump_sync(msilo_engine_t *e, const msilo_request_t *reg, const char *owner,
                           size_t max, msilo_dump_result_t *ret_res, size_t res_size)
{
    return msilo_engine_dump_sync_timeout(e, reg, owner, max, -1, ret_res, res_size);
}
