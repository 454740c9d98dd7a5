"""Smarthost AUTH in esmtpclient (issue 15): routes to Estafette's own submission listeners with
credentials from a root-only client_credentials file. The receiving Estafette has a certificate
from a test CA and AUTH users in a passwd file; it listens on a submission port (STARTTLS, then
AUTH), a submissions port (TLS from the first byte) and a second submission port for which the
sending side has a wrong password. A throwaway Postfix with Dovecot SASL (Dovecot's auth socket,
a passwd-file) is a second smarthost that relays only for authenticated clients. Checked: mail
over 587 and over 465 arrives in the receiver's Maildir, AUTHenticated (its Received header says
ESMTPSA, its log names the login; a login with a SCRAM-SHA-256 secret authenticates by SCRAM,
one with a crypt hash falls back from SCRAM to PLAIN, and its next connection uses PLAIN
straight away); through Postfix it reaches the sink behind it, Postfix logging
sasl_username; the wrong password defers (535 in mailq, "check client_credentials"), nothing
bounces; a credentials file that others may read stops check-config and esmtpclient (it holds
passwords)."""
import os
import subprocess

import harness
from auth_test import Dovecot
from testca import make_ca, server_cert


def test(tmp, stoppers):
    ca = make_ca(tmp)
    cert, key = server_cert(tmp, ca, "smarthost", "smarthost.test")
    p587, p465, pbad = harness.free_port(), harness.free_port(), harness.free_port()
    passwd = os.path.join(tmp, "passwd")
    harness.write_passwd(passwd, {"relay@rcv.test": "right horse battery"})
    # A second login with a SCRAM-SHA-256 secret (what `doveadm pw -s SCRAM-SHA-256` writes).
    subprocess.run([os.path.join(harness.BUILD_DIR, "estafette"), "passwd", "--file", passwd,
                    "--stdin", "--scheme", "scram-sha-256", "scram@rcv.test"],
                   input=b"salted staple\n", check=True, capture_output=True, timeout=30)
    os.chmod(passwd, 0o644)
    receiver = harness.Estafette(
        tmp, name="receiver", port=p587,
        listen="127.0.0.1:%d submission, 127.0.0.1:%d submissions, 127.0.0.1:%d submission" % (
            p587, p465, pbad),
        local_domains="rcv.test, imp.test, bad.test", relay_clients="",
        tls_cert_file=cert, tls_key_file=key, auth_backend="file:" + passwd).start()
    stoppers.append(receiver)

    # Postfix with Dovecot SASL: relays for authenticated clients only, to a sink.
    users = os.path.join(tmp, "dovecot-users")
    with open(users, "w") as f:
        f.write("relay@dove.test:{PLAIN}postfix side secret\n")
    os.chmod(users, 0o644)
    dovecot = Dovecot(tmp, users).start()
    stoppers.append(dovecot)
    sink = harness.SmtpSink(tmp).start()
    stoppers.append(sink)
    pcert, pkey = server_cert(tmp, ca, "postfix", "postfix.test")
    postfix = harness.Postfix(tmp, sink.port, name="postfix-sasl",
                              mynetworks="192.0.2.1/32", smtpd_tls_cert_file=pcert,
                              smtpd_tls_key_file=pkey, smtpd_tls_security_level="may",
                              smtpd_tls_auth_only="yes", smtpd_sasl_auth_enable="yes",
                              smtpd_sasl_type="dovecot", smtpd_sasl_path=dovecot.socket,
                              smtpd_relay_restrictions="permit_sasl_authenticated, reject")
    stoppers.append(postfix)
    postfix.start()

    creds = os.path.join(tmp, "client_credentials")
    with open(creds, "w") as f:
        f.write("# destination user password\n"
                "127.0.0.1:%d relay@rcv.test right horse battery\n"
                "127.0.0.1:%d scram@rcv.test salted staple\n"
                "127.0.0.1:%d nobody@rcv.test wrong horse\n"
                "127.0.0.1:%d relay@dove.test postfix side secret\n" % (p587, p465, pbad,
                                                                       postfix.port))
    os.chmod(creds, 0o600)
    dests = os.path.join(tmp, "destinations")
    with open(dests, "w") as f:
        f.write("127.0.0.1:%d tls=verify tls_match=smarthost.test\n"
                "127.0.0.1:%d implicit_tls=yes\n" % (p587, p465))  # port 465 would not need it
    sender = harness.Estafette(
        tmp, name="sender", client_credentials=creds, tls_ca_file=ca[2], destinations=dests,
        routes={"rcv.test": "127.0.0.1,%d" % p587, "imp.test": "127.0.0.1,%d" % p465,
                "bad.test": "127.0.0.1,%d" % pbad, "dove.test": "127.0.0.1,%d" % postfix.port},
        # One esmtpclient: what it learns about a login (no SCRAM) is its own (see below).
        retry_base="1h", retry_max="1h", idle_reuse="1s", esmtpclient_processes="1")

    # A credentials file that others may read: check-config and esmtpclient refuse it.
    os.chmod(creds, 0o644)
    r = subprocess.run([sender.program("estafette"), "check-config", "-c", sender.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "client_credentials" in r.stdout + r.stderr and \
        "chmod 600" in r.stdout + r.stderr, r.stdout + r.stderr
    os.chmod(creds, 0o600)
    r = subprocess.run([sender.program("estafette"), "check-config", "-c", sender.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    sender.start()
    stoppers.append(sender)

    for rcpt, subject in (("alice@rcv.test", b"over 587"), ("bob@imp.test", b"over 465"),
                          ("carol@bad.test", b"wrong password"),
                          ("dave@dove.test", b"through postfix")):
        sender.send("me@estafette.test", [rcpt], b"Subject: %s\r\n\r\nbody\r\n" % subject)

    harness.wait_for(lambda: receiver.maildir_messages("alice") and
                     receiver.maildir_messages("bob"), 30, "both messages at the receiver")
    for user in ("alice", "bob"):
        msg = receiver.maildir_messages(user)[0]
        assert b"with ESMTPSA" in msg, msg
    log = receiver.read_log()
    # 465: the SCRAM login, by SCRAM-SHA-256 (preferred; the password never crosses the wire).
    assert [ln for ln in log.splitlines() if "auth ok user=scram@rcv.test" in ln and
            "mechanism=SCRAM-SHA-256" in ln], log
    # 587: relay@rcv.test has a crypt hash SCRAM cannot use: its SCRAM proof is refused, and the
    # client tries PLAIN once more, inside TLS.
    assert [ln for ln in log.splitlines() if "auth failed user=relay@rcv.test" in ln and
            "mechanism=SCRAM-SHA-256" in ln], log
    assert [ln for ln in log.splitlines() if "auth ok user=relay@rcv.test" in ln and
            "mechanism=PLAIN" in ln], log
    # The next connection for that login goes straight to PLAIN: no failed login each time.
    # (Each esmtpclient process learns it once: with N processes, at most N failed logins.)
    def closed_587():
        return [ln for ln in sender.read_log().splitlines()
                if "]:%d transactions=" % p587 in ln and "closed=" in ln]
    harness.wait_for(closed_587, 15, "the 587 connection closed")
    sender.send("me@estafette.test", ["alice@rcv.test"], b"Subject: again\r\n\r\nbody\r\n")
    harness.wait_for(lambda: len(receiver.maildir_messages("alice")) == 2, 30, "alice's second")
    log = receiver.read_log().splitlines()
    assert len([ln for ln in log if "auth failed user=relay@rcv.test" in ln]) == 1, log
    assert len([ln for ln in log if "auth ok user=relay@rcv.test" in ln and
                "mechanism=PLAIN" in ln]) == 2, log
    sent = sender.read_log()
    line587 = [ln for ln in sent.splitlines() if ":%d " % p587 in ln and "delivered=1" in ln]
    assert line587 and "cert=verified policy=verify" in line587[0], line587
    line465 = [ln for ln in sent.splitlines() if ":%d " % p465 in ln and "delivered=1" in ln]
    assert line465 and "policy=encrypt" in line465[0] and "tls=TLSv1.3" in line465[0], line465

    harness.wait_for(lambda: sink.messages(), 30, "the message through Postfix at the sink")
    assert b"through postfix" in sink.messages()[0], sink.messages()
    assert "sasl_method=PLAIN, sasl_username=relay@dove.test" in postfix.read_log(), \
        postfix.read_log()

    harness.wait_for(lambda: harness.recipient_errors(sender).get("carol@bad.test"), 30,
                     "carol's deferral")
    error = harness.recipient_errors(sender)["carol@bad.test"]
    assert "535" in error and "check client_credentials" in error, error
    assert not receiver.maildir_messages("carol")
    assert not sender.maildir_messages("me"), "a bounce for a wrong password"


if __name__ == "__main__":
    harness.run(test)
