#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the sender learns and what is not stored (issue 16), against
msilo-server on 127.0.0.1 with raw SIP sockets: an isComposing state to an
offline user gets 480 and is not stored (forwarded when the user is online);
a 415 on delivery is not retried and the sender gets the failure notice; a
CPIM message asking for processing and negative-delivery gets a <stored/>
IMDN, then a <failed/> one after the 415, both valid against RFC 5438's
schema (xmllint, tests/engine/imdn.xsd); one that expires undelivered (a
2-second expire_time) gets a <failed/> from the expiry; the From display name, Subject and
Priority are stored and re-sent, the date prefix has its UTC offset.

  receipts.py --server build/examples/msilo-server/msilo-server [TEST...]

Exit status: 0 passed, 1 failed.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import e2e  # noqa: E402
from e2e import LOOPBACK, Server, Uas, check, header, read, register, sip_request  # noqa: E402
from e2e import wait_quiet, wait_until, write_conf  # noqa: E402

ARGS = None
XSD = os.path.join(HERE, "..", "engine", "imdn.xsd")

ISCOMPOSING = (b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
               b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
               b'<state>active</state><refresh>60</refresh></isComposing>')


def stats(srv):
    """The latest statistics line (SIGUSR1) as a dict of ints."""
    before = read(srv.log).count("stored_messages=")
    os.kill(srv.proc.pid, signal.SIGUSR1)
    wait_until(lambda: read(srv.log).count("stored_messages=") > before, 5)
    lines = [l for l in read(srv.log).splitlines() if "stored_messages=" in l]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])} if lines else {}


def message(srv, user, ctype, body, frm="sip:alice@127.0.0.1"):
    st, hdrs, _ = sip_request(srv.port, "MESSAGE", "sip:%s@127.0.0.1:%d" % (user, srv.port),
                              "udp", "Content-Type: %s\r\n" % ctype, body,
                              to="sip:%s@127.0.0.1" % user, frm=frm)
    return st, hdrs


def test_iscomposing_offline_480(tmp):
    """isComposing to an offline user: 480, nothing stored, nothing replayed at
    the REGISTER; to an online user: forwarded."""
    srv = Server(tmp)
    uas = Uas(200)
    try:
        st, hdrs = message(srv, "dora", "application/im-iscomposing+xml", ISCOMPOSING)
        check(st == 480, "isComposing to an offline user -> %d (want 480)" % st)
        check("transient" in (header(hdrs, "Warning") or ""), "Warning says why: %s" % hdrs)
        s = stats(srv)
        check(s.get("stored_messages") == 0, "nothing stored: %s" % s)
        check(s.get("rejected_transient") == 1, "counted: %s" % s)
        register(srv, "dora", "sip:dora@127.0.0.1:%d" % uas.port)
        check(wait_quiet(lambda: len(uas.requests), 0.5, 5), "the UA settled")
        check(not uas.messages(), "nothing replayed at the REGISTER: %s" % uas.messages())
        # online: forwarded, the UA's 200 relayed
        st, _ = message(srv, "dora", "application/im-iscomposing+xml", ISCOMPOSING)
        check(st == 200, "isComposing to an online user -> %d (want the UA's 200)" % st)
        check(len(uas.messages()) == 1 and uas.messages()[0][2] == ISCOMPOSING,
              "forwarded as is: %s" % uas.messages())
    finally:
        uas.close()
        srv.stop()


def test_permanent_failure_415(tmp):
    """A 415 on delivery: deleted at once, no retry (check_time 1 s), and the
    sender (its From URI) gets the failure notice."""
    sender = Uas(200)
    rcpt = Uas(415)
    conf = write_conf(tmp, "perm.conf", "[msilo]\ncheck_time = 1\nadd_date = 0\n"
                      "from_address = sip:silo@127.0.0.1\n")
    srv = Server(tmp, conf)
    try:
        frm = "sip:alice@127.0.0.1:%d" % sender.port
        st, _ = message(srv, "carl", "text/plain", b"hello carl", frm=frm)
        check(st == 202, "stored (%d)" % st)
        register(srv, "carl", "sip:carl@127.0.0.1:%d" % rcpt.port)
        check(wait_until(lambda: sender.messages(), 5), "the sender was told")
        first, hdrs, body = sender.messages()[0]
        check(b"could not be delivered" in body and b"carl" in body, "notice: %r" % body)
        check("silo@127.0.0.1" in (header(hdrs, "From") or ""), "From is from_address")
        # no retry: the UA saw one attempt, across several check_time periods
        check(wait_quiet(lambda: len(rcpt.messages()), 3, 10), "the UA settled")
        check(len(rcpt.messages()) == 1, "one attempt, not retried: %d" % len(rcpt.messages()))
        s = stats(srv)
        check(s.get("permanent_failures") == 1 and s.get("queued_messages", 0) == 0,
              "counted and gone: %s" % s)
        register(srv, "carl", "sip:carl@127.0.0.1:%d" % rcpt.port)
        check(wait_quiet(lambda: len(rcpt.messages()), 0.5, 5), "the UA settled")
        check(len(rcpt.messages()) == 1, "not again at the next REGISTER")
    finally:
        sender.close()
        rcpt.close()
        srv.stop()


def imdn_xml(tmp, body, name):
    """The message/imdn+xml part of an IMDN's CPIM body, checked with xmllint."""
    text = body.decode("utf-8", "replace")
    check("Content-Type: message/imdn+xml" in text, "an IMDN part: %r" % text)
    xml = text[text.index("<?xml"):]
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(xml)
    r = subprocess.run(["xmllint", "--noout", "--schema", XSD, path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(r.returncode == 0, "IMDN valid against RFC 5438's schema: %s\n%s"
          % (r.stdout.decode(), xml))
    return xml


def test_cpim_imdn(tmp):
    """CPIM asking for processing + negative-delivery: <stored/> to the
    sender after the 202; <failed/> after the recipient's 415; the delivered
    CPIM body is the one sent."""
    if not shutil.which("xmllint"):
        raise e2e.Skip("no xmllint")
    sender = Uas(200)
    rcpt = Uas(415)
    srv = Server(tmp, write_conf(tmp, "imdn.conf", "[msilo]\ncheck_time = 1\n"))
    try:
        frm = "sip:alice@127.0.0.1:%d" % sender.port
        cpim = ("From: Alice <%s>\r\nTo: <sip:erin@127.0.0.1>\r\n"
                "NS: imdn <urn:ietf:params:imdn>\r\n"
                "imdn.Message-ID: e2e-34jk324j\r\nDateTime: 2026-12-01T10:00:00Z\r\n"
                "imdn.Disposition-Notification: positive-delivery, negative-delivery, "
                "processing\r\n\r\n"
                "Content-Type: text/plain\r\nContent-Length: 10\r\n\r\nhello cpim" % frm
                ).encode()
        st, _ = message(srv, "erin", "message/cpim", cpim, frm=frm)
        check(st == 202, "stored (%d)" % st)
        check(wait_until(lambda: sender.messages(), 5), "the <stored/> IMDN arrived")
        first, hdrs, body = sender.messages()[0]
        check(header(hdrs, "Content-Type") == "message/cpim", "IMDN is CPIM: %s" % hdrs)
        xml = imdn_xml(tmp, body, "stored.xml")
        check("<stored/>" in xml and "<message-id>e2e-34jk324j</message-id>" in xml
              and "<datetime>2026-12-01T10:00:00Z</datetime>" in xml, "stored: " + xml)
        print("---- the <stored/> IMDN as received ----\n%s\n%s\n" % (
            "\n".join("%s: %s" % h for h in hdrs), body.decode()), flush=True)
        register(srv, "erin", "sip:erin@127.0.0.1:%d" % rcpt.port)
        check(wait_until(lambda: len(sender.messages()) >= 2, 5), "the <failed/> IMDN arrived")
        check(rcpt.messages() and rcpt.messages()[0][2] == cpim, "CPIM delivered unchanged")
        xml = imdn_xml(tmp, sender.messages()[1][2], "failed.xml")
        check("<delivery-notification><status><failed/>" in xml, "failed: " + xml)
        check(wait_quiet(lambda: len(sender.messages()), 0.5, 5) and
              len(sender.messages()) == 2, "no failure notice on top of the IMDN")
    finally:
        sender.close()
        rcpt.close()
        srv.stop()


def test_cpim_expired_failed(tmp):
    """CPIM asking for negative-delivery, never delivered: when it expires
    (expire_time 2 s, expiry every second) the sender gets a schema-valid
    <failed/> delivery notification with the original's Message-ID, and the
    message is gone."""
    if not shutil.which("xmllint"):
        raise e2e.Skip("no xmllint")
    sender = Uas(200)
    srv = Server(tmp, write_conf(tmp, "expiry.conf", "[msilo]\ncheck_time = 1\n"
                                 "clean_period = 1\nexpire_time = 2\n"))
    try:
        frm = "sip:alice@127.0.0.1:%d" % sender.port
        cpim = ("From: Alice <%s>\r\nTo: <sip:gina@127.0.0.1>\r\n"
                "NS: imdn <urn:ietf:params:imdn>\r\n"
                "imdn.Message-ID: e2e-exp-5438\r\nDateTime: 2026-12-01T11:00:00Z\r\n"
                "imdn.Disposition-Notification: negative-delivery\r\n\r\n"
                "Content-Type: text/plain\r\nContent-Length: 7\r\n\r\nexpires" % frm
                ).encode()
        st, _ = message(srv, "gina", "message/cpim", cpim, frm=frm)
        check(st == 202, "stored (%d)" % st)
        check(wait_until(lambda: sender.messages(), 10), "the <failed/> IMDN arrived")
        _, hdrs, body = sender.messages()[0]
        check(header(hdrs, "Content-Type") == "message/cpim", "IMDN is CPIM: %s" % hdrs)
        xml = imdn_xml(tmp, body, "expired.xml")
        check("<delivery-notification><status><failed/></status>" in xml and
              "<message-id>e2e-exp-5438</message-id>" in xml and
              "<datetime>2026-12-01T11:00:00Z</datetime>" in xml, "failed: " + xml)
        print("---- the <failed/> IMDN of an expired message as received ----\n%s\n%s\n" % (
            "\n".join("%s: %s" % h for h in hdrs), body.decode()), flush=True)
        s = stats(srv)
        check(s.get("expired_messages") == 1 and s.get("queued_messages", 0) == 0,
              "expired and gone: %s" % s)
        check(wait_quiet(lambda: len(sender.messages()), 1.5, 6) and
              len(sender.messages()) == 1, "one IMDN, once")
    finally:
        sender.close()
        srv.stop()


def received_messages(trace):
    """The MESSAGE requests sipp received, from its -trace_msg file, as bytes."""
    text = read(trace)
    out = []
    for block in re.split(r"-{5,}[^\n]*\n", text):
        head, _, msg = block.partition("\n\n")
        if "message received" in head and msg.startswith("MESSAGE "):
            out.append(msg.rstrip("\n").replace("\r\n", "\n").replace("\n", "\r\n").encode())
    return out


def test_sipp_sender_gets_imdns(tmp):
    """The sender is sipp (tests/e2e/imdn_uas.xml): it receives the <stored/>
    IMDN after the 202 and the <failed/> after the recipient's 415, both
    valid against RFC 5438's schema."""
    sipp = shutil.which("sipp")
    if not sipp or not shutil.which("xmllint"):
        raise e2e.Skip("no sipp or xmllint")
    port = e2e.free_port()
    trace = os.path.join(tmp, "imdn-sipp-messages.log")
    uas = e2e.start([sipp, "-sf", os.path.join(HERE, "imdn_uas.xml"), "-i", LOOPBACK,
                     "-p", str(port), "-m", "2", "-trace_msg", "-message_file", trace,
                     "-nostdin", "-timeout", "30s"], os.path.join(tmp, "imdn-sipp.out"))
    rcpt = Uas(415)
    srv = Server(tmp, write_conf(tmp, "imdn-sipp.conf", "[msilo]\ncheck_time = 1\n"))
    try:
        check(wait_until(lambda: e2e.udp_port_bound(port), 5), "sipp listens")
        frm = "sip:alice@127.0.0.1:%d" % port
        cpim = ("From: <%s>\r\nTo: <sip:ida@127.0.0.1>\r\n"
                "NS: imdn <urn:ietf:params:imdn>\r\n"
                "imdn.Message-ID: e2e-sipp-7731\r\nDateTime: 2026-12-03T10:00:00Z\r\n"
                "imdn.Disposition-Notification: negative-delivery, processing\r\n\r\n"
                "Content-Type: text/plain\r\nContent-Length: 4\r\n\r\nsipp" % frm).encode()
        st, _ = message(srv, "ida", "message/cpim", cpim, frm=frm)
        check(st == 202, "stored (%d)" % st)
        check(wait_until(lambda: len(received_messages(trace)) >= 1, 10),
              "sipp received the <stored/> IMDN")
        register(srv, "ida", "sip:ida@127.0.0.1:%d" % rcpt.port)
        # -m 2: sipp ends by itself after the second IMDN (and its timewait)
        check(wait_until(lambda: uas.poll() is not None, 20) and uas.returncode == 0,
              "sipp took 2 IMDNs and ended with 0 (%s): %s"
              % (uas.poll(), read(os.path.join(tmp, "imdn-sipp.out"))[-500:]))
        got = received_messages(trace)
        check(len(got) == 2, "sipp received 2 IMDNs: %d" % len(got))
        kinds = []
        for i, m in enumerate(got):
            _, hdrs, body = e2e.parse_message(m)
            xml = imdn_xml(tmp, body, "sipp-%d.xml" % i)
            check("<message-id>e2e-sipp-7731</message-id>" in xml, "the original's id: " + xml)
            kinds.append("stored" if "<stored/>" in xml else "failed" if "<failed/>" in xml
                         else "?")
        check(kinds == ["stored", "failed"], "<stored/> then <failed/>: %s" % kinds)
        print("---- the <stored/> IMDN as sipp received it ----\n%s" % got[0].decode(),
              flush=True)
    finally:
        e2e.stop(uas)
        rcpt.close()
        srv.stop()


def test_display_name_and_subject(tmp):
    """The From's display name, Subject, Priority and an unknown header are
    stored and arrive with the delivery; the date prefix has its offset."""
    srv = Server(tmp)
    uas = Uas(200)
    try:
        def make(lport):
            body = b"see you at noon"
            return ("MESSAGE sip:fred@127.0.0.1:%d SIP/2.0\r\n"
                    "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-rc-%d;rport\r\n"
                    "From: \"Alice A.\" <sip:alice@127.0.0.1>;tag=rc1\r\n"
                    "To: <sip:fred@127.0.0.1>\r\nCall-ID: rc-%d@127.0.0.1\r\n"
                    "CSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nSubject: lunch\r\n"
                    "Priority: urgent\r\nX-Custom: kept\r\nContent-Type: text/plain\r\n"
                    "Content-Length: %d\r\n\r\n" % (srv.port, LOOPBACK, lport, os.getpid(),
                                                     os.getpid(), len(body))).encode() + body
        r = e2e.sip_exchange(srv.port, "udp", make, 8)
        check(r and r[0] == 202, "stored: %s" % (r,))
        register(srv, "fred", "sip:fred@127.0.0.1:%d" % uas.port)
        check(wait_until(lambda: uas.messages(), 5), "delivered")
        _, hdrs, body = uas.messages()[0]
        frm = header(hdrs, "From") or ""
        check(frm.startswith('"Alice A." <sip:alice@127.0.0.1>'), "display name kept: " + frm)
        check(header(hdrs, "Subject") == "lunch", "Subject arrived: %s" % hdrs)
        check(header(hdrs, "Priority") == "urgent", "Priority arrived: %s" % hdrs)
        check(header(hdrs, "X-Custom") == "kept", "unknown header arrived: %s" % hdrs)
        check(header(hdrs, "X-Msilo-From-Display") is None, "no internal header: %s" % hdrs)
        check(re.match(rb"\[Offline message - .* [+-]\d{4}\] see you at noon$", body),
              "date prefix with its offset: %r" % body)
    finally:
        uas.close()
        srv.stop()


TESTS = [test_iscomposing_offline_480, test_permanent_failure_415, test_cpim_imdn,
         test_cpim_expired_failed, test_display_name_and_subject, test_sipp_sender_gets_imdns]


def main():
    global ARGS
    ARGS = e2e.script_args()
    return e2e.run_script(TESTS, ARGS, "msilo-receipts-")


if __name__ == "__main__":
    sys.exit(main())
