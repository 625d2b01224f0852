#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""An un-REGISTER stops the retries (msilo-server on 127.0.0.1, sipp as the UA).

A user has two messages stored; its UA (a sipp UAS on the contact port, and
a sipp UAC that registers that contact) answers every delivery with 500, so
the engine retries every check_time (1 s here). The UA then un-REGISTERs
(Expires: 0): from then on no MESSAGE may reach the contact, over several
check_time periods. The messages are still stored: a later registration of
a contact that answers 200 receives both.

  unregister.py --server build/examples/msilo-server/msilo-server --sipp /usr/bin/sipp

Uses the helpers of e2e.py (processes, ports, the server). Exit status: 0
passed, 1 failed, 77 skipped (no sipp).
"""
import argparse
import os
import re
import signal
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402
from e2e import LOOPBACK, Server, check, free_port, read, sip_request, start, stop, \
    udp_port_bound, wait_until, write_conf  # noqa: E402

USER = "ulla"
QUIET_SECONDS = 6  # six check_time periods without a MESSAGE


def uas(tmp, scenario, name):
    """A sipp UAS on a free port logging what it receives; (process, port, log)."""
    port = free_port()
    log = os.path.join(tmp, name + ".log")
    p = start([e2e.ARGS.sipp, "-sf", os.path.join(HERE, scenario), "-i", LOOPBACK, "-t", "u1",
               "-p", str(port), "-mp", str(free_port()), "-trace_logs", "-log_file", log,
               "-trace_err", "-error_file", log + ".err"],
              os.path.join(tmp, name + ".out"), cwd=tmp)
    check(wait_until(lambda: udp_port_bound(port), 5), "%s is up" % name)
    return p, port, log


def register(tmp, srv, contact_port, expires):
    """The UA's REGISTER of its contact, by sipp; 200 expected."""
    rc = e2e.sipp(["%s:%d" % (LOOPBACK, srv.port), "-sf", os.path.join(HERE, "reg_expires_uac.xml"),
                   "-i", LOOPBACK, "-t", "u1", "-m", "1", "-p", str(free_port()),
                   "-mp", str(free_port()), "-key", "user", USER,
                   "-key", "contact_port", str(contact_port), "-key", "expires", str(expires),
                   "-timeout", "10s", "-timeout_error"],
                  os.path.join(tmp, "reg-%d-%d.log" % (contact_port, expires)), 20)
    check(rc == 0, "REGISTER Expires %d answered 200 (sipp rc %d)" % (expires, rc))


def messages(log):
    return [l for l in read(log).splitlines() if l.startswith("MSG\t")]


def test_unregister_stops_retries(tmp):
    conf = write_conf(tmp, "unregister.conf",
                      "[msilo]\ncheck_time = 1\nmax_attempts = 50\nadd_date = 0\n")
    srv = Server(tmp, conf)
    procs = []
    try:
        for i in (1, 2):
            st, _, _ = sip_request(srv.port, "MESSAGE", "sip:%s@127.0.0.1:%d" % (USER, srv.port),
                                   "udp", "Content-Type: text/plain\r\n",
                                   b"msgid=%d for the test" % i, to="sip:%s@127.0.0.1" % USER)
            check(st == 202, "stored (%d)" % st)
        refusing, rport, rlog = uas(tmp, "refuse_uas.xml", "refusing-ua")
        procs.append(refusing)
        register(tmp, srv, rport, 3600)
        # the first attempts and the first retries of both messages (500 each)
        check(wait_until(lambda: len(messages(rlog)) >= 4, 15, 0.05),
              "the deliveries were retried (%d MESSAGEs)" % len(messages(rlog)))

        register(tmp, srv, rport, 0)  # the UA leaves
        check(wait_until(lambda: "gone: no more deliveries" in read(srv.log), 5, 0.05),
              "the server passed the un-REGISTER to the engine")
        n0 = len(messages(rlog))
        more = wait_until(lambda: len(messages(rlog)) > n0, QUIET_SECONDS, 0.1)
        check(not more, "no MESSAGE after the un-REGISTER (%d more): %s"
              % (len(messages(rlog)) - n0, messages(rlog)[n0:]))

        # nothing was lost: a contact that accepts gets both
        accepting, aport, alog = uas(tmp, "dump_uas.xml", "accepting-ua")
        procs.append(accepting)
        register(tmp, srv, aport, 3600)
        check(wait_until(lambda: len(messages(alog)) >= 2, 10, 0.05),
              "both messages delivered after registering again (%d)" % len(messages(alog)))
        ids = sorted(l.split("\t")[4] for l in messages(alog))
        check(ids == ["1", "2"], "each message once: %s" % ids)
        check(len(messages(rlog)) == n0, "still nothing for the removed contact")

        def dumped():
            os.kill(srv.proc.pid, signal.SIGUSR1)  # statistics now
            return re.search(r"dumped_messages=2\b", read(srv.log))
        check(wait_until(dumped, 5, 0.2), "the server counts 2 delivered")
    finally:
        for p in procs:
            stop(p, signal.SIGKILL)
        rc, _ = srv.stop()
    check(rc == 0, "server exit status %s" % rc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--sipp", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    e2e.ARGS = args = ap.parse_args()
    if not args.sipp or not os.access(args.server, os.X_OK):
        print("sipp or msilo-server not found: skipping")
        return 77
    tmp = tempfile.mkdtemp(prefix="msilo-unregister-")
    signal.signal(signal.SIGTERM, lambda *a: (e2e.stop_all(), sys.exit(1)))
    failed, skipped = [], []
    try:
        failed, skipped = e2e.run_each([("test_unregister_stops_retries",
                                         test_unregister_stops_retries)], tmp)
    finally:
        e2e.finish(tmp, failed, args.keep)
    if skipped:
        return 77
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
