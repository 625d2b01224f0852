/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msilo_testing_transport_run() of a kit built without Sofia-SIP: the suite's
 * peer is a Sofia-SIP UAS (transport-suite.c), so there is no suite to run.
 * The symbol is there all the same: the kit's ABI does not depend on how it
 * was built. */
#include <msilo/testing/transport.h>

#include <stdio.h>

int msilo_testing_transport_run(const msilo_testing_transport_suite_t *suite)
{
    if (!suite || !suite->open)
        return MSILO_EINVAL;
    if (suite->version < 1 || suite->version > MSILO_TESTING_TRANSPORT_SUITE_VERSION)
        return MSILO_EVERSION;
    fprintf(stderr, "msilo-testing was built without Sofia-SIP: no transport suite\n");
    return MSILO_ENOTSUP;
}
