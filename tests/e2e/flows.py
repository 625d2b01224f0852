#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Flows against msilo-server on 127.0.0.1 (issue 15): clients whose Contact
does not reach them get their messages over the flow they registered on.

  flows.py --server build/examples/msilo-server/msilo-server [TEST...]

- received= in every response to a request with rport (RFC 3581 4);
- a TCP client behind a simulated NAT (a relay that rewrites its Contact to
  a port nobody listens on) gets its stored and its online messages over
  its registration connection;
- a UDP client with a wrong Contact gets them at its source port (rport);
- a Path from a front proxy is stored, echoed and used as the route set;
- outbound (reg-id): Require: outbound, CRLF keep-alive pong, and once its
  connection has gone the binding is unreachable and messages are stored.

Exit status: 0 passed, 1 failed.
"""
import os
import re
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402
from e2e import LOOPBACK, check, wait_until, read, parse_message, header, headers_all  # noqa: E402

ARGS = None
_n = [0]


def unused_port():
    """A port nobody listens on (bound, then closed)."""
    return e2e.free_port()


def request(method, ruri, via, frm, to, extra="", body=b"", proto="UDP"):
    _n[0] += 1
    n = _n[0]
    return ("%s %s SIP/2.0\r\n"
            "Via: SIP/2.0/%s %s;branch=z9hG4bK-fw-%d-%d;rport\r\n"
            "From: <%s>;tag=fw%d\r\nTo: <%s>\r\n"
            "Call-ID: flows-%d-%d@127.0.0.1\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\n"
            "%sContent-Length: %d\r\n\r\n" % (
                method, ruri, proto, via, os.getpid(), n, frm, n, to, os.getpid(), n, n,
                method, extra, len(body))).encode() + body


def answer(msg, status=200):
    """A response to the request `msg` (bytes)."""
    first, hdrs, _ = parse_message(msg)
    lines = ["SIP/2.0 %d OK" % status]
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for v in headers_all(hdrs, name):
            lines.append("%s: %s" % (name, v + (";tag=uas" if name == "To" and "tag=" not in v
                                                 else "")))
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def store_offline(srv, user, n, tag):
    """n MESSAGEs from alice to user, stored (user not registered)."""
    for i in range(n):
        st, _, _ = e2e.sip_request(srv.port, "MESSAGE", "sip:%s@127.0.0.1" % user,
                                   to="sip:%s@127.0.0.1" % user,
                                   extra="Content-Type: text/plain\r\n",
                                   body=("%s-%d" % (tag, i)).encode())
        check(st == 202, "MESSAGE %d for %s stored: 202, got %d" % (i, user, st))


def udp_response(sock, timeout=5):
    sock.settimeout(timeout)
    while True:
        data = sock.recv(65535)
        if data.startswith(b"SIP/2.0"):
            return data


def read_messages(next_msg, send, n, timeout=10):
    """Reads requests with next_msg() until n MESSAGEs came; answers each 200."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = next_msg(deadline - time.monotonic())
        if m is None:
            break
        if m.startswith(b"MESSAGE "):
            got.append(m)
            send(answer(m))
    return got


def stop_clean(srv):
    """Stops the server; it must exit 0 with nothing from a sanitizer (the
    flows hold references to Sofia's connections until the server stops)."""
    rc, log = srv.stop()
    check(rc == 0, "server exit status %s" % rc)
    check("Sanitizer" not in log and "runtime error" not in log, "sanitizer report: " + log[-2000:])


def body_of(m):
    return parse_message(m)[2].decode()


# ---- received= ------------------------------------------------------------------

def test_received(tmp):
    srv = e2e.Server(tmp)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((LOOPBACK, 0))
        lport = s.getsockname()[1]
        # the sent-by is ours: received= all the same (RFC 3581 4: MUST)
        for via in ("%s:%d" % (LOOPBACK, lport), "192.0.2.1:%d" % unused_port()):
            s.sendto(request("OPTIONS", "sip:127.0.0.1:%d" % srv.port, via,
                             "sip:alice@127.0.0.1", "sip:127.0.0.1"), (LOOPBACK, srv.port))
            first, hdrs, _ = parse_message(udp_response(s))
            v = header(hdrs, "Via")
            check(first.startswith("SIP/2.0 200"), "OPTIONS answered: " + first)
            check("received=127.0.0.1" in v, "received= in the Via of the answer: " + v)
            check("rport=%d" % lport in v, "rport= in the Via of the answer: " + v)
        s.close()
        stop_clean(srv)
    finally:
        srv.stop()


# ---- TCP behind a NAT ------------------------------------------------------------

class NatRelay:
    """A TCP relay in front of the server: what the client sends reaches the
    server from the relay's own port, its Contact rewritten to `contact_port`
    (where nobody listens), as a NAT with a broken ALG would."""

    def __init__(self, server_port, contact_port):
        self.server_port = server_port
        self.contact_port = contact_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind((LOOPBACK, 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        try:
            c, _ = self.lsock.accept()
        except OSError:
            return
        up = socket.create_connection((LOOPBACK, self.server_port))
        self.socks += [c, up]
        threading.Thread(target=self._pump, args=(c, up, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(up, c, False), daemon=True).start()

    def _pump(self, src, dst, rewrite):
        while True:
            try:
                d = src.recv(65536)
            except OSError:
                d = b""
            if not d:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if rewrite:
                d = re.sub(rb"(Contact: <sip:[^@>]+@127\.0\.0\.1:)\d+",
                           rb"\g<1>" + str(self.contact_port).encode(), d)
            try:
                dst.sendall(d)
            except OSError:
                return

    def close(self):
        for s in self.socks + [self.lsock]:
            try:
                s.close()
            except OSError:
                pass


def test_tcp_nat_relay(tmp):
    srv = e2e.Server(tmp)
    dead = unused_port()
    relay = NatRelay(srv.port, dead)
    try:
        store_offline(srv, "natty", 3, "stored")
        c = socket.create_connection((LOOPBACK, relay.port), timeout=5)
        lport = c.getsockname()[1]
        stream = e2e.Stream(c)
        c.sendall(request("REGISTER", "sip:127.0.0.1", "%s:%d" % (LOOPBACK, lport),
                          "sip:natty@127.0.0.1", "sip:natty@127.0.0.1",
                          "Contact: <sip:natty@127.0.0.1:%d;transport=tcp>\r\nExpires: 300\r\n"
                          % lport, proto="TCP"))
        got, resp = [], None
        deadline = time.monotonic() + 10
        while (resp is None or len(got) < 3) and time.monotonic() < deadline:
            m = stream.next(deadline - time.monotonic())
            if m is None:
                break
            if m.startswith(b"SIP/2.0"):
                resp = m
            elif m.startswith(b"MESSAGE "):
                got.append(m)
                c.sendall(answer(m))
        check(resp is not None and resp.startswith(b"SIP/2.0 200"), "REGISTER: 200")
        contact = header(parse_message(resp)[1], "Contact")
        check(":%d" % dead in contact, "the server saw the rewritten Contact: %s" % contact)
        bodies = sorted(body_of(m).split("] ")[-1] for m in got)
        check(bodies == ["stored-0", "stored-1", "stored-2"],
              "the 3 stored messages came over the registration connection: %s" % bodies)
        print("  NAT: Contact %s, 3 stored messages over the client's connection" % contact)
        for m in got:
            ruri = parse_message(m)[0].split()[1]
            check(":%d" % dead in ruri, "Request-URI is the registered Contact: " + ruri)
        # online: forwarded over the same connection
        result = {}
        t = threading.Thread(target=lambda: result.update(r=e2e.sip_request(
            srv.port, "MESSAGE", "sip:natty@127.0.0.1", to="sip:natty@127.0.0.1",
            extra="Content-Type: text/plain\r\n", body=b"online")))
        t.start()
        online = read_messages(stream.next, c.sendall, 1)
        t.join(15)
        check(len(online) == 1 and body_of(online[0]) == "online",
              "the online MESSAGE came over the connection too")
        check(result.get("r", (0,))[0] == 200, "the sender got the client's 200: %s"
              % (result.get("r", (None,))[0],))
        log = read(srv.log)
        check("Connection refused" not in log, "nothing was sent to the dead Contact port")
        stop_clean(srv)  # with the flow's connection still open
        c.close()
    finally:
        relay.close()
        srv.stop()


# ---- UDP with a wrong Contact ------------------------------------------------------

def test_udp_wrong_contact_rport(tmp):
    srv = e2e.Server(tmp)
    dead = unused_port()
    try:
        store_offline(srv, "udpnat", 2, "udp")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((LOOPBACK, 0))
        # behind a NAT: Via and Contact carry the private address, not the source
        s.sendto(request("REGISTER", "sip:127.0.0.1", "%s:%d" % (LOOPBACK, dead),
                         "sip:udpnat@127.0.0.1", "sip:udpnat@127.0.0.1",
                         "Contact: <sip:udpnat@127.0.0.1:%d>\r\nExpires: 300\r\n" % dead),
                 (LOOPBACK, srv.port))

        def next_msg(left):
            s.settimeout(max(0.05, left))
            try:
                return s.recv(65535)
            except socket.timeout:
                return None
        got = []
        deadline = time.monotonic() + 10
        saw_200 = False
        while len(got) < 2 and time.monotonic() < deadline:
            m = next_msg(deadline - time.monotonic())
            if m is None:
                break
            if m.startswith(b"SIP/2.0 200"):
                saw_200 = True
            elif m.startswith(b"MESSAGE ") and m not in got:
                got.append(m)
                s.sendto(answer(m), (LOOPBACK, srv.port))
        check(saw_200, "REGISTER answered at the source port (rport)")
        bodies = sorted(body_of(m).split("] ")[-1] for m in got)
        check(bodies == ["udp-0", "udp-1"], "stored messages came to the source port: %s" % bodies)
        s.close()
        stop_clean(srv)
    finally:
        srv.stop()


# ---- Path ------------------------------------------------------------------------

def test_path_followed(tmp):
    srv = e2e.Server(tmp)
    dead = unused_port()
    try:
        store_offline(srv, "pathy", 2, "path")
        proxy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        proxy.bind((LOOPBACK, 0))
        pport = proxy.getsockname()[1]
        ua = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ua.bind((LOOPBACK, 0))
        path = "<sip:127.0.0.1:%d;lr>" % pport
        ua.sendto(request("REGISTER", "sip:127.0.0.1", "%s:%d" % (LOOPBACK, ua.getsockname()[1]),
                          "sip:pathy@127.0.0.1", "sip:pathy@127.0.0.1",
                          "Contact: <sip:pathy@127.0.0.1:%d>\r\nPath: %s\r\n"
                          "Supported: path\r\nExpires: 300\r\n" % (dead, path)),
                  (LOOPBACK, srv.port))
        first, hdrs, _ = parse_message(udp_response(ua))
        check(first.startswith("SIP/2.0 200"), "REGISTER with Path: " + first)
        check("127.0.0.1:%d" % pport in (header(hdrs, "Path") or ""),
              "the 200 echoes the Path: %s" % header(hdrs, "Path"))
        check("path" in (header(hdrs, "Supported") or ""), "Supported: path in the 200")

        def next_msg(left):
            proxy.settimeout(max(0.05, left))
            try:
                return proxy.recv(65535)
            except socket.timeout:
                return None
        got = read_messages(next_msg, lambda d: proxy.sendto(d, (LOOPBACK, srv.port)), 2)
        check(len(got) == 2, "both stored messages went to the Path hop: %d" % len(got))
        for m in got:
            first, hdrs, _ = parse_message(m)
            check(":%d" % dead in first, "Request-URI is the Contact: " + first)
            check("127.0.0.1:%d" % pport in (header(hdrs, "Route") or ""),
                  "Route is the Path: %s" % header(hdrs, "Route"))
        proxy.close()
        ua.close()
        stop_clean(srv)
    finally:
        srv.stop()


# ---- outbound --------------------------------------------------------------------

def test_outbound_flow(tmp):
    srv = e2e.Server(tmp)
    dead = unused_port()
    try:
        c = socket.create_connection((LOOPBACK, srv.port), timeout=5)
        lport = c.getsockname()[1]
        stream = e2e.Stream(c)
        c.sendall(request("REGISTER", "sip:127.0.0.1", "%s:%d" % (LOOPBACK, lport),
                          "sip:obby@127.0.0.1", "sip:obby@127.0.0.1",
                          "Supported: outbound, path\r\n"
                          "Contact: <sip:obby@127.0.0.1:%d;transport=tcp;ob>;reg-id=1;"
                          "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000000000001>\"\r\n"
                          "Expires: 300\r\n" % dead, proto="TCP"))
        resp = stream.next(5)
        check(resp is not None and resp.startswith(b"SIP/2.0 200"), "REGISTER: 200")
        hdrs = parse_message(resp)[1]
        check("outbound" in (header(hdrs, "Require") or ""),
              "Require: outbound in the 200: %s" % header(hdrs, "Require"))
        # RFC 5626 4.4.1: a CRLFCRLF ping gets a CRLF pong
        c.sendall(b"\r\n\r\n")
        c.settimeout(3)
        pong = b""
        try:
            pong = c.recv(16)
        except socket.timeout:
            pass
        check(pong.startswith(b"\r\n"), "CRLF pong to the CRLFCRLF ping: %r" % pong)
        # online over the flow, even though the Contact port is dead
        result = {}
        t = threading.Thread(target=lambda: result.update(r=e2e.sip_request(
            srv.port, "MESSAGE", "sip:obby@127.0.0.1", to="sip:obby@127.0.0.1",
            extra="Content-Type: text/plain\r\n", body=b"over the flow")))
        t.start()
        got = read_messages(stream.next, c.sendall, 1)
        t.join(15)
        check(len(got) == 1, "the MESSAGE came over the outbound flow")
        check(result.get("r", (0,))[0] == 200, "and its 200 went back to the sender")
        # the flow dies: the binding cannot be reached, the message is stored at once
        c.close()
        check(wait_until(lambda: "connection closed" in read(srv.log), 5),
              "the server saw the flow go")
        st, _, _ = e2e.sip_request(srv.port, "MESSAGE", "sip:obby@127.0.0.1",
                                   to="sip:obby@127.0.0.1", extra="Content-Type: text/plain\r\n",
                                   body=b"after")
        check(st == 202, "a MESSAGE for the unreachable binding is stored: %d" % st)
        check("unreachable" in read(srv.log), "logged as unreachable")
        stop_clean(srv)
    finally:
        srv.stop()


def test_no_outbound_without_supported(tmp):
    """reg-id counts only with Supported: outbound (RFC 5626 6): no Require."""
    srv = e2e.Server(tmp)
    try:
        st, hdrs, _ = e2e.sip_request(
            srv.port, "REGISTER", "sip:127.0.0.1", to="sip:plain@127.0.0.1",
            frm="sip:plain@127.0.0.1",
            extra="Contact: <sip:plain@127.0.0.1:%d>;reg-id=1;+sip.instance="
                  "\"<urn:uuid:00000000-0000-1000-8000-000000000003>\"\r\nExpires: 60\r\n"
                  % unused_port())
        check(st == 200, "REGISTER: %d" % st)
        check(header(hdrs, "Require") is None, "no Require: %s" % header(hdrs, "Require"))
        check("outbound" in (header(hdrs, "Supported") or ""), "Supported: outbound offered")
        stop_clean(srv)
    finally:
        srv.stop()


def test_flow_kept_open(tmp):
    """tcp_idle_timeout / tcp_message_timeout close idle and slow TCP
    connections (limits.c); a connection that carries a registered flow and
    only sends CRLF keep-alives is kept, while a plain one beside it goes."""
    conf = e2e.write_conf(tmp, "keep.conf", "[server]\ntcp_idle_timeout = 1000\n"
                          "tcp_message_timeout = 500\n")
    srv = e2e.Server(tmp, conf)
    try:
        c = socket.create_connection((LOOPBACK, srv.port), timeout=5)
        lport = c.getsockname()[1]
        stream = e2e.Stream(c)
        c.sendall(request("REGISTER", "sip:127.0.0.1", "%s:%d" % (LOOPBACK, lport),
                          "sip:keepy@127.0.0.1", "sip:keepy@127.0.0.1",
                          "Supported: outbound\r\nContact: <sip:keepy@127.0.0.1:%d;transport=tcp>;reg-id=1;"
                          "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000000000002>\"\r\n"
                          "Expires: 300\r\n" % lport, proto="TCP"))
        resp = stream.next(5)
        check(resp is not None and resp.startswith(b"SIP/2.0 200"), "REGISTER: 200")
        plain = socket.create_connection((LOOPBACK, srv.port), timeout=5)
        plain.settimeout(0.4)
        closed_plain = False
        # pings for ~4 s, one per 0.4 s (the pace is the wait for the plain
        # connection's end): several looks of limits.c
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            c.sendall(b"\r\n\r\n")
            c.settimeout(3)
            pong = c.recv(16)
            check(pong.startswith(b"\r\n"), "pong on the flow: %r" % pong)
            try:
                if plain.recv(16) == b"":
                    closed_plain = True
            except socket.timeout:
                pass
            except OSError:
                closed_plain = True
        check(closed_plain, "the plain idle connection was closed (tcp_idle_timeout)")
        c.sendall(request("OPTIONS", "sip:127.0.0.1", "%s:%d" % (LOOPBACK, lport),
                          "sip:keepy@127.0.0.1", "sip:127.0.0.1", proto="TCP"))
        r = stream.next(5)
        check(r is not None and r.startswith(b"SIP/2.0 200"), "the flow still answers")
        c.close()
        plain.close()
        stop_clean(srv)
    finally:
        srv.stop()


TESTS = [test_received, test_tcp_nat_relay, test_udp_wrong_contact_rport, test_path_followed,
         test_outbound_flow, test_no_outbound_without_supported,
         test_flow_kept_open]


def main():
    global ARGS
    ARGS = e2e.script_args()
    return e2e.run_script(TESTS, ARGS, "msilo-flows-")


if __name__ == "__main__":
    sys.exit(main())
