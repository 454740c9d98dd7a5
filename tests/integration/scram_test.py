"""SMTP AUTH SCRAM-SHA-256 (RFC 5802, 7677; issue 14) in esmtpd with real clients, on loopback.

An Estafette with a submission listener (587, STARTTLS), a self-signed certificate and
`auth_backend = file:` holding a SCRAM-SHA-256 entry written by `estafette passwd --scheme
scram-sha-256`, one printed by Dovecot's `doveadm pw -s SCRAM-SHA-256`, and a crypt(3) one;
relaying for authenticated clients only, to a sink:
- no AUTH before STARTTLS; after it "AUTH PLAIN LOGIN SCRAM-SHA-256";
- a SCRAM client written here (hashlib/hmac, RFC 5802's formulas): the right password gives
  334 v=... which the client checks (the server knows the key), then 235 and a relayed
  message "with ESMTPSA"; the Dovecot entry too, with the authzid a=user; a wrong password,
  an unknown user and a crypt(3) user 535 (the unknown user's salt and iteration count look like
  a real one's, the same on each try); "*" 501; PLAIN and LOGIN against a SCRAM entry 235;
- the failures count for auth_fail_limit (421 4.7.0 after them);
- GNU gsasl (an independent client) in SMTP mode with STARTTLS: right password ok, wrong not;
- the log names user and mechanism, never a proof."""
import base64
import hashlib
import hmac
import os
import re
import shutil
import smtplib
import subprocess

import harness
from tls_test import client_context, make_cert

MSG = b"From: sc@estafette.test\r\nTo: b@domain1.grey\r\nSubject: scram %s\r\n\r\nbody\r\n"


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def b64d(text):
    return base64.b64decode(text if isinstance(text, bytes) else text.encode(), validate=True)


def submission(port, source="127.0.0.1"):
    s = smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=(source, 0))
    s.ehlo("client.test")
    s.starttls(context=client_context())
    s.ehlo("client.test")
    return s


def scram(s, user, password, authzid=""):
    """SCRAM-SHA-256 on an open session: (code, text, server-first attributes). Checks the
    server's signature when the server accepts the proof."""
    cnonce = b64(os.urandom(18))
    header = "n,%s," % (("a=" + authzid) if authzid else "")
    bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), cnonce)
    code, text = s.docmd("AUTH", "SCRAM-SHA-256 " + b64(header + bare))
    assert code == 334, (code, text)
    server_first = b64d(text).decode()
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    assert attrs["r"].startswith(cnonce) and len(attrs["r"]) >= len(cnonce) + 24, attrs
    salt, iterations = b64d(attrs["s"]), int(attrs["i"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = "c=%s,r=%s" % (b64(header), attrs["r"])
    auth_message = ("%s,%s,%s" % (bare, server_first, without_proof)).encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    code, text = s.docmd(b64(without_proof + ",p=" + b64(proof)))
    if code != 334:
        return code, text, attrs
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    want = "v=" + b64(hmac.new(server_key, auth_message, hashlib.sha256).digest())
    assert b64d(text).decode() == want, (text, want)
    code, text = s.docmd("")  # RFC 4954 4: the empty response after the server's final data
    return code, text, attrs


def plain_or_login(port, mechanism, user, password, source="127.0.0.1"):
    with submission(port, source) as s:
        s.user, s.password = user, password
        auth = s.auth_plain if mechanism == "PLAIN" else s.auth_login
        try:
            return s.auth(mechanism, auth, initial_response_ok=(mechanism == "PLAIN"))[0]
        except smtplib.SMTPAuthenticationError as e:
            return e.smtp_code


def gsasl(port, user, password):
    # --x509-ca-file "": gsasl checks the certificate's name against the address it connects
    # to (127.0.0.1, whatever --hostname says); the SASL exchange is what is tested here.
    # --no-cb: without it gsasl 2.2 over TLS 1.3 gives up on its own before client-first
    # ("mechanism error", nothing sent); we offer no -PLUS, so "n,," is what it should send.
    return subprocess.run(
        ["gsasl", "--smtp", "--starttls", "--connect", "127.0.0.1:%d" % port,
         "--x509-ca-file=", "--no-cb", "-m", "SCRAM-SHA-256", "-a", user, "-p", password,
         "--verbose"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


def test(tmp, stoppers):
    cert = make_cert(tmp, "rsa", "rsa", "mta.estafette.test")
    sink = harness.SmtpSink(tmp).start()
    stoppers.append(sink)
    passwd = harness.write_passwd(os.path.join(tmp, "passwd"), {"cr": "crypt-pw"})
    # `estafette passwd --scheme scram-sha-256` writes a Dovecot-form SCRAM entry.
    r = subprocess.run([os.path.join(harness.BUILD_DIR, "estafette"), "passwd", "--file", passwd,
                        "--stdin", "--scheme", "scram-sha-256", "sc"],
                       input=b"pencil-sc\n", capture_output=True, timeout=30)
    assert r.returncode == 0, r
    with open(passwd) as f:
        line = [x for x in f.read().splitlines() if x.startswith("sc:")]
    assert len(line) == 1 and line[0].startswith("sc:{SCRAM-SHA-256}4096,"), line
    doveadm = shutil.which("doveadm")
    if not doveadm:
        harness.skip("doveadm (dovecot-core) is not installed (scripts/install-deps)")
    r = subprocess.run([doveadm, "pw", "-s", "SCRAM-SHA-256", "-p", "pencil-dv"],
                       capture_output=True, timeout=30, check=True)
    dovecot_secret = r.stdout.decode().strip()
    assert dovecot_secret.startswith("{SCRAM-SHA-256}4096,"), dovecot_secret
    with open(passwd, "a") as f:
        f.write("dv:%s\n" % dovecot_secret)

    port, port587 = harness.free_port(), harness.free_port()
    mta = harness.Estafette(
        tmp, port=port, relay_domains="", relay_clients="192.0.2.0/24",
        routes={"domain1.grey": "127.0.0.1,%d" % sink.port},
        listen="127.0.0.1:%d mx, 127.0.0.1:%d submission" % (port, port587),
        tls_cert_file=cert[0], tls_key_file=cert[1], auth_backend="file:" + passwd,
        auth_fail_limit="2", auth_fail_window="10m").start()
    stoppers.append(mta)
    harness.wait_for(lambda: harness.port_open(port587), 10, "submission port")

    # The TLS rule of PLAIN and LOGIN: nothing before STARTTLS.
    with smtplib.SMTP("127.0.0.1", port587, timeout=20) as s:
        s.ehlo("client.test")
        assert not s.has_extn("auth"), s.esmtp_features
    with submission(port587) as s:
        mechanisms = s.esmtp_features.get("auth", "").upper().split()
        assert mechanisms == ["PLAIN", "LOGIN", "SCRAM-SHA-256"], s.esmtp_features
        # Our client, the `estafette passwd` entry: v= checked, 235, a relayed message.
        code, text, first = scram(s, "sc", "pencil-sc")
        assert code == 235 and b"2.7.0" in text, (code, text)
        assert first["i"] == "4096", first
        refused = s.sendmail("sc@estafette.test", ["b@domain1.grey"], MSG % b"ours")
        assert refused == {}, refused
    got = harness.wait_for(lambda: sink.messages(), 20, "the SCRAM-authenticated message")
    assert any(b"with ESMTPSA id" in m and b"Subject: scram ours" in m for m in got), got

    # doveadm's entry, with the authzid the user's own.
    with submission(port587) as s:
        code, text, _ = scram(s, "dv", "pencil-dv", authzid="dv")
        assert code == 235, (code, text)
    # Failures: a wrong password, an unknown user, a crypt(3) user: 535 after the proof. Each
    # counts for auth_fail_limit = 2: 127.0.0.2's second one ends with 421 4.7.0 and a new
    # connection from it is refused at AUTH. The unknown user's server-first looks real.
    s = submission(port587, "127.0.0.2")
    try:
        code, text, _ = scram(s, "sc", "wrong")
        assert code == 535 and b"5.7.8" in text, (code, text)
        code, text, ghost = scram(s, "ghost", "pencil-sc")
        assert code == 535, (code, text)
        assert ghost["i"] == "4096" and len(b64d(ghost["s"])) == 16, ghost
        code, text = s.getreply()  # the limit: 421 right after the second 535
        assert code == 421 and b"4.7.0" in text, (code, text)
    finally:
        s.close()
    with submission(port587, "127.0.0.2") as s:
        code, text = s.docmd("AUTH", "SCRAM-SHA-256")
        assert code == 421 and b"4.7.0" in text, (code, text)
    with submission(port587, "127.0.0.3") as s:
        code, text, ghost2 = scram(s, "ghost", "x")
        assert code == 535 and ghost2["s"] == ghost["s"], (code, ghost, ghost2)
    with submission(port587, "127.0.0.4") as s:
        code, text, crypt_user = scram(s, "cr", "crypt-pw")
        assert code == 535, (code, text)
        assert crypt_user["i"] == "4096" and crypt_user["s"] != ghost["s"], crypt_user
    with submission(port587) as s:
        # "*" cancels after server-first.
        code, text = s.docmd("AUTH", "SCRAM-SHA-256 " + b64("n,,n=sc,r=abcdef"))
        assert code == 334, (code, text)
        code, text = s.docmd("*")
        assert code == 501, (code, text)
        code, text = s.docmd("AUTH", "SCRAM-SHA-256 " + b64("p=tls-unique,,n=sc,r=abcdef"))
        assert code == 501 and b"5.5.2" in text, (code, text)
    # PLAIN and LOGIN against SCRAM entries (PBKDF2 with the stored salt); crypt user by PLAIN.
    assert plain_or_login(port587, "PLAIN", "sc", "pencil-sc") == 235
    assert plain_or_login(port587, "LOGIN", "dv", "pencil-dv") == 235
    assert plain_or_login(port587, "PLAIN", "dv", "pencil-sc", "127.0.0.5") == 535
    assert plain_or_login(port587, "PLAIN", "cr", "crypt-pw") == 235

    # GNU gsasl, an independent client, in SMTP mode over STARTTLS.
    if not shutil.which("gsasl"):
        harness.skip("gsasl is not installed (scripts/install-deps)")
    r = gsasl(port587, "dv", "pencil-dv")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    # The server-final message (v=...) then 235; base64 of "v=" is "dj" and a third character
    # that depends on the signature's first byte.
    finals = [base64.b64decode(m) for m in re.findall(rb"\n334 (dj[A-Za-z0-9+/=]+)", r.stdout)]
    assert any(f.startswith(b"v=") for f in finals) and b"235 2.7.0" in r.stdout, r
    assert b"server trusted" in r.stderr, r  # gsasl checked our v= itself
    r = gsasl(port587, "sc", "wrong")
    assert r.returncode != 0 and b"535" in r.stdout + r.stderr, r

    log = mta.read_log()
    assert "auth ok user=sc " in log and "mechanism=SCRAM-SHA-256" in log, log[-3000:]
    assert "auth failed user=ghost " in log, log[-3000:]
    for secret in ("pencil-sc", "pencil-dv", dovecot_secret.split(",")[2]):
        assert secret not in log, "a secret in the log"


if __name__ == "__main__":
    harness.run(test)
