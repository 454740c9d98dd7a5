#!/usr/bin/env python3
"""Issue 19: the native ABI 1.1 in esmtpd. tests/unit/filters/modules/envelope_module.c, built for
1.1 and against the 1.0 layout, both loaded by esmtpd: at end of message the 1.1 module reads the
accepted recipients (host->foreach_rcpt) and the message size (host->message_size) and adds them
as headers; the delivered message shows them, the size matches the delivered bytes, and the 1.0
module works beside it. A header-stage reject is logged with phase=header; a message whose
recipients the module deletes (all of them) answers 250 "discarded" and is neither queued nor
delivered.
The envelope module has no helo, mail, rcpt, eoh or body callback, so esmtpd skips those calls
(Filter::receives): a client that pipelines MAIL, two RCPTs (each a mailbox lookup answered off
the loop) and DATA in one packet gets 250, 250, 250, 354 in order, and the message is delivered
with both recipients seen at eom."""
import os
import re
import smtplib
import socket
import time

from harness import BUILD_DIR, Estafette, last_reply_line, run, skip, wait_for

MODULES = os.path.join(BUILD_DIR, "tests", "unit", "filters", "modules")
V11 = os.path.join(MODULES, "envelope_module.so")
V10 = os.path.join(MODULES, "envelope_module_v10.so")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def message(subject, extra=""):
    return ("From: <s@example.test>\r\nTo: <a@estafette.test>, <b@estafette.test>\r\n"
            "Subject: %s\r\n%sMessage-ID: <%s@example.test>\r\n\r\nhello\r\n.dot\r\n"
            % (subject, extra, subject.replace(" ", "-"))).encode()


def as_filtered(delivered):
    """The delivered message as the filters saw it: without what delivery and the filters added,
    CRLF line ends."""
    lines = [l for l in delivered.split(b"\n")
             if not l.startswith((b"Return-Path:", b"Delivered-To:", b"X-Envelope-"))]
    return b"\r\n".join(lines)


def test(tmp, stoppers):
    for f in (V11, V10):
        if not os.path.exists(f):
            skip(f + " is not built")
    mta = Estafette(tmp, filters="module:%s, module:%s" % (V11, V10))
    stoppers.append(mta)
    mta.start()

    mta.send("s@example.test", ["a@estafette.test", "b@estafette.test"], message("envelope"))
    for user in ("a", "b"):
        wait_for(lambda: mta.maildir_messages(user), 15, "delivery to " + user)
    got = mta.maildir_messages("a")[0]
    head = got.partition(b"\n\n")[0].decode() + "\n"
    check("X-Envelope-Abi: 1.1\n" in head and "X-Envelope-Abi: 1.0\n" in head,
          "both modules' headers: " + head)
    check("X-Envelope-Rcpts: <a@estafette.test>, <b@estafette.test>\n" in head,
          "recipients at eom: " + head)
    check("X-Envelope-Before-Eom: -1 -1\n" in head, "valid before eom: " + head)
    size = re.search(r"X-Envelope-Size: (\d+)\n", head)
    check(size, "no size header: " + head)
    check(int(size.group(1)) == len(as_filtered(got)),
          "size at eom %s, the message as filtered is %d bytes" % (size.group(1),
                                                                  len(as_filtered(got))))
    print("ABI 1.1 at eom: recipients %s, size %s (the delivered bytes); the 1.0 module works "
          "beside it" % ("<a@estafette.test>, <b@estafette.test>", size.group(1)))

    # Pipelined through the skipped phases.
    with socket.create_connection(("127.0.0.1", mta.port), timeout=30) as sock:
        f = sock.makefile("rb")
        check(last_reply_line(f).startswith(b"220"), "no greeting")
        sock.sendall(b"EHLO client.test\r\n")
        check(last_reply_line(f).startswith(b"250"), "EHLO")
        sock.sendall(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<a@estafette.test>\r\n"
                     b"RCPT TO:<b@estafette.test>\r\nDATA\r\n")
        replies = [last_reply_line(f)[:3] for _ in range(4)]
        check(replies == [b"250", b"250", b"250", b"354"], "pipelined replies: %r" % replies)
        sock.sendall(message("pipelined") + b".\r\nQUIT\r\n")
        replies = [last_reply_line(f)[:3] for _ in range(2)]
        check(replies == [b"250", b"221"], "end of data and QUIT: %r" % replies)
    wait_for(lambda: len(mta.maildir_messages("b")) == 2, 15, "the pipelined message")
    got = [m for m in mta.maildir_messages("b") if b"Subject: pipelined" in m]
    check(len(got) == 1 and b"X-Envelope-Rcpts: <a@estafette.test>, <b@estafette.test>\n"
          in got[0], "the pipelined message as delivered: %r" % got)
    print("pipelined MAIL, RCPT, RCPT, DATA through the skipped phases: 250 250 250 354")

    # A reject at the header stage: logged as phase=header, not eom.
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail("s@example.test")
        s.rcpt("a@estafette.test")
        code, text = s.data(message("header reject", "X-Envelope-Reject: yes\r\n"))
    check(code == 550 and b"rejected at the header stage" in text, "header reject: %d %r"
          % (code, text))
    log = mta.read_log()
    check(re.search(r"filter session=\S+ phase=header verdict=replycode filter=envelope-1.1", log),
          "the header-stage reject's log line: " + "\n".join(
              l for l in log.splitlines() if "verdict=" in l))

    # Every recipient deleted: 250, discarded, nothing queued or delivered.
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail("s@example.test")
        s.rcpt("a@estafette.test")
        s.rcpt("b@estafette.test")
        code, text = s.data(message("delete all", "X-Envelope-Delete-All: yes\r\n"))
    check(code == 250 and text == b"2.0.0 Ok: discarded: the filters removed every recipient",
          "every recipient deleted: %d %r" % (code, text))
    time.sleep(1)
    check(len(mta.maildir_messages("a")) == 2 and len(mta.maildir_messages("b")) == 2,
          "the discarded message was delivered")
    check(not mta.queue_files(), "the discarded message is queued")
    check("the filters removed every recipient; discarded" in mta.read_log(), "no log line")
    print("header reject logged phase=header; all recipients deleted: %d %s" % (code, text.decode()))
    mta.stop()


run(test)
