"""estafette-sendmail: messages injected through esmtpd's local submission socket
(<state>/run/submit.sock) reach the local Maildir with From:/Date:/Message-ID: added and a
"Received: from local (uid N)" header (also for an unprivileged user); -t takes To/Cc/Bcc and
removes Bcc; a "." line ends the input unless -i; a rejected recipient exits 67 and sends
nothing; esmtpd down keeps the message in the maildrop and exits 0, or exits 75 without one; -bs
speaks SMTP on stdin/stdout; with esmtpd_processes = 2 under `estafette start` every esmtpd
accepts on the socket estafetted passed down, and a killed esmtpd does not stop injection. A
stale socket file is replaced; a live one is never taken over."""
import os
import re
import signal
import socket
import subprocess

import harness


def sendmail(mta, args, data, user=None, timeout=30):
    """estafette-sendmail as root, or as nobody: then the build's program copied where nobody
    can reach it, run from the test's directory (the build tree may be root's alone)."""
    def drop():
        os.setgid(65534)
        os.setuid(65534)
    if user == "nobody":
        return subprocess.run([mta.program_for_others("estafette-sendmail"), "-C", mta.conf] +
                              args, input=data, capture_output=True, timeout=timeout,
                              preexec_fn=drop, cwd=mta.tmp)
    return subprocess.run([mta.program("estafette-sendmail"), "-C", mta.conf] + args,
                          input=data, capture_output=True, timeout=timeout)


def one(mta, user):
    msgs = harness.wait_for(lambda: mta.maildir_messages(user), 15, "maildir of " + user)
    assert len(msgs) == 1, msgs
    return msgs[0]


def header(msg, name):
    head = msg.split(b"\n\n", 1)[0]
    return re.findall(rb"(?im)^" + name.encode() + rb": *(.*)$", head)


def stale_socket(path):
    """Leaves a socket file nobody listens on, as a crash would."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()


def test_single(tmp, stoppers):
    mta = harness.Estafette(tmp)
    sock = os.path.join(mta.state, "run", "submit.sock")
    stale_socket(sock)
    mta.start()
    stoppers.append(mta)
    assert os.stat(sock).st_mode & 0o777 == 0o666, oct(os.stat(sock).st_mode)

    # A second instance on the same state dir must not take the live socket over.
    r = subprocess.run([mta.program("estafetted"), "-f", "-c", mta.conf], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0 and "in use" in r.stderr, r.stderr

    # Plain injection, as root: headers added, the Received header names uid 0.
    r = sendmail(mta, ["-f", "sender@else.test", "alice@estafette.test"],
                 b"Subject: plain\n\nhello\n..two dots\n")
    assert r.returncode == 0, r.stderr
    m = one(mta, "alice")
    assert m.startswith(b"Return-Path: <sender@else.test>\n"), m[:200]
    assert b"Received: from local (uid 0)\n\tby mta.estafette.test (Estafette) with ESMTP id " in m, m
    assert header(m, "From") == [b"sender@else.test"], m
    assert len(header(m, "Date")) == 1 and len(header(m, "Message-ID")) == 1, m
    assert m.endswith(b"\nhello\n..two dots\n"), m

    # As an unprivileged user (mode 0666 socket, searchable dirs): default sender, -F.
    r = sendmail(mta, ["-F", "No Body", "bob@estafette.test"], b"Subject: nobody\n\nhi\n",
                 user="nobody")
    assert r.returncode == 0, r.stderr
    m = one(mta, "bob")
    assert b"Received: from local (uid 65534)" in m, m
    assert m.startswith(b"Return-Path: <nobody@mta.estafette.test>\n"), m[:200]
    assert header(m, "From") == [b"No Body <nobody@mta.estafette.test>"], m

    # -t: To/Cc/Bcc plus the command line; Bcc removed from what everyone gets.
    r = sendmail(mta, ["-t", "erin@estafette.test"],
                 b"From: me@else.test\nTo: Carol <carol@estafette.test>\n"
                 b"Cc: dave@estafette.test\nBcc: frank@estafette.test,\n gina@estafette.test\n"
                 b"Subject: extract\n\nbody\n")
    assert r.returncode == 0, r.stderr
    for user in ("carol", "dave", "erin", "frank", "gina"):
        m = re.sub(rb"(?m)^Delivered-To: .*\n", b"", one(mta, user))
        assert b"Bcc" not in m and b"frank" not in m and b"gina" not in m, m
        assert header(m, "From") == [b"me@else.test"], m

    # Without -i a "." line ends the input (stdin left open: sendmail must not wait for EOF).
    p = subprocess.Popen([mta.program("estafette-sendmail"), "-C", mta.conf,
                          "henry@estafette.test"], stdin=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdin.write(b"Subject: dot\n\nbefore\n.\nafter\n")
    p.stdin.flush()
    assert p.wait(20) == 0, p.stderr.read()
    p.stdin.close()
    m = one(mta, "henry")
    assert m.endswith(b"\nbefore\n"), m
    r = sendmail(mta, ["-i", "ivy@estafette.test"], b"Subject: dot\n\nbefore\n.\nafter\n")
    assert r.returncode == 0, r.stderr
    assert one(mta, "ivy").endswith(b"\nbefore\n.\nafter\n")
    r = sendmail(mta, ["-oi", "jack@estafette.test"], b"Subject: dot\r\n\r\n.\r\n.x\r\n")
    assert r.returncode == 0, r.stderr
    assert one(mta, "jack").endswith(b"\n\n.\n.x\n")

    # A rejected recipient: exit 67 (EX_NOUSER), a message, and nothing sent to the others.
    r = sendmail(mta, ["kim@estafette.test", "bad..address@estafette.test"], b"Subject: x\n\nx\n")
    assert r.returncode == 67, (r.returncode, r.stderr)
    assert b"bad..address@estafette.test" in r.stderr and b"501" in r.stderr, r.stderr
    # No recipients at all: EX_USAGE.
    r = sendmail(mta, [], b"Subject: x\n\nx\n")
    assert r.returncode == 64 and b"no recipients" in r.stderr, (r.returncode, r.stderr)

    # -bs: SMTP on stdin/stdout (LF line ends are made CRLF).
    r = sendmail(mta, ["-bs"],
                 b"EHLO client\nMAIL FROM:<s@else.test>\nRCPT TO:<lee@estafette.test>\nDATA\n"
                 b"Subject: bs\n\nvia -bs\n.\nQUIT\n")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.startswith("220 ") and "250 2.0.0 Ok: queued as " in out and "221 " in out, out
    assert one(mta, "lee").endswith(b"\nvia -bs\n")
    assert not mta.maildir_messages("kim"), "a refused transaction sent nothing"

    # esmtpd down: the message is kept in the maildrop (maildrop_test.py); without a maildrop
    # (Estafette never ran) EX_TEMPFAIL with a message; -bs says 421.
    mta.stop()
    assert not os.path.exists(sock), "estafetted removes the socket when it stops"
    r = sendmail(mta, ["alice@estafette.test"], b"Subject: down\n\nx\n")
    assert r.returncode == 0 and b"the message was kept in" in r.stderr, (r.returncode, r.stderr)
    os.rename(os.path.join(mta.state, "maildrop"), os.path.join(mta.state, "maildrop.away"))
    r = sendmail(mta, ["alice@estafette.test"], b"Subject: down\n\nx\n")
    assert r.returncode == 75, (r.returncode, r.stderr)
    assert b"cannot connect to esmtpd" in r.stderr and b"cannot keep" in r.stderr, r.stderr
    r = sendmail(mta, ["-bs"], b"QUIT\n")
    assert r.returncode == 75 and r.stdout.startswith(b"421 "), (r.returncode, r.stdout)


def estafette(mta, *args):
    return subprocess.run([mta.program("estafette")] + list(args) + ["-c", mta.conf],
                          capture_output=True, text=True, timeout=60)


def esmtpd_pids(mta):
    return sorted(int(p) for p in subprocess.run(
        ["pgrep", "-f", "estafette-esmtpd -c " + mta.conf],
        capture_output=True, text=True).stdout.split())


def accepted_by(mta):
    """pid of the esmtpd process that logged each local connection."""
    return set(re.findall(r"\[(\d+)\] esmtpd: connect from local uid=", mta.read_log()))


def test_supervised(tmp, stoppers):
    mta = harness.Estafette(tmp, name="sup", esmtpd_processes=2)

    class Stopper:
        def stop(self):
            estafette(mta, "stop")

    stoppers.append(Stopper())
    r = estafette(mta, "start")
    assert r.returncode == 0, r.stdout + r.stderr
    harness.wait_for(lambda: len(esmtpd_pids(mta)) == 2, 15, "two esmtpd processes")
    for pid in esmtpd_pids(mta):
        with open("/proc/%d/cmdline" % pid) as f:
            assert "--submit-fd" in f.read(), "esmtpd %d got no submit fd" % pid
    count = 40
    procs = [subprocess.Popen([mta.program("estafette-sendmail"), "-C", mta.conf,
                              "user%d@estafette.test" % (i % 4)],
                             stdin=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(count)]
    for i, p in enumerate(procs):
        p.stdin.write(b"Subject: sup %d\n\nx\n" % i)
        p.stdin.close()
    for p in procs:
        assert p.wait(60) == 0, p.stderr.read()
    total = lambda: sum(len(mta.maildir_messages("user%d" % u)) for u in range(4))
    harness.wait_for(lambda: total() == count, 30, "%d deliveries" % count)

    # Kill one esmtpd: the other keeps accepting on the same socket at once.
    victim = esmtpd_pids(mta)[0]
    os.kill(victim, signal.SIGKILL)
    for i in range(10):
        r = sendmail(mta, ["user0@estafette.test"], b"Subject: after kill %d\n\nx\n" % i)
        assert r.returncode == 0, r.stderr
    harness.wait_for(lambda: total() == count + 10, 30, "%d deliveries" % (count + 10))
    harness.wait_for(lambda: len(esmtpd_pids(mta)) == 2, 15, "the killed esmtpd restarted")
    r = estafette(mta, "stop")
    assert r.returncode == 0, r.stdout + r.stderr


def test(tmp, stoppers):
    test_single(tmp, stoppers)
    test_supervised(tmp, stoppers)


harness.run(test)
