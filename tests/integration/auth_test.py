"""SMTP AUTH in esmtpd (issue 14) with real clients and a real Dovecot, all on loopback.

An Estafette with mx, submission (587) and submissions (465) listeners, a self-signed
certificate, `auth_backend = file:` (a passwd file of SHA-512-crypt hashes) and two esmtpd
processes, relaying for authenticated clients only (relay_clients covers no loopback address):
- submission: no AUTH before STARTTLS (538), MAIL before AUTH 530, a bad password 535,
  sender_login_map (553 for a sender the login does not own), PLAIN
  and LOGIN with Python's smtplib, the message at a sink with "with ESMTPSA"; port 465 the same
  with SMTP_SSL; swaks --auth PLAIN/LOGIN when installed; unauthenticated relay refused;
- the brute-force limit: auth_fail_limit failed AUTHs on new connections from one address
  (spread over the esmtpd processes), then that address gets 421 4.7.0 at AUTH while another
  address still logs in; no password in the log;
- `estafette reload` reads the passwd file again (a new user logs in; a broken file fails the
  reload and keeps the old one);
- `auth_backend = dovecot:`: a real Dovecot (dovecot-core, passwd-file passdb) started by the
  test: good and bad password, unknown user, and Dovecot killed: 454 4.7.0 and the session
  goes on; Dovecot back: AUTH works again on a new connection."""
import os
import shutil
import smtplib
import subprocess

import harness
from tls_test import client_context, make_cert, openssl

MSG = b"From: a@estafette.test\r\nTo: b@domain1.grey\r\nSubject: auth %s\r\n\r\nbody %s\r\n"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


class Dovecot:
    """A throwaway Dovecot serving only its auth-client socket, users from a passwd-file."""

    def __init__(self, tmp, users_file):
        self.dir = os.path.join(tmp, "dovecot")
        self.socket = os.path.join(self.dir, "auth-client")
        self.proc = None
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write("base_dir = %s/run\nstate_dir = %s/state\nlog_path = %s/dovecot.log\n"
                    "protocols =\nssl = no\ndisable_plaintext_auth = no\n"
                    "auth_mechanisms = plain login\nauth_failure_delay = 0\n"
                    "default_internal_user = dovecot\ndefault_login_user = dovenull\n"
                    "passdb {\n  driver = passwd-file\n  args = username_format=%%u %s\n}\n"
                    "userdb {\n  driver = static\n  args = uid=nobody gid=nogroup "
                    "home=/nonexistent\n}\n"
                    "service auth {\n  unix_listener %s {\n    mode = 0666\n  }\n}\n"
                    % (self.dir, self.dir, self.dir, users_file, self.socket))

    def start(self):
        if not os.access(DOVECOT, os.X_OK):
            harness.skip("dovecot-core is not installed (scripts/install-deps)")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        harness.wait_for(lambda: harness.unix_socket_open(self.socket), 15,
                         "dovecot's auth socket")
        return self

    def stop(self):
        """Dovecot and all its processes at once, as a crash would."""
        if not self.proc:
            return
        harness.kill_tree(self.proc)
        self.proc = None
        if os.path.exists(self.socket):
            os.unlink(self.socket)


def smtp(port, source="127.0.0.1", tls=False):
    if tls:
        return smtplib.SMTP_SSL("127.0.0.1", port, timeout=20, context=client_context(),
                                source_address=(source, 0))
    return smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=(source, 0))


def plain_login(port, user, password, source="127.0.0.1"):
    """(code, text) of AUTH PLAIN after STARTTLS on a new submission connection."""
    s = smtp(port, source)
    try:
        s.ehlo("client.test")
        s.starttls(context=client_context())
        s.ehlo("client.test")
        s.user, s.password = user, password
        return s.auth("PLAIN", s.auth_plain, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code, e.smtp_error
    finally:
        s.close()


def test_file_backend(tmp, stoppers, sink, cert):
    passwd = harness.write_passwd(os.path.join(tmp, "passwd"),
                                  {"alice": "s3cret", "bob@estafette.test": "pw2"})
    logins = os.path.join(tmp, "sender_logins")
    with open(logins, "w") as f:
        f.write("a@estafette.test alice\nbob@estafette.test bob@estafette.test\n"
                "@shared.test alice, bob@estafette.test\n")
    port, port587, port465 = harness.free_port(), harness.free_port(), harness.free_port()
    mta = harness.Estafette(
        tmp, port=port, relay_domains="", relay_clients="192.0.2.0/24",
        routes={"domain1.grey": "127.0.0.1,%d" % sink.port},
        listen="127.0.0.1:%d mx, 127.0.0.1:%d submission, 127.0.0.1:%d submissions"
        % (port, port587, port465),
        tls_cert_file=cert[0], tls_key_file=cert[1], auth_backend="file:" + passwd,
        auth_fail_limit="4", auth_fail_window="10m", esmtpd_processes="2",
        sender_login_map=logins).start()
    stoppers.append(mta)
    harness.wait_for(lambda: harness.port_open(port465) and harness.port_open(port587), 10,
                     "submission ports")

    # Port 587 before TLS: no AUTH offered, AUTH refused, MAIL needs AUTH.
    with smtp(port587) as s:
        s.ehlo("client.test")
        assert not s.has_extn("auth"), s.esmtp_features
        assert s.has_extn("starttls"), s.esmtp_features
        code, text = s.docmd("AUTH", "PLAIN AGFsaWNlAHMzY3JldA==")
        assert code == 538 and b"5.7.11" in text, (code, text)
        code, text = s.mail("a@estafette.test")
        assert code == 530 and b"5.7.0 Authentication required" in text, (code, text)
        s.starttls(context=client_context())
        s.ehlo("client.test")
        assert "PLAIN" in s.esmtp_features.get("auth", "").upper(), s.esmtp_features
        assert "LOGIN" in s.esmtp_features.get("auth", "").upper(), s.esmtp_features
        try:
            s.login("alice", "wrong")
            raise AssertionError("a bad password was accepted")
        except smtplib.SMTPAuthenticationError as e:
            assert e.smtp_code == 535 and b"5.7.8" in e.smtp_error, e
        s.login("alice", "s3cret")  # smtplib prefers CRAM-MD5, then PLAIN
        # sender_login_map: alice may not send as bob, nor as an address nobody owns.
        for sender in ("bob@estafette.test", "nobody@estafette.test"):
            code, text = s.mail(sender)
            assert code == 553 and b"not owned by user alice" in text, (sender, code, text)
        code, text = s.mail("x@shared.test")  # @domain line
        assert code == 250, (code, text)
        s.rset()
        refused = s.sendmail("a@estafette.test", ["b@domain1.grey"], MSG % (b"587", b"587"))
        assert refused == {}, refused

    # LOGIN explicitly, on port 465 (TLS from the first byte).
    with smtp(port465, tls=True) as s:
        s.ehlo("client.test")
        s.user, s.password = "bob@estafette.test", "pw2"
        code, text = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235, (code, text)
        refused = s.sendmail("bob@estafette.test", ["c@domain1.grey"], MSG % (b"465", b"465"))
        assert refused == {}, refused

    # Both esmtpd processes share the session-ticket keys (run/tls-ticket-keys): a session
    # resumes whichever process the kernel hands the connection to (with keys per process,
    # 8 of 8 would resume 1 time in 256).
    for version in ("-tls1_2", "-tls1_3"):
        sess = os.path.join(tmp, "sess465" + version)
        r = openssl("s_client", "-connect", "127.0.0.1:%d" % port465, version, "-sess_out", sess,
                    stdin=b"EHLO c.test\r\nQUIT\r\n")
        assert r.returncode == 0 and b"New, TLSv1." in r.stdout, r.stdout[-2000:]
        for attempt in range(8):
            r = openssl("s_client", "-connect", "127.0.0.1:%d" % port465, version, "-sess_in",
                        sess, stdin=b"QUIT\r\n")
            assert b"Reused, TLSv1." in r.stdout, (version, attempt, r.stdout[-2000:])
    keys = os.stat(os.path.join(mta.state, "run", "tls-ticket-keys"))
    assert keys.st_mode & 0o777 == 0o600 and keys.st_size == 80, keys

    # Port 25 without AUTH: relaying stays closed for this (non-relay_clients) address.
    with smtp(port) as s:
        s.ehlo("client.test")
        assert not s.has_extn("auth"), s.esmtp_features
        s.mail("a@estafette.test")
        code, text = s.rcpt("x@domain1.grey")
        assert code == 550 and b"Relay access denied" in text, (code, text)
    # Every refusal has its log line, with the client, the command and the reply; an AUTH
    # command shows its mechanism, never its credentials.
    log = mta.read_log()
    relay = [ln for ln in log.splitlines() if " reject " in ln and
             'cmd="RCPT TO:<x@domain1.grey>"' in ln]
    assert relay and 'reply="550 5.7.1' in relay[0] and "client=[127.0.0.1]:" in relay[0] and \
        "from=<a@estafette.test>" in relay[0] and "helo=client.test" in relay[0], relay
    assert [ln for ln in log.splitlines() if " reject " in ln and 'cmd="AUTH PLAIN"' in ln and
            'reply="538 5.7.11' in ln], log
    assert [ln for ln in log.splitlines() if " reject " in ln and 'reply="535 5.7.8' in ln], log
    for secret in ("AGFsaWNlAHMzY3JldA==", "s3cret", "wrong", "AGFsaWNlAHdyb25n"):
        assert secret not in log, secret
    assert [ln for ln in log.splitlines() if " accepted id=" in ln and
            " client=[127.0.0.1]:" in ln], log

    want = 2
    if shutil.which("swaks"):
        for mech, args in (("PLAIN", ["--server", "127.0.0.1:%d" % port587, "--tls"]),
                           ("LOGIN", ["--server", "127.0.0.1:%d" % port465, "--tlsc"])):
            r = subprocess.run(["swaks", "--from", "a@estafette.test", "--to", "d@domain1.grey",
                                "--helo", "swaks.test", "--timeout", "20", "--auth", mech,
                                "--auth-user", "alice", "--auth-password", "s3cret"] + args,
                               capture_output=True, timeout=60)
            assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
            assert b"235 2.7.0" in r.stdout, r.stdout[-2000:]
        want += 2
    else:
        print("swaks not installed: its part skipped")
    got = harness.wait_for(lambda: len(sink.messages()) >= want and sink.messages(), 30,
                           "%d messages at the sink" % want)
    for text in got:
        assert b"with ESMTPSA id" in text, text

    # Brute force from 127.0.0.2: four failures on four connections (two esmtpd processes),
    # then AUTH gets 421 there, also with the right password; 127.0.0.3 is not affected.
    for attempt in range(4):
        code, text = plain_login(port587, "alice", "guess%d" % attempt, "127.0.0.2")
        assert code == 535, (attempt, code, text)
    for attempt in range(3):  # whichever process the connection lands in
        code, text = plain_login(port587, "alice", "s3cret", "127.0.0.2")
        assert code == 421 and b"4.7.0" in text, (code, text)
    code, text = plain_login(port587, "alice", "s3cret", "127.0.0.3")
    assert code == 235, (code, text)
    log = mta.read_log()
    assert "auth failed user=alice" in log and "[127.0.0.2]" in log, log[-3000:]
    assert "auth ok user=alice" in log, log[-3000:]
    for secret in ("s3cret", "guess0", "pw2"):
        assert secret not in log, "a password in the log: " + secret

    # Reload: a new user; then a broken file fails the reload and keeps the previous users.
    harness.write_passwd(passwd, {"alice": "s3cret", "carol": "new"})
    r = mta.reload()
    assert r.returncode == 0, r.stdout + r.stderr
    assert plain_login(port587, "carol", "new", "127.0.0.4")[0] == 235, "carol after the reload"
    with open(passwd, "w") as f:
        f.write("carol:{PLAIN}new\n")  # plaintext is refused when the file loads
    r = mta.reload()
    assert r.returncode == 1 and passwd in r.stderr, r.stdout + r.stderr
    code, text = plain_login(port587, "carol", "new", "127.0.0.4")
    assert code == 235, (code, text)
    mta.stop()
    stoppers.remove(mta)


def test_dovecot_backend(tmp, stoppers, sink, cert):
    users = os.path.join(tmp, "dovecot-users")
    r = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=b"dpass",
                       capture_output=True, check=True)
    with open(users, "w") as f:
        f.write("dave:{CRYPT}%s\n" % r.stdout.decode().strip())
    os.chmod(users, 0o644)
    dovecot = Dovecot(tmp, users).start()
    stoppers.append(dovecot)
    port, port587 = harness.free_port(), harness.free_port()
    mta = harness.Estafette(
        tmp, name="dovecot-mta", port=port, relay_domains="", relay_clients="192.0.2.0/24",
        routes={"domain1.grey": "127.0.0.1,%d" % sink.port},
        listen="127.0.0.1:%d mx, 127.0.0.1:%d submission" % (port, port587),
        tls_cert_file=cert[0], tls_key_file=cert[1], auth_backend="dovecot:" + dovecot.socket,
        auth_fail_limit="0", esmtpd_processes="1").start()
    stoppers.append(mta)
    harness.wait_for(lambda: harness.port_open(port587), 10, "port 587")
    assert plain_login(port587, "dave", "dpass")[0] == 235
    assert plain_login(port587, "dave", "nope")[0] == 535
    assert plain_login(port587, "nobody-here", "dpass")[0] == 535
    before = len(sink.messages())
    with smtp(port587) as s:
        s.ehlo("client.test")
        s.starttls(context=client_context())
        s.ehlo("client.test")
        s.login("dave", "dpass")
        refused = s.sendmail("dave@estafette.test", ["e@domain1.grey"], MSG % (b"dc", b"dc"))
        assert refused == {}, refused
    dovecot.stop()  # as a crash would: AUTH gets 454 4.7.0 and the session goes on
    with smtp(port587) as s:
        s.ehlo("client.test")
        s.starttls(context=client_context())
        s.ehlo("client.test")
        code, text = s.docmd("AUTH", "PLAIN AGRhdmUAZHBhc3M=")  # \0dave\0dpass
        assert code == 454 and b"4.7.0" in text, (code, text)
        code, text = s.docmd("NOOP")
        assert code == 250, (code, text)
    dovecot.start()
    harness.wait_for(lambda: plain_login(port587, "dave", "dpass")[0] == 235, 20,
                     "AUTH with Dovecot back")
    got = harness.wait_for(lambda: len(sink.messages()) > before and sink.messages(), 20,
                           "dave's message at the sink")
    assert any(b"with ESMTPSA id" in m and b"Subject: auth dc" in m for m in got), got


def test(tmp, stoppers):
    cert = make_cert(tmp, "rsa", "rsa", "mta.estafette.test")
    sink = harness.SmtpSink(tmp).start()
    stoppers.append(sink)
    test_file_backend(tmp, stoppers, sink, cert)
    test_dovecot_backend(tmp, stoppers, sink, cert)


if __name__ == "__main__":
    harness.run(test)
