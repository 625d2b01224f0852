/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/errors.h
 * @brief Result codes.
 *
 * Every function that can fail returns 0 on success or one of the negative
 * codes below. The codes are stable: new ones are only ever appended.
 * A human-readable detail for the most recent failure on the calling thread
 * is available from msilo_error_detail(); the library itself never prints.
 *
 * Suggested SIP mapping for an embedder (what msilo-server answers):
 * see msilo_error_sip_status().
 */
#ifndef MSILO_ERRORS_H
#define MSILO_ERRORS_H

#include <msilo/common.h>

MSILO_BEGIN_DECLS

typedef enum msilo_error {
    MSILO_OK = 0,
    MSILO_EINVAL = -1,     /**< NULL/empty argument or a value out of range */
    MSILO_ENOMEM = -2,     /**< allocation failed */
    MSILO_EURI = -3,       /**< a URI is malformed, has an unsupported scheme,
                                or is not an address of record where one is needed */
    MSILO_EMISSING = -4,   /**< a required part of the request is absent (From, To) */
    MSILO_ETOOBIG = -5,    /**< body larger than max_body_size */
    MSILO_ETIME = -6,      /**< reminder time is not a valid YYYYMMDDHHMMSS */
    MSILO_EFULL = -7,      /**< the owner's mailbox holds max_messages already */
    MSILO_ESTORE = -8,     /**< the storage backend failed (e.g. database down) */
    MSILO_ETRANSPORT = -9, /**< the transport could not send */
    MSILO_ECONFIG = -10,   /**< invalid configuration */
    MSILO_EVERSION = -11,  /**< a vtable/struct version this library does not know */
    MSILO_ENOTSUP = -12,   /**< operation not supported by this backend or disabled
                                by configuration (e.g. reminders with no `reminder`) */
    MSILO_ETHREAD = -13,   /**< called from a thread that does not own the engine's
                                main context while another thread runs it */
    MSILO_ENOTFOUND = -14, /**< no such message */
    MSILO_ECANCELLED = -15,/**< the engine or transport was freed before completion */
    MSILO_EMETHOD = -16,   /**< m_store of a request that is not a MESSAGE */
    MSILO_ETIMEDOUT = -17, /**< local timeout (no final response) */
    MSILO_EBUSY = -18,     /**< a resource is in use (e.g. dump already running) */
    MSILO_ESHUTDOWN = -19, /**< the engine is shutting down (msilo_engine_shutdown()):
                                it takes no new work */
    MSILO_ETRANSIENT = -20,/**< the content type is transient (`transient_types`, e.g.
                                an RFC 3994 isComposing state): it is never stored */
} msilo_error_t;

/** Static, English description of @p code ("unknown error" for others). */
MSILO_API const char *msilo_strerror(int code);

/** Short stable name of @p code ("MSILO_EFULL"), or NULL if unknown. */
MSILO_API const char *msilo_error_name(int code);

/**
 * Detail of the most recent failure reported on the calling thread, e.g.
 * "To URI 'foo' has no host". Never NULL (empty string when there is none).
 * Valid until the next libmsilo call on this thread.
 */
MSILO_API const char *msilo_error_detail(void);

/**
 * SIP final status an embedder should answer a MESSAGE with when
 * msilo_engine_store() reported @p code: 202 for MSILO_OK, 400 for malformed
 * input (EINVAL, EURI, EMISSING, ETIME), 413 for ETOOBIG, 486 for EFULL,
 * 405 for EMETHOD, 480 for ETRANSIENT (the user is not available and the
 * message is not kept), 503 for store/transport/internal failures (ETHREAD
 * included: the embedder's mistake, not the sender's; ESHUTDOWN too: the
 * sender may retry, another instance may take it).
 */
MSILO_API int msilo_error_sip_status(int code);

MSILO_END_DECLS

#endif
