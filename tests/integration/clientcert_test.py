"""TLS client certificates in esmtpd (issue 14): tls_client_ca_file and relay_clientcerts
(Postfix's permit_tls_clientcerts). A CA, two client certificates it signed and a self-signed
one, all made with openssl; relay_clients does not cover loopback, and remote.grey (not a relay
domain) is routed to a sink. Python ssl with the CA-signed certificate whose fingerprint is
listed relays (the message arrives at the sink); the self-signed certificate, listed too, does
not (it did not verify); no certificate: the session works, relay refused; the second CA-signed
certificate, verified but not listed: refused. A milter sees {verify}, {cert_subject} and
{cert_issuer}. `estafette reload`: a bad map fails it (file:line) and keeps the old one; a good one lists the second
certificate, which then relays; a malformed map stops check-config with file:line."""
import hashlib
import os
import smtplib
import ssl
import subprocess

import harness
import hostile_milter as hm

MSG = b"From: a@estafette.test\r\nTo: b@remote.grey\r\nSubject: cert %s\r\n\r\nbody %s\r\n"


def openssl(*args):
    r = subprocess.run(["openssl", *args], capture_output=True, timeout=30)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout.decode()


def ec_key(path):
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    os.chmod(path, 0o644)  # esmtpd may run as another user in the test
    return path


def self_signed(tmp, name, cn, *extra):
    key, pem = ec_key(os.path.join(tmp, name + ".key")), os.path.join(tmp, name + ".pem")
    openssl("req", "-x509", "-new", "-key", key, "-out", pem, "-days", "30", "-subj", "/CN=" + cn,
            *extra)
    return pem, key


def signed_by(tmp, ca, name, cn):
    key, pem = ec_key(os.path.join(tmp, name + ".key")), os.path.join(tmp, name + ".pem")
    csr, ext = os.path.join(tmp, name + ".csr"), os.path.join(tmp, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/O=Estafette Tests/CN=" + cn)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-days", "30", "-extfile", ext, "-out", pem)
    return pem, key


def fingerprint(pem):
    """openssl's "sha256 Fingerprint=AA:BB:...", checked against our own SHA-256 of the DER."""
    text = openssl("x509", "-noout", "-fingerprint", "-sha256", "-in", pem).strip()
    colons = text.split("=", 1)[1]
    with open(pem) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    assert colons.replace(":", "").lower() == hashlib.sha256(der).hexdigest(), text
    return colons


def client_context(cert=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    return ctx


def session(mta, cert, subject, send=False):
    """STARTTLS with `cert` (None: no certificate); the RCPT reply for remote.grey (and the
    message sent when accepted and `send`); a local recipient is accepted in every case."""
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=20) as s:
        s.ehlo("client.test")
        code, msg = s.starttls(context=client_context(cert))
        assert code == 220, (code, msg)
        s.ehlo("client.test")
        code, msg = s.mail("a@estafette.test")
        assert code == 250, (code, msg)
        code, msg = s.rcpt("user@estafette.test")
        assert code == 250, ("the session should work", code, msg)
        code, msg = s.rcpt("b@remote.grey")
        if code == 250 and send:
            data_code, data_msg = s.data(MSG % (subject, subject))
            assert data_code == 250, (data_code, data_msg)
        else:
            s.rset()
        return code, msg


def test(tmp, stoppers):
    server = self_signed(tmp, "server", "mta.estafette.test",
                         "-addext", "subjectAltName=DNS:mta.estafette.test")
    ca = self_signed(tmp, "ca", "Estafette Test CA")
    trusted = signed_by(tmp, ca, "trusted", "trusted.client.test")
    unlisted = signed_by(tmp, ca, "unlisted", "unlisted.client.test")
    rogue = self_signed(tmp, "rogue", "trusted.client.test")
    ca_file = os.path.join(tmp, "clientca.pem")
    with open(ca[0]) as f, open(ca_file, "w") as out:
        out.write(f.read())
    certs = os.path.join(tmp, "relay_clientcerts")
    with open(certs, "w") as f:  # both spellings: colons, and plain lower-case hex
        f.write("# may relay\n%s trusted.client.test\n%s\n"
                % (fingerprint(trusted[0]), fingerprint(rogue[0]).replace(":", "").lower()))
    os.chmod(certs, 0o644)

    sink = harness.SmtpSink(tmp).start()
    stoppers.append(sink)
    milter = hm.HostileMilter()
    mta = harness.Estafette(
        tmp, relay_clients="192.0.2.0/24", routes={"remote.grey": "127.0.0.1,%d" % sink.port},
        tls_cert_file=server[0], tls_key_file=server[1], esmtpd_processes="1",
        tls_client_ca_file=ca_file, relay_clientcerts=certs, filters=milter.spec())
    stoppers.append(mta)

    r = subprocess.run([mta.program("estafette"), "check-config", "-c", mta.conf],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    mta.start()

    # Verified and listed: relays, and the message reaches the sink.
    code, msg = session(mta, trusted, b"trusted", send=True)
    assert code == 250, ("a listed, verified certificate may relay", code, msg)
    got = harness.wait_for(lambda: sink.messages(), 20, "the message at the sink")
    assert b"Subject: cert trusted" in got[0], got[0]
    with milter.lock:
        macros = dict(milter.macros)
    assert macros.get("{verify}") == "OK", macros
    assert macros.get("{cert_subject}") == "CN=trusted.client.test,O=Estafette Tests", macros
    assert macros.get("{cert_issuer}") == "CN=Estafette Test CA", macros
    log = mta.read_log()
    assert "client_cert=verified fingerprint=%s relay=yes" % fingerprint(trusted[0]) in log, log

    # Listed but self-signed (not verified against tls_client_ca_file): refused.
    code, msg = session(mta, rogue, b"rogue")
    assert code == 550 and b"Relay access denied" in msg, ("unverified certificate", code, msg)
    with milter.lock:
        assert milter.macros.get("{verify}") == "FAIL", milter.macros
    assert "client_cert=failed" in mta.read_log()

    # No certificate: served, relay refused.
    code, msg = session(mta, None, b"none")
    assert code == 550, ("no certificate", code, msg)
    with milter.lock:
        assert milter.macros.get("{verify}") == "NO", milter.macros

    # Verified but not listed: refused.
    code, msg = session(mta, unlisted, b"unlisted")
    assert code == 550, ("a certificate not in relay_clientcerts", code, msg)
    with milter.lock:
        assert milter.macros.get("{verify}") == "OK", milter.macros

    # Reload with a malformed map: it fails naming file:line, and the old one stays.
    with open(certs, "a") as f:
        f.write("%s\nnot-a-fingerprint\n" % fingerprint(unlisted[0]))
    r = mta.reload()
    assert r.returncode == 1 and "%s:5: 'not-a-fingerprint'" % certs in r.stderr, r.stderr
    r = subprocess.run([mta.program("estafette"), "check-config", "-c", mta.conf],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "%s:5:" % certs in r.stdout + r.stderr, r.stdout + r.stderr
    code, msg = session(mta, unlisted, b"unlisted")
    assert code == 550, ("the old map stays after a bad reload", code, msg)
    code, msg = session(mta, trusted, b"trusted")
    assert code == 250, ("the old map stays after a bad reload", code, msg)

    # Reload with the map fixed: the second certificate relays now.
    with open(certs, "w") as f:
        f.write("%s\n" % fingerprint(unlisted[0]))
    r = mta.reload()
    assert r.returncode == 0, r.stdout + r.stderr
    code, msg = session(mta, unlisted, b"unlisted-now-listed", send=True)
    assert code == 250, ("listed after the reload", code, msg)
    code, msg = session(mta, trusted, b"trusted")
    assert code == 550, ("no longer listed after the reload", code, msg)
    harness.wait_for(lambda: len(sink.messages()) >= 2, 20, "the second message at the sink")


harness.run(test)
