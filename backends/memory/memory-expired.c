/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The memory store's take_expired (store revision 4): the expired messages
 * of one content type, handed over and deleted in one step under the
 * store's lock, so that no other caller can take them too. The walk of the
 * expiry heap is memory.c's (mem_take_due()); this file owns the arguments
 * and the content-type test: the media type without its parameters,
 * compared case-insensitively, a message without one counting as
 * text/plain (what delivery sends for it).
 */
#include "memory-internal.h"

#include <string.h>

/* The media type of @p stored ("type/subtype", parameters and white space
 * ignored) is @p want (no parameters)? */
static gboolean media_type_is(const char *stored, const void *data)
{
    const char *want = data;
    if (!stored || !*stored)
        stored = "text/plain";
    while (*stored == ' ' || *stored == '\t')
        stored++;
    size_t n = strcspn(stored, "; \t");
    return strlen(want) == n && g_ascii_strncasecmp(stored, want, n) == 0;
}

static gboolean any_type(const char *stored, const void *data)
{
    (void)stored;
    (void)data;
    return TRUE;
}

int mem_take_expired(msilo_store_t *s, int64_t now, const char *ctype, size_t max,
                     msilo_message_t ***ret_msgs, size_t *ret_n)
{
    if (!ret_msgs || !ret_n || max == 0)
        return msilo_fail(MSILO_EINVAL, "memory take_expired: bad arguments");
    g_autofree char *want = NULL;
    if (ctype) {
        /* the caller's type may carry parameters and blanks too */
        while (*ctype == ' ' || *ctype == '\t')
            ctype++;
        want = g_strndup(ctype, strcspn(ctype, "; \t"));
    }
    return mem_take_due(s, now, want ? media_type_is : any_type, want, max, ret_msgs, ret_n);
}
