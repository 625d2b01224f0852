#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The metrics endpoint of msilo-server cannot stall the SIP loop (issue
17), on 127.0.0.1: slow metrics clients that never finish their request do
not delay SIP, at most metrics_max_connections are open, each is shut down
after metrics_timeout, and the figures stay right.

  metrics.py --server build/examples/msilo-server/msilo-server [TEST...]

Exit status: 0 passed, 1 failed.
"""
import os
import re
import socket
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402
from e2e import LOOPBACK, check, wait_until, read  # noqa: E402

ARGS = None


def get_metrics(port):
    with urllib.request.urlopen("http://%s:%d/metrics" % (LOOPBACK, port), timeout=5) as r:
        check(r.status == 200, "GET /metrics -> %d" % r.status)
        return r.read().decode()


def metric(text, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


def closed(sock):
    """Whether the server has closed @sock (reads without blocking long)."""
    sock.settimeout(0.01)
    try:
        return sock.recv(100) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def timed(fn):
    t0 = time.monotonic()
    v = fn()
    return v, time.monotonic() - t0


def test_slow_clients_do_not_stall_sip(tmp):
    """20 metrics clients that send half a request and never the rest: the
    4 beyond metrics_max_connections = 16 are closed at once, an OPTIONS and
    a MESSAGE are answered as fast as without them, the 16 are shut down
    after metrics_timeout; then GET /metrics works and counts the MESSAGE."""
    mport = e2e.free_port()
    conf = e2e.write_conf(tmp, "m.conf", "[server]\nmetrics = %s:%d\nmetrics_max_connections = 16\n"
                          "metrics_timeout = 1500\n" % (LOOPBACK, mport))
    srv = e2e.Server(tmp, conf)
    slow = []
    try:
        (st, _, _), base = timed(lambda: e2e.sip_request(srv.port, "OPTIONS",
                                                         "sip:%s:%d" % (LOOPBACK, srv.port)))
        check(st == 200, "OPTIONS before: %d" % st)
        for _ in range(20):
            c = socket.create_connection((LOOPBACK, mport), timeout=5)
            c.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never the blank line
            slow.append(c)
        check(wait_until(lambda: sum(closed(c) for c in slow) >= 4, 3),
              "the 4 beyond metrics_max_connections are closed at once")
        check(sum(closed(c) for c in slow) == 4, "and only those 4 (16 kept)")
        (st, _, _), t_opt = timed(lambda: e2e.sip_request(srv.port, "OPTIONS",
                                                          "sip:%s:%d" % (LOOPBACK, srv.port)))
        check(st == 200, "OPTIONS with 20 slow metrics clients: %d" % st)
        (st, _, _), t_msg = timed(lambda: e2e.sip_request(
            srv.port, "MESSAGE", "sip:mia@%s" % LOOPBACK, "udp", "Content-Type: text/plain\r\n",
            b"hello", to="sip:mia@%s" % LOOPBACK))
        check(st == 202, "MESSAGE with 20 slow metrics clients: %d" % st)
        print("  SIP answers: OPTIONS %.1f ms before, %.1f ms and MESSAGE %.1f ms with 20 slow "
              "metrics clients" % (base * 1e3, t_opt * 1e3, t_msg * 1e3))
        check(t_opt < 1.0 and t_msg < 1.0, "not delayed: %.3f s, %.3f s" % (t_opt, t_msg))
        check(wait_until(lambda: all(closed(c) for c in slow), 6),
              "the slow ones are shut down after metrics_timeout")
        text = get_metrics(mport)
        check(metric(text, "msilo_server_messages_total") == 1, "one MESSAGE counted: %s"
              % metric(text, "msilo_server_messages_total"))
        check(metric(text, "msilo_stored_messages_total") == 1, "one stored: %s"
              % metric(text, "msilo_stored_messages_total"))
        check("metrics_max_connections" in read(srv.log), "the refusals are logged")
    finally:
        for c in slow:
            c.close()
        srv.stop()


def test_fresh_figures(tmp):
    """Each GET sees what happened just before it (the SIP loop publishes a
    snapshot on request), 20 GETs in a row while MESSAGEs are stored."""
    mport = e2e.free_port()
    conf = e2e.write_conf(tmp, "f.conf", "[server]\nmetrics = %s:%d\n" % (LOOPBACK, mport))
    srv = e2e.Server(tmp, conf)
    try:
        for i in range(1, 21):
            st, _, _ = e2e.sip_request(srv.port, "MESSAGE", "sip:u%d@%s" % (i, LOOPBACK), "udp",
                                       "Content-Type: text/plain\r\n", b"m",
                                       to="sip:u%d@%s" % (i, LOOPBACK))
            check(st == 202, "stored: %d" % st)
            n = metric(get_metrics(mport), "msilo_stored_messages_total")
            check(n == i, "GET after %d stores says %s" % (i, n))
    finally:
        srv.stop()


TESTS = [test_slow_clients_do_not_stall_sip, test_fresh_figures]


def main():
    global ARGS
    ARGS = e2e.script_args()
    return e2e.run_script(TESTS, ARGS, "msilo-metrics-")


if __name__ == "__main__":
    sys.exit(main())
