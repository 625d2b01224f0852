/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The conformance suite on the in-memory store. */
#include "conformance.h"

static int open_memory(void *data, msilo_store_t **ret)
{
    (void)data;
    return msilo_memory_store_new(ret);
}

int main(void)
{
    const msilo_conformance_backend_t backend = {
        .name = "store-memory",
        .open = open_memory,
        .concurrent = 1,
    };
    return msilo_store_conformance_run(&backend);
}
