#!/usr/bin/env python3
"""Issue 19 on real sockets: a slow libmilter callback delays only its own session.

A real estafetted (one esmtpd process) loads tests/unit/filters/modules/slow_milter.so (a
libmilter-API filter built with the shim) as `module:`. SLOW sessions (more than the shim's old
fixed pool of 4 workers) send MAIL FROM:<sleep-8@example.test>, whose eom callback sleeps 8 s.
While they sleep:
- FAST other sessions, all at once, each EHLO and a whole transaction: each EHLO and each
  transaction must take under LIMIT (2.5 s) (with the old 4 workers they waited for the sleepers);
- the slow sessions get their 451 after milter_content_timeout (1 s), their callbacks still
  asleep; a new session is then still fast;
- esmtpd has at least one thread per sleeping callback more than before.
Afterwards every callback woke and xxfi_close ran for every session; the fast messages are
delivered. (Idle workers retiring is checked in tests/unit/filters/worker_pool_test.cc, where
the idle time can be short.)

At the bound: BOUND + 6 sessions whose callbacks sleep 3 s. 64 sleep at once, no more (esmtpd has
at most 64 threads more), the others wait for a worker; esmtpd logs that once, with the module's
name; when the sleepers wake the others run, and every session gets the filter's 550."""
import os
import smtplib
import threading
import time

from harness import BUILD_DIR, Estafette, run, skip, status_kb, wait_for

SLOW_MODULE = os.path.join(BUILD_DIR, "tests", "unit", "filters", "modules", "slow_milter.so")
SLOW = 6
FAST = 10
SLEEP = 8  # long enough that the fast sessions run while the sleepers sleep, also under load
LIMIT = 2.5  # seconds, for an EHLO and for a whole transaction (the old pool: SLEEP)
BOUND = 64  # the shim's workers per module per process (shim.cc, kWorkerLimits)


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


def slow_session(port, n, results, seconds=SLEEP):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            s.ehlo("slow%d.test" % n)
            s.mail("sleep-%d@example.test" % seconds)
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


def at_the_bound(tmp, stoppers):
    calls = os.path.join(tmp, "bound-calls.log")
    mta = Estafette(tmp, name="bound", filters='"module:%s -l %s"' % (SLOW_MODULE, calls),
                    esmtpd_processes="1")
    stoppers.append(mta)
    mta.start()
    [esmtpd] = mta.esmtpd_pids()
    threads_before = status_kb(esmtpd, "Threads")
    count, seconds = BOUND + 6, 3
    results = {}
    sessions = [threading.Thread(target=slow_session, args=(mta.port, n, results, seconds))
                for n in range(count)]
    for t in sessions:
        t.start()
    wait_for(lambda: notes(calls, "eom-sleep") >= BOUND, 15, "%d callbacks asleep" % BOUND)
    time.sleep(0.5)
    asleep, woke = notes(calls, "eom-sleep"), notes(calls, "eom-woke")
    threads = status_kb(esmtpd, "Threads")
    check(woke == 0, "the sleepers woke too early for this check (%d)" % woke)
    check(asleep == BOUND, "%d callbacks asleep at once, the bound is %d" % (asleep, BOUND))
    check(threads <= threads_before + BOUND, "esmtpd threads: %d before, %d at the bound"
          % (threads_before, threads))
    for t in sessions:
        t.join(60)
    check(sorted(results) == list(range(count)), "sessions did not finish: %r" % results)
    check(all(code == 550 for code, _ in results.values()),
          "answers: %r" % sorted(set(str(code) for code, _ in results.values())))
    check(notes(calls, "eom-woke") == count, "woke: %d" % notes(calls, "eom-woke"))
    log = mta.read_log()
    line = "libmilter shim: slow: all %d worker threads are busy" % BOUND
    check(log.count(line) == 1, "%d lines %r" % (log.count(line), line))
    mta.stop()


def test(tmp, stoppers):
    if not os.path.exists(SLOW_MODULE):
        skip(SLOW_MODULE + " is not built (make check builds it)")
    at_the_bound(tmp, stoppers)
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
