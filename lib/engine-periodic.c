/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Periodic jobs: msilo_engine_tick() and the 1-second timer that calls it.
 *
 * Owns: the timer source (e->timer), the times of the next check, expiry
 * and reminder round (e->next_check, next_clean, next_reminder) and the
 * flags of the expiry and reminder jobs in flight.
 *
 * Invariants:
 * - What is due is decided by the injected clock (msilo_engine_set_clock),
 *   not by the timer: the timer only calls msilo_engine_tick(), and tests
 *   call it themselves after moving a fake clock. Nothing here sleeps.
 * - Every check_time: retries of the owners still registered, and the
 *   deletes and releases that failed before. Every clean_period x
 *   check_time: expiry, then the queued_messages gauge is set from the
 *   store's count. Every send_time (when reminders are on and there is a
 *   transport): the reminders that are due, at most dump_batch at a time;
 *   a full claim makes the next tick claim again.
 * - At most one expiry job and one reminder claim are in flight; a tick
 *   while one runs does not start another.
 * - Expiry takes the expired message/cpim messages first (take_expired, at
 *   most ENGINE_EXPIRE_TAKE_MAX a job; a full batch submits the next job at
 *   once) and sends the <failed/> IMDN of those that asked for
 *   negative-delivery (engine-imdn.c); then expire() deletes the rest.
 *   Without a transport, with imdn off, or with a store that has no
 *   take_expired, expire() deletes them all as before.
 * - Expiry runs on the expiry worker (a store handle of its own) once the
 *   store has opened one, so that counting a large table does not hold up
 *   stores and claims; until then, and for stores that cannot, on the main
 *   worker.
 * - Reminders are not "the user is offline": no notification is sent for
 *   them, and a failed one becomes an offline message (engine-deliver.c).
 * - msilo_engine_iterate() is the loop of a host that runs none: it ticks
 *   by the engine's clock itself (a host's timer need not line up with the
 *   engine's), then dispatches what is ready on the context, a bounded
 *   number of rounds, so that a stream of completions cannot keep the
 *   host's timer callback from returning.
 */
#include "engine-private.h"

/* The period of the timer that calls msilo_engine_tick(), in seconds. */
#define TICK_INTERVAL 1
/* At most this many rounds of the context per msilo_engine_iterate(). */
#define ITERATE_ROUNDS_MAX 256

void engine_complete_reminders(msilo_engine_t *e, job_t *j)
{
    e->reminders_running = FALSE;
    if (j->rc)
        engine_log(e, MSILO_LOG_WARNING, "claiming due reminders failed: %s: %s",
                   msilo_strerror(j->rc), job_detail(j));
    if (j->rc == 0 && engine_stopping(e)) {
        engine_give_back(e, j->claim.out, j->claim.out_n, NULL);
    } else if (j->rc == 0) {
        for (size_t i = 0; i < j->claim.out_n; i++)
            engine_deliver(e, SEND_REMINDER, NULL, j->claim.out[i]);
        g_free(j->claim.out);
        if (j->claim.out_n == j->claim.args.max && !engine_stopping(e))
            e->next_reminder = now_of(e); /* more due: claim again at the next tick */
    }
}

/* Submits an expiry job for @now: it takes the expired message/cpim
 * messages first when their IMDNs can be sent. */
static void expire_submit(msilo_engine_t *e, int64_t now)
{
    job_t *j = job_new(JOB_EXPIRE);
    j->expire.now = now;
    j->expire.take = e->imdn && e->transport != NULL;
    j->worker = engine_worker_for_expiry(e);
    e->clean_running = TRUE;
    engine_job_submit(e, j);
}

void engine_complete_expire(msilo_engine_t *e, job_t *j)
{
    e->clean_running = FALSE;
    /* the taken messages are deleted already: their <failed/> now */
    for (size_t i = 0; i < j->expire.taken_n; i++)
        engine_imdn_expired(e, j->expire.taken[i]);
    msilo_message_array_free(j->expire.taken, j->expire.taken_n);
    stat_add(e, MSILO_STAT_EXPIRED_MESSAGES, j->expire.taken_n);
    if (j->rc) {
        engine_log(e, MSILO_LOG_WARNING, "expiry failed: %s: %s", msilo_strerror(j->rc),
                   job_detail(j));
        if (j->expire.taken_n)
            engine_count_changed(e, NULL, NULL);
        return;
    }
    stat_add(e, MSILO_STAT_EXPIRED_MESSAGES, j->expire.deleted);
    if (!j->expire.full)
        stat_set(e, MSILO_STAT_QUEUED, (uint64_t)MAX(j->expire.count, 0));
    if (j->expire.deleted || j->expire.taken_n)
        engine_count_changed(e, NULL, NULL);
    if (j->expire.full && !engine_stopping(e) && !e->freeing)
        expire_submit(e, j->expire.now); /* the next batch, then expire() */
}

static void tick(msilo_engine_t *e);

int msilo_engine_tick(msilo_engine_t *e)
{
    if (!e)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_tick: engine is NULL");
    if (!engine_enter(e))
        return engine_ethread("msilo_engine_tick");
    if (!engine_stopping(e))
        tick(e);
    engine_leave(e);
    return 0;
}

static void tick(msilo_engine_t *e)
{
    int64_t now = now_of(e);
    if (now >= e->next_check) {
        e->next_check = now + e->check_time;
        engine_owners_retry(e, now);
        /* deletes/releases that failed earlier */
        engine_coalesce_schedule(e, &e->acks);
        engine_coalesce_schedule(e, &e->releases);
        engine_coalesce_schedule(e, &e->marks);
    }
    if (now >= e->next_clean && !e->clean_running) {
        e->next_clean = now + e->check_time * e->clean_period;
        expire_submit(e, now);
    }
    if (e->reminders_on && e->transport && now >= e->next_reminder && !e->reminders_running) {
        e->next_reminder = now + e->send_time;
        job_t *j = job_new(JOB_CLAIM_REMINDERS);
        j->claim.args.reminders = 1;
        j->claim.args.now = now;
        j->claim.args.max_next_try = INT64_MAX;
        j->claim.args.lease_owner = e->instance_id;
        j->claim.args.lease_until = now + e->lease_time;
        j->claim.args.max = (size_t)e->dump_batch;
        e->reminders_running = TRUE;
        engine_job_submit(e, j);
    }
}

static gboolean timer_cb(gpointer data)
{
    msilo_engine_tick(data);
    return G_SOURCE_CONTINUE;
}

void engine_timer_attach(msilo_engine_t *e)
{
    e->timer = g_timeout_source_new_seconds(TICK_INTERVAL);
    g_source_set_callback(e->timer, timer_cb, e, NULL);
    g_source_set_name(e->timer, "msilo-timer");
    g_source_attach(e->timer, e->ctx);
}

static gboolean iterate_deadline_cb(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

int msilo_engine_iterate(msilo_engine_t *e, int timeout_ms)
{
    if (!e)
        return msilo_fail(MSILO_EINVAL, "msilo_engine_iterate: engine is NULL");
    if (!engine_enter(e))
        return engine_ethread("msilo_engine_iterate");
    if (timeout_ms != 0 && !g_main_context_pending(e->ctx)) {
        /* wait for the first source to be ready: a worker's or a
         * transport's completion, the engine's timer, or the deadline */
        gboolean expired = FALSE;
        GSource *deadline = NULL;
        if (timeout_ms > 0) {
            deadline = g_timeout_source_new((guint)timeout_ms);
            g_source_set_callback(deadline, iterate_deadline_cb, &expired, NULL);
            g_source_set_name(deadline, "msilo-iterate-deadline");
            g_source_attach(deadline, e->ctx);
        }
        g_main_context_iteration(e->ctx, TRUE);
        if (deadline) {
            g_source_destroy(deadline);
            g_source_unref(deadline);
        }
    }
    if (!e->freeing)
        tick(e);
    /* what is ready, and what its completions make ready (a non-blocking
     * store's jobs run from the dispatch source), in bounded rounds */
    for (int i = 0; i < ITERATE_ROUNDS_MAX && g_main_context_iteration(e->ctx, FALSE); i++)
        ;
    engine_leave(e);
    return 0;
}
