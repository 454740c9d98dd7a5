#!/usr/bin/env python3
"""Issue 13, items 5 and 6, on real sockets: a hostile milter (hostile_milter.py, the milter
protocol spoken by the test) sends each kind of bad modification at end of message; esmtpd must
refuse the message with the milter's default action, log it naming the milter, and queue and
deliver nothing. A quarantine holds the message (reason sanitized, never copied raw). NUL in DATA
is refused (554 5.6.0) before a milter sees it; a 10 MB header of `a:` lines is refused as it
arrives (552 5.3.4) without a header going to the milter."""
import os
import re
import smtplib
import socket
import time

import harness
from harness import Estafette, last_reply_line, run, wait_for
import hostile_milter as hm

MSG = (b"From: <s@example.test>\r\nTo: <user@estafette.test>\r\nSubject: hostile\r\n"
       b"Message-ID: <hostile@example.test>\r\n\r\nhello\r\n")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def send(mta, message=MSG, rcpt="user@estafette.test"):
    """(code, text) of the DATA reply (or of the first refusal before it)."""
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=60) as s:
        s.ehlo("client.test")
        code, text = s.mail("s@example.test")
        if code == 250:
            code, text = s.rcpt(rcpt)
        if code == 250:
            code, text = s.data(message)
        return code, text


def nothing_queued_or_delivered(mta, what):
    time.sleep(0.5)
    check(not mta.maildir_messages("user"), what + ": a message was delivered")
    check(not mta.maildir_messages("evil"), what + ": the injected recipient got it")
    check(not mta.queue_files(), what + ": a message is still queued")


BAD = [
    ("name with colon", hm.add_header(b"X-Bad: injected", b"v")),
    ("name with CRLF", hm.add_header(b"X-A\r\nBcc", b"evil@example.test")),
    ("name with space", hm.add_header(b"X A", b"v")),
    ("name with LF (change)", hm.change_header(1, b"Subject\nBcc", b"x")),
    ("name with control char (insert)", hm.insert_header(0, b"X-\x01", b"v")),
    ("name too long", hm.add_header(b"X" * 300, b"v")),
    ("value with LF then a field", hm.add_header(b"X-A", b"v\nBcc: evil@estafette.test")),
    ("value with CRLF then a field", hm.insert_header(1, b"X-A", b"v\r\nBcc: evil@x")),
    ("value ending the header", hm.add_header(b"X-A", b"v\n\ninjected body")),
    ("value with trailing LF", hm.change_header(1, b"Subject", b"v\n")),
    ("value with bare CR", hm.add_header(b"X-A", b"v\rw")),
    ("recipient with LF", hm.add_rcpt(b"<user@estafette.test>\nR evil@estafette.test")),
    ("recipient not a mailbox", hm.add_rcpt(b"<evil user>")),
    ("sender with CR", hm.change_from(b"<s@example.test\r>")),
    ("too many modifications", b"".join(hm.add_header(b"X-Many", b"%d" % i)
                                        for i in range(1001))),
    ("body over max_message_size", b"".join(hm.replace_body(b"b" * 60000 + b"\r\n")
                                            for _ in range(5))),
]


def bad_modifications(tmp, stoppers):
    milter = hm.HostileMilter()
    stoppers.append(milter)
    for action, want in (("tempfail", 451), ("reject", 550)):
        mta = Estafette(tmp, name="hostile-" + action, filters=milter.spec(),
                        milter_default_action=action, max_message_size="200K")
        stoppers.append(mta)
        mta.start()
        cases = BAD if action == "tempfail" else BAD[:3]
        for what, packets in cases:
            milter.set(packets)
            code, text = send(mta)
            check(code == want, "%s (%s): got %d %r" % (what, action, code, text))
            nothing_queued_or_delivered(mta, what)
        log = mta.read_log()
        name = milter.spec()[len("milter:"):]
        failed = len(re.findall(r"filter failed session=\d+\.\d+ phase=eom filter=%s reason=" % re.escape(name), log))
        check(failed == len(cases), "%d log lines naming the milter, want %d" % (failed, len(cases)))
        # The milter session survives a refused message: a good one goes through next.
        milter.set(hm.add_header(b"X-Good", b"folded\n\tvalue"))
        code, text = send(mta)
        check(code == 250, "good message after the bad ones: %d %r" % (code, text))
        got = wait_for(lambda: mta.maildir_messages("user"), 15, "delivery")[0]
        check(b"X-Good: folded\n\tvalue\n" in got, "folded header: %r" % got[:400])
        print("%s: %d invalid modifications refused with %d, a good one delivered"
              % (action, len(cases), want))
        mta.stop()


def reply_codes(tmp, stoppers):
    milter = hm.HostileMilter()
    stoppers.append(milter)
    mta = Estafette(tmp, name="replycode", filters=milter.spec(), milter_default_action="tempfail")
    stoppers.append(mta)
    mta.start()
    for text in (b"550-5.7.1 first\r\n250 2.0.0 but queued", b"550-5.7.1 one\r\n451 4.7.1 two",
                 b"550 5.7.1 one\r\n550 5.7.1 two", b"550 4.7.1 classes differ",
                 b"550 5.7.1 a\nbare LF"):
        milter.set(b"", final=hm.reply_code(text))
        code, msg = send(mta)
        check(code == 451 and b"250" not in msg and b"but queued" not in msg,
              "reply %r: got %d %r" % (text, code, msg))
        nothing_queued_or_delivered(mta, "reply %r" % text)
    milter.set(b"", final=hm.reply_code(b"550-5.7.1 first line\r\n550 5.7.1 second line"))
    code, msg = send(mta)
    check(code == 550 and b"second line" in msg, "a valid multi-line reply: %d %r" % (code, msg))
    print("REPLYCODE: 5 malformed replies answered 451 (default action), a valid one as sent")
    mta.stop()


def quarantine_reason(tmp, stoppers):
    milter = hm.HostileMilter()
    stoppers.append(milter)
    mta = Estafette(tmp, name="quarantine", filters=milter.spec())
    stoppers.append(mta)
    mta.start()
    milter.set(hm.quarantine(b"spam\r\nBcc: evil@estafette.test\r\n\r\ninjected"))
    code, text = send(mta)
    check(code == 250, "quarantine: %d %r" % (code, text))
    # Queued on hold with the reason made one printable line; it survives a restart.
    reason = "spam??Bcc: evil@estafette.test????injected"
    held = wait_for(lambda: harness.mailq_messages(mta), 15, "the message in mailq")
    check(len(held) == 1 and held[0]["held"] and held[0]["quarantine"] == reason,
          "quarantined message: %r" % held)
    check(reason in mta.read_log(), "no quarantine log line")
    mta.stop()
    mta.start()
    time.sleep(1.5)
    held = harness.mailq_messages(mta)
    check(len(held) == 1 and held[0]["held"] and not mta.maildir_messages("user"),
          "held after a restart: %r" % held)
    # Released by the admin: delivered, and the reason never became a header.
    harness.release(mta, held[0]["id"])
    got = wait_for(lambda: mta.maildir_messages("user"), 15, "delivery after release")[0]
    head = got.partition(b"\n\n")[0] + b"\n"
    check(b"\nBcc:" not in head and b"injected" not in head and not mta.maildir_messages("evil"),
          "reason injected a header: %r" % head)
    print("quarantine: held with the reason sanitized (%r), kept over a restart, delivered "
          "after release" % reason)
    mta.stop()


def raw_data(port, head, body):
    """Sends DATA bytes over a raw socket; the reply to the end of data."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = s.makefile("rb")

    def reply():
        return last_reply_line(f)

    reply()
    for cmd in (b"EHLO client.test", b"MAIL FROM:<s@example.test>", b"RCPT TO:<user@estafette.test>",
                b"DATA"):
        s.sendall(cmd + b"\r\n")
        reply()
    s.sendall(head + body + b".\r\n")
    got = reply()
    s.sendall(b"QUIT\r\n")
    s.close()
    return got


def nul_and_header_flood(tmp, stoppers):
    milter = hm.HostileMilter()
    stoppers.append(milter)
    mta = Estafette(tmp, name="nul", filters=milter.spec(), max_message_size="12M")
    stoppers.append(mta)
    mta.start()
    got = raw_data(mta.port, b"Subject: a\0b\r\n\r\n", b"body\r\n")
    check(got.startswith(b"554 5.6.0 NUL characters not allowed"), "NUL in header: %r" % got)
    got = raw_data(mta.port, b"Subject: x\r\n\r\n", b"bo\0dy\r\n")
    check(got.startswith(b"554 5.6.0"), "NUL in body: %r" % got)
    check(not milter.headers and milter.eoms == 0, "the milter saw a message with NUL")
    nothing_queued_or_delivered(mta, "NUL")

    # 10 MB of "a:" lines: refused as it arrives, the milter never sees a header.
    t0 = time.time()
    got = raw_data(mta.port, b"a:\r\n" * (10 * 1024 * 1024 // 4), b"\r\nbody\r\n")
    took = time.time() - t0
    check(got.startswith(b"552 5.3.4"), "10 MB of a: lines: %r" % got)
    check(not milter.headers, "the milter got %d headers" % len(milter.headers))
    nothing_queued_or_delivered(mta, "header flood")
    # One header field over max_header_size (100K).
    got = raw_data(mta.port, b"X-Big: " + b"x" * 990 + b"\r\n" + b" y\r\n" * 30000 + b"\r\n", b"b\r\n")
    check(got.startswith(b"552 5.3.4"), "a 120K header field: %r" % got)
    # A normal message still goes through, with its headers passed to the milter.
    code, text = send(mta)
    check(code == 250 and len(milter.headers) >= 4, "after the floods: %d %r" % (code, text))
    print("NUL refused (554 5.6.0); 10 MB header flood refused with 552 in %.2fs, "
          "the milter saw no header of it" % took)
    mta.stop()


def test(tmp, stoppers):
    bad_modifications(tmp, stoppers)
    reply_codes(tmp, stoppers)
    quarantine_reason(tmp, stoppers)
    nul_and_header_flood(tmp, stoppers)


run(test)
