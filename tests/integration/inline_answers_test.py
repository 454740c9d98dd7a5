#!/usr/bin/env python3
"""Issue 19: answers a native module gives at once run inside esmtpd's call (no posted answer, no
turn of the loop per phase; Filter::set_inline_answers), so the session's state machine is
re-entered from its own input loop. Two modules in a chain (misbehave.so: MAIL and RCPT answered
at once, some rejected or tempfailed; envelope_module.so: data, header and eom callbacks) and a
client that pipelines whole transactions in single writes: every reply comes once, in order,
with the module's own text, and only the accepted recipients get the message, which the second
module saw at eom with exactly those recipients. A rejected MAIL with the commands after it, RSET
and a header-stage reject are answered as without filters."""
import os
import socket

from harness import BUILD_DIR, Estafette, last_reply_line, run, skip, wait_for

MODULES = os.path.join(BUILD_DIR, "tests", "unit", "filters", "modules")
MISBEHAVE = os.path.join(MODULES, "misbehave.so")
ENVELOPE = os.path.join(MODULES, "envelope_module.so")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def message(subject, extra=""):
    return ("From: <s@example.test>\r\nTo: <a@estafette.test>\r\nSubject: %s\r\n%s"
            "Message-ID: <%s@example.test>\r\n\r\nhello\r\n..dot\r\n"
            % (subject, extra, subject.replace(" ", "-"))).encode()


def replies(f, n):
    """n replies: each its last line (code and text)."""
    return [last_reply_line(f).rstrip(b"\r\n") for _ in range(n)]


def codes(lines):
    return [l[:3] for l in lines]


def test(tmp, stoppers):
    for f in (MISBEHAVE, ENVELOPE):
        if not os.path.exists(f):
            skip(f + " is not built")
    mta = Estafette(tmp, filters="module:%s, module:%s" % (MISBEHAVE, ENVELOPE))
    stoppers.append(mta)
    mta.start()

    with socket.create_connection(("127.0.0.1", mta.port), timeout=30) as sock:
        f = sock.makefile("rb")
        check(last_reply_line(f).startswith(b"220"), "no greeting")
        sock.sendall(b"EHLO client.test\r\n")
        check(last_reply_line(f).startswith(b"250"), "EHLO")
        # One write: MAIL, four RCPTs (one rejected, one tempfailed at once), DATA.
        sock.sendall(b"MAIL FROM:<s@example.test>\r\nRCPT TO:<reject@estafette.test>\r\n"
                     b"RCPT TO:<a@estafette.test>\r\nRCPT TO:<tempfail@estafette.test>\r\n"
                     b"RCPT TO:<b@estafette.test>\r\nDATA\r\n")
        got = replies(f, 6)
        check(codes(got) == [b"250", b"550", b"250", b"451", b"250", b"354"],
              "first transaction: %r" % got)
        check(b"rcpt rejected at once" in got[1], "the module's reply text: %r" % got[1])
        # The message, then a transaction whose MAIL is rejected at once, in one write (DATA
        # ends a pipelined group: RFC 2920), then RSET and a third transaction in another.
        sock.sendall(message("first") + b".\r\n"
                     b"MAIL FROM:<reject@example.test>\r\nRCPT TO:<a@estafette.test>\r\n"
                     b"DATA\r\n")
        got = replies(f, 4)
        c = codes(got)
        check(c[0] == b"250" and c[1] == b"550" and b"mail rejected at once" in got[1] and
              c[2][:1] == b"5" and c[3][:1] == b"5", "second transaction: %r" % got)
        sock.sendall(b"RSET\r\nMAIL FROM:<s@example.test>\r\nRCPT TO:<a@estafette.test>\r\n"
                     b"DATA\r\n")
        got = replies(f, 4)
        check(codes(got) == [b"250", b"250", b"250", b"354"], "third transaction: %r" % got)
        # A reject at the header stage by the second module, then QUIT, in one write.
        sock.sendall(message("third", "X-Envelope-Reject: yes\r\n") + b".\r\nQUIT\r\n")
        got = replies(f, 2)
        check(codes(got) == [b"550", b"221"] and b"rejected at the header stage" in got[0],
              "header reject and QUIT: %r" % got)
        check(f.read() == b"", "more replies than commands")

    for user in ("a", "b"):
        wait_for(lambda: mta.maildir_messages(user), 15, "delivery to " + user)
    for user in ("reject", "tempfail"):
        check(not mta.maildir_messages(user), "a refused recipient got mail: " + user)
    got = mta.maildir_messages("a")
    check(len(got) == 1 and b"Subject: first" in got[0], "a's mailbox: %r" % got)
    head = got[0].partition(b"\n\n")[0]
    check(b"X-Envelope-Rcpts: <a@estafette.test>, <b@estafette.test>\n" in head,
          "the recipients the second module saw at eom: %r" % head)
    check(b"\n.dot\n" in got[0], "the body as sent (dot-unstuffed): %r" % got[0])
    print("pipelined through two modules answering at once: replies in order, "
          "a and b got the message, refused recipients nothing")
    mta.stop()


run(test)
