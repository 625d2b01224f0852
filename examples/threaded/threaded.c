/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * threaded: SIP arrives on one thread, the engine runs on another. This is
 * the shape of a SIP stack with threads of its own (a transaction layer's
 * worker, a library calling back on its network thread):
 *
 * - the engine belongs to one GMainContext, run by the engine thread (here
 *   the main thread, in g_main_loop_run());
 * - the SIP thread builds request views from what it parsed, copies them
 *   with msilo_request_copy() (its strings die with its stack frame) and
 *   hands each copy to the engine thread through a queue and a source on
 *   the engine's context that it wakes; the engine thread calls the engine
 *   and frees the copy;
 * - the engine's sends go to the SIP thread through a queue, and the SIP
 *   thread reports each outcome by calling done() on its own thread: the
 *   engine hands it to its context (include/msilo/sys/transport.h).
 *
 * Exit status 0 when each stored message was delivered exactly once and the
 * store is empty; 1 otherwise.
 *   cc threaded.c $(pkg-config --cflags --libs msilo) -pthread
 */
#include <msilo/msilo.h>

#include <glib.h>
#include <stdio.h>
#include <string.h>

#define N_MESSAGES 5

/* Only for a ThreadSanitizer build (-Db_sanitize=thread): GLib is not built
 * with it, so the hand-over through its queues is invisible to it; these
 * say where that synchronisation happens. They are nothing in any other
 * build: leave them out of a copy. */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define HANDED_OVER(p) __tsan_release((void *)(p))
#define TAKEN_OVER(p) __tsan_acquire((void *)(p))
#else
#define HANDED_OVER(p) ((void)(p))
#define TAKEN_OVER(p) ((void)(p))
#endif

/* What the SIP thread is given: a MESSAGE the engine wants sent, or the
 * news that the stores are done, or quit. */
typedef enum { ITEM_SEND, ITEM_STORED, ITEM_QUIT } item_kind;

typedef struct {
    item_kind kind;
    char *body;                   /* ITEM_SEND: a copy (the engine's is borrowed) */
    msilo_transport_done_fn done; /* ITEM_SEND */
    void *data;
} sip_item;

typedef struct {
    GMainContext *ctx;  /* the engine's */
    GMainLoop *loop;
    msilo_engine_t *e;
    msilo_store_t *store;
    GAsyncQueue *to_sip; /* sip_item*: the engine thread -> the SIP thread */
    int stored;          /* engine thread only */
    int delivered[N_MESSAGES]; /* SIP thread only (read by main after the join) */
    int result;          /* the dump's, engine thread */
    msilo_dump_result_t res;
} app_t;

static app_t app;

/* ---- the transport: send() on the engine thread, done() on the SIP thread ---- */

typedef struct {
    msilo_transport_t base;
} queue_transport;

static int queue_send(msilo_transport_t *t, const msilo_outgoing_t *m,
                      msilo_transport_done_fn done, void *data)
{
    (void)t;
    sip_item *it = g_new0(sip_item, 1);
    it->kind = ITEM_SEND;
    it->body = g_strndup(m->body, m->body_len); /* m is borrowed for this call only */
    it->done = done;
    it->data = data;
    HANDED_OVER(it);
    g_async_queue_push(app.to_sip, it); /* the SIP thread sends it "on the wire" */
    return 0;
}

static void queue_free(msilo_transport_t *t)
{
    /* sends that the SIP thread never took end as cancelled (the contract) */
    sip_item *it;
    while ((it = g_async_queue_try_pop(app.to_sip))) {
        if (it->kind == ITEM_SEND)
            it->done(MSILO_ECANCELLED, it->data);
        g_free(it->body);
        g_free(it);
    }
    g_free(t);
}

/* ---- on the engine thread ------------------------------------------------------ */

static void push_event(item_kind kind)
{
    sip_item *it = g_new0(sip_item, 1);
    it->kind = kind;
    HANDED_OVER(it);
    g_async_queue_push(app.to_sip, it);
}

static void stored_cb(msilo_engine_t *e, int rc, int64_t id, void *data)
{
    (void)e;
    (void)data;
    printf("[engine] stored message %lld: %s\n", (long long)id, msilo_strerror(rc));
    if (rc == 0 && ++app.stored == N_MESSAGES)
        push_event(ITEM_STORED);
}

static void dump_cb(msilo_engine_t *e, int rc, const msilo_dump_result_t *res, void *data)
{
    (void)e;
    (void)data;
    app.result = rc;
    app.res = *res;
    printf("[engine] dump: %s, %zu delivered, %zu failed\n", msilo_strerror(rc), res->delivered,
           res->failed);
    push_event(ITEM_QUIT);
    g_main_loop_quit(app.loop);
}

/* The engine thread's inbox: request copies queued by the SIP thread, and a
 * source on the engine's context that the SIP thread wakes. (One call of
 * g_main_context_invoke_full() per request does the same with less code;
 * this keeps every allocation that crosses threads ours, which lets
 * ThreadSanitizer check the whole program.) */
static GAsyncQueue *inbox;
static GSource *inbox_source;

/* On the engine thread: each request goes to the engine from the thread
 * that runs its context; then the copy is freed. */
static gboolean inbox_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    (void)cb;
    (void)data;
    g_source_set_ready_time(src, -1);
    msilo_request_t *req;
    while ((req = g_async_queue_try_pop(inbox))) {
        TAKEN_OVER(req);
        if (strcmp(req->method, "REGISTER") == 0) {
            if (msilo_engine_dump(app.e, req, NULL, 0, dump_cb, NULL)) {
                fprintf(stderr, "dump refused: %s\n", msilo_error_detail());
                g_main_loop_quit(app.loop);
            }
        } else if (msilo_engine_store(app.e, req, NULL, stored_cb, NULL)) {
            fprintf(stderr, "store refused: %s\n", msilo_error_detail());
        }
        msilo_request_free(req); /* the engine copied what it keeps */
    }
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs inbox_funcs = { .dispatch = inbox_dispatch };

/* ---- on the SIP thread ----------------------------------------------------------- */

/* Hands a request view to the engine thread: a copy, since the view's
 * strings belong to this thread's parser (here: its stack). */
static void hand_to_engine(const msilo_request_t *view)
{
    msilo_request_t *copy = NULL;
    if (msilo_request_copy(view, &copy)) {
        fprintf(stderr, "copy: %s\n", msilo_error_detail());
        return;
    }
    HANDED_OVER(copy);
    g_async_queue_push(inbox, copy);
    g_source_set_ready_time(inbox_source, 0); /* thread-safe: wakes the engine thread */
}

static gpointer sip_thread(gpointer unused)
{
    (void)unused;
    /* MESSAGEs for alice, who is offline, "arrive" */
    for (int i = 0; i < N_MESSAGES; i++) {
        char body[32], from[64];
        snprintf(body, sizeof body, "msg %d", i);
        snprintf(from, sizeof from, "<sip:bob@example.org>;tag=t%d", i);
        msilo_request_t m = MSILO_REQUEST_INIT;
        m.method = "MESSAGE";
        m.ruri = m.to = "sip:alice@example.org";
        m.from = from;
        m.body = body;
        m.body_len = strlen(body);
        hand_to_engine(&m);
    }
    for (;;) {
        sip_item *it = g_async_queue_pop(app.to_sip);
        TAKEN_OVER(it);
        item_kind kind = it->kind;
        if (kind == ITEM_STORED) {
            /* alice registers */
            msilo_request_t reg = MSILO_REQUEST_INIT;
            reg.method = "REGISTER";
            reg.to = "sip:alice@example.org";
            reg.contact = "<sip:alice@192.0.2.1:5070>";
            reg.expires = 3600;
            hand_to_engine(&reg);
        } else if (kind == ITEM_SEND) {
            int i = -1;
            if (sscanf(it->body, "msg %d", &i) == 1 && i >= 0 && i < N_MESSAGES)
                app.delivered[i]++;
            printf("[sip] MESSAGE \"%s\" -> 200\n", it->body);
            /* the UA answered: report it from this thread */
            it->done(200, it->data);
        }
        g_free(it->body);
        g_free(it);
        if (kind == ITEM_QUIT)
            return NULL;
    }
}

int main(void)
{
    msilo_config_t *cfg;
    msilo_config_new(&cfg);
    msilo_config_set(cfg, "add_date", "0");
    if (msilo_memory_store_new(&app.store))
        return 1;
    queue_transport *tr = g_new0(queue_transport, 1);
    tr->base = (msilo_transport_t)MSILO_TRANSPORT_INIT;
    tr->base.name = "queue";
    tr->base.send = queue_send;
    tr->base.free = queue_free;
    app.to_sip = g_async_queue_new();
    app.ctx = g_main_context_new();
    app.loop = g_main_loop_new(app.ctx, FALSE);
    /* created before any thread runs the context, so from here */
    int rc = msilo_engine_new(&app.e, cfg, app.store, &tr->base, app.ctx);
    if (rc) {
        fprintf(stderr, "engine: %s: %s\n", msilo_strerror(rc), msilo_error_detail());
        return 1;
    }
    inbox = g_async_queue_new();
    inbox_source = g_source_new(&inbox_funcs, sizeof(GSource));
    g_source_attach(inbox_source, app.ctx);
    GThread *sip = g_thread_new("sip", sip_thread, NULL);
    g_main_loop_run(app.loop); /* this thread is the engine thread until the dump is done */
    g_thread_join(sip);

    int ok = app.result == 0 && app.res.delivered == N_MESSAGES;
    for (int i = 0; i < N_MESSAGES; i++) {
        printf("msg %d: delivered %d time(s)\n", i, app.delivered[i]);
        ok = ok && app.delivered[i] == 1;
    }
    int64_t left = -1;
    msilo_store_count(app.store, NULL, NULL, &left);
    printf("%lld left in the store\n", (long long)left);
    ok = ok && left == 0;
    msilo_engine_free(app.e); /* no thread runs the context now: this one may */
    msilo_transport_free(&tr->base);
    msilo_store_free(app.store);
    msilo_config_free(cfg);
    g_async_queue_unref(app.to_sip);
    g_source_destroy(inbox_source);
    g_source_unref(inbox_source);
    g_async_queue_unref(inbox);
    g_main_loop_unref(app.loop);
    g_main_context_unref(app.ctx);
    return ok ? 0 : 1;
}
