/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/sys/store.h
 * @brief The storage backend vtable, for backend implementers.
 *
 * A backend is a struct whose first member is an msilo_store_t (the "base"),
 * filled with MSILO_STORE_INIT (or msilo_store_init()) and then the backend's
 * methods:
 *
 * @code
 * typedef struct { msilo_store_t base; GHashTable *rows; } my_store;
 * my_store *s = g_new0(my_store, 1);
 * s->base = (msilo_store_t)MSILO_STORE_INIT;
 * s->base.name = "mine";
 * s->base.put = my_put; ...
 * @endcode
 *
 * Rules for backends:
 * - Methods are plain blocking code. Unless the backend sets
 *   MSILO_STORE_NONBLOCKING, the engine calls them from one worker thread,
 *   never from its main-loop thread, and never two at once. A backend that
 *   sets MSILO_STORE_THREADSAFE may be called from several threads at once.
 * - Every method returns 0 or a negative MSILO_E* code; a database that is
 *   unreachable is MSILO_ESTORE. A method that fails leaves the store as it
 *   was (a failed put stores none of the batch) and writes no ret_ value.
 * - Messages handed to the core (claim, list, get) are allocated with
 *   msilo_message_new() and their fields with GLib's allocator; the core
 *   frees them with msilo_message_free().
 * - Times are Unix seconds from the engine's clock, passed in as `now`:
 *   a backend never reads the wall clock itself (tests drive time).
 * - Version: the struct only grows by appending. `version` is a revision,
 *   not a count: the MSILO_STORE_VERSION of the header the backend was
 *   compiled with, which tells the library which members the backend's
 *   base has (those of that revision and earlier ones) and so which it may
 *   read; the core checks it, and the pointer, before calling an optional
 *   method. Revision 3 (libmsilo.so.1) gave release() the size of its
 *   items; what each revision added is noted at its members.
 * - Arrays of public structs that cross this interface carry their element
 *   size (release()), so that such a struct can grow too: step through them
 *   with that size, never with your own sizeof.
 *
 * The public wrappers below (msilo_store_put(), ...) validate arguments and
 * the vtable and are what the engine, the admin tool and the conformance
 * suite call. Every backend must pass that suite: it is installed as the
 * test kit libmsilo-testing (header msilo/testing/store.h, pkg-config
 * `msilo-testing`), and this project's own backends run it the same way:
 *
 * @code
 * msilo_testing_store_suite_t suite = MSILO_TESTING_STORE_SUITE_INIT;
 * suite.open = my_open_empty_store;  // int (*)(void *data, msilo_store_t **ret)
 * return msilo_testing_exit_status(msilo_testing_store_run(&suite));
 * @endcode
 */
#ifndef MSILO_SYS_STORE_H
#define MSILO_SYS_STORE_H

#include <msilo/common.h>
#include <msilo/message.h>

MSILO_BEGIN_DECLS

#define MSILO_STORE_VERSION 4

/** Backend capability flags. */
enum {
    /** Methods never block (in-memory): the engine may call them on its loop thread. */
    MSILO_STORE_NONBLOCKING = 1u << 0,
    /** Methods may be called from several threads at once. */
    MSILO_STORE_THREADSAFE = 1u << 1,
};

/** Flags for msilo_store_release_t. */
enum {
    /** Also set snd_time to 0: a failed reminder becomes an ordinary offline message. */
    MSILO_RELEASE_CLEAR_SND_TIME = 1u << 0,
};

/**
 * One message returned to the store after a failed delivery. It grows by
 * appending members whose zero value keeps the old behaviour; an array of
 * them always comes with its element size (msilo_store_release()).
 */
typedef struct msilo_store_release {
    int64_t id;
    uint32_t attempts; /**< new attempt count to write */
    int64_t next_try;  /**< earliest retry by the retry timer; INT64_MAX = only on a
                            new registration (dump) */
    unsigned flags;    /**< MSILO_RELEASE_* */
    const char *lease_owner; /**< when not NULL: release only if the message is still
                                  leased by this claimer (a late release after the lease
                                  ran out must not end another instance's fresh lease) */
    /* ---- revision 4 ---- */
    const char *device;      /**< when not NULL: end this device's lease of the
                                  message (a per-device claim, see
                                  msilo_store_claim_t.device), not the message's */
} msilo_store_release_t;

/**
 * The item @p i of an array of msilo_store_release_t whose items are
 * @p item_size bytes apart, as release() gets it (C and C++).
 */
#define MSILO_STORE_RELEASE_ITEM(items, item_size, i)                                          \
    ((const msilo_store_release_t *)(const void *)((const char *)(items) +                     \
                                                   (size_t)(i) * (size_t)(item_size)))

/** One item of mark_delivered(): @p device has got message @p id (revision
 *  4). Members are only ever appended: step through an array with
 *  MSILO_STORE_MARK_ITEM() and the item size passed beside it. */
typedef struct msilo_store_mark {
    int64_t id;         /**< the message */
    const char *device; /**< the device that has it (never NULL) */
} msilo_store_mark_t;

/** Item @p i of a mark_delivered() array of items of @p item_size bytes. */
#define MSILO_STORE_MARK_ITEM(items, item_size, i)                                             \
    ((const msilo_store_mark_t *)(const void *)((const char *)(items) +                        \
                                                (size_t)(i) * (size_t)(item_size)))

/** Which messages a claim may take. */
typedef struct msilo_store_claim {
    const char *user;        /**< owner user (NULL with reminders) */
    const char *domain;      /**< owner domain (NULL with reminders) */
    int reminders;           /**< 0: the owner's offline messages (snd_time = 0);
                                  1: due reminders of any owner (0 < snd_time <= now) */
    int64_t now;             /**< current time */
    int64_t max_next_try;    /**< take only messages with next_try <= this
                                  (INT64_MAX = ignore backoff) */
    const char *lease_owner; /**< instance that claims (e.g. "host:5060/1234") */
    int64_t lease_until;     /**< the lease expires at this time */
    size_t max;              /**< at most this many; > 0 */
    /* ---- revision 4 (a backend of revision < 4 never sees a device) ---- */
    /**
     * NULL: a message-level claim, as in revisions 1-3 (one lease per
     * message; a 2xx deletes it). Not NULL (only with reminders = 0): a
     * claim for this device of the owner (deliver_to = every_device): the
     * store records the device as known for the owner (last seen = now),
     * and claims the owner's messages whose `device` is NULL or this
     * device, that this device has not got yet (mark_delivered) and whose
     * lease *for this device* has run out; the lease is per (message,
     * device), so the owner's other devices can claim the same message at
     * the same time. attempts/next_try of the returned messages are this
     * device's.
     */
    const char *device;
} msilo_store_claim_t;

typedef struct msilo_store msilo_store_t;

struct msilo_store {
    unsigned version;   /**< revision of this header the backend was compiled with
                             (MSILO_STORE_VERSION): says which members exist */
    unsigned flags;     /**< MSILO_STORE_* */
    const char *name;   /**< "memory", "postgres", ... (static) */

    /* ---- required (version 1) ---- */

    /**
     * Stores a batch of @p n messages as one transaction.
     * For each msgs[i]: sets msgs[i]->id and results[i] = 0, or results[i] =
     * MSILO_EFULL when @p max_per_owner > 0 and the owner already holds that many
     * messages (counting those earlier in the batch); a refused message is not
     * stored, the others are. A message whose store_key (msilo_message_t) is
     * that of a stored message, or of one earlier in the batch, is not stored
     * again: results[i] = 0 and msgs[i]->id = the stored one's id, whatever
     * @p max_per_owner (a store that ignores keys stores it). The method
     * returns 0 when the batch committed (whatever the per-message results),
     * or an error when nothing was stored.
     * id, inc_time, exp_time ... come from the message; attempts/next_try as given.
     */
    int (*put)(msilo_store_t *s, msilo_message_t *const *msgs, size_t n,
               int64_t max_per_owner, int *results);

    /**
     * Claims messages for delivery: those that match @p c, whose exp_time > now
     * and whose lease has run out (lease_until <= now), oldest id first; writes
     * the lease to them so no other claimer gets them until lease_until.
     * *ret_msgs receives a g_malloc'd array of *ret_n messages (NULL, 0 when none).
     */
    int (*claim)(msilo_store_t *s, const msilo_store_claim_t *c,
                 msilo_message_t ***ret_msgs, size_t *ret_n);

    /** Deletes messages by id (delivered, or admin delete); unknown ids are ignored.
     *  *ret_deleted (may be NULL) receives how many existed. */
    int (*remove)(msilo_store_t *s, const int64_t *ids, size_t n, size_t *ret_deleted);

    /** Ends the leases of claimed messages after a failed delivery, writing their
     *  attempts/next_try (and snd_time = 0 with MSILO_RELEASE_CLEAR_SND_TIME).
     *  The item @p i is MSILO_STORE_RELEASE_ITEM(items, item_size, i); the core
     *  passes its own sizeof(msilo_store_release_t), which is never smaller
     *  than the backend's (a backend newer than the library is refused), so
     *  every member the backend knows is there. (@p item_size came with
     *  revision 3 and libmsilo.so.1: the soname keeps backends built against
     *  the 3-argument release() of libmsilo.so.0 away.) */
    int (*release)(msilo_store_t *s, const msilo_store_release_t *items, size_t n,
                   size_t item_size);

    /** Counts an owner's messages (user and domain both NULL: all messages),
     *  expired ones included until they are cleaned. */
    int (*count)(msilo_store_t *s, const char *user, const char *domain, int64_t *ret_count);

    /** Deletes every message with exp_time <= now; *ret_deleted (may be NULL). */
    int (*expire)(msilo_store_t *s, int64_t now, size_t *ret_deleted);

    /** Frees the backend (closes connections). */
    void (*free)(msilo_store_t *s);

    /* ---- optional (version 1): admin; NULL = MSILO_ENOTSUP ---- */

    /** Lists an owner's messages with id > after_id, oldest first, at most max
     *  (user and domain NULL: all owners). Bodies included. */
    int (*list)(msilo_store_t *s, const char *user, const char *domain, int64_t after_id,
                size_t max, msilo_message_t ***ret_msgs, size_t *ret_n);

    /** Reads one message; MSILO_ENOTFOUND when absent. */
    int (*get)(msilo_store_t *s, int64_t id, msilo_message_t **ret_msg);

    /** Deletes all of an owner's messages; *ret_deleted (may be NULL). */
    int (*purge)(msilo_store_t *s, const char *user, const char *domain, size_t *ret_deleted);

    /** Ends every lease held by @p lease_owner (an instance restarting after a
     *  crash takes its in-flight messages back at once instead of waiting). */
    int (*reset_leases)(msilo_store_t *s, const char *lease_owner, size_t *ret_n);

    /* ---- optional (version 2); NULL = MSILO_ENOTSUP ---- */

    /**
     * Opens another handle on the same storage (the same table), with its own
     * connection, to be used from another thread at the same time as @p s. The
     * engine opens one for expiry and the queued_messages count, and with
     * `store_threads` > 1 that many more to commit batches of stores
     * concurrently (an owner's messages never in two batches at once); it
     * calls this from its worker thread, which uses @p s. The caller frees the
     * new handle with msilo_store_free(). Only for stores whose connections are
     * independent (a database server); read only when version >= 2.
     */
    int (*open_peer)(msilo_store_t *s, msilo_store_t **ret);

    /* ---- optional (version 3); NULL = MSILO_ENOTSUP ---- */

    /**
     * Makes a call blocked in @p s (a query waiting for a frozen server)
     * return promptly with MSILO_ESTORE, and every later call on @p s fail
     * at once with MSILO_ESTORE: the handle is done for, only free is left.
     * May be called from any thread, while another thread is inside a
     * method of @p s; must not block (no waiting for that call). The engine
     * calls it when the deadline of msilo_engine_shutdown() passes, on every
     * handle it uses, then joins its workers. A call that cannot be cut
     * short (a connect in progress) may finish first, bounded by the
     * backend's own timeouts. Read only when version >= 3.
     */
    void (*interrupt)(msilo_store_t *s);

    /* ---- optional (version 4); NULL = MSILO_ENOTSUP ---- */

    /**
     * Deletes up to @p max messages (max > 0) whose exp_time <= now and whose
     * content type, without parameters and compared case-insensitively, is
     * @p ctype (NULL = any), oldest id first, and hands them to the caller
     * (bodies included) in *ret_msgs / *ret_n (NULL, 0 when none). Atomic: a
     * message taken by one caller is never taken by another, on any handle
     * or server sharing the storage. The engine takes expired message/cpim
     * messages this way to send their RFC 5438 `<failed/>` notifications,
     * before expire() deletes the rest. Read only when version >= 4.
     */
    int (*take_expired)(msilo_store_t *s, int64_t now, const char *ctype, size_t max,
                        msilo_message_t ***ret_msgs, size_t *ret_n);

    /**
     * Per-device delivery (deliver_to = every_device): records for each of
     * the @p n items (MSILO_STORE_MARK_ITEM(items, item_size, i)) that its
     * device has got its message (after its 2xx), ends that device's lease
     * of it, and deletes each message that every device known for its
     * owner now has (the devices of the other items of the call count as
     * having it), or whose `device` is the item's. One call is one
     * transaction: the engine passes a whole round of deliveries, of many
     * devices, at once. Unknown ids are ignored; a message may appear in
     * several items (several devices). *ret_deleted (may be NULL) receives
     * how many messages were deleted. A store that implements this honours
     * msilo_store_claim_t.device and msilo_store_release_t.device too.
     * Read only when version >= 4.
     */
    int (*mark_delivered)(msilo_store_t *s, const msilo_store_mark_t *items, size_t n,
                          size_t item_size, size_t *ret_deleted);

    /**
     * Forgets the devices last seen (claimed for) before @p seen_before: a
     * message no longer waits for them. *ret_n (may be NULL) receives how
     * many were forgotten. Read only when version >= 4.
     */
    int (*forget_devices)(msilo_store_t *s, int64_t seen_before, size_t *ret_n);
};

#define MSILO_STORE_INIT { .version = MSILO_STORE_VERSION }

/**
 * Sets @p s to MSILO_STORE_INIT, for callers that cannot use the macro (C++
 * before C++20 has no designated initializers):
 * `msilo_store_init(&my->base, MSILO_STORE_VERSION);`.
 *
 * @p version says which msilo_store_t the caller was compiled with: pass
 * MSILO_STORE_VERSION, not a number. The function writes `version` and
 * clears only the members that version has, so a backend built against an
 * older header, whose base is shorter, never has its own fields after the
 * base overwritten, and never claims methods it does not have.
 *
 * @return 0; MSILO_EINVAL (@p s NULL); MSILO_EVERSION when @p version is 0 or
 *         newer than this library knows (@p s is left untouched).
 */
MSILO_API int msilo_store_init(msilo_store_t *s, unsigned version);

/**
 * Checks that @p s is usable: version known (1..MSILO_STORE_VERSION), name and
 * every required method set. @return 0, MSILO_EINVAL (NULL), MSILO_EVERSION, or
 * MSILO_EINVAL with a detail naming the missing method.
 */
MSILO_API int msilo_store_check(const msilo_store_t *s);

/* Wrappers: validate arguments, then call the method. Errors: MSILO_EINVAL for
 * bad arguments, MSILO_ENOTSUP for an absent optional method, else the backend's. */
MSILO_API int msilo_store_put(msilo_store_t *s, msilo_message_t *const *msgs, size_t n,
                              int64_t max_per_owner, int *results);
MSILO_API int msilo_store_claim(msilo_store_t *s, const msilo_store_claim_t *c,
                                msilo_message_t ***ret_msgs, size_t *ret_n);
MSILO_API int msilo_store_remove(msilo_store_t *s, const int64_t *ids, size_t n,
                                 size_t *ret_deleted);
/** Calls release() with the @p n items of @p items, @p item_size bytes apart:
 *  pass `sizeof *items` (a caller compiled with an older, shorter struct gets
 *  the defaults for the members it lacks). MSILO_EINVAL when @p item_size is
 *  smaller than the first revision of the struct. */
MSILO_API int msilo_store_release(msilo_store_t *s, const msilo_store_release_t *items,
                                  size_t n, size_t item_size);
MSILO_API int msilo_store_count(msilo_store_t *s, const char *user, const char *domain,
                                int64_t *ret_count);
MSILO_API int msilo_store_expire(msilo_store_t *s, int64_t now, size_t *ret_deleted);
MSILO_API int msilo_store_list(msilo_store_t *s, const char *user, const char *domain,
                               int64_t after_id, size_t max, msilo_message_t ***ret_msgs,
                               size_t *ret_n);
MSILO_API int msilo_store_get(msilo_store_t *s, int64_t id, msilo_message_t **ret_msg);
MSILO_API int msilo_store_purge(msilo_store_t *s, const char *user, const char *domain,
                                size_t *ret_deleted);
MSILO_API int msilo_store_reset_leases(msilo_store_t *s, const char *lease_owner,
                                       size_t *ret_n);
/** Opens another handle on @p s's storage (see open_peer); MSILO_ENOTSUP when the
 *  store cannot (version 1 or no open_peer). */
MSILO_API int msilo_store_open_peer(msilo_store_t *s, msilo_store_t **ret);
/**
 * Interrupts @p s (see the interrupt method): a blocked call returns
 * promptly with MSILO_ESTORE, later calls fail at once. Any thread.
 * @return 0; MSILO_EINVAL (@p s NULL); MSILO_ENOTSUP when the store cannot
 *         (version < 3 or no interrupt method).
 */
MSILO_API int msilo_store_interrupt(msilo_store_t *s);
/** take_expired(); MSILO_ENOTSUP when the store has none (version < 4). */
MSILO_API int msilo_store_take_expired(msilo_store_t *s, int64_t now, const char *ctype,
                                       size_t max, msilo_message_t ***ret_msgs,
                                       size_t *ret_n);
/** mark_delivered(); MSILO_ENOTSUP when the store has none (version < 4). */
MSILO_API int msilo_store_mark_delivered(msilo_store_t *s, const msilo_store_mark_t *items,
                                         size_t n, size_t item_size, size_t *ret_deleted);
/** forget_devices(); MSILO_ENOTSUP when the store has none (version < 4). */
MSILO_API int msilo_store_forget_devices(msilo_store_t *s, int64_t seen_before,
                                         size_t *ret_n);
/** Calls s->free. NULL is a no-op. */
MSILO_API void msilo_store_free(msilo_store_t *s);

/**
 * For backends: records a human-readable detail for msilo_error_detail() on
 * the calling thread and returns @p code, e.g.
 * `return msilo_store_fail(MSILO_ESTORE, "connection lost: %s", PQerrorMessage(c));`
 * The one way every backend (a library of its own included: it links
 * libmsilo) reports a detail. Line breaks and tabs become spaces and
 * trailing white space goes, so a database's multi-line message makes one
 * log line. The engine runs store calls on worker threads: it copies the
 * detail of a failed call and sets it on the loop thread for the callback
 * that reports the failure (msilo_error_detail() there) and its log lines.
 */
MSILO_API int msilo_store_fail(int code, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

MSILO_END_DECLS

#endif
