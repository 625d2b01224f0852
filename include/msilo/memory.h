/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/memory.h
 * @brief The in-memory store (built into libmsilo).
 *
 * Non-blocking and thread-safe (one mutex). Indexed by id, by owner, by expiry
 * time and by reminder time, so count is O(1), claim costs O(owner's messages),
 * due reminders and expiry O(log n + result). Nothing survives the process.
 */
#ifndef MSILO_MEMORY_H
#define MSILO_MEMORY_H

#include <stdint.h>

#include <msilo/common.h>
#include <msilo/sys/store.h>

MSILO_BEGIN_DECLS

/**
 * Creates an empty in-memory store. Free with msilo_store_free().
 * @return 0 or MSILO_EINVAL (ret NULL).
 */
MSILO_API int msilo_memory_store_new(msilo_store_t **ret);

/**
 * The global limits of an in-memory store (msilo_memory_store_set_limit()).
 * New limits are only ever appended.
 */
typedef enum {
    /** messages stored in all mailboxes together; 0 (the default): no limit */
    MSILO_MEMORY_MAX_MESSAGES = 1,
    /** bytes of the stored messages (body, addresses, headers and the
     *  store's own ~90 bytes each) together; 0 (the default): no limit */
    MSILO_MEMORY_MAX_BYTES = 2,
} msilo_memory_limit_t;

/**
 * Caps the whole store, whoever the messages are for: a put that would go
 * beyond @p limit gets MSILO_EFULL for that message (the engine answers it
 * like a full mailbox: 486 from msilo-server), nothing is evicted. Lowering
 * a limit below what is stored keeps what is stored and refuses new puts.
 * Thread-safe (the store's lock).
 * @param store a store made by msilo_memory_store_new() (or "memory:")
 * @param limit which limit
 * @param value the limit; 0 turns it off
 * @return 0, or MSILO_EINVAL (not a memory store, unknown @p limit).
 */
MSILO_API int msilo_memory_store_set_limit(msilo_store_t *store, msilo_memory_limit_t limit,
                                           uint64_t value);

MSILO_END_DECLS

#endif
