#!/usr/bin/env python3
"""Issue 13, hostile-peer suite: many RCPTs with filters. Four clients at once pipeline a MAIL and
1,200 RCPTs each through a real libmilter filter (tests/milter/test_milter, which answers 451 to
<tempfail@example.test>, so its replies prove it saw each RCPT). Each session gets the milter's
451 for those, 250 for the others up to max_recipients (1000), then 452 4.5.3 without asking the
milter; its message reaches the sink for exactly 1,000 recipients; a plain client completes a
transaction while the floods run; the esmtpd processes' peak RSS grows by a few MiB at most."""
import os
import smtplib
import socket
import threading
import time

import harness
from harness import BUILD_DIR, Estafette, SmtpSink, free_port, port_open, run, skip, wait_for

MILTER = os.path.join(BUILD_DIR, "tests", "milter", "test_milter")
CLIENTS = 4
RCPTS = 1200
LIMIT = 1000


def check(cond, what):
    if not cond:
        raise AssertionError(what)


class Milter(harness.ServerProcess):
    def __init__(self, tmp):
        self.port = free_port()
        self.log = os.path.join(tmp, "test_milter-%d.log" % self.port)
        self.proc = None

    def start(self):
        self.spawn([MILTER, "inet:%d@127.0.0.1" % self.port], "test_milter")
        wait_for(lambda: port_open(self.port), 10, "test_milter")
        return self


def recipient(k):
    return "tempfail@example.test" if k % 100 == 50 else "r%04d@far.test" % k


def read_replies(sock, count):
    """The next `count` complete replies (last lines only), as (code, text)."""
    data, out = b"", []
    while len(out) < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed after %d replies" % len(out))
        data += chunk
        while b"\r\n" in data and len(out) < count:
            line, data = data.split(b"\r\n", 1)
            if line[3:4] != b"-":
                out.append((int(line[:3]), line[4:].decode("latin-1")))
    return out


def flood(port, k, results):
    """One hostile session: EHLO, then MAIL and RCPTS RCPTs pipelined in one write, then DATA."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        read_replies(s, 1)
        s.sendall(b"EHLO flood%d.test\r\n" % k)
        read_replies(s, 1)
        cmds = [b"MAIL FROM:<s%d@example.test>\r\n" % k]
        cmds += [b"RCPT TO:<%s>\r\n" % recipient(i).encode() for i in range(RCPTS)]
        s.sendall(b"".join(cmds))
        replies = read_replies(s, 1 + RCPTS)
        s.sendall(b"DATA\r\n")
        code, _ = read_replies(s, 1)[0]
        check(code == 354, "DATA: %d" % code)
        s.sendall(b"Subject: flood %d\r\nMessage-ID: <flood%d@example.test>\r\n\r\nx\r\n.\r\n"
                  % (k, k))
        replies.append(read_replies(s, 1)[0])
        s.sendall(b"QUIT\r\n")
        results[k] = replies


def test(tmp, stoppers):
    if not os.access(MILTER, os.X_OK):
        skip("tests/milter/test_milter is not built")
    milter = Milter(tmp).start()
    stoppers.append(milter)
    sink = SmtpSink(tmp).start()
    stoppers.append(sink)
    mta = Estafette(tmp, filters="milter:inet:%d@127.0.0.1" % milter.port,
                    relay_domains="far.test, example.test", max_recipients=str(LIMIT),
                    routes={"far.test": "127.0.0.1,%d" % sink.port,
                            "example.test": "127.0.0.1,%d" % sink.port})
    stoppers.append(mta)
    mta.start()
    pids = mta.esmtpd_pids()
    # One ordinary message first, so the idle figure includes a filtered transaction.
    mta.send("warm@example.test", ["warm@far.test"], b"Subject: warm\r\n\r\nx\r\n")
    before_kb = sum(harness.status_kb(p, "VmHWM") for p in pids)

    results = {}
    threads = [threading.Thread(target=flood, args=(mta.port, k, results))
               for k in range(CLIENTS)]
    for t in threads:
        t.start()
    # A plain client while the floods run.
    time.sleep(0.2)
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=60) as s:
        s.sendmail("plain@example.test", ["plain@far.test"], b"Subject: plain\r\n\r\nx\r\n")
    plain_s = time.monotonic() - started
    for t in threads:
        t.join(180)
    check(len(results) == CLIENTS, "only %d of %d floods finished" % (len(results), CLIENTS))
    peak_mb = (sum(harness.status_kb(p, "VmHWM") for p in pids) - before_kb) / 1024

    for k, replies in results.items():
        check(replies[0][0] == 250, "MAIL: %r" % (replies[0],))
        rcpts = replies[1:-1]
        accepted = 0
        for i, (code, text) in enumerate(rcpts):
            if accepted >= LIMIT:
                check(code == 452 and "4.5.3" in text, "RCPT %d past the limit: %d %s"
                      % (i, code, text))
            elif recipient(i).startswith("tempfail"):
                check(code == 451 and "4.7.1" in text, "RCPT %d (milter): %d %s" % (i, code, text))
            else:
                check(code == 250, "RCPT %d: %d %s" % (i, code, text))
                accepted += 1
        check(accepted == LIMIT, "session %d accepted %d recipients" % (k, accepted))
        check(replies[-1][0] == 250, "end of DATA: %r" % (replies[-1],))

    def delivered_rcpts():
        """Per flood message, the set of recipients the sink received it for (courierd splits
        a message over several transactions)."""
        got = {}
        for m in sink.messages():
            for k in range(CLIENTS):
                if b"Subject: flood %d\r\n" % k in m or b"Subject: flood %d\n" % k in m:
                    check(b"X-Test-Milter: ok" in m, "the milter did not see it: %r" % m[:300])
                    rcpts = [line for line in m.split(b"\n") if line.startswith(b"X-Rcpt-Args:")]
                    got.setdefault(k, set()).update(rcpts)
        return got if all(len(got.get(k, ())) == LIMIT for k in range(CLIENTS)) else None
    wait_for(delivered_rcpts, 60, "the %d flood messages at the sink, %d recipients each"
             % (CLIENTS, LIMIT))
    check(plain_s < 10, "a plain transaction took %.1f s during the floods" % plain_s)
    check(peak_mb < 24, "the esmtpd processes' peak RSS grew by %.1f MiB" % peak_mb)
    print("%d sessions x %d RCPTs through test_milter: 451 from the milter, 250 up to %d, then "
          "452; a plain transaction in %.2f s meanwhile; esmtpd processes peak RSS +%.1f MiB"
          % (CLIENTS, RCPTS, LIMIT, plain_s, peak_mb))
    mta.stop()


run(test)
