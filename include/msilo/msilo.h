/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/msilo.h
 * @brief libmsilo: offline SIP MESSAGE storage (RFC 3428), the msilo module as a library.
 *
 * Include this one header. Backend and transport authors also include
 * <msilo/sys/store.h> / <msilo/sys/transport.h> (included here as well).
 */
#ifndef MSILO_MSILO_H
#define MSILO_MSILO_H

#include <msilo/common.h>
#include <msilo/errors.h>
#include <msilo/message.h>
#include <msilo/request.h>
#include <msilo/config.h>
#include <msilo/sys/store.h>
#include <msilo/sys/transport.h>
#include <msilo/engine.h>
#include <msilo/memory.h>

#endif
