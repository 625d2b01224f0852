/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/testing/suite.h
 * @brief What the suites of the msilo-testing kit share: their result, as an
 *        exit status.
 *
 * libmsilo-testing (pkg-config `msilo-testing`) is the test kit for whoever
 * implements a store or a transport outside this project: the store
 * conformance suite (msilo/testing/store.h), the transport conformance suite
 * (msilo/testing/transport.h) and a recording transport for testing code that
 * drives an engine (msilo/testing/fake-transport.h). The suites run on
 * cmocka, which the kit links; a test program needs nothing else of it.
 */
#ifndef MSILO_TESTING_SUITE_H
#define MSILO_TESTING_SUITE_H

#include <msilo/common.h>

MSILO_BEGIN_DECLS

/**
 * Turns what a suite's run function returned into an exit status for main(),
 * in the convention of meson, automake and ctest: 0 when every test passed,
 * 1 when some failed, 77 ("skipped") for MSILO_ENOTSUP (the suite is not
 * available in this build of the kit), 99 ("hard error") for any other
 * negative code (the suite could not run).
 */
MSILO_API int msilo_testing_exit_status(int result);

MSILO_END_DECLS

#endif
