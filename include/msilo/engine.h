/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/engine.h
 * @brief The message-silo engine: m_store, m_dump, reminders, expiry.
 *
 * The engine is SIP-stack agnostic. It stores MESSAGE requests for offline
 * users through a storage backend (include/msilo/sys/store.h) and delivers
 * them through a transport (include/msilo/sys/transport.h).
 *
 * Threading: an engine belongs to one GMainContext (the one passed to
 * msilo_engine_new(), or the global default), and runs on the thread that
 * owns it (GLib's g_main_context_acquire() ownership: the thread iterating
 * it, from inside any of its sources, or one that acquired it). Every engine
 * function (but msilo_engine_stat(), which may be called from any thread)
 * checks this: called from a thread that owns the context, or from one that
 * can acquire it at that moment because no other thread runs it, it runs;
 * called while another thread runs the context it returns MSILO_ETHREAD and
 * does nothing (use g_main_context_invoke() to run code on the context's
 * thread). Callbacks run on the context's thread. A transport may report a
 * send's outcome from any thread (include/msilo/sys/transport.h). A
 * blocking store is called from the engine's own worker threads.
 *
 * Async contract: a function that takes a callback either returns a negative
 * error (and the callback never runs) or returns 0 and the callback runs
 * exactly once, from the main context, never from inside the call itself.
 * msilo_engine_free() completes pending callbacks (see there);
 * msilo_engine_shutdown() stops the engine within a bound, without blocking.
 *
 * Loops: the engine's work (store completions, transport answers, retries,
 * expiry, reminders) runs when something iterates its context: the host's
 * GLib loop, the blocking calls while they wait, or msilo_engine_iterate()
 * for a host without a GLib loop. The blocking calls have _timeout forms.
 * Cancel: msilo_engine_cancel(), or an un-REGISTER passed to
 * msilo_engine_dump(), stops an owner's dumps and retries.
 */
#ifndef MSILO_ENGINE_H
#define MSILO_ENGINE_H

#include <msilo/common.h>
#include <msilo/config.h>
#include <msilo/request.h>
#include <msilo/sys/store.h>
#include <msilo/sys/transport.h>

/* GMainContext is named by its struct tag, as sofia.h names Sofia's types
 * (GLib's own typedef is `typedef struct _GMainContext GMainContext;`, so a
 * GMainContext * passes as it is): a second typedef here is a pedantic error
 * in C99 for every program that also includes glib.h, and including glib.h
 * would give every embedder GLib's unprefixed names (TRUE, MIN, CLAMP, ...). */
struct _GMainContext;

MSILO_BEGIN_DECLS

typedef struct msilo_engine msilo_engine_t;

/** Statistics (counters since the engine started, and gauges). */
typedef enum msilo_stat {
    MSILO_STAT_STORED_MESSAGES = 0,  /**< the admin guide's "stored_messages": stores committed */
    MSILO_STAT_DUMPED_MESSAGES,      /**< the admin guide's "dumped_messages": offline messages delivered (2xx) */
    MSILO_STAT_FAILED_MESSAGES,      /**< the admin guide's "failed_messages": offline deliveries that failed */
    MSILO_STAT_DUMPED_REMINDERS,     /**< the admin guide's "dumped_reminders": reminders delivered (2xx) */
    MSILO_STAT_FAILED_REMINDERS,     /**< the admin guide's "failed_reminders": reminders that failed */
    MSILO_STAT_REJECTED_FULL,        /**< stores refused by max_messages */
    MSILO_STAT_STORE_ERRORS,         /**< stores failed by the backend */
    MSILO_STAT_EXPIRED_MESSAGES,     /**< messages deleted by the expiry job */
    MSILO_STAT_NOTIFICATIONS_SENT,   /**< offline notifications sent (2xx) */
    MSILO_STAT_NOTIFICATIONS_FAILED, /**< offline notifications that failed */
    MSILO_STAT_QUEUED,               /**< gauge: messages in the store, as last counted
                                          by the clean job and adjusted by this engine */
    MSILO_STAT_IN_FLIGHT,            /**< gauge: deliveries waiting for a final response */
    MSILO_STAT_DELIVERY_LATENCY_US,  /**< sum of the times from send to final response of
                                          deliveries (offline and reminders), microseconds */
    MSILO_STAT_DELIVERIES_TIMED,     /**< how many deliveries that sum covers */
    MSILO_STAT_REJECTED_TRANSIENT,   /**< stores refused because their content type is in
                                          `transient_types` (MSILO_ETRANSIENT) */
    MSILO_STAT_PERMANENT_FAILURES,   /**< messages deleted at once because their delivery
                                          got a status in `permanent_failures` */
    MSILO_STAT_IMDN_SENT,            /**< RFC 5438 notifications sent (`<stored/>`,
                                          `<failed/>`; the `imdn` key) */
    MSILO_STAT_COUNT_                /**< number of statistics (grows) */
} msilo_stat_t;

/** Name of a statistic ("stored_messages"), or NULL for an unknown one. */
MSILO_API const char *msilo_stat_name(msilo_stat_t stat);

/** Reads the engine's clock: Unix time in seconds. */
typedef int64_t (*msilo_clock_fn)(void *data);

/** Log levels for msilo_log_fn. */
typedef enum msilo_log_level {
    MSILO_LOG_ERROR = 3,
    MSILO_LOG_WARNING = 4,
    MSILO_LOG_INFO = 6,
    MSILO_LOG_DEBUG = 7,
} msilo_log_level_t;

/** Logging hook. The library never prints by itself; default: no logging. */
typedef void (*msilo_log_fn)(msilo_log_level_t level, const char *message, void *data);

/**
 * Creates an engine.
 *
 * @param ret        receives the engine; free with msilo_engine_free().
 * @param cfg        configuration (copied; NULL = all defaults). Validated with
 *                   msilo_config_validate().
 * @param store      storage backend (borrowed: must outlive the engine).
 * @param transport  transport (borrowed: must outlive the engine; may be NULL
 *                   for an engine that only stores).
 * @param ctx        main context for callbacks and timers (NULL = the global
 *                   default context). The engine adds its timer sources there.
 * @return 0; MSILO_EINVAL (ret/store NULL), MSILO_EVERSION / MSILO_EINVAL for a
 *         bad vtable (msilo_store_check()), MSILO_ECONFIG for a bad configuration,
 *         MSILO_ETHREAD when another thread runs @p ctx (create the engine there).
 */
MSILO_API int msilo_engine_new(msilo_engine_t **ret, const msilo_config_t *cfg,
                               msilo_store_t *store, msilo_transport_t *transport,
                               struct _GMainContext *ctx);

/**
 * Frees the engine. Without a previous msilo_engine_shutdown() it completes
 * everything first, synchronously: pending store callbacks run with the
 * batch's real result if the store committed it, else MSILO_ECANCELLED;
 * pending dump callbacks run with MSILO_ECANCELLED. That means it **may
 * block as long as the store does** (a frozen database server: until its
 * timeouts; a store that never returns: for ever). To stop within a bound,
 * call msilo_engine_shutdown() first and free the engine from its callback
 * or after it: free then returns promptly (the store handles were
 * interrupted if the deadline passed; a store without an interrupt method
 * is waited for). Messages still in flight keep their lease in the store and
 * become deliverable when it runs out (or at once after a restart with the
 * same instance_id). NULL is a no-op.
 *
 * Programming errors, reported with g_critical() and nothing freed: a call
 * from an engine callback (store, dump or log callback: the engine still
 * uses itself after the callback returns; call msilo_engine_shutdown() there
 * and free the engine from the shutdown callback, or from an idle source),
 * and a call while another thread runs the engine's context. Freeing from
 * the shutdown callback is allowed. Freed while a shutdown is still in
 * progress, the engine completes everything as above and runs the shutdown
 * callback from inside this call with MSILO_ECANCELLED.
 */
MSILO_API void msilo_engine_free(msilo_engine_t *e);

/**
 * Completion of msilo_engine_shutdown(): @p result is 0 (everything was
 * done) or MSILO_ETIMEDOUT (the deadline passed first). The engine may be
 * freed from here (msilo_engine_free()).
 */
typedef void (*msilo_shutdown_cb)(msilo_engine_t *e, int result, void *data);

/**
 * Stops the engine within a bound, without blocking. From this call on:
 * msilo_engine_store() and msilo_engine_dump() return MSILO_ESHUTDOWN (an
 * embedder answers 503), the periodic jobs stop (msilo_engine_tick() does
 * nothing), nothing new is claimed, and the messages claimed but not sent
 * yet are given back to the store (their leases end). What was accepted
 * goes on: the stores already accepted are committed and their callbacks
 * run with the real result, the deliveries in flight finish (and the dumps
 * waiting on them complete, with MSILO_ESHUTDOWN), their deletes and
 * releases go to the store.
 *
 * @p cb runs once, from the engine's context and never inside this call:
 * with 0 when all of that is done, or with MSILO_ETIMEDOUT when
 * @p timeout_ms passes first. At the deadline the engine interrupts its
 * store handles (msilo_store_interrupt(): a call blocked on a frozen server
 * returns, later calls fail at once) and what is unfinished stays safe: a
 * claimed message whose delete or release did not reach the store keeps its
 * lease and is delivered again after it (or at once by an engine started
 * with the same instance_id); a store not committed gets its callback with
 * an error (MSILO_ESTORE, or MSILO_ECANCELLED when freed first), so it was
 * never answered 202 and is not lost. After @p cb, msilo_engine_free()
 * returns promptly; the engine is good for nothing else.
 *
 * A delete or release that fails during a shutdown is not retried (the
 * retries run with the periodic jobs): those messages keep their leases.
 *
 * @param e          the engine.
 * @param timeout_ms the deadline from now, in milliseconds; negative: none
 *                   (@p cb runs when everything is done, however long it takes).
 * @param cb         completion (may be NULL).
 * @param data       passed to @p cb.
 * @return 0; MSILO_EINVAL (@p e NULL); MSILO_ETHREAD; MSILO_ESHUTDOWN (a
 *         shutdown was already started: @p cb never runs).
 */
MSILO_API int msilo_engine_shutdown(msilo_engine_t *e, int64_t timeout_ms, msilo_shutdown_cb cb,
                                    void *data);

/** Replaces the clock (default: g_get_real_time()/1e6).
 *  @return 0, MSILO_EINVAL (@p e NULL) or MSILO_ETHREAD. */
MSILO_API int msilo_engine_set_clock(msilo_engine_t *e, msilo_clock_fn fn, void *data);

/** Sets the log hook (default: none); it is called on the context's thread.
 *  @return 0, MSILO_EINVAL (@p e NULL) or MSILO_ETHREAD. */
MSILO_API int msilo_engine_set_log(msilo_engine_t *e, msilo_log_fn fn, void *data);

/**
 * Called when the number of messages stored for an owner may have changed
 * (for an RFC 3842 message-summary, say): @p user and @p domain name the
 * owner after a store committed a message for it; both are NULL after
 * delivered or failed-for-good messages were deleted and after expiry
 * deleted messages (any owner's count may have changed: count the ones you
 * watch, e.g. with msilo_store_count()). Called on the context's thread,
 * after the change is committed; the strings are valid during the call.
 */
typedef void (*msilo_count_fn)(msilo_engine_t *e, const char *user, const char *domain,
                               void *data);

/** Sets the count-change hook (default: none; NULL removes it). Appended in
 *  0.2 (issue 16). @return 0, MSILO_EINVAL (@p e NULL) or MSILO_ETHREAD. */
MSILO_API int msilo_engine_set_count_hook(msilo_engine_t *e, msilo_count_fn fn, void *data);

/** Result of a store. @p id is the stored message's id (0 on failure). */
typedef void (*msilo_store_cb)(msilo_engine_t *e, int result, int64_t id, void *data);

/**
 * m_store([owner]): stores @p req for its owner.
 *
 * Owner: @p owner when not NULL (a URI or name-addr; any pseudo-variable
 * expansion is the embedder's job), else the Request-URI when it is a full
 * address of record (user\@host), else the To URI. sip:, sips: and tel: URIs are
 * accepted. Expiry: now + min(expire_time, req->expires when > 0). A reminder
 * when req->snd_time is set. Notifies the sender after a successful store when
 * configured (from_address + offline_message) and not skipped by flag.
 *
 * Errors returned at once (callback never runs): MSILO_EINVAL (e/req NULL),
 * MSILO_ETHREAD (another thread runs the engine's context), MSILO_EMETHOD (method not MESSAGE), MSILO_EMISSING (no From or To), MSILO_EURI
 * (owner/To/From/R-URI malformed), MSILO_ETOOBIG (body over max_body_size),
 * MSILO_ETIME (bad snd_time), MSILO_ENOTSUP (snd_time while reminders are
 * disabled), MSILO_ESHUTDOWN (msilo_engine_shutdown() was called). Results
 * through the callback: 0, MSILO_EFULL (max_messages), MSILO_ESTORE (backend
 * failed), MSILO_ECANCELLED (engine freed first). A callback result of 0
 * means the message is committed in the store. With an error result,
 * msilo_error_detail() inside the callback is the store's own detail (e.g.
 * libpq's message), which the engine's log line carries too.
 */
MSILO_API int msilo_engine_store(msilo_engine_t *e, const msilo_request_t *req,
                                 const char *owner, msilo_store_cb cb, void *data);

/** What a dump did. It grows by appending members; the library reads and
 *  writes a caller's copy only as far as the size the caller gives
 *  (msilo_engine_dump_sync()). */
typedef struct msilo_dump_result {
    size_t claimed;   /**< messages taken from the store */
    size_t delivered; /**< answered 2xx and deleted */
    size_t failed;    /**< failed and released for a retry */
} msilo_dump_result_t;

/** Completion of a dump: @p result is 0 or an error; @p res is never NULL. */
typedef void (*msilo_dump_cb)(msilo_engine_t *e, int result, const msilo_dump_result_t *res,
                              void *data);

/**
 * m_dump([owner]): delivers the stored messages of an owner to a contact.
 *
 * @param e        the engine.
 * @param reg      the REGISTER view: owner defaults to its To URI; the contact
 *                 to deliver to is reg->contact; nothing is sent (result 0,
 *                 nothing claimed) when reg->expires == 0, or when the contact
 *                 does not support MESSAGE (reg->allow present without MESSAGE,
 *                 or a `methods` contact parameter without MESSAGE), or the
 *                 contact is "*". With reg->contact NULL messages go to the AoR
 *                 (via outbound_proxy). An un-REGISTER (reg->expires == 0, or
 *                 the contact "*") also cancels, as msilo_engine_cancel() does,
 *                 the owner's dumps and retries to that contact ("*": to any;
 *                 no contact: to the AoR): pass every REGISTER the registrar
 *                 accepted, removals too, and the retries stop with the binding.
 * @param owner    overrides the owner (NULL = To of @p reg).
 * @param max      deliver at most this many (0 = all), like OpenSIPS m_dump(owner, maxmsg).
 * @param cb       called once every claimed message has a final outcome (may be NULL).
 * @param data     passed to @p cb.
 *
 * Messages go out in storage order, at most dump_window at a time; each is
 * deleted as soon as its 2xx arrives; a failure releases it with attempts+1
 * and a backoff time, and the engine retries it every check_time while the
 * registration (reg->expires) lasts, up to max_attempts; after that it waits
 * for the next dump. A dump for an owner whose dump is still running adds the
 * contact for later rounds and sends nothing twice.
 *
 * When a claim fails, @p cb gets its error and msilo_error_detail() inside
 * @p cb is the store's detail.
 *
 * @return 0 or MSILO_EINVAL, MSILO_EURI, MSILO_EMISSING, MSILO_ENOTSUP (no transport),
 *         MSILO_ETHREAD (another thread runs the engine's context),
 *         MSILO_ESHUTDOWN (msilo_engine_shutdown() was called).
 */
MSILO_API int msilo_engine_dump(msilo_engine_t *e, const msilo_request_t *reg,
                                const char *owner, size_t max, msilo_dump_cb cb, void *data);

/**
 * Cancels the dumps and retries of an owner: what an un-REGISTER does (a
 * dump with reg->expires == 0), for a registrar that learns of a removed or
 * expired binding in another way, or a host that gives up on a dump.
 *
 * @param e        the engine.
 * @param owner    the owner (URI or name-addr, as for msilo_engine_dump()).
 * @param contact  cancel only when the owner's deliveries go to this contact
 *                 (URI or Contact value; compared as parsed URIs); NULL or "*"
 *                 = whatever contact.
 *
 * Then: the owner's dumps in progress complete with MSILO_ECANCELLED and the
 * counts they had, from the loop (never inside this call); the messages
 * claimed and not sent yet are released at once, unchanged (attempts and
 * next_try as they were, lease ended), so another dump may claim them
 * immediately rather than after lease_time; a claim still in flight releases
 * what it brings back the same way; no more retries go out for the
 * registration. Sends already handed to the transport finish normally: a
 * 2xx still deletes its message, a failure releases it as usual (but it is
 * not retried until the next dump). The next msilo_engine_dump() for the
 * owner starts afresh. Nothing to cancel is not an error.
 *
 * @return 0; MSILO_EINVAL (@p e or @p owner NULL), MSILO_EURI (owner or
 *         contact malformed), MSILO_ETHREAD (another thread runs the context).
 */
MSILO_API int msilo_engine_cancel(msilo_engine_t *e, const char *owner, const char *contact);

/**
 * Blocking msilo_engine_store() without a timeout: iterates the engine's
 * context until the store completes, however long that takes (a database
 * that hangs hangs the caller). For tests and tools; a worker process of a
 * SIP server wants msilo_engine_store_sync_timeout(). It is that function
 * with @p timeout_ms -1.
 * It holds the context while it waits: the calling thread must be able to
 * acquire it (the same rule as every engine function).
 * @return the store result; *ret_id (may be NULL) gets the id on success.
 *         MSILO_ETHREAD when another thread owns the context (it would deadlock).
 */
MSILO_API int msilo_engine_store_sync(msilo_engine_t *e, const msilo_request_t *req,
                                      const char *owner, int64_t *ret_id);

/**
 * Blocking msilo_engine_dump() without a timeout: the delivery of every
 * claimed message must end first, which with a SIP transport may take up to
 * Timer F (32 s) per window of messages. msilo_engine_dump_sync_timeout()
 * with @p timeout_ms -1; same rules as msilo_engine_store_sync().
 * @param e, reg, owner, max as for msilo_engine_dump()
 * @param ret_res  receives the dump's result when not NULL, whatever the
 *                 dump's outcome (nothing is written on an error returned
 *                 before the dump starts).
 * @param res_size `sizeof *ret_res`: how much of @p ret_res the caller's
 *                 struct has (an older caller's is shorter, a newer one's
 *                 members this library does not know are zeroed).
 * @return as msilo_engine_dump(), or the dump's result; MSILO_EINVAL also for
 *         a @p res_size smaller than the first revision of the struct.
 */
MSILO_API int msilo_engine_dump_sync(msilo_engine_t *e, const msilo_request_t *reg,
                                     const char *owner, size_t max,
                                     msilo_dump_result_t *ret_res, size_t res_size);

/**
 * msilo_engine_store_sync() that waits at most @p timeout_ms milliseconds
 * (< 0: no limit; 0: only what completes in one pass, which a store never
 * does, since its callback never runs inside the call: use at least the
 * store's usual commit time).
 *
 * On MSILO_ETIMEDOUT the outcome is unknown to the caller: the store was
 * accepted and may still commit (the message is then delivered as any
 * other) or fail. Its callback runs later, when something iterates the
 * context again (the next blocking call, msilo_engine_iterate(), or
 * msilo_engine_free()), and only logs the outcome through the log hook
 * (MSILO_LOG_WARNING). A SIP server answers such a MESSAGE 5xx (the sender
 * may retry, and may see it twice) or 202 (it may be lost): its choice.
 * @return as msilo_engine_store_sync(), or MSILO_ETIMEDOUT.
 */
MSILO_API int msilo_engine_store_sync_timeout(msilo_engine_t *e, const msilo_request_t *req,
                                              const char *owner, int timeout_ms,
                                              int64_t *ret_id);

/**
 * msilo_engine_dump_sync() that waits at most @p timeout_ms milliseconds
 * (< 0: no limit).
 *
 * On MSILO_ETIMEDOUT the dump is cancelled as by msilo_engine_cancel() for
 * its owner (any contact): its messages claimed and not sent are released at
 * once, its owner's retries end, and sends in flight finish normally later
 * (a 2xx still deletes) when something iterates the context. *ret_res gets
 * the counts so far (what was claimed, delivered and failed by then), as
 * far as @p res_size goes (see msilo_engine_dump_sync()).
 * @return as msilo_engine_dump_sync(), or MSILO_ETIMEDOUT.
 */
MSILO_API int msilo_engine_dump_sync_timeout(msilo_engine_t *e, const msilo_request_t *reg,
                                             const char *owner, size_t max, int timeout_ms,
                                             msilo_dump_result_t *ret_res, size_t res_size);

/**
 * Runs the periodic jobs that are due by the engine's clock: retries (every
 * check_time), expiry (every clean_period x check_time), reminders (every
 * send_time). The engine's own timer source calls this once a second; tests
 * with a fake clock call it after moving the clock.
 * @return 0, MSILO_EINVAL (@p e NULL) or MSILO_ETHREAD.
 */
MSILO_API int msilo_engine_tick(msilo_engine_t *e);

/**
 * Runs the engine for a host without a GLib loop: waits at most
 * @p timeout_ms milliseconds for something to be ready on the engine's
 * context (0: no waiting; < 0: until something is), then runs the periodic
 * jobs that are due (msilo_engine_tick()) and dispatches what is ready: the
 * completions of the store's jobs and the transport's answers, the engine's
 * timer, and what those make ready in turn, in a bounded number of rounds.
 *
 * A worker process that never runs a loop (Kamailio's, OpenSIPS's timer
 * process) calls it every second with 0, and retries, expiry, reminders and
 * late completions happen there. It dispatches every source of the context,
 * not only the engine's: give the engine a context of its own
 * (g_main_context_new()) unless the host's sources belong there too. A host
 * with its own poll()/epoll loop may instead poll the context's file
 * descriptors (g_main_context_prepare(), _query(), _check(), _dispatch(); see
 * examples/poll-loop/ and doc/embedding.md), or poll nothing of GLib's and
 * call this with 0 from its own timer and when its transport's socket is
 * readable.
 * @return 0, MSILO_EINVAL (@p e NULL) or MSILO_ETHREAD (another thread runs
 *         the context).
 */
MSILO_API int msilo_engine_iterate(msilo_engine_t *e, int timeout_ms);

/** Reads a statistic; 0 for an unknown one. Thread-safe: may be called from
 *  any thread (a metrics exporter's), and reads a value the engine's thread
 *  wrote lately, not necessarily the latest. */
MSILO_API uint64_t msilo_engine_stat(const msilo_engine_t *e, msilo_stat_t stat);

/** Jobs (store batches, claims, deletes) not yet completed; 0 when idle. Tests
 *  iterate the context until this and MSILO_STAT_IN_FLIGHT are 0. Called while
 *  another thread runs the engine's context: SIZE_MAX (never idle), with
 *  the MSILO_ETHREAD detail in msilo_error_detail(). */
MSILO_API size_t msilo_engine_pending(const msilo_engine_t *e);

/**
 * Parses an address of record the way the engine does: the URI inside @p text
 * (bare or name-addr), scheme sip/sips/tel, user part unescaped (tel: number
 * without visual separators), host lower-cased.
 * @return 0 and g_malloc'd *ret_user / *ret_domain (g_free them), or MSILO_EINVAL /
 *         MSILO_EURI. tel: URIs get domain from @p default_domain (MSILO_EURI if NULL).
 */
MSILO_API int msilo_aor_parse(const char *text, const char *default_domain, char **ret_user,
                              char **ret_domain);

/**
 * Parses a reminder time "YYYYMMDDHHMMSS" (local time, as mktime()).
 * @return 0 and *ret_time, or MSILO_ETIME.
 */
MSILO_API int msilo_time_parse(const char *text, int64_t *ret_time);

MSILO_END_DECLS

#endif
