#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""End-to-end tests of msilo-server on 127.0.0.1 (Python 3 stdlib + sipp).

Every test starts its own msilo-server on free ports, talks SIP to it (raw
sockets, a small Python UAS, sipp), and stops everything it started, by pid,
whatever happens. Nothing is sent to any address but 127.0.0.1.

  e2e.py --server build/examples/msilo-server/msilo-server \
         --sample examples/msilo-server/msilo-server.conf [--sipp /usr/bin/sipp] [TEST...]

Exit status: 0 all passed, 1 a test failed, 77 nothing could run.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
LOOPBACK = "127.0.0.1"
ARGS = None
PROCS = []  # every process started, for the final cleanup


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def wait_until(cond, timeout, step=0.02):
    """Polls cond() until true or timeout seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)  # the one polling interval of these tests


def wait_quiet(fn, quiet=0.5, timeout=10):
    """Waits until fn() has not changed for `quiet` seconds (a UA's log after
    the last delivery: a duplicate or a loop would change it); bounded by
    `timeout`. True when it settled."""
    state = {"last": fn(), "since": time.monotonic()}

    def settled():
        now = fn()
        if now != state["last"]:
            state["last"], state["since"] = now, time.monotonic()
            return False
        return time.monotonic() - state["since"] >= quiet
    return wait_until(settled, timeout, 0.02)


def udp_port_bound(port):
    """True while some process has 127.0.0.1:port bound for UDP."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((LOOPBACK, port))
        return False
    except OSError:
        return True
    finally:
        sock.close()


# ---- processes ------------------------------------------------------------

def start(cmd, log_path, **kw):
    log = open(log_path, "wb")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         **kw)
    p.log_path = log_path
    p.log_file = log
    PROCS.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10):
    """Stops one process we started (by its pid); returns its exit status."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    p.log_file.close()
    if p in PROCS:
        PROCS.remove(p)
    return p.returncode


def stop_all():
    for p in list(PROCS):
        stop(p, signal.SIGKILL if p.poll() is None else signal.SIGTERM, 5)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def free_port():
    """A port free on 127.0.0.1 for both UDP and TCP."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind((LOOPBACK, 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((LOOPBACK, port))
        except OSError:
            continue
        finally:
            u.close()
            t.close()
        if port != 5060:
            return port
    raise Failure("no free port")


class Server:
    """One msilo-server on a free port with a fresh memory store."""

    def __init__(self, tmp, conf=None, extra=(), port=None):
        self.port = port or free_port()
        self.log = os.path.join(tmp, "server-%d.log" % self.port)
        cmd = [ARGS.server, "-l", "sip:%s:%d" % (LOOPBACK, self.port), "--forward-timeout", "1500"]
        if conf:
            cmd += ["-c", conf]
        cmd += list(extra)
        env = dict(os.environ, G_MESSAGES_DEBUG="msilo-server")
        # under ASan: known leaks of Sofia-SIP itself (see lsan.supp)
        supp = "suppressions=" + os.path.join(HERE, "lsan.supp")
        env["LSAN_OPTIONS"] = supp + (":" + env["LSAN_OPTIONS"] if env.get("LSAN_OPTIONS") else "")
        self.proc = start(cmd, self.log, env=env)
        if not wait_until(lambda: "listening on" in read(self.log) or self.proc.poll() is not None, 10):
            raise Failure("server did not start")
        check(self.proc.poll() is None, "server exited at start: " + read(self.log))

    def stop(self):
        rc = stop(self.proc)
        return rc, read(self.log)


# ---- a small SIP client / UAS ----------------------------------------------

def parse_message(data):
    """(first line, [(name, value)], body) of one SIP message."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    hdrs = []
    for l in lines[1:]:
        if ":" in l:
            n, v = l.split(":", 1)
            hdrs.append((n.strip(), v.strip()))
    return lines[0], hdrs, body


def header(hdrs, name):
    for n, v in hdrs:
        if n.lower() == name.lower():
            return v
    return None


def headers_all(hdrs, name):
    return [v for n, v in hdrs if n.lower() == name.lower()]


class Stream:
    """Splits a TCP byte stream into SIP messages."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def next(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", self.buf[:i])
                n = int(m.group(1)) if m else 0
                if len(self.buf) >= i + 4 + n:
                    msg, self.buf = self.buf[:i + 4 + n], self.buf[i + 4 + n:]
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not d:
                return None
            self.buf += d


def sip_exchange(port, proto, make, timeout):
    """Sends make(local port) to 127.0.0.1:port from a fresh UDP socket or TCP
    connection and reads the answers until a final response. Returns (status,
    reason phrase, headers, body), or None when none came within `timeout`
    seconds or the TCP connection broke first; failing to connect or to send
    raises OSError."""
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((LOOPBACK, 0))
    else:
        s = socket.create_connection((LOOPBACK, port), timeout=5)
    try:
        data = make(s.getsockname()[1])
        if proto == "udp":
            s.sendto(data, (LOOPBACK, port))
        else:
            s.sendall(data)
        stream = Stream(s)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proto == "udp":
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    msg = s.recv(65536)
                except socket.timeout:
                    break
            else:
                try:
                    msg = stream.next(deadline - time.monotonic())
                except OSError:
                    break
                if msg is None:
                    break
            first, hdrs, body = parse_message(msg)
            m = re.match(r"SIP/2.0 (\d{3}) ?(.*)", first)
            if m and int(m.group(1)) >= 200:
                return int(m.group(1)), m.group(2), hdrs, body
        return None
    finally:
        s.close()


_seq = [0]


def sip_request(port, method, ruri, proto="udp", extra="", body=b"", max_forwards=70,
                to="sip:bob@127.0.0.1", frm="sip:alice@127.0.0.1", timeout=8):
    """Sends one request; returns (status, headers, body) of its final response."""
    _seq[0] += 1
    n = _seq[0]

    def make(lport):
        return ("%s %s SIP/2.0\r\n"
                "Via: SIP/2.0/%s %s:%d;branch=z9hG4bK-e2e-%d-%d;rport\r\n"
                "From: <%s>;tag=e2e%d\r\n"
                "To: <%s>\r\n"
                "Call-ID: e2e-%d-%d@127.0.0.1\r\n"
                "CSeq: %d %s\r\n"
                "Max-Forwards: %d\r\n"
                "%s"
                "Content-Length: %d\r\n\r\n" % (
                    method, ruri, proto.upper(), LOOPBACK, lport, os.getpid(), n, frm, n, to,
                    os.getpid(), n, n, method, max_forwards, extra, len(body))).encode() + body
    r = sip_exchange(port, proto, make, timeout)
    if r is None:
        raise Failure("no final response to %s %s over %s" % (method, ruri, proto))
    status, _, hdrs, rbody = r
    return status, hdrs, rbody


class Uas:
    """A UAS on a free port (UDP and TCP) that answers MESSAGE with `status`
    (None = never answers) and records every request."""

    def __init__(self, status=200):
        self.status = status
        self.requests = []  # (first line, headers, body)
        self.lock = threading.Lock()
        self.stopped = False
        while True:
            self.port = free_port()
            try:
                self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.udp.bind((LOOPBACK, self.port))
                self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self.tcp.bind((LOOPBACK, self.port))
                self.tcp.listen(16)
                break
            except OSError:
                continue
        self.udp.settimeout(0.1)
        self.tcp.settimeout(0.1)
        self.threads = [threading.Thread(target=self._udp, daemon=True),
                        threading.Thread(target=self._tcp, daemon=True)]
        for t in self.threads:
            t.start()

    def _answer(self, data, send):
        first, hdrs, body = parse_message(data)
        if first.startswith("SIP/2.0"):
            return
        method = first.split(" ", 1)[0]
        with self.lock:
            # a retransmission (same branch) is not a new request
            via = header(hdrs, "Via")
            if not any(header(h, "Via") == via for _, h, _ in self.requests):
                self.requests.append((first, hdrs, body))
        status = self.status if method == "MESSAGE" else 200
        if status is None:
            return
        resp = "SIP/2.0 %d Answer\r\n" % status
        for n, v in hdrs:
            if n.lower() in ("via", "v", "from", "f", "call-id", "i", "cseq"):
                resp += "%s: %s\r\n" % (n, v)
            elif n.lower() in ("to", "t"):
                resp += "%s: %s%s\r\n" % (n, v, "" if "tag=" in v else ";tag=uas%d" % self.port)
        resp += "Content-Length: 0\r\n\r\n"
        send(resp.encode())

    def _udp(self):
        while not self.stopped:
            try:
                data, addr = self.udp.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            # answer to the Via's rport/received would be proper; the server
            # listens where it sends from, so the source address is right.
            self._answer(data, lambda b, a=addr: self.udp.sendto(b, a))

    def _tcp_conn(self, c):
        st = Stream(c)
        while not self.stopped:
            msg = st.next(0.2)
            if msg is None:
                if st.sock.fileno() < 0:
                    return
                try:
                    c.settimeout(0)
                    if c.recv(1, socket.MSG_PEEK) == b"":
                        return
                except (BlockingIOError, socket.timeout):
                    pass
                except OSError:
                    return
                continue
            self._answer(msg, c.sendall)

    def _tcp(self):
        while not self.stopped:
            try:
                c, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._tcp_conn, args=(c,), daemon=True).start()

    def messages(self):
        with self.lock:
            return [r for r in self.requests if r[0].startswith("MESSAGE")]

    def close(self):
        self.stopped = True
        for t in self.threads:
            t.join(2)
        self.udp.close()
        self.tcp.close()


# ---- tests -------------------------------------------------------------------

def run(cmd, timeout=30):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def test_cli(tmp):
    r = run([ARGS.server, "--version"])
    check(r.returncode == 0 and r.stdout.startswith(b"msilo-server "), "--version")
    r = run([ARGS.server, "--help"])
    for opt in (b"--config", b"--listen", b"--store", b"--db-url", b"--version"):
        check(opt in r.stdout, "--help lists %s" % opt.decode())
    check(run([ARGS.server, "--no-such-option"]).returncode == 1, "bad option exits 1")
    r = run([ARGS.server, "-c", ARGS.sample, "--check-config"])
    check(r.returncode == 0, "sample configuration is valid: %s" % r.stdout)
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("[msilo]\n# comment\nexpire_time = 10\nno_such_key = 1\n")
    r = run([ARGS.server, "-c", bad, "--check-config"])
    check(r.returncode == 1 and b":4:" in r.stdout and b"no_such_key" in r.stdout,
          "unknown key names line and key: %s" % r.stdout)
    with open(bad, "w") as f:
        f.write("[msilo]\nexpire_time = soon\n")
    r = run([ARGS.server, "-c", bad, "--check-config"])
    check(r.returncode == 1 and b":2:" in r.stdout and b"expire_time" in r.stdout,
          "bad value names line and key: %s" % r.stdout)
    r = run([ARGS.server, "--store", "nosuch", "--check-config"])
    check(r.returncode == 1, "unknown store refused")


def test_sample_lists_every_key(tmp):
    printed = run([ARGS.server, "--print-config"]).stdout.decode()
    keys = re.findall(r"(?m)^#([a-z_]+) = ", printed)
    check(len(keys) > 20, "--print-config lists the keys")
    sample = read(ARGS.sample)
    missing = [k for k in keys if not re.search(r"(?m)^#?%s = " % re.escape(k), sample)]
    check(not missing, "sample configuration lacks %s" % missing)


def test_basic_methods(tmp):
    srv = Server(tmp)
    try:
        for proto in ("udp", "tcp"):
            ruri = "sip:%s:%d" % (LOOPBACK, srv.port)
            st, h, _ = sip_request(srv.port, "OPTIONS", ruri, proto)
            check(st == 200, "OPTIONS/%s -> %d" % (proto, st))
            check("MESSAGE" in (header(h, "Allow") or ""), "OPTIONS has Allow")
            # SUBSCRIBE is message-summary's (mwi.py): without an Event, 489
            st, h, _ = sip_request(srv.port, "SUBSCRIBE", ruri, proto)
            check(st == 489, "SUBSCRIBE/%s -> %d" % (proto, st))
            st, h, _ = sip_request(srv.port, "FOO", ruri, proto)
            check(st == 405, "FOO/%s -> %d" % (proto, st))
            check("REGISTER" in (header(h, "Allow") or ""), "405 has Allow")
            st, _, _ = sip_request(srv.port, "MESSAGE", "sip:bob@%s:%d" % (LOOPBACK, srv.port),
                                   proto, "Content-Type: text/plain\r\n", b"hop", max_forwards=0)
            check(st == 483, "MESSAGE Max-Forwards 0/%s -> %d" % (proto, st))
    finally:
        rc, log = srv.stop()
    check(rc == 0, "server exit status %s" % rc)
    check("statistics:" in log, "statistics printed at shutdown")


def test_registrar(tmp):
    srv = Server(tmp)
    try:
        ruri = "sip:%s:%d" % (LOOPBACK, srv.port)
        to = "sip:carol@127.0.0.1"
        st, h, _ = sip_request(srv.port, "REGISTER", ruri, to=to, frm=to,
                               extra="Contact: <sip:carol@127.0.0.1:9>;expires=60, "
                                     "<sip:carol@127.0.0.1:10>\r\nExpires: 300\r\n")
        check(st == 200, "REGISTER -> %d" % st)
        contacts = ",".join(headers_all(h, "Contact"))
        check("127.0.0.1:9" in contacts and "127.0.0.1:10" in contacts, "200 lists both: %s" % contacts)
        check(re.search(r"127.0.0.1:9>;expires=(59|60)", contacts), "per-contact expires: %s" % contacts)
        st, h, _ = sip_request(srv.port, "REGISTER", ruri, "tcp", to=to, frm=to)
        contacts = ",".join(headers_all(h, "Contact"))
        check(st == 200 and "127.0.0.1:9" in contacts and "127.0.0.1:10" in contacts,
              "query REGISTER lists the bindings: %s" % contacts)
        st, _, _ = sip_request(srv.port, "REGISTER", ruri, to=to, frm=to,
                               extra="Contact: *\r\nExpires: 300\r\n")
        check(st == 400, "* needs Expires 0 -> %d" % st)
        st, h, _ = sip_request(srv.port, "REGISTER", ruri, to=to, frm=to,
                               extra="Contact: *\r\nExpires: 0\r\n")
        check(st == 200 and not headers_all(h, "Contact"), "* Expires 0 removes all")
        st, h, _ = sip_request(srv.port, "REGISTER", ruri, to=to, frm=to)
        check(st == 200 and not headers_all(h, "Contact"), "nothing left")
    finally:
        srv.stop()


def sipp(args, log, timeout):
    cmd = [ARGS.sipp] + args + ["-trace_err", "-error_file", log + ".err",
                                "-trace_screen", "-screen_file", log + ".screen"]
    p = start(cmd, log, cwd=os.path.dirname(log))
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        stop(p, signal.SIGKILL)
        raise Failure("sipp timed out: %s" % " ".join(cmd))
    rc = stop(p)
    return rc


class Skip(Exception):
    pass


def pg_args(tmp, table):
    """Server arguments for the PostgreSQL store on the private test cluster
    (scripts/pg-test-cluster run -- ...), one table per test."""
    url = os.environ.get("MSILO_TEST_PG_URL")
    if not url:
        if os.environ.get("MSILO_REQUIRE_PG") == "1":
            raise Failure("MSILO_TEST_PG_URL is not set but MSILO_REQUIRE_PG=1")
        raise Skip("MSILO_TEST_PG_URL not set (scripts/pg-test-cluster run -- ...)")
    table = "e2e_%s_%d" % (table, os.getpid())
    conf = write_conf(tmp, table + ".conf", "[msilo]\ndb_table = %s\n" % table)
    return conf, ["--store", "postgres", "--db-url", url, "--migrate"]


def store_dump(tmp, proto, n_users=100, per_user=10, pg=False):
    """sipp stores N messages for U offline users (202 each), then a sipp UAS
    on the contact port receives every one of them exactly once, in storage
    order per user, after the users REGISTER."""
    n = n_users * per_user
    t = "u1" if proto == "udp" else "t1"
    csv = os.path.join(tmp, "users-%s.csv" % proto)
    with open(csv, "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(n):
            f.write("e2e%s%03d;%s;\n" % (proto, i % n_users, proto))
    reg_csv = os.path.join(tmp, "reg-%s.csv" % proto)
    with open(reg_csv, "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(n_users):
            f.write("e2e%s%03d;%s;\n" % (proto, i, proto))
    if pg:
        conf, extra = pg_args(tmp, "dump_" + proto)
        srv = Server(tmp, conf, extra)
    else:
        srv = Server(tmp)
    uas_log = os.path.join(tmp, "uas-%s.log" % proto)
    uas = None
    try:
        remote = "%s:%d" % (LOOPBACK, srv.port)
        common = ["-i", LOOPBACK, "-t", t]
        rc = sipp([remote, "-sf", os.path.join(HERE, "store_uac.xml"), "-inf", csv, "-m", str(n),
                   "-l", "8", "-r", "500", "-p", str(free_port()), "-mp", str(free_port()),
                   "-timeout", "30s", "-timeout_error", "-max_retrans", "5"] + common,
                  os.path.join(tmp, "store-%s.log" % proto), 60)
        check(rc == 0, "sipp STORE/%s: every MESSAGE got 202 (rc %d)" % (proto, rc))
        contact_port = free_port()
        uas = start([ARGS.sipp, "-sf", os.path.join(HERE, "dump_uas.xml"), "-p", str(contact_port),
                     "-mp", str(free_port()), "-trace_logs", "-log_file", uas_log,
                     "-trace_err", "-error_file", uas_log + ".err"] + common,
                    os.path.join(tmp, "uas-%s.out" % proto), cwd=tmp)
        # the UAS is up when its port is taken
        if proto == "tcp":
            wait_until(lambda: _tcp_open(contact_port), 5)
        else:
            wait_until(lambda: udp_port_bound(contact_port), 5)
        rc = sipp([remote, "-sf", os.path.join(HERE, "register_uac.xml"), "-inf", reg_csv,
                   "-m", str(n_users), "-l", "4", "-r", "200", "-p", str(free_port()),
                   "-mp", str(free_port()),
                   "-key", "contact_port", str(contact_port), "-timeout", "30s",
                   "-timeout_error"] + common,
                  os.path.join(tmp, "reg-%s.log" % proto), 60)
        check(rc == 0, "sipp REGISTER/%s: every REGISTER got 200 (rc %d)" % (proto, rc))

        def lines():
            # "MSG <date> <time> <epoch> <msgid> <Call-ID> <user>" ([timestamp] is three fields)
            return [l.split("\t") for l in read(uas_log).splitlines()
                    if l.startswith("MSG\t") and len(l.split("\t")) > 6]

        def got():
            return [f[4] for f in lines()]
        wait_until(lambda: len(got()) >= n, 60, 0.1)
        check(wait_quiet(lambda: len(got())), "DUMP/%s: the UAS log settles" % proto)
        ids = got()
        missing = sorted(set(str(i) for i in range(1, n + 1)) - set(ids), key=int)
        dups = sorted({i for i in ids if ids.count(i) > 1}, key=int)
        check(not missing, "DUMP/%s: %d of %d arrived, missing %s" % (proto, len(set(ids)), n, missing[:10]))
        check(not dups, "DUMP/%s: delivered twice: %s" % (proto, dups[:10]))
        check(len(ids) == n, "DUMP/%s: %d deliveries for %d messages" % (proto, len(ids), n))
        # storage order per user (user k got msgids k+1, k+1+U, ... in that order)
        per = {}
        for f in lines():
            per.setdefault(f[6], []).append(int(f[4]))
        check(len(per) == n_users, "DUMP/%s: %d users got messages" % (proto, len(per)))
        disorder = [u for u, l in per.items() if l != sorted(l)]
        check(not disorder, "DUMP/%s: out of order for %s" % (proto, disorder[:5]))
        # every delivery was acknowledged: the server reports them dumped
        def all_dumped():
            os.kill(srv.proc.pid, signal.SIGUSR1)  # statistics now
            return re.search(r"dumped_messages=%d\b" % n, read(srv.log))
        check(wait_until(all_dumped, 5, 0.2), "statistics say %d dumped" % n)
    finally:
        if uas:
            stop(uas, signal.SIGKILL)
        rc, log = srv.stop()
    check(rc == 0, "server exit status %s" % rc)
    m = re.findall(r"stored_messages=(\d+) dumped_messages=(\d+)", log)
    check(m and m[-1] == (str(n), str(n)), "final statistics %r" % ((m[-1] if m else None),))


def _tcp_open(port):
    try:
        socket.create_connection((LOOPBACK, port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_store_dump_udp(tmp):
    store_dump(tmp, "udp")


def test_store_dump_tcp(tmp):
    store_dump(tmp, "tcp")


def test_pg_store_dump_udp(tmp):
    store_dump(tmp, "udp", 20, 10, pg=True)


def test_pg_store_dump_tcp(tmp):
    store_dump(tmp, "tcp", 20, 10, pg=True)


def test_pg_restart(tmp):
    """Messages stored by one server are delivered by the next one on the
    same table: the store outlives the process (SIGTERM loses nothing)."""
    conf, extra = pg_args(tmp, "restart")
    restart_keeps_messages(tmp, conf, extra)


def test_sqlite_restart(tmp):
    """The same with the SQLite store: a file survives the process."""
    db = os.path.join(tmp, "silo-%d.db" % os.getpid())
    restart_keeps_messages(tmp, None, ["--store", "sqlite", "--db-url", "sqlite://" + db])
    check(os.path.getsize(db) > 0, "the database file exists")


def test_metrics(tmp):
    """[server] metrics serves the statistics in the Prometheus text format
    (libsoup) on loopback; a non-loopback address is refused at start."""
    import urllib.request
    mport = free_port()
    conf = write_conf(tmp, "metrics.conf", "[server]\nmetrics = 127.0.0.1:%d\n" % mport)
    srv = Server(tmp, conf)
    try:
        for i in range(3):
            st, _, _ = sip_request(srv.port, "MESSAGE", "sip:mia@127.0.0.1:%d" % srv.port, "udp",
                                   "Content-Type: text/plain\r\n", b"m%d" % i, to="sip:mia@127.0.0.1")
            check(st == 202, "stored (%d)" % st)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5) as r:
            check(r.status == 200, "GET /metrics -> %d" % r.status)
            check(r.headers.get("Content-Type", "").startswith("text/plain"), "text format")
            text = r.read().decode()
        for name in ("stored_messages_total", "dumped_messages_total", "failed_messages_total",
                     "dumped_reminders_total", "failed_reminders_total", "queued_messages",
                     "deliveries_in_flight", "delivery_latency_seconds_count"):
            check(("msilo_" + name) in text, "metric msilo_%s exported" % name)
        check(re.search(r"^msilo_stored_messages_total 3$", text, re.M), "3 stored: " + text[:300])
        check("# TYPE msilo_queued_messages gauge" in text, "gauges typed")
    finally:
        srv.stop()
    bad = write_conf(tmp, "metrics-bad.conf", "[server]\nmetrics = 192.0.2.1:9464\n")
    p = subprocess.run([ARGS.server, "-l", "sip:127.0.0.1:%d" % free_port(), "-c", bad],
                       capture_output=True, text=True, timeout=10)
    check(p.returncode != 0 and "loopback" in p.stderr, "non-loopback metrics refused: %r" % p.stderr)


def restart_keeps_messages(tmp, conf, extra):
    srv = Server(tmp, conf, extra)
    bodies = [b"persistent %d" % i for i in range(5)]
    try:
        for b in bodies:
            st, _, _ = sip_request(srv.port, "MESSAGE", "sip:lena@127.0.0.1:%d" % srv.port, "udp",
                                   "Content-Type: text/plain\r\n", b, to="sip:lena@127.0.0.1")
            check(st == 202, "stored (%d)" % st)
    finally:
        rc, _ = srv.stop()
    check(rc == 0, "first server stopped cleanly (%s)" % rc)
    srv = Server(tmp, conf, extra)
    uas = Uas(200)
    try:
        register(srv, "lena", "sip:lena@127.0.0.1:%d" % uas.port)
        check(wait_until(lambda: len(uas.messages()) >= 5, 10), "all delivered after the restart")
        check(wait_quiet(lambda: len(uas.messages())), "no more deliveries (duplicates)")
        got = [m[2].split(b"] ", 1)[-1] for m in uas.messages()]
        check(got == bodies, "each once, in order: %r" % got)
    finally:
        uas.close()
        srv.stop()


def register(srv, user, contact, proto="udp", expires=300):
    to = "sip:%s@127.0.0.1" % user
    st, _, _ = sip_request(srv.port, "REGISTER", "sip:%s:%d" % (LOOPBACK, srv.port), proto,
                           "Contact: <%s>\r\nExpires: %d\r\n" % (contact, expires), to=to, frm=to)
    check(st == 200, "REGISTER %s -> %d" % (user, st))


def test_online_forward(tmp):
    """Registered user: 2xx relayed; failure or silence -> stored + 202 and
    delivered at the next REGISTER."""
    srv = Server(tmp)
    uas = Uas(200)
    try:
        for proto in ("udp", "tcp"):
            user = "dave" + proto
            contact = "sip:%s@127.0.0.1:%d;transport=%s" % (user, uas.port, proto)
            register(srv, user, contact, proto)
            ruri = "sip:%s@127.0.0.1:%d" % (user, srv.port)
            before = len(uas.messages())
            # pre-loaded Route to the server itself (a UA with an outbound proxy)
            st, _, _ = sip_request(srv.port, "MESSAGE", ruri, proto,
                                   "Route: <sip:127.0.0.1:%d;lr>\r\n"
                                   "Content-Type: text/plain\r\n" % srv.port,
                                   b"online " + proto.encode(), to="sip:%s@127.0.0.1" % user)
            check(st == 200, "online MESSAGE/%s relayed 200, got %d" % (proto, st))
            msgs = uas.messages()
            check(len(msgs) == before + 1 and msgs[-1][2] == b"online " + proto.encode(),
                  "forwarded body arrives")
            check(msgs[-1][0].startswith("MESSAGE %s " % contact),
                  "R-URI is the contact: %s" % msgs[-1][0])

            uas.status = 486  # the UA refuses: failure_route stores it
            st, _, _ = sip_request(srv.port, "MESSAGE", ruri, proto, "Content-Type: text/plain\r\n",
                                   b"refused " + proto.encode(), to="sip:%s@127.0.0.1" % user)
            check(st == 202, "refused MESSAGE/%s stored, got %d" % (proto, st))
            uas.status = None  # silence: stored after the forward timeout
            t0 = time.monotonic()
            st, _, _ = sip_request(srv.port, "MESSAGE", ruri, proto, "Content-Type: text/plain\r\n",
                                   b"silent " + proto.encode(), to="sip:%s@127.0.0.1" % user)
            check(st == 202 and time.monotonic() - t0 < 5, "silent UA/%s: 202 after the guard" % proto)
            uas.status = 200
            register(srv, user, contact, proto)  # the dump delivers both
            want = {b"refused " + proto.encode(), b"silent " + proto.encode()}
            # only the dumped copies count (they carry the date prefix): the
            # UA saw the refused and the silent forward already, and counting
            # those let the next round start before the dump had arrived
            def dumped():
                return {m[2].split(b"] ", 1)[-1] for m in uas.messages()
                        if m[2].startswith(b"[Offline message - ")}
            check(wait_until(lambda: want <= dumped(), 15, 0.05),
                  "stored messages delivered after REGISTER/%s" % proto)
    finally:
        uas.close()
        srv.stop()


def test_binary_body_tcp(tmp):
    """A body over 1300 bytes with NUL and non-UTF-8 bytes, stored over TCP,
    arrives byte-exact (no date prefix: not text/plain), with Date and the
    extra header re-sent."""
    srv = Server(tmp)
    uas = Uas(200)
    try:
        body = bytes((i * 7 + 3) % 256 for i in range(3000)) + b"\x00\xff\xfe"
        user = "erin"
        st, _, _ = sip_request(srv.port, "MESSAGE", "sip:%s@127.0.0.1:%d" % (user, srv.port), "tcp",
                               "Content-Type: application/octet-stream\r\n"
                               "P-Asserted-Identity: <sip:alice@127.0.0.1>\r\n", body,
                               to="sip:%s@127.0.0.1" % user)
        check(st == 202, "binary MESSAGE stored, got %d" % st)
        register(srv, user, "sip:%s@127.0.0.1:%d;transport=tcp" % (user, uas.port), "tcp")
        check(wait_until(lambda: uas.messages(), 10), "delivered")
        first, hdrs, got = uas.messages()[0]
        check(got == body, "body byte-exact (%d vs %d bytes)" % (len(got), len(body)))
        check(header(hdrs, "Content-Type") == "application/octet-stream", "Content-Type kept")
        check(header(hdrs, "Date"), "Date header added")
        check("alice" in (header(hdrs, "P-Asserted-Identity") or ""), "extra header re-sent")
        check((header(hdrs, "From") or "").find("sip:alice@127.0.0.1") >= 0, "From is the sender")
    finally:
        uas.close()
        srv.stop()


def test_configured_server(tmp):
    """-c with the sample's 1.6.1 keys; max_messages gives 486 + Warning."""
    conf = os.path.join(tmp, "server.conf")
    with open(conf, "w") as f:
        f.write("[server]\ndomains = 127.0.0.1, example.org\n"
                "[msilo]\nmax_messages = 2\nadd_date = 0\n"
                "contact_hdr = Contact: <sip:registrar@127.0.0.1>\\r\\n\n"
                "content_type_hdr = Content-Type: text/plain\\r\\n\n")
    srv = Server(tmp, conf)
    try:
        ruri = "sip:frank@127.0.0.1:%d" % srv.port
        for i in range(2):
            st, _, _ = sip_request(srv.port, "MESSAGE", ruri, "udp", "Content-Type: text/plain\r\n",
                                   b"m%d" % i, to="sip:frank@127.0.0.1")
            check(st == 202, "message %d stored (%d)" % (i, st))
        st, h, _ = sip_request(srv.port, "MESSAGE", ruri, "udp", "Content-Type: text/plain\r\n",
                               b"m3", to="sip:frank@127.0.0.1")
        check(st == 486, "mailbox full -> 486, got %d" % st)
        check("full" in (header(h, "Warning") or "").lower(), "Warning says full")
        st, _, _ = sip_request(srv.port, "MESSAGE", "sip:frank@elsewhere.test", "udp",
                               "Content-Type: text/plain\r\n", b"x", to="sip:frank@elsewhere.test")
        check(st == 404, "other domain refused, got %d" % st)
        st, _, _ = sip_request(srv.port, "MESSAGE", "sip:frank@example.org", "udp",
                               "Content-Type: text/plain\r\n", b"x", to="sip:frank@example.org")
        check(st == 202, "listed domain served, got %d" % st)
    finally:
        srv.stop()


def write_conf(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_retry_after_failure(tmp):
    """A delivery refused (486) or unreachable (closed port) is kept and
    retried while the user stays registered (check_time 1 s)."""
    conf = write_conf(tmp, "retry.conf", "[msilo]\ncheck_time = 1\nadd_date = 0\n")
    srv = Server(tmp, conf)
    uas = Uas(486)
    try:
        for user, body in (("gina", b"retry me"), ("ivan", b"unreachable")):
            st, _, _ = sip_request(srv.port, "MESSAGE", "sip:%s@127.0.0.1:%d" % (user, srv.port),
                                   "udp", "Content-Type: text/plain\r\n", body,
                                   to="sip:%s@127.0.0.1" % user)
            check(st == 202, "stored (%d)" % st)
        # gina's UA says 486 first, then accepts
        register(srv, "gina", "sip:gina@127.0.0.1:%d" % uas.port)
        check(wait_until(lambda: len(uas.messages()) >= 1, 5), "first attempt reached the UA")
        uas.status = 200
        check(wait_until(lambda: len(uas.messages()) >= 2, 8),
              "retried after the 486 (%d attempts)" % len(uas.messages()))
        check(all(m[2] == b"retry me" for m in uas.messages()), "same message retried")
        # ivan registers a contact where nobody listens, then a live one
        register(srv, "ivan", "sip:ivan@127.0.0.1:%d" % free_port(), expires=300)
        def failed_twice():
            os.kill(srv.proc.pid, signal.SIGUSR1)  # statistics now
            return re.search(r"failed_messages=[2-9]", read(srv.log))
        check(wait_until(failed_twice, 5, 0.2), "the unreachable delivery failed")
        register(srv, "ivan", "sip:ivan@127.0.0.1:%d" % uas.port, expires=300)
        check(wait_until(lambda: any(m[2] == b"unreachable" for m in uas.messages()), 10),
              "kept and delivered to the live contact")
    finally:
        uas.close()
        srv.stop()


def test_offline_notification(tmp):
    """The sample configuration (1.6.1): the sender hears that the user is offline."""
    uas = Uas(200)
    conf = write_conf(tmp, "notify.conf",
                      "[msilo]\nfrom_address = sip:registrar@127.0.0.1\n"
                      "contact_hdr = Contact: <sip:registrar@127.0.0.1>;msilo=yes\\r\\n\n"
                      "content_type_hdr = Content-Type: text/plain\\r\\n\n"
                      "offline_message = *** User $rU is offline!\n")
    srv = Server(tmp, conf)
    try:
        st, _, _ = sip_request(srv.port, "MESSAGE", "sip:hank@127.0.0.1:%d" % srv.port, "udp",
                               "Contact: <sip:alice@127.0.0.1:%d>\r\n"
                               "Content-Type: text/plain\r\n" % uas.port, b"are you there?",
                               to="sip:hank@127.0.0.1")
        check(st == 202, "stored (%d)" % st)
        check(wait_until(lambda: uas.messages(), 5), "notification sent to the sender's Contact")
        first, hdrs, body = uas.messages()[0]
        check(b"*** User hank is offline!" in body, "notification body: %r" % body)
        check("registrar@127.0.0.1" in (header(hdrs, "From") or ""), "From is from_address")
    finally:
        uas.close()
        srv.stop()


def test_reminder(tmp):
    """A message with a reminder time (snd_time_avp header) is stored, not
    dumped at REGISTER, and sent when due through outbound_proxy (this server),
    which forwards it to the registered contact."""
    uas = Uas(200)
    port = free_port()
    conf = write_conf(tmp, "reminder.conf",
                      "[server]\nlisten = sip:127.0.0.1:%d\n"
                      "[msilo]\nreminder = sip:reminder@127.0.0.1\nsend_time = 1\n"
                      "snd_time_avp = X-Msilo-Send-Time\noutbound_proxy = sip:127.0.0.1:%d\n"
                      % (port, port))
    srv = Server(tmp, conf, port=port)
    try:
        register(srv, "judy", "sip:judy@127.0.0.1:%d" % uas.port)
        due = time.strftime("%Y%m%d%H%M%S", time.localtime(time.time() + 2))
        st, _, _ = sip_request(srv.port, "MESSAGE", "sip:judy@127.0.0.1:%d" % srv.port, "udp",
                               "X-Msilo-Send-Time: %s\r\nContent-Type: text/plain\r\n" % due,
                               b"call mum", to="sip:judy@127.0.0.1")
        check(st == 202, "reminder stored, not forwarded (%d)" % st)
        check(not wait_until(lambda: uas.messages(), 0.8), "nothing before it is due")
        check(wait_until(lambda: uas.messages(), 8), "reminder arrived when due")
        body = uas.messages()[0][2]
        check(b"call mum" in body and b"Reminder" in body, "reminder body %r" % body)
        # send_time is 1 s: a loop would deliver it again within 1.5 s
        check(not wait_until(lambda: len(uas.messages()) > 1, 1.5),
              "the reminder came once (%d)" % len(uas.messages()))
    finally:
        uas.close()
        srv.stop()


def test_expired_never_delivered(tmp):
    conf = write_conf(tmp, "expire.conf",
                      "[msilo]\nexpire_time = 1\ncheck_time = 1\nclean_period = 1\n")
    srv = Server(tmp, conf)
    uas = Uas(200)
    try:
        st, _, _ = sip_request(srv.port, "MESSAGE", "sip:kate@127.0.0.1:%d" % srv.port, "udp",
                               "Content-Type: text/plain\r\n", b"too late",
                               to="sip:kate@127.0.0.1")
        check(st == 202, "stored (%d)" % st)
        time.sleep(2.5)  # past expire_time, by the server's real clock
        register(srv, "kate", "sip:kate@127.0.0.1:%d" % uas.port)
        check(not wait_until(lambda: uas.messages(), 1.5), "expired message not delivered")
    finally:
        uas.close()
        srv.stop()


def test_malformed_input(tmp):
    """Garbage and malformed requests never crash the server."""
    srv = Server(tmp)
    try:
        junk = [b"\x00\xff garbage\r\n\r\n", b"MESSAGE\r\n\r\n",
                b"MESSAGE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKj\r\n"
                b"CSeq: x MESSAGE\r\nContent-Length: 99999\r\n\r\nshort",
                b"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKk\r\n"
                b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>\r\nCall-ID: j@x\r\n"
                b"CSeq: 1 REGISTER\r\nContact: <sip:a@127.0.0.1:9>;expires=abc, *\r\n"
                b"Content-Length: 0\r\n\r\n",
                bytes(range(256)) * 8]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for j in junk:
            u.sendto(j, (LOOPBACK, srv.port))
        u.close()
        for j in junk:
            try:
                c = socket.create_connection((LOOPBACK, srv.port), timeout=2)
                c.sendall(j)
                c.close()
            except OSError:
                pass
        # an unknown-domain tel: To, a MESSAGE without From user, a huge header
        st, _, _ = sip_request(srv.port, "MESSAGE", "tel:+123", "udp", "Content-Type: text/plain\r\n",
                               b"x", to="tel:+123")
        check(st in (202, 400, 404), "tel: MESSAGE answered (%d)" % st)
        st, _, _ = sip_request(srv.port, "MESSAGE", "sip:mo@127.0.0.1:%d" % srv.port, "tcp",
                               "X-Big: %s\r\nContent-Type: text/plain\r\n" % ("a" * 20000), b"x",
                               to="sip:mo@127.0.0.1")
        check(st in (202, 413, 400), "huge header answered (%d)" % st)
        st, _, _ = sip_request(srv.port, "OPTIONS", "sip:%s:%d" % (LOOPBACK, srv.port))
        check(st == 200, "still alive")
    finally:
        rc, log = srv.stop()
    check(rc == 0, "clean exit after malformed input (%s)" % rc)


TESTS = [test_cli, test_sample_lists_every_key, test_basic_methods, test_registrar,
         test_online_forward, test_binary_body_tcp, test_configured_server,
         test_retry_after_failure, test_offline_notification, test_reminder,
         test_expired_never_delivered, test_malformed_input,
         test_store_dump_udp, test_store_dump_tcp,
         test_pg_store_dump_udp, test_pg_store_dump_tcp, test_pg_restart, test_sqlite_restart,
         test_metrics]


def run_each(tests, tmp, suffix=""):
    """Runs each (name, fn) as fn(tmp), printing PASS / SKIP / FAIL lines and
    stopping every process it started after each. Returns (failed, skipped)."""
    failed, skipped = [], []
    for name, t in tests:
        t0 = time.monotonic()
        try:
            t(tmp)
            print("PASS %s%s (%.1f s)" % (name, suffix, time.monotonic() - t0), flush=True)
        except Skip as e:
            skipped.append(name)
            print("SKIP %s: %s" % (name, e), flush=True)
        except Exception as e:  # noqa: BLE001 - report and go on
            failed.append(name)
            print("FAIL %s: %s" % (name, e), flush=True)
            if not isinstance(e, Failure):
                traceback.print_exc()
        finally:
            stop_all()
    return failed, skipped


def finish(tmp, failed, keep):
    """Stops what is left; keeps the scratch directory when something failed."""
    stop_all()
    if failed or keep:
        print("logs kept in %s" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def script_args():
    """The arguments of a test script that needs only msilo-server:
    --server, --keep and the names of the tests to run (none: all).
    Sets e2e.ARGS (with sipp None) and returns it."""
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("tests", nargs="*")
    ARGS = ap.parse_args()
    ARGS.sipp = None
    return ARGS


def run_script(tests, args, prefix):
    """Runs the functions of `tests` that `args.tests` names (all when none)
    in a fresh scratch directory; the script's exit status."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    failed = []
    try:
        failed, _ = run_each([(t.__name__, t) for t in tests
                              if not args.tests or t.__name__ in args.tests], tmp)
    finally:
        finish(tmp, failed, args.keep)
    return 1 if failed else 0


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--sample", required=True)
    ap.add_argument("--sipp", default=shutil.which("sipp"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("tests", nargs="*")
    ARGS = ap.parse_args()
    if not os.access(ARGS.server, os.X_OK):
        print("msilo-server not found: %s" % ARGS.server)
        return 77
    tests = [t for t in TESTS if not ARGS.tests or t.__name__ in ARGS.tests]
    if not ARGS.sipp:
        print("sipp not found: skipping the sipp tests")
        tests = [t for t in tests if "store_dump" not in t.__name__]
    tmp = tempfile.mkdtemp(prefix="msilo-e2e-")
    failed = []
    signal.signal(signal.SIGTERM, lambda *a: (stop_all(), sys.exit(1)))
    try:
        failed, skipped = run_each([(t.__name__, t) for t in tests], tmp)
    finally:
        finish(tmp, failed, ARGS.keep)
    print("%d passed, %d failed, %d skipped" % (len(tests) - len(failed) - len(skipped),
                                                len(failed), len(skipped)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
