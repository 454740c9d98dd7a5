"""Outbound TLS in esmtpclient (issue 15): the tls_policy levels against real servers on
loopback. A test CA (made here) signs the certificates of three throwaway Postfix servers
(mx.good.test, one whose certificate names other.test, one whose certificate has expired); two
SMTP servers written here offer STARTTLS and then fail it: one sends plaintext garbage instead
of a handshake, one speaks only TLS 1.0. dnsmasq gives each test domain its MX host;
`destinations` sets each domain's level. Checked:
  may: STARTTLS with Postfix (its Received header says TLSv1.3), the delivery log line names
  version, cipher, certificate status and policy; encrypt with Postfix: TLS; verify: delivered, then a second message reuses
  the TLS connection and a third, on a new connection after idle_reuse, resumes the session;
  secure with tls_match=.good.test delivered, secure without it deferred (4.7.5, the name);
  verify with a wrong name or an expired certificate deferred with OpenSSL's reason, in mailq;
  none: no STARTTLS; encrypt with a failing handshake or a TLS 1.0-only server: deferred 4.7.5;
  a server that pipelines a plaintext reply after its 220 to STARTTLS: dropped (response
  injection), nothing sent;
  may with either: delivered in plaintext on a new connection, and the next message to that
  host goes in plaintext at once (no second STARTTLS). REQUIRETLS: refused outside TLS (530
  5.7.10), passed on inside TLS to a verified next hop that offers it, bounced (5.7.10) where
  the next hop (Postfix) does not offer it."""
import os
import re
import smtplib
import socket
import ssl
import threading
import time

import harness
from testca import make_ca, server_cert

GOOD, WRONG, EXPIRED, BROKEN, OLD, INJECT, RTLS = ("127.0.0.11", "127.0.0.12", "127.0.0.13",
                                                   "127.0.0.14", "127.0.0.15", "127.0.0.16",
                                                   "127.0.0.17")


class FailingTls(harness.SinkHandler):
    """Offers STARTTLS; then either plaintext garbage instead of a handshake ("garbage"), a
    server that speaks only TLS 1.0 ("tls1.0"), a plaintext reply injected after the 220
    ("inject") or a good TLS 1.2+ server that offers REQUIRETLS ("requiretls"); "notls" offers
    no STARTTLS at all. Plaintext mail is accepted and kept."""

    def handle(self):
        self.count_connection()
        self.reply("220 mx.%s.test ESMTP" % self.server.mode)
        sender, rcpts, in_tls = None, [], False
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            cmd = line.decode(errors="replace").strip()
            verb = cmd.split(" ")[0].upper()
            if verb == "EHLO":
                if in_tls:
                    self.reply("250-mx.test\r\n250-PIPELINING\r\n250 REQUIRETLS")
                elif self.server.mode == "notls":  # a server without STARTTLS at all
                    self.reply("250-mx.test\r\n250 PIPELINING")
                else:
                    self.reply("250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS")
            elif verb == "STARTTLS":
                with self.server.lock:
                    self.server.starttls += 1
                if self.server.mode == "inject":
                    # A plaintext reply pipelined after the 220 (CVE-2011-1431 class): a client
                    # that read it as coming through TLS would believe a forged EHLO reply.
                    self.wfile.write(b"220 2.0.0 go ahead\r\n250 2.0.0 injected\r\n")
                    self.wfile.flush()
                    self.connection.recv(4096)
                    return
                self.reply("220 2.0.0 go ahead")
                if self.server.mode == "requiretls":  # a good server that offers REQUIRETLS
                    conn = self.server.modern.wrap_socket(self.connection, server_side=True)
                    self.rfile, self.wfile = conn.makefile("rb"), conn.makefile("wb")
                    in_tls = True
                    continue
                if self.server.mode == "garbage":
                    self.connection.recv(4096)  # the ClientHello, answered with nonsense
                    self.wfile.write(b"this is not a TLS handshake\r\n" * 20)
                    self.wfile.flush()
                    return
                try:
                    self.server.tls.wrap_socket(self.connection, server_side=True)
                except (ssl.SSLError, OSError):
                    pass
                return
            elif verb == "MAIL":
                sender, rcpts = cmd, []
                self.reply("250 2.1.0 ok")
            elif verb == "RCPT":
                rcpts.append(cmd)
                self.reply("250 2.1.5 ok")
            elif verb == "DATA":
                self.reply("354 go")
                data = b""
                while True:
                    chunk = self.rfile.readline(65536)
                    if not chunk or chunk == b".\r\n":
                        break
                    data += chunk
                with self.server.lock:
                    self.server.messages.append((sender, rcpts, data, in_tls))
                self.reply("250 2.0.0 kept")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


class FailingTlsServer(harness.ThreadedSink):
    def __init__(self, host, port, mode, cert):
        self.mode, self.starttls = mode, 0
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.minimum_version = self.tls.maximum_version = ssl.TLSVersion.TLSv1
        self.tls.set_ciphers("ALL:@SECLEVEL=0")
        self.tls.load_cert_chain(*cert)
        self.modern = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.modern.load_cert_chain(*cert)
        super().__init__(host, port, FailingTls)


def free_port_on_all(hosts):
    for _ in range(50):
        port = harness.free_port()
        try:
            for h in hosts:
                with socket.socket() as s:
                    s.bind((h, port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free on all of %r" % (hosts,))


def wait_error(mta, address, *needles):
    """The recipient's last error once it has one; it must contain every needle."""
    got = {}

    def failed():
        got.update(harness.recipient_errors(mta))
        return got.get(address)
    harness.wait_for(failed, 30, "a deferral of " + address)
    error = got[address]
    for needle in needles:
        assert needle in error, (address, needle, error)
    return error


def delivery_line(mta, rcpt_domain_remote, marker):
    """The esmtpclient log line of the delivery whose remote contains rcpt_domain_remote and
    which has `marker` in it."""
    for line in mta.read_log().splitlines():
        if "esmtpclient" in line and rcpt_domain_remote in line and marker in line:
            return line
    return None


def test(tmp, stoppers):
    hosts = (GOOD, WRONG, EXPIRED, BROKEN, OLD, INJECT, RTLS)
    port, dns_port = free_port_on_all(hosts), harness.free_port()
    ca = make_ca(tmp)
    sink = harness.SmtpSink(tmp).start()
    stoppers.append(sink)
    postfixes = {}
    for label, host, name, expired in (("good", GOOD, "mx.good.test", False),
                                       ("wrong", WRONG, "other.test", False),
                                       ("expired", EXPIRED, "mx.expired.test", True)):
        cert, key = server_cert(tmp, ca, label, name, expired)
        pf = harness.Postfix(tmp, sink.port, name="postfix-" + label, port=port, host=host,
                             smtpd_tls_cert_file=cert, smtpd_tls_key_file=key,
                             smtpd_tls_security_level="may", smtpd_tls_loglevel="1",
                             smtpd_tls_received_header="yes")
        stoppers.append(pf)
        postfixes[label] = pf.start()
    good_cert = server_cert(tmp, ca, "broken", "mx.broken.test")
    broken = FailingTlsServer(BROKEN, port, "garbage", good_cert)
    stoppers.append(broken)
    old = FailingTlsServer(OLD, port, "tls1.0", good_cert)
    stoppers.append(old)
    inject = FailingTlsServer(INJECT, port, "inject", good_cert)
    stoppers.append(inject)
    rtls = FailingTlsServer(RTLS, port, "requiretls", server_cert(tmp, ca, "rtls", "mx.rtls.test"))
    stoppers.append(rtls)

    records = ["--host-record=mx.good.test,%s" % GOOD, "--host-record=mx.wrong.test,%s" % WRONG,
               "--host-record=mx.expired.test,%s" % EXPIRED,
               "--host-record=mx.broken.test,%s" % BROKEN,
               "--host-record=mx.old.test,%s" % OLD, "--host-record=mx.inject.test,%s" % INJECT,
               "--host-record=mx.rtls.test,%s" % RTLS]
    mx = {"maygood": "good", "encgood": "good", "verify": "good", "secure": "good", "securebad": "good",
          "none": "good", "wrongname": "wrong", "expired": "expired", "broken": "broken",
          "maybroken": "broken", "old": "old", "mayold": "old", "inject": "inject",
          "rtls": "rtls"}
    records += ["--mx-host=%s.test,mx.%s.test,10" % kv for kv in mx.items()]
    stoppers.append(harness.Dnsmasq(tmp, dns_port, records).start())
    dests = os.path.join(tmp, "destinations")
    with open(dests, "w") as f:
        f.write("encgood.test tls=encrypt\n"
                "verify.test tls=verify\n"
                "secure.test tls=secure tls_match=.good.test\n"
                "securebad.test tls=secure\n"
                "none.test tls=none\n"
                "wrongname.test tls=verify\n"
                "expired.test tls=verify\n"
                "broken.test tls=encrypt\n"
                "old.test tls=encrypt\n"
                "inject.test tls=encrypt\n")
    mta_cert = server_cert(tmp, ca, "mta", "mta.estafette.test")
    mta = harness.Estafette(tmp, esmtp_port=port, dns_servers="127.0.0.1:%d" % dns_port,
                            tls_cert_file=mta_cert[0], tls_key_file=mta_cert[1],
                            tls_ca_file=ca[2], destinations=dests, idle_reuse="3s",
                            esmtpclient_processes=1,
                            retry_base="1h", retry_max="1h").start()
    stoppers.append(mta)

    def send(rcpt, subject):
        mta.send("alice@estafette.test", [rcpt],
                 b"Subject: %s\r\nMessage-ID: <%s@t>\r\n\r\nbody\r\n" % (subject, subject))

    def at_sink(subject):
        return [m for m in sink.messages()
                if re.search(rb"^Subject: " + re.escape(subject) + rb"\r?$", m, re.M)]

    # may against Postfix: TLS, and the log says how.
    send("a@maygood.test", b"may-good")
    harness.wait_for(lambda: at_sink(b"may-good"), 30, "may-good at the sink")
    (msg,) = at_sink(b"may-good")
    assert b"(using TLSv1.3 with cipher" in msg, msg
    line = delivery_line(mta, GOOD, "delivered=1")
    assert line and "tls=TLSv1.3/TLS_" in line and "policy=may" in line, line

    # encrypt against Postfix: TLS, no name asked for.
    send("e@encgood.test", b"encrypt-good")
    harness.wait_for(lambda: at_sink(b"encrypt-good"), 30, "encrypt-good at the sink")
    assert b"(using TLSv1.3 with cipher" in at_sink(b"encrypt-good")[0]
    assert delivery_line(mta, GOOD, "policy=encrypt"), mta.read_log()

    # verify: delivered with a verified certificate; a reused connection keeps TLS; a new one
    # resumes the session.
    send("v1@verify.test", b"verify-1")
    harness.wait_for(lambda: at_sink(b"verify-1"), 30, "verify-1 at the sink")
    send("v2@verify.test", b"verify-2")  # within idle_reuse: the same connection
    harness.wait_for(lambda: at_sink(b"verify-2"), 30, "verify-2 at the sink")
    lines = [ln for ln in mta.read_log().splitlines()
             if "policy=verify" in ln and "delivered=1" in ln]
    assert len(lines) == 2 and all("cert=verified" in ln for ln in lines), lines
    assert "reused=yes" in lines[1], lines
    time.sleep(3.5)  # the idle connection is closed after idle_reuse
    send("v3@verify.test", b"verify-3")
    harness.wait_for(lambda: at_sink(b"verify-3"), 30, "verify-3 at the sink")
    harness.wait_for(lambda: any("policy=verify" in ln and "resumed" in ln and "reused=yes" not in ln
                                 for ln in mta.read_log().splitlines()), 5, "a resumed session")

    # secure: the next-hop name, or tls_match.
    send("s@secure.test", b"secure")
    harness.wait_for(lambda: at_sink(b"secure"), 30, "secure at the sink")
    send("s@securebad.test", b"securebad")
    wait_error(mta, "s@securebad.test", "4.7.5", "not accepted under policy secure",
               "hostname mismatch")

    # none: no STARTTLS at all.
    send("n@none.test", b"none")
    harness.wait_for(lambda: at_sink(b"none"), 30, "none at the sink")
    assert b"using TLS" not in at_sink(b"none")[0], at_sink(b"none")[0]
    assert delivery_line(mta, GOOD, "tls=none policy=none"), mta.read_log()

    # verify against a wrong name and an expired certificate: deferred, with OpenSSL's reason.
    send("w@wrongname.test", b"wrongname")
    send("e@expired.test", b"expired")
    wait_error(mta, "w@wrongname.test", "4.7.5", "hostname mismatch")
    wait_error(mta, "e@expired.test", "4.7.5", "certificate has expired")

    # encrypt with a failing handshake or TLS 1.0 only: deferred 4.7.5, never plaintext.
    send("b@broken.test", b"broken")
    send("o@old.test", b"old")
    wait_error(mta, "b@broken.test", "4.7.5", "TLS handshake with mx.broken.test")
    wait_error(mta, "o@old.test", "4.7.5", "TLS handshake with mx.old.test")
    assert not broken.messages and not old.messages, (broken.messages, old.messages)

    # A reply injected after the 220 to STARTTLS: the connection is dropped, nothing is sent.
    send("i@inject.test", b"inject")
    wait_error(mta, "i@inject.test", "response injection: mx.inject.test")
    assert not inject.messages and inject.starttls >= 1, (inject.messages, inject.starttls)

    # may with the same servers: plaintext on a new connection; the host is remembered.
    starttls_before = broken.starttls
    send("m1@maybroken.test", b"maybroken-1")
    harness.wait_for(lambda: len(broken.messages) == 1, 30, "maybroken-1 in plaintext")
    assert broken.starttls == starttls_before + 1, broken.starttls
    time.sleep(3.5)  # idle_reuse: the next message needs a new connection
    send("m2@maybroken.test", b"maybroken-2")
    harness.wait_for(lambda: len(broken.messages) == 2, 30, "maybroken-2 in plaintext")
    assert broken.starttls == starttls_before + 1, "a second STARTTLS to a remembered host"
    assert "retrying in plaintext" in mta.read_log(), mta.read_log()
    send("m@mayold.test", b"mayold")
    harness.wait_for(lambda: len(old.messages) == 1, 30, "mayold in plaintext")
    assert "m@mayold.test" not in harness.recipient_errors(mta)

    # REQUIRETLS (RFC 8689): taken only inside TLS; passed on to a verified next hop that
    # offers it; bounced (5.7.10) where the next hop does not offer it (Postfix).
    with smtplib.SMTP(mta.host, mta.port, timeout=30) as s:
        s.ehlo("client.test")
        try:
            s.sendmail("alice@estafette.test", ["r@rtls.test"], b"Subject: x\r\n\r\nx\r\n",
                       mail_options=["REQUIRETLS"])
            raise AssertionError("REQUIRETLS accepted without TLS")
        except smtplib.SMTPSenderRefused as e:
            assert e.smtp_code == 530 and b"5.7.10" in e.smtp_error, e
    with smtplib.SMTP(mta.host, mta.port, timeout=30) as s:
        s.starttls(context=ssl._create_unverified_context())
        s.ehlo("client.test")
        assert s.has_extn("requiretls"), s.esmtp_features
        s.sendmail("alice@estafette.test", ["r@rtls.test"], b"Subject: rtls\r\n\r\nx\r\n",
                   mail_options=["REQUIRETLS"])
        s.sendmail("alice@estafette.test", ["r@maygood.test"],
                   b"Subject: rtls-postfix\r\n\r\nx\r\n", mail_options=["REQUIRETLS"])
    harness.wait_for(lambda: rtls.messages, 30, "the REQUIRETLS message at its next hop")
    (sender, _, _, in_tls) = rtls.messages[0]
    assert "REQUIRETLS" in sender and in_tls, rtls.messages[0]
    harness.wait_for(lambda: mta.maildir_messages("alice"), 30, "the 5.7.10 bounce")
    (bounce,) = mta.maildir_messages("alice")
    assert b"5.7.10" in bounce and b"r@maygood.test" in bounce, bounce
    assert not at_sink(b"rtls-postfix"), "REQUIRETLS mail went to a server without it"


if __name__ == "__main__":
    harness.run(test)
