"""Relay path end to end: Python smtplib -> esmtpd -> queue -> courierd -> esmtpclient ->
Postfix's smtp-sink. Checks the bytes that arrived (headers, body, dot-unstuffing, our
Received header), several recipients in one transaction, and that relaying is refused for a
client outside relay_clients (esmtpd answers 550 5.7.1)."""
import smtplib

import harness

BODY = (b"From: Alice <alice@estafette.test>\r\n"
        b"To: Bob <bob@domain1.grey>\r\n"
        b"Subject: relay test\r\n"
        b"Message-ID: <relay-test-1@estafette.test>\r\n"
        b"\r\n"
        b"first line\r\n"
        b".a line that starts with a dot\r\n"
        b"..two dots\r\n"
        b".\tdot-tab\r\n"
        b"last line\r\n")


def test(tmp, stoppers):
    sink = harness.SmtpSink(tmp).start()
    stoppers.append(sink)
    mta = harness.Estafette(tmp, relay_domains="domain1.grey",
                            routes={"domain1.grey": "127.0.0.1,%d" % sink.port}).start()
    stoppers.append(mta)

    refused = mta.send("alice@estafette.test", ["bob@domain1.grey", "carol@domain1.grey"], BODY)
    assert refused == {}, refused
    got = harness.wait_for(lambda: sink.messages(), 20, "the message at the sink")
    assert len(got) == 1, "expected one transaction with two recipients, got %d" % len(got)
    text = got[0]
    assert b"X-Mail-Args: <alice@estafette.test>" in text, text
    assert b"X-Rcpt-Args: <bob@domain1.grey>" in text and b"<carol@domain1.grey>" in text, text
    # smtp-sink writes the message unstuffed with LF line ends after its own header lines.
    expected_body = BODY.replace(b"\r\n", b"\n").split(b"\n\n", 1)[1]
    # (smtp-sink's dump adds one empty line after each message.)
    assert text.rstrip(b"\n").endswith(expected_body.rstrip(b"\n")), text
    assert b"\n..two dots\n" in text and b"\n.a line that" in text, "dot-unstuffing is wrong"
    for header in BODY.replace(b"\r\n", b"\n").split(b"\n\n")[0].split(b"\n"):
        assert header in text, header
    # Our Received header, with the client's address and the queue id.
    assert b"Received: from " in text and b"[127.0.0.1]" in text, text
    assert b"by mta.estafette.test" in text, text
    harness.wait_for(lambda: not mta.queue_files(), 10, "the queue to empty")
    log = mta.read_log()
    assert "delivered" in log and "accepted id=" in log, log[-3000:]

    # A domain that is neither local nor a relay domain, from a client that may not relay.
    mta2 = harness.Estafette(tmp, name="strict", relay_clients="10.0.0.0/8").start()
    stoppers.append(mta2)
    with smtplib.SMTP("127.0.0.1", mta2.port) as s:
        s.ehlo("client.test")
        s.mail("x@elsewhere.test")
        code, msg = s.rcpt("y@not-ours.test")
        assert code == 550 and b"5.7.1" in msg, (code, msg)
        code, msg = s.rcpt("alice@estafette.test")
        assert code == 250, (code, msg)


harness.run(test)
