#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Sofia-SIP recipe of doc/embedding-sofia.md, run for real: the
sofia-embed example on 127.0.0.1 stores two MESSAGEs (202 after the commit),
refuses one without an owner at once (400), answers a REGISTER with 200 and then
delivers both stored messages, in order and once each, to the REGISTER's
Contact (a small Python UAS); a second REGISTER delivers nothing more; it
stops cleanly on SIGTERM.

  sofia_embed.py --example build/examples/sofia-embed/sofia-embed

Exit status: 0 passed, 1 failed.
"""
import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402
from e2e import LOOPBACK, check, read, wait_until, wait_quiet  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--example", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sofia-embed-")
    port = e2e.free_port()
    log = os.path.join(tmp, "example.log")
    uas = None
    try:
        p = e2e.start([args.example, "sip:%s:%d" % (LOOPBACK, port)], log,
                      env=dict(os.environ, G_MESSAGES_DEBUG="all"))
        check(wait_until(lambda: "listening on" in read(log) or p.poll() is not None, 10)
              and p.poll() is None, "example did not start: " + read(log))

        for i in (1, 2):
            st, _, _ = e2e.sip_request(port, "MESSAGE", "sip:bob@127.0.0.1",
                                       extra="Content-Type: text/plain\r\n",
                                       body=b"hello %d" % i)
            check(st == 202, "MESSAGE %d: %d, want 202" % (i, st))
        # no user in R-URI and To: no address of record, refused by the engine
        st, _, _ = e2e.sip_request(port, "MESSAGE", "sip:127.0.0.1", to="sip:127.0.0.1",
                                   body=b"x")
        check(st == 400, "MESSAGE without an owner: %d, want 400" % st)
        check("MESSAGE refused: " in read(log), "the refusal was not the engine's")

        uas = e2e.Uas(200)
        contact = "Contact: <sip:bob@%s:%d>\r\nExpires: 300\r\n" % (LOOPBACK, uas.port)
        st, hdrs, _ = e2e.sip_request(port, "REGISTER", "sip:127.0.0.1", extra=contact,
                                      frm="sip:bob@127.0.0.1")
        check(st == 200, "REGISTER: %d" % st)
        check(wait_until(lambda: len(uas.messages()) >= 2, 10), "the stored messages did not arrive")
        check(wait_quiet(lambda: len(uas.messages()), 0.5), "deliveries did not settle")
        bodies = [m[2] for m in uas.messages()]
        # add_date is on by default: "[Offline message - <date>] hello 1"
        check(len(bodies) == 2 and bodies[0].endswith(b"] hello 1")
              and bodies[1].endswith(b"] hello 2"), "delivered %r" % bodies)
        check(wait_until(lambda: "2 delivered" in read(log), 10), "dump result not logged")

        st, _, _ = e2e.sip_request(port, "REGISTER", "sip:127.0.0.1", extra=contact,
                                   frm="sip:bob@127.0.0.1")
        check(st == 200, "second REGISTER: %d" % st)
        check(wait_quiet(lambda: len(uas.messages()), 0.5), "deliveries did not settle")
        check(len(uas.messages()) == 2, "a message was delivered twice")

        rc = e2e.stop(p)
        check(rc == 0, "exit status %s on SIGTERM: %s" % (rc, read(log)))
        print("sofia-embed: ok")
        return 0
    except e2e.Failure as f:
        print("FAIL:", f)
        print(read(log))
        return 1
    finally:
        if uas:
            uas.close()
        e2e.stop_all()


if __name__ == "__main__":
    sys.exit(main())
