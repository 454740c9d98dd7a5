#!/usr/bin/env python3
"""Issue 19 on real sockets: a slow libmilter callback delays only its own session.

A real estafetted (one esmtpd process) loads tests/unit/filters/modules/slow_milter.so (a
libmilter-API filter built with the shim) as `module:`. SLOW sessions (more than the shim's old
fixed pool of 4 workers) send MAIL FROM:<sleep-5@example.test>, whose eom callback sleeps 5 s.
While they sleep:
- FAST other sessions, all at once, each EHLO and a whole transaction: each EHLO and each
  transaction must take under 1 s (with the old 4 workers they waited for the sleepers);
- the slow sessions get their 451 after milter_content_timeout (1 s), their callbacks still
  asleep; a new session is then still fast;
- esmtpd has at least one thread per sleeping callback more than before.
Afterwards every callback woke and xxfi_close ran for every session; the fast messages are
delivered. (Idle workers retiring is checked in tests/unit/filters/worker_pool_test.cc, where
the idle time can be short.)"""
import os
import smtplib
import threading
import time

from harness import BUILD_DIR, Estafette, run, skip, status_kb, wait_for

SLOW_MODULE = os.path.join(BUILD_DIR, "tests", "unit", "filters", "modules", "slow_milter.so")
SLOW = 6
FAST = 10
SLEEP = 5
LIMIT = 1.0  # seconds, for an EHLO and for a whole transaction


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def message(n):
    return ("From: <fast%d@example.test>\r\nTo: <user@estafette.test>\r\nSubject: fast %d\r\n"
            "Message-ID: <fast%d@example.test>\r\n\r\nbody %d\r\n" % (n, n, n, n)).encode()


def fast_session(port, n, results):
    """Times EHLO (from connect) and MAIL..DATA; results[n] = (ehlo_s, transaction_s, code)."""
    try:
        start = time.monotonic()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            code, _ = s.ehlo("fast%d.test" % n)
            ehlo = time.monotonic() - start
            check(code == 250, "EHLO: %d" % code)
            start = time.monotonic()
            s.mail("fast%d@example.test" % n)
            s.rcpt("user@estafette.test")
            code, _ = s.data(message(n))
            results[n] = (ehlo, time.monotonic() - start, code)
    except Exception as e:  # reported by the main thread
        results[n] = (None, None, repr(e))


def slow_session(port, n, results):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            s.ehlo("slow%d.test" % n)
            s.mail("sleep-%d@example.test" % SLEEP)
            s.rcpt("user@estafette.test")
            start = time.monotonic()
            code, text = s.data(b"Subject: slow\r\n\r\nslow\r\n")
            results[n] = (code, time.monotonic() - start)
    except Exception as e:
        results[n] = (repr(e), None)


def run_fast(port, count, first):
    results = {}
    threads = [threading.Thread(target=fast_session, args=(port, first + i, results))
               for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    check(len(results) == count, "fast sessions did not finish: %r" % results)
    for n, (ehlo, transaction, code) in sorted(results.items()):
        check(code == 250, "fast session %d: %r" % (n, code))
        check(ehlo < LIMIT, "fast session %d waited %.2f s for EHLO" % (n, ehlo))
        check(transaction < LIMIT, "fast session %d: transaction took %.2f s" % (n, transaction))
    return results


def notes(path, what):
    try:
        with open(path) as f:
            return sum(1 for line in f if line.strip() == what)
    except FileNotFoundError:
        return 0


def test(tmp, stoppers):
    if not os.path.exists(SLOW_MODULE):
        skip(SLOW_MODULE + " is not built (make check builds it)")
    calls = os.path.join(tmp, "calls.log")
    mta = Estafette(tmp, filters='"module:%s -l %s"' % (SLOW_MODULE, calls),
                    esmtpd_processes="1", milter_content_timeout="1s")
    stoppers.append(mta)
    mta.start()
    [esmtpd] = mta.esmtpd_pids()
    run_fast(mta.port, 1, 0)  # the module is loaded and its first workers run
    threads_before = status_kb(esmtpd, "Threads")

    slow_results = {}
    slow = [threading.Thread(target=slow_session, args=(mta.port, n, slow_results))
            for n in range(SLOW)]
    began = time.monotonic()
    for t in slow:
        t.start()
    wait_for(lambda: notes(calls, "eom-sleep") == SLOW, 10, "%d callbacks asleep" % SLOW)
    threads_asleep = status_kb(esmtpd, "Threads")
    check(threads_asleep >= threads_before + SLOW - 1,
          "esmtpd threads: %d before, %d with %d callbacks asleep"
          % (threads_before, threads_asleep, SLOW))

    fast = run_fast(mta.port, FAST, 1)
    check(notes(calls, "eom-woke") == 0 and time.monotonic() - began < SLEEP,
          "the fast sessions ran after the sleepers woke: the test proves nothing")

    # The slow sessions time out (milter_content_timeout); their callbacks sleep on.
    for t in slow:
        t.join(30)
    check(len(slow_results) == SLOW, "slow sessions did not finish: %r" % slow_results)
    for n, (code, took) in sorted(slow_results.items()):
        check(code == 451, "slow session %d: %r" % (n, code))
        check(took < SLEEP - 1, "slow session %d: 451 after %.2f s, not at the timeout"
              % (n, took))
    after = run_fast(mta.port, 1, FAST + 1)
    check(notes(calls, "eom-woke") == 0 and time.monotonic() - began < SLEEP,
          "the session after the timeout ran when the sleepers had woken: it proves nothing")

    # Every timed-out callback returns, and xxfi_close runs for every session.
    wait_for(lambda: notes(calls, "eom-woke") == SLOW, SLEEP + 10, "the sleepers to wake")
    sessions = 1 + SLOW + FAST + 1
    # (`estafette status` at start opens a session of its own)
    wait_for(lambda: notes(calls, "close") >= sessions, 10, "xxfi_close for every session")
    check(notes(calls, "envfrom") == sessions, "MAIL FROM calls: %d" % notes(calls, "envfrom"))
    wait_for(lambda: len(mta.maildir_messages("user")) == 1 + FAST + 1, 20,
             "the fast messages delivered")
    check(" worker threads are busy" not in mta.read_log(), "the pool reached its bound")
    worst = max(r[0] for r in list(fast.values()) + list(after.values()))
    print("threads: %d before, %d asleep; worst fast EHLO %.3f s" %
          (threads_before, threads_asleep, worst))


run(test)
