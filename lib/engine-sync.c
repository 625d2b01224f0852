/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The blocking wrappers: msilo_engine_store_sync(), msilo_engine_dump_sync().
 *
 * Each starts the asynchronous call and iterates the engine's GMainContext
 * until its callback has run. Invariants: the context is acquired first and
 * released before returning, so a wrapper called from a thread that does not
 * own the context fails with MSILO_ETHREAD instead of deadlocking; called
 * from inside an engine callback on the owning thread it nests (GLib allows
 * the owner to iterate recursively). The state the callback fills lives on
 * the wrapper's stack, which outlives the callback by construction.
 */
#include "engine-private.h"

typedef struct {
    gboolean done;
    int rc;
    int64_t id;
    msilo_dump_result_t res;
} sync_state;

static void sync_store_cb(msilo_engine_t *e, int result, int64_t id, void *data)
{
    (void)e;
    sync_state *st = data;
    st->done = TRUE;
    st->rc = result;
    st->id = id;
}

static void sync_dump_cb(msilo_engine_t *e, int result, const msilo_dump_result_t *res, void *data)
{
    (void)e;
    sync_state *st = data;
    st->done = TRUE;
    st->rc = result;
    st->res = *res;
}

int msilo_engine_store_sync(msilo_engine_t *e, const msilo_request_t *req, const char *owner,
                            int64_t *ret_id)
{
    if (!e)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_store_sync: engine is NULL");
    if (!g_main_context_acquire(e->ctx))
        return msilo_fail(MSILO_ETHREAD, "another thread runs the engine's main context; "
                          "use msilo_engine_store() there");
    sync_state st = { 0 };
    int rc = msilo_engine_store(e, req, owner, sync_store_cb, &st);
    if (rc == 0) {
        while (!st.done)
            g_main_context_iteration(e->ctx, TRUE);
        rc = st.rc;
        if (rc == 0 && ret_id)
            *ret_id = st.id;
    }
    g_main_context_release(e->ctx);
    return rc;
}

/* The first revision of msilo_dump_result_t ends at failed. */
#define DUMP_RESULT_V1_SIZE (offsetof(msilo_dump_result_t, failed) + sizeof(size_t))

int msilo_engine_dump_sync(msilo_engine_t *e, const msilo_request_t *reg, const char *owner,
                           size_t max, msilo_dump_result_t *ret_res, size_t res_size)
{
    if (!e)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_dump_sync: engine is NULL");
    if (ret_res && res_size < DUMP_RESULT_V1_SIZE)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_dump_sync: res_size %zu too small",
                          res_size);
    if (!g_main_context_acquire(e->ctx))
        return msilo_fail(MSILO_ETHREAD, "another thread runs the engine's main context; "
                          "use msilo_engine_dump() there");
    sync_state st = { 0 };
    int rc = msilo_engine_dump(e, reg, owner, max, sync_dump_cb, &st);
    if (rc == 0) {
        while (!st.done)
            g_main_context_iteration(e->ctx, TRUE);
        rc = st.rc;
        if (ret_res) { /* as far as the caller's struct goes */
            memset(ret_res, 0, res_size);
            memcpy(ret_res, &st.res, MIN(res_size, sizeof st.res));
        }
    }
    g_main_context_release(e->ctx);
    return rc;
}
