#!/usr/bin/env python3
"""Issue 19: an external milter that dies (SIGKILL) does not need an Estafette restart. The
milter is tests/milter/test_milter, a real libmilter filter built against Debian's libmilter.
While it is dead a new session gets milter_default_action (451) at once, not a hang; started
again on the same port, the next session is filtered and delivered by the same esmtpd
processes. A milter killed in the middle of a message (after DATA, and while it works on the
end of message) makes that message get the default action: nothing queued, nothing delivered,
nothing half-written."""
import os
import re
import signal
import smtplib
import socket
import subprocess
import time

from harness import BUILD_DIR, Estafette, free_port, last_reply_line, port_open, run, skip, wait_for

MILTER = os.path.join(BUILD_DIR, "tests", "milter", "test_milter")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Milter:
    """test_milter on 127.0.0.1:port, started and SIGKILLed by the test."""

    def __init__(self, tmp, port):
        self.port, self.log, self.proc = port, os.path.join(tmp, "test_milter.log"), None

    def start(self):
        # The port may still be held for a moment by the killed process's sockets.
        deadline = time.time() + 10
        while True:
            self.proc = subprocess.Popen([MILTER, "inet:%d@127.0.0.1" % self.port],
                                         stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
            try:
                wait_for(lambda: port_open(self.port) or self.proc.poll() is not None, 10,
                         "test_milter on %d" % self.port)
            except AssertionError:
                self.stop()
                raise
            if self.proc.poll() is None:
                return self
            check(time.time() < deadline, "test_milter could not listen on %d again" % self.port)
            time.sleep(0.2)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def message(subject, to="user@estafette.test"):
    return ("From: <s@example.test>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Message-ID: <%s@example.test>\r\n\r\nhello\r\n"
            % (to, subject, subject.replace(" ", "-"))).encode()


def session(mta, subject):
    """One SMTP session sending one message: (code, text, seconds) of the first refusal or of
    the end of data."""
    t0 = time.time()
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        code, text = s.mail("s@example.test")
        if code == 250:
            code, text = s.rcpt("user@estafette.test")
        if code == 250:
            code, text = s.data(message(subject))
    return code, text, time.time() - t0


def raw_session(mta, subject, after_data=None, after_dot=None):
    """A session over a raw socket: after_data() runs once DATA got 354, after_dot() once the
    final dot is sent; returns (end-of-data reply line, seconds from the dot to the reply)."""
    s = socket.create_connection(("127.0.0.1", mta.port), timeout=30)
    f = s.makefile("rb")

    def reply():
        return last_reply_line(f)

    reply()
    for cmd in (b"EHLO client.test", b"MAIL FROM:<s@example.test>",
                b"RCPT TO:<user@estafette.test>", b"DATA"):
        s.sendall(cmd + b"\r\n")
        got = reply()
    check(got.startswith(b"354"), "DATA: %r" % got)
    if after_data:
        after_data()
    s.sendall(message(subject) + b".\r\n")
    t0 = time.time()
    if after_dot:
        after_dot()
    got = reply()
    took = time.time() - t0
    s.sendall(b"QUIT\r\n")
    s.close()
    return got, took


def delivered_count(mta):
    return len(mta.maildir_messages("user"))


def expect_delivered(mta, n, subject):
    wait_for(lambda: delivered_count(mta) >= n, 15, "delivery of %r" % subject)
    got = mta.maildir_messages("user")[n - 1]
    check(("Subject: " + subject).encode() in got and b"X-Test-Milter: ok" in got,
          "%r was not filtered by the milter: %r" % (subject, got[:600]))


def nothing_more(mta, n, what):
    time.sleep(1)
    check(delivered_count(mta) == n, what + ": a message was delivered")
    check(not mta.queue_files(), what + ": a message is still queued: %r" % mta.queue_files())


def test(tmp, stoppers):
    if not os.access(MILTER, os.X_OK):
        skip("tests/milter/test_milter is not built")
    milter = Milter(tmp, free_port())
    stoppers.append(milter)
    milter.start()
    mta = Estafette(tmp, filters="milter:inet:%d@127.0.0.1" % milter.port,
                    milter_default_action="tempfail", milter_connect_timeout="20s")
    stoppers.append(mta)
    mta.start()
    pids = sorted(mta.esmtpd_pids())

    code, text, _ = session(mta, "first")
    check(code == 250, "through the live milter: %d %r" % (code, text))
    expect_delivered(mta, 1, "first")

    # Dead: each new session gets the default action at once (connection refused), no hang.
    milter.kill()
    for k in range(3):
        code, text, took = session(mta, "dead %d" % k)
        check(code == 451, "milter dead, session %d: %d %r" % (k, code, text))
        check(took < 8, "milter dead, session %d took %.1fs" % (k, took))
    nothing_more(mta, 1, "milter dead")
    check("connect: Connection refused" in mta.read_log(), "no log line for the dead milter")

    # Started again on the same port: filtered and delivered, by the same esmtpd processes.
    milter.start()
    code, text, _ = session(mta, "second")
    check(code == 250, "milter back: %d %r" % (code, text))
    expect_delivered(mta, 2, "second")
    check(sorted(mta.esmtpd_pids()) == pids, "esmtpd was restarted: %r, was %r"
          % (sorted(mta.esmtpd_pids()), pids))
    print("milter SIGKILLed: 3 sessions answered 451 at once; started again: filtered and "
          "delivered by the same esmtpd (pids %s)" % pids)

    # Killed after DATA, before the message's bytes: the end of data gets the default action.
    got, took = raw_session(mta, "killed after data", after_data=milter.kill)
    check(got.startswith(b"451"), "killed after DATA: %r" % got)
    check(took < 8, "killed after DATA: the reply took %.1fs" % took)
    nothing_more(mta, 2, "killed after DATA")
    closed = (r'filter session=\S+ phase=%s verdict=tempfail filter=inet:%d@127\.0\.0\.1 '
              r'reason="milter [^"]*closed')
    # The milter's part of the message starts with the first header, once DATA is all in.
    check(re.search(closed % ("header", milter.port), mta.read_log()),
          "no phase=header log line for the milter killed after DATA")

    # Killed while it works on the end of message ("Subject: slow": 0.8 s at eom).
    milter.start()
    got, took = raw_session(mta, "slow", after_dot=lambda: (time.sleep(0.3), milter.kill()))
    check(got.startswith(b"451"), "killed at end of message: %r" % got)
    check(took < 8, "killed at end of message: the reply took %.1fs" % took)
    nothing_more(mta, 2, "killed at end of message")
    check(re.search(closed % ("eom", milter.port), mta.read_log()),
          "no phase=eom log line for the milter killed during eom")

    # And back once more: the same esmtpd filters and delivers again.
    milter.start()
    code, text, _ = session(mta, "third")
    check(code == 250, "milter back after the mid-message kill: %d %r" % (code, text))
    expect_delivered(mta, 3, "third")
    check(sorted(mta.esmtpd_pids()) == pids, "esmtpd was restarted")
    print("milter SIGKILLed after DATA and during eom: 451 (%.2fs), nothing queued or "
          "delivered; the next session is filtered again" % took)
    mta.stop()


run(test)
