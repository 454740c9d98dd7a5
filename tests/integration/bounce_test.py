"""A 5xx from the next hop produces an RFC 3464 bounce to the sender, delivered to the sender's
Maildir (the sender is local); a bounce is never sent to the null sender."""
import email
import email.policy

import harness


def test(tmp, stoppers):
    # smtp-sink rejects every RCPT with a hard 5xx error.
    sink = harness.SmtpSink(tmp, options=["-f", "rcpt", "-B", "550 5.1.1 No such user here"]).start()
    stoppers.append(sink)
    mta = harness.Estafette(tmp, relay_domains="far.test",
                            routes={"far.test": "127.0.0.1,%d" % sink.port}).start()
    stoppers.append(mta)
    msg = (b"From: alice@estafette.test\r\nTo: nobody@far.test\r\nSubject: will bounce\r\n"
           b"Message-ID: <bounce-1@estafette.test>\r\n\r\nbody\r\n")
    mta.send("alice@estafette.test", ["nobody@far.test"], msg)
    bounces = harness.wait_for(lambda: mta.maildir_messages("alice"), 20, "the bounce")
    assert len(bounces) == 1, bounces
    dsn = email.message_from_bytes(bounces[0], policy=email.policy.default)
    assert dsn.get_content_type() == "multipart/report", dsn.get_content_type()
    assert dsn.get_param("report-type") == "delivery-status", dsn["Content-Type"]
    assert bounces[0].startswith(b"Return-Path: <>"), bounces[0][:100]
    parts = list(dsn.iter_parts())
    types = [p.get_content_type() for p in parts]
    assert "message/delivery-status" in types, types
    status = parts[types.index("message/delivery-status")]
    text = status.as_bytes().decode(errors="replace")
    assert "Final-Recipient: rfc822; nobody@far.test" in text or \
        "Final-Recipient: rfc822;nobody@far.test" in text, text
    assert "Action: failed" in text and "Status: 5.1.1" in text, text
    assert "No such user here" in text, text
    assert "bounce-1@estafette.test" in bounces[0].decode(errors="replace"), "original headers"

    # A message from the null sender that fails is dropped, not bounced.
    mta.send("", ["nobody@far.test"], b"Subject: from null sender\r\n\r\nx\r\n")
    harness.wait_for(lambda: "double bounce" in mta.read_log() or
                     "bounced" in mta.read_log().split("from null sender")[-1], 20,
                     "the failure of the null-sender message")
    harness.wait_for(lambda: not mta.queue_files(), 10, "the queue to empty")
    assert len(mta.maildir_messages("alice")) == 1, "no bounce for a null sender"


harness.run(test)
