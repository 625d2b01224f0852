#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Security of msilo-server on 127.0.0.1: Digest authentication of REGISTER
(and MESSAGE), secrets kept out of logs and out of world-readable files.

  security.py --server build/examples/msilo-server/msilo-server [TEST...]

Exit status: 0 passed, 1 failed.
"""
import hashlib
import os
import re
import socket
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402
from e2e import LOOPBACK, Failure, check, wait_until, read  # noqa: E402

ARGS = None
REALM = "msilo.test"


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def users_file(tmp):
    path = os.path.join(tmp, "users")
    with open(path, "w") as f:
        f.write("# user:password:realm, or user:realm:HA1\n")
        f.write("alice:alicepw:%s\n" % REALM)
        f.write("bob:%s:%s\n" % (REALM, md5("bob:%s:bobpw" % REALM)))
        f.write("mallory:mallorypw:%s\n" % REALM)
    os.chmod(path, 0o600)
    return path


def auth_conf(tmp, users, message=False, name="auth.conf", server=""):
    path = e2e.write_conf(tmp, name, "[server]\nauth_users = %s\nauth_realm = %s\nauth_message = %d\n%s"
                          "[msilo]\nadd_date = 0\n" % (users, REALM, 1 if message else 0, server))
    os.chmod(path, 0o600)
    return path


def request(port, method, ruri, to, frm, extra="", body=b"", auth=None, to_hdr=None,
            from_hdr=None):
    """One UDP request, with an Authorization header answering `auth`
    (challenge params, user, password) when given; to_hdr / from_hdr replace
    the "<uri>" of To / From. (status, headers)."""
    def make(lport):
        e2e._seq[0] += 1
        n = e2e._seq[0]
        hdr = ""
        if auth:
            ch, user, pw = auth
            cnonce, nc = "c%d" % n, "00000001"
            ha1 = md5("%s:%s:%s" % (user, ch["realm"], pw))
            ha2 = md5("%s:%s" % (method, ruri))
            resp = md5("%s:%s:%s:%s:auth:%s" % (ha1, ch["nonce"], nc, cnonce, ha2))
            hdr = ('Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", '
                   'response="%s", algorithm=MD5, cnonce="%s", qop=auth, nc=%s%s\r\n'
                   % (user, ch["realm"], ch["nonce"], ruri, resp, cnonce, nc,
                      ', opaque="%s"' % ch["opaque"] if ch.get("opaque") else ""))
        return ("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-sec-%d-%d;rport\r\n"
                "From: %s;tag=s%d\r\nTo: %s\r\nCall-ID: sec-%d-%d@127.0.0.1\r\nCSeq: %d %s\r\n"
                "Max-Forwards: 70\r\n%s%sContent-Length: %d\r\n\r\n"
                % (method, ruri, lport, os.getpid(), n, from_hdr or "<%s>" % frm, n,
                   to_hdr or "<%s>" % to, os.getpid(), n, n, method,
                   hdr, extra, len(body))).encode() + body
    r = e2e.sip_exchange(port, "udp", make, 5)
    if r is None:
        raise Failure("no answer to %s" % method)
    status, _, hdrs, _ = r
    return status, hdrs


def challenge(hdrs):
    v = e2e.header(hdrs, "WWW-Authenticate") or ""
    check(v.startswith("Digest "), "a Digest challenge: %r" % v)
    return dict(re.findall(r'(\w+)="?([^",]*)"?', v[7:]))


def register(srv, user, contact, auth_as=None, aor_user=None, to_hdr=None):
    """REGISTER aor_user (default user) with credentials of auth_as=(user, pw)."""
    aor = "sip:%s@127.0.0.1" % (aor_user or user)
    ruri = "sip:127.0.0.1:%d" % srv.port
    extra = "Contact: <%s>\r\nExpires: 300\r\n" % contact
    st, h = request(srv.port, "REGISTER", ruri, aor, aor, extra, to_hdr=to_hdr, from_hdr=to_hdr)
    if st != 401 or not auth_as:
        return st, h
    return request(srv.port, "REGISTER", ruri, aor, aor, extra, auth=(challenge(h),) + auth_as,
                   to_hdr=to_hdr, from_hdr=to_hdr)


def store(srv, user, body):
    st, _ = request(srv.port, "MESSAGE", "sip:%s@127.0.0.1" % user, "sip:%s@127.0.0.1" % user,
                    "sip:carol@127.0.0.1", "Content-Type: text/plain\r\n", body)
    return st


def test_register_digest(tmp):
    """With auth on: a REGISTER without credentials gets 401 and nothing is
    dumped; wrong password: 401 again, nothing dumped; valid credentials of
    another user: 403, nothing dumped; the AoR's own (password or HA1 in the
    file): 200 and the stored messages arrive."""
    srv = e2e.Server(tmp, auth_conf(tmp, users_file(tmp)))
    uas = e2e.Uas(200)
    try:
        check("authentication REGISTER" in read(srv.log), "start-up line says auth is on")
        check(store(srv, "alice", b"for alice") == 202, "stored for alice")
        check(store(srv, "bob", b"for bob") == 202, "stored for bob")
        contact = "sip:x@127.0.0.1:%d" % uas.port
        st, h = register(srv, "alice", contact)
        check(st == 401, "no credentials -> %d" % st)
        ch = challenge(h)
        check(ch.get("realm") == REALM and ch.get("nonce"), "challenge has realm and nonce: %s" % ch)
        st, _ = register(srv, "alice", contact, ("alice", "wrong"))
        check(st in (401, 403), "wrong password -> %d" % st)
        st, _ = register(srv, "alice", contact, ("bob", "bobpw"))
        check(st == 403, "bob's valid credentials for alice's AoR -> %d" % st)
        st, _ = register(srv, "alice", contact, ("nobody", "x"))
        check(st in (401, 403), "unknown user -> %d" % st)
        check(not wait_until(lambda: uas.messages(), 1.0), "nothing dumped to a stranger")
        # a query (no Contact) must not list alice's bindings either
        st, _ = request(srv.port, "REGISTER", "sip:127.0.0.1:%d" % srv.port, "sip:alice@127.0.0.1",
                        "sip:alice@127.0.0.1")
        check(st == 401, "binding query without credentials -> %d" % st)

        st, _ = register(srv, "alice", contact, ("alice", "alicepw"))
        check(st == 200, "alice's own credentials -> %d" % st)
        check(wait_until(lambda: [m for m in uas.messages() if m[2] == b"for alice"], 5),
              "alice's message dumped after she authenticated")
        st, _ = register(srv, "bob", contact, ("bob", "bobpw"))
        check(st == 200, "bob with an HA1 line -> %d" % st)
        check(wait_until(lambda: len(uas.messages()) == 2, 5), "bob's message dumped")
        check(all(m[2] in (b"for alice", b"for bob") for m in uas.messages()), "only theirs")
        st, _, _ = e2e.sip_request(srv.port, "MESSAGE", "sip:dave@127.0.0.1", "udp",
                                   "Content-Type: text/plain\r\n", b"x", to="sip:dave@127.0.0.1")
        check(st == 202, "MESSAGE needs no credentials without auth_message (%d)" % st)
    finally:
        uas.close()
        rc, log = srv.stop()
    check(re.search(r"auth_challenged=[1-9]", log) and re.search(r"auth_forbidden=[1-9]", log),
          "statistics count challenges and refusals")
    check("alicepw" not in log and "bobpw" not in log, "no password in the log")


def test_message_digest(tmp):
    """auth_message = 1: a MESSAGE is stored only when it authenticates as its From user."""
    srv = e2e.Server(tmp, auth_conf(tmp, users_file(tmp), message=True))
    try:
        ruri = "sip:dave@127.0.0.1"
        args = (srv.port, "MESSAGE", ruri, ruri, "sip:alice@127.0.0.1", "Content-Type: text/plain\r\n", b"hi")
        st, h = request(*args)
        check(st == 401, "MESSAGE without credentials -> %d" % st)
        ch = challenge(h)
        st, _ = request(*args, auth=(ch, "bob", "bobpw"))
        check(st == 403, "From alice with bob's credentials -> %d" % st)
        st, _ = request(*args, auth=(ch, "alice", "alicepw"))
        check(st == 202, "From alice with alice's credentials -> %d" % st)
    finally:
        rc, log = srv.stop()
    m = re.findall(r"stored_messages=(\d+)", log)
    check(m and m[-1] == "1", "exactly one message stored (%s)" % (m[-1] if m else None))


def from_uri(msg):
    v = e2e.header(msg[1], "From") or ""
    m = re.search(r"<([^>]*)>", v)
    return m.group(1) if m else v.split(";")[0].strip()


def test_display_name_is_not_the_address(tmp):
    """A quoted display name that reads like another user's address changes
    nothing. Mallory, with her own credentials, REGISTERs with
    To: "<sip:bob@H>" <sip:mallory@H>: 200, and she gets her own message, none
    of bob's. With auth_message = 1, her MESSAGE From "<sip:bob@H>"
    <sip:mallory@H> is stored From mallory. With domains set, a MESSAGE whose
    To is "<sip:bob@evil.example>" <sip:bob@H> is stored for bob@H."""
    users = users_file(tmp)
    srv = e2e.Server(tmp, auth_conf(tmp, users, message=True, server="domains = 127.0.0.1\n"))
    mal, bob, alice = e2e.Uas(200), e2e.Uas(200), e2e.Uas(200)
    trick = '"<sip:bob@127.0.0.1>" <sip:mallory@127.0.0.1>'
    try:
        # two messages for bob and one for mallory, from carol (authenticated)
        for user, body in (("bob", b"for bob 1"), ("bob", b"for bob 2"), ("mallory", b"for mallory")):
            args = (srv.port, "MESSAGE", "sip:%s@127.0.0.1" % user, "sip:%s@127.0.0.1" % user,
                    "sip:alice@127.0.0.1", "Content-Type: text/plain\r\n", body)
            st, h = request(*args)
            check(st == 401, "challenged (%d)" % st)
            st, _ = request(*args, auth=(challenge(h), "alice", "alicepw"))
            check(st == 202, "stored %s (%d)" % (body, st))
        # a MESSAGE without a user in the R-URI: the owner comes from To
        args = (srv.port, "MESSAGE", "sip:127.0.0.1", None, "sip:alice@127.0.0.1",
                "Content-Type: text/plain\r\n", b"for bob, not evil")
        kw = dict(to_hdr='"<sip:bob@evil.example>" <sip:bob@127.0.0.1>')
        st, h = request(*args, **kw)
        st, _ = request(*args, auth=(challenge(h), "alice", "alicepw"), **kw)
        check(st == 202, "stored for bob@127.0.0.1 (%d)" % st)

        st, _ = register(srv, "mallory", "sip:m@127.0.0.1:%d" % mal.port, ("mallory", "mallorypw"),
                         to_hdr=trick)
        check(st == 200, "mallory's REGISTER for her own AoR -> %d" % st)
        check(wait_until(lambda: mal.messages(), 5), "mallory's own message arrived")
        check(not wait_until(lambda: len(mal.messages()) > 1, 1.0), "nothing more for mallory")
        got = [m[2] for m in mal.messages()]
        check(got == [b"for mallory"], "mallory got only hers: %r" % got)

        # mallory, authenticated as mallory, sends as "<sip:bob@...>" <sip:mallory@...>
        args = (srv.port, "MESSAGE", "sip:alice@127.0.0.1", "sip:alice@127.0.0.1", None,
                "Content-Type: text/plain\r\n", b"who am I")
        st, h = request(*args, from_hdr=trick)
        st, _ = request(*args, auth=(challenge(h), "mallory", "mallorypw"), from_hdr=trick)
        check(st == 202, "mallory's MESSAGE stored (%d)" % st)

        st, _ = register(srv, "bob", "sip:b@127.0.0.1:%d" % bob.port, ("bob", "bobpw"))
        check(st == 200, "bob registers (%d)" % st)
        check(wait_until(lambda: len(bob.messages()) == 3, 5), "bob got his 3: %r"
              % [m[2] for m in bob.messages()])
        check(sorted(m[2] for m in bob.messages()) == [b"for bob 1", b"for bob 2", b"for bob, not evil"],
              "bob's own messages")
        st, _ = register(srv, "alice", "sip:a@127.0.0.1:%d" % alice.port, ("alice", "alicepw"))
        check(st == 200 and wait_until(lambda: alice.messages(), 5), "alice got mallory's message")
        check(from_uri(alice.messages()[0]) == "sip:mallory@127.0.0.1",
              "stored From is mallory's: %r" % e2e.header(alice.messages()[0][1], "From"))
    finally:
        for u in (mal, bob, alice):
            u.close()
        srv.stop()


class Relay:
    """A stateless proxy on 127.0.0.1 that sends every request it gets back
    to the server (an alias of the server, as far as the server can tell:
    another port), with its own Via and Max-Forwards one less, and relays
    the responses down the Via path. Requests go on after `delay` seconds,
    as through a loaded network."""

    def __init__(self, server_port, delay=0.0):
        self.server_port = server_port
        self.delay = delay
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            if lines[0].startswith(b"SIP/2.0"):
                vias = [i for i, l in enumerate(lines) if l.lower().startswith(b"via:")]
                if len(vias) < 2:
                    continue
                del lines[vias[0]]
                m = re.search(rb"SIP/2.0/UDP ([0-9.]+):(\d+)", lines[vias[1] - 1])
                if m:
                    self.sock.sendto(b"\r\n".join(lines) + b"\r\n\r\n" + body,
                                     (m.group(1).decode(), int(m.group(2))))
                continue
            self.requests += 1
            out = [lines[0], b"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-relay-%d"
                   % (self.port, self.requests)]
            for l in lines[1:]:
                if l.lower().startswith(b"max-forwards:"):
                    l = b"Max-Forwards: %d" % (int(l.split(b":")[1]) - 1)
                out.append(l)
            data = b"\r\n".join(out) + b"\r\n\r\n" + body
            t = threading.Timer(self.delay, self._send, (data,))
            t.daemon = True
            t.start()

    def _send(self, data):
        try:
            self.sock.sendto(data, (LOOPBACK, self.server_port))
        except OSError:
            pass

    def close(self):
        self.stopped = True
        self.thread.join(2)
        self.sock.close()


def test_forwarding_loop(tmp):
    """A MESSAGE is stored once, not once per trip round a loop. A REGISTER
    whose Contact is the server itself gets 403. A Contact that leads back to
    the server by another way (a proxy that sends everything back) makes the
    MESSAGE return unchanged: 482 Loop Detected. With a slow way round, every
    hop's forward times out first and each would store its own copy: one
    request is stored once, whichever hop gets there first, and the sender
    gets 202."""
    srv = e2e.Server(tmp, e2e.write_conf(tmp, "loop.conf", "[msilo]\nadd_date = 0\n"),
                     ["--forward-timeout", "5"])
    relay = Relay(srv.port, delay=0.010)
    ruri = "sip:127.0.0.1:%d" % srv.port
    try:
        for contact in ("sip:bob@127.0.0.1:%d" % srv.port, "sip:x@127.0.0.1:%d;transport=tcp" % srv.port):
            st, h = request(srv.port, "REGISTER", ruri, "sip:bob@127.0.0.1", "sip:bob@127.0.0.1",
                            "Contact: <%s>\r\nExpires: 300\r\n" % contact)
            check(st == 403 and "this server" in (e2e.header(h, "Warning") or ""),
                  "binding to the server itself refused: %d %s" % (st, e2e.header(h, "Warning")))
        st, _ = request(srv.port, "REGISTER", ruri, "sip:bob@127.0.0.1", "sip:bob@127.0.0.1",
                        "Contact: <sip:bob@127.0.0.1:%d>\r\nExpires: 300\r\n" % relay.port)
        check(st == 200, "binding to the relay: %d" % st)
        for i in range(3):
            st, _ = request(srv.port, "MESSAGE", "sip:bob@127.0.0.1", "sip:bob@127.0.0.1",
                            "sip:carol@127.0.0.1", "Content-Type: text/plain\r\n", b"loop %d" % i)
            check(st == 202, "MESSAGE %d: %d" % (i, st))
        e2e.wait_quiet(lambda: relay.requests, quiet=0.5, timeout=30)  # the loops have ended
        check(relay.requests == 6, "went round twice before the loop showed: %d"
              % relay.requests)
    finally:
        relay.close()
        rc, log = srv.stop()
    stored = re.findall(r"stored_messages=(\d+)", log)
    check(stored and stored[-1] == "3", "3 MESSAGEs, 3 stored: %s" % (stored[-1:] or None))
    check(re.findall(r" loops=(\d+)", log)[-1:] == ["3"], "3 loops detected")
    once = re.findall(r"stored_once=(\d+)", log)
    check(once and int(once[-1]) >= 3, "the second hop's stores were not stored again: %s" % once[-1:])
    check("482" in log, "the loop is logged")


def test_secret_files(tmp):
    """A configuration file holding a database password, or a users file,
    that others can read is refused (not just warned about)."""
    conf = e2e.write_conf(tmp, "pw.conf", "[msilo]\ndb_url = postgres://u:s3cret@127.0.0.1:1/db\n")
    os.chmod(conf, 0o644)
    r = e2e.run([ARGS.server, "-c", conf, "--check-config"])
    check(r.returncode == 1 and b"readable by others" in r.stdout, "0644 with a password refused: %s" % r.stdout)
    check(b"s3cret" not in r.stdout, "the refusal does not print the password")
    os.chmod(conf, 0o640)
    r = e2e.run([ARGS.server, "-c", conf, "--check-config"])
    check(r.returncode == 0, "0640 accepted: %s" % r.stdout)
    for i, url in enumerate(("host=127.0.0.1 port=1 password = S3cretPw!",
                             "postgres://u@127.0.0.1:1/db?%70assword=S3cretPw!",
                             "postgresql://u:S3cret%50w!@127.0.0.1:1/db")):
        c = e2e.write_conf(tmp, "pw%d.conf" % i, "[msilo]\ndb_url = %s\n" % url)
        os.chmod(c, 0o644)
        r = e2e.run([ARGS.server, "-c", c, "--check-config"])
        check(r.returncode == 1 and b"readable by others" in r.stdout,
              "0644 with %s refused: %s" % (url, r.stdout))
        check(b"S3cret" not in r.stdout, "the refusal does not print the password")
    conf2 = e2e.write_conf(tmp, "nopw.conf", "[msilo]\ndb_url = postgres://u@127.0.0.1:1/db\n")
    os.chmod(conf2, 0o644)
    check(e2e.run([ARGS.server, "-c", conf2, "--check-config"]).returncode == 0,
          "0644 without a password accepted")
    users = users_file(tmp)
    os.chmod(users, 0o644)
    r = e2e.run([ARGS.server, "-c", auth_conf(tmp, users, name="a2.conf"), "--check-config"])
    check(r.returncode == 1 and b"readable by others" in r.stdout, "world-readable users file refused: %s" % r.stdout)
    r = e2e.run([ARGS.server, "-c", e2e.write_conf(tmp, "bad-auth.conf", "[server]\nauth_message = maybe\n"),
                 "--check-config"])
    check(r.returncode == 1 and b"auth_message" in r.stdout, "bad boolean refused: %s" % r.stdout)


def test_bad_config_lines(tmp):
    """The loader refuses a bad file with a message naming the line: an
    unknown key, a wrong type, a template with an unknown variable, a bad
    [server] limit; the server never starts half-configured."""
    cases = [("[msilo]\n# c\ncheck_time = 5\nno_such = 1\n", b":4:", b"no_such"),
             ("[server]\n\nmax_headers = lots\n", b":3:", b"max_headers"),
             ("[msilo]\nfrom_address = sip:r@127.0.0.1\n\noffline_message = hi $zz\n"
              "content_type_hdr = Content-Type: text/plain\\r\\n\n", b":4:", b"$zz"),
             ("[msilo]\noffline_message = hi\n", b":2:", b"content_type_hdr"),
             ("[server]\nmax_header_size = 10\n", b":2:", b"max_header_size"),
             # a bad escape: GLib returns a value and an error; refused
             ("[msilo]\ncontent_type_hdr = a\\qb\nexpire_time = 10\n", b":2:", b"content_type_hdr")]
    for i, (text, line, word) in enumerate(cases):
        conf = e2e.write_conf(tmp, "badline%d.conf" % i, text)
        r = e2e.run([ARGS.server, "-c", conf, "--check-config"])
        check(r.returncode == 1 and line in r.stdout and word in r.stdout,
              "case %d: exit %d, %r" % (i, r.returncode, r.stdout))
        port = e2e.free_port()
        r = e2e.run([ARGS.server, "-c", conf, "-l", "sip:127.0.0.1:%d" % port], timeout=20)
        check(r.returncode == 1 and b"listening" not in r.stdout, "case %d never starts" % i)


def test_password_not_logged(tmp):
    """The PostgreSQL password never reaches the log: the start-up line
    shows the URL masked, and a failed connection does not print it (the
    server starts with its database unreachable and answers 503)."""
    for url in ("postgresql://msilo:Sup3rS3cret@127.0.0.1:1/msilo",
                "host=127.0.0.1 port=1 user=msilo password=Sup3rS3cret dbname=msilo",
                "host=127.0.0.1 port=1 user=msilo password = Sup3rS3cret dbname=msilo",
                "postgresql://msilo@127.0.0.1:1/msilo?%70assword=Sup3rS3cret",
                "postgresql://msilo@127.0.0.1:1/msilo?password=Sup3rS3cret&sslmode=disable"):
        srv = e2e.Server(tmp, None, ["--store", "postgres", "--db-url", url])
        try:
            st = e2e.sip_request(srv.port, "MESSAGE", "sip:erin@127.0.0.1", "udp",
                                 "Content-Type: text/plain\r\n", b"x", to="sip:erin@127.0.0.1")[0]
            check(st == 503, "MESSAGE with the database unreachable -> %d (want 503)" % st)
        finally:
            _, out = srv.stop()
        check("Sup3rS3cret" not in out, "password in the output: %s" % out)
        check("password=***" in out, "masked URL in the start-up line: %s" % out)
        check("/cmdline" in out, "a password on the command line is warned about: %s" % out)
    pg = os.environ.get("MSILO_TEST_PG_URL")
    if pg:
        # a working server (trust auth ignores the password) logs it masked too
        url = pg.replace("postgresql://postgres@", "postgresql://postgres:Sup3rS3cret@")
        conf = e2e.write_conf(tmp, "pgpw.conf", "[msilo]\ndb_table = sec_%d\ndb_url = %s\n" % (os.getpid(), url))
        os.chmod(conf, 0o600)
        srv = e2e.Server(tmp, conf, ["--store", "postgres", "--migrate"])
        try:
            check(e2e.sip_request(srv.port, "MESSAGE", "sip:erin@127.0.0.1", "udp",
                                  "Content-Type: text/plain\r\n", b"x", to="sip:erin@127.0.0.1")[0] == 202,
                  "stored through the password URL")
        finally:
            rc, log = srv.stop()
        check("Sup3rS3cret" not in log and "password=***" in log, "masked in a running server's log")


TESTS = [test_register_digest, test_message_digest, test_display_name_is_not_the_address,
         test_forwarding_loop, test_secret_files, test_bad_config_lines, test_password_not_logged]


def main():
    global ARGS
    ARGS = e2e.script_args()
    return e2e.run_script(TESTS, ARGS, "msilo-sec-")


if __name__ == "__main__":
    sys.exit(main())
