/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The recording transport's header under its old name (it lived in
 * examples/inprocess before it moved into the test kit): tests written
 * against that name keep building. New tests include "fake.h". */
#ifndef MSILO_TESTS_FAKE_TRANSPORT_H
#define MSILO_TESTS_FAKE_TRANSPORT_H

#include "fake.h"

#endif
