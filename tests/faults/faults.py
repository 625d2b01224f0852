#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fault tests of msilo-server on PostgreSQL: the delivery guarantee of
shared/DESIGN.md proven by breaking things on purpose (SIGKILL during a dump
and during stores, the database stopped under load, two servers on one
table, dead and failing contacts).

Loopback only (127.0.0.1), every step bounded in time, every process stopped
by its pid. Needs the private cluster of scripts/pg-test-cluster:

  scripts/pg-test-cluster run -- python3 tests/faults/faults.py \
      --server build/examples/msilo-server/msilo-server --sipp /usr/bin/sipp [TEST...]

Exit status: 0 passed, 1 failed, 77 skipped (no MSILO_TEST_PG_URL and
MSILO_REQUIRE_PG unset, or no sipp).
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import e2e  # noqa: E402  (helpers: processes, SIP client, UAS)
from e2e import (LOOPBACK, Failure, check, wait_until, wait_quiet, udp_port_bound, read,  # noqa: E402
                 free_port, sip_request)

ARGS = None


class Skip(Exception):
    pass


# ---- PostgreSQL ---------------------------------------------------------------

def pg_url():
    return os.environ["MSILO_TEST_PG_URL"]


def psql(sql, timeout=20):
    r = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", pg_url(), "-c", sql],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                       timeout=timeout)
    if r.returncode != 0:
        raise Failure("psql %r: %s" % (sql, r.stderr.decode(errors="replace")))
    return r.stdout.decode(errors="replace")


def pg_ctl(action, timeout=60):
    data = os.environ["MSILO_TEST_PG_DATA"]
    cmd = [os.environ["MSILO_TEST_PG_CTL"], "-D", data, "-w", "-t", "50"]
    if action == "stop":
        cmd += ["-m", "fast", "stop"]
    else:
        cmd += ["-l", os.path.join(data, "server.log"), "start"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    check(r.returncode == 0, "pg_ctl %s: %s" % (action, r.stdout.decode(errors="replace")))


def table_name(what):
    return "faults_%s_%d" % (what, os.getpid())


def count(table):
    return int(psql("SELECT count(*) FROM %s" % table).strip())


def stored_msgids(table):
    """msgid=N of every stored body (bodies are BYTEA)."""
    out = psql("SELECT encode(body, 'escape') FROM %s" % table)
    return [int(m) for m in re.findall(r"msgid=(\d+)", out)]


def write_conf(tmp, name, table, msilo="", server=""):
    path = os.path.join(tmp, name + ".conf")
    with open(path, "w") as f:
        f.write("[server]\n%s\n[msilo]\ndb_table = %s\n%s\n" % (server, table, msilo))
    return path


# ---- processes -------------------------------------------------------------------

class Server:
    """msilo-server on the PostgreSQL store; `name` names its log."""

    def __init__(self, tmp, conf, port, name):
        self.port, self.conf = port, conf
        self.log = os.path.join(tmp, "server-%s.log" % name)
        cmd = [ARGS.server, "-c", conf, "-l", "sip:%s:%d" % (LOOPBACK, port), "--store", "postgres",
               "--db-url", pg_url(), "--migrate", "--forward-timeout", "1500"]
        env = dict(os.environ, G_MESSAGES_DEBUG="msilo-server")
        self.proc = e2e.start(cmd, self.log, env=env)
        if not wait_until(lambda: "listening on" in read(self.log) or self.proc.poll() is not None, 15):
            raise Failure("server %s did not start" % name)
        check(self.proc.poll() is None, "server %s exited at start: %s" % (name, read(self.log)))

    def kill(self):
        e2e.stop(self.proc, signal.SIGKILL)

    def stop(self):
        rc = e2e.stop(self.proc)
        return rc, read(self.log)


def sipp_bg(tmp, name, args, port=None):
    """A sipp in the background (stopped by stop_all at the end of the test)."""
    log = os.path.join(tmp, name + ".out")
    cmd = [ARGS.sipp] + args + ["-i", LOOPBACK, "-p", str(port or free_port()), "-mp", str(free_port()),
                                "-trace_err", "-error_file", os.path.join(tmp, name + ".err")]
    return e2e.start(cmd, log, cwd=tmp)


def sipp_wait(p, timeout):
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        e2e.stop(p, signal.SIGKILL)
        raise Failure("sipp timed out")
    return e2e.stop(p)


def users_csv(tmp, name, users, n, proto="udp"):
    """SEQUENTIAL CSV: message i goes to users[i % len(users)]."""
    path = os.path.join(tmp, name + ".csv")
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(n):
            f.write("%s;%s;\n" % (users[i % len(users)], proto))
    return path


def store_with_sipp(tmp, name, port, users, n):
    """n MESSAGEs (body msgid=1..n) for users, every one must get 202."""
    csv = users_csv(tmp, name, users, n)
    p = sipp_bg(tmp, name, ["%s:%d" % (LOOPBACK, port), "-sf", os.path.join(HERE, "..", "e2e", "store_uac.xml"),
                            "-inf", csv, "-m", str(n), "-l", "16", "-r", "400", "-timeout", "60s",
                            "-timeout_error", "-max_retrans", "5"])
    rc = sipp_wait(p, 90)
    check(rc == 0, "sipp stored %d messages, each with a 202 (rc %d)" % (n, rc))


def register_with_sipp(tmp, name, port, users, contact_port):
    csv = users_csv(tmp, name, users, len(users))
    p = sipp_bg(tmp, name, ["%s:%d" % (LOOPBACK, port), "-sf", os.path.join(HERE, "..", "e2e", "register_uac.xml"),
                            "-inf", csv, "-m", str(len(users)), "-l", "10", "-r", "500",
                            "-key", "contact_port", str(contact_port), "-timeout", "30s",
                            "-timeout_error"])
    rc = sipp_wait(p, 40)
    check(rc == 0, "sipp: every REGISTER got 200 (rc %d)" % rc)


def uas_lines(path):
    """(msgid, X-Msilo-Id, user) of each MESSAGE the sipp contact logged."""
    out = []
    for l in read(path).splitlines():
        f = l.split("\t")
        if f[0] == "MSG" and len(f) >= 7:
            out.append((int(f[4]), f[5], f[6]))
    return out


class TimedUas(e2e.Uas):
    """e2e.Uas that also records when each new request arrived."""

    def __init__(self, status=200):
        self.times = []  # (monotonic time, X-Msilo-Id, body)
        super().__init__(status)

    def _answer(self, data, send):
        first, hdrs, body = e2e.parse_message(data)
        if first.startswith("MESSAGE"):
            via = e2e.header(hdrs, "Via")
            with self.lock:
                if not any(e2e.header(h, "Via") == via for _, h, _ in self.requests):
                    self.times.append((time.monotonic(), e2e.header(hdrs, "X-Msilo-Id"), body))
        super()._answer(data, send)


def register(port, user, contact, expires=300):
    to = "sip:%s@127.0.0.1" % user
    st, _, _ = sip_request(port, "REGISTER", "sip:%s:%d" % (LOOPBACK, port), "udp",
                           "Contact: <%s>\r\nExpires: %d\r\n" % (contact, expires), to=to, frm=to)
    check(st == 200, "REGISTER %s -> %d" % (user, st))


def message(port, user, body, timeout=8):
    st, _, _ = sip_request(port, "MESSAGE", "sip:%s@127.0.0.1:%d" % (user, port), "udp",
                           "Content-Type: text/plain\r\n", body, to="sip:%s@127.0.0.1" % user,
                           timeout=timeout)
    return st


# ---- (a) crash during delivery ------------------------------------------------------

def test_crash_during_delivery(tmp):
    """1000 messages for 50 users; the users register; SIGKILL in the middle
    of the dump; restart with the same instance_id; the users register again.
    Every message arrives at least once; a duplicate only for a message that
    had arrived before the kill (in flight: its delete had not committed), and
    with the same X-Msilo-Id both times; the table ends empty."""
    n_users, n = 50, 1000
    window = 2
    table = table_name("crashdump")
    conf = write_conf(tmp, "crashdump", table,
                      "instance_id = faults-crashdump\ndump_window = %d\ncheck_time = 1\n" % window)
    port = free_port()
    users = ["fa%03d" % i for i in range(n_users)]
    srv = Server(tmp, conf, port, "crashdump-1")
    store_with_sipp(tmp, "crashdump-store", port, users, n)
    check(count(table) == n, "%d messages in the table" % n)

    contact_port = free_port()
    uas_log = os.path.join(tmp, "crashdump-uas.log")
    # the contact answers after 100 ms: the dump lasts ~2 s, long enough to kill it
    sipp_bg(tmp, "crashdump-uas", ["-sf", os.path.join(HERE, "uas_id.xml"),
                                   "-d", "100", "-l", "5000", "-trace_logs", "-log_file", uas_log],
            port=contact_port)
    check(wait_until(lambda: udp_port_bound(contact_port), 10, 0.02), "the contact UAS listens")
    register_with_sipp(tmp, "crashdump-reg1", port, users, contact_port)
    check(wait_until(lambda: len(uas_lines(uas_log)) >= 200, 20, 0.005), "the dump started")
    srv.kill()
    killed_at = len(uas_lines(uas_log))
    # what was on the wire when it died arrives, then the log stops growing
    check(wait_quiet(lambda: len(uas_lines(uas_log))), "the contact's log settles")
    before = uas_lines(uas_log)
    in_table = set(stored_msgids(table))
    left = len(in_table)
    check(0 < left < n, "killed in the middle of the dump (%d of %d left, %d seen)" % (left, n, killed_at))

    srv = Server(tmp, conf, port, "crashdump-2")
    register_with_sipp(tmp, "crashdump-reg2", port, users, contact_port)
    all_ids = set(range(1, n + 1))
    check(wait_until(lambda: {m for m, _, _ in uas_lines(uas_log)} >= all_ids, 40, 0.1),
          "every message delivered (missing %s)" %
          sorted(all_ids - {m for m, _, _ in uas_lines(uas_log)})[:10])
    check(wait_until(lambda: count(table) == 0, 10, 0.2), "the table ends empty (%d left)" % count(table))
    # a duplicate would be on its way now: let the log settle before counting
    check(wait_quiet(lambda: len(uas_lines(uas_log))), "the contact's log settles")
    got = uas_lines(uas_log)
    seen_before = {m for m, _, _ in before}
    times = {}
    xids = {}
    for m, x, _ in got:
        times[m] = times.get(m, 0) + 1
        xids.setdefault(m, set()).add(x)
    dups = sorted(m for m, c in times.items() if c > 1)
    check(all(c <= 2 for c in times.values()), "no message delivered more than twice")
    check(all(m in seen_before for m in dups),
          "duplicates only among messages in flight at the kill: %s" % [m for m in dups if m not in seen_before][:10])
    # in flight = arrived at the contact, but its delete had not committed
    in_flight = seen_before & in_table
    check(all(m in in_flight for m in dups),
          "a duplicate only for a message still in the table at the kill: %s"
          % [m for m in dups if m not in in_flight][:10])
    bad = [m for m, s in xids.items() if len(s) != 1 or "" in s]
    check(not bad, "each duplicate carries the same X-Msilo-Id: %s" % bad[:10])
    print("  crash during delivery: %d delivered before the kill, %d left in the table, "
          "%d in flight, %d duplicates (same X-Msilo-Id), 0 lost"
          % (len(before), left, len(in_flight), len(dups)))
    rc, _ = srv.stop()
    check(rc == 0, "server stopped cleanly (%s)" % rc)


# ---- (b) crash during store ------------------------------------------------------------

def acked(path, status="202"):
    return {int(f[1]) for f in (l.split("\t") for l in read(path).splitlines())
            if len(f) >= 3 and f[0] == "ACK" and f[2] == status}


def test_crash_during_store(tmp):
    """sipp stores while the server is SIGKILLed and restarted: every MESSAGE
    answered 202 is in the table."""
    table = table_name("crashstore")
    conf = write_conf(tmp, "crashstore", table, "instance_id = faults-crashstore\n")
    port = free_port()
    users = ["fb%03d" % i for i in range(20)]
    srv = Server(tmp, conf, port, "crashstore-1")
    n = 1200
    csv = users_csv(tmp, "crashstore", users, n)
    log = os.path.join(tmp, "crashstore-acks.log")
    p = sipp_bg(tmp, "crashstore-sipp", ["%s:%d" % (LOOPBACK, port), "-sf", os.path.join(HERE, "store_log_uac.xml"),
                                         "-inf", csv, "-m", str(n), "-l", "64", "-r", "300",
                                         "-recv_timeout", "6000", "-max_retrans", "4",
                                         "-timeout", "40s", "-trace_logs", "-log_file", log])
    check(wait_until(lambda: len(acked(log)) >= 300, 15, 0.005), "stores under way")
    srv.kill()
    at_kill = len(acked(log))
    check(wait_until(lambda: not udp_port_bound(port), 10, 0.02), "the killed server's port is free")
    srv = Server(tmp, conf, port, "crashstore-2")
    sipp_wait(p, 60)  # calls lost with the killed server fail: not an error here
    ack = acked(log)
    stored = set(stored_msgids(table))
    lost = sorted(ack - stored)
    check(len(ack) > at_kill, "the restarted server acknowledged more (%d, %d at the kill)" % (len(ack), at_kill))
    check(not lost, "every 202'd MESSAGE is in the table; lost: %s" % lost[:10])
    print("  crash during store: %d of %d answered 202 (%d before the kill), all %d stored, "
          "%d unanswered (sender retries), 0 lost" % (len(ack), n, at_kill, len(ack), n - len(ack)))
    rc, _ = srv.stop()
    check(rc == 0, "server stopped cleanly (%s)" % rc)


# ---- (c) database outage ---------------------------------------------------------------

def test_database_outage(tmp):
    """PostgreSQL stopped under sipp load: 503 (never 202) while it is down,
    OPTIONS answered at once, recovery without a restart; nothing 202'd lost."""
    table = table_name("outage")
    conf = write_conf(tmp, "outage", table)
    port = free_port()
    srv = Server(tmp, conf, port, "outage")
    users = ["fc%03d" % i for i in range(10)]
    n = 600
    csv = users_csv(tmp, "outage", users, n)
    log = os.path.join(tmp, "outage-acks.log")
    p = sipp_bg(tmp, "outage-sipp", ["%s:%d" % (LOOPBACK, port), "-sf", os.path.join(HERE, "store_log_uac.xml"),
                                     "-inf", csv, "-m", str(n), "-l", "32", "-r", "60",
                                     "-recv_timeout", "6000", "-max_retrans", "4",
                                     "-timeout", "40s", "-trace_logs", "-log_file", log])
    down = False
    try:
        check(wait_until(lambda: len(acked(log)) >= 50, 10, 0.01), "stores under way")
        pg_ctl("stop")
        down = True
        t_down = time.monotonic()
        slow = []
        # keep the database down for at least 3 s, under requests all along
        i = 0
        while i < 10 or (time.monotonic() - t_down < 3 and i < 500):
            i += 1
            st = message(port, "fcdown", b"msgid=%d; while down" % (100000 + i))
            check(st == 503, "MESSAGE while the database is down -> %d (want 503)" % st)
            t0 = time.monotonic()
            st, _, _ = sip_request(port, "OPTIONS", "sip:%s:%d" % (LOOPBACK, port), timeout=2)
            dt = time.monotonic() - t0
            check(st == 200, "OPTIONS while down -> %d" % st)
            if dt > 0.25:
                slow.append(dt)
        check(not slow, "OPTIONS answered within 250 ms while down (slow: %s)" % slow)
        check(srv.proc.poll() is None, "server still running")
        pg_ctl("start")
        down = False
        t_up = time.monotonic()
        check(wait_until(lambda: message(port, "fcup", b"msgid=200000; back") == 202, 20, 0.3),
              "202 again after the database is back, without a restart")
        recovered = time.monotonic() - t_up
    finally:
        if down:
            pg_ctl("start")
    sipp_wait(p, 60)
    ack = acked(log)
    unavailable = acked(log, "503")
    lost = sorted(ack - set(stored_msgids(table)))
    check(unavailable, "sipp saw 503s during the outage")
    check(not lost, "every 202'd MESSAGE is in the table; lost: %s" % lost[:10])
    check(200000 in stored_msgids(table) and 100000 not in stored_msgids(table),
          "what got 503 is not stored, what got 202 is")
    # the cause reaches the log: libpq's own message after the engine's
    causes = re.findall(r"storage backend failure: ([^\n]+)", read(srv.log))
    check(causes and all(c.strip() for c in causes),
          "a failed store's log line carries the store's detail: %s" % causes[:3])
    print("  database outage: sipp %d x 202, %d x 503; recovered %.1f s after PostgreSQL "
          "started; 0 lost; cause in the log: %s" % (len(ack), len(unavailable), recovered,
                                                      causes[0][:100]))
    rc, _ = srv.stop()
    check(rc == 0, "server stopped cleanly (%s)" % rc)


# ---- (d) two servers, one table ----------------------------------------------------------

def test_two_servers(tmp):
    """Two servers share one table; each user registers at both at the same
    moment; every message is delivered exactly once."""
    table = table_name("twoserv")
    conf_a = write_conf(tmp, "twoserv-a", table, "instance_id = faults-a\n")
    conf_b = write_conf(tmp, "twoserv-b", table, "instance_id = faults-b\n")
    pa, pb = free_port(), free_port()
    a = Server(tmp, conf_a, pa, "twoserv-a")
    b = Server(tmp, conf_b, pb, "twoserv-b")
    users = ["fd%03d" % i for i in range(20)]
    n = 400
    store_with_sipp(tmp, "twoserv-store", pa, users, n)
    check(count(table) == n, "%d messages stored" % n)
    uas = TimedUas(200)
    try:
        contact = "sip:%s@127.0.0.1:%d"
        errors = []

        def reg(port, user, barrier):
            try:
                barrier.wait(5)
                register(port, user, contact % (user, uas.port))
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        threads = []
        for u in users:
            bar = threading.Barrier(2)
            for port in (pa, pb):
                t = threading.Thread(target=reg, args=(port, u, bar), daemon=True)
                t.start()
                threads.append(t)
        for t in threads:
            t.join(15)
        check(not errors, "REGISTERs: %s" % errors[:3])

        def ids():
            return [int(m.group(1)) for _, _, body in list(uas.times)
                    for m in [re.search(rb"msgid=(\d+)", body)] if m]
        check(wait_until(lambda: len(set(ids())) >= n, 30, 0.1),
              "every message delivered (%d of %d)" % (len(set(ids())), n))
        check(wait_until(lambda: count(table) == 0, 10, 0.2), "the table ends empty")
        check(wait_quiet(lambda: len(ids()), 1.0), "the contacts' logs settle")  # duplicates
        got = ids()
        dups = sorted({m for m in got if got.count(m) > 1})
        check(not dups, "delivered exactly once; twice: %s" % dups[:10])
        check(len(got) == n, "%d deliveries for %d messages" % (len(got), n))
        la, lb = read(a.log), read(b.log)
        da = sum(int(x) for x in re.findall(r"dump for \S+: \d+ claimed, (\d+) delivered", la))
        db = sum(int(x) for x in re.findall(r"dump for \S+: \d+ claimed, (\d+) delivered", lb))
        print("  two servers: %d messages, %d delivered by A and %d by B, 0 duplicates, 0 lost"
              % (n, da, db))
    finally:
        uas.close()
    for s in (a, b):
        rc, _ = s.stop()
        check(rc == 0, "server stopped cleanly (%s)" % rc)


def register_device(port, user, contact, instance, expires=300):
    to = "sip:%s@127.0.0.1" % user
    st, _, _ = sip_request(port, "REGISTER", "sip:%s:%d" % (LOOPBACK, port), "udp",
                           'Contact: <%s>;+sip.instance="<%s>"\r\nExpires: %d\r\n'
                           % (contact, instance, expires), to=to, frm=to)
    check(st == 200, "REGISTER %s (%s) -> %d" % (user, instance, st))


def test_two_servers_two_devices(tmp):
    """deliver_to = every_device, two servers on one table, both devices of
    each user known (registered and gone) before the messages are stored:
    device X registers at both servers at the same moment (the race for one
    device), device Y at one of them; each device gets each message exactly
    once and the table ends empty (every known device has them)."""
    table = table_name("twodev")
    msilo = "deliver_to = every_device\ncheck_time = 1\n"
    conf_a = write_conf(tmp, "twodev-a", table, "instance_id = faults-da\n" + msilo)
    conf_b = write_conf(tmp, "twodev-b", table, "instance_id = faults-db\n" + msilo)
    pa, pb = free_port(), free_port()
    a = Server(tmp, conf_a, pa, "twodev-a")
    b = Server(tmp, conf_b, pb, "twodev-b")
    users = ["dv%02d" % i for i in range(10)]
    n = 200
    ux, uy = TimedUas(200), TimedUas(200)

    def dev_id(dev, user):
        return "urn:uuid:00000000-0000-4000-8000-%012d" % (dev * 100 + users.index(user))
    # both devices known before the messages come (a message stored while
    # only X is known goes once X has it: Y would race X's deliveries)
    for u in users:
        for port, uas, dev in ((pa, ux, 1), (pb, uy, 2)):
            contact = "sip:%s@127.0.0.1:%d" % (u, uas.port)
            register_device(port, u, contact, dev_id(dev, u))
            register_device(port, u, contact, dev_id(dev, u), expires=0)
    store_with_sipp(tmp, "twodev-store", pa, users, n)
    check(count(table) == n, "%d messages stored" % n)
    try:
        errors = []

        def reg(port, user, uas, dev, barrier):
            try:
                if barrier:
                    barrier.wait(5)
                register_device(port, user, "sip:%s@127.0.0.1:%d" % (user, uas.port),
                                dev_id(dev, user))
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        threads = []
        for u in users:
            bar = threading.Barrier(2)
            for port in (pa, pb):
                threads.append(threading.Thread(target=reg, args=(port, u, ux, 1, bar), daemon=True))
            threads.append(threading.Thread(target=reg, args=(pb, u, uy, 2, None), daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        check(not errors, "REGISTERs: %s" % errors[:3])

        def ids(uas):
            return [int(m.group(1)) for _, _, body in list(uas.times)
                    for m in [re.search(rb"msgid=(\d+)", body)] if m]
        for name, uas in (("X", ux), ("Y", uy)):
            check(wait_until(lambda: len(set(ids(uas))) >= n, 30, 0.1),
                  "device %s got every message (%d of %d)" % (name, len(set(ids(uas))), n))
        check(wait_until(lambda: count(table) == 0, 15, 0.2),
              "the table ends empty (%d left)" % count(table))
        for name, uas in (("X", ux), ("Y", uy)):
            check(wait_quiet(lambda: len(ids(uas)), 1.0), "device %s's log settles" % name)
            got = ids(uas)
            dups = sorted({m for m in got if got.count(m) > 1})
            check(not dups, "device %s: each message once; twice: %s" % (name, dups[:10]))
            check(len(got) == n, "device %s: %d deliveries for %d messages" % (name, len(got), n))
        print("  two servers, two devices per user: %d messages, device X %d, device Y %d "
              "deliveries, 0 duplicates, table empty" % (n, len(ids(ux)), len(ids(uy))))
    finally:
        ux.close()
        uy.close()
    for s in (a, b):
        rc, _ = s.stop()
        check(rc == 0, "server stopped cleanly (%s)" % rc)


# ---- (e) slow and dead contacts ------------------------------------------------------------

def test_slow_dead_contacts(tmp):
    """A contact that never answers and one that answers 500 do not delay
    another user's deliveries; failures back off (check_time x 2^(attempts-1));
    after max_attempts the message waits for the next REGISTER."""
    table = table_name("contacts")
    conf = write_conf(tmp, "contacts", table, "check_time = 1\nmax_attempts = 4\nadd_date = 0\n",
                      "delivery_timeout = 2000\n")
    port = free_port()
    srv = Server(tmp, conf, port, "contacts")
    dead, bad, good = TimedUas(None), TimedUas(500), TimedUas(200)
    try:
        for user in ("fedead", "febad", "fegood"):
            for i in range(5):
                check(message(port, user, b"msgid=%d; for %s" % (i, user.encode())) == 202, "stored")
        register(port, "fedead", "sip:fedead@127.0.0.1:%d" % dead.port)
        register(port, "febad", "sip:febad@127.0.0.1:%d" % bad.port)
        t0 = time.monotonic()
        register(port, "fegood", "sip:fegood@127.0.0.1:%d" % good.port)
        check(wait_until(lambda: len(good.times) >= 5, 5, 0.01), "the good user got its messages")
        took = max(t for t, _, _ in good.times) - t0
        check(took < 1.0, "not delayed by the dead and failing contacts (%.2f s)" % took)
        check(dead.times, "the dead contact was tried")

        # the 500 contact: attempts of its first message, by X-Msilo-Id
        first_id = bad.times[0][1]

        def tries():
            return [t for t, x, _ in list(bad.times) if x == first_id]
        wait_until(lambda: len(tries()) >= 4, 16, 0.05)
        gaps = [round(b - a, 2) for a, b in zip(tries(), tries()[1:])]
        check(len(tries()) == 4, "max_attempts = 4 attempts, got %d (gaps %s)" % (len(tries()), gaps))
        # next_try = now + check_time x 2^(attempts-1) = +1 s, +2 s, +4 s; the
        # engine's clock has whole seconds and its retry tick runs every
        # check_time, so each gap is that +-1 s
        check(gaps[1] >= 0.9 and gaps[2] >= 2.9 and gaps[2] > gaps[0],
              "retries back off (1 s, 2 s, 4 s, +-1 s): gaps %s" % gaps)
        dead_tries = len([1 for _, x, _ in dead.times if x == dead.times[0][1]])
        check(dead_tries <= 4, "the dead contact: at most 4 attempts (%d)" % dead_tries)
        # the other messages' 4th attempts come in the same tick; then nothing more
        check(wait_quiet(lambda: len(bad.times)), "the 500 contact's attempts settle")
        n_bad = len(bad.times)
        check(not wait_until(lambda: len(bad.times) > n_bad, 2.5), "no attempt after max_attempts")
        check(count(table) == 10, "the failed messages are kept (%d)" % count(table))

        # the next REGISTER tries again; now the contact accepts
        bad.status = 200
        register(port, "febad", "sip:febad@127.0.0.1:%d" % bad.port)
        check(wait_until(lambda: count(table) == 5, 10, 0.2), "delivered at the next REGISTER")
        print("  slow/dead contacts: good user served in %.2f s; 500 contact retried after %s s, "
              "then waited for REGISTER; 0 lost" % (took, gaps))
    finally:
        for u in (dead, bad, good):
            u.close()
    rc, _ = srv.stop()
    check(rc == 0, "server stopped cleanly (%s)" % rc)


TESTS = [test_crash_during_delivery, test_crash_during_store, test_database_outage,
         test_two_servers, test_two_servers_two_devices, test_slow_dead_contacts]


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--sipp", default=shutil.which("sipp"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("tests", nargs="*")
    ARGS = ap.parse_args()
    e2e.ARGS = ARGS
    if not os.environ.get("MSILO_TEST_PG_URL"):
        if os.environ.get("MSILO_REQUIRE_PG") == "1":
            print("MSILO_TEST_PG_URL is not set but MSILO_REQUIRE_PG=1")
            return 1
        print("SKIP: MSILO_TEST_PG_URL not set (scripts/pg-test-cluster run -- ...)")
        return 77
    if not ARGS.sipp or not shutil.which("psql"):
        print("SKIP: sipp or psql not found")
        return 1 if os.environ.get("MSILO_REQUIRE_PG") == "1" else 77
    tests = [t for t in TESTS if not ARGS.tests or t.__name__ in ARGS.tests]
    tmp = tempfile.mkdtemp(prefix="msilo-faults-")
    failed = []
    signal.signal(signal.SIGTERM, lambda *a: (e2e.stop_all(), sys.exit(1)))
    try:
        failed, skipped = e2e.run_each([(t.__name__, t) for t in tests], tmp)
        failed += skipped  # every fault test needs what main() checked: a skip is a failure
    finally:
        e2e.finish(tmp, failed, ARGS.keep)
    print("%d passed, %d failed" % (len(tests) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
