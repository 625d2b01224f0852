/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Delivery: what the engine sends and what becomes of it. Formats a stored
 * message (or an offline notification) into a msilo_outgoing_t, hands it to
 * the transport, and on completion deletes the message (2xx) or releases
 * it with a backoff (anything else); the deletes and releases go to the
 * store through two coalescers.
 *
 * Owns: the send contexts (e->sends_out of them in flight, the free list
 * e->sc_free), the post box of completions reported from other threads
 * (e->box), the delivery buffers (e->hdr_buf, e->body_buf) and the time
 * strings cache,
 * the global in-flight count (MSILO_STAT_IN_FLIGHT against max_in_flight)
 * and the owners waiting for a slot of it (e->blocked, in turn), and the
 * coalescers e->acks and e->releases.
 *
 * Invariants:
 * - The transport's contract is libuv's: a send either fails at once (no
 *   callback; handled here as a failed delivery, the same path) or runs its
 *   callback exactly once, later. A context whose engine was freed only
 *   frees itself (the message keeps its lease in the store).
 * - done() may come from any thread. On a thread that owns the engine's
 *   context it completes the send at once (the common case: the transport's
 *   own sources run on that context); on any other thread it only posts the
 *   send context to e->box, lock-free, and wakes the dispatch source, which
 *   completes it on the loop thread. No engine state is touched outside the
 *   thread that owns the context, and the engine never runs a callback or
 *   calls send() on a transport's thread.
 * - The transport borrows the buffers only during send(): they are reused
 *   for the next message, and a body buffer grown past
 *   DELIVERY_BODY_KEEP_MAX is given back.
 * - A delivery answered with a status of permanent_failures (415, 404, ...)
 *   is not retried: the message is deleted like a delivered one, counted
 *   (failed_messages and permanent_failures) and its sender told
 *   (engine-imdn.c). Reminders keep the msilo rule below.
 * - A failed delivery is released with attempts + 1 and next_try = now +
 *   check_time * 2^(attempts - 1), capped at RETRY_BACKOFF_MAX; after
 *   max_attempts it waits for the next REGISTER (next_try INT64_MAX). A
 *   failed reminder becomes an offline message (snd_time cleared), as the
 *   msilo modules of OpenSIPS and Kamailio do.
 * - A coalescer has at most one job in the store; what arrives meanwhile
 *   waits and goes in the next one. A failed job's items go back to the
 *   front of the wait and are retried at the next check (never lost, never
 *   a hot loop).
 * - A dump reports its messages delivered only once their deletes have
 *   committed or failed and been queued again (engine_flush_finished_dumps).
 */
#include "engine-private.h"

/* A failed delivery's backoff doubles from check_time up to this (seconds). */
#define RETRY_BACKOFF_MAX 3600
/* The size above which the body buffer is given back after a send instead
 * of kept for the next one. */
#define DELIVERY_BODY_KEEP_MAX 65536
/* A coalescer keeps its last job's array for the next wait up to this many items. */
#define COALESCE_SPARE_KEEP_MAX 4096

static gboolean is_text_plain(const char *ctype)
{
    if (!ctype)
        return TRUE;
    while (*ctype == ' ')
        ctype++;
    /* byte by byte: g_ascii_strncasecmp per delivered message showed in the profile */
    static const char tp[] = "text/plain";
    const size_t n = sizeof tp - 1;
    for (size_t i = 0; i < n; i++)
        if ((ctype[i] | (ctype[i] >= 'A' && ctype[i] <= 'Z' ? 0x20 : 0)) != tp[i])
            return FALSE;
    char c = ctype[n];
    return c == '\0' || c == ';' || c == ' ' || c == '\t';
}

static void send_done(int status, void *data);
static void delivery_finished(msilo_engine_t *e, send_ctx *sc, int status);

static int start_send(msilo_engine_t *e, send_ctx *sc, const msilo_outgoing_t *out)
{
    if (G_UNLIKELY(!e->box))
        return MSILO_ECANCELLED; /* closed: nothing may start after it (never happens) */
    sc->box = e->box;
    sc->started = g_get_monotonic_time();
    /* from here until its done() the context is the transport's: done() may
     * run on another thread before send() has even returned */
    int rc = msilo_transport_send(e->transport, out, send_done, sc);
    if (rc == 0) {
        e->sends_out++;
        if (sc->kind != SEND_NOTIFY)
            stat_add(e, MSILO_STAT_IN_FLIGHT, 1);
    }
    return rc;
}

/* @t formatted as a Date header value (which 0) or a ctime (which 1),
 * formatted once per second in the cache. */
static const char *cached_time(msilo_engine_t *e, int which, int64_t t)
{
    time_slot *slot = &(which ? e->ctime_cache : e->date_cache)[(uint64_t)t % TIME_CACHE];
    if (!slot->s || slot->t != t) {
        g_free(slot->s);
        slot->s = which ? msilo_format_ctime(t) : msilo_format_http_date(t);
        slot->t = t;
    }
    return slot->s;
}

/* g_string_append_len() without GLib's insert path (overlap checks, a call
 * per piece): the delivery buffers are filled piece by piece per message. */
static inline void sb_put(GString *s, const void *p, size_t n)
{
    if (G_UNLIKELY(s->len + n >= s->allocated_len)) {
        size_t len = s->len;
        g_string_set_size(s, len + n); /* grows the buffer */
        s->len = len;
    }
    memcpy(s->str + s->len, p, n);
    s->len += n;
    s->str[s->len] = '\0';
}

static inline void sb_puts(GString *s, const char *str)
{
    sb_put(s, str, strlen(str));
}

/* Appends @v in decimal. */
static void append_int(GString *s, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    sb_put(s, p, (size_t)(tmp + sizeof tmp - p));
}

static send_ctx *send_ctx_new(msilo_engine_t *e)
{
    send_ctx *sc = e->sc_free;
    if (sc)
        e->sc_free = sc->next;
    else
        sc = g_new(send_ctx, 1);
    memset(sc, 0, sizeof *sc);
    return sc;
}

static void send_ctx_release(msilo_engine_t *e, send_ctx *sc)
{
    sc->next = e->sc_free;
    e->sc_free = sc;
}

/* Appends the stored header lines @lines to @s, but the display-name line,
 * whose value goes to *ret_display (g_free; NULL when none). */
static void append_stored_headers(GString *s, const char *lines, char **ret_display)
{
    static const char name[] = DISPLAY_HEADER ": ";
    *ret_display = NULL;
    const char *d = lines ? strstr(lines, name) : NULL;
    if (d && d != lines && d[-1] != '\n')
        d = NULL; /* not at the start of a line */
    if (!d) {
        append_header_lines(s, lines);
        return;
    }
    const char *v = d + sizeof name - 1;
    size_t vn = strcspn(v, "\r\n");
    *ret_display = g_strndup(v, vn);
    const char *after = v + vn;
    while (*after == '\r' || *after == '\n')
        after++;
    sb_put(s, lines, (size_t)(d - lines));
    append_header_lines(s, after);
}

/* Sends one stored message (offline or reminder). */
void engine_deliver(msilo_engine_t *e, send_kind kind, owner_t *o, msilo_message_t *m)
{
    char *reminder_ruri = NULL;
    const char *ruri, *to;
    if (kind == SEND_REMINDER) {
        ruri = to = reminder_ruri = msilo_aor_to_uri(m->user, m->domain);
    } else {
        ruri = o && o->contact ? o->contact : m->dst;
        to = m->dst;
    }
    GString *hdrs = e->hdr_buf;
    g_string_truncate(hdrs, 0);
    sb_put(hdrs, "Date: ", 6);
    sb_puts(hdrs, cached_time(e, 0, m->inc_time));
    sb_put(hdrs, "\r\n", 2);
    if (e->id_header) {
        sb_puts(hdrs, e->id_header);
        sb_put(hdrs, ": ", 2);
        append_int(hdrs, m->id);
        sb_put(hdrs, "\r\n", 2);
    }
    append_header_lines(hdrs, e->extra_hdrs);
    char *from_display = NULL;
    append_stored_headers(hdrs, m->extra_hdrs, &from_display);

    const void *body = m->body;
    size_t body_len = m->body_len;
    if (e->add_date && is_text_plain(m->ctype)) {
        GString *b = e->body_buf;
        g_string_truncate(b, 0);
        sb_puts(b, kind == SEND_REMINDER ? "[Reminder message - " : "[Offline message - ");
        sb_puts(b, cached_time(e, 1, m->inc_time));
        sb_put(b, "] ", 2);
        if (m->body_len)
            sb_put(b, m->body, m->body_len);
        body = b->str;
        body_len = b->len;
    }
    char *from_full = from_display && kind != SEND_REMINDER
                          ? g_strdup_printf("%s <%s>", from_display, m->src) : NULL;
    g_free(from_display);
    msilo_outgoing_t out = {
        .ruri = ruri,
        .next_hop = e->outbound_proxy,
        .from = kind == SEND_REMINDER ? e->reminder : from_full ? from_full : m->src,
        .to = to,
        .content_type = m->ctype ? m->ctype : "text/plain",
        .body = body,
        .body_len = body_len,
        .headers = hdrs->str,
        .call_id = e->use_callid ? m->callid : NULL,
    };
    send_ctx *sc = send_ctx_new(e);
    sc->kind = kind;
    sc->owner = o;
    sc->msg = m;
    if (o)
        o->in_flight++;
    int rc = start_send(e, sc, &out);
    g_free(reminder_ruri);
    g_free(from_full);
    /* the buffers are the transport's no longer: do not keep a huge body */
    if (e->body_buf->allocated_len > DELIVERY_BODY_KEEP_MAX) {
        g_string_free(e->body_buf, TRUE);
        e->body_buf = g_string_sized_new(DELIVERY_BODY_INITIAL);
    }
    if (rc) {
        /* the transport refused at once: same path as a failed delivery */
        engine_log(e, MSILO_LOG_WARNING, "send of message %lld failed to start: %s",
                   (long long)m->id, msilo_strerror(rc));
        delivery_finished(e, sc, rc);
    }
}

void engine_send_notice(msilo_engine_t *e, const msilo_outgoing_t *out)
{
    send_ctx *sc = send_ctx_new(e);
    sc->kind = SEND_NOTIFY;
    int rc = start_send(e, sc, out);
    if (rc) {
        stat_add(e, MSILO_STAT_NOTIFICATIONS_FAILED, 1);
        send_ctx_release(e, sc);
    }
}

void engine_send_notification(msilo_engine_t *e, store_op *op)
{
    msilo_outgoing_t out = {
        .ruri = op->n_ruri,
        .next_hop = e->outbound_proxy,
        .from = op->n_from,
        .to = op->n_to,
        .content_type = op->n_ctype,
        .body = op->n_body,
        .body_len = strlen(op->n_body),
        .headers = op->n_headers,
    };
    engine_send_notice(e, &out);
}

/* Gives free global slots to the owners waiting for them, oldest first. */
static void unblock_owners(msilo_engine_t *e)
{
    if (e->unblocking)
        return; /* the outer call goes on */
    e->unblocking = TRUE;
    owner_t *o;
    while (!engine_stopping(e) && stat_get(e, MSILO_STAT_IN_FLIGHT) < (uint64_t)e->max_in_flight &&
           (o = g_queue_pop_head(&e->blocked))) {
        o->blocked = FALSE;
        engine_owner_pump(e, o); /* may block it again, or end its round */
    }
    e->unblocking = FALSE;
}

/* ---- completions, and the post box ------------------------------------------ */

/* head of a closed post box: the engine is gone */
#define POSTBOX_CLOSED ((send_ctx *)(uintptr_t)1)

void engine_postbox_new(msilo_engine_t *e)
{
    postbox_t *b = g_new0(postbox_t, 1);
    atomic_init(&b->head, NULL);
    atomic_init(&b->refs, 1);
    b->e = e;
    b->ctx = g_main_context_ref(e->ctx);
    b->dispatch = g_source_ref(e->dispatch);
    e->box = b;
}

static void postbox_unref(postbox_t *b)
{
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    g_source_unref(b->dispatch);
    g_main_context_unref(b->ctx);
    g_free(b);
}

/* A send whose engine is gone: the message keeps its lease in the store. */
static void orphan_free(send_ctx *sc)
{
    postbox_t *b = sc->box;
    msilo_message_free(sc->msg);
    g_free(sc);
    postbox_unref(b); /* the reference the send held since its engine was freed */
}

/* On the loop thread: the send's transaction is over (@answered: when done()
 * was called, monotonic). */
static inline void send_complete(msilo_engine_t *e, send_ctx *sc, int status, gint64 answered)
{
    e->sends_out--;
    if (sc->kind != SEND_NOTIFY) {
        gauge_add(e, MSILO_STAT_IN_FLIGHT, -1);
        stat_add(e, MSILO_STAT_DELIVERY_LATENCY_US, (uint64_t)(answered - sc->started));
        stat_add(e, MSILO_STAT_DELIVERIES_TIMED, 1);
    }
    delivery_finished(e, sc, status);
}

/* done() on a thread that does not own the engine's context: hand the send
 * to the loop thread. Lock-free (a Treiber stack): a SIP stack's thread never
 * waits for the engine. Only the push that finds the box empty wakes the
 * dispatch source, which takes everything posted at once. */
static void send_post(postbox_t *b, send_ctx *sc, int status)
{
    /* the box lives while this send is in flight (the engine's reference, or
     * the one the send got when the engine was freed); this one keeps it
     * alive until the wake-up below even if the engine completes the send
     * and is freed meanwhile */
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    sc->status = status;
    sc->answered = g_get_monotonic_time();
    send_ctx *head = atomic_load_explicit(&b->head, memory_order_acquire);
    do {
        if (head == POSTBOX_CLOSED) {
            orphan_free(sc);
            postbox_unref(b);
            return;
        }
        sc->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&b->head, &head, sc, memory_order_acq_rel,
                                                    memory_order_acquire));
    if (!head)
        g_source_set_ready_time(b->dispatch, 0); /* thread-safe; harmless once destroyed */
    postbox_unref(b);
}

/* Takes what was posted, in the order done() was called. */
static send_ctx *postbox_take(postbox_t *b, send_ctx *with)
{
    send_ctx *l = atomic_exchange_explicit(&b->head, with, memory_order_acq_rel), *fifo = NULL;
    g_assert(l != POSTBOX_CLOSED);
    while (l) {
        send_ctx *next = l->next;
        l->next = fifo;
        fifo = l;
        l = next;
    }
    return fifo;
}

void engine_run_posted(msilo_engine_t *e)
{
    if (G_LIKELY(!atomic_load_explicit(&e->box->head, memory_order_relaxed)))
        return;
    send_ctx *sc = postbox_take(e->box, NULL);
    while (sc) {
        send_ctx *next = sc->next;
        send_complete(e, sc, sc->status, sc->answered);
        sc = next;
    }
}

void engine_postbox_close(msilo_engine_t *e)
{
    postbox_t *b = e->box;
    /* every send still in flight holds the box from now on; those posted
     * already are completed here and give theirs back */
    atomic_fetch_add_explicit(&b->refs, e->sends_out, memory_order_relaxed);
    send_ctx *sc = postbox_take(b, POSTBOX_CLOSED);
    e->box = NULL; /* no send starts after this (start_send) */
    while (sc) {
        send_ctx *next = sc->next;
        send_complete(e, sc, sc->status, sc->answered);
        atomic_fetch_sub_explicit(&b->refs, 1, memory_order_relaxed); /* the engine holds 1 */
        sc = next;
    }
    b->e = NULL;
    postbox_unref(b);
}

/* The transport's done(): on any thread (include/msilo/sys/transport.h). */
static void send_done(int status, void *data)
{
    send_ctx *sc = data;
    postbox_t *b = sc->box;
    if (G_UNLIKELY(!g_main_context_is_owner(b->ctx))) {
        send_post(b, sc, status);
        return;
    }
    /* The loop thread, or one that acquired the context: the engine cannot
     * run anywhere else meanwhile, so the send completes now. */
    if (G_UNLIKELY(atomic_load_explicit(&b->head, memory_order_acquire) == POSTBOX_CLOSED)) {
        orphan_free(sc);
        return;
    }
    msilo_engine_t *e = b->e;
    e->in_callback++; /* a dump's callback may run in it, with e used after */
    send_complete(e, sc, status, g_get_monotonic_time());
    e->in_callback--;
}

static int64_t backoff(const msilo_engine_t *e, uint32_t attempts)
{
    int64_t b = e->check_time;
    for (uint32_t i = 1; i < attempts && b < RETRY_BACKOFF_MAX; i++)
        b *= 2;
    return MIN(b, RETRY_BACKOFF_MAX);
}

static void delivery_finished(msilo_engine_t *e, send_ctx *sc, int status)
{
    gboolean ok = status >= 200 && status < 300;
    if (sc->kind == SEND_NOTIFY) {
        stat_add(e, ok ? MSILO_STAT_NOTIFICATIONS_SENT : MSILO_STAT_NOTIFICATIONS_FAILED, 1);
        send_ctx_release(e, sc);
        return;
    }
    msilo_message_t *m = sc->msg;
    owner_t *o = sc->owner;
    /* every_device: what ends a message for this device is marked, not deleted */
    char *device = o && sc->kind == SEND_OFFLINE ? o->device : NULL;
    if (!ok && sc->kind == SEND_OFFLINE && engine_is_permanent(e, status)) {
        /* retrying cannot fix it: the message ends now, and its sender is told */
        engine_log(e, MSILO_LOG_INFO, "delivery of message %lld to %s@%s%s%s failed for good "
                   "(%d): %s", (long long)m->id, m->user, m->domain, device ? " device " : "",
                   device ? device : "", status, device ? "done for that device" : "deleted");
        if (G_UNLIKELY(device)) {
            engine_mark_delivered(e, device, m->id);
        } else {
            g_array_append_val(e->acks.wait, m->id);
            gauge_add(e, MSILO_STAT_QUEUED, -1);
        }
        stat_add(e, MSILO_STAT_FAILED_MESSAGES, 1);
        stat_add(e, MSILO_STAT_PERMANENT_FAILURES, 1);
        if (owner_result(o))
            owner_result(o)->failed++;
        engine_coalesce_schedule(e, &e->acks);
        engine_tell_sender_failed(e, m, status);
    } else if (ok) {
        stat_add(e, sc->kind == SEND_REMINDER ? MSILO_STAT_DUMPED_REMINDERS
                                              : MSILO_STAT_DUMPED_MESSAGES, 1);
        if (G_UNLIKELY(device)) {
            engine_mark_delivered(e, device, m->id);
        } else {
            g_array_append_val(e->acks.wait, m->id);
            gauge_add(e, MSILO_STAT_QUEUED, -1);
            engine_coalesce_schedule(e, &e->acks);
        }
    } else {
        int64_t now = now_of(e);
        msilo_store_release_t r = { .id = m->id, .attempts = m->attempts + 1,
                                    .lease_owner = e->instance_id,
                                    .device = device ? g_ref_string_acquire(device) : NULL };
        if (sc->kind == SEND_REMINDER) {
            /* as in the msilo modules of OpenSIPS and Kamailio: a failed reminder
             * becomes an offline message */
            r.flags = MSILO_RELEASE_CLEAR_SND_TIME;
            r.next_try = 0;
            stat_add(e, MSILO_STAT_FAILED_REMINDERS, 1);
        } else {
            r.next_try = r.attempts >= (uint32_t)e->max_attempts ? INT64_MAX
                                                                 : now + backoff(e, r.attempts);
            stat_add(e, MSILO_STAT_FAILED_MESSAGES, 1);
            if (o && r.next_try != INT64_MAX && o->reg_until > r.next_try &&
                (o->retry_at == 0 || o->retry_at > r.next_try))
                o->retry_at = r.next_try;
        }
        engine_log(e, MSILO_LOG_INFO, "delivery of message %lld to %s@%s failed (%d), attempt %u",
                   (long long)m->id, m->user, m->domain, status, r.attempts);
        if (owner_result(o))
            owner_result(o)->failed++;
        g_array_append_val(e->releases.wait, r);
        engine_coalesce_schedule(e, &e->releases);
    }
    if (ok && owner_result(o))
        owner_result(o)->delivered++;
    msilo_message_free(m);
    send_ctx_release(e, sc);
    if (o) {
        o->in_flight--;
        engine_owner_pump(e, o);
    }
    unblock_owners(e);
}

void engine_coalesce_schedule(msilo_engine_t *e, coalescer_t *c)
{
    if (c->running || c->wait->len == 0)
        return;
    job_t *j = job_new(c->kind);
    j->batch.items = c->wait;
    c->wait = c->spare ? c->spare
                       : g_array_new(FALSE, FALSE, g_array_get_element_size(j->batch.items));
    c->spare = NULL;
    c->running = TRUE;
    engine_job_submit(e, j);
}

/* @return the job's result; on failure its items are waiting again */
static int coalesce_done(coalescer_t *c, job_t *j)
{
    c->running = FALSE;
    GArray *items = j->batch.items;
    if (j->rc)
        g_array_prepend_vals(c->wait, items->data, items->len);
    if (!c->spare && items->len <= COALESCE_SPARE_KEEP_MAX) { /* keep it unless it grew big */
        g_array_set_size(items, 0);
        c->spare = items;
    } else {
        g_array_unref(items);
    }
    return j->rc;
}

/* A database that is down fails every delete, once per delivery: one line
 * a second with the cause, the others counted, as for stores (engine-store.c). */
#define REMOVE_FAIL_LOG_INTERVAL G_TIME_SPAN_SECOND

static void log_remove_failure(msilo_engine_t *e, guint n, int rc, const char *detail)
{
    gint64 now = g_get_monotonic_time();
    if (e->remove_fail_logged_at && now - e->remove_fail_logged_at < REMOVE_FAIL_LOG_INTERVAL) {
        e->remove_fail_quiet++;
        return;
    }
    if (e->remove_fail_quiet)
        engine_log(e, MSILO_LOG_WARNING,
                   "deleting %u delivered messages failed: %s: %s; will retry (%" G_GUINT64_FORMAT
                   " more failed deletes not logged since the previous line)",
                   n, msilo_strerror(rc), detail, e->remove_fail_quiet);
    else
        engine_log(e, MSILO_LOG_WARNING, "deleting %u delivered messages failed: %s: %s; will retry",
                   n, msilo_strerror(rc), detail);
    e->remove_fail_logged_at = now;
    e->remove_fail_quiet = 0;
}

void engine_complete_remove(msilo_engine_t *e, job_t *j)
{
    guint n = j->batch.items->len;
    int rc = coalesce_done(&e->acks, j);
    if (rc) {
        log_remove_failure(e, n, rc, job_detail(j));
        /* the dumps waiting on it still complete: their messages are delivered */
        engine_flush_finished_dumps(e, TRUE);
        return;
    }
    if (G_UNLIKELY(e->remove_fail_quiet)) {
        engine_log(e, MSILO_LOG_WARNING,
                   "deletes succeed again (%" G_GUINT64_FORMAT " more failed deletes were not "
                   "logged)", e->remove_fail_quiet);
        e->remove_fail_quiet = 0;
    }
    engine_coalesce_schedule(e, &e->acks);
    if (n)
        engine_count_changed(e, NULL, NULL);
    engine_flush_finished_dumps(e, FALSE);
}

void engine_complete_release(msilo_engine_t *e, job_t *j)
{
    guint n = j->batch.items->len;
    if (j->rc == 0) /* else the items wait again, with their devices */
        engine_device_items_drop(&e->releases, j->batch.items);
    int rc = coalesce_done(&e->releases, j);
    if (rc == 0)
        engine_coalesce_schedule(e, &e->releases);
    else /* the leases run out by themselves; the retry keeps the attempt counts */
        engine_log(e, MSILO_LOG_WARNING, "releasing %u messages failed: %s: %s; will retry", n,
                   msilo_strerror(rc), job_detail(j));
}

void engine_complete_mark(msilo_engine_t *e, job_t *j)
{
    guint n = j->batch.items->len;
    if (j->rc == 0)
        engine_device_items_drop(&e->marks, j->batch.items);
    int rc = coalesce_done(&e->marks, j);
    if (rc) {
        engine_log(e, MSILO_LOG_WARNING, "recording %u per-device deliveries failed: %s: %s; "
                   "will retry", n, msilo_strerror(rc), job_detail(j));
        engine_flush_finished_dumps(e, TRUE);
        return;
    }
    engine_coalesce_schedule(e, &e->marks);
    /* only the messages that every device now has are gone */
    gauge_add(e, MSILO_STAT_QUEUED, -(int64_t)j->batch.deleted);
    if (j->batch.deleted)
        engine_count_changed(e, NULL, NULL);
    engine_flush_finished_dumps(e, FALSE);
}
