/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private helpers shared by the files of libmsilo. Not installed. */
#ifndef MSILO_INTERNAL_H
#define MSILO_INTERNAL_H

#include <glib.h>
#include <msilo/msilo.h>

/* Records a detail for msilo_error_detail() and returns @code, so that
 * `return msilo_fail(MSILO_EURI, "To URI '%s' has no host", s);` reads well. */
int msilo_fail(int code, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Clears the detail (successful calls leave the previous detail alone). */
void msilo_error_clear(void);

#endif
