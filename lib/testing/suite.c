/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the suites of libmsilo-testing share (<msilo/testing/suite.h>), and the
 * transport suite's initialiser, which is there with or without Sofia-SIP. */
#include <msilo/testing/suite.h>
#include <msilo/testing/transport.h>

int msilo_testing_exit_status(int result)
{
    if (result == 0)
        return 0;
    if (result > 0)
        return 1;
    return result == MSILO_ENOTSUP ? 77 : 99;
}

int msilo_testing_transport_suite_init(msilo_testing_transport_suite_t *suite, unsigned version)
{
    if (!suite)
        return MSILO_EINVAL;
    if (version < 1 || version > MSILO_TESTING_TRANSPORT_SUITE_VERSION)
        return MSILO_EVERSION;
    /* Version 1 is the whole struct; a version 2 writes only the members
     * the caller's version has (a size per version, as lib/store.c does). */
    *suite = (msilo_testing_transport_suite_t)MSILO_TESTING_TRANSPORT_SUITE_INIT;
    return 0;
}
