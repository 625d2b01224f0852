#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""PostgreSQL high availability under msilo-server, on clusters of its own
(initdb on 127.0.0.1; the shared test cluster is not used):

- test_start_database_down: the server starts while PostgreSQL is down,
  answers 503, and stores (202) once the database is up, without a restart.
- test_failover: a primary and a synchronous streaming standby (pg_basebackup
  -R, synchronous_standby_names), the server on the multi-host URL with
  target_session_attrs=read-write, MESSAGEs at a steady rate, then
  `pg_ctl -m immediate stop` of the primary and `pg_ctl promote` of the
  standby mid-run: every MESSAGE that got 202 is in the new primary's table
  exactly once, the failures are 503, stores resume by themselves; then a
  dump delivers each stored message once. Prints the figures (202 count,
  rows, 503 count, time to recover).
- test_failover_during_dump: the same failover while stored messages are being
  delivered (a contact that answers after 50 ms): every message delivered, the
  table ends empty, a message delivered twice has one X-Msilo-Id.

  python3 tests/faults/failover.py --server build/examples/msilo-server/msilo-server [TEST...]

Exit status: 0 passed, 1 failed, 77 skipped (no PostgreSQL server binaries
and MSILO_REQUIRE_PG unset).
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
import e2e  # noqa: E402
from e2e import LOOPBACK, Failure, check, wait_until, read, free_port, sip_request  # noqa: E402

ARGS = None


def bindir():
    for d in (os.environ.get("PG_BINDIR"), "/usr/lib/postgresql/15/bin"):
        if d and os.path.exists(os.path.join(d, "initdb")):
            return d
    pc = shutil.which("pg_config")
    if pc:
        d = subprocess.run([pc, "--bindir"], stdout=subprocess.PIPE).stdout.decode().strip()
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    return None


def as_pg(cmd):
    """The server refuses to run as root: then every PostgreSQL tool runs as postgres."""
    return (["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []) + cmd


def run(cmd, what, timeout=120):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    check(r.returncode == 0, "%s: %s" % (what, r.stdout.decode(errors="replace")))
    return r.stdout.decode(errors="replace")


class Cluster:
    """One PostgreSQL data directory on 127.0.0.1:port (trust, no Unix socket)."""

    def __init__(self, tmp, name, primary=None):
        self.bin = bindir()
        self.dir = os.path.join(tmp, name)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        if primary is None:
            os.makedirs(self.data, 0o700)
            if os.getuid() == 0:
                shutil.chown(self.data, "postgres", "postgres")
            run(as_pg([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres",
                       "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"]), "initdb")
        else:
            # a streaming standby of `primary`; -R writes primary_conninfo and standby.signal
            if os.getuid() == 0:
                shutil.chown(self.dir, "postgres", "postgres")
            run(as_pg([os.path.join(self.bin, "pg_basebackup"), "-h", LOOPBACK, "-p", str(primary.port),
                       "-U", "postgres", "-D", self.data, "-R", "-X", "stream",
                       "--checkpoint=fast"]), "pg_basebackup")
        # appended: a later line wins, so the standby gets its own port
        self.conf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = ''\n"
                  "fsync = on\nlogging_collector = off\n" % self.port)

    def conf(self, text):
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
            f.write(text)

    def ctl(self, *args, timeout=90):
        return run(as_pg([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-w", "-t", "60"]
                         + list(args)), "pg_ctl %s" % " ".join(args), timeout)

    def start(self):
        self.ctl("-l", os.path.join(self.data, "server.log"), "start")

    def stop(self, mode="fast"):
        self.ctl("-m", mode, "stop")

    def stop_quietly(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            subprocess.run(as_pg([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-w", "-t", "30",
                                  "-m", "immediate", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def psql(self, sql):
        return run([os.path.join(self.bin, "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                    "-h", LOOPBACK, "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                    "-c", sql], "psql %r" % sql, 30)


CLUSTERS = []


def cluster(tmp, name, primary=None):
    # a folder per cluster, whichever test made it before
    c = Cluster(tmp, "%s-%d" % (name, len(os.listdir(tmp))), primary)
    CLUSTERS.append(c)
    return c


class Server:
    def __init__(self, tmp, name, url, table, port=None, migrate=True, msilo=""):
        self.port = port or free_port()
        self.log = os.path.join(tmp, "server-%s.log" % name)
        conf = os.path.join(tmp, name + ".conf")
        with open(conf, "w") as f:
            f.write("[server]\n[msilo]\ndb_table = %s\n%s\n" % (table, msilo))
        cmd = [ARGS.server, "-c", conf, "-l", "sip:%s:%d" % (LOOPBACK, self.port), "--store", "postgres",
               "--db-url", url, "--forward-timeout", "1500"] + (["--migrate"] if migrate else [])
        self.proc = e2e.start(cmd, self.log, env=dict(os.environ, G_MESSAGES_DEBUG="msilo-server"))
        if not wait_until(lambda: "listening on" in read(self.log) or self.proc.poll() is not None, 20):
            raise Failure("server %s did not start" % name)
        check(self.proc.poll() is None, "server %s exited at start: %s" % (name, read(self.log)))

    def stop(self):
        return e2e.stop(self.proc)


_ids = [0]
_ids_lock = threading.Lock()


def message(port, user, body, timeout=8):
    """One MESSAGE (Call-ID and branch unique across threads); its final status."""
    with _ids_lock:
        _ids[0] += 1
        n = _ids[0]

    def make(lport):
        return ("MESSAGE sip:%s@127.0.0.1:%d SIP/2.0\r\n"
                "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-fo-%d-%d;rport\r\n"
                "From: <sip:alice@127.0.0.1>;tag=fo%d\r\n"
                "To: <sip:%s@127.0.0.1>\r\n"
                "Call-ID: fo-%d-%d@127.0.0.1\r\n"
                "CSeq: 1 MESSAGE\r\n"
                "Max-Forwards: 70\r\n"
                "Content-Type: text/plain\r\n"
                "Content-Length: %d\r\n\r\n" % (
                    user, port, LOOPBACK, lport, os.getpid(), n, n, user, os.getpid(), n,
                    len(body))).encode() + body
    r = e2e.sip_exchange(port, "udp", make, timeout)
    if r is None:
        raise Failure("no final response to MESSAGE")
    return r[0]


def url_of(*clusters, extra=""):
    hosts = ",".join("%s:%d" % (LOOPBACK, c.port) for c in clusters)
    return "postgresql://postgres@%s/postgres?connect_timeout=3%s" % (hosts, extra)


# ---- tests ---------------------------------------------------------------------

def test_start_database_down(tmp):
    """Started with PostgreSQL down: 503 at once, 202 once it is up."""
    db = cluster(tmp, "down")
    table = "ha_down_%d" % os.getpid()
    # the table exists (made by a first run), then the database goes down
    db.start()
    srv = Server(tmp, "down-migrate", url_of(db), table)
    check(srv.stop() == 0, "migrating server stopped")
    db.stop()
    srv = Server(tmp, "down", url_of(db), table)  # --migrate too: it must not stop the start
    st = message(srv.port, "dora", b"msgid=1; database down")
    check(st == 503, "MESSAGE with the database down -> %d (want 503)" % st)
    db.start()
    t0 = time.monotonic()
    check(wait_until(lambda: message(srv.port, "dora", b"msgid=2; database up") == 202, 20, 0.2),
          "202 once the database is up, without a restart")
    rows = db.psql("SELECT encode(body, 'escape') FROM %s" % table)
    check("msgid=2" in rows and "msgid=1" not in rows, "the 202 is stored, the 503 is not: %r" % rows)
    print("  started with the database down: 503, then 202 %.1f s after it was up"
          % (time.monotonic() - t0))
    check(srv.stop() == 0, "server stopped cleanly")


class Sender:
    """`n` threads, each sending MESSAGEs one after the other (a new
    transaction each) every `period` seconds; records (t, msgid, status)."""

    def __init__(self, port, users, n=4, period=0.04):
        self.port, self.users, self.period = port, users, period
        self.results = []
        self.lock = threading.Lock()
        self.stopped = False
        self.next_id = 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def _run(self):
        while not self.stopped:
            with self.lock:
                self.next_id += 1
                i = self.next_id
            t0 = time.monotonic()
            try:
                st = message(self.port, self.users[i % len(self.users)], b"msgid=%d; failover" % i,
                             timeout=10)
            except Failure:
                st = None  # no final answer in time
            with self.lock:
                self.results.append((time.monotonic(), i, st))
            left = self.period - (time.monotonic() - t0)
            if left > 0:
                time.sleep(left)  # the load's pace, not a wait for a condition

    def stop(self):
        self.stopped = True
        for t in self.threads:
            t.join(15)

    def ok_since(self, t):
        with self.lock:
            return sum(1 for tt, _, st in self.results if tt > t and st == 202)


def sync_pair(tmp):
    """A primary and its synchronous streaming standby, both running."""
    primary = cluster(tmp, "primary")
    # every commit waits for the standby: a 202 is on two servers
    primary.conf("synchronous_standby_names = '*'\nwal_level = replica\nmax_wal_senders = 5\n")
    primary.start()
    standby = cluster(tmp, "standby", primary)
    # the copy of the primary's settings would make the promoted standby wait
    # for a standby of its own at every commit, for ever (what a cluster
    # manager such as Patroni changes at promotion)
    standby.conf("synchronous_standby_names = ''\n")
    standby.start()
    check(wait_until(lambda: primary.psql("SELECT count(*) FROM pg_stat_replication "
                                          "WHERE sync_state = 'sync'").strip() == "1", 30, 0.2),
          "the standby streams synchronously")
    return primary, standby


def test_failover(tmp):
    primary, standby = sync_pair(tmp)
    table = "ha_failover_%d" % os.getpid()
    srv = Server(tmp, "failover", url_of(primary, standby, extra="&target_session_attrs=read-write"),
                 table)
    users = ["fo%02d" % i for i in range(10)]
    load = Sender(srv.port, users)
    try:
        check(wait_until(lambda: load.ok_since(0) >= 100, 20, 0.05), "stores under way")
        t_fail = time.monotonic()
        primary.stop("immediate")
        standby.ctl("promote")
        t_promoted = time.monotonic()
        check(wait_until(lambda: load.ok_since(t_promoted) >= 100, 30, 0.05),
              "stores resume on the promoted standby by themselves")
    finally:
        load.stop()
    res = load.results
    ok = sorted(i for _, i, st in res if st == 202)
    unavailable = [i for _, i, st in res if st == 503]
    other = [(i, st) for _, i, st in res if st not in (202, 503)]
    # recovered: the first 202 after the last failure
    last_fail = max((t for t, _, st in res if st != 202), default=t_fail)
    first_ok_after = min(t for t, _, st in res if st == 202 and t > last_fail)
    rows = standby.psql("SELECT encode(body, 'escape') FROM %s" % table).split("\n")
    stored = {}
    for r in rows:
        if r.startswith("msgid="):
            i = int(r.split(";")[0][6:])
            stored[i] = stored.get(i, 0) + 1
    missing = [i for i in ok if i not in stored]
    doubled = [i for i, n in stored.items() if n > 1]
    stored_503 = [i for i in unavailable if i in stored]  # committed, answer lost with the primary
    print("  failover: %d x 202, %d rows, %d x 503 (%d of them stored: commit outcome unknown), "
          "%d other; stores back %.2f s after the primary stopped (promote took %.2f s)"
          % (len(ok), sum(stored.values()), len(unavailable), len(stored_503), len(other),
             first_ok_after - t_fail, t_promoted - t_fail))
    check(not missing, "every 202 is in the new primary's table; missing: %s" % missing[:10])
    check(not doubled, "no message stored twice: %s" % doubled[:10])
    check(not other, "failures are 503: %s" % other[:10])

    # the dump: each stored message delivered once
    uas = e2e.Uas()
    try:
        for u in users:
            to = "sip:%s@127.0.0.1" % u
            st, _, _ = sip_request(srv.port, "REGISTER", "sip:%s:%d" % (LOOPBACK, srv.port), "udp",
                                   "Contact: <sip:%s@127.0.0.1:%d>\r\nExpires: 300\r\n" % (u, uas.port),
                                   to=to, frm=to)
            check(st == 200, "REGISTER %s -> %s" % (u, st))

        def bodies():  # delivered bodies may carry a date prefix
            return re.findall(r"msgid=\d+", "\n".join(b.decode(errors="replace")
                                                      for _, _, b in uas.messages()))

        def delivered():
            return set(bodies())

        want = {"msgid=%d" % i for i in stored}
        check(wait_until(lambda: want <= delivered(), 60, 0.1),
              "every stored message delivered (%d of %d)" % (len(want & delivered()), len(want)))
        check(wait_until(lambda: standby.psql("SELECT count(*) FROM %s" % table).strip() == "0", 20, 0.1),
              "the delivered messages left the table")
        got = bodies()
        twice = sorted({b for b in got if got.count(b) > 1})
        check(not twice, "each message delivered once: %s" % twice[:10])
        print("  dump after the failover: %d messages, each delivered once" % len(got))
    finally:
        uas.close()
    check(srv.stop() == 0, "server stopped cleanly")


class SlowUas(e2e.Uas):
    """e2e.Uas answering each MESSAGE after `delay` seconds (deliveries stay in
    flight long enough for a failover to hit them)."""

    def __init__(self, delay):
        self.delay = delay
        super().__init__()

    def _answer(self, data, send):
        t = threading.Timer(self.delay, e2e.Uas._answer, (self, data, send))
        t.daemon = True
        t.start()


def register_all(port, users, uas_port):
    for u in users:
        to = "sip:%s@127.0.0.1" % u
        st, _, _ = sip_request(port, "REGISTER", "sip:%s:%d" % (LOOPBACK, port), "udp",
                               "Contact: <sip:%s@127.0.0.1:%d>\r\nExpires: 300\r\n" % (u, uas_port),
                               to=to, frm=to)
        check(st == 200, "REGISTER %s -> %s" % (u, st))


def test_failover_during_dump(tmp):
    """The primary dies while stored messages are being delivered: nothing
    is lost (every message is delivered, the table ends empty), and a message
    delivered twice is one whose acknowledgement was in flight: same id."""
    primary, standby = sync_pair(tmp)
    table = "ha_dump_%d" % os.getpid()
    # short leases: a delivery whose acknowledgement died with the primary is
    # retried within seconds
    srv = Server(tmp, "dump", url_of(primary, standby, extra="&target_session_attrs=read-write"),
                 table, msilo="lease_time = 5\ncheck_time = 1\ndump_window = 2")
    users = ["fd%02d" % i for i in range(10)]
    n = 300
    for i in range(1, n + 1):
        st = message(srv.port, users[i % len(users)], b"msgid=%d; dump" % i)
        check(st == 202, "stored message %d -> %s" % (i, st))
    uas = SlowUas(0.05)
    try:
        register_all(srv.port, users, uas.port)

        def ids():
            return re.findall(r"msgid=\d+", "\n".join(b.decode(errors="replace") for _, _, b in uas.messages()))

        check(wait_until(lambda: len(ids()) >= 40, 20, 0.01), "deliveries under way")
        t_fail = time.monotonic()
        primary.stop("immediate")
        standby.ctl("promote")
        before = len(set(ids()))

        def drained():
            return standby.psql("SELECT count(*) FROM %s" % table).strip() == "0"

        # the dumps go on by themselves (retry timer); a REGISTER again after
        # the leases ran out takes whatever is left at once
        t_deadline = time.monotonic() + 60
        while not drained() and time.monotonic() < t_deadline:
            if wait_until(drained, 7, 0.2):
                break
            register_all(srv.port, users, uas.port)
        check(drained(), "every message delivered and removed from the new primary's table")
        recovered = time.monotonic() - t_fail
        got = ids()
        want = {"msgid=%d" % i for i in range(1, n + 1)}
        missing = sorted(want - set(got))
        check(not missing, "nothing lost: %s" % missing[:10])
        # duplicates: the same message (same X-Msilo-Id) sent again
        by_body = {}
        for _, hdrs, b in uas.messages():
            m = re.search(r"msgid=\d+", b.decode(errors="replace"))
            if m:
                by_body.setdefault(m.group(0), set()).add(e2e.header(hdrs, "X-Msilo-Id"))
        check(all(None not in v for v in by_body.values()), "every delivery carries X-Msilo-Id")
        twice = [k for k in by_body if got.count(k) > 1]
        check(all(len(by_body[k]) == 1 for k in twice),
              "a message delivered twice has one id: %s" % [(k, by_body[k]) for k in twice][:5])
        print("  failover during a dump: %d messages, %d delivered before the primary stopped, "
              "%d delivered twice (same id), all delivered %.1f s after it stopped"
              % (n, before, len(twice), recovered))
    finally:
        uas.close()
    check(srv.stop() == 0, "server stopped cleanly")


TESTS = [test_start_database_down, test_failover, test_failover_during_dump]


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("tests", nargs="*")
    ARGS = ap.parse_args()
    e2e.ARGS = ARGS
    if not bindir() or not shutil.which("runuser" if os.getuid() == 0 else "true"):
        print("SKIP: no PostgreSQL server binaries (set PG_BINDIR)")
        return 1 if os.environ.get("MSILO_REQUIRE_PG") == "1" else 77
    tests = [t for t in TESTS if not ARGS.tests or t.__name__ in ARGS.tests]
    tmp = tempfile.mkdtemp(prefix="msilo-failover-")
    os.chmod(tmp, 0o755)
    signal.signal(signal.SIGTERM, lambda *a: (e2e.stop_all(), sys.exit(1)))
    failed = []
    try:
        for name, t in [(t.__name__, t) for t in tests]:
            f, s = e2e.run_each([(name, t)], tmp)
            failed += f + s
            for c in CLUSTERS:
                c.stop_quietly()
            CLUSTERS.clear()
    finally:
        for c in CLUSTERS:
            c.stop_quietly()
        e2e.finish(tmp, failed, ARGS.keep)
    print("%d passed, %d failed" % (len(tests) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
