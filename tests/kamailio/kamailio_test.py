#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""tests/kamailio: Debian's /usr/sbin/kamailio loading msilo_lib, on the
test PostgreSQL cluster (MSILO_TEST_PG_URL, scripts/pg-test-cluster), with
sipp and Python user agents on 127.0.0.1.

Exit status: 0 all passed, 1 a test failed, 77 skipped (no Kamailio, no
module built, or no PostgreSQL and MSILO_REQUIRE_PG unset).
Nothing here sleeps: it waits for log lines, SIP packets and process exits.
"""
import argparse, os, re, select, signal, socket, subprocess, sys, tempfile, threading, time

HOST = "127.0.0.1"
SCHEMA = "/usr/share/kamailio/postgres"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def free_port():
    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((HOST, 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind((HOST, port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()


def psql(url, sql):
    out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                         capture_output=True, text=True)
    if out.returncode:
        raise Failure(f"psql: {sql}: {out.stderr.strip()}")
    return out.stdout.strip()


def fresh_schema(url):
    """The silo table as Kamailio's own schema creates it (msilo_lib migrates it)."""
    psql(url, "DROP TABLE IF EXISTS silo_delivery, silo_device, silo, version")
    for f in ("standard", "msilo"):
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-f",
                            f"{SCHEMA}/{f}-create.sql"], capture_output=True, text=True)
        if r.returncode:
            raise Failure(f"{f}-create.sql: {r.stderr.strip()}")


class Kamailio:
    """One kamailio -DD -E; its stderr goes to a log file and is watched."""

    def __init__(self, args, workdir, name, defines=()):
        self.a, self.dir, self.port = args, workdir, free_port()
        self.ctl = os.path.join(workdir, f"{name}.ctl")
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.defines = list(defines)
        self.lines, self.cond = [], threading.Condition()
        self.proc = None

    def argv(self, check_only=False, cfg=None):
        d = [f'MSILO_LIB_SO="{self.a.module}"', f'DBURL="{self.a.pg_url}"',
             f"SIP_PORT={self.port}", f'CTL_SOCKET="unixs:{self.ctl}"',
             f'OUTBOUND_PROXY="sip:{HOST}:{self.port};transport=udp"'] + self.defines
        argv = [self.a.kamailio, "-f", cfg or self.a.cfg, "-Y", self.dir, "-m", "64", "-M", "8"]
        argv += ["-c"] if check_only else ["-DD", "-E", "-P", os.path.join(self.dir, "k.pid")]
        for x in d:
            argv += ["-A", x]
        return argv

    def start(self):
        self.lines = []
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, errors="replace")
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        try:
            self.wait_log(r"msilo_lib: engine process ready", 30)
        except Failure:
            self.stop()  # never leave a kamailio behind
            raise
        return self

    def _read(self, proc):
        with open(self.log_path, "a") as f:
            for line in proc.stderr:
                f.write(line)
                with self.cond:
                    self.lines.append(line)
                    self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_log(self, pattern, timeout):
        rx, end = re.compile(pattern), time.monotonic() + timeout
        with self.cond:
            while True:
                if any(rx.search(l) for l in self.lines):
                    return
                if self.proc.poll() is not None and not self.proc.stderr.readable():
                    break
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, 1.0))
                if self.proc.poll() is not None:
                    if any(rx.search(l) for l in self.lines):
                        return
                    raise Failure(f"kamailio exited ({self.proc.returncode}) before '{pattern}'; "
                                  f"see {self.log_path}")
        raise Failure(f"no '{pattern}' in {self.log_path} within {timeout}s")

    def errors(self):
        return [l for l in self.lines if " ERROR: " in l or " CRITICAL: " in l or
                "didn't release transaction" in l]

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Failure("kamailio did not stop within 20 s of SIGTERM")
        self.proc = None

    def kamcmd(self, *cmd):
        r = subprocess.run([self.a.kamcmd, "-s", f"unixs:{self.ctl}"] + list(cmd),
                           capture_output=True, text=True, timeout=10)
        if r.returncode:
            raise Failure(f"kamcmd {' '.join(cmd)}: {r.stderr.strip()}")
        return r.stdout

    def stats(self):
        out = self.kamcmd("stats.get_statistics", "msilo_lib:")
        return {k: int(v) for k, v in re.findall(r"msilo_lib:(\w+) = (\d+)", out)}


class UA:
    """A UDP user agent on 127.0.0.1: registers, answers MESSAGEs with `code`."""

    def __init__(self, user, code=200):
        self.user, self.code = user, code
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.messages = []  # (msilo id, body, transaction key)
        self.replies = []
        self.reply_calls = []  # (status, Call-ID)
        self.cseq = 0

    def register(self, kam, expires=600):
        self.cseq += 1
        m = (f"REGISTER sip:{HOST}:{kam.port} SIP/2.0\r\n"
             f"Via: SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK-{self.user}-{self.cseq}\r\n"
             f"From: <sip:{self.user}@{HOST}>;tag={self.user}\r\nTo: <sip:{self.user}@{HOST}>\r\n"
             f"Call-ID: reg-{self.user}@{HOST}\r\nCSeq: {self.cseq} REGISTER\r\nMax-Forwards: 70\r\n"
             f"Contact: <sip:{self.user}@{HOST}:{self.port}>\r\nExpires: {expires}\r\n"
             f"Content-Length: 0\r\n\r\n")
        self.sock.sendto(m.encode(), (HOST, kam.port))

    def message(self, kam, to, body, extra=""):
        self.cseq += 1
        b = body.encode()
        m = (f"MESSAGE sip:{to}@{HOST}:{kam.port} SIP/2.0\r\n"
             f"Via: SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK-m{self.user}-{self.cseq}\r\n"
             f"From: <sip:{self.user}@{HOST}>;tag=m{self.cseq}\r\nTo: <sip:{to}@{HOST}>\r\n"
             f"Call-ID: msg-{self.user}-{self.cseq}@{HOST}\r\nCSeq: {self.cseq} MESSAGE\r\n"
             f"Max-Forwards: 70\r\nContact: <sip:{self.user}@{HOST}:{self.port}>\r\n{extra}"
             f"Content-Type: text/plain\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b
        self.sock.sendto(m, (HOST, kam.port))

    def pump(self, until, timeout):
        """Receives (answering MESSAGEs) until until(self) is true or timeout."""
        return pump_all([self], lambda: until(self), timeout)

    def handle_one(self):
        data, addr = self.sock.recvfrom(65535)
        text = data.decode(errors="replace")
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        if lines[0].startswith("SIP/2.0"):
            self.replies.append(int(lines[0].split()[1]))
            cid = next((l.split(":", 1)[1].strip() for l in lines[1:]
                        if l.lower().startswith("call-id:")), None)
            self.reply_calls.append((int(lines[0].split()[1]), cid))
            return
        if not lines[0].startswith("MESSAGE"):
            return
        hdr = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            hdr.setdefault(k.strip().lower(), v.strip())
        key = (hdr.get("call-id"), hdr.get("cseq"))
        if not any(k == key for _, _, k in self.messages):  # not a retransmission
            self.messages.append((hdr.get("x-msilo-id"), body, key))
        keep = [l for l in lines[1:] if re.match(r"(?i)(via|from|to|call-id|cseq)\s*:", l)]
        reply = f"SIP/2.0 {self.code} Reply\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
        self.sock.sendto(reply.encode(), addr)

    def drain(self):
        """Handles what is already in the socket, without waiting."""
        while select.select([self.sock], [], [], 0)[0]:
            self.handle_one()

    def close(self):
        self.sock.close()


def pump_all(uas, until, timeout):
    """Serves every UA's socket until until() is true or timeout. @return until()."""
    end = time.monotonic() + timeout
    by_sock = {ua.sock: ua for ua in uas}
    while not until():
        left = end - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select(list(by_sock), [], [], left)
        for sock in r:
            by_sock[sock].handle_one()
    return True


def wait_for(cond, timeout, what):
    """Re-checks cond (a kamcmd or psql query) until true; select() is the wait."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise Failure(f"timed out waiting for {what}")
        select.select([], [], [], 0.1)


def with_kamailio(a, name, defines=()):
    fresh_schema(a.pg_url)
    return Kamailio(a, a.workdir, name, defines).start()


# ------------------------------------------------------------------ tests ---

def t_config_check(a):
    k = Kamailio(a, a.workdir, "check")
    r = subprocess.run(k.argv(check_only=True), capture_output=True, text=True)
    check(r.returncode == 0, f"kamailio -c refused the config: {r.stderr[-2000:]}")


def t_bad_modparam(a):
    base = open(a.cfg).read()
    anchor = 'modparam("msilo_lib", "db_table", "silo")\n'
    for line, name in [('modparam("msilo_lib", "expire_time", 0)', "expire_time"),
                       ('modparam("msilo_lib", "outbound_proxy", "not a uri")', "outbound_proxy"),
                       ('modparam("msilo_lib", "store_timeout", 1)', "store_timeout"),
                       ('modparam("msilo_lib", "no_such_param", 1)', "no_such_param")]:
        path = os.path.join(a.workdir, "bad.cfg")
        with open(path, "w") as f:
            f.write(base.replace(anchor, anchor + line + "\n"))
        k = Kamailio(a, a.workdir, "bad")
        r = subprocess.run(k.argv(check_only=True, cfg=path), capture_output=True, text=True)
        check(r.returncode != 0, f"kamailio -c accepted {line}")
        check(name in r.stderr, f"the refusal of {line} does not name {name}: {r.stderr[-1500:]}")


def t_store_and_dump(a, defines=(), name="dump"):
    """sipp stores 40 messages (202 each, rows there); 8 users register and
    get each exactly once; after the deliveries the table is empty."""
    k = with_kamailio(a, name, defines)
    try:
        ps = k.kamcmd("core.psx")
        workers = len(re.findall(r"udp receiver", ps))
        check(workers >= 4, f"{workers} UDP workers, want >= 4")
        users = [f"user{i}" for i in range(8)]
        csv = os.path.join(a.workdir, "store.csv")
        with open(csv, "w") as f:
            f.write("SEQUENTIAL\n")
            for n in range(40):
                f.write(f"{users[n % 8]};body-{n}\n")
        r = subprocess.run([a.sipp, f"{HOST}:{k.port}", "-sf", a.sipp_store, "-inf", csv,
                            "-i", HOST, "-p", str(free_port()), "-m", "40", "-r", "200",
                            "-l", "8", "-timeout", "60s", "-nostdin", "-trace_stat",
                            "-stf", os.path.join(a.workdir, "store-stat.csv")],
                           capture_output=True, text=True, cwd=a.workdir)
        check(r.returncode == 0, f"sipp store: rc {r.returncode}: {r.stdout[-1500:]} {r.stderr[-1500:]}")
        rows = psql(a.pg_url, "SELECT count(*), count(DISTINCT body) FROM silo")
        check(rows == "40|40", f"silo after the stores: {rows} (want 40|40)")
        check(k.stats().get("stored_messages") == 40, f"stats after the stores: {k.stats()}")
        # RPC: what msilo-admin shows
        check(k.kamcmd("msilo_lib.count").strip() == "40", "msilo_lib.count: not 40")
        check(k.kamcmd("msilo_lib.count", "user3@127.0.0.1").strip() == "5",
              "msilo_lib.count user3: not 5")
        listed = k.kamcmd("msilo_lib.list", "user3@127.0.0.1")
        check(len(re.findall(r"\bid: \d+", listed)) == 5 and "body-3" in listed,
              f"msilo_lib.list user3: {listed[:500]}")
        check(re.search(r"stored_messages: 40", k.kamcmd("msilo_lib.stats")),
              "msilo_lib.stats: stored_messages is not 40")
        uas = [UA(u) for u in users]
        for ua in uas:
            ua.register(k)
        check(pump_all(uas, lambda: all(len(ua.messages) >= 5 for ua in uas), 30),
              f"deliveries: {[len(ua.messages) for ua in uas]} (5 each expected)")
        pump_all(uas, lambda: False, 0.5)  # a late duplicate would arrive now
        ids = [m[0] for ua in uas for m in ua.messages]
        check(len(ids) == 40 and len(set(ids)) == 40, f"{len(ids)} deliveries, {len(set(ids))} ids")
        bodies = sorted(int(re.search(r"body-(\d+)", m[1]).group(1)) for ua in uas for m in ua.messages)
        check(bodies == list(range(40)), "delivered bodies differ from the stored ones")
        wait_for(lambda: k.stats().get("dumped_messages") == 40, 10, "dumped_messages == 40")
        st = k.stats()
        check(st.get("failed_messages") == 0, f"stats: {st}")
        wait_for(lambda: psql(a.pg_url, "SELECT count(*) FROM silo") == "0", 10, "an empty silo")
        check(not k.errors(), f"errors in {k.log_path}: {k.errors()[:3]}")
    finally:
        k.stop()


def t_async_reply(a):
    """The same with async_reply=1: the engine process answers the 202s."""
    t_store_and_dump(a, ["ASYNC_REPLY"], "async")


def t_max_messages(a):
    k = with_kamailio(a, "max", ["MAX_MESSAGES=2"])
    try:
        ua = UA("alice")
        for i in range(3):
            ua.message(k, "carol", f"m{i}")
            check(ua.pump(lambda x, n=i + 1: len(x.replies) >= n, 10), "no reply to a MESSAGE")
        check(ua.replies == [202, 202, 503], f"replies {ua.replies}, want 202 202 503")
        check(psql(a.pg_url, "SELECT count(*) FROM silo") == "2", "not 2 rows")
    finally:
        k.stop()


def t_notification(a):
    k = with_kamailio(a, "notify", ["NOTIFY"])
    try:
        ua = UA("alice")
        ua.message(k, "dave", "are you there?")
        check(ua.pump(lambda x: x.replies and x.messages, 10),
              f"replies {ua.replies}, notifications {len(ua.messages)}")
        check(ua.replies[0] == 202, f"reply {ua.replies[0]}")
        check("The user is offline" in ua.messages[0][1], f"notification: {ua.messages[0][1]!r}")
    finally:
        k.stop()


def t_expiry(a):
    """expire_time=1, check_time=1, clean_period=1: the rows go within seconds
    and a REGISTER afterwards delivers nothing."""
    k = with_kamailio(a, "expiry", ["EXPIRE_TIME=1", "CHECK_TIME=1", "CLEAN_PERIOD=1"])
    try:
        ua = UA("alice")
        for i in range(3):
            ua.message(k, "frank", f"old {i}")
        check(ua.pump(lambda x: len(x.replies) >= 3, 10) and ua.replies == [202] * 3,
              f"replies {ua.replies}")
        wait_for(lambda: psql(a.pg_url, "SELECT count(*) FROM silo") == "0", 15, "expiry")
        frank = UA("frank")
        frank.register(k)
        frank.pump(lambda x: False, 1.0)
        check(not frank.messages, f"{len(frank.messages)} expired messages delivered")
    finally:
        k.stop()


def t_reminder(a):
    """A MESSAGE the UA refuses (480) is stored by failure_route with the
    snd_time of its X-Snd-Time header (snd_time_avp); at that time the
    reminder goes to the AoR through this server and reaches the UA."""
    k = with_kamailio(a, "reminder", ["REMINDER"])
    try:
        erin = UA("erin", code=480)
        erin.register(k)
        check(erin.pump(lambda x: x.replies, 10) and erin.replies[0] == 200, "REGISTER failed")
        alice = UA("alice")
        when = time.strftime("%Y%m%d%H%M%S", time.localtime(time.time() + 2))
        alice.message(k, "erin", "remind me", f"X-Snd-Time: {when}\r\n")
        check(pump_all([alice, erin], lambda: alice.replies, 10), "no reply to the MESSAGE")
        check(alice.replies[0] == 202, f"reply {alice.replies[0]} (want 202 from failure_route)")
        check(psql(a.pg_url, "SELECT count(*) FROM silo WHERE snd_time > 0") == "1", "no reminder row")
        erin.code = 200
        seen = len(erin.messages)
        check(erin.pump(lambda x: len(x.messages) > seen, 15), "no reminder arrived")
        body = erin.messages[-1][1]
        check("remind me" in body and body.startswith("[Reminder message"), f"reminder body {body!r}")
        wait_for(lambda: psql(a.pg_url, "SELECT count(*) FROM silo") == "0", 10, "an empty silo")
    finally:
        k.stop()


def all_pids(root):
    """root and its descendants, from /proc."""
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        for t in os.listdir(f"/proc/{p}/task") if os.path.isdir(f"/proc/{p}/task") else []:
            try:
                todo += [int(c) for c in open(f"/proc/{p}/task/{t}/children").read().split()]
            except OSError:
                pass
    return out


def kill9_store_burst(a, defines, name):
    """kill -9 of every Kamailio process while 200 stores are in flight: after
    a restart every message answered 202 is delivered, none twice."""
    k = with_kamailio(a, name, defines)
    sender = UA("burst")
    body_of = {}
    try:
        for i in range(200):
            sender.message(k, f"k{i % 4}", f"burst-{i}")
            body_of[f"msg-burst-{sender.cseq}@{HOST}"] = f"burst-{i}"
        # wait for the first 202s, then kill everything at once
        check(sender.pump(lambda x: len(x.replies) >= 20, 20), f"{len(sender.replies)} replies")
        kill_all(k)
    finally:
        k.stop()
    sender.drain()  # answers sent before the kill
    accepted = {body_of[c] for code, c in sender.reply_calls if code == 202}
    check(len(accepted) >= 20, f"{len(accepted)} accepted")
    k2 = Kamailio(a, a.workdir, name + "-after", defines).start()
    try:
        uas = [UA(f"k{i}") for i in range(4)]
        rows = int(psql(a.pg_url, "SELECT count(*) FROM silo"))
        check(rows >= len(accepted), f"{rows} rows after the restart, {len(accepted)} were answered 202")
        print(f"     {name}: {len(accepted)} of 200 answered 202 before the kill, {rows} rows after")
        for ua in uas:
            ua.register(k2)
        check(pump_all(uas, lambda: sum(len(ua.messages) for ua in uas) >= rows, 30),
              f"{sum(len(ua.messages) for ua in uas)} of {rows} stored messages delivered")
        pump_all(uas, lambda: False, 0.5)
        got = [re.search(r"burst-\d+", m[1]).group(0) for ua in uas for m in ua.messages]
        check(len(got) == len(set(got)), "a message was delivered twice")
        lost = accepted - set(got)
        check(not lost, f"answered 202 and never delivered: {sorted(lost)[:10]}")
    finally:
        k2.stop()


def t_kill9_store_burst(a):
    kill9_store_burst(a, [], "kill9")


def t_kill9_store_burst_async(a):
    """The same with async_reply=1: the engine process sends the 202s."""
    kill9_store_burst(a, ["ASYNC_REPLY"], "kill9async")


def dropin_cfg(msilo_cfg, out):
    """The msilo config with only the loadmodule line and the module name of
    the modparams changed (doc/kamailio.md: the diff)."""
    text = open(msilo_cfg).read()
    check('loadmodule "msilo.so"' in text, f"no msilo.so in {msilo_cfg}")
    text = text.replace('loadmodule "msilo.so"', 'loadmodule "msilo_lib.so"')
    text = text.replace('modparam("msilo", ', 'modparam("msilo_lib", ')
    with open(out, "w") as f:
        f.write(text)


def t_dropin_peer_config(a):
    """bench/e2e's copy of the peer harness's kamailio-msilo.cfg, on the table
    Kamailio's schema creates: a store answered 202, a REGISTER gets it."""
    cfg = os.path.join(a.workdir, "dropin.cfg")
    dropin_cfg(a.msilo_cfg, cfg)
    fresh_schema(a.pg_url)
    k = Kamailio(a, a.workdir, "dropin")
    mods = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
    argv = [a.kamailio, "-f", cfg, "-Y", a.workdir, "-DD", "-E", "-m", "64", "-M", "8",
            "-L", f"{mods}:{os.path.dirname(a.module)}", "-A", "NO_DEFAULT_LISTEN",
            "-l", f"udp:{HOST}:{k.port}", "-l", f"tcp:{HOST}:{k.port}",
            "-A", f'OUTBOUND_PROXY="sip:{HOST}:{k.port};transport=udp"',
            "-A", f'DBURL="{a.pg_url}"', "-n", "4"]
    r = subprocess.run(argv[:1] + ["-c"] + argv[1:], capture_output=True, text=True)
    check(r.returncode == 0, f"kamailio -c refused the drop-in config: {r.stderr[-1500:]}")
    k.argv = lambda **kw: argv
    k.start()
    try:
        alice, bob = UA("alice"), UA("bob")
        alice.message(k, "bob", "dropped in")
        check(alice.pump(lambda x: x.replies, 10) and alice.replies[0] == 202,
              f"replies {alice.replies}")
        bob.register(k)
        check(bob.pump(lambda x: x.messages, 10), "bob got nothing after REGISTER")
        check("dropped in" in bob.messages[0][1], f"body {bob.messages[0][1]!r}")
        wait_for(lambda: psql(a.pg_url, "SELECT count(*) FROM silo") == "0", 10, "an empty silo")
    finally:
        k.stop()


def kill_all(k):
    for p in all_pids(k.proc.pid):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    k.proc.wait()
    k.proc = None


def t_kill9_dump(a):
    """kill -9 of every Kamailio process during a dump of 60 messages: after a
    restart (same instance_id) the rest is delivered; a message comes twice
    only if its row was still there at the kill (in flight, or delivered with
    its delete not committed yet), with the same id."""
    k = with_kamailio(a, "kill9dump")
    try:
        ua = UA("gina")
        for i in range(60):
            ua.message(k, "henry", f"dump-{i}")
        check(ua.pump(lambda x: len(x.replies) >= 60, 20) and ua.replies == [202] * 60,
              f"{ua.replies.count(202)} of 60 stored")
        ids = set(psql(a.pg_url, "SELECT id FROM silo").split())
        henry = UA("henry")
        henry.register(k)
        check(henry.pump(lambda x: len(x.messages) >= 10, 20), "the dump did not start")
        kill_all(k)
        # the rows left at the kill: delivered messages whose delete had not
        # committed, those in flight and the rest; only these may come again
        left = set(psql(a.pg_url, "SELECT id FROM silo").split())
    finally:
        k.stop()
    henry.drain()  # what the killed server sent before it died
    first = {m[0] for m in henry.messages}
    k2 = Kamailio(a, a.workdir, "kill9dump-after").start()
    try:
        henry.messages = []
        henry.register(k2)
        check(henry.pump(lambda x: first | {m[0] for m in x.messages} >= ids, 30),
              f"{len(ids - first - {m[0] for m in henry.messages})} messages never delivered")
        henry.pump(lambda x: False, 0.5)
        second = [m[0] for m in henry.messages]
        twice = sorted({i for i in second if second.count(i) > 1})
        check(not twice, f"after the restart ids {twice} came twice: "
              f"{[(m[0], m[2]) for m in henry.messages if m[0] in twice]}")
        again = first & set(second)
        check(again <= left, f"ids {sorted(again - left)} came again after their delete had "
              f"committed")
        check(len(again) < len(ids), "everything was delivered twice")
        wait_for(lambda: psql(a.pg_url, "SELECT count(*) FROM silo") == "0", 10, "an empty silo")
    finally:
        k2.stop()


TESTS = [t_config_check, t_dropin_peer_config, t_bad_modparam, t_store_and_dump, t_async_reply,
         t_max_messages,
         t_notification, t_expiry, t_reminder,
         t_kill9_store_burst, t_kill9_store_burst_async, t_kill9_dump]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kamailio", default="/usr/sbin/kamailio")
    p.add_argument("--kamcmd", default="/usr/sbin/kamcmd")
    p.add_argument("--module", default="")
    p.add_argument("--cfg", required=True)
    p.add_argument("--sipp", default="sipp")
    p.add_argument("--sipp-store", required=True)
    p.add_argument("--msilo-cfg", required=True, help="a msilo config (bench/e2e's)")
    p.add_argument("only", nargs="*")
    a = p.parse_args()
    a.cfg, a.sipp_store = os.path.abspath(a.cfg), os.path.abspath(a.sipp_store)
    a.msilo_cfg = os.path.abspath(a.msilo_cfg)
    a.module = os.path.abspath(a.module) if a.module else ""
    if not a.module or not os.path.exists(a.module) or not os.access(a.kamailio, os.X_OK):
        print("SKIP: no Kamailio or no msilo_lib module built")
        return 77
    a.pg_url = os.environ.get("MSILO_TEST_PG_URL")
    if not a.pg_url:
        if os.environ.get("MSILO_REQUIRE_PG") == "1":
            print("FAIL: MSILO_TEST_PG_URL is not set but MSILO_REQUIRE_PG=1")
            return 1
        print("SKIP: no MSILO_TEST_PG_URL (run under scripts/pg-test-cluster)")
        return 77
    failed = 0
    with tempfile.TemporaryDirectory(prefix="msilo-kam.") as d:
        a.workdir = d
        for t in TESTS:
            if a.only and t.__name__ not in a.only:
                continue
            t0 = time.monotonic()
            try:
                t(a)
                print(f"ok   {t.__name__} ({time.monotonic() - t0:.1f}s)", flush=True)
            except Failure as e:
                failed += 1
                print(f"FAIL {t.__name__}: {e}", flush=True)
                for f in sorted(os.listdir(d)):
                    if f.endswith(".log"):
                        print(f"---- {f} (last lines)")
                        print("".join(open(os.path.join(d, f)).readlines()[-15:]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
