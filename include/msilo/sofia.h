/* SPDX-License-Identifier: LGPL-2.1-or-later */
/**
 * @file msilo/sofia.h
 * @brief The Sofia-SIP NTA transport (library libmsilo-sofia, pkg-config msilo-sofia).
 *
 * Sends the engine's MESSAGE requests as client transactions of an NTA agent
 * that the embedder owns, so one agent (and one set of listening sockets) can
 * serve both the embedder's own SIP work (a registrar, a proxy) and the
 * engine's deliveries.
 *
 * Outcome mapping (see include/msilo/sys/transport.h):
 * - a final response from the peer: its status (200..699);
 * - Sofia's internally generated 408 (Timer F), or the guard timer set with
 *   msilo_sofia_transport_set_timeout(): MSILO_ETIMEDOUT;
 * - any other internally generated status (503 for ICMP unreachable, a refused
 *   or broken TCP connection, no usable transport): MSILO_ETRANSPORT.
 *
 * The outgoing request carries Request-URI, From (with a fresh tag), To,
 * Call-ID (msg->call_id or a new one), CSeq, Max-Forwards 70, the extra
 * header lines of msg->headers, Content-Type and the body (byte-exact, NUL
 * bytes included). msg->next_hop, when set, is the URI the request is sent to
 * (an outbound proxy; no Route header is added, as with OpenSIPS msilo's
 * outbound_proxy); otherwise the agent's NTATAG_DEFAULT_PROXY applies, else
 * the Request-URI. A flow lookup (msilo_sofia_transport_set_flow_lookup())
 * may send it elsewhere: over the connection or to the address a client
 * registered from, with a pre-loaded route set (RFC 5626, RFC 3327).
 *
 * Threading: everything runs on the thread that runs @p root (the engine's
 * GMainContext when @p root comes from su_glib_root_create() and its GSource
 * is attached there). The transport is not thread-safe.
 *
 * It also fills msilo_request_t from a request Sofia parsed (the request
 * adapter, below), for an embedder that runs its own Sofia-based server.
 *
 * The Sofia types are declared by their struct tags so that including this
 * header does not pull in Sofia-SIP headers (and fix their magic types) for
 * the embedder.
 */
#ifndef MSILO_SOFIA_H
#define MSILO_SOFIA_H

#include <msilo/common.h>
#include <msilo/request.h>
#include <msilo/sys/transport.h>

MSILO_BEGIN_DECLS

struct nta_agent_s; /* nta_agent_t of <sofia-sip/nta.h> */
struct su_root_s;   /* su_root_t of <sofia-sip/su_wait.h> */

/**
 * Creates a transport that sends through @p agent.
 *
 * @param ret    receives the transport; free it with msilo_transport_free()
 *               before destroying @p agent or @p root.
 * @param agent  NTA agent (borrowed; must outlive the transport).
 * @param root   the root @p agent runs on (borrowed), used for timers.
 * @return 0, MSILO_EINVAL (a NULL argument) or MSILO_ENOMEM.
 */
MSILO_API int msilo_sofia_transport_new(msilo_transport_t **ret, struct nta_agent_s *agent,
                                        struct su_root_s *root);

/**
 * Sets a guard timer: a send with no final response after @p timeout_ms
 * milliseconds is abandoned and reported as MSILO_ETIMEDOUT, whatever the
 * agent's own timers say (a non-INVITE transaction otherwise times out only
 * after T1x64 = 32 s). 0 (the default) disables the guard. Applies to sends
 * started afterwards.
 * @return 0 or MSILO_EINVAL (@p t is not a Sofia transport).
 */
MSILO_API int msilo_sofia_transport_set_timeout(msilo_transport_t *t, unsigned timeout_ms);

/**
 * Where one send goes when the registrar knows better than its Request-URI
 * (RFC 5626 flows, RFC 3261 section 18 connection reuse, RFC 3327 Path).
 * The transport zeroes it before the lookup; members are only appended.
 */
typedef struct msilo_sofia_flow {
    /** URI the request is sent to instead of msg->next_hop or the Request-URI,
     *  e.g. the source of the REGISTER, `sip:192.0.2.7:40312;transport=tcp`:
     *  NTA reuses the connection open to that address (the client's own),
     *  and over UDP sends to that address and port. NULL: unchanged. */
    const char *next_hop;
    /** Route header value(s) to pre-load, e.g. the REGISTER's Path,
     *  `<sip:edge.example;lr>, <sip:p2.example;lr>`. NULL: none. */
    const char *route;
} msilo_sofia_flow_t;

/**
 * A flow lookup: called from inside send() for every MESSAGE, on the
 * transport's thread, with the request it is about to send (@p msg: ruri is
 * the registered contact on a delivery, to the owner's AoR). It fills
 * @p ret_flow with strings that stay valid until it is called again or the
 * registrar changes, and returns 1; or returns 0 (send as usual); or a
 * negative MSILO_E* code, which send() returns without sending (e.g.
 * MSILO_ETRANSPORT when the connection the client registered on has gone
 * and there is no other way to reach it: the engine counts a failed
 * delivery and the message stays stored). It must not call the transport.
 */
typedef int (*msilo_sofia_flow_fn)(const msilo_outgoing_t *msg, msilo_sofia_flow_t *ret_flow,
                                   void *data);

/**
 * Sets (or, with @p fn NULL, clears) the flow lookup of @p t, with @p data
 * passed to it. Applies to sends started afterwards.
 * @return 0 or MSILO_EINVAL (@p t is not a Sofia transport).
 */
MSILO_API int msilo_sofia_transport_set_flow_lookup(msilo_transport_t *t, msilo_sofia_flow_fn fn,
                                                    void *data);

/** Number of sends whose done callback has not run yet (0 for NULL). */
MSILO_API size_t msilo_sofia_transport_in_flight(const msilo_transport_t *t);

/* ---- the request adapter ------------------------------------------------- */

struct sip_s;       /* sip_t of <sofia-sip/sip.h> */
union sip_header_u; /* sip_header_t of <sofia-sip/sip.h> */
struct su_home_s;   /* su_home_t of <sofia-sip/su_alloc.h> */

/** A request view filled from a request Sofia-SIP parsed, with the strings it needs. */
typedef struct msilo_sofia_request msilo_sofia_request_t;

/**
 * Fills a view of @p sip for msilo_engine_store() / msilo_engine_dump():
 * - method, ruri: the request line;
 * - to, from: the URIs Sofia parsed from To and From (never the header text,
 *   which the engine would parse a second time: what a Digest check or a
 *   registrar read is what the engine gets);
 * - contact: the first Contact URI (none for `Contact: *`);
 * - content_type, allow: the header values; body, body_len: the payload
 *   (bytes of @p sip's message, see below); call_id, cseq, from_tag; expires;
 * - from: with the From's display name when it has one (`Bob <sip:bob@…>`,
 *   stored and re-sent by the engine);
 * - headers: every header Sofia does not know (P-Asserted-Identity, X-…), to
 *   be stored and re-sent on delivery (Reply-To among them), then the
 *   standard headers Subject, Priority and In-Reply-To
 *   (msilo_sofia_request_new_with() takes another list);
 * - snd_time: the value of the header named @p snd_time_header (msilo's
 *   snd_time_avp; NULL or "" = none), which is then not among the headers.
 *
 * The view (msilo_sofia_request_view()) may be changed by the caller (a dump
 * sets contact and expires from the Contact it chose); its strings belong to
 * @p ret and to @p sip's message, which must outlive the view's use.
 *
 * @return 0, or MSILO_EINVAL (NULL @p ret or @p sip, or not a request).
 * Free with msilo_sofia_request_free(). Thread-safety: none needed (no shared state).
 */
MSILO_API int msilo_sofia_request_new(msilo_sofia_request_t **ret, const struct sip_s *sip,
                                      const char *snd_time_header);

/**
 * msilo_sofia_request_new() keeping the standard headers named in
 * @p stored_headers (comma- or space-separated, case-insensitive; among
 * Subject, Priority, In-Reply-To, Organization; the engine key
 * `stored_headers` holds the list an embedder passes) instead of the
 * default list; NULL = the default, "" = none. Headers Sofia does not parse
 * (Reply-To, X-…) are kept either way.
 *
 * @return 0, or MSILO_EINVAL as msilo_sofia_request_new().
 */
MSILO_API int msilo_sofia_request_new_with(msilo_sofia_request_t **ret, const struct sip_s *sip,
                                           const char *snd_time_header,
                                           const char *stored_headers);

/** The view of @p r (owned by @p r), or NULL for NULL. */
MSILO_API msilo_request_t *msilo_sofia_request_view(msilo_sofia_request_t *r);

/** Frees @p r and the strings of its view. NULL is a no-op. */
MSILO_API void msilo_sofia_request_free(msilo_sofia_request_t *r);

/**
 * The value of one header (without its name) as text allocated in @p home,
 * or NULL (NULL arguments, or Sofia could not encode it). Unlike
 * sip_header_as_string() it never returns a value whose last parameter was
 * left unwritten: Sofia's encoders report the length a value needs but may
 * stop short when the buffer is just that large (a 4 KiB Content-Type came
 * out as "text/plain;" and uninitialised bytes, found with valgrind).
 */
MSILO_API char *msilo_sofia_header_string(struct su_home_s *home,
                                          const union sip_header_u *header);

MSILO_END_DECLS

#endif
