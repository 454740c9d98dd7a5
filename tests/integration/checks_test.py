#!/usr/bin/env python3
"""esmtpd's connection checks against real servers: rbldnsd + dnsmasq (rDNS, two DNSBLs,
sender domains) and oidentd (IDENT), clients connecting from 127.0.0.1 (confirmed, unlisted),
127.0.0.2 (unconfirmed, on both lists), 127.0.0.3 (on one list); access rules and MAXPERIP; a
DNS server that is down and one that never answers must not slow a concurrent clean session."""
import os
import pwd
import smtplib
import socket
import threading
import time

from harness import Estafette, Identd, RigDns, run, smtp_from, wait_for

MSG = b"Subject: checks\r\n\r\nhello\r\n"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def rcpt_reply(port, source, sender="s@example.test", rcpt="u@estafette.test"):
    with smtp_from(source, port) as s:
        s.ehlo("client.test")
        code, text = s.mail(sender)
        if code != 250:
            return code, text
        return s.rcpt(rcpt)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def main_checks(tmp, stoppers):
    dns = RigDns(tmp).start()
    stoppers.append(dns)
    stoppers.append(Identd(tmp).start())
    conf_dir = os.path.join(tmp, "files")
    os.makedirs(conf_dir)
    dnsbl = write(os.path.join(conf_dir, "dnsbl"),
                  "bl1.test 127.0.0.2 1 *\nbl2.test - 1 Blocked by bl2\n")
    access = write(os.path.join(conf_dir, "smtpaccess"),
                   "127.0.0.5 deny Go away\n"
                   "127.0.0.6 allow,dnsbl=off,ident=off,rdns=off,BOFHCHECKDNS=off\n")
    mta = Estafette(tmp, relay_clients="", dns_servers="127.0.0.1:%d" % dns.port,
                    rdns_check="yes", dnsbl=dnsbl, dnsbl_threshold="2", ident_check="yes",
                    ident_timeout="5s", BOFHCHECKDNS="yes", smtpaccess=access, MAXPERIP="2",
                    esmtpd_processes="2")
    stoppers.append(mta)
    mta.start()
    me = pwd.getpwuid(os.getuid()).pw_name

    # 127.0.0.1: confirmed as client.test, not listed; ident names the owner of our socket.
    with smtp_from("127.0.0.1", mta.port) as s:
        s.ehlo("client.test")
        s.sendmail("s@example.test", ["user@estafette.test"], MSG)
    wait_for(lambda: mta.maildir_messages("user"), 15, "delivery")
    msg = mta.maildir_messages("user")[0].decode()
    received = msg[msg.index("Received:"):].split("\n\t")[0]
    check("from client.test (%s@client.test [127.0.0.1])" % me in received, received)

    # 127.0.0.2: PTR spammer.test does not confirm; listed on both lists (score 2): blocked,
    # with bl1's TXT record as the reason, at every RCPT.
    code, text = rcpt_reply(mta.port, "127.0.0.2")
    check(code == 550 and b"5.7.1 Listed in bl1.test, see http://bl1.test/127.0.0.2" in text,
          "127.0.0.2: %d %r" % (code, text))
    # 127.0.0.3: on bl2 only (score 1 < 2): accepted; no PTR, so "unknown".
    code, text = rcpt_reply(mta.port, "127.0.0.3")
    check(code == 250, "127.0.0.3: %d %r" % (code, text))

    # BOFHCHECKDNS: no such domain, a null MX.
    code, text = rcpt_reply(mta.port, "127.0.0.1", sender="a@nodomain.test")
    check(code == 550 and text.startswith(b"5.1.8"), "nodomain: %d %r" % (code, text))
    code, text = rcpt_reply(mta.port, "127.0.0.1", sender="a@nullmx.test")
    check(code == 550 and text.startswith(b"5.7.27"), "nullmx: %d %r" % (code, text))

    # Access rules: a denied client gets 554 instead of the greeting.
    try:
        smtp_from("127.0.0.5", mta.port).quit()
        check(False, "127.0.0.5 was not refused")
    except smtplib.SMTPConnectError as e:
        check(e.smtp_code == 554 and b"Go away" in e.smtp_error, "127.0.0.5: %r" % (e,))

    # MAXPERIP = 2, counted across both esmtpd processes: the third connection gets 421.
    held = [smtp_from("127.0.0.7", mta.port) for _ in range(2)]
    try:
        smtp_from("127.0.0.7", mta.port).quit()
        check(False, "third connection from 127.0.0.7 accepted")
    except smtplib.SMTPConnectError as e:
        check(e.smtp_code == 421, "127.0.0.7: %r" % (e,))
    for s in held:
        s.quit()
    wait_for(lambda: _greets("127.0.0.7", mta.port), 5, "127.0.0.7 admitted again")

    log = mta.read_log()
    check("rdns=confirmed name=client.test" in log, "no confirmed rdns in the log")
    check("rdns=unconfirmed" in log and "listed=bl1.test listed=bl2.test" in log, "log: lists")
    check("ident=ok user=" + me in log, "log: ident")
    check("refused [127.0.0.5]: access rule" in log, "log: access")


def _greets(source, port):
    try:
        smtp_from(source, port).quit()
        return True
    except smtplib.SMTPConnectError:
        return False


def dead_dns(tmp, stoppers):
    """DNS down (refused) and DNS that never answers: the session still gets its replies
    within timeout x tries, and a clean session at the same time is not slowed."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never read
    silent.bind(("127.0.0.1", 0))
    stoppers.append(type("S", (), {"stop": lambda self: silent.close()})())
    refused_port = silent.getsockname()[1] + 1
    access = write(os.path.join(tmp, "smtpaccess"),
                   "127.0.0.8 allow,dnsbl=off,ident=off,rdns=off,BOFHCHECKDNS=off\n")
    dnsbl = write(os.path.join(tmp, "dnsbl"), "bl1.test - 1 *\n")
    for name, server in (("silent", silent.getsockname()[1]), ("refused", refused_port)):
        mta = Estafette(tmp, name=name, relay_clients="",
                        dns_servers="127.0.0.1:%d" % server, dns_timeout="2s", dns_tries="2",
                        rdns_check="yes", dnsbl=dnsbl, BOFHCHECKDNS="yes", smtpaccess=access)
        stoppers.append(mta)
        mta.start()
        result = {}

        def slow():
            t0 = time.time()
            result["slow"] = rcpt_reply(mta.port, "127.0.0.1")
            result["slow_time"] = time.time() - t0

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)  # the slow session is now waiting for DNS
        t0 = time.time()
        with smtp_from("127.0.0.8", mta.port) as s:
            s.sendmail("s@nodomain.test", ["user@estafette.test"], MSG)
        clean = time.time() - t0
        t.join(30)
        check(clean < 1.0, "%s: clean session took %.2fs while another waited" % (name, clean))
        # The sender check (a lookup of its own) fails temporarily: 451, after at most 2 x 2 s.
        code, _ = result["slow"]
        check(code == 451, "%s: slow session got %r" % (name, result["slow"]))
        check(result["slow_time"] < 12, "%s: slow session took %.1fs" % (name, result["slow_time"]))
        mta.stop()
        print("%s DNS: clean session %.3fs while the other took %.1fs" %
              (name, clean, result["slow_time"]))


def greeting(tmp, stoppers, dns):
    """dnsbl_action = reject_greeting: a blocked client gets 554 <TXT reason> instead of the
    greeting. greet_wait: the greeting waits for the checks, but no longer than greet_wait."""
    dnsbl = write(os.path.join(tmp, "dnsbl-greet"), "bl1.test 127.0.0.2 1 *\n")
    mta = Estafette(tmp, name="greet", relay_clients="", dns_servers="127.0.0.1:%d" % dns.port,
                    rdns_check="yes", dnsbl=dnsbl, dnsbl_action="reject_greeting")
    stoppers.append(mta)
    mta.start()
    try:
        smtp_from("127.0.0.2", mta.port).quit()
        check(False, "127.0.0.2 was greeted")
    except smtplib.SMTPConnectError as e:
        check(e.smtp_code == 554 and b"5.7.1 Listed in bl1.test" in e.smtp_error, repr(e))
    code, _ = rcpt_reply(mta.port, "127.0.0.1")
    check(code == 250, "127.0.0.1 with reject_greeting: %d" % code)
    mta.stop()

    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a DNS server that never answers
    silent.bind(("127.0.0.1", 0))
    stoppers.append(type("S", (), {"stop": lambda self: silent.close()})())
    mta = Estafette(tmp, name="greetwait", relay_clients="",
                    dns_servers="127.0.0.1:%d" % silent.getsockname()[1], dns_timeout="3s",
                    dns_tries="1", rdns_check="yes", greet_wait="1s")
    stoppers.append(mta)
    mta.start()
    t0 = time.time()
    with smtp_from("127.0.0.1", mta.port) as s:
        waited = time.time() - t0
        s.ehlo("client.test")
        s.mail("s@example.test")
        code, _ = s.rcpt("u@estafette.test")  # after the checks: rDNS timed out at 3 s
        total = time.time() - t0
    check(0.8 <= waited < 2.5, "greet_wait 1s: the greeting came after %.2fs" % waited)
    check(code == 250 and 2.5 <= total < 8, "rcpt %d after %.2fs" % (code, total))
    print("greet_wait: greeting after %.2fs, RCPT answered after %.2fs" % (waited, total))


def test(tmp, stoppers):
    main_checks(tmp, stoppers)
    dns = next(s for s in stoppers if isinstance(s, RigDns))
    greeting(tmp, stoppers, dns)
    dead_dns(tmp, stoppers)


run(test)
