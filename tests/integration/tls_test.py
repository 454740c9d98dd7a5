"""TLS in esmtpd (issue 14) with real clients: a throwaway RSA and ECDSA certificate made with
`openssl req`, Python smtplib starttls() on the mx port and SMTP_SSL on a submissions port,
`openssl s_client -starttls smtp` (TLS below 1.2 refused, session resumption "Reused"), swaks
--tls/--tlsc when installed, the STARTTLS command injection (CVE-2011-0411 class) on a real
socket, garbage instead of a ClientHello, a client that leaves mid-handshake, 10 stalled
handshakes that do not delay a plaintext client, reloads (a bad file keeps the old
certificate; sessions survive), check-config on a key that does not match, and the message at a
sink with Postfix's Received TLS clause and "with ESMTPS"."""
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import harness

MSG = (b"From: a@estafette.test\r\nTo: b@domain1.grey\r\nSubject: tls %s\r\n\r\nbody %s\r\n")


def openssl(*args, stdin=b"", timeout=20):
    if args[0] == "s_client":  # wait for the server to close, not for the end of stdin
        args = args + ("-ign_eof",)
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, timeout=timeout)


def make_cert(tmp, name, kind, cn):
    key, pem = os.path.join(tmp, name + ".key"), os.path.join(tmp, name + ".pem")
    alg = ["-newkey", "rsa:2048"] if kind == "rsa" else \
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    r = openssl("req", "-x509", *alg, "-nodes", "-keyout", key, "-out", pem, "-days", "400",
                "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:" + cn)
    assert r.returncode == 0, r.stderr
    os.chmod(key, 0o644)  # the test may run esmtpd as another user; a real key stays 0600/0640
    return pem, key


def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_hello():
    """The bytes of a real TLS ClientHello (Python's ssl over memory BIOs)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(incoming, outgoing, server_hostname="mta.estafette.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed; got %r" % lines
        lines.append(line)
        if line[3:4] == b" ":
            return b"".join(lines)


def peer_fingerprint(port, ciphers=None):
    ctx = client_context()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="mta.estafette.test") as s:
            return s.getpeercert(binary_form=True), s.version(), s.cipher()


def test(tmp, stoppers):
    rsa_pem, rsa_key = make_cert(tmp, "rsa", "rsa", "mta.estafette.test")
    ec_pem, ec_key = make_cert(tmp, "ec", "ec", "mta.estafette.test")
    other_pem, other_key = make_cert(tmp, "other", "rsa", "other.estafette.test")
    sink = harness.SmtpSink(tmp).start()
    stoppers.append(sink)
    port, port465 = harness.free_port(), harness.free_port()
    access = os.path.join(tmp, "smtpaccess")
    with open(access, "w") as f:
        f.write("127.0.0.5 deny Go away\n")
    mta = harness.Estafette(
        tmp, port=port, relay_domains="domain1.grey",
        routes={"domain1.grey": "127.0.0.1,%d" % sink.port},
        listen="127.0.0.1:%d mx, 127.0.0.1:%d submissions" % (port, port465),
        tls_cert_file="%s, %s, %s" % (rsa_pem, ec_pem, other_pem),
        tls_key_file="%s, %s, %s" % (rsa_key, ec_key, other_key),
        tls_handshake_timeout="2s", esmtpd_processes="1", smtpaccess=access,
        auth_backend="file:" + harness.write_passwd(os.path.join(tmp, "passwd"),
                                                    {"alice": "s3cret"})).start()
    stoppers.append(mta)
    harness.wait_for(lambda: harness.port_open(port465), 10, "port 465")

    # smtplib: STARTTLS offered, then not; the session starts again (RFC 3207 4.2).
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls"), s.esmtp_features
        code, _ = s.starttls(context=client_context())
        assert code == 220, code
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3"), s.sock.version()
        code, msg = s.mail("a@estafette.test")  # no EHLO since TLS: 503
        assert code == 503, (code, msg)
        s.ehlo("client.test")
        assert not s.has_extn("starttls"), s.esmtp_features
        code, msg = s.docmd("STARTTLS")
        assert code == 554, (code, msg)
        refused = s.sendmail("a@estafette.test", ["b@domain1.grey"], MSG % (b"1", b"1"))
        assert refused == {}, refused

    # Port 465: TLS from the first byte.
    with smtplib.SMTP_SSL("127.0.0.1", port465, timeout=20, context=client_context()) as s:
        s.ehlo("client.test")
        assert not s.has_extn("starttls"), s.esmtp_features
        s.login("alice", "s3cret")  # submissions: AUTH before MAIL
        refused = s.sendmail("a@estafette.test", ["b@domain1.grey"], MSG % (b"2", b"2"))
        assert refused == {}, refused
    # smtp-sink creates a message's file before it has written all of it: wait for the bodies.
    got = harness.wait_for(lambda: (lambda m: len(m) >= 2 and all(b"body " in t for t in m) and
                                    m)(sink.messages()), 20, "two whole messages at the sink")
    for text in got:
        assert b"(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))" in text, text
    assert sorted(b"with ESMTPSA id" in text for text in got) == [False, True], got
    assert all(b"with ESMTPS id" in text or b"with ESMTPSA id" in text for text in got), got

    # A refusal before the session on port 465 is sent over TLS too, never as plaintext.
    with socket.create_connection(("127.0.0.1", port465), timeout=10,
                                  source_address=("127.0.0.5", 0)) as raw:
        with client_context().wrap_socket(raw, server_hostname="mta.estafette.test") as s:
            f = s.makefile("rb")
            refusal = read_reply(f)
            assert refusal.startswith(b"554 ") and b"Go away" in refusal, refusal
            assert f.read() == b"", "more after the refusal"
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=("127.0.0.5", 0)) as raw:
        assert raw.makefile("rb").readline().startswith(b"554 "), "port 25 refusal"

    # RSA and ECDSA on one name: each client gets the certificate it can use; SNI picks another.
    r = openssl("s_client", "-connect", "127.0.0.1:%d" % port465, "-sigalgs", "ECDSA+SHA256",
                "-tls1_2", stdin=b"QUIT\r\n")
    assert b"Server public key is 256 bit" in r.stdout, r.stdout[-2000:]
    r = openssl("s_client", "-connect", "127.0.0.1:%d" % port465, "-sigalgs", "RSA+SHA256",
                "-tls1_2", stdin=b"QUIT\r\n")
    assert b"Server public key is 2048 bit" in r.stdout, r.stdout[-2000:]
    r = openssl("s_client", "-connect", "127.0.0.1:%d" % port465, "-servername",
                "other.estafette.test", stdin=b"QUIT\r\n")
    assert b"CN = other.estafette.test" in r.stdout, r.stdout[-2000:]

    # openssl s_client -starttls smtp: TLS 1.1 refused, 1.2 and 1.3 work, sessions resume.
    r = openssl("s_client", "-connect", "127.0.0.1:%d" % port, "-starttls", "smtp", "-tls1_1",
                "-cipher", "DEFAULT@SECLEVEL=0", stdin=b"QUIT\r\n")
    assert r.returncode != 0 and b"Cipher is (NONE)" in r.stdout, r.stdout[-2000:]
    for version in ("-tls1_2", "-tls1_3"):
        sess = os.path.join(tmp, "sess" + version)
        r = openssl("s_client", "-connect", "127.0.0.1:%d" % port, "-starttls", "smtp", version,
                    "-sess_out", sess, stdin=b"EHLO c.test\r\nQUIT\r\n")
        assert r.returncode == 0 and b"New, TLSv1." in r.stdout, r.stdout[-2000:]
        assert b"250 HELP" in r.stdout, r.stdout[-2000:]
        if version == "-tls1_3":  # one ticket per handshake, not OpenSSL's default two
            tickets = r.stdout.count(b"Post-Handshake New Session Ticket arrived")
            assert tickets == 1, (tickets, r.stdout[-3000:])
        r = openssl("s_client", "-connect", "127.0.0.1:%d" % port, "-starttls", "smtp", version,
                    "-sess_in", sess, stdin=b"QUIT\r\n")
        assert r.returncode == 0 and b"Reused, TLSv1." in r.stdout, (version, r.stdout[-2000:])
    assert "resumed=yes" in mta.read_log()

    # swaks, when installed (scripts/install-deps installs it).
    if shutil.which("swaks"):
        for args in (["--server", "127.0.0.1:%d" % port, "--tls"],
                     ["--server", "127.0.0.1:%d" % port465, "--tlsc", "--auth", "PLAIN",
                      "--auth-user", "alice", "--auth-password", "s3cret"]):
            r = subprocess.run(["swaks", "--from", "a@estafette.test", "--to", "b@domain1.grey",
                                "--helo", "swaks.test", "--timeout", "20"] + args,
                               capture_output=True, timeout=60)
            assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
            assert b"TLS started" in r.stdout, r.stdout[-2000:]
        harness.wait_for(lambda: len(sink.messages()) >= 4, 20, "swaks' messages at the sink")
    else:
        print("swaks not installed: its part skipped")

    # The injection: plaintext pipelined behind STARTTLS is thrown away, never run in TLS.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        f = raw.makefile("rb")
        read_reply(f)
        raw.sendall(b"EHLO inject.test\r\n")
        read_reply(f)
        raw.sendall(b"STARTTLS\r\nEHLO injected.test\r\nMAIL FROM:<inject@x.test>\r\n"
                    b"RCPT TO:<victim@domain1.grey>\r\n")
        assert read_reply(f).startswith(b"220 "), "no 220"
        with client_context().wrap_socket(raw, server_hostname="mta.estafette.test") as s:
            s.settimeout(1.0)
            try:
                unsolicited = s.recv(4096)
            except socket.timeout:
                unsolicited = b""
            assert unsolicited == b"", "replies to injected commands: %r" % unsolicited
            s.settimeout(10)
            s.sendall(b"MAIL FROM:<a@estafette.test>\r\n")
            reply = s.recv(4096)
            assert reply.startswith(b"503 "), reply  # no EHLO inside TLS yet: none was run
            s.sendall(b"QUIT\r\n")
    harness.wait_for(lambda: "bytes pipelined after STARTTLS" in mta.read_log(), 5,
                     "the discard logged")

    # Garbage instead of a ClientHello, and a client that leaves mid-handshake: only their own
    # sessions end.
    for target, prologue in ((port465, b""), (port, b"EHLO g.test\r\nSTARTTLS\r\n")):
        with socket.create_connection(("127.0.0.1", target), timeout=10) as raw:
            if prologue:
                f = raw.makefile("rb")
                read_reply(f)
                raw.sendall(prologue)
                read_reply(f)
                read_reply(f)
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n" * 10)
            end = time.monotonic() + 5
            data = b"x"
            while data and time.monotonic() < end:
                try:
                    data = raw.recv(4096)
                except ConnectionResetError:
                    data = b""
            assert not data, "the server kept a garbage handshake open"
    hello = client_hello()
    assert len(hello) > 100, hello
    with socket.create_connection(("127.0.0.1", port465), timeout=10) as raw:
        raw.sendall(hello[:len(hello) // 2])
    assert "TLS handshake failed" in harness.wait_for(
        lambda: "TLS handshake failed" in mta.read_log() and mta.read_log(), 5, "failure logged")

    # 10 stalled handshakes (half a ClientHello each) do not delay a plaintext client, and end
    # at tls_handshake_timeout.
    stalled = []
    for _ in range(10):
        c = socket.create_connection(("127.0.0.1", port465), timeout=10)
        c.sendall(hello[:len(hello) // 2])
        stalled.append(c)
    start = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("plain.test")
        s.noop()
    took = time.monotonic() - start
    assert took < 1.0, "a plaintext session took %.2fs behind stalled handshakes" % took
    start = time.monotonic()
    for c in stalled:
        c.settimeout(10)
        try:
            assert c.recv(100) == b""
        except ConnectionResetError:
            pass
        c.close()
    waited = time.monotonic() - start
    assert waited < 5, "stalled handshakes lasted %.1fs (timeout 2s)" % waited
    assert mta.read_log().count("TLS handshake timeout") >= 10

    # Reload: a bad file fails it and keeps the old certificate; a good one replaces it; an open
    # TLS session goes on (on the esmtpd it started with, which drains).
    before, _, _ = peer_fingerprint(port465)
    live = smtplib.SMTP("127.0.0.1", port, timeout=20)
    live.ehlo("live.test")
    live.starttls(context=client_context())
    live.ehlo("live.test")
    with open(rsa_pem, "w") as f:
        f.write("not a certificate\n")
    r = mta.reload()
    assert r.returncode == 1 and rsa_pem in r.stderr, r.stdout + r.stderr
    assert peer_fingerprint(port465)[0] == before
    make_cert(tmp, "rsa", "rsa", "mta.estafette.test")
    make_cert(tmp, "ec", "ec", "mta.estafette.test")  # whichever of the two the client gets
    r = mta.reload()
    assert r.returncode == 0, r.stdout + r.stderr
    assert peer_fingerprint(port465)[0] != before, "the old certificate after the reload"
    assert live.noop()[0] == 250
    assert live.sendmail("a@estafette.test", ["b@domain1.grey"], MSG % (b"3", b"3")) == {}
    live.quit()

    # check-config: a key that does not match its certificate.
    bad = os.path.join(tmp, "bad.conf")
    with open(mta.conf) as f:
        text = f.read()
    with open(bad, "w") as f:
        f.write(text.replace(rsa_key + ", " + ec_key, ec_key + ", " + rsa_key))
    r = subprocess.run([mta.program("estafette"), "check-config", "-c", bad],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "does not match the certificate" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([mta.program("estafette"), "check-config", "-c", mta.conf],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


if __name__ == "__main__":
    harness.run(test)
