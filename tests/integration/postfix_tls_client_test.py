"""Postfix as a TLS client of Estafette (issue 14): a throwaway Postfix (harness.Postfix) with
smtp_tls_security_level = encrypt relays what smtplib injects into it to Estafette.
  - Estafette without a certificate (no STARTTLS): Postfix defers ("TLS is required, but was not
    offered") and the message stays in Postfix's queue; nothing arrives.
  - Estafette on the same port with a self-signed certificate (as tls_test.py makes them): the
    deferred message and a new one arrive in the Maildir, each with a Received header that says
    "(using TLSv1.3 with cipher ...)" and "with ESMTPS"; Postfix logs its TLS connection.
  - Postfix as an authenticating client (smtp_sasl_auth_enable, its Cyrus SASL PLAIN) of
    Estafette's submission port (AUTH required before MAIL), with smtp_tls_security_level =
    encrypt: the message arrives "with ESMTPSA"; with a wrong password Postfix defers it
    (535 5.7.8 in its log) and nothing arrives."""
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
    mta.stop()
    postfix.stop()
    sasl_client(tmp, stoppers, pem, key)


def sasl_client(tmp, stoppers, pem, key):
    port, port587 = harness.free_port(), harness.free_port()
    passwd = harness.write_passwd(tmp + "/passwd", {"alice": "s3cret"})
    mta = harness.Estafette(tmp, name="auth", port=port, esmtpd_processes="1", tls_cert_file=pem,
                            tls_key_file=key, auth_backend="file:" + passwd,
                            listen="127.0.0.1:%d mx, 127.0.0.1:%d submission" % (port, port587),
                            relay_clients="192.0.2.0/24").start()
    stoppers.append(mta)
    harness.wait_for(lambda: harness.port_open(port587), 10, "port 587")
    sasl = {"smtp_tls_security_level": "encrypt", "smtp_sasl_auth_enable": "yes",
            "smtp_sasl_security_options": "noanonymous", "smtp_sasl_tls_security_options":
            "noanonymous", "smtp_sasl_mechanism_filter": "plain"}
    good = harness.Postfix(tmp, relay_port=port587, name="postfix-sasl",
                           smtp_sasl_password_maps="static:alice:s3cret", **sasl).start()
    stoppers.append(good)
    assert good.send("a@rig.test", ["third@estafette.test"],
                     MSG % (b"third", b"third", b"third")) == {}
    got = harness.wait_for(lambda: mta.maildir_messages("third"), 30, "the SASL client's message")
    assert b"with ESMTPSA" in got[0], got[0][:2000]
    assert "auth ok user=alice" in mta.read_log()
    good.stop()
    bad = harness.Postfix(tmp, relay_port=port587, name="postfix-badpw",
                          smtp_sasl_password_maps="static:alice:wrong", **sasl).start()
    stoppers.append(bad)
    assert bad.send("a@rig.test", ["fourth@estafette.test"],
                    MSG % (b"fourth", b"fourth", b"fourth")) == {}
    harness.wait_for(lambda: "status=deferred" in bad.read_log(), 30, "Postfix to defer")
    log = bad.read_log()
    assert "535 5.7.8" in log, log[-3000:]
    assert mta.maildir_messages("fourth") == [], "accepted without a good password"


if __name__ == "__main__":
    harness.run(test)
