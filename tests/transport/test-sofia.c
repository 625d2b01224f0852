/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Sofia-SIP NTA transport against the transport conformance suite of the
 * test kit (<msilo/testing/transport.h>). */
#include <glib.h>

#include <sofia-sip/nta.h>
#include <sofia-sip/su_tag.h>

#include <msilo/sofia.h>
#include <msilo/testing/transport.h>

typedef struct sofia_factory {
    GHashTable *agents; /* transport -> its nta_agent_t */
} sofia_factory_t;

static int sofia_open(void *data, const msilo_testing_transport_env_t *env, msilo_transport_t **ret)
{
    sofia_factory_t *f = data;
    su_root_t *root = env->su_root;
    msilo_transport_t *t = NULL;
    /* Timer F = T1x64 = 1 s, well inside MSILO_TESTING_TRANSPORT_TIMEOUT_MS. */
    nta_agent_t *agent = nta_agent_create(root, URL_STRING_MAKE("sip:127.0.0.1:*"), NULL, NULL,
                                          NTATAG_UA(0), NTATAG_USE_NAPTR(0), NTATAG_USE_SRV(0),
                                          NTATAG_UDP_MTU(65535), NTATAG_CLIENT_RPORT(1),
                                          NTATAG_SIP_T1X64(1000), TAG_END());
    int r;

    if (!agent)
        return MSILO_ETRANSPORT;
    r = msilo_sofia_transport_new(&t, agent, root);
    if (r == 0 && env->guard_ms)
        r = msilo_sofia_transport_set_timeout(t, env->guard_ms);
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
    msilo_testing_transport_suite_t suite = MSILO_TESTING_TRANSPORT_SUITE_INIT;
    suite.name = "sofia";
    suite.open = sofia_open;
    suite.close = sofia_close;
    suite.in_flight = sofia_in_flight;
    suite.data = &f;
    int failed = msilo_testing_transport_run(&suite);
    g_hash_table_unref(f.agents);
    return msilo_testing_exit_status(failed);
}
