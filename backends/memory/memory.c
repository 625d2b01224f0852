/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Placeholder: the in-memory store is being written. */
#include "../../lib/internal.h"

int msilo_memory_store_new(msilo_store_t **ret)
{
    (void)ret;
    return msilo_fail(MSILO_ENOTSUP, "memory store not implemented yet");
}
