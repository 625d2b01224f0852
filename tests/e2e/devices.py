#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Several devices of one user (issue 15, deliver_to = every_device, the
default of msilo-server): two UAs with different +sip.instance each get each
stored message exactly once, on the memory, SQLite and (with
MSILO_TEST_PG_URL) PostgreSQL stores.

Both phones register once (the store learns the two devices) and leave; three
MESSAGEs are stored for the user; phone A registers and receives the three;
phone B registers after it and receives the same three; a re-REGISTER of
either brings no duplicate. Then with [msilo] deliver_to = first the second
phone gets nothing, as with the msilo modules.

  devices.py --server build/examples/msilo-server/msilo-server [TEST...]

Raw SIP over UDP from Python's standard library (the helpers of e2e.py), on
127.0.0.1 only. Exit status: 0 passed, 1 failed.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402
from e2e import LOOPBACK, Server, Uas, check, sip_request, wait_quiet, wait_until, \
    write_conf  # noqa: E402

INSTANCE = "<urn:uuid:00000000-0000-1000-8000-00000000000%d>"


def register(srv, user, uas, n, expires):
    """Phone @n of @user (a Uas) registers its contact with its instance."""
    to = "sip:%s@127.0.0.1" % user
    contact = "<sip:%s@127.0.0.1:%d>;+sip.instance=\"%s\"" % (user, uas.port, INSTANCE % n)
    st, _, _ = sip_request(srv.port, "REGISTER", "sip:%s:%d" % (LOOPBACK, srv.port), "udp",
                           "Contact: %s\r\nExpires: %d\r\n" % (contact, expires), to=to, frm=to)
    check(st == 200, "REGISTER of phone %d (Expires %d) -> %d" % (n, expires, st))


def bodies(uas):
    """The bodies a phone got, the date prefix off."""
    return sorted(m[2].split(b"] ", 1)[-1] for m in uas.messages())


def two_phones(tmp, name, conf_text="", extra=()):
    """(server, phone A, phone B, stored bodies) after both phones registered
    once and left and three MESSAGEs were stored for the user."""
    conf = write_conf(tmp, name + ".conf", conf_text) if conf_text else None
    srv = Server(tmp, conf, extra)
    a, b = Uas(200), Uas(200)
    user = "dora" + name
    for n, uas in ((1, a), (2, b)):
        register(srv, user, uas, n, 300)   # the store learns the device
        register(srv, user, uas, n, 0)     # and it leaves
    want = []
    for i in range(3):
        body = b"%s message %d" % (name.encode(), i)
        st, _, _ = sip_request(srv.port, "MESSAGE", "sip:%s@127.0.0.1:%d" % (user, srv.port),
                               "udp", "Content-Type: text/plain\r\n", body,
                               to="sip:%s@127.0.0.1" % user)
        check(st == 202, "MESSAGE %d stored for the offline user (%d)" % (i, st))
        want.append(body)
    return srv, a, b, user, sorted(want)


def each_device_once(tmp, name, conf_text="", extra=()):
    srv, a, b, user, want = two_phones(tmp, name, conf_text, extra)
    try:
        register(srv, user, a, 1, 300)
        check(wait_until(lambda: len(a.messages()) >= 3, 10, 0.05),
              "phone A got the stored messages (%d)" % len(a.messages()))
        register(srv, user, b, 2, 300)
        check(wait_until(lambda: len(b.messages()) >= 3, 10, 0.05),
              "phone B got them too (%d)" % len(b.messages()))
        # a re-REGISTER of each: nothing new, ever
        register(srv, user, a, 1, 300)
        register(srv, user, b, 2, 300)
        wait_quiet(lambda: len(a.messages()) + len(b.messages()), 1.0, 10)
        check(bodies(a) == want, "phone A got each message once: %r" % bodies(a))
        check(bodies(b) == want, "phone B got each message once: %r" % bodies(b))
        print("  phone A: %d MESSAGEs, phone B: %d MESSAGEs" % (len(a.messages()),
                                                             len(b.messages())))
    finally:
        a.close()
        b.close()
        srv.stop()


def test_memory(tmp):
    each_device_once(tmp, "mem")


def test_sqlite(tmp):
    path = os.path.join(tmp, "devices.db")
    each_device_once(tmp, "sq", extra=["--store", "sqlite", "--db-url", "sqlite://" + path])


def test_postgres(tmp):
    conf, extra = e2e.pg_args(tmp, "devices")
    each_device_once(tmp, "pg", e2e.read(conf), extra)


def test_first_mode(tmp):
    """deliver_to = first: the first phone takes them, the second gets none."""
    srv, a, b, user, want = two_phones(tmp, "first", "[msilo]\ndeliver_to = first\n")
    try:
        register(srv, user, a, 1, 300)
        check(wait_until(lambda: len(a.messages()) >= 3, 10, 0.05), "phone A got them")
        register(srv, user, b, 2, 300)
        wait_quiet(lambda: len(b.messages()), 1.0, 10)
        check(bodies(a) == want and not b.messages(),
              "first mode: A %r, B %d" % (bodies(a), len(b.messages())))
    finally:
        a.close()
        b.close()
        srv.stop()


TESTS = [test_memory, test_sqlite, test_postgres, test_first_mode]


def main():
    args = e2e.script_args()
    return e2e.run_script(TESTS, args, "msilo-devices-")


if __name__ == "__main__":
    sys.exit(main())
