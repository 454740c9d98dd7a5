#!/usr/bin/env python3
"""`estafette import-postfix` (issue 18): three realistic Postfix configurations (a satellite
with a relayhost and local aliases; a virtual-mailbox host with virtual aliases, transports and
relay domains, with TLS; a gateway with a milter, a DNS block list, an allow list and a policy
service) are written with their tables into the test's directory and imported. The report must
name what was and was not translated, `estafette check-config` must accept the result, and the
Postfix directory must be left as it was (and an OUT_DIR that holds files is refused).

Then each configuration runs twice, side by side: a throwaway Postfix on that same main.cf (with
only the loopback adjustments appended: its own queue, data and log, inet_interfaces =
127.0.0.1, a free port in master.cf, no DNS for its smtp client) and Estafette on the imported
config (adjusted the same way: its own state_dir, a free port, dns_servers on loopback). The
relayhost and the transports point at smtp-sink sinks; the milter is tests/milter/test_milter,
the policy service Debian's postgrey, the block list rbldnsd behind dnsmasq (rig.Dns; Postfix
reads it through a private /etc/resolv.conf in a mount namespace). The same recipients are
sent to both, from a client in mynetworks (127.0.0.1) and from others (127.0.0.2, listed in
bl1.test; 127.0.0.3), one message each, and each must end at the same place: the same sink
with the same envelope recipients, the same mailbox path under the virtual mailbox base, or
refused at RCPT with the same class of reply. The one difference the report names (Estafette
asks a policy service for every client, Postfix's permit_mynetworks skips it) is checked to be
exactly that.
"""
import os
import pwd
import re
import shutil
import smtplib
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD_DIR, Estafette, Postfix, SmtpSink, free_port, port_open,  # noqa: E402
                     run, skip, wait_for)
import harness  # noqa: E402
import testca  # noqa: E402

ESTAFETTE = os.path.join(BUILD_DIR, "estafette")
MILTER = os.path.join(BUILD_DIR, "tests", "milter", "test_milter")
sys.path.insert(0, os.path.join(harness.SRC_DIR, "bench", "kit", "orchestrate"))
import loopback_postfix  # noqa: E402
import rig  # noqa: E402


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def snapshot(directory):
    """Every file under directory with its size, mtime and mode."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            st = os.stat(os.path.join(root, name))
            out[os.path.join(root, name)] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def import_config(src, out):
    before = snapshot(src)
    r = subprocess.run([ESTAFETTE, "import-postfix", src, out], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, "import-postfix: %s %s" % (r.stdout, r.stderr)
    assert snapshot(src) == before, "import-postfix changed %s" % src
    with open(os.path.join(out, "import-report.txt")) as f:
        report = f.read()
    assert report in r.stdout, "the report printed is not the one written"
    check = subprocess.run([ESTAFETTE, "check-config", "-c", os.path.join(out, "estafette.conf")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, "check-config: %s %s" % (check.stdout, check.stderr)
    return report


def section(report, name):
    """The lines of the report's "translated:" or "not translated:" part."""
    part = report.split("\nnot translated:\n")
    text = part[0] if name == "translated" else part[1]
    return [line.strip() for line in text.splitlines() if line.startswith("  ")]


def reported(report, name, pattern):
    lines = section(report, name)
    assert any(re.search(pattern, line) for line in lines), \
        "no %s line matches %r in:\n%s" % (name, pattern, report)


def postfix_on(tmp, name, src, stoppers, extra="", resolver=None):
    """A throwaway Postfix on src/main.cf and master.cf's smtpd on a free port: the main.cf as
    written, then the loopback adjustments (later lines win in main.cf)."""
    pf = Postfix(tmp, relay_port=9, name=name)  # relay_port: overridden by main.cf's own
    with open(os.path.join(src, "main.cf")) as f:
        text = f.read()
    text += "\n# loopback test adjustments\n" + "".join("%s = %s\n" % kv for kv in {
        "queue_directory": pf.spool,
        "data_directory": pf.data,
        "maillog_file": pf.log,
        "maillog_file_prefixes": pf.dir,
        "syslog_name": "postfix-import-%d" % pf.port,
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "smtp_dns_support_level": "disabled",
        "notify_classes": "",
    }.items()) + extra
    write(os.path.join(pf.conf_dir, "main.cf"), text)
    if resolver:
        pf.command_prefix = resolver
    stoppers.append(pf)
    return pf.start()


def estafette_on(tmp, name, out, stoppers, dns_servers):
    """Estafette on out/estafette.conf with the same kind of adjustments appended."""
    mta = Estafette(tmp, name=name)
    with open(os.path.join(out, "estafette.conf")) as f:
        text = f.read()
    text += "\n# loopback test adjustments\n" + "".join("%s = %s\n" % kv for kv in {
        "state_dir": mta.state,
        "listen": "127.0.0.1:%d" % mta.port,
        "log_file": mta.log,
        "log_level": "debug",
        "rdns_check": "no",
        "dns_servers": dns_servers,
        "mta_sts": "no",
        "retry_base": "300ms",
        "retry_max": "2s",
    }.items())
    conf = os.path.join(out, "test.conf")  # beside the files it names
    write(conf, text)
    mta.conf = conf
    stoppers.append(mta)
    return mta.start()


class Places:
    """Where the messages went: the sinks (by name) and mailbox trees (by name)."""

    def __init__(self, sinks, trees=None):
        self.sinks, self.trees = sinks, trees or {}

    def find(self, token):
        found = []
        for name, sink in self.sinks.items():
            for m in sink.messages():
                if token.encode() in m:
                    rcpts = sorted(re.findall(rb"^X-Rcpt-Args: <([^>]*)>", m, re.M))
                    milter = b"X-Test-Milter: ok" in m
                    found.append("sink %s to %s%s" % (name, b",".join(rcpts).decode(),
                                                      " (milter)" if milter else ""))
        for name, root in self.trees.items():
            for dirpath, _, files in os.walk(root):
                for f in files:
                    if os.path.basename(dirpath) != "new":
                        continue
                    with open(os.path.join(dirpath, f), "rb") as fh:
                        if token.encode() in fh.read():
                            box = os.path.relpath(os.path.dirname(dirpath), root)
                            found.append("mailbox %s" % box)
        return sorted(found)


def outcomes(port, cases, places, label, quiet_for=2.0):
    """Sends each (client address, recipient) a message of its own; returns {case: outcome}."""
    result = {}
    pending = {}
    for n, (client, rcpt) in enumerate(cases):
        token = "T-%s-%d-%d" % (label, n, time.time_ns() % 10**9)
        msg = ("From: sender@sender.test\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@test>"
               "\r\n\r\nbody %s\r\n" % (rcpt, token, token, token))
        with harness.smtp_from(client, port) as s:
            s.ehlo("client.test")
            code, _ = s.mail("sender@sender.test")
            assert code == 250, "MAIL from %s: %d" % (client, code)
            code, text = s.rcpt(rcpt)
            if code != 250:
                result[(client, rcpt)] = "refused %dxx" % (code // 100)
                continue
            code, text = s.data(msg.encode())
            assert code == 250, "DATA for %s: %d %s" % (rcpt, code, text)
        pending[(client, rcpt)] = token
    # Wait until every accepted message is somewhere, then a moment more for copies.
    # One still queued after 45 s is "not delivered": compare() then names it.
    def settled():
        return all(places.find(t) for t in pending.values())
    deadline = time.time() + 45
    while not settled() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(quiet_for)
    for case, token in pending.items():
        result[case] = " + ".join(places.find(token)) or "not delivered within 45 s"
    return result


def compare(postfix, estafette, expected_differences=()):
    # Postfix is the reference: every message it accepted must have arrived somewhere.
    assert not [c for c, o in postfix.items() if o.startswith("not delivered")], postfix
    lines = []
    bad = []
    for case in postfix:
        same = postfix[case] == estafette[case]
        lines.append("  %-12s %-28s postfix: %-40s estafette: %s" % (
            case[0], case[1], postfix[case], estafette[case]))
        if not same and case not in expected_differences:
            bad.append(case)
        if same and case in expected_differences:
            bad.append(case)
    print("\n".join(lines))
    assert not bad, "routed differently: %s" % bad


class Resolver:
    """rig.Dns (dnsmasq for .test, rbldnsd for bl1.test, which lists 127.0.0.2) on a 127.0.0.X:53
    of its own; Postfix reads it through a private /etc/resolv.conf (and an empty /etc/hosts) in
    a mount namespace, Estafette through dns_servers: neither asks the host's resolver."""

    def __init__(self, tmp, stoppers):
        if not shutil.which("unshare") or not shutil.which("mount"):
            skip("unshare and mount (util-linux) are needed for Postfix's private resolver")
        self.address = loopback_postfix.free_loopback_address()
        if not self.address:
            skip("no 127.0.0.X with port 53 free")
        base = os.path.join(tmp, "dns")
        self.dns = rig.Dns(base, 53, address=self.address)
        with harness._fixture():
            self.dns.start()
        stoppers.append(self.dns)
        resolv = os.path.join(base, "resolv.conf")
        write(resolv, "nameserver %s\noptions timeout:2 attempts:2\n" % self.address)
        hosts = os.path.join(base, "hosts")
        write(hosts, "127.0.0.1 localhost\n")
        self.prefix = ("unshare", "-m", "--propagation", "private", "sh", "-c",
                       'mount --bind "$0" /etc/resolv.conf && mount --bind "$1" /etc/hosts && '
                       'shift && exec "$@"', resolv, hosts)
        self.servers = "%s:53" % self.address


def satellite(tmp, stoppers, dns):
    src = os.path.join(tmp, "satellite", "postfix")
    out = os.path.join(tmp, "satellite", "imported")
    relay = SmtpSink(tmp)
    stoppers.append(relay.start())
    write(os.path.join(src, "main.cf"), """\
# A satellite: local mail for root goes to the admin, everything leaves through the relayhost.
smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no
append_dot_mydomain = no
readme_directory = no
compatibility_level = 3.6

myhostname = sat.example.org
alias_maps = hash:%(src)s/aliases
alias_database = hash:%(src)s/aliases
myorigin = $myhostname
mydestination = $myhostname, localhost.$mydomain, localhost
relayhost = [127.0.0.1]:%(relay)d
mynetworks = 127.0.0.1
mailbox_size_limit = 0
recipient_delimiter = +
inet_interfaces = loopback-only
inet_protocols = all
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated
    reject_unauth_destination
""" % {"src": src, "relay": relay.port})
    write(os.path.join(src, "aliases"),
          "# See man 5 aliases for format\npostmaster:    root\nroot: admin@example.org\n"
          "staff: root,\n  ops@example.org\n")
    subprocess.run(["postalias", "-c", src, "hash:" + os.path.join(src, "aliases")], check=True)

    report = import_config(src, out)
    reported(report, "translated", r"^relayhost = \[127\.0\.0\.1\]:%d -> smarthost = "
             r"\[127\.0\.0\.1\]:%d$" % (relay.port, relay.port))
    reported(report, "translated", r"^mydestination = sat\.example\.org, localhost\.example\.org, "
             r"localhost -> local_domains")
    reported(report, "translated", r"^alias_maps = .* -> aliases: 3 local parts")
    reported(report, "translated", r"^mynetworks = 127\.0\.0\.1 -> relay_clients = 127\.0\.0\.1/32")
    reported(report, "not translated", r"recipient_delimiter = \+: Estafette has no address")
    reported(report, "not translated", r"^home_mailbox = .*: Estafette delivers local users to")
    with open(os.path.join(out, "aliases")) as f:
        assert f.read() == ("postmaster: root\nroot: admin@example.org\n"
                            "staff: root, ops@example.org\n")

    cases = [(c, r) for c in ("127.0.0.1", "127.0.0.2") for r in (
        "root@sat.example.org", "postmaster@localhost", "staff@sat.example.org",
        "nosuchuser-4711@sat.example.org", "someone@example.com")]
    places = Places({"relayhost": relay})
    pf = postfix_on(tmp, "satellite-postfix", src, stoppers, resolver=dns.prefix)
    by_postfix = outcomes(pf.port, cases, places, "sat-pf")
    pf.stop()
    mta = estafette_on(tmp, "satellite-estafette", out, stoppers, dns.servers)
    by_estafette = outcomes(mta.port, cases, places, "sat-est")
    mta.stop()
    compare(by_postfix, by_estafette)
    assert by_postfix[("127.0.0.1", "someone@example.com")] == \
        "sink relayhost to someone@example.com"
    assert by_postfix[("127.0.0.2", "someone@example.com")].startswith("refused 5")
    assert by_postfix[("127.0.0.2", "nosuchuser-4711@sat.example.org")].startswith("refused 5")
    print("satellite: same routes for %d cases" % len(cases))


def virtual_host(tmp, stoppers, dns):
    src = os.path.join(tmp, "virtual", "postfix")
    out = os.path.join(tmp, "virtual", "imported")
    vmail = os.path.join(tmp, "virtual", "vmail")
    os.makedirs(vmail)  # Estafette's (it refuses a world-writable one); Postfix's is below
    relay_sink, partner_sink = SmtpSink(tmp), SmtpSink(tmp)
    stoppers += [relay_sink.start(), partner_sink.start()]
    ca = testca.make_ca(os.path.join(tmp, "virtual"))
    cert, key = testca.server_cert(os.path.join(tmp, "virtual"), ca, "mx", "mx.example.net")
    nobody = pwd.getpwnam("nobody")
    write(os.path.join(src, "main.cf"), """\
compatibility_level = 3.6
myhostname = mx.example.net
mydestination = localhost
mynetworks = 127.0.0.1/32, [::1]/128
local_recipient_maps =
alias_maps =
smtpd_tls_cert_file = %(cert)s
smtpd_tls_key_file = %(key)s
smtpd_tls_security_level = may
virtual_mailbox_domains = example.net, hash:%(src)s/vdomains
virtual_mailbox_base = %(vmail)s
virtual_mailbox_maps = hash:%(src)s/vmailbox
virtual_alias_maps = hash:%(src)s/virtual
virtual_uid_maps = static:%(uid)d
virtual_gid_maps = static:%(gid)d
relay_domains = relay.example
transport_maps = hash:%(src)s/transport
message_size_limit = 20480000
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
""" % {"src": src, "vmail": vmail, "uid": nobody.pw_uid, "gid": nobody.pw_gid, "cert": cert,
       "key": key})
    write(os.path.join(src, "vdomains"), "example.com   OK\n")
    write(os.path.join(src, "vmailbox"), "alice@example.net    example.net/alice/\n"
          "bob@example.com      example.com/bob/\n"
          "# carol has left\n")
    write(os.path.join(src, "virtual"), "sales@example.net    alice@example.net,\n"
          "                     bob@example.com\n"
          "info@example.net     carol@partner.example\n"
          "@example.com         bob@example.com\n")
    write(os.path.join(src, "transport"), "relay.example    smtp:[127.0.0.1]:%d\n"
          "partner.example  smtp:[127.0.0.1]:%d\n" % (relay_sink.port, partner_sink.port))
    for table in ("vdomains", "vmailbox", "virtual", "transport"):
        subprocess.run(["postmap", "-c", src, "hash:" + os.path.join(src, table)], check=True)

    report = import_config(src, out)
    reported(report, "translated", r"virtual_mailbox_maps = .* -> hosted_mailboxes: 2 mailboxes")
    reported(report, "translated", r"-> esmtproutes: relay\.example: 127\.0\.0\.1,%d$"
             % relay_sink.port)
    reported(report, "translated", r"^smtpd_tls_cert_file = .* -> tls_cert_file = ")
    reported(report, "translated", r"^message_size_limit = 20480000 -> max_message_size = 20480000")
    reported(report, "not translated", r"@example\.com: a catch-all alias; Estafette has none")
    reported(report, "not translated", r"^virtual_uid_maps = ")
    with open(os.path.join(out, "hosteddomains")) as f:
        assert f.read() == "example.net\nexample.com\n"

    cases = [(c, r) for c in ("127.0.0.1", "127.0.0.2") for r in (
        "alice@example.net", "bob@example.com", "sales@example.net", "info@example.net",
        "nobody@example.net", "user@relay.example", "user@partner.example")]
    # Postfix's catch-all (@example.com) takes unknown@example.com; Estafette refuses it, as the
    # report says.
    cases.append(("127.0.0.2", "unknown@example.com"))
    pf_vmail = os.path.join(tmp, "virtual", "postfix-vmail")
    os.makedirs(pf_vmail)
    os.chmod(pf_vmail, 0o777)  # Postfix's virtual(8) writes as virtual_uid_maps' user
    sinks = {"relay.example": relay_sink, "partner.example": partner_sink}
    pf = postfix_on(tmp, "virtual-postfix", src, stoppers, resolver=dns.prefix,
                    extra="virtual_mailbox_base = %s\n" % pf_vmail)
    by_postfix = outcomes(pf.port, cases, Places(sinks, {"vmail": pf_vmail}), "virt-pf")
    pf.stop()
    mta = estafette_on(tmp, "virtual-estafette", out, stoppers, dns.servers)
    by_estafette = outcomes(mta.port, cases, Places(sinks, {"vmail": vmail}), "virt-est")
    mta.stop()
    compare(by_postfix, by_estafette, expected_differences=[("127.0.0.2", "unknown@example.com")])
    assert by_postfix[("127.0.0.2", "sales@example.net")] == \
        "mailbox example.com/bob + mailbox example.net/alice"
    assert by_postfix[("127.0.0.2", "unknown@example.com")] == "mailbox example.com/bob"
    assert by_estafette[("127.0.0.2", "unknown@example.com")].startswith("refused 5")
    print("virtual: same routes for %d cases, the catch-all as reported" % (len(cases) - 1))


class Milter(harness.ServerProcess):
    def __init__(self, tmp):
        self.port = free_port()
        self.log = open(os.path.join(tmp, "test_milter.log"), "ab")

    def start(self):
        self.proc = subprocess.Popen([MILTER, "inet:%d@127.0.0.1" % self.port],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(self.port), 10, "test_milter")
        return self


def gateway(tmp, stoppers, dns):
    if not os.access(MILTER, os.X_OK):
        skip("tests/milter/test_milter is not built")
    src = os.path.join(tmp, "gateway", "postfix")
    out = os.path.join(tmp, "gateway", "imported")
    base = os.path.join(tmp, "gateway")
    os.makedirs(base, exist_ok=True)
    relay_sink, inside_sink = SmtpSink(tmp), SmtpSink(tmp)
    stoppers += [relay_sink.start(), inside_sink.start()]
    milter = Milter(base)
    stoppers.append(milter.start())
    grey = harness.Postgrey(base, free_port(), 3600, ["vip@example.com", "example.test"])
    stoppers.append(grey)
    write(os.path.join(src, "main.cf"), """\
# A gateway for example.com: a DKIM milter, DNS lists and greylisting in front of the inside
# server; everything else leaves through the relayhost.
compatibility_level = 3.6
myhostname = gw.example.com
mydestination =
local_recipient_maps =
mynetworks = 127.0.0.1/32
relayhost = [127.0.0.1]:%(relay)d
relay_domains = example.com
transport_maps = texthash:%(src)s/transport
smtpd_milters = inet:127.0.0.1:%(milter)d
non_smtpd_milters = $smtpd_milters
milter_default_action = tempfail
milter_command_timeout = 20s
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
    permit_mynetworks,
    reject_unauth_destination,
    permit_dnswl_client wl.invalid.test,
    reject_rbl_client bl1.test=127.0.0.2,
    reject_rhsbl_sender dbl.invalid.test,
    check_policy_service inet:127.0.0.1:%(grey)d
smtpd_policy_service_timeout = 50s
""" % {"src": src, "relay": relay_sink.port, "milter": milter.port, "grey": grey.port})
    write(os.path.join(src, "transport"), "example.com   smtp:[127.0.0.1]:%d\n"
          % inside_sink.port)

    report = import_config(src, out)
    reported(report, "translated", r"^smtpd_milters = inet:127\.0\.0\.1:%d -> filters = "
             r"milter:inet:%d@127\.0\.0\.1$" % (milter.port, milter.port))
    reported(report, "translated", r"reject_rbl_client bl1\.test=127\.0\.0\.2 -> dnsbl: bl1\.test "
             r"127\.0\.0\.2 weight 1")
    reported(report, "translated", r"check_policy_service inet:127\.0\.0\.1:%d -> filters: "
             r"policy:inet:%d@127\.0\.0\.1" % (grey.port, grey.port))
    reported(report, "translated", r"^milter_default_action = tempfail -> milter_default_action")
    reported(report, "translated", r"^smtpd_policy_service_timeout = 50s -> policy_timeout = 50s")
    reported(report, "not translated", r"reject_rhsbl_sender: not translated")
    reported(report, "not translated", r"check_policy_service .*: Estafette asks it for every "
             r"client; permit_mynetworks before it does not skip it")
    with open(os.path.join(out, "dnsbl")) as f:
        assert f.read() == "wl.invalid.test - -100\nbl1.test 127.0.0.2 1\n"

    cases = [(c, r) for c in ("127.0.0.1", "127.0.0.2", "127.0.0.3") for r in (
        "vip@example.com", "grey@example.com", "someone@example.test", "tempfail@example.test")]
    places = Places({"relayhost": relay_sink, "inside": inside_sink})
    pf = postfix_on(tmp, "gateway-postfix", src, stoppers, resolver=dns.prefix)
    by_postfix = outcomes(pf.port, cases, places, "gw-pf")
    pf.stop()
    mta = estafette_on(tmp, "gateway-estafette", out, stoppers, dns.servers)
    by_estafette = outcomes(mta.port, cases, places, "gw-est")
    mta.stop()
    # The reported difference: Postfix's permit_mynetworks comes before the policy service, so
    # a relay client is never greylisted there; Estafette asks postgrey for every client.
    compare(by_postfix, by_estafette, expected_differences=[("127.0.0.1", "grey@example.com")])
    assert by_postfix[("127.0.0.1", "grey@example.com")] == \
        "sink inside to grey@example.com (milter)"
    assert by_estafette[("127.0.0.1", "grey@example.com")] == "refused 4xx"
    assert by_postfix[("127.0.0.3", "vip@example.com")] == "sink inside to vip@example.com (milter)"
    assert by_postfix[("127.0.0.1", "someone@example.test")] == \
        "sink relayhost to someone@example.test (milter)"
    assert by_postfix[("127.0.0.2", "vip@example.com")] == "refused 5xx"  # bl1.test
    assert by_postfix[("127.0.0.3", "grey@example.com")] == "refused 4xx"  # greylisted
    assert by_postfix[("127.0.0.1", "tempfail@example.test")] == "refused 4xx"  # the milter
    print("gateway: same routes for %d cases, the policy difference as reported"
          % (len(cases) - 1))


def refusals(tmp, stoppers):
    """An OUT_DIR that holds a file is refused and left alone; a main.cf error names file:line."""
    src = os.path.join(tmp, "bad", "postfix")
    write(os.path.join(src, "main.cf"), "myhostname = a.example\nthis is not a parameter\n")
    out = os.path.join(tmp, "bad", "out")
    r = subprocess.run([ESTAFETTE, "import-postfix", src, out], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and "%s/main.cf:2: expected 'name = value'" % src in r.stderr, \
        (r.returncode, r.stderr)
    assert not os.path.exists(out), "an OUT_DIR was made for a config that failed"
    write(os.path.join(src, "main.cf"), "myhostname = a.example\n")
    inside = os.path.join(src, "estafette")
    r = subprocess.run([ESTAFETTE, "import-postfix", src, inside], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1 and "is inside" in r.stderr, (r.returncode, r.stderr)
    assert sorted(os.listdir(src)) == ["main.cf"], os.listdir(src)
    write(os.path.join(out, "estafette.conf"), "# mine\n")
    r = subprocess.run([ESTAFETTE, "import-postfix", src, out], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and "is not empty" in r.stderr, (r.returncode, r.stderr)
    with open(os.path.join(out, "estafette.conf")) as f:
        assert f.read() == "# mine\n"
    print("refusals: ok")


def test(tmp, stoppers):
    if not os.access("/usr/sbin/postfix", os.X_OK) or os.geteuid() != 0:
        skip("a throwaway Postfix needs root and the postfix package")
    refusals(tmp, stoppers)
    dns = Resolver(tmp, stoppers)
    satellite(tmp, stoppers, dns)
    virtual_host(tmp, stoppers, dns)
    gateway(tmp, stoppers, dns)


if __name__ == "__main__":
    run(test)
