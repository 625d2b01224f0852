#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What closing many TCP connections at once costs msilo-server (issue 17).

For each N: a fresh msilo-server on 127.0.0.1, N TCP connections that each
send one OPTIONS and read its 200, then all N closed at once; measured: the
time until a NEW TCP connection's OPTIONS is answered, and the server's CPU
time over the close. A benchmark (figures are printed), not a test.

  bench/tcp-close/run.py --server build/examples/msilo-server/msilo-server [N...]
  (default N: 1000 2000 3000 5000; the server's fd limit is raised to N + 200)

MSILO_SERVER_GLIB_ROOT=1 in the environment makes the server use Sofia's
GSource port (the old behaviour) for a comparison.

Measured (2 cores, loopback), answer time of the new request after the close:
  epoll port (now):  N=1000 0.048 s, 2000 0.070 s, 3000 0.176 s, 5000 0.238 s,
                     10000 0.500 s (server CPU about the same)
  GSource port:      N=1000 2.3 s, 2000 20.6 s (issue 17: 3000 63 s, 5000 ~300 s)
"""
import argparse
import os
import resource
import socket
import subprocess
import sys
import time

LOOPBACK = "127.0.0.1"


def free_port():
    s = socket.socket()
    s.bind((LOOPBACK, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def options(port, i):
    return ("OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/TCP %s:9;branch=z9hG4bK-tc-%d\r\n"
            "From: <sip:b@%s>;tag=t%d\r\nTo: <sip:%s>\r\nCall-ID: tc-%d@x\r\nCSeq: 1 OPTIONS\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            % (LOOPBACK, port, LOOPBACK, i, LOOPBACK, i, LOOPBACK, i)).encode()


def ask(port, i, timeout):
    c = socket.create_connection((LOOPBACK, port), timeout=timeout)
    c.sendall(options(port, i))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    return c, data.startswith(b"SIP/2.0 200")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one(server, n, extra):
    port = free_port()
    need = n + 300
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    log = open("/tmp/msilo-tcp-close-%d.log" % port, "w")
    conf = "/tmp/msilo-tcp-close-%d.conf" % port
    with open(conf, "w") as f:
        f.write("[server]\ntcp_max_connections = %d\n" % (n + 100))
    cmd = [server, "-l", "sip:%s:%d" % (LOOPBACK, port), "-c", conf] + extra
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                               (min(need, hard), hard)))
    try:
        for _ in range(200):
            try:
                socket.create_connection((LOOPBACK, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        conns = []
        for i in range(n):
            c, ok = ask(port, i, 30)
            if not ok:
                raise SystemExit("connection %d: no 200" % i)
            conns.append(c)
        cpu0 = cpu_seconds(p.pid)
        t0 = time.monotonic()
        for c in conns:
            c.close()
        c, ok = ask(port, n + 1, 900)
        wait = time.monotonic() - t0
        c.close()
        # the server may still be closing after answering: wait for its CPU to settle
        last = cpu_seconds(p.pid)
        while True:
            time.sleep(0.2)
            now = cpu_seconds(p.pid)
            if now - last < 0.01:
                break
            last = now
        print("N=%5d  new TCP OPTIONS answered %.3f s after the close (%s), server CPU %.2f s"
              % (n, wait, "200" if ok else "no 200", last - cpu0), flush=True)
    finally:
        p.terminate()
        p.wait(10)
        log.close()
        os.unlink(conf)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("counts", nargs="*", type=int, default=[1000, 2000, 3000, 5000])
    a = ap.parse_args()
    for n in a.counts:
        one(a.server, n, [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
