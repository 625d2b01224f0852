#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Several devices at msilo-server's registrar and forwarder (issue 15),
on 127.0.0.1:

  gruu.py --server build/examples/msilo-server/msilo-server [TEST...]

- a device (+sip.instance) that registers from a new contact replaces its
  binding (RFC 5627), one with another reg-id is a second flow of it;
- the 200 gives a public GRUU per device to a client with Supported: gruu;
- an online MESSAGE is forked to every device in parallel, the sender gets
  one 200, each device one copy;
- a MESSAGE to a GRUU reaches that device only;
- no device takes it: stored (202) and dumped at the next REGISTER;
- with deliver_to = every_device, a device that refused the forked MESSAGE
  gets it stored for it alone: its REGISTER brings it, the other device's
  brings nothing again.

Exit status: 0 passed, 1 failed.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402
from e2e import LOOPBACK, check, wait_until, headers_all  # noqa: E402

ARGS = None
UUID_A = "urn:uuid:00000000-0000-4000-8000-0000000000aa"
UUID_B = "urn:uuid:00000000-0000-4000-8000-0000000000bb"


def register(srv, user, port, instance=None, reg_id=None, gruu=False, expires=300):
    """REGISTER user's contact on `port`; returns the Contact values of the 200."""
    to = "sip:%s@127.0.0.1" % user
    contact = "<sip:%s@127.0.0.1:%d>" % (user, port)
    if instance:
        contact += ';+sip.instance="<%s>"' % instance
    if reg_id:
        contact += ";reg-id=%s" % reg_id
    extra = "Contact: %s\r\nExpires: %d\r\n" % (contact, expires)
    if gruu:
        extra += "Supported: gruu\r\n"
    st, hdrs, _ = e2e.sip_request(srv.port, "REGISTER", "sip:%s:%d" % (LOOPBACK, srv.port),
                                  "udp", extra, to=to, frm=to)
    check(st == 200, "REGISTER %s from %d -> %d" % (user, port, st))
    values = []
    for v in headers_all(hdrs, "Contact") + headers_all(hdrs, "m"):
        # one header may carry several values; none of ours has a comma inside <>
        values += [x.strip() for x in re.split(r",\s*(?=<)", v)]
    return values


def ports_of(contacts):
    return sorted(int(m.group(1)) for c in contacts
                  for m in [re.search(r"@127\.0\.0\.1:(\d+)", c)] if m)


def message(srv, ruri, body, user):
    st, _, _ = e2e.sip_request(srv.port, "MESSAGE", ruri, "udp", "Content-Type: text/plain\r\n",
                               body.encode(), to="sip:%s@127.0.0.1" % user)
    return st


def bodies(uas):
    """The bodies each UA got, date prefix of a dumped one cut."""
    return [m[2].decode().split("] ", 1)[-1] for m in uas.messages()]


def test_instance_replaces(tmp):
    srv = e2e.Server(tmp)
    a1, a2, b, ob = e2e.Uas(), e2e.Uas(), e2e.Uas(), e2e.Uas()
    try:
        register(srv, "ivy", a1.port, UUID_A)
        got = register(srv, "ivy", a2.port, UUID_A)
        check(ports_of(got) == [a2.port],
              "the same instance from a new contact replaced its binding: %s" % got)
        got = register(srv, "ivy", b.port, UUID_B)
        check(ports_of(got) == sorted([a2.port, b.port]), "another instance is another device: %s"
              % got)
        # RFC 5626: (instance, reg-id) is the key: a second flow of device B
        got = register(srv, "ivy", ob.port, UUID_B, reg_id="2")
        check(ports_of(got) == sorted([a2.port, b.port, ob.port]),
              "another reg-id of one instance is a second flow: %s" % got)
        # un-REGISTER by instance and reg-id, from any contact
        got = register(srv, "ivy", ob.port + 0, UUID_B, reg_id="2", expires=0)
        check(ports_of(got) == sorted([a2.port, b.port]), "the flow removed: %s" % got)
        log = e2e.read(srv.log)
        check("127.0.0.1:%d gone" % a1.port in log or ":%d gone" % a1.port in log,
              "the replaced binding was reported gone (its deliveries cancelled)")
        srv.stop()
    finally:
        for u in (a1, a2, b, ob):
            u.close()
        srv.stop()


def test_pub_gruu(tmp):
    srv = e2e.Server(tmp)
    ua = e2e.Uas()
    try:
        got = register(srv, "gus", ua.port, UUID_A, gruu=True)
        want = 'pub-gruu="sip:gus@127.0.0.1;gr=%s"' % UUID_A
        check(any(want in c for c in got), "the 200 gives the device's public GRUU: %s" % got)
        check(any('+sip.instance="<%s>"' % UUID_A in c for c in got),
              "and its instance: %s" % got)
        print("  200 Contact: %s" % got[0])
        got = register(srv, "gus", ua.port, UUID_A, gruu=False)
        check(not any("pub-gruu" in c for c in got), "no GRUU without Supported: gruu: %s" % got)
        srv.stop()
    finally:
        ua.close()
        srv.stop()


def test_fork_to_every_device(tmp):
    srv = e2e.Server(tmp)
    a, b = e2e.Uas(200), e2e.Uas(200)
    try:
        register(srv, "fay", a.port, UUID_A)
        register(srv, "fay", b.port, UUID_B)
        st = message(srv, "sip:fay@127.0.0.1", "to both", "fay")
        check(st == 200, "the forked MESSAGE: one 200 relayed, got %d" % st)
        check(wait_until(lambda: bodies(a) == ["to both"] and bodies(b) == ["to both"], 5),
              "each device got one copy: %s / %s" % (bodies(a), bodies(b)))
        print("  forked: device A got %s, device B got %s" % (bodies(a), bodies(b)))
        # to B's GRUU: B only
        st = message(srv, "sip:fay@127.0.0.1;gr=%s" % UUID_B, "to B", "fay")
        check(st == 200, "the MESSAGE to a GRUU: 200, got %d" % st)
        check(wait_until(lambda: bodies(b) == ["to both", "to B"], 5), "B got it: %s" % bodies(b))
        check(bodies(a) == ["to both"], "A did not: %s" % bodies(a))
        srv.stop()
    finally:
        a.close()
        b.close()
        srv.stop()


def test_fork_nobody_takes_it(tmp):
    srv = e2e.Server(tmp)
    a, b = e2e.Uas(480), e2e.Uas(None)
    try:
        register(srv, "nel", a.port, UUID_A)
        register(srv, "nel", b.port, UUID_B)
        st = message(srv, "sip:nel@127.0.0.1", "later", "nel")
        check(st == 202, "no device took it: stored, 202, got %d" % st)
        a.status = 200
        register(srv, "nel", a.port, UUID_A)
        check(wait_until(lambda: "later" in bodies(a)[1:], 10),
              "the next REGISTER delivered it: %s" % bodies(a))
        srv.stop()
    finally:
        a.close()
        b.close()
        srv.stop()


def test_fork_stores_for_the_device_that_missed_it(tmp):
    conf = os.path.join(tmp, "every.conf")
    with open(conf, "w") as f:
        f.write("[msilo]\ndeliver_to = every_device\n")
    srv = e2e.Server(tmp, conf=conf)
    a, b = e2e.Uas(200), e2e.Uas(480)
    try:
        register(srv, "mia", a.port, UUID_A)
        register(srv, "mia", b.port, UUID_B)
        st = message(srv, "sip:mia@127.0.0.1", "for both", "mia")
        check(st == 200, "A took it: 200 relayed, got %d" % st)
        check(wait_until(lambda: "stored message" in e2e.read(srv.log) and
                         "for device %s" % UUID_B in e2e.read(srv.log), 5),
              "stored for device B alone")
        b.status = 200
        register(srv, "mia", b.port, UUID_B)
        check(wait_until(lambda: bodies(b).count("for both") == 2, 10),
              "B's REGISTER brought it (its refused copy and the stored one): %s" % bodies(b))
        register(srv, "mia", a.port, UUID_A)
        # absence has only a bound: a dump to A would arrive well within 1 s
        check(not wait_until(lambda: len(bodies(a)) > 1, 1),
              "A's REGISTER brought nothing again: %s" % bodies(a))
        srv.stop()
    finally:
        a.close()
        b.close()
        srv.stop()


TESTS = [test_instance_replaces, test_pub_gruu, test_fork_to_every_device,
         test_fork_nobody_takes_it, test_fork_stores_for_the_device_that_missed_it]


def main():
    global ARGS
    ARGS = e2e.script_args()
    return e2e.run_script(TESTS, ARGS, "msilo-gruu-")


if __name__ == "__main__":
    sys.exit(main())
