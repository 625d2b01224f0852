/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to the memory store: what memory.c lends to the methods kept in
 * files of their own (memory-expired.c), so that memory.c's structures stay
 * static there. */
#ifndef MSILO_MEMORY_INTERNAL_H
#define MSILO_MEMORY_INTERNAL_H

#include "../../lib/internal.h"

/* TRUE when a message with content type @p ctype (NULL: none stored) is to
 * be taken; @p data is the caller's. */
typedef gboolean (*mem_ctype_match_fn)(const char *ctype, const void *data);

/*
 * Under the store's lock: deletes up to @p max messages with exp_time <= now
 * that @p match accepts, oldest id first, and returns them as ordinary
 * messages (msilo_message_array_free) in *ret_msgs / *ret_n (NULL, 0 when
 * none). Walks only the due part of the expiry heap. Always 0.
 */
int mem_take_due(msilo_store_t *s, int64_t now, mem_ctype_match_fn match, const void *data,
                 size_t max, msilo_message_t ***ret_msgs, size_t *ret_n);

/* The take_expired method (memory-expired.c). */
int mem_take_expired(msilo_store_t *s, int64_t now, const char *ctype, size_t max,
                     msilo_message_t ***ret_msgs, size_t *ret_n);

#endif
