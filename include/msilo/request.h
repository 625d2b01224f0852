/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/request.h
 * @brief The view of an incoming SIP request that an embedder hands the engine.
 *
 * The embedder fills it from whatever SIP stack it runs (Sofia-SIP, Kamailio,
 * OpenSIPS, a test harness). Every pointer is borrowed for the duration of
 * the call that takes the view only: the engine copies what it keeps.
 *
 * Initialise with MSILO_REQUEST_INIT (or msilo_request_init()) so that fields
 * appended in later versions start with their defaults. `version` is a
 * revision, not a count: the MSILO_REQUEST_VERSION of the header the caller
 * was compiled with, which tells the library which members the caller's
 * struct has (it reads no others). The struct grows by appending only, and
 * the header array carries its element size (`header_size`), so
 * msilo_header_t can grow too.
 *
 * URI fields (ruri, orig_ruri, to, from, contact) accept either a bare URI
 * ("sip:alice@example.org") or a header value in name-addr form
 * ("\"Alice\" <sip:alice@example.org>;tag=1"); the engine extracts the URI.
 */
#ifndef MSILO_REQUEST_H
#define MSILO_REQUEST_H

#include <msilo/common.h>

MSILO_BEGIN_DECLS

/** The revision of msilo_request_t in this header. 2 added `header_size`;
 *  3 added `cseq`, `from_tag` and `store_key` (idempotent stores); 4 added
 *  `device` (delivery to each device of a user). */
#define MSILO_REQUEST_VERSION 4

/** One header of the original request, kept with the message and re-sent.
 *  It grows by appending; see msilo_request_t.header_size. */
typedef struct msilo_header {
    const char *name;  /**< e.g. "P-Asserted-Identity" */
    const char *value; /**< header value without CRLF */
} msilo_header_t;

/** Per-request flags. */
enum {
    /** Do not send the offline notification for this request (Kamailio's
     *  skip_notification_flag). */
    MSILO_REQUEST_SKIP_NOTIFICATION = 1u << 0,
};

typedef struct msilo_request {
    unsigned version;          /**< MSILO_REQUEST_VERSION: which members exist */
    const char *method;        /**< "MESSAGE", "REGISTER"; NULL = MESSAGE */
    const char *ruri;          /**< Request-URI ($ru) */
    const char *orig_ruri;     /**< original Request-URI ($ou); NULL = ruri */
    const char *to;            /**< To header value or URI ($tu) */
    const char *from;          /**< From header value or URI ($fu) */
    const char *contact;       /**< first Contact value or URI; may be NULL */
    const char *content_type;  /**< Content-Type with parameters; NULL = text/plain */
    const void *body;          /**< body bytes, may contain NUL; may be NULL if body_len 0 */
    size_t body_len;
    const char *call_id;       /**< Call-ID ($ci); may be NULL */
    long expires;              /**< Expires header in seconds; < 0 = absent */
    const char *allow;         /**< Allow header value (REGISTER); NULL = absent */
    const msilo_header_t *headers; /**< extra headers to store and re-send on delivery:
                                        n_headers of them, header_size bytes apart */
    size_t n_headers;          /**< how many headers */
    const char *snd_time;      /**< reminder time "YYYYMMDDHHMMSS" in the process's
                                    local time zone (as mktime(), like both msilo modules);
                                    NULL = none. What OpenSIPS reads from snd_time_avp. */
    unsigned flags;            /**< MSILO_REQUEST_* flags */
    /* ---- version 2 ---- */
    size_t header_size;        /**< sizeof(msilo_header_t), as MSILO_REQUEST_INIT sets it:
                                    the step between two items of headers (a
                                    revision-1 view has none: the step is then two
                                    pointers) */
    /* ---- version 3 ---- */
    uint32_t cseq;             /**< CSeq number; 0 = unknown */
    const char *from_tag;      /**< tag parameter of From; NULL = none */
    const char *store_key;     /**< what makes this request unique for its
                                    sender, e.g. the CPIM Message-ID (RFC 3862);
                                    NULL = Call-ID, cseq and from_tag. The
                                    engine keeps a digest of it and the owner
                                    with the message (msilo_message_t.store_key):
                                    storing the same request again while its
                                    message is stored (a retransmission, a
                                    retry after a commit whose outcome was
                                    lost) reports the stored message's id and
                                    stores nothing. Without it and without a
                                    cseq, every store stores. */
    /* ---- version 4 ---- */
    const char *device;        /**< the device (RFC 5626/5627), as an opaque id.
                                    REGISTER (dump): the device this binding
                                    belongs to; NULL = the engine takes it from
                                    the contact (its +sip.instance, else the
                                    contact URI). MESSAGE (store): store for this
                                    device only (e.g. the instance of the GRUU
                                    the MESSAGE was sent to, or the one device of
                                    a fork that did not answer); NULL = for every
                                    device of the owner (the engine takes a `gr`
                                    parameter of the Request-URI as the device).
                                    Used only with deliver_to = every_device. */
} msilo_request_t;

/** Initialiser of a request view: every member at its default. */
#define MSILO_REQUEST_INIT                                                                     \
    { .version = MSILO_REQUEST_VERSION, .expires = -1, .header_size = sizeof(msilo_header_t) }

/**
 * Sets @p req to MSILO_REQUEST_INIT, for callers that cannot use the macro
 * (C++ before C++20): `msilo_request_init(&req, MSILO_REQUEST_VERSION);`.
 *
 * @p version says which msilo_request_t the caller was compiled with: pass
 * MSILO_REQUEST_VERSION, not a number. Only the members of that version are
 * written, so a caller compiled against an older header, whose struct is
 * shorter, has nothing written past its end.
 *
 * @return 0; MSILO_EINVAL (@p req NULL); MSILO_EVERSION when @p version is 0
 *         or newer than this library knows (@p req is left untouched).
 */
MSILO_API int msilo_request_init(msilo_request_t *req, unsigned version);

/**
 * A deep copy of @p req: every string, the extra headers and the body are
 * copied with it, so the copy stays valid after the SIP stack has freed the
 * request it came from. For handing a request to the thread that owns the
 * engine (a SIP stack's own thread, another worker). The copy is one block:
 * free it with msilo_request_free() only, never a field of it. Its body is
 * followed by a NUL byte (not counted in body_len); a body_len of 0 gives a
 * NULL body, no headers a NULL headers. The copy is of this library's
 * revision (version MSILO_REQUEST_VERSION, its own header_size), whatever
 * the revision of @p req.
 * @return 0; MSILO_EINVAL (NULL argument, headers or body missing for their
 * count, a header_size smaller than two pointers); MSILO_EVERSION (a view
 * version this library does not know).
 * Thread-safety: none needed; @p req is only read.
 */
MSILO_API int msilo_request_copy(const msilo_request_t *req, msilo_request_t **ret);

/** Frees a copy made by msilo_request_copy(). NULL is a no-op. */
MSILO_API void msilo_request_free(msilo_request_t *req);

MSILO_END_DECLS

#endif
