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

#include <msilo/common.h>
#include <msilo/sys/store.h>

MSILO_BEGIN_DECLS

/**
 * Creates an empty in-memory store. Free with msilo_store_free().
 * @return 0 or MSILO_EINVAL (ret NULL).
 */
MSILO_API int msilo_memory_store_new(msilo_store_t **ret);

MSILO_END_DECLS

#endif
