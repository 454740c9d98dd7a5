#!/usr/bin/env python3
"""Issue 19 on real daemons: a native module's callback that holds esmtpd's event loop is logged,
and a crash inside a module is logged with module, phase and session before esmtpd dies of it.

The module is tests/unit/filters/modules/misbehave.so (its callbacks sleep or crash when the
HELO name, MAIL FROM or RCPT TO asks).
- Loop hold (esmtpd_processes = 1): HELO sleep-2000 logs "filter session=PID.N module=misbehave
  phase=helo held the event loop 2.0xxs (filter_callback_warn_time 100ms)"; a 30 ms mail callback
  logs nothing; a module timer callback that sleeps 300 ms logs phase=timer.
- Crash (esmtpd_processes = 1): with 3 sessions mid-transaction (RCPT accepted), a 4th session's
  RCPT TO:<crash@...> segfaults in rcpt. The log has "esmtpd: crash: SIGSEGV (address 0x0) in
  filter session=PID.N module=misbehave phase=rcpt" from the dying process, estafetted logs it
  killed by signal 11 and starts a new esmtpd; the 3 bystanders are all cut (what a crash costs
  in-process: every session of that process); none of their mail is delivered (nothing was
  acknowledged); a new session delivers. abort() in rcpt logs SIGABRT the same way; a crash on a
  thread the module started is logged as not the loop thread, in the module's code, and one
  inside libc (abort(), strlen of a bad pointer on the module's thread) as "probably called
  from the code of module misbehave" (a return address into it on the thread's stack); a stack
  overflow in helo is logged too (the handler runs on an alternate stack); a SIGSEGV sent to
  esmtpd from outside is logged as not in a filter callback.
- Input during a hold (esmtpd_processes = 1): MAIL FROM:<wait-2000@...> is held 2 s by a module
  timer (the loop stays free); a RCPT sent 0.3 s into the hold, in its own packet, is answered
  after MAIL's 250, in order; esmtpd uses under 0.3 s of CPU during the hold (esmtpd keeps EPOLLIN
  through a hold and drops it when input comes: a level-triggered EPOLLIN left on would spin the
  loop), and another session's EHLO is answered within a second meanwhile.
- Two esmtpd processes: bystanders spread over both (by the kernel's SO_REUSEPORT hash; the test
  opens sessions until each process has some, and finds each session's process from /proc); a
  crash on one process cuts its sessions only: the other process's bystanders finish and their
  mail is delivered."""
import os
import re
import signal
import smtplib
import socket
import time

from harness import BUILD_DIR, Estafette, run, wait_for

MODULE = os.path.join(BUILD_DIR, "tests", "unit", "filters", "modules", "misbehave.so")
MSG = (b"From: <s@example.test>\r\nTo: <user@estafette.test>\r\nSubject: watch\r\n"
       b"Message-ID: <watch@example.test>\r\n\r\nhello\r\n")
CUT = (smtplib.SMTPServerDisconnected, ConnectionError, OSError)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def hold_lines(log, phase):
    return re.findall(r"filters: filter session=(\d+)\.\d+ module=misbehave phase=%s held the "
                      r"event loop (\d+\.\d{3})s \(filter_callback_warn_time 100ms\)" % phase, log)


def loop_hold(tmp, stoppers):
    mta = Estafette(tmp, name="hold", filters="module:" + MODULE, esmtpd_processes="1")
    stoppers.append(mta)
    mta.start()
    pid = mta.esmtpd_pids()[0]
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        started = time.monotonic()
        code, _ = s.ehlo("sleep-2000")
        took = time.monotonic() - started
        check(code == 250 and took >= 1.9, "EHLO sleep-2000: %d after %.3fs" % (code, took))
        # Under the threshold: nothing logged.
        started = time.monotonic()
        code, _ = s.mail("sleep-30@example.test")
        took = time.monotonic() - started
        check(code == 250 and took >= 0.03, "MAIL sleep-30: %d after %.3fs" % (code, took))
        s.rset()
        # A timer callback the module registered holds the loop 300 ms.
        code, _ = s.mail("timer-sleep-300@example.test")
        check(code == 250, "MAIL timer-sleep-300: %d" % code)
    wait_for(lambda: hold_lines(mta.read_log(), "timer"), 10, "the timer callback's warning")
    log = mta.read_log()
    helo = hold_lines(log, "helo")
    check(len(helo) == 1, "one helo warning expected: %r" % helo)
    check(int(helo[0][0]) == pid, "session id not of esmtpd %d: %r" % (pid, helo))
    check(1.95 <= float(helo[0][1]) < 4.0, "helo held %ss" % helo[0][1])
    check(hold_lines(log, "mail") == [], "a 30 ms callback was logged: %r" % hold_lines(log, "mail"))
    timer = hold_lines(log, "timer")
    check(len(timer) == 1 and 0.29 <= float(timer[0][1]) < 2.0, "timer: %r" % timer)
    mta.stop()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_replies(sock, count, timeout):
    """count SMTP replies' last lines, in order, within timeout seconds."""
    sock.settimeout(timeout)
    data = b""
    lines = []
    deadline = time.monotonic() + timeout
    while len(lines) < count:
        check(time.monotonic() < deadline, "replies so far: %r" % lines)
        chunk = sock.recv(4096)
        check(chunk, "closed after %r" % lines)
        data += chunk
        while b"\r\n" in data:
            line, data = data.split(b"\r\n", 1)
            if line[3:4] != b"-":
                lines.append(line.decode())
    return lines


def input_during_hold(tmp, stoppers):
    mta = Estafette(tmp, name="holdinput", filters="module:" + MODULE, esmtpd_processes="1")
    stoppers.append(mta)
    mta.start()
    pid = mta.esmtpd_pids()[0]
    with socket.create_connection(("127.0.0.1", mta.port), timeout=10) as sock:
        check(read_replies(sock, 1, 10)[0].startswith("220"), "no greeting")
        sock.sendall(b"EHLO client.test\r\n")
        check(read_replies(sock, 1, 10)[0].startswith("250"), "EHLO refused")
        started = time.monotonic()
        sock.sendall(b"MAIL FROM:<wait-2000@example.test>\r\n")
        time.sleep(0.3)
        sock.sendall(b"RCPT TO:<user@estafette.test>\r\n")
        cpu_before = cpu_seconds(pid)
        # Another session meanwhile: the loop is free.
        other_started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", mta.port, timeout=10) as other:
            code, _ = other.ehlo("other.test")
        other_took = time.monotonic() - other_started
        check(code == 250 and other_took < 1.0,
              "EHLO of another session during the hold: %d after %.3fs" % (code, other_took))
        time.sleep(max(0.0, started + 1.8 - time.monotonic()))
        cpu_used = cpu_seconds(pid) - cpu_before
        replies = read_replies(sock, 2, 10)
        took = time.monotonic() - started
        print("input during a hold: replies %r after %.3fs, esmtpd CPU %.2fs during the hold, "
              "other session's EHLO %.3fs" % (replies, took, cpu_used, other_took))
        check(replies[0].startswith("250") and replies[1].startswith("250"),
              "MAIL and RCPT: %r" % replies)
        check(took >= 1.95, "MAIL answered before the module resumed: %.3fs" % took)
        check(cpu_used < 0.3, "esmtpd used %.2fs of CPU while held (spinning?)" % cpu_used)
        sock.sendall(b"QUIT\r\n")
    mta.stop()


def open_mid_transaction(mta, n_rcpt="user@estafette.test"):
    """A session with MAIL and RCPT accepted, waiting before DATA."""
    s = smtplib.SMTP("127.0.0.1", mta.port, timeout=30)
    s.ehlo("client.test")
    code, text = s.mail("s@example.test")
    check(code == 250, "MAIL: %d %r" % (code, text))
    code, text = s.rcpt(n_rcpt)
    check(code == 250, "RCPT: %d %r" % (code, text))
    return s


def finish(s):
    """True when the session still completes DATA (250), False when it was cut."""
    try:
        code, _ = s.data(MSG)
        s.quit()
        return code == 250
    except CUT:
        return False
    finally:
        s.close()


def crash_rcpt(mta, rcpt):
    """A session whose RCPT kills its esmtpd: the connection must drop."""
    s = smtplib.SMTP("127.0.0.1", mta.port, timeout=30)
    s.ehlo("client.test")
    s.mail("s@example.test")
    try:
        code, text = s.rcpt(rcpt)
        raise AssertionError("RCPT %s answered %d %r" % (rcpt, code, text))
    except CUT:
        pass
    finally:
        s.close()


def crash_line(log, pid, signal_name):
    want = (r"\[%d\] esmtpd: crash: %s (?:\(address 0x0\) )?in filter session=%d\.\d+ "
            r"module=misbehave phase=rcpt(?:, in the code of module misbehave|, probably called "
            r"from the code of module misbehave)?; the process ends" % (pid, signal_name, pid))
    return re.search(want, log)


def new_esmtpd(mta, old):
    def replaced():
        try:
            pids = mta.esmtpd_pids()
        except AssertionError:
            return False
        return old not in pids and mta.status() == 0
    wait_for(replaced, 30, "estafetted to start a new esmtpd")
    return mta.esmtpd_pids()


def crash_one_process(tmp, stoppers):
    mta = Estafette(tmp, name="crash", filters="module:" + MODULE, esmtpd_processes="1")
    stoppers.append(mta)
    mta.start()
    old = mta.esmtpd_pids()[0]
    bystanders = [open_mid_transaction(mta) for _ in range(3)]
    crash_rcpt(mta, "crash@estafette.test")
    cut = sum(1 for s in bystanders if not finish(s))
    check(cut == 3, "with one esmtpd process a crash should cut all 3 bystanders; cut %d" % cut)
    wait_for(lambda: crash_line(mta.read_log(), old, "SIGSEGV"), 10, "the crash line")
    wait_for(lambda: re.search(r"esmtpd\S* pid=%d killed by signal 11" % old, mta.read_log()), 10,
             "estafetted to log esmtpd's death by SIGSEGV")
    pid = new_esmtpd(mta, old)[0]
    # The new process delivers; nothing of the cut sessions was queued.
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        check(s.sendmail("s@example.test", ["user@estafette.test"], MSG) == {}, "after restart")
    wait_for(lambda: mta.maildir_messages("user"), 15, "delivery after the restart")
    time.sleep(1)
    check(len(mta.maildir_messages("user")) == 1,
          "%d messages delivered, want 1 (the cut sessions were never acknowledged)"
          % len(mta.maildir_messages("user")))

    # abort() in rcpt: the signal is raised in libc, which the module called.
    crash_rcpt(mta, "abort@estafette.test")
    wait_for(lambda: crash_line(mta.read_log(), pid, "SIGABRT"), 10, "the SIGABRT line")
    check("SIGABRT in filter session=%d." % pid in mta.read_log() and
          "probably called from the code of module misbehave" in mta.read_log(),
          "abort() is not traced to the module that called it")
    pid2 = new_esmtpd(mta, pid)[0]

    # A thread the module started crashes: not the loop thread, in the module's code.
    crash_rcpt(mta, "thread-crash@estafette.test")
    want = (r"\[%d\] esmtpd: crash: SIGSEGV \(address 0x0\) on thread \d+ \(not the loop "
            r"thread\), in the code of module misbehave; the process ends" % pid2)
    wait_for(lambda: re.search(want, mta.read_log()), 10, "the other thread's crash line")
    pid3 = new_esmtpd(mta, pid2)[0]

    # That thread faults inside libc (strlen of a bad pointer): the module that called it is
    # found on the thread's stack.
    crash_rcpt(mta, "thread-libc-crash@estafette.test")
    want = (r"\[%d\] esmtpd: crash: SIGSEGV \(address 0x10\) on thread \d+ \(not the loop "
            r"thread\), probably called from the code of module misbehave; the process ends"
            % pid3)
    wait_for(lambda: re.search(want, mta.read_log()), 10, "the libc crash line")
    pid3 = new_esmtpd(mta, pid3)[0]

    # The loop thread's stack overflows in helo: the handler runs on its alternate stack.
    s = smtplib.SMTP("127.0.0.1", mta.port, timeout=30)
    try:
        code, text = s.ehlo("overflow")
        raise AssertionError("EHLO overflow answered %d %r" % (code, text))
    except CUT:
        pass
    finally:
        s.close()
    want = (r"\[%d\] esmtpd: crash: SIGSEGV \(address 0x[0-9a-f]+\) in filter session=%d\.\d+ "
            r"module=misbehave phase=helo, in the code of module misbehave; the process ends"
            % (pid3, pid3))
    wait_for(lambda: re.search(want, mta.read_log()), 10, "the stack overflow's crash line")
    pid4 = new_esmtpd(mta, pid3)[0]

    # Not in a module at all: SIGSEGV sent from outside (kill: no fault address).
    os.kill(pid4, signal.SIGSEGV)
    want = (r"\[%d\] esmtpd: crash: SIGSEGV (on the loop thread, not in a filter callback|on "
            r"thread \d+ \(not the loop thread\)); the process ends" % pid4)
    wait_for(lambda: re.search(want, mta.read_log()), 10, "the crash line outside a module")
    new_esmtpd(mta, pid4)
    mta.stop()


def server_pid(sock, port, pids):
    """The esmtpd pid holding the server side of the client socket sock, or None."""
    local = sock.getsockname()[1]
    want_local = "0100007F:%04X" % port
    want_remote = "0100007F:%04X" % local
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want_local and fields[2] == want_remote:
                inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        fd_dir = "/proc/%d/fd" % pid
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(os.path.join(fd_dir, fd)) == "socket:[%s]" % inode:
                    return pid
            except OSError:
                continue
    return None


def crash_two_processes(tmp, stoppers):
    mta = Estafette(tmp, name="two", filters="module:" + MODULE, esmtpd_processes="2")
    stoppers.append(mta)
    mta.start()
    pids = mta.esmtpd_pids()
    check(len(pids) == 2, "want 2 esmtpd processes: %r" % pids)
    on = {pid: [] for pid in pids}
    for _ in range(20):
        s = open_mid_transaction(mta)
        pid = server_pid(s.sock, mta.port, pids)
        check(pid is not None, "no esmtpd holds the session of port %d" % s.sock.getsockname()[1])
        on[pid].append(s)
        if all(len(v) >= 2 for v in on.values()):
            break
    check(all(on.values()), "20 sessions all landed on one process: %r"
          % {p: len(v) for p, v in on.items()})
    # The crasher: a session on the first process (sessions landing on the other stay
    # bystanders there).
    victim, other = pids
    for _ in range(20):
        s = smtplib.SMTP("127.0.0.1", mta.port, timeout=30)
        s.ehlo("client.test")
        if server_pid(s.sock, mta.port, pids) == victim:
            break
        s.mail("s@example.test")
        s.rcpt("user@estafette.test")
        on[other].append(s)
    else:
        raise AssertionError("no session landed on esmtpd %d in 20" % victim)
    s.mail("s@example.test")
    try:
        s.rcpt("crash@estafette.test")
        raise AssertionError("the crash RCPT was answered")
    except CUT:
        pass
    s.close()
    wait_for(lambda: crash_line(mta.read_log(), victim, "SIGSEGV"), 10, "the crash line")
    cut_victim = sum(1 for b in on[victim] if not finish(b))
    survived = sum(1 for b in on[other] if finish(b))
    print("crash on esmtpd %d: %d of its %d sessions cut; %d of %d on esmtpd %d finished"
          % (victim, cut_victim, len(on[victim]), survived, len(on[other]), other))
    check(cut_victim == len(on[victim]), "sessions of the crashed process survived?")
    check(survived == len(on[other]), "the other process lost sessions: %d of %d finished"
          % (survived, len(on[other])))
    wait_for(lambda: len(mta.maildir_messages("user")) >= survived, 20,
             "delivery of the other process's messages")
    time.sleep(1)
    check(len(mta.maildir_messages("user")) == survived,
          "%d delivered, want %d" % (len(mta.maildir_messages("user")), survived))
    check(other in mta.esmtpd_pids(), "the other esmtpd went away")
    new_esmtpd(mta, victim)
    mta.stop()


def test(tmp, stoppers):
    check(os.path.exists(MODULE), "build it first: make tests/unit/filters/modules/misbehave.so")
    loop_hold(tmp, stoppers)
    input_during_hold(tmp, stoppers)
    crash_one_process(tmp, stoppers)
    crash_two_processes(tmp, stoppers)


if __name__ == "__main__":
    run(test)
