"""DSN (RFC 3461-3464) end to end, with Python's smtplib as the client and Postfix's smtp-sink as
the next hops: a 5xx downstream bounces to the sender's Maildir as an RFC 3464 report (with
Original-Envelope-Id and Original-Recipient, RET=HDRS: headers only, default: the whole
message); NOTIFY=NEVER gives no bounce; NOTIFY=SUCCESS gives "delivered" for a local mailbox
and "relayed" via a next hop without DSN; a next hop that advertises DSN gets the parameters on
the wire (and reports success itself); a destination that is down gets one delay warning after
warntime, none again after a restart, and the message is delivered once it is up. Bad
parameters get 501 5.5.4."""
import email
import email.policy
import re
import smtplib
import time

import harness


def notices(mta, user, subject):
    """The user's Maildir messages with this Subject, parsed."""
    out = []
    for raw in mta.maildir_messages(user):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if msg["Subject"] == subject:
            out.append((raw, msg))
    return out


def wait_notice(mta, user, subject):
    found = harness.wait_for(lambda: notices(mta, user, subject), 20,
                             "%r for %s" % (subject, user))
    assert len(found) == 1, [m["Subject"] for _, m in found]
    return found[0]


def report(raw, msg):
    """(per-message fields, [per-recipient fields], parts) of a multipart/report."""
    assert raw.startswith(b"Return-Path: <>"), raw[:80]  # notices use the null sender
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status", msg["Content-Type"]
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts][:2] == ["text/plain", "message/delivery-status"]
    groups = parts[1].get_payload()  # the email package parses the report into field blocks
    assert not msg.defects and not any(p.defects for p in parts), msg.defects
    return groups[0], groups[1:], parts


def test(tmp, stoppers):
    reject = harness.SmtpSink(tmp, options=["-f", "rcpt", "-B", "550 5.1.1 No such user here"])
    plain = harness.SmtpSink(tmp, options=["-N"])   # accepts, announces no DSN
    dsn = harness.SmtpSink(tmp)                     # accepts, announces DSN
    for sink in (reject, plain, dsn):
        stoppers.append(sink.start())
    down_port = harness.free_port()                 # nothing listens here yet
    mta = harness.Estafette(tmp, relay_domains="far.test, plain.test, dsn.test, down.test",
                            warntime="3s", queuetime="1h",
                            routes={"far.test": "127.0.0.1,%d" % reject.port,
                                    "plain.test": "127.0.0.1,%d" % plain.port,
                                    "dsn.test": "127.0.0.1,%d" % dsn.port,
                                    "down.test": "127.0.0.1,%d" % down_port}).start()
    stoppers.append(mta)

    # Bad syntax and duplicates: 501 5.5.4 with a clear text.
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        code, lines = s.ehlo("client.test")
        assert b"\nDSN" in lines, lines
        code, text = s.docmd("MAIL FROM:<a@estafette.test> RET=ALL")
        assert (code, text[:24]) == (501, b"5.5.4 Bad RET parameter:"), (code, text)
        code, text = s.docmd("MAIL FROM:<a@estafette.test> ENVID=x ENVID=y")
        assert (code, text) == (501, b"5.5.4 Duplicate parameter: ENVID"), (code, text)
        assert s.docmd("MAIL FROM:<a@estafette.test> RET=HDRS ENVID=x")[0] == 250
        code, text = s.docmd("RCPT TO:<b@far.test> NOTIFY=NEVER,DELAY")
        assert (code, text[:27]) == (501, b"5.5.4 Bad NOTIFY parameter:"), (code, text)
        code, text = s.docmd("RCPT TO:<b@far.test> ORCPT=b@far.test")
        assert (code, text[:26]) == (501, b"5.5.4 Bad ORCPT parameter:"), (code, text)
        s.rset()

    body = b"Subject: %s\r\nMessage-ID: <%s@estafette.test>\r\n\r\nthe body text\r\n"

    # 1. A 5xx downstream: the bounce, RET=HDRS (headers only), ENVID and ORCPT reported.
    mta.send("alice@estafette.test", ["nobody@far.test"], body % (b"hdrs", b"dsn-1"),
             mail_options=["RET=HDRS", "ENVID=env+2Bone"],
             rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;Nobody+2Balias@far.test"])
    # 2. The same without RET: the whole message comes back.
    mta.send("carol@estafette.test", ["nobody@far.test"], body % (b"full", b"dsn-2"))
    # 3. NOTIFY=NEVER: no bounce.
    mta.send("bob@estafette.test", ["nobody@far.test"], body % (b"never", b"dsn-3"),
             rcpt_options=["NOTIFY=NEVER"])
    # 4. NOTIFY=SUCCESS to a local mailbox: "delivered".
    mta.send("dave@estafette.test", ["erin@estafette.test"], body % (b"local", b"dsn-4"),
             rcpt_options=["NOTIFY=SUCCESS"])
    # 5. NOTIFY=SUCCESS via a next hop without DSN: "relayed".
    mta.send("frank@estafette.test", ["x@plain.test"], body % (b"relayed", b"dsn-5"),
             mail_options=["ENVID=five"], rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
    # 6. A next hop with DSN gets the parameters (and sends any success notice itself).
    mta.send("grace@estafette.test", ["y@dsn.test"], body % (b"passed", b"dsn-6"),
             mail_options=["RET=FULL", "ENVID=six+2B6"],
             rcpt_options=["NOTIFY=SUCCESS,DELAY", "ORCPT=rfc822;Y+2Balias@dsn.test"])
    # 7. A destination that is down: one delay warning after warntime, then delivered.
    start = time.time()
    mta.send("heidi@estafette.test", ["z@down.test"], body % (b"delayed", b"dsn-7"))

    raw, msg = wait_notice(mta, "alice", "Undelivered Mail Returned to Sender")
    fields, rcpts, parts = report(raw, msg)
    assert fields["Reporting-MTA"] == "dns; mta.estafette.test", fields
    assert fields["Original-Envelope-Id"] == "env+one", fields
    assert len(rcpts) == 1, rcpts
    r = rcpts[0]
    assert r["Final-Recipient"] == "rfc822; nobody@far.test", r
    assert r["Original-Recipient"] == "rfc822; Nobody+alias@far.test", r
    assert r["Action"] == "failed" and r["Status"] == "5.1.1", r
    assert r["Diagnostic-Code"].startswith("smtp; 550") and "No such user here" in \
        r["Diagnostic-Code"], r
    assert parts[2].get_content_type() == "text/rfc822-headers", parts[2].get_content_type()
    assert b"dsn-1@estafette.test" in raw and b"the body text" not in raw, raw

    raw, msg = wait_notice(mta, "carol", "Undelivered Mail Returned to Sender")
    fields, rcpts, parts = report(raw, msg)
    assert "Original-Envelope-Id" not in fields, fields
    assert rcpts[0]["Original-Recipient"] == "rfc822; nobody@far.test", rcpts[0]
    assert parts[2].get_content_type() == "message/rfc822", parts[2].get_content_type()
    original = parts[2].get_payload()[0]
    assert original["Message-ID"] == "<dsn-2@estafette.test>", original
    assert original.get_content().strip() == "the body text", original.get_content()

    raw, msg = wait_notice(mta, "dave", "Successful Mail Delivery Report")
    fields, rcpts, parts = report(raw, msg)
    assert rcpts[0]["Action"] == "delivered" and rcpts[0]["Status"].startswith("2."), rcpts[0]
    assert rcpts[0]["Final-Recipient"] == "rfc822; erin@estafette.test", rcpts[0]
    assert parts[2].get_content_type() == "text/rfc822-headers"
    assert len(mta.maildir_messages("erin")) == 1

    raw, msg = wait_notice(mta, "frank", "Successful Mail Delivery Report")
    fields, rcpts, parts = report(raw, msg)
    assert fields["Original-Envelope-Id"] == "five", fields
    assert rcpts[0]["Action"] == "relayed", rcpts[0]
    assert rcpts[0]["Remote-MTA"] == "dns; 127.0.0.1", rcpts[0]

    got = harness.wait_for(lambda: dsn.messages(), 20, "the message at the DSN next hop")
    assert b"X-Mail-Args: <grace@estafette.test> RET=FULL ENVID=six+2B6\n" in got[0], got[0][:400]
    assert b"X-Rcpt-Args: <y@dsn.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Y+2Balias@dsn.test\n" \
        in got[0], got[0][:400]
    got = harness.wait_for(lambda: plain.messages(), 20, "the message at the plain next hop")
    assert b"X-Mail-Args: <frank@estafette.test>\n" in got[0], got[0][:400]
    assert b"X-Rcpt-Args: <x@plain.test>\n" in got[0], got[0][:400]

    raw, msg = wait_notice(mta, "heidi", "Delayed Mail (still being retried)")
    # Arrival times are whole seconds: the warning may come up to 1 s early.
    assert time.time() - start >= 2, "the warning came before warntime"
    fields, rcpts, parts = report(raw, msg)
    r = rcpts[0]
    assert r["Action"] == "delayed" and r["Status"].startswith("4."), r
    assert r["Final-Recipient"] == "rfc822; z@down.test", r
    assert "Will-Retry-Until" in r, r
    assert not reject.messages() and not dsn.messages()[1:]
    # The warning is recorded in the queue: estafetted restarted while the destination is still
    # down (the message now well past warntime) tries the message again but warns no more.
    warned_id = re.search(r"id=(\S+) sender delivery status \(delayed\) notification: .*to=<heidi@",
                          mta.read_log()).group(1)
    mta.stop()
    mark = len(mta.read_log())
    mta.start()
    harness.wait_for(lambda: re.search(r"id=%s .* status=deferred " % warned_id, mta.read_log()[mark:]), 20,
                     "a delivery attempt after the restart")
    time.sleep(2)  # a second warning would be queued at the first pump and delivered at once
    assert "(delayed) notification" not in mta.read_log()[mark:], mta.read_log()[mark:]
    assert len(mta.maildir_messages("heidi")) == 1, "no second delay warning after a restart"
    # The destination comes up: the message goes out; no second warning.
    late = harness.SmtpSink(tmp, port=down_port)
    stoppers.append(late.start())
    # (smtp-sink may still be writing the file: wait for the whole message)
    harness.wait_for(lambda: any(b"<dsn-7@estafette.test>" in m for m in late.messages()), 20,
                     "the delayed message")

    harness.wait_for(lambda: not mta.queue_files(), 20, "the queue to empty")
    log = mta.read_log()
    assert "no bounce id=" in log and "NOTIFY=NEVER" in log, log[-2000:]
    time.sleep(0.5)  # anything still on its way to a mailbox would be in the queue above
    assert mta.maildir_messages("bob") == [], "NOTIFY=NEVER must not bounce"
    assert mta.maildir_messages("grace") == [], "the DSN next hop reports success, not us"
    assert len(mta.maildir_messages("heidi")) == 1, "one delay warning per message"
    for user in ("alice", "carol", "dave", "frank"):
        assert len(mta.maildir_messages(user)) == 1, (user, "one notice")


harness.run(test)
