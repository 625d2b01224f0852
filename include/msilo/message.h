/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/message.h
 * @brief A stored message, as storage backends and admin tools see it.
 *
 * A message is a plain struct so that backends can fill it. All its pointers
 * are owned by the message and allocated with GLib's allocator (g_malloc,
 * g_strdup, ...); msilo_message_free() releases them. (A message from a
 * store's claim may hold its strings in its own allocation: see packed_size.) Fields are appended
 * only; allocate messages with msilo_message_new() so new fields start zeroed.
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
    /** Internal to libmsilo, leave it alone: how many bytes right after the
     * struct, in the message's own allocation, hold some of its strings and
     * its body. Only messages a store returns from a claim (which the engine
     * consumes) are built that way; msilo_message_free() frees only the
     * pointers outside those bytes, so assigning a new g_malloc'd string still
     * works, but g_free() on such a string does not: use msilo_message_copy()
     * for an ordinary message. 0 for messages from msilo_message_new(),
     * msilo_message_copy(), and a store's list and get. */
    size_t packed_size;
} msilo_message_t;

/** Allocates a zeroed message. Never returns NULL (aborts on OOM, like GLib). */
MSILO_API msilo_message_t *msilo_message_new(void);

/** Deep copy of @p msg (ids and times included). Free with msilo_message_free(). */
MSILO_API msilo_message_t *msilo_message_copy(const msilo_message_t *msg);

/** Frees @p msg and everything it owns. NULL is a no-op. */
MSILO_API void msilo_message_free(msilo_message_t *msg);

/** Frees an array of @p n messages and the array itself (g_free). NULL is a no-op. */
MSILO_API void msilo_message_array_free(msilo_message_t **msgs, size_t n);

MSILO_END_DECLS

#endif
