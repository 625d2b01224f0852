#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Digest hardening of msilo-server (issue 17) on 127.0.0.1: replayed
credentials, the failure limit per source, the user compared with the domain,
SHA-256 (RFC 8760) offered beside MD5.

  auth_hardening.py --server build/examples/msilo-server/msilo-server [TEST...]

Exit status: 0 passed, 1 failed.
"""
import hashlib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402
import security  # noqa: E402
from e2e import check  # noqa: E402
from security import REALM, request, challenge  # noqa: E402

ARGS = None


def reg_args(srv, user, host="127.0.0.1"):
    aor = "sip:%s@%s" % (user, host)
    return (srv.port, "REGISTER", "sip:127.0.0.1:%d" % srv.port, aor, aor,
            "Contact: <sip:%s@127.0.0.1:5999>\r\nExpires: 60\r\n" % user)


def test_replay_gets_a_fresh_challenge(tmp):
    """The same nonce and nonce-count again (a captured Authorization sent
    again) is challenged anew; a higher nonce-count on the nonce is fine."""
    srv = e2e.Server(tmp, security.auth_conf(tmp, security.users_file(tmp)))
    try:
        args = reg_args(srv, "alice")
        st, h = request(*args)
        check(st == 401, "challenge: %d" % st)
        ch = challenge(h)
        st, _ = request(*args, auth=(ch, "alice", "alicepw"))
        check(st == 200, "first use: %d" % st)
        st, h = request(*args, auth=(ch, "alice", "alicepw"))
        check(st == 401 and challenge(h).get("nonce"), "the same nc again: %d" % st)
        check("challenged again" in e2e.read(srv.log), "logged")
    finally:
        srv.stop()


def test_failure_limit_per_source(tmp):
    """auth_max_failures = 3: after three wrong passwords from 127.0.0.1 even
    the right one gets 403 (Warning: Too many failed authentications)."""
    srv = e2e.Server(tmp, security.auth_conf(
        tmp, security.users_file(tmp), server="auth_max_failures = 3\nauth_failure_window = 60\n"))
    try:
        args = reg_args(srv, "alice")
        for i in range(3):
            st, h = request(*args)
            st, _ = request(*args, auth=(challenge(h), "alice", "wrong%d" % i))
            check(st in (401, 403), "wrong password %d: %d" % (i, st))
        st, h = request(*args)
        st, h = request(*args, auth=(challenge(h), "alice", "alicepw"))
        check(st == 403 and "Too many" in (e2e.header(h, "Warning") or ""),
              "the right password after three failures: %d %s" % (st, e2e.header(h, "Warning")))
    finally:
        srv.stop()


def test_user_with_domain(tmp):
    """A users-file line "carol@example.org" is valid for that AoR only, not
    for carol at another domain; a plain "alice" line stays valid."""
    users = security.users_file(tmp)
    with open(users, "a") as f:
        f.write("carol@example.org:carolpw:%s\n" % REALM)
    srv = e2e.Server(tmp, security.auth_conf(tmp, users))
    try:
        for host, want in (("example.org", 200), ("127.0.0.1", 403)):
            args = reg_args(srv, "carol", host)
            st, h = request(*args)
            st, _ = request(*args, auth=(challenge(h), "carol@example.org", "carolpw"))
            check(st == want, "carol@example.org's credentials for carol@%s: %d" % (host, st))
        args = reg_args(srv, "alice")
        st, h = request(*args)
        st, _ = request(*args, auth=(challenge(h), "alice", "alicepw"))
        check(st == 200, "plain alice: %d" % st)
    finally:
        srv.stop()


def challenges(h):
    """Every WWW-Authenticate of a 401 as (algorithm, params), in order."""
    out = []
    for v in e2e.headers_all(h, "WWW-Authenticate"):
        check(v.startswith("Digest "), "a Digest challenge: %r" % v)
        p = dict(re.findall(r'(\w+)="?([^",]*)"?', v[7:]))
        out.append((p.get("algorithm"), p))
    return out


def hexdigest(alg, text):
    return (hashlib.sha256 if alg == "SHA-256" else hashlib.md5)(text.encode()).hexdigest()


def authorization(alg, ch, method, ruri, user, pw, nc="00000001", cnonce="c0ffee", ha1=None,
                  response=None):
    """An Authorization header answering challenge @ch with @alg (RFC 7616 3.4.1)."""
    ha1 = ha1 or hexdigest(alg, "%s:%s:%s" % (user, ch["realm"], pw))
    ha2 = hexdigest(alg, "%s:%s" % (method, ruri))
    resp = response or hexdigest(alg, "%s:%s:%s:%s:auth:%s" % (ha1, ch["nonce"], nc, cnonce, ha2))
    return ('Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", '
            'response="%s", algorithm=%s, cnonce="%s", qop=auth, nc=%s\r\n'
            % (user, ch["realm"], ch["nonce"], ruri, resp, alg, cnonce, nc))


def auth_request(args, alg, ch, user, pw, **kw):
    port, method, ruri, to, frm, extra = args
    return request(port, method, ruri, to, frm,
                   extra + authorization(alg, ch, method, ruri, user, pw, **kw))


def test_sha256_and_md5(tmp):
    """The 401 challenges with SHA-256 first, then MD5 (RFC 8760 2.4); a
    SHA-256 response is accepted, an MD5 one too, a wrong SHA-256 one is not,
    a replayed SHA-256 nonce-count is challenged again; a SHA-256 HA1 line of
    the users file works."""
    users = security.users_file(tmp)
    with open(users, "a") as f:
        f.write("dave:%s:%s\n" % (REALM, hashlib.sha256(
            ("dave:%s:davepw" % REALM).encode()).hexdigest()))
    srv = e2e.Server(tmp, security.auth_conf(tmp, users))
    try:
        args = reg_args(srv, "alice")
        st, h = request(*args)
        chs = challenges(h)
        print("  401 challenges: %s" % e2e.headers_all(h, "WWW-Authenticate"))
        check(st == 401 and [a for a, _ in chs] == ["SHA-256", "MD5"],
              "401 with SHA-256 then MD5: %d %s" % (st, [a for a, _ in chs]))
        check(all(p.get("qop") == "auth" and p.get("realm") == REALM for _, p in chs),
              "qop=auth and our realm in both: %s" % chs)
        sha = chs[0][1]
        st, _ = auth_request(args, "SHA-256", sha, "alice", "alicepw")
        check(st == 200, "SHA-256 response accepted: %d" % st)
        st, _ = auth_request(args, "SHA-256", sha, "alice", "alicepw")
        check(st == 401, "the same SHA-256 nonce-count again: %d" % st)
        st, _ = auth_request(args, "SHA-256", sha, "alice", "alicepw", nc="00000002")
        check(st == 200, "a higher nonce-count: %d" % st)
        st, h = request(*args)
        st, _ = auth_request(args, "SHA-256", challenges(h)[0][1], "alice", "wrongpw")
        check(st in (401, 403), "wrong SHA-256 response refused: %d" % st)
        st, h = request(*args)
        st, _ = auth_request(args, "SHA-256", challenges(h)[0][1], "alice", "alicepw",
                             response=hexdigest("MD5", "x"))
        check(st in (401, 403), "an MD5-sized response for SHA-256 refused: %d" % st)
        st, h = request(*args)
        st, _ = auth_request(args, "MD5", challenges(h)[1][1], "alice", "alicepw")
        check(st == 200, "MD5 response still accepted: %d" % st)
        # HA1 lines: bob has an MD5 one only, dave a SHA-256 one only
        bob = reg_args(srv, "bob")
        st, h = request(*bob)
        st, _ = auth_request(bob, "MD5", challenges(h)[1][1], "bob", "bobpw")
        check(st == 200, "bob (MD5 HA1) with MD5: %d" % st)
        st, h = request(*bob)
        st, _ = auth_request(bob, "SHA-256", challenges(h)[0][1], "bob", "bobpw")
        check(st == 401, "bob (no SHA-256 HA1) with SHA-256: challenged: %d" % st)
        dave = reg_args(srv, "dave")
        st, h = request(*dave)
        st, _ = auth_request(dave, "SHA-256", challenges(h)[0][1], "dave", "davepw")
        check(st == 200, "dave (SHA-256 HA1) with SHA-256: %d" % st)
    finally:
        srv.stop()


def test_md5_only(tmp):
    """auth_algorithms = MD5: one challenge, MD5; a SHA-256 response is
    challenged again, not accepted."""
    srv = e2e.Server(tmp, security.auth_conf(tmp, security.users_file(tmp),
                                             server="auth_algorithms = MD5\n"))
    try:
        args = reg_args(srv, "alice")
        st, h = request(*args)
        chs = challenges(h)
        check(st == 401 and [a for a, _ in chs] == ["MD5"], "MD5 only: %d %s" % (st, chs))
        st, _ = auth_request(args, "SHA-256", chs[0][1], "alice", "alicepw")
        check(st == 401, "SHA-256 not offered, not accepted: %d" % st)
        st, h = request(*args)
        st, _ = auth_request(args, "MD5", challenges(h)[0][1], "alice", "alicepw")
        check(st == 200, "MD5: %d" % st)
    finally:
        srv.stop()
    srv = e2e.Server(tmp, security.auth_conf(tmp, security.users_file(tmp), name="order.conf",
                                             server="auth_algorithms = MD5, SHA-256\n"))
    try:
        st, h = request(*reg_args(srv, "alice"))
        check([a for a, _ in challenges(h)] == ["MD5", "SHA-256"], "the configured order")
    finally:
        srv.stop()


TESTS = [test_replay_gets_a_fresh_challenge, test_failure_limit_per_source, test_user_with_domain,
         test_sha256_and_md5, test_md5_only]


def main():
    global ARGS
    ARGS = e2e.script_args()
    security.ARGS = ARGS
    return e2e.run_script(TESTS, ARGS, "msilo-authh-")


if __name__ == "__main__":
    sys.exit(main())
