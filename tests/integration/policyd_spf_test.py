#!/usr/bin/env python3
"""Debian's postfix-policyd-spf-python as a policy service (`filters = policy:unix:PATH`, issue
18): with SPF records served by a dnsmasq started here, a sender whose domain's SPF passes is
delivered with policyd-spf's Received-SPF: Pass prepended, one whose record fails is refused at
RCPT with policyd-spf's 550 text, and a softfail is delivered with Received-SPF: Softfail.

policyd-spf is run as Postfix runs it, by spawn(8): one process per connection speaking on its
stdin and stdout; the spawner below does what spawn does. It resolves through the system
resolver (dnspython reads /etc/resolv.conf), so each one runs in a mount namespace of its own
(unshare --mount) where a resolv.conf naming the test's dnsmasq is bound over /etc/resolv.conf;
the host's file is never touched. dnsmasq listens on 127.0.53.1:53 (resolv.conf has no port).
Needs root (port 53, mount)."""
import os
import smtplib
import socket
import subprocess
import sys
import threading

from harness import Estafette, run, skip, stop_process, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench",
                                "kit", "orchestrate"))
import rig  # noqa: E402

POLICYD_SPF = "/usr/bin/policyd-spf"
DNS_ADDRESS = "127.0.53.1"

SPF_RECORDS = [
    "--txt-record=pass.test,v=spf1 ip4:127.0.0.1 -all",
    "--txt-record=fail.test,v=spf1 ip4:192.0.2.1 -all",
    "--txt-record=soft.test,v=spf1 ip4:192.0.2.1 ~all",
]

# Debian's defaults, except that loopback clients are checked (the default skips 127.0.0.0/8).
POLICYD_CONF = """debugLevel = 1
TestOnly = 1
HELO_reject = Fail
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 192.0.2.0/24
"""


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Spawner:
    """Postfix's spawn(8) for policyd-spf: accepts on a unix socket and runs one policyd-spf per
    connection with the connection as its stdin and stdout."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "policyd-spf.sock")
        self.resolv = os.path.join(tmp, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write("nameserver %s\n" % DNS_ADDRESS)
        self.conf = os.path.join(tmp, "policyd-spf.conf")
        with open(self.conf, "w") as f:
            f.write(POLICYD_CONF)
        self.log = open(os.path.join(tmp, "policyd-spf.log"), "ab")
        self.children = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)  # esmtpd runs as the unprivileged user
        self.sock.listen(16)
        self.stopping = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.children.append(subprocess.Popen(
                    ["unshare", "--mount", "--", "sh", "-c",
                     'mount --bind "$1" /etc/resolv.conf && exec "$2" "$3"', "sh",
                     self.resolv, POLICYD_SPF, self.conf],
                    stdin=conn.fileno(), stdout=conn.fileno(), stderr=self.log))

    def stop(self):
        self.stopping = True
        self.sock.close()
        for child in self.children:
            stop_process(child)


def message(sender, subject):
    return ("From: <%s>\r\nTo: <spf@estafette.test>\r\nSubject: %s\r\n"
            "Message-ID: <%s@spf.test>\r\n\r\nbody\r\n" % (sender, subject, subject)).encode()


def received_spf(mta, n):
    wait_for(lambda: len(mta.maildir_messages("spf")) >= n, 15, "delivery %d to spf" % n)
    head = mta.maildir_messages("spf")[n - 1].decode().partition("\n\n")[0]
    lines = [line for line in head.split("\n") if line.startswith("Received-SPF:")]
    check(len(lines) == 1, "one Received-SPF header in %s" % head)
    check(head.index("Received-SPF:") < head.index("Received: "), "not at the top: " + head)
    return lines[0]


def test(tmp, stoppers):
    if os.geteuid() != 0:
        skip("needs root (dnsmasq on port 53, a mount namespace for policyd-spf's resolv.conf)")
    if not os.access(POLICYD_SPF, os.X_OK):
        skip("postfix-policyd-spf-python is not installed (scripts/install-deps)")
    dns_dir = os.path.join(tmp, "dns")
    os.makedirs(dns_dir)
    dns = subprocess.Popen(rig.dnsmasq_command(53, os.path.join(dns_dir, "dnsmasq.log"),
                                               SPF_RECORDS, DNS_ADDRESS),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stoppers.append(rig.Processes())
    stoppers[-1].procs.append(dns)
    wait_for(lambda: rig.port_open(53, DNS_ADDRESS) or dns.poll() is not None, 10, "dnsmasq")
    check(dns.poll() is None, "dnsmasq exited (is %s:53 taken?)" % DNS_ADDRESS)

    spawner = Spawner(tmp)
    stoppers.append(spawner)
    mta = Estafette(tmp, name="spf", filters="policy:unix:" + spawner.path)
    stoppers.append(mta)
    mta.start()

    refused = mta.send("alice@pass.test", ["spf@estafette.test"], message("alice@pass.test", "pass"))
    check(refused == {}, "pass refused: %r" % refused)
    line = received_spf(mta, 1)
    check(line.startswith("Received-SPF: Pass (mailfrom) identity=mailfrom; client-ip=127.0.0.1;")
          and "envelope-from=alice@pass.test;" in line, "pass: " + line)


    with smtplib.SMTP("127.0.0.1", mta.port, timeout=60) as s:
        s.ehlo("client.test")
        check(s.mail("bob@fail.test")[0] == 250, "MAIL")
        code, text = s.rcpt("spf@estafette.test")
        check(code == 550 and text.startswith(b"5.7.23 Message rejected due to: SPF fail - not "
                                              b"authorized."), "fail: %d %r" % (code, text))

    refused = mta.send("carol@soft.test", ["spf@estafette.test"], message("carol@soft.test", "soft"))
    check(refused == {}, "softfail refused: %r" % refused)
    line = received_spf(mta, 2)
    check(line.startswith("Received-SPF: Softfail (mailfrom) identity=mailfrom; "
                          "client-ip=127.0.0.1;"), "softfail: " + line)
    check(len(mta.maildir_messages("spf")) == 2, "the failing sender's mail was delivered")
    print("policyd-spf: pass (Received-SPF: Pass), fail (550 5.7.23), softfail (Received-SPF: "
          "Softfail): ok")


run(test)
