/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The engine: m_store / m_dump semantics, reminders, expiry, retries. This
 * file is its life cycle (msilo_engine_new, _set_clock, _set_log,
 * _set_count_hook, _free) and
 * its statistics; the rest is one file per part, each saying at its top
 * what it owns and which invariants it keeps:
 *
 *   engine-private.h   the engine struct, the jobs, per-owner and per-send state
 *   engine-jobs.c      jobs, the worker threads, the dispatch source
 *   engine-store.c     msilo_engine_store: store ops, batches, peer store handles
 *   engine-request.c   the checks of a store's request view, the offline notification
 *   engine-deliver.c   formatting and sending, completion, backoff, delete/release coalescing
 *   engine-imdn.c      telling the sender: RFC 5438 IMDNs, the failure notice
 *   engine-dump.c      msilo_engine_dump: owners, claims, the pump
 *   engine-periodic.c  msilo_engine_tick: retries, expiry, reminders
 *   engine-sync.c      the blocking wrappers
 *
 * Everything runs on the thread of the engine's GMainContext except the
 * store calls of a blocking store, which run on worker threads. Store work
 * is expressed as jobs; a job is executed (on a worker or, for a
 * non-blocking store, from the dispatch source) and then completed on the
 * loop thread. Stores that arrive while a batch is being written queue up
 * and go to the store together as the next batch; deletes and releases are
 * coalesced the same way.
 *
 * Life cycle invariants:
 * - msilo_engine_new() copies and validates the configuration (the engine
 *   keeps its own copy; the strings it caches point into it). Threads start
 *   when there is work for them: the main worker with the first job of a
 *   blocking store, the peer workers when their store handles are open.
 * - An engine started with the instance_id of one that died takes that
 *   engine's leases back at once (a JOB_RESET_LEASES job), instead of
 *   waiting for them to run out.
 * - msilo_engine_free() never loses what it was given: the workers finish
 *   their queues (a committed store gets its real result), the stores still
 *   waiting are written and the deliveries acknowledged are deleted,
 *   synchronously; claimed messages not sent are released unchanged; dumps
 *   still waiting complete with MSILO_ECANCELLED; completions posted from
 *   other threads are completed; sends in flight keep a context (and the
 *   post box) that only frees itself when the transport calls back.
 * - msilo_engine_shutdown() is the bounded way: the engine takes no new
 *   work, stops its timer and its claims, gives back what was claimed and
 *   not sent, and lets what it accepted finish, without blocking; a source
 *   of its own (stop_source) runs the callback when nothing is left, or at
 *   the deadline after interrupting every store handle, so that the
 *   workers return and msilo_engine_free() after it does not block.
 * - The engine never frees itself under its own feet: msilo_engine_free()
 *   refuses (g_critical) while an embedder's callback runs from engine code
 *   that still uses the engine afterwards (e->in_callback); the shutdown
 *   callback is not such a callback, so freeing there is the natural use.
 */
#include "engine-private.h"

/* ---- life cycle ------------------------------------------------------------ */

static int64_t real_clock(void *data)
{
    (void)data;
    return g_get_real_time() / G_USEC_PER_SEC;
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

/* The items of a comma- or space-separated list, lower-cased, empty ones
 * dropped (g_strfreev()). */
static char **split_list(const char *list)
{
    GPtrArray *a = g_ptr_array_new();
    gchar **items = g_strsplit_set(list ? list : "", ", \t", -1);
    for (gchar **it = items; *it; it++)
        if (**it)
            g_ptr_array_add(a, g_ascii_strdown(*it, -1));
    g_strfreev(items);
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

int engine_ethread(const char *fn)
{
    return msilo_fail(MSILO_ETHREAD, "%s: another thread runs the engine's main context; "
                      "call it from that thread (g_main_context_invoke())", fn);
}

static int engine_new(msilo_engine_t **ret, const msilo_config_t *cfg, msilo_store_t *store,
                      msilo_transport_t *transport, GMainContext *ctx);

int msilo_engine_new(msilo_engine_t **ret, const msilo_config_t *cfg, msilo_store_t *store,
                     msilo_transport_t *transport, GMainContext *ctx)
{
    if (!ret || !store)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_new: ret or store is NULL");
    if (!ctx)
        ctx = g_main_context_default();
    /* its sources are attached and its first job submitted before it is
     * complete: no other thread may dispatch them meanwhile */
    if (!g_main_context_acquire(ctx))
        return engine_ethread("msilo_engine_new");
    int rc = engine_new(ret, cfg, store, transport, ctx);
    g_main_context_release(ctx);
    return rc;
}

static int engine_new(msilo_engine_t **ret, const msilo_config_t *cfg, msilo_store_t *store,
                      msilo_transport_t *transport, GMainContext *ctx)
{
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
    const char *dt = msilo_config_get_string(own, "deliver_to");
    if (strcmp(dt, "every_device") == 0 &&
        (store->version < 4 || !store->mark_delivered || !store->forget_devices)) {
        msilo_config_free(own);
        return msilo_fail(MSILO_ECONFIG, "deliver_to = every_device needs a store with "
                          "per-device delivery (mark_delivered, forget_devices); store '%s' "
                          "has none", store->name);
    }
    msilo_engine_t *e = g_new0(msilo_engine_t, 1);
    e->cfg = own;
    e->store = store;
    e->transport = transport;
    e->ctx = g_main_context_ref(ctx);
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
    e->store_wait_us = cfg_int(own, "store_wait_us");
    e->device_ttl = cfg_int(own, "device_ttl");
    e->every_device = strcmp(msilo_config_get_string(own, "deliver_to"), "every_device") == 0;
    e->use_contact = cfg_int(own, "use_contact") != 0;
    e->add_date = cfg_int(own, "add_date") != 0;
    e->use_callid = cfg_int(own, "use_callid") != 0;
    e->imdn = cfg_int(own, "imdn") != 0;
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
    e->transient_types = split_list(msilo_config_get_string(own, "transient_types"));
    e->imdn_stored_ids = g_hash_table_new(g_int64_hash, g_int64_equal);
    g_queue_init(&e->imdn_stored_fifo);
    e->perm_codes = g_array_new(FALSE, FALSE, sizeof(int));
    char **codes = split_list(msilo_config_get_string(own, "permanent_failures"));
    for (char **c = codes; *c; c++) {
        int v = (int)g_ascii_strtoll(*c, NULL, 10); /* validated: 300..699 */
        g_array_append_val(e->perm_codes, v);
    }
    g_strfreev(codes);
    const char *iid = msilo_config_get_string(own, "instance_id");
    e->instance_id = iid && *iid ? g_strdup(iid)
                                 : g_strdup_printf("%s/%08x%08x", g_get_host_name(),
                                                   g_random_int(), g_random_int());
    /* templates were validated above; compiling again cannot fail */
    compile_opt(own, "from_address", &e->t_from);
    compile_opt(own, "contact_hdr", &e->t_contact);
    compile_opt(own, "content_type_hdr", &e->t_ctype);
    compile_opt(own, "offline_message", &e->t_body);
    compile_opt(own, "failure_message", &e->t_fail);

    e->todo = g_async_queue_new();
    e->done = g_async_queue_new();
    g_queue_init(&e->inline_todo);
    g_queue_init(&e->noop_dumps);
    g_queue_init(&e->finished_dumps);
    g_queue_init(&e->blocked);
    e->acks = (coalescer_t){ .wait = g_array_new(FALSE, FALSE, sizeof(int64_t)),
                             .kind = JOB_REMOVE };
    e->releases = (coalescer_t){ .wait = g_array_new(FALSE, FALSE, sizeof(msilo_store_release_t)),
                                 .kind = JOB_RELEASE };
    e->marks = (coalescer_t){ .wait = g_array_new(FALSE, FALSE, sizeof(mark_item_t)),
                              .kind = JOB_MARK };
    e->owners = g_hash_table_new(g_str_hash, g_str_equal);
    e->hdr_buf = g_string_sized_new(DELIVERY_HDR_INITIAL);
    e->body_buf = g_string_sized_new(DELIVERY_BODY_INITIAL);
    e->put_workers = g_ptr_array_new();
    e->put_owners = engine_put_owners_new();
    g_mutex_init(&e->put_lock);

    engine_dispatch_attach(e);
    engine_put_kick_attach(e);
    engine_postbox_new(e);
    engine_timer_attach(e);

    int64_t now = now_of(e);
    e->next_check = now + e->check_time;
    e->next_clean = now; /* first expiry (and gauge) at the first tick */
    e->next_reminder = now;

    if (iid && *iid && store->version >= 1 && store->reset_leases)
        engine_job_submit(e, job_new(JOB_RESET_LEASES));
    msilo_error_clear();
    *ret = e;
    return 0;
}

void engine_complete_reset_leases(msilo_engine_t *e, job_t *j)
{
    if (j->rc == 0 && j->reset.taken)
        engine_log(e, MSILO_LOG_INFO, "took back %zu messages leased by %s before a restart",
                   j->reset.taken, e->instance_id);
    else if (j->rc && j->rc != MSILO_ENOTSUP)
        engine_log(e, MSILO_LOG_WARNING, "taking back the leases of %s failed: %s: %s",
                   e->instance_id, msilo_strerror(j->rc), job_detail(j));
}

int msilo_engine_set_clock(msilo_engine_t *e, msilo_clock_fn fn, void *data)
{
    if (!e)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_set_clock: engine is NULL");
    if (!engine_enter(e))
        return engine_ethread("msilo_engine_set_clock");
    e->clock = fn ? fn : real_clock;
    e->clock_data = fn ? data : NULL;
    int64_t now = now_of(e);
    e->next_check = now + e->check_time;
    e->next_clean = now;
    e->next_reminder = now;
    engine_leave(e);
    return 0;
}

int msilo_engine_set_log(msilo_engine_t *e, msilo_log_fn fn, void *data)
{
    if (!e)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_set_log: engine is NULL");
    if (!engine_enter(e))
        return engine_ethread("msilo_engine_set_log");
    e->log = fn;
    e->log_data = data;
    engine_leave(e);
    return 0;
}

int msilo_engine_set_count_hook(msilo_engine_t *e, msilo_count_fn fn, void *data)
{
    if (!e)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_set_count_hook: engine is NULL");
    if (!engine_enter(e))
        return engine_ethread("msilo_engine_set_count_hook");
    e->count_fn = fn;
    e->count_data = fn ? data : NULL;
    engine_leave(e);
    return 0;
}

void engine_count_changed(msilo_engine_t *e, const char *user, const char *domain)
{
    if (!e->count_fn || e->freeing)
        return;
    e->in_callback++; /* the engine is used after the hook returns */
    e->count_fn(e, user, domain, e->count_data);
    e->in_callback--;
}

/* ---- shutdown ---------------------------------------------------------------- */

/* Runs the shutdown: its first dispatch stops the owners (their callbacks
 * do not run inside msilo_engine_shutdown()), the last runs the callback. */
typedef struct stop_source {
    GSource src;
    msilo_engine_t *e;
    gint64 deadline; /* monotonic µs; -1: none */
    gboolean started;
} stop_source;

/* Nothing accepted is left: no job, no store waiting, no delete or release
 * waiting or running, no send out, no dump or owner. */
static gboolean stop_finished(const msilo_engine_t *e)
{
    return e->jobs_pending == 0 && e->put_wait.length == 0 && !e->acks.running &&
           e->acks.wait->len == 0 && !e->releases.running && e->releases.wait->len == 0 &&
           !e->marks.running && e->marks.wait->len == 0 &&
           e->sends_out == 0 && e->noop_dumps.length == 0 &&
           e->finished_dumps.length == 0 && g_hash_table_size(e->owners) == 0;
}

/* A coalescer that is not running but holds items failed (it is scheduled
 * whenever something is added): its retry would wait for the periodic jobs,
 * which have stopped, so the items are dropped; their messages keep their
 * leases (a delivered one is delivered again after it, never lost). */
static gboolean coalescer_failed(const coalescer_t *c)
{
    return !c->running && c->wait->len > 0;
}

static void stop_drop_failed(msilo_engine_t *e, coalescer_t *c, const char *what)
{
    if (!coalescer_failed(c))
        return;
    engine_log(e, MSILO_LOG_WARNING,
               "shutdown: %u %s not written (the store failed); those messages keep their "
               "leases and are delivered again when they run out",
               c->wait->len, what);
    engine_device_items_drop(c, c->wait);
    g_array_set_size(c->wait, 0);
    if (c == &e->acks || c == &e->marks)
        engine_flush_finished_dumps(e, FALSE);
}

static gboolean stop_deadline_passed(const stop_source *ss, gint64 now)
{
    return ss->deadline >= 0 && now >= ss->deadline;
}

/* Something for stop_dispatch() to do: start, drop failed items, end. Only
 * looks (prepare and check must not run callbacks that could free e). */
static gboolean stop_ready(stop_source *ss, gint64 now, gint *timeout)
{
    const msilo_engine_t *e = ss->e;
    if (!ss->started || coalescer_failed(&e->acks) || coalescer_failed(&e->releases) ||
        coalescer_failed(&e->marks) ||
        stop_finished(e) || stop_deadline_passed(ss, now))
        return TRUE;
    if (timeout)
        *timeout = ss->deadline < 0 ? -1
                                    : (gint)MIN((ss->deadline - now + 999) / 1000, G_MAXINT);
    return FALSE;
}

static gboolean stop_prepare(GSource *src, gint *timeout)
{
    *timeout = 0;
    return stop_ready((stop_source *)src, g_source_get_time(src), timeout);
}

static gboolean stop_check(GSource *src)
{
    return stop_ready((stop_source *)src, g_get_monotonic_time(), NULL);
}

/* At the deadline: makes every store call return (blocked ones promptly,
 * later ones at once), so that the workers can be joined. */
static void stop_interrupt(msilo_engine_t *e)
{
    e->stop_timed_out = TRUE;
    if (msilo_store_interrupt(e->store) == MSILO_ENOTSUP)
        engine_log(e, MSILO_LOG_WARNING,
                   "shutdown: store '%s' cannot be interrupted; msilo_engine_free() waits for "
                   "the calls it is in", e->store->name);
    if (e->expiry_worker)
        msilo_store_interrupt(e->expiry_worker->store);
    for (guint i = 0; i < e->put_workers->len; i++)
        msilo_store_interrupt(((peer_worker_t *)e->put_workers->pdata[i])->store);
}

static gboolean stop_dispatch(GSource *src, GSourceFunc unused, gpointer unused_data)
{
    (void)unused;
    (void)unused_data;
    stop_source *ss = (stop_source *)src;
    msilo_engine_t *e = ss->e;
    if (!ss->started) {
        ss->started = TRUE;
        e->in_callback++; /* dumps may complete here */
        engine_owners_stop(e);
        e->in_callback--;
        return G_SOURCE_CONTINUE;
    }
    e->in_callback++; /* the log hook and dumps may run here */
    stop_drop_failed(e, &e->acks, "deletes of delivered messages");
    stop_drop_failed(e, &e->releases, "releases");
    stop_drop_failed(e, &e->marks, "per-device deliveries");
    e->in_callback--;
    if (!stop_finished(e) && !stop_deadline_passed(ss, g_get_monotonic_time()))
        return G_SOURCE_CONTINUE;
    int result = 0;
    if (!stop_finished(e)) {
        result = MSILO_ETIMEDOUT;
        e->in_callback++; /* the log hook */
        engine_log(e, MSILO_LOG_WARNING,
                   "shutdown: deadline passed with %zu store jobs and %zu sends unfinished; "
                   "interrupting the store (claimed messages keep their leases)",
                   e->jobs_pending, e->sends_out);
        stop_interrupt(e);
        e->in_callback--;
    }
    msilo_shutdown_cb cb = e->stop_cb;
    void *data = e->stop_data;
    /* GLib holds the source while it dispatches; the callback may free e */
    g_source_unref(e->stop_source);
    e->stop_source = NULL;
    if (cb)
        cb(e, result, data);
    return G_SOURCE_REMOVE;
}

static GSourceFuncs stop_funcs = {
    .prepare = stop_prepare,
    .check = stop_check,
    .dispatch = stop_dispatch,
};

int msilo_engine_shutdown(msilo_engine_t *e, int64_t timeout_ms, msilo_shutdown_cb cb, void *data)
{
    if (!e)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_shutdown: engine is NULL");
    if (!engine_enter(e))
        return engine_ethread("msilo_engine_shutdown");
    if (e->stopping || e->freeing) {
        engine_leave(e);
        return msilo_fail(MSILO_ESHUTDOWN, "msilo_engine_shutdown: a shutdown was started already");
    }
    e->stopping = TRUE;
    e->stop_cb = cb;
    e->stop_data = data;
    g_source_destroy(e->timer);
    g_source_unref(e->timer);
    e->timer = NULL;
    stop_source *ss = (stop_source *)g_source_new(&stop_funcs, sizeof *ss);
    ss->e = e;
    /* a deadline beyond ~146 years is none */
    ss->deadline = timeout_ms < 0 || timeout_ms > INT64_MAX / 2000
                       ? -1
                       : g_get_monotonic_time() + timeout_ms * G_TIME_SPAN_MILLISECOND;
    e->stop_source = &ss->src;
    g_source_set_name(e->stop_source, "msilo-shutdown");
    g_source_attach(e->stop_source, e->ctx);
    engine_log(e, MSILO_LOG_INFO, "shutting down (deadline: %lld ms)", (long long)timeout_ms);
    msilo_error_clear();
    engine_leave(e);
    return 0;
}

void msilo_engine_free(msilo_engine_t *e)
{
    if (!e)
        return;
    if (!engine_enter(e)) {
        /* freeing it under the thread that runs it would corrupt memory:
         * keep it (a leak) and say so through GLib's channel for programming
         * errors (not the log hook: that is the other thread's) */
        g_critical("msilo_engine_free: called from a thread that does not own the engine's "
                   "main context; the engine is not freed");
        return;
    }
    if (e->in_callback || e->freeing) {
        /* the engine code that runs the callback uses the engine after it */
        g_critical("msilo_engine_free: called from an engine callback (store, dump or log "
                   "callback); the engine is not freed. Call msilo_engine_shutdown() there "
                   "and free the engine from its callback, or free it from an idle source "
                   "(g_idle_add())");
        engine_leave(e);
        return;
    }
    GMainContext *ctx = e->ctx; /* released after the last use of e */
    e->freeing = TRUE;
    if (e->timer) {
        g_source_destroy(e->timer);
        g_source_unref(e->timer);
    }
    engine_workers_stop(e);
    /* completions posted from other threads are completed; the sends still
     * in flight only free themselves when the transport calls back */
    engine_postbox_close(e);
    engine_schedule_put(e); /* runs synchronously now (freeing) until the queue is empty */
    engine_coalesce_schedule(e, &e->acks); /* delete what was delivered */
    engine_coalesce_schedule(e, &e->releases);
    engine_coalesce_schedule(e, &e->marks);
    engine_owners_free(e);
    engine_complete_noop_dumps(e, 0);
    engine_flush_finished_dumps(e, FALSE);
    if (e->stop_source) {
        /* freed during a shutdown: it ends here */
        g_source_destroy(e->stop_source);
        g_source_unref(e->stop_source);
        e->stop_source = NULL;
        if (e->stop_cb)
            e->stop_cb(e, MSILO_ECANCELLED, e->stop_data);
    }
    g_source_destroy(e->dispatch);
    g_source_unref(e->dispatch);
    g_source_destroy(e->put_kick);
    g_source_unref(e->put_kick);
    g_async_queue_unref(e->todo);
    g_async_queue_unref(e->done);
    for (guint i = 0; i < e->put_workers->len; i++)
        engine_peer_worker_free(e->put_workers->pdata[i]);
    engine_peer_worker_free(e->expiry_worker);
    g_ptr_array_unref(e->put_workers);
    g_hash_table_unref(e->put_owners);
    g_mutex_clear(&e->put_lock);
    /* what a failed store call left waiting: the messages keep their leases */
    engine_device_items_drop(&e->releases, e->releases.wait);
    engine_device_items_drop(&e->marks, e->marks.wait);
    g_array_unref(e->acks.wait);
    g_array_unref(e->releases.wait);
    g_array_unref(e->marks.wait);
    if (e->marks.spare)
        g_array_unref(e->marks.spare);
    if (e->acks.spare)
        g_array_unref(e->acks.spare);
    if (e->releases.spare)
        g_array_unref(e->releases.spare);
    msilo_template_free(e->t_from);
    msilo_template_free(e->t_contact);
    msilo_template_free(e->t_ctype);
    msilo_template_free(e->t_body);
    msilo_template_free(e->t_fail);
    g_free(e->extra_hdrs);
    g_strfreev(e->transient_types);
    g_hash_table_unref(e->imdn_stored_ids);
    g_queue_clear_full(&e->imdn_stored_fifo, g_free);
    g_array_unref(e->perm_codes);
    g_free(e->instance_id);
    for (size_t i = 0; i < TIME_CACHE; i++) {
        g_free(e->date_cache[i].s);
        g_free(e->ctime_cache[i].s);
    }
    /* every op is done: engine_schedule_put() ran what was waiting, synchronously */
    g_assert(!e->op_chunk || e->op_chunk->refs == 0);
    g_free(e->op_chunk);
    g_string_free(e->hdr_buf, TRUE);
    g_string_free(e->body_buf, TRUE);
    while (e->sc_free) {
        send_ctx *sc = e->sc_free;
        e->sc_free = sc->next;
        g_free(sc);
    }
    msilo_config_free(e->cfg);
    g_free(e);
    g_main_context_release(ctx);
    g_main_context_unref(ctx);
}

/* ---- statistics and the log hook ---------------------------------------------- */

static const char *const stat_names[MSILO_STAT_COUNT_] = {
    "stored_messages",   "dumped_messages",        "failed_messages",
    "dumped_reminders",  "failed_reminders",       "rejected_full",
    "store_errors",      "expired_messages",       "notifications_sent",
    "notifications_failed", "queued_messages",     "deliveries_in_flight",
    "delivery_latency_us",  "deliveries_timed",    "rejected_transient",
    "permanent_failures",   "imdn_sent",
};

const char *msilo_stat_name(msilo_stat_t stat)
{
    if ((int)stat < 0 || stat >= MSILO_STAT_COUNT_)
        return NULL;
    return stat_names[stat];
}

uint64_t msilo_engine_stat(const msilo_engine_t *e, msilo_stat_t stat)
{
    if (!e || (int)stat < 0 || stat >= MSILO_STAT_COUNT_)
        return 0;
    return stat_get(e, stat);
}

size_t msilo_engine_pending(const msilo_engine_t *e)
{
    if (!e)
        return 0;
    msilo_engine_t *me = (msilo_engine_t *)e; /* engine_enter() takes the context, not e */
    if (!engine_enter(me)) {
        engine_ethread("msilo_engine_pending");
        return SIZE_MAX; /* never "idle" */
    }
    size_t n = e->jobs_pending + e->put_wait.length + e->acks.wait->len + e->releases.wait->len +
               e->marks.wait->len +
               e->noop_dumps.length + e->finished_dumps.length;
    engine_leave(me);
    return n;
}

void engine_log(msilo_engine_t *e, msilo_log_level_t lvl, const char *fmt, ...)
{
    if (!e->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    e->in_callback++;
    e->log(lvl, s, e->log_data);
    e->in_callback--;
    g_free(s);
}
