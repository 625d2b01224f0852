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
  brings nothing again;
- two devices, one offline: each gets each stored message once, also one
  first seen after the store, and re-REGISTERs bring no duplicate;
- a message stored for a GRUU stays its device's; a REGISTER to a GRUU
  serves that device only.

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
                         "for device <%s>" % UUID_B in e2e.read(srv.log), 5),
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


def test_fork_two_devices_missed(tmp):
    """Two devices miss a forked MESSAGE that a third took: it is stored
    once for each of them (the store key holds the device: one request,
    two messages), and each gets its copy at its REGISTER."""
    UUID_C = "urn:uuid:00000000-0000-4000-8000-0000000000cc"
    conf = os.path.join(tmp, "two-missed.conf")
    with open(conf, "w") as f:
        f.write("[msilo]\ndeliver_to = every_device\n")
    srv = e2e.Server(tmp, conf=conf)
    a, b, c = e2e.Uas(200), e2e.Uas(480), e2e.Uas(480)
    try:
        register(srv, "ola", a.port, UUID_A)
        register(srv, "ola", b.port, UUID_B)
        register(srv, "ola", c.port, "urn:uuid:00000000-0000-4000-8000-0000000000cc")
        st = message(srv, "sip:ola@127.0.0.1", "for three", "ola")
        check(st == 200, "A took it: 200 relayed, got %d" % st)

        def stored_ids():
            return dict((d, int(i)) for i, d in re.findall(
                r"stored message (\d+) for device <([^>]+)>", e2e.read(srv.log)))
        check(wait_until(lambda: len(stored_ids()) == 2, 5), "stored for B and C: %s" % stored_ids())
        ids = stored_ids()
        check(ids[UUID_B] != ids[UUID_C], "two messages, one per device: %s" % ids)
        b.status = c.status = 200
        register(srv, "ola", b.port, UUID_B)
        register(srv, "ola", c.port, UUID_C)
        check(wait_until(lambda: bodies(b).count("for three") == 2 and
                         bodies(c).count("for three") == 2, 10),
              "B and C each got the stored copy: %s / %s" % (bodies(b), bodies(c)))
        srv.stop()
    finally:
        for u in (a, b, c):
            u.close()
        srv.stop()


def test_fork_dead_tcp_contact(tmp):
    """A device whose contact cannot be reached (TCP to a closed port: NTA
    may fail the branch from inside its create call) counts as missed: the
    other device's 200 is relayed, the dead one gets it stored for it, and
    the server lives on."""
    conf = os.path.join(tmp, "dead.conf")
    with open(conf, "w") as f:
        f.write("[msilo]\ndeliver_to = every_device\n")
    srv = e2e.Server(tmp, conf=conf)
    a = e2e.Uas(200)
    dead = e2e.free_port()
    try:
        register(srv, "dot", a.port, UUID_A)
        to = "sip:dot@127.0.0.1"
        st, _, _ = e2e.sip_request(srv.port, "REGISTER", "sip:%s:%d" % (LOOPBACK, srv.port), "udp",
                                   'Contact: <sip:dot@127.0.0.1:%d;transport=tcp>;+sip.instance='
                                   '"<%s>"\r\nExpires: 300\r\n' % (dead, UUID_B), to=to, frm=to)
        check(st == 200, "REGISTER of the dead device: %d" % st)
        for i in range(3):
            st = message(srv, "sip:dot@127.0.0.1", "live %d" % i, "dot")
            check(st == 200, "A's 200 relayed: got %d" % st)
        check(wait_until(lambda: e2e.read(srv.log).count("for device <%s>" % UUID_B) >= 3, 10),
              "stored for the dead device each time")
        check(srv.proc.poll() is None, "the server lives")
        st, _, _ = e2e.sip_request(srv.port, "OPTIONS", "sip:127.0.0.1:%d" % srv.port)
        check(st == 200, "and answers: %d" % st)
        rc, log = srv.stop()
        check(rc == 0 and "Sanitizer" not in log, "clean exit (%s)" % rc)
    finally:
        a.close()
        srv.stop()


def every_device_server(tmp, name):
    conf = os.path.join(tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write("[msilo]\ndeliver_to = every_device\n")
    return e2e.Server(tmp, conf=conf)


def store_offline(srv, ruri, user, texts):
    for t in texts:
        st = message(srv, ruri, t, user)
        check(st == 202, "MESSAGE %r for offline %s stored: 202, got %d" % (t, user, st))


def test_two_devices_one_offline(tmp):
    """Two devices, one offline: each gets each stored message once, also a
    device first seen after the store (while the messages wait for the
    known one); re-REGISTERs bring no duplicate; once every known device
    has them they are gone (a third device gets nothing)."""
    srv = every_device_server(tmp, "twodev")
    x, y, z = e2e.Uas(200), e2e.Uas(200), e2e.Uas(200)
    try:
        register(srv, "tia", x.port, UUID_A)  # X is known, then offline
        register(srv, "tia", x.port, UUID_A, expires=0)
        store_offline(srv, "sip:tia@127.0.0.1", "tia", ["m1", "m2", "m3"])
        # Y was never seen when they were stored: it gets them too
        register(srv, "tia", y.port, UUID_B)
        check(wait_until(lambda: sorted(bodies(y)) == ["m1", "m2", "m3"], 10),
              "device Y (first seen after the store) got the 3 messages: %s" % bodies(y))
        register(srv, "tia", y.port, UUID_B)
        check(not wait_until(lambda: len(bodies(y)) > 3, 1),
              "Y's re-REGISTER brought no duplicate: %s" % bodies(y))
        register(srv, "tia", x.port, UUID_A)
        check(wait_until(lambda: sorted(bodies(x)) == ["m1", "m2", "m3"], 10),
              "device X (offline at the store) got the 3 messages: %s" % bodies(x))
        register(srv, "tia", x.port, UUID_A)
        register(srv, "tia", y.port, UUID_B)
        register(srv, "tia", z.port, "urn:uuid:00000000-0000-4000-8000-0000000000cc")
        check(not wait_until(lambda: len(bodies(x)) > 3 or len(bodies(y)) > 3 or bodies(z), 1),
              "no duplicates, and gone once both known devices had them: %s / %s / %s"
              % (bodies(x), bodies(y), bodies(z)))
        print("  two devices: Y (first seen after the store) got %s, X (offline then) got %s, "
              "a third device later got %s" % (sorted(bodies(y)), sorted(bodies(x)), bodies(z)))
        srv.stop()
    finally:
        for u in (x, y, z):
            u.close()
        srv.stop()


def test_gruu_register_serves_its_device(tmp):
    """A message stored for a GRUU is its device's alone; a REGISTER whose
    Request-URI is a device's GRUU is a dump for that device only."""
    srv = every_device_server(tmp, "gruureg")
    x, y = e2e.Uas(200), e2e.Uas(200)
    try:
        # both devices known, then offline
        register(srv, "uma", x.port, UUID_A)
        register(srv, "uma", y.port, UUID_B)
        register(srv, "uma", x.port, UUID_A, expires=0)
        register(srv, "uma", y.port, UUID_B, expires=0)
        store_offline(srv, "sip:uma@127.0.0.1;gr=%s" % UUID_B, "uma", ["for Y"])
        store_offline(srv, "sip:uma@127.0.0.1", "uma", ["for all"])
        # X registers with its GRUU as the Request-URI and no instance
        to = "sip:uma@127.0.0.1"
        st, _, _ = e2e.sip_request(srv.port, "REGISTER", "sip:uma@127.0.0.1;gr=%s" % UUID_A,
                                   "udp", "Contact: <sip:uma@127.0.0.1:%d>\r\nExpires: 300\r\n"
                                   % x.port, to=to, frm=to)
        check(st == 200, "GRUU REGISTER: 200, got %d" % st)
        check(wait_until(lambda: bodies(x) == ["for all"], 10), "X got only its own: %s" % bodies(x))
        check(not wait_until(lambda: "for Y" in bodies(x), 1), "Y's message stayed: %s" % bodies(x))
        register(srv, "uma", y.port, UUID_B)
        check(wait_until(lambda: sorted(bodies(y)) == ["for Y", "for all"], 10),
              "Y got both: %s" % bodies(y))
        srv.stop()
    finally:
        x.close()
        y.close()
        srv.stop()


TESTS = [test_instance_replaces, test_pub_gruu, test_fork_to_every_device,
         test_fork_nobody_takes_it, test_fork_stores_for_the_device_that_missed_it,
         test_two_devices_one_offline, test_gruu_register_serves_its_device,
         test_fork_dead_tcp_contact, test_fork_two_devices_missed]


def main():
    global ARGS
    ARGS = e2e.script_args()
    return e2e.run_script(TESTS, ARGS, "msilo-gruu-")


if __name__ == "__main__":
    sys.exit(main())
