#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""RFC 3842 message-summary and known users only (issue 16), against
msilo-server on 127.0.0.1 with raw SIP sockets: 3 messages stored for an
offline user, a SUBSCRIBE gets 200 and a NOTIFY "Text-Message: 3/0"; the
REGISTER that delivers them brings a NOTIFY "0/0"; an un-SUBSCRIBE
(Expires: 0) a final NOTIFY "terminated"; another event 489; an Expires
below subscribe_min_expires 423 with Min-Expires, above the maximum cut; a
refresh of an unknown dialog 481; the end of a subscription a terminated
NOTIFY; with auth on, 401 without credentials and 403 with another user's.
store_for = users_file and registered: 404 for the others. sipp as the
subscriber too (mwi_subscribe_uac.xml): the NOTIFY it received is printed.

  mwi.py --server build/examples/msilo-server/msilo-server [TEST...]

Exit status: 0 passed, 1 failed.
"""
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402
from e2e import LOOPBACK, Server, Uas, check, header, register, sip_request  # noqa: E402
from e2e import wait_quiet, wait_until, write_conf  # noqa: E402
import receipts  # noqa: E402
import security  # noqa: E402

ARGS = None
_n = [0]


class Subscription:
    """One message-summary subscription of `user` whose NOTIFYs come to a
    Uas (answered 200 and recorded there)."""

    def __init__(self, srv, user, uas, event="message-summary", domain="127.0.0.1"):
        _n[0] += 1
        self.srv, self.user, self.uas, self.event = srv, user, uas, event
        self.call_id = "mwi-%d-%d@127.0.0.1" % (os.getpid(), _n[0])
        self.ftag = "sub%d" % _n[0]
        self.ttag = None
        self.cseq = 0
        self.aor = "sip:%s@%s" % (user, domain)

    def send(self, expires=None, ruri=None, auth=None, ttag=None):
        """SUBSCRIBE (in the dialog once it has one); (status, headers)."""
        self.cseq += 1
        ruri = ruri or self.aor
        ttag = ttag if ttag is not None else self.ttag

        def make(lport):
            hdr = ""
            if auth:
                ch, user, pw = auth
                ha1 = security.md5("%s:%s:%s" % (user, ch["realm"], pw))
                ha2 = security.md5("SUBSCRIBE:%s" % ruri)
                resp = security.md5("%s:%s:00000001:c%d:auth:%s" % (ha1, ch["nonce"], self.cseq,
                                                                    ha2))
                hdr = ('Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", '
                       'response="%s", algorithm=MD5, cnonce="c%d", qop=auth, nc=00000001%s\r\n'
                       % (user, ch["realm"], ch["nonce"], ruri, resp, self.cseq,
                          ', opaque="%s"' % ch["opaque"] if ch.get("opaque") else ""))
            return ("SUBSCRIBE %s SIP/2.0\r\n"
                    "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-mwi-%d-%d-%d;rport\r\n"
                    "From: <%s>;tag=%s\r\nTo: <%s>%s\r\nCall-ID: %s\r\nCSeq: %d SUBSCRIBE\r\n"
                    "Max-Forwards: 70\r\nContact: <sip:%s@%s:%d>\r\n%s%s"
                    "Accept: application/simple-message-summary\r\n%sContent-Length: 0\r\n\r\n"
                    % (ruri, LOOPBACK, lport, os.getpid(), _n[0], self.cseq, self.aor,
                       self.ftag, self.aor, ";tag=" + ttag if ttag else "", self.call_id,
                       self.cseq, self.user, LOOPBACK, self.uas.port,
                       "Event: %s\r\n" % self.event if self.event else "",
                       "Expires: %d\r\n" % expires if expires is not None else "", hdr)
                    ).encode()
        r = e2e.sip_exchange(self.srv.port, "udp", make, 5)
        check(r is not None, "an answer to SUBSCRIBE")
        status, _, hdrs, _ = r
        if status == 200 and not self.ttag:
            m = re.search(r";tag=([^;>]+)", header(hdrs, "To") or "")
            check(m, "200 has a To tag: %s" % hdrs)
            self.ttag = m.group(1)
        return status, hdrs

    def notifies(self):
        """Every NOTIFY of this dialog received: [(headers, body text)]."""
        with self.uas.lock:
            reqs = list(self.uas.requests)
        return [(h, b.decode()) for first, h, b in reqs
                if first.startswith("NOTIFY") and header(h, "Call-ID") == self.call_id]

    def wait_notifies(self, n, timeout=5):
        check(wait_until(lambda: len(self.notifies()) >= n, timeout),
              "NOTIFY %d arrived: %s" % (n, self.notifies()))
        return self.notifies()[n - 1]


def show(title, notify):
    hdrs, body = notify
    print("---- %s ----\n%s\n\n%s" % (title, "\n".join("%s: %s" % h for h in hdrs), body),
          flush=True)


def check_summary(notify, waiting, state):
    hdrs, body = notify
    check(header(hdrs, "Event") == "message-summary", "Event: %s" % hdrs)
    check(header(hdrs, "Content-Type") == "application/simple-message-summary",
          "Content-Type: %s" % hdrs)
    check(re.match(state, header(hdrs, "Subscription-State") or ""),
          "Subscription-State %s: %s" % (state, header(hdrs, "Subscription-State")))
    check("Text-Message: %d/0\r\n" % waiting in body, "Text-Message %d/0: %r" % (waiting, body))
    check("Messages-Waiting: %s\r\n" % ("yes" if waiting else "no") in body,
          "Messages-Waiting: %r" % body)
    check(re.search(r"Message-Account: sip:\w+@127\.0\.0\.1\r\n", body), "Message-Account: %r" % body)


def store(srv, user, text):
    st, _, _ = sip_request(srv.port, "MESSAGE", "sip:%s@127.0.0.1" % user, "udp",
                           "Content-Type: text/plain\r\n", text.encode(),
                           to="sip:%s@127.0.0.1" % user)
    return st


def test_summary(tmp):
    """3 stored -> NOTIFY 3/0; REGISTER delivers them -> 0/0; Expires 0 ->
    terminated; another event -> 489; no Event -> 489. The memory store:
    counted on the loop thread."""
    summary(tmp, write_conf(tmp, "mwi.conf", "[msilo]\nadd_date = 0\n"), ())


def test_summary_sqlite(tmp):
    """The same on SQLite: counted on the count thread, on the store."""
    db = os.path.join(tmp, "mwi-%d.db" % os.getpid())
    summary(tmp, None, ["--store", "sqlite", "--db-url", "sqlite://" + db])


def test_summary_pg(tmp):
    """The same on PostgreSQL: counted on the count thread, on a peer handle."""
    conf, extra = e2e.pg_args(tmp, "mwi")
    summary(tmp, conf, extra)


def summary(tmp, conf, extra):
    srv = Server(tmp, conf, extra)
    uas = Uas(200)
    try:
        for i in range(3):
            check(store(srv, "hana", "note %d" % i) == 202, "stored %d" % i)
        sub = Subscription(srv, "hana", uas)
        st, hdrs = sub.send(600)
        check(st == 200, "SUBSCRIBE -> %d" % st)
        check(header(hdrs, "Expires") == "600", "Expires granted: %s" % hdrs)
        check(header(hdrs, "Contact"), "200 has a Contact")
        first = sub.wait_notifies(1)
        show("NOTIFY after SUBSCRIBE (3 messages waiting)", first)
        check_summary(first, 3, r"active;expires=(59\d|600)$")
        register(srv, "hana", "sip:hana@127.0.0.1:%d" % uas.port)
        check(wait_until(lambda: len(uas.messages()) == 3, 5), "the 3 messages delivered")
        # a NOTIFY whenever the count changed (the deletes may come in more
        # than one batch: 2/0 on the way is fine), the last one 0/0
        check(wait_until(lambda: "Text-Message: 0/0" in sub.notifies()[-1][1], 5),
              "a NOTIFY 0/0 arrived: %s" % sub.notifies())
        check(wait_quiet(lambda: len(sub.notifies()), 0.5, 5), "the NOTIFYs settled")
        counts = [int(re.search(r"Text-Message: (\d+)/0", b).group(1)) for _, b in sub.notifies()]
        check(counts == sorted(counts, reverse=True) and len(set(counts)) == len(counts),
              "one NOTIFY per change, never an older count: %s" % counts)
        second = sub.notifies()[-1]
        show("NOTIFY after the REGISTER delivered them", second)
        check_summary(second, 0, r"active;expires=\d+$")
        # un-SUBSCRIBE in the dialog: 200, final NOTIFY
        st, hdrs = sub.send(0)
        check(st == 200 and header(hdrs, "Expires") == "0", "un-SUBSCRIBE -> %d %s" % (st, hdrs))
        last = sub.wait_notifies(len(counts) + 1)
        show("NOTIFY after the un-SUBSCRIBE", last)
        check_summary(last, 0, r"terminated")
        # the dialog is gone: a refresh gets 481
        st, _ = sub.send(600)
        check(st == 481, "refresh after the end -> %d (want 481)" % st)
        # other events
        st, hdrs = Subscription(srv, "hana", uas, event="presence").send(600)
        check(st == 489 and "message-summary" in (header(hdrs, "Allow-Events") or ""),
              "presence -> %d %s (want 489 with Allow-Events)" % (st, hdrs))
        st, _ = Subscription(srv, "hana", uas, event=None).send(600)
        check(st == 489, "no Event -> %d (want 489)" % st)
        # OPTIONS says so
        st, hdrs, _ = sip_request(srv.port, "OPTIONS", "sip:%s:%d" % (LOOPBACK, srv.port))
        check("SUBSCRIBE" in (header(hdrs, "Allow") or ""), "OPTIONS Allow: %s" % hdrs)
    finally:
        uas.close()
        srv.stop()


def test_expires_rules(tmp):
    """Below subscribe_min_expires: 423 with Min-Expires; above the maximum:
    cut; an unknown dialog: 481; the end of a subscription: a terminated
    NOTIFY; a store while subscribed: a NOTIFY with the new count."""
    srv = Server(tmp, write_conf(tmp, "exp.conf", "[server]\nsubscribe_min_expires = 2\n"
                                 "subscribe_max_expires = 3\n"))
    uas = Uas(200)
    try:
        sub = Subscription(srv, "ivan", uas)
        st, hdrs = sub.send(1)
        check(st == 423 and header(hdrs, "Min-Expires") == "2",
              "Expires 1 -> %d %s (want 423, Min-Expires 2)" % (st, hdrs))
        st, _ = Subscription(srv, "ivan", uas).send(600, ttag="nosuchdialog")
        check(st == 481, "unknown dialog -> %d (want 481)" % st)
        st, hdrs = sub.send(600)
        check(st == 200 and header(hdrs, "Expires") == "3", "cut to 3: %s" % hdrs)
        check_summary(sub.wait_notifies(1), 0, r"active;expires=[1-3]$")
        check(store(srv, "ivan", "one") == 202, "stored")
        check_summary(sub.wait_notifies(2), 1, r"active")
        final = sub.wait_notifies(3, 6)
        check_summary(final, 1, r"terminated;reason=timeout")
    finally:
        uas.close()
        srv.stop()


def test_auth(tmp):
    """With auth on: 401 without credentials, 403 with another user's, 200
    with the user's own."""
    users = security.users_file(tmp)
    srv = Server(tmp, security.auth_conf(tmp, users))
    uas = Uas(200)
    try:
        sub = Subscription(srv, "alice", uas)
        st, hdrs = sub.send(600)
        check(st == 401, "no credentials -> %d (want 401)" % st)
        ch = security.challenge(hdrs)
        st, _ = sub.send(600, auth=(ch, "mallory", "mallorypw"))
        check(st == 403, "mallory's credentials -> %d (want 403)" % st)
        st, hdrs = sub.send(600)
        st, _ = sub.send(600, auth=(security.challenge(hdrs), "alice", "alicepw"))
        check(st == 200, "alice's own -> %d" % st)
        check_summary(sub.wait_notifies(1), 0, r"active")
        check(receipts.stats(srv).get("subscriptions") == 1, "one subscription counted")
        # a stop with the subscription active: its final NOTIFY, a clean exit
        # (under ASan: no leak)
        rc, log = srv.stop()
        check(rc == 0, "server exit status %s: %s" % (rc, log[-2000:]))
        check_summary(sub.wait_notifies(2), 0, r"terminated")
    finally:
        uas.close()
        srv.stop()


def test_store_for_users_file(tmp):
    """store_for = users_file: a MESSAGE and a SUBSCRIBE for a user of the
    file pass, for anybody else 404."""
    users = security.users_file(tmp)
    srv = Server(tmp, security.auth_conf(tmp, users, server="store_for = users_file\n"))
    uas = Uas(200)
    try:
        check(store(srv, "bob", "hi bob") == 202, "a user of the file gets a mailbox")
        st = store(srv, "typo", "hi?")
        check(st == 404, "MESSAGE to an unknown user -> %d (want 404)" % st)
        st, _ = Subscription(srv, "typo", uas).send(600)
        check(st == 404, "SUBSCRIBE for an unknown user -> %d (want 404)" % st)
        s = receipts.stats(srv)
        check(s.get("unknown_users") == 2 and s.get("stored_messages") == 1,
              "counted: %s" % s)
    finally:
        uas.close()
        srv.stop()


def test_store_for_registered(tmp):
    """store_for = registered: 404 until the user has registered, 202 after
    (also once its registration is gone)."""
    srv = Server(tmp, write_conf(tmp, "reg.conf", "[server]\nstore_for = registered\n"
                                 "registered_within = 3600\n"))
    uas = Uas(200)
    try:
        st = store(srv, "jack", "before")
        check(st == 404, "never registered -> %d (want 404)" % st)
        register(srv, "jack", "sip:jack@127.0.0.1:%d" % uas.port)
        register(srv, "jack", "sip:jack@127.0.0.1:%d" % uas.port, expires=0)
        st = store(srv, "jack", "after")
        check(st == 202, "registered within the period, now offline -> %d (want 202)" % st)
    finally:
        uas.close()
        srv.stop()


def test_domains(tmp):
    """[server] domains: a SUBSCRIBE for another domain gets 404, one for a
    local domain (in another case) 200."""
    srv = Server(tmp, write_conf(tmp, "dom.conf", "[server]\ndomains = Mail.Example\n"))
    uas = Uas(200)
    try:
        st, _ = Subscription(srv, "lena", uas).send(600)
        check(st == 404, "not a local domain -> %d (want 404)" % st)
        sub = Subscription(srv, "lena", uas, domain="mail.example")
        st, _ = sub.send(600)
        check(st == 200, "a local domain -> %d" % st)
        _, body = sub.wait_notifies(1)
        check("Message-Account: sip:lena@mail.example\r\n" in body, "account: %r" % body)
    finally:
        uas.close()
        srv.stop()


def test_sipp_subscriber(tmp):
    """sipp as the subscriber (tests/e2e/mwi_subscribe_uac.xml): 3 stored,
    its NOTIFY says 3/0, its un-SUBSCRIBE gets the terminated NOTIFY; the
    NOTIFYs as sipp received them are printed."""
    sipp = shutil.which("sipp")
    if not sipp:
        raise e2e.Skip("no sipp")
    srv = Server(tmp)
    try:
        for i in range(3):
            check(store(srv, "nora", "note %d" % i) == 202, "stored %d" % i)
        log = os.path.join(tmp, "sipp-mwi.log")
        e2e.ARGS.sipp = sipp
        rc = e2e.sipp(["127.0.0.1:%d" % srv.port, "-sf", os.path.join(HERE, "mwi_subscribe_uac.xml"),
                       "-s", "nora", "-m", "1", "-i", LOOPBACK, "-p",
                       str(e2e.free_port()), "-trace_msg", "-message_file", log + ".msg",
                       "-timeout", "15s"], log, 20)
        msgs = e2e.read(log + ".msg") if os.path.exists(log + ".msg") else ""
        check(rc == 0, "sipp scenario passed (%s): %s %s" % (
            rc, e2e.read(log + ".err") if os.path.exists(log + ".err") else "", msgs[-3000:]))
        msgs = msgs.replace("\r", "")
        notifies = re.findall(r"message received \[\d+\] bytes :\n\n(NOTIFY .*?)(?=\n-{10,}|\Z)",
                              msgs, re.S)
        check(len(notifies) == 2, "two NOTIFYs in sipp's message log: %s" % msgs[-3000:])
        check("Text-Message: 3/0" in notifies[0], "the first says 3/0: %s" % notifies[0])
        check("terminated" in notifies[1], "the last is terminated: %s" % notifies[1])
        print("---- the NOTIFY sipp received after its SUBSCRIBE ----\n%s" % notifies[0].strip(),
              flush=True)
    finally:
        srv.stop()


def test_mwi_off(tmp):
    """[server] mwi = false: SUBSCRIBE gets 405."""
    srv = Server(tmp, write_conf(tmp, "off.conf", "[server]\nmwi = false\n"))
    uas = Uas(200)
    try:
        st, hdrs = Subscription(srv, "kim", uas).send(600)
        check(st == 405 and "SUBSCRIBE" not in (header(hdrs, "Allow") or ""),
              "mwi off -> %d %s" % (st, hdrs))
    finally:
        uas.close()
        srv.stop()


TESTS = [test_summary, test_summary_sqlite, test_summary_pg, test_expires_rules, test_auth, test_store_for_users_file,
         test_store_for_registered, test_domains, test_sipp_subscriber, test_mwi_off]


def main():
    global ARGS
    ARGS = e2e.script_args()
    return e2e.run_script(TESTS, ARGS, "msilo-mwi-")


if __name__ == "__main__":
    sys.exit(main())
