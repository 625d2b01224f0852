/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* msilo-server: what the request path does with a parsed request alone
 * (request.c). Needs Sofia's SIP parser and libmsilo, not NTA. */
#ifndef MSILO_SERVER_REQUEST_H
#define MSILO_SERVER_REQUEST_H

#include <sofia-sip/msg.h>
#include <sofia-sip/sip.h>

#include <msilo/msilo.h>

#include "config.h"

/* The checks every request passes before it is handled, on @msg (its header
 * chain) and @sip: header count and sizes, headers Sofia could not parse or
 * that appear twice, an empty Call-ID, the stored extra headers of a MESSAGE.
 * @return 0 when it may go on, else the status to answer (400, 413) with the
 * Warning value in @warning (printable ASCII, at most @size - 1 bytes). */
int server_check_request(const server_options_t *opt, msg_t *msg, sip_t const *sip,
                         char *warning, size_t size);

/* The owner of a MESSAGE, as the engine's default rule picks it: the R-URI
 * when it names a user (and is not tel:), else the To URI (NULL if none). */
url_t const *server_message_owner(sip_t const *sip);

#endif
