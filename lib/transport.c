/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "internal.h"

#include <string.h>

/* How many bytes of msilo_transport_t each version has (see lib/store.c). */
#define MEMBER_END(type, m) (offsetof(type, m) + sizeof(((type *)0)->m))
static const size_t transport_version_size[] = {
    [1] = MEMBER_END(msilo_transport_t, free),
};
/* A new version appends a row above. */
G_STATIC_ASSERT(G_N_ELEMENTS(transport_version_size) == MSILO_TRANSPORT_VERSION + 1);

int msilo_transport_init(msilo_transport_t *t, unsigned version)
{
    if (!t)
        return msilo_fail(MSILO_EINVAL, "msilo_transport_init: transport is NULL");
    if (version < 1 || version > MSILO_TRANSPORT_VERSION)
        return msilo_fail(MSILO_EVERSION,
                          "msilo_transport_init: transport version %u not supported (1..%u)",
                          version, (unsigned)MSILO_TRANSPORT_VERSION);
    msilo_transport_t init = MSILO_TRANSPORT_INIT;
    init.version = version;
    memcpy(t, &init, transport_version_size[version]);
    return 0;
}

int msilo_transport_check(const msilo_transport_t *t)
{
    if (!t)
        return msilo_fail(MSILO_EINVAL, "transport is NULL");
    if (t->version < 1 || t->version > MSILO_TRANSPORT_VERSION)
        return msilo_fail(MSILO_EVERSION, "transport version %u not supported (1..%u)",
                          t->version, (unsigned)MSILO_TRANSPORT_VERSION);
    if (!t->name)
        return msilo_fail(MSILO_EINVAL, "transport has no name");
    if (!t->send)
        return msilo_fail(MSILO_EINVAL, "transport '%s' lacks required method 'send'", t->name);
    if (!t->free)
        return msilo_fail(MSILO_EINVAL, "transport '%s' lacks required method 'free'", t->name);
    return 0;
}

int msilo_transport_send(msilo_transport_t *t, const msilo_outgoing_t *msg,
                         msilo_transport_done_fn done, void *data)
{
    if (!t || !msg || !done || !msg->ruri || !msg->from || !msg->to ||
        (msg->body_len && !msg->body))
        return msilo_fail(MSILO_EINVAL, "msilo_transport_send: bad arguments");
    return t->send(t, msg, done, data);
}

void msilo_transport_free(msilo_transport_t *t)
{
    if (t && t->free)
        t->free(t);
}
