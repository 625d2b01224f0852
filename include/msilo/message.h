/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/message.h
 * @brief A stored message, as storage backends and admin tools see it.
 *
 * A message is a plain struct so that backends can fill it. All its pointers
 * are owned by the message and allocated with GLib's allocator (g_malloc,
 * g_strdup, ...); msilo_message_free() releases them, and a caller may
 * g_free() a field and assign a new one. Fields are appended only; allocate
 * messages with msilo_message_new() (or msilo_message_copy()) only, never
 * with g_new() or on the stack if msilo_message_free() is to free them: the
 * library keeps a few private bytes with each message, where the struct
 * cannot be seen, so that new fields start zeroed and the struct never holds
 * anything but these fields.
 *
 * Thread-safety: a message is a value; it is not shared between threads
 * while being modified.
 */
#ifndef MSILO_MESSAGE_H
#define MSILO_MESSAGE_H

#include <msilo/common.h>

MSILO_BEGIN_DECLS

typedef struct msilo_message {
    int64_t id;          /**< set by the store on put; > 0 */
    char *user;          /**< owner user part (unescaped), never NULL in a store */
    char *domain;        /**< owner host part (lower case), never NULL in a store */
    char *src;           /**< From URI of the original request ("sc_from") */
    char *dst;           /**< To URI of the original request ("sc_to") */
    char *ctype;         /**< Content-Type with parameters; NULL = text/plain */
    void *body;          /**< body bytes (may contain NUL); may be NULL if body_len 0 */
    size_t body_len;
    char *extra_hdrs;    /**< headers to add on delivery, "Name: value\r\n"...; may be NULL */
    char *callid;        /**< Call-ID of the original request; may be NULL */
    int64_t inc_time;    /**< Unix time stored */
    int64_t exp_time;    /**< Unix time after which the message is discarded */
    int64_t snd_time;    /**< reminder time (Unix); 0 = ordinary offline message */
    uint32_t attempts;   /**< failed delivery attempts so far */
    int64_t next_try;    /**< earliest retry by the retry timer (Unix); 0 = any time */
    /** Idempotency key: while a message with this key is stored, a put of
     *  another message with the same key stores nothing, reports success
     *  and sets that message's id to the stored one's (the built-in stores
     *  do; a store that ignores the key stores every put). NULL = none. The
     *  engine derives it from the request (msilo_request_t.store_key, else
     *  Call-ID, CSeq number, From tag and owner). Appended in libmsilo 1.1. */
    char *store_key;
    /** The one device this message is for (msilo_request_t.device of its
     *  store); NULL = every device of the owner. Appended in libmsilo 1.2
     *  (store revision 4). */
    char *device;
} msilo_message_t;

/** Allocates a zeroed message. Never returns NULL (aborts on OOM, like GLib).
 *  Free it with msilo_message_free() (not g_free()). */
MSILO_API msilo_message_t *msilo_message_new(void);

/** Deep copy of @p msg (ids and times included). Free with msilo_message_free(). */
MSILO_API msilo_message_t *msilo_message_copy(const msilo_message_t *msg);

/** Frees @p msg, from msilo_message_new() or msilo_message_copy() or a
 *  store, and everything it owns. NULL is a no-op. */
MSILO_API void msilo_message_free(msilo_message_t *msg);

/** Frees an array of @p n messages and the array itself (g_free). NULL is a no-op. */
MSILO_API void msilo_message_array_free(msilo_message_t **msgs, size_t n);

MSILO_END_DECLS

#endif
