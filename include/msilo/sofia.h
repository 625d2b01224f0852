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
 * the Request-URI.
 *
 * Threading: everything runs on the thread that runs @p root (the engine's
 * GMainContext when @p root comes from su_glib_root_create() and its GSource
 * is attached there). The transport is not thread-safe.
 *
 * The Sofia types are declared by their struct tags so that including this
 * header does not pull in Sofia-SIP headers (and fix their magic types) for
 * the embedder.
 */
#ifndef MSILO_SOFIA_H
#define MSILO_SOFIA_H

#include <msilo/common.h>
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

/** Number of sends whose done callback has not run yet (0 for NULL). */
MSILO_API size_t msilo_sofia_transport_in_flight(const msilo_transport_t *t);

MSILO_END_DECLS

#endif
