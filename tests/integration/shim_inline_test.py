#!/usr/bin/env python3
"""Issue 19: `module-inline:` runs a libmilter filter's callbacks on esmtpd's event loop (the
host's ESTAFETTE_HOST_ON_LOOP flag), where `module:` runs them on the shim's worker threads.

tests/unit/filters/modules/slow_milter.c (built with the shim), esmtpd_processes = 1, the
default filter_callback_warn_time (100 ms): MAIL FROM:<slow@example.test> sleeps 300 ms in the
envfrom callback.
- module-inline: that callback holds the loop, and esmtpd logs it ("phase=mail held the event
  loop 0.3xxs") with the module's name; a message's Subject comes back at eom as the filter's
  X-Slow-Subject header (its requests are taken during the callback); a bad sfsistat (MAIL
  FROM:<bad@...>) is the filter's failure (451); the calls log shows each callback once.
- module: (the same .so, for contrast): the same sleep logs no loop hold (a worker ran it)."""
import os
import re
import smtplib

from harness import BUILD_DIR, Estafette, run, skip, wait_for

MODULE = os.path.join(BUILD_DIR, "tests", "unit", "filters", "modules", "slow_milter.so")
MSG = (b"From: <s@example.test>\r\nTo: <user@estafette.test>\r\nSubject: inline\r\n"
       b"Message-ID: <inline@example.test>\r\n\r\nhello\r\n")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def held_lines(log):
    return re.findall(r"filter session=\S+ module=(\S+) phase=mail held the event loop "
                      r"(\d+\.\d{3})s", log)


def session(mta):
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        code, _ = s.mail("slow@example.test")
        check(code == 250, "MAIL slow: %d" % code)
        s.rset()
        code, _ = s.mail("bad@example.test")
        check(code == 451, "MAIL with a bad sfsistat: %d" % code)
        s.rset()
        s.sendmail("s@example.test", ["user@estafette.test"], MSG)


def test(tmp, stoppers):
    if not os.path.exists(MODULE):
        skip(MODULE + " is not built (make check builds it)")
    calls = os.path.join(tmp, "calls.log")
    mta = Estafette(tmp, name="inline", filters='"module-inline:%s -l %s"' % (MODULE, calls),
                    esmtpd_processes="1")
    stoppers.append(mta)
    mta.start()
    session(mta)
    wait_for(lambda: mta.maildir_messages("user"), 15, "the delivery")
    got = mta.maildir_messages("user")[0]
    check(re.search(rb"\nX-Slow-Subject: ?inline\n", got), "no X-Slow-Subject: %r" % got[:400])
    held = held_lines(mta.read_log())
    print("module-inline: loop held %r" % held)
    check(len(held) == 1 and 0.29 <= float(held[0][1]) < 3.0,
          "one loop hold of about 300 ms expected: %r" % held)
    with open(calls) as f:
        noted = f.read().split()
    check(noted.count("envfrom-done") == 1 and noted.count("eom") == 1,
          "calls: %r" % noted)
    mta.stop()

    threaded = Estafette(tmp, name="threaded", filters="module:" + MODULE, esmtpd_processes="1")
    stoppers.append(threaded)
    threaded.start()
    session(threaded)
    wait_for(lambda: threaded.maildir_messages("user"), 15, "the delivery (module:)")
    held = held_lines(threaded.read_log())
    check(held == [], "module: ran the callback on the loop? %r" % held)
    print("module: no loop hold (the callback ran on a worker)")
    threaded.stop()


run(test)
