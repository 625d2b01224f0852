/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Sofia-SIP NTA transport against the transport conformance suite. */
#include <glib.h>

#include <sofia-sip/nta.h>
#include <sofia-sip/su_tag.h>

#include <msilo/sofia.h>

#include "conformance.h"

typedef struct sofia_factory {
    GHashTable *agents; /* transport -> its nta_agent_t */
} sofia_factory_t;

static int sofia_open(void *data, su_root_t *root, unsigned guard_ms, msilo_transport_t **ret)
{
    sofia_factory_t *f = data;
    msilo_transport_t *t = NULL;
    /* Timer F = T1x64 = 1 s, well inside MSILO_TRANSPORT_CONFORMANCE_TIMEOUT_MS. */
    nta_agent_t *agent = nta_agent_create(root, URL_STRING_MAKE("sip:127.0.0.1:*"), NULL, NULL,
                                          NTATAG_UA(0), NTATAG_USE_NAPTR(0), NTATAG_USE_SRV(0),
                                          NTATAG_UDP_MTU(65535), NTATAG_CLIENT_RPORT(1),
                                          NTATAG_SIP_T1X64(1000), TAG_END());
    int r;

    if (!agent)
        return MSILO_ETRANSPORT;
    r = msilo_sofia_transport_new(&t, agent, root);
    if (r == 0 && guard_ms)
        r = msilo_sofia_transport_set_timeout(t, guard_ms);
    if (r < 0) {
        msilo_transport_free(t);
        nta_agent_destroy(agent);
        return r;
    }
    g_hash_table_insert(f->agents, t, agent);
    *ret = t;
    return 0;
}

static void sofia_close(void *data, msilo_transport_t *t)
{
    sofia_factory_t *f = data;
    nta_agent_t *agent = g_hash_table_lookup(f->agents, t);
    g_hash_table_remove(f->agents, t);
    msilo_transport_free(t); /* before the agent it sends through */
    nta_agent_destroy(agent);
}

static size_t sofia_in_flight(void *data, const msilo_transport_t *t)
{
    (void)data;
    return msilo_sofia_transport_in_flight(t);
}

int main(void)
{
    sofia_factory_t f = { g_hash_table_new(NULL, NULL) };
    msilo_transport_conformance_t factory = {
        .name = "sofia",
        .open = sofia_open,
        .close = sofia_close,
        .in_flight = sofia_in_flight,
        .data = &f,
    };
    int failed = msilo_transport_conformance_run(&factory);
    g_hash_table_unref(f.agents);
    return failed;
}
