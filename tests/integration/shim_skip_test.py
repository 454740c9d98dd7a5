#!/usr/bin/env python3
"""Issue 19, the shim: a libmilter filter's SMFIS_SKIP ends the body of that message only.

tests/unit/filters/modules/skip_milter.c has body and eom callbacks and no envfrom, so esmtpd
skips its MAIL stage (the shim gives no native callback for a stage the filter did not register)
and the shim cannot reset the skip at MAIL. Two 200 KB messages in one session, each body given
in 64 KB chunks as libmilter does: the first holds "skip-rest" in its first chunk (one body call,
then skipped), the second does not and must be read whole again (four body calls). Each
delivered message carries the filter's count, X-Body-Calls."""
import os
import re
import smtplib

from harness import BUILD_DIR, Estafette, run, skip, wait_for

MODULE = os.path.join(BUILD_DIR, "tests", "unit", "filters", "modules", "skip_milter.so")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def message(subject, first_line):
    filler = ("x" * 998 + "\r\n") * 200  # 200 KB: four 64 KB chunks
    return ("From: <s@example.test>\r\nTo: <user@estafette.test>\r\nSubject: %s\r\n"
            "Message-ID: <%s@example.test>\r\n\r\n%s\r\n%s" % (subject, subject, first_line,
                                                                filler)).encode()


def test(tmp, stoppers):
    if not os.path.exists(MODULE):
        skip(MODULE + " is not built (make check builds it)")
    mta = Estafette(tmp, filters="module:" + MODULE)
    stoppers.append(mta)
    mta.start()
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.sendmail("s@example.test", ["user@estafette.test"], message("first", "skip-rest"))
        s.sendmail("s@example.test", ["user@estafette.test"], message("second", "read all"))
    wait_for(lambda: len(mta.maildir_messages("user")) == 2, 20, "both deliveries")
    calls = {}
    for m in mta.maildir_messages("user"):
        subject = re.search(rb"\nSubject: (\w+)", m).group(1).decode()
        found = re.search(rb"\nX-Body-Calls:\s*(\d+)", m)
        check(found, "no X-Body-Calls in the %s message" % subject)
        calls[subject] = int(found.group(1))
    print("body calls: %r" % calls)
    check(calls == {"first": 1, "second": 4},
          "the skip of the first message's body must not reach the second: %r" % calls)
    mta.stop()


run(test)
