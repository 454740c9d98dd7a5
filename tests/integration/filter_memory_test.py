#!/usr/bin/env python3
"""Issue 13, item 5, on real sockets: many concurrent large messages through filters (a milter
that reads every body chunk, hostile_milter.py passing everything, and the in-process
filters/examples/native_example.so) keep one esmtpd process's peak RSS within a ceiling set by
message_memory_budget; clients over the budget get 452 4.3.1 (at DATA with SIZE, at the end of
the data without) and succeed when they try again; every message arrives byte for byte. Then a
10 MB header of `a:` lines is refused (552 5.3.4) without the process growing."""
import os
import smtplib
import socket
import threading
import time

from harness import BUILD_DIR, Estafette, last_reply_line, run, skip, status_kb, wait_for
import hostile_milter as hm

BUDGET_MB = 32
CLIENTS = 24
SIZE_MB = 6
# Peak RSS above the idle process: the budget plus the pieces in flight (milter packets, queue
# writes, a 64 KiB record piece per message being written). Without the budget and with four
# copies per message, 24 x 6 MB would be several hundred MB.
CEILING_MB = BUDGET_MB * 2 + 16


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def body_of(k):
    line = ("message %02d " % k + "0123456789abcdefghijklmnopqrstuvwxyz" * 2)[:76] + "\r\n"
    return (line * (SIZE_MB * 1024 * 1024 // len(line))).encode()


def message(k):
    return (b"From: <s@example.test>\r\nTo: <big%d@estafette.test>\r\nSubject: big %d\r\n\r\n"
            % (k, k)) + body_of(k)


class RawClient:
    """SMTP without SIZE=: the budget is only found out as the data grows."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.f = self.s.makefile("rb")
        self.reply()
        self.cmd(b"EHLO client.test")

    def reply(self):
        return last_reply_line(self.f)

    def cmd(self, text):
        self.s.sendall(text + b"\r\n")
        return self.reply()

    def send(self, rcpt, data):
        self.cmd(b"MAIL FROM:<s@example.test>")
        self.cmd(b"RCPT TO:<%s>" % rcpt.encode())
        r = self.cmd(b"DATA")
        if not r.startswith(b"354"):
            self.cmd(b"RSET")
            return r
        self.s.sendall(data.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        return self.reply()

    def close(self):
        try:
            self.cmd(b"QUIT")
        finally:
            self.s.close()


def load(tmp, stoppers):
    module = os.path.join(BUILD_DIR, "filters", "examples", "native_example.so")
    if not os.path.exists(module):
        skip(module + " is not built")
    milter = hm.HostileMilter()
    stoppers.append(milter)
    mta = Estafette(tmp, name="load", esmtpd_processes="1", max_message_size="8M",
                    message_memory_budget="%dM" % BUDGET_MB,
                    filters="%s, module:%s" % (milter.spec(), module))
    stoppers.append(mta)
    mta.start()
    mta.send("s@example.test", ["warm@estafette.test"], b"Subject: warm\r\n\r\nhello\r\n")
    wait_for(lambda: mta.maildir_messages("warm"), 15, "warm-up delivery")
    pid = mta.esmtpd_pids()[0]
    idle_kb = status_kb(pid, "VmRSS")

    refused = {"at_data": 0, "at_end": 0}
    errors = []
    lock = threading.Lock()

    def client(k):
        data = message(k)
        deadline = time.time() + 240
        try:
            while time.time() < deadline:
                if k % 2 == 0:  # smtplib declares SIZE=
                    with smtplib.SMTP("127.0.0.1", mta.port, timeout=120) as s:
                        try:
                            s.sendmail("s@example.test", ["big%d@estafette.test" % k], data)
                            return
                        except smtplib.SMTPDataError as e:
                            check(e.smtp_code == 452, "client %d: %r" % (k, e))
                            with lock:
                                refused["at_data"] += 1
                else:
                    c = RawClient(mta.port)
                    r = c.send("big%d@estafette.test" % k, data)
                    c.close()
                    if r.startswith(b"250"):
                        return
                    check(r.startswith(b"452 4.3.1"), "client %d: %r" % (k, r))
                    with lock:
                        refused["at_end" if k % 2 else "at_data"] += 1
                time.sleep(0.2)
            raise AssertionError("client %d never got its message through" % k)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    t0 = time.time()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    took = time.time() - t0
    check(not errors, "clients: %r" % errors[:3])
    peak_kb = status_kb(pid, "VmHWM")
    grown_mb = (peak_kb - idle_kb) / 1024
    print("%d clients x %d MB through a milter and a module in %.1fs: esmtpd RSS idle %.1f MB, "
          "peak %.1f MB (+%.1f MB, ceiling +%d MB); 452 at DATA %d, at the end %d"
          % (CLIENTS, SIZE_MB, took, idle_kb / 1024, peak_kb / 1024, grown_mb, CEILING_MB,
             refused["at_data"], refused["at_end"]))
    check(grown_mb < CEILING_MB, "esmtpd grew by %.1f MB (ceiling %d MB)" % (grown_mb, CEILING_MB))
    check(refused["at_data"] + refused["at_end"] > 0, "the budget never refused a message")
    check(milter.bodies >= CLIENTS * SIZE_MB * 16, "the milter did not read the bodies: %d chunks"
          % milter.bodies)
    for k in range(CLIENTS):
        got = wait_for(lambda: mta.maildir_messages("big%d" % k), 60, "delivery to big%d" % k)[0]
        check(got.endswith(body_of(k).replace(b"\r\n", b"\n")),
              "big%d: the body differs (%d bytes)" % (k, len(got)))
        check(b"X-Estafette-Native:" in got, "big%d: no module header" % k)

    # 10 MB of "a:" lines: 552 as it arrives, and esmtpd does not grow for it.
    before_kb = status_kb(pid, "VmHWM")
    c = RawClient(mta.port)
    r = c.send("flood@estafette.test", b"a:\r\n" * (10 * 1024 * 1024 // 4) + b"\r\nbody\r\n")
    c.close()
    check(r.startswith(b"552 5.3.4"), "header flood: %r" % r)
    flood_mb = (status_kb(pid, "VmHWM") - before_kb) / 1024
    check(flood_mb < 8, "esmtpd grew by %.1f MB for the header flood" % flood_mb)
    print("10 MB of a: header lines: %s, peak RSS +%.1f MB" % (r.strip().decode(), flood_mb))
    mta.stop()


run(load)
