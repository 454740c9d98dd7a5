#!/usr/bin/env python3
"""Issue 19 on real daemons: libmilter filters written as public milters are, loaded as modules
with their arguments, and the log lines of filter failures.

- tests/unit/filters/modules/sendmail_sample.so (sendmail's sample.html: getopt, a required -p,
  exit(EX_USAGE) without it): without arguments `estafette check-config` reports the exit and
  its stderr line and esmtpd refuses to start with that error (its main() ran in a child); with
  `"module:... -p inet:... -a ... -d DIR"` it archives the message, adds X-Archived and the
  recipient, and the message is delivered with both.
- Each failure kind's esmtpd line carries reason="..." and a session id PID.N: a milter that hangs
  (timeout, with the phase and milter_content_timeout's limit), one that answers garbage (bad
  reply), a closed port (refused), one that closes (closed), a module whose callback outlives
  milter_command_timeout (never resumed). A multi-line REPLYCODE is logged escaped, on one line.
- With two esmtpd processes, every session's id is unique and starts with its process's pid."""
import os
import re
import smtplib
import subprocess

from harness import BUILD_DIR, Estafette, free_port, run, skip, wait_for
import hostile_milter as hm

MODULES = os.path.join(BUILD_DIR, "tests", "unit", "filters", "modules")
SAMPLE = os.path.join(MODULES, "sendmail_sample.so")
SLOW = os.path.join(MODULES, "slow_milter.so")
MSG = (b"From: <s@example.test>\r\nTo: <user@estafette.test>\r\nSubject: logs\r\n"
       b"Message-ID: <logs@example.test>\r\n\r\nhello\r\n")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def send(mta, sender="s@example.test", rcpt="user@estafette.test"):
    """(code, text) of the DATA reply (or of the first refusal before it)."""
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=60) as s:
        s.ehlo("client.test")
        code, text = s.mail(sender)
        if code == 250:
            code, text = s.rcpt(rcpt)
        if code == 250:
            code, text = s.data(MSG)
        return code, text


def filter_lines(log):
    return [line for line in log.splitlines() if " filter session=" in line]


def module_arguments(tmp, stoppers):
    bare = Estafette(tmp, name="bare", filters="module:" + SAMPLE)
    r = subprocess.run([bare.program("estafette"), "check-config", "-c", bare.conf],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode(errors="replace")
    check(r.returncode != 0, "check-config accepted a module whose main() exits: " + out)
    check("module %s: exited with status 64 while loading" % SAMPLE in out, out)
    check("Missing required -p argument" in out, "the module's stderr line is not shown: " + out)
    stoppers.append(bare)
    try:
        bare.start()  # may see the listener estafetted binds before esmtpd fails
    except AssertionError:
        pass
    # esmtpd exits with the error at start; estafetted gives the start up and stops.
    wait_for(lambda: bare.proc.poll() is not None, 30, "estafetted to give the start up")
    check(bare.proc.returncode != 0, "estafetted exited 0")
    everything = bare.read_log()
    out_file = os.path.join(bare.dir, "estafetted.out")
    if os.path.exists(out_file):
        everything += open(out_file, errors="replace").read()
    check("exited with status 64 while loading" in everything,
          "no clear start error: " + everything[-2000:])

    archive = os.path.join(tmp, "archive")
    os.makedirs(archive)
    mta = Estafette(tmp, name="args",
                    filters='"module:%s -p inet:9999@127.0.0.1 -a <archive@estafette.test> -d %s"'
                    % (SAMPLE, archive))
    stoppers.append(mta)
    mta.start()
    code, text = send(mta)
    check(code == 250, "with its arguments: %d %r" % (code, text))
    wait_for(lambda: mta.maildir_messages("user") and mta.maildir_messages("archive"), 15,
             "delivery to user and to the added archive recipient")
    got = mta.maildir_messages("user")[0]
    m = re.search(rb"\nX-Archived: (msg\.\w+)@", got)
    check(m is not None, "no X-Archived header: %r" % got[:600])
    archived = open(os.path.join(archive, m.group(1).decode()), "rb").read()
    check(archived.endswith(b"\r\nhello\r\n") and b"Subject: logs\r\n" in archived,
          "archive file: %r" % archived)


def failure_reasons(tmp, stoppers):
    hang = hm.HostileMilter("hang")
    garbage = hm.HostileMilter("garbage")
    closing = hm.HostileMilter("close")
    stoppers.extend([hang, garbage, closing])
    closed_port = free_port()
    cases = [
        ("hang", hang.spec(), r'reason="milter inet:\d+@127\.0\.0\.1: timeout: no reply to '
                              r'connect within 1s \(milter_command_timeout\)"'),
        ("garbage", garbage.spec(), r'reason="milter inet:\d+@127\.0\.0\.1: bad reply: '),
        ("refused", "milter:inet:%d@127.0.0.1" % closed_port,
         r'reason="milter inet:\d+@127\.0\.0\.1: connect: Connection refused"'),
        ("close", closing.spec(), r'reason="milter inet:\d+@127\.0\.0\.1: closed: (the milter '
                                  r'(closed|reset) the connection|write: )'),
    ]
    for name, spec, want in cases:
        mta = Estafette(tmp, name="fail-" + name, filters=spec, milter_command_timeout="1s",
                        milter_connect_timeout="1s")
        stoppers.append(mta)
        mta.start()
        code, text = send(mta)
        check(code == 451, "%s: got %d %r" % (name, code, text))
        lines = filter_lines(mta.read_log())
        check(any(re.search(r"filter session=\d+\.\d+ phase=\w+ verdict=tempfail filter=\S+ "
                            + want, line) for line in lines),
              "%s: no line with the reason: %r" % (name, lines))
        mta.stop()

    # A module whose callback is still running when milter_command_timeout ends (slow_milter
    # sleeps 300 ms at MAIL FROM:<slow@example.test>).
    mta = Estafette(tmp, name="fail-pending", filters="module:" + SLOW,
                    milter_command_timeout="100ms")
    stoppers.append(mta)
    mta.start()
    code, text = send(mta, sender="slow@example.test")
    check(code == 451, "never resumed: got %d %r" % (code, text))
    lines = filter_lines(mta.read_log())
    check(any(re.search(r'filter session=\d+\.\d+ phase=mail verdict=tempfail filter=slow '
                        r'reason="module slow: never resumed: mail still pending after 100ms '
                        r'\(milter_command_timeout\)"', line) for line in lines),
          "never resumed: %r" % lines)
    mta.stop()

    # A multi-line reply: logged escaped, on its line.
    milter = hm.HostileMilter()
    stoppers.append(milter)
    mta = Estafette(tmp, name="multiline", filters=milter.spec())
    stoppers.append(mta)
    mta.start()
    milter.set(b"", final=hm.reply_code(b"550-5.7.1 first line\r\n550 5.7.1 second \"line\""))
    code, text = send(mta)
    check(code == 550, "multi-line: got %d %r" % (code, text))
    log = mta.read_log()
    check('verdict=replycode filter=inet:' in log and
          r'text="550-5.7.1 first line\r\n550 5.7.1 second \"line\""' in log,
          "multi-line reply not escaped: %r" % filter_lines(log))
    check("\n550 5.7.1 second" not in log, "a raw line end in the log")
    mta.stop()


def unique_sessions(tmp, stoppers):
    mta = Estafette(tmp, name="sessions", esmtpd_processes="2")
    stoppers.append(mta)
    mta.start()
    for _ in range(12):
        with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
            s.ehlo("client.test")
    pids = set(mta.esmtpd_pids())
    check(len(pids) == 2, "esmtpd processes: %r" % pids)
    wait_for(lambda: len(re.findall(r"disconnect session=", mta.read_log())) >= 12, 15,
             "twelve disconnect lines")
    ids = re.findall(r"disconnect session=(\S+)", mta.read_log())
    check(len(ids) == len(set(ids)), "a session id twice: %r" % ids)
    for sid in ids:
        m = re.fullmatch(r"(\d+)\.(\d+)", sid)
        check(m is not None and int(m.group(1)) in pids, "id %s is not PID.N of an esmtpd %r"
              % (sid, pids))


def test(tmp, stoppers):
    for path in (SAMPLE, SLOW):
        if not os.path.exists(path):
            skip(path + " is not built (make check builds it)")
    module_arguments(tmp, stoppers)
    failure_reasons(tmp, stoppers)
    unique_sessions(tmp, stoppers)


run(test)
