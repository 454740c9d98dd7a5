#!/usr/bin/env python3
"""esmtpd's filters with real milters: a libmilter filter (tests/milter/test_milter.c, built
against Debian's libmilter) and opendkim signing for example.test. Checks every modification
reaches the queued message, a DKIM signature that verifies, rejects, and milter_default_action
for a milter that is down, one that hangs and one that answers garbage."""
import os
import re
import shutil
import smtplib
import socket
import subprocess
import threading
import time

from harness import (BUILD_DIR, SRC_DIR, Estafette, RigDns, free_port, port_open, run, skip,
                     wait_for)
import hostile_milter as hm

MILTER = os.path.join(BUILD_DIR, "tests", "milter", "test_milter")
OPENDKIM = "/usr/sbin/opendkim"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Proc:
    def __init__(self, args, log):
        self.proc = subprocess.Popen(args, stdout=open(log, "ab"), stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_milters(tmp, stoppers):
    if not os.access(MILTER, os.X_OK):
        skip("tests/milter/test_milter is not built")
    if not os.access(OPENDKIM, os.X_OK) or not shutil.which("opendkim-genkey"):
        skip("opendkim is not installed (scripts/install-deps)")
    test_port, dkim_port = free_port(), free_port()
    stoppers.append(Proc([MILTER, "inet:%d@127.0.0.1" % test_port],
                         os.path.join(tmp, "test_milter.log")))
    keys = os.path.join(tmp, "dkim")
    os.makedirs(keys)
    subprocess.run(["opendkim-genkey", "-D", keys, "-d", "example.test", "-s", "test"],
                   check=True)
    conf = os.path.join(keys, "opendkim.conf")
    with open(conf, "w") as f:
        f.write("Syslog no\nSocket inet:%d@127.0.0.1\nMode s\nDomain example.test\n"
                "Selector test\nKeyFile %s/test.private\nCanonicalization relaxed/simple\n"
                "UserID root\nRequireSafeKeys false\nInternalHosts 127.0.0.1\n" % (dkim_port, keys))
    stoppers.append(Proc([OPENDKIM, "-f", "-x", conf], os.path.join(keys, "opendkim.log")))
    for port in (test_port, dkim_port):
        wait_for(lambda: port_open(port), 10, "milter on %d" % port)
    return test_port, dkim_port, keys


def message(subject, to, body="hello filters\r\n.leading dot\r\n"):
    return ("From: <s@example.test>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s@example.test>\r\n\r\n%s"
            % (to, subject, subject.replace(" ", "-"), body)).encode()


def delivered(mta, user, n=1):
    wait_for(lambda: len(mta.maildir_messages(user)) >= n, 15, "delivery to %s" % user)
    return mta.maildir_messages(user)[n - 1]


def real_milters(tmp, stoppers):
    test_port, dkim_port, keys = start_milters(tmp, stoppers)
    mta = Estafette(tmp, name="filtered", local_domains="estafette.test, example.test",
                    filters="milter:inet:%d@127.0.0.1, milter:inet:%d@127.0.0.1"
                    % (test_port, dkim_port))
    stoppers.append(mta)
    mta.start()

    # Body replaced, recipient rewritten, headers added and inserted, macros seen.
    mta.send("s@example.test", ["rewrite@example.test"], message("replace", "rewrite@example.test"))
    got = delivered(mta, "rewritten").decode()
    head, _, body = got.partition("\n\n")
    check(body == "replaced body\n", "body: %r" % body)
    check("X-Test-Milter: ok" in head, "no X-Test-Milter header")
    check("conn:{client_addr}=127.0.0.1" in head, "macros: " + head)
    check("args=SIZE=" in head, "MAIL parameters not passed: " + head)  # smtplib sends SIZE
    check(head.index("X-Test-First: 1") < head.index("Received:"), "X-Test-First not inserted")
    check(not mta.maildir_messages("rewrite"), "the old recipient got the message")

    # opendkim's signature verifies on the delivered message (the body is not changed).
    mta.send("s@example.test", ["user@estafette.test"], message("signed", "user@estafette.test"))
    got = delivered(mta, "user")
    check(b"DKIM-Signature:" in got, "no DKIM-Signature")
    signed = b"\r\n".join(l for l in got.split(b"\n")
                         if not l.startswith((b"Return-Path:", b"Delivered-To:")))
    v = subprocess.run(["/usr/bin/python3", os.path.join(SRC_DIR, "tests", "milter", "dkim_verify.py"),
                        os.path.join(keys, "test.txt"), "test"], input=signed,
                       capture_output=True)
    check(v.returncode == 0, "DKIM: %s %s" % (v.stdout, v.stderr))

    # A rejected sender, a tempfailed recipient; dot-stuffing survives the round trip.
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        code, text = s.mail("reject@example.test")
        check(code == 550 and b"Rejected by test milter" in text, "%d %r" % (code, text))
        s.rset()
        check(s.mail("s@example.test")[0] == 250, "MAIL after reject")
        code, _ = s.rcpt("tempfail@example.test")
        check(code == 451, "tempfail rcpt: %d" % code)
    log = mta.read_log()
    check("phase=mail verdict=replycode" in log, "no filter log line")
    mta.stop()
    with_checks(tmp, stoppers, test_port)


def default_actions(tmp, stoppers):
    """Down, hanging and garbage milters with each default action; concurrent sessions are
    not serialised behind a hanging milter."""
    hang, garbage = hm.HostileMilter("hang"), hm.HostileMilter("garbage")
    stoppers += [hang, garbage]
    down = free_port()
    cases = [("down-tempfail", "inet:%d@127.0.0.1" % down, "tempfail", 451),
             ("down-accept", "inet:%d@127.0.0.1" % down, "accept", 250),
             ("garbage-reject", "inet:%d@127.0.0.1" % garbage.port, "reject", 554),
             ("hang-tempfail", "inet:%d@127.0.0.1" % hang.port, "tempfail", 451)]
    for name, spec, action, want in cases:
        mta = Estafette(tmp, name=name, filters="milter:" + spec, milter_default_action=action,
                        milter_connect_timeout="1s", milter_command_timeout="1s")
        stoppers.append(mta)
        mta.start()
        results = {}

        def session(k):
            t0 = time.time()
            with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
                s.ehlo("client.test")
                code, text = s.mail("s@example.test")
                if code == 250:
                    code, text = s.rcpt("user@estafette.test")
                if code == 250:
                    code, text = s.data(message("through", "user@estafette.test"))
                results[k] = (code, text, time.time() - t0)

        threads = [threading.Thread(target=session, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for k in range(3):
            code, text, took = results[k]
            check(code == want, "%s: session %d got %d %r" % (name, k, code, text))
            check(took < 4, "%s: session %d took %.1fs" % (name, k, took))
        if want == 250:
            delivered(mta, "user", 3)
        else:
            time.sleep(0.5)
            check(not mta.maildir_messages("user"), "%s: a refused message was delivered" % name)
        print("%s: 3 concurrent sessions answered %d, slowest %.2fs"
              % (name, want, max(r[2] for r in results.values())))
        mta.stop()


def strip_received(raw):
    """The delivered message without our Received header (its queue id and time differ)."""
    out, skipping = [], False
    for line in raw.split(b"\n"):
        if line.startswith(b"Received:"):
            skipping = True
            continue
        if skipping and line[:1] in (b" ", b"\t"):
            continue
        skipping = False
        out.append(line)
    return b"\n".join(out)


def with_checks(tmp, stoppers, test_port):
    """Filters and connection checks together: the connect stage waits for the checks (the
    client sends EHLO at once, pipelined commands follow) and passes their results as macros."""
    dns = RigDns(tmp).start()
    stoppers.append(dns)
    mta = Estafette(tmp, name="checked", dns_servers="127.0.0.1:%d" % dns.port,
                    rdns_check="yes", filters="milter:inet:%d@127.0.0.1" % test_port)
    stoppers.append(mta)
    mta.start()
    mta.send("s@example.test", ["checked@estafette.test"], message("checks", "checked@estafette.test"))
    head = delivered(mta, "checked").decode().partition("\n\n")[0]
    check("conn:{client_name}=client.test" in head, "check results not in the macros: " + head)
    check("Received: from [127.0.0.1] (client.test [127.0.0.1])" in head.replace("\n\t", " "),
          "Received: " + head)
    mta.stop()
    # A DNS server that never answers: EHLO, MAIL and RCPT arrive while the checks (and so the
    # connect stage) still wait; each filter call must wait for the connect stage.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    stoppers.append(type("S", (), {"stop": lambda self: silent.close()})())
    mta = Estafette(tmp, name="checked-slow", dns_timeout="1s", dns_tries="1",
                    dns_servers="127.0.0.1:%d" % silent.getsockname()[1], rdns_check="yes",
                    filters="milter:inet:%d@127.0.0.1" % test_port)
    stoppers.append(mta)
    mta.start()
    mta.send("s@example.test", ["slow@estafette.test"], message("slow checks", "slow@estafette.test"))
    head = delivered(mta, "slow").decode().partition("\n\n")[0]
    check("X-Test-Milter: ok" in head and "conn:{client_name}=unknown" in head and
          "helo=[127.0.0.1]" in head, "filters with slow checks: " + head)
    mta.stop()


def same_filter_both_ways(tmp, stoppers):
    """filters/examples/sample_milter.c, built against Debian's libmilter (external milter)
    and against Estafette's headers (in-process module): the same mail comes out the same."""
    external = os.path.join(BUILD_DIR, "filters", "examples", "sample_milter")
    module = os.path.join(BUILD_DIR, "filters", "examples", "sample_milter.so")
    for f in (external, module):
        if not os.path.exists(f):
            skip(f + " is not built")
    port = free_port()
    stoppers.append(Proc([external, "-p", "inet:%d@127.0.0.1" % port],
                         os.path.join(tmp, "sample_milter.log")))
    wait_for(lambda: port_open(port), 10, "sample_milter on %d" % port)
    outputs = []
    for name, spec in (("external", "milter:inet:%d@127.0.0.1" % port),
                       ("inprocess", "module:" + module)):
        mta = Estafette(tmp, name=name, filters=spec)
        stoppers.append(mta)
        mta.start()
        with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
            s.ehlo("client.test")
            code, text = s.mail("reject@example.test")
            check(code == 550 and b"sender rejected by sample" in text,
                  "%s: reject: %d %r" % (name, code, text))
            s.rset()
            s.sendmail("s@example.test", ["old@estafette.test"],
                       message("same both ways", "old@estafette.test"))
        got = delivered(mta, "new")
        check(b"X-Estafette-Sample: ok" in got, "%s: no sample header" % name)
        check(not mta.maildir_messages("old"), "%s: old recipient got it" % name)
        # The queue id differs (the sample echoes the i macro): compare it as a placeholder.
        qid = re.search(rb"X-Estafette-Sample-Client: 127.0.0.1 ([A-Za-z0-9-]+)", got)
        check(qid, "%s: no client/queue-id header" % name)
        outputs.append(strip_received(got).replace(qid.group(1), b"QUEUE-ID"))
        mta.stop()
    check(outputs[0] == outputs[1], "external and in-process differ:\n%r\n%r" % tuple(outputs))
    print("sample_milter external and in-process: identical delivered bytes (%d)"
          % len(outputs[0]))


def test(tmp, stoppers):
    real_milters(tmp, stoppers)
    same_filter_both_ways(tmp, stoppers)
    default_actions(tmp, stoppers)


run(test)
