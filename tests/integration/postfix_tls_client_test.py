"""Postfix as a TLS client of Estafette (issue 14): a throwaway Postfix (harness.Postfix) with
smtp_tls_security_level = encrypt relays what smtplib injects into it to Estafette.
  - Estafette without a certificate (no STARTTLS): Postfix defers ("TLS is required, but was not
    offered") and the message stays in Postfix's queue; nothing arrives.
  - Estafette on the same port with a self-signed certificate (as tls_test.py makes them): the
    deferred message and a new one arrive in the Maildir, each with a Received header that says
    "(using TLSv1.3 with cipher ...)" and "with ESMTPS"; Postfix logs its TLS connection."""
import re

import harness
import tls_test

MSG = b"From: a@rig.test\r\nTo: %s@estafette.test\r\nSubject: %s\r\n\r\nbody of %s\r\n"


def test(tmp, stoppers):
    port = harness.free_port()
    plain = harness.Estafette(tmp, name="plain", port=port, esmtpd_processes="1").start()
    stoppers.append(plain)
    postfix = harness.Postfix(tmp, relay_port=port, smtp_tls_security_level="encrypt").start()
    stoppers.append(postfix)

    # No certificate, no STARTTLS: encrypt means defer, and the message waits in Postfix.
    assert postfix.send("a@rig.test", ["first@estafette.test"],
                        MSG % (b"first", b"first", b"first")) == {}
    harness.wait_for(lambda: "status=deferred" in postfix.read_log(), 30, "Postfix to defer")
    log = postfix.read_log()
    assert "TLS is required, but was not offered by host 127.0.0.1" in log, log[-3000:]
    assert len(postfix.queued()) == 1, postfix.queued()
    assert plain.maildir_messages("first") == [], "accepted without TLS"
    plain.stop()

    # The same port with a certificate: the queued message and a new one arrive over TLS.
    pem, key = tls_test.make_cert(tmp, "mta", "rsa", "mta.estafette.test")
    mta = harness.Estafette(tmp, name="tls", port=port, esmtpd_processes="1", tls_cert_file=pem,
                            tls_key_file=key).start()
    stoppers.append(mta)
    postfix.flush()
    assert postfix.send("a@rig.test", ["second@estafette.test"],
                        MSG % (b"second", b"second", b"second")) == {}
    for user in ("first", "second"):
        got = harness.wait_for(lambda: mta.maildir_messages(user), 30, "%s's message" % user)
        assert len(got) == 1, got
        text = got[0]
        received = text.split(b"\r\n\r\n" if b"\r\n\r\n" in text else b"\n\n", 1)[0]
        ours = re.search(rb"Received: from [^\n]*(\n[ \t][^\n]*)*", received)
        assert ours, received
        clause = ours.group(0)
        assert re.search(rb"\(using TLSv1\.3 with cipher TLS_[A-Z0-9_]+ \(\d+/\d+ bits\)\)",
                         clause), clause
        assert b"with ESMTPS" in clause, clause
        assert b"postfix.rig.test" in clause, clause
    harness.wait_for(lambda: postfix.queued() == [], 20, "Postfix's queue to empty")
    log = postfix.read_log()
    assert re.search(r"Untrusted TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:%d: "
                     r"TLSv1\.3" % port, log), log[-3000:]
    assert log.count("status=sent") == 2, log[-3000:]


if __name__ == "__main__":
    harness.run(test)
