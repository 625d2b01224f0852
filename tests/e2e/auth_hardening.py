#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Digest hardening of msilo-server (issue 17) on 127.0.0.1: replayed
credentials, the failure limit per source, the user compared with the domain.

  auth_hardening.py --server build/examples/msilo-server/msilo-server [TEST...]

Exit status: 0 passed, 1 failed.
"""
import os
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


TESTS = [test_replay_gets_a_fresh_challenge, test_failure_limit_per_source, test_user_with_domain]


def main():
    global ARGS
    ARGS = e2e.script_args()
    security.ARGS = ARGS
    return e2e.run_script(TESTS, ARGS, "msilo-authh-")


if __name__ == "__main__":
    sys.exit(main())
