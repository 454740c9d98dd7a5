#!/usr/bin/env python3
"""`filters = module-isolated:...` (issue 19): a native module run in its own
estafette-filterhost, spoken to by esmtpd as a milter. With the real daemons (estafetted,
esmtpd, courierd, estafette-filterhost) and a test module that crashes or hangs on demand
(tests/unit/filters/modules/isolation_probe.c):
- a normal message is delivered with the module's headers, the same as with `module:`, and the
  module ran in the filterhost's process, not esmtpd's;
- MAIL FROM:<crash@...> kills the filterhost (SIGSEGV): that session gets 451
  (milter_default_action = tempfail); another SMTP session open at the same time is not cut (its
  message sent before is delivered, it gets well-formed replies and ends with 221); esmtpd's pids
  are unchanged; estafetted restarts the filterhost, the crash is logged with module, phase and
  session, and the next message is filtered and delivered again;
- MAIL FROM:<hang@...> blocks the module's loop: esmtpd's milter_command_timeout answers 451,
  the filterhost's watchdog ends it, it is restarted and filters again;
- a reload replaces the filterhost (the new one takes the socket over) and mail is filtered;
- a module that exits at load stops estafetted's start with the module's reason;
- as root with `user = nobody`, the filterhost runs as nobody in a 0700 directory of its own."""
import os
import pwd
import re
import smtplib
import stat
import subprocess
import time

from harness import BUILD_DIR, Estafette, run, skip, wait_for

PROBE = os.path.join(BUILD_DIR, "tests", "unit", "filters", "modules", "isolation_probe.so")


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def message(subject, to):
    return ("From: s@example.test\r\nTo: %s\r\nSubject: %s\r\n\r\nbody of %s\r\n"
            % (to, subject, subject))


def delivered(mta, user, count=1, timeout=20):
    wait_for(lambda: len(mta.maildir_messages(user)) >= count, timeout,
             "%d message(s) for %s" % (count, user))
    return mta.maildir_messages(user)[count - 1]


def header(data, name):
    m = re.search(rb"^" + name.encode() + rb": ?(.*?)\r?$", data, re.M)
    return m.group(1).decode() if m else None


def filterhost_pid(mta):
    pids = mta.pids_of("estafette-filterhost")
    check(len(pids) == 1, "one filterhost, not %r" % pids)
    return pids[0]


def restarted(mta, old_pid, timeout=15):
    """The new filterhost's pid, once estafetted has restarted it and it serves again."""
    def new_pid():
        try:
            pid = filterhost_pid(mta)
        except AssertionError:
            return None
        return pid if pid != old_pid else None
    wait_for(lambda: new_pid() is not None, timeout, "a new estafette-filterhost")
    wait_for(lambda: mta.status() == 0, timeout, "every daemon ready again")
    return new_pid()


def comparable(data):
    """A delivered message without what differs between two runs: the Received trace and the
    pid header (with their continuation lines)."""
    keep, skipping = [], False
    for line in data.split(b"\n"):
        if line.startswith((b" ", b"\t")) and skipping:
            continue
        skipping = line.startswith((b"Received:", b"X-Isolation-Probe-Pid:"))
        if not skipping:
            keep.append(line)
    return b"\n".join(keep)


def as_unprivileged_user(tmp, stoppers):
    """As root with `user = nobody`: the filterhost runs as nobody (real, effective, saved),
    its socket directory is nobody's with mode 0700, it filters, and it stops by itself when
    estafetted is killed outright."""
    if os.geteuid() != 0:
        print("not root: the user = nobody part is skipped")
        return
    nobody = pwd.getpwnam("nobody").pw_uid
    mta = Estafette(tmp, name="nobody", user="nobody",
                    filters='"module-isolated:%s as-nobody"' % PROBE)
    stoppers.append(mta)
    mta.start()
    pid = filterhost_pid(mta)
    with open("/proc/%d/status" % pid) as f:
        uids = [line.split()[1:4] for line in f if line.startswith("Uid:")][0]
    check(uids == [str(nobody)] * 3, "the filterhost's uids are %r, not nobody's" % uids)
    sock_dir = os.path.join(mta.state, "run", "filterhost")
    st = os.stat(sock_dir)
    check(st.st_uid == nobody and stat.S_IMODE(st.st_mode) == 0o700,
          "socket directory uid %d mode %o" % (st.st_uid, stat.S_IMODE(st.st_mode)))
    mta.send("s@example.test", ["n@estafette.test"], message("as nobody", "n@estafette.test"))
    got = delivered(mta, "n")
    check(header(got, "X-Isolation-Probe-Pid") == str(pid), "as nobody: not filtered")
    stopped = mta.kill_supervisor()
    check(pid in stopped, "the filterhost was not among estafetted's children")


def test(tmp, stoppers):
    if not os.path.exists(PROBE):
        skip(PROBE + " is not built (make check builds it)")
    settings = {"milter_command_timeout": "2s", "milter_default_action": "tempfail"}

    # The same module in-process first: what the isolated one must deliver too.
    inproc = Estafette(tmp, name="inprocess", filters='"module:%s tagged"' % PROBE, **settings)
    stoppers.append(inproc)
    inproc.start()
    inproc.send("s@example.test", ["a@estafette.test"], message("same", "a@estafette.test"))
    expected = delivered(inproc, "a")
    check(header(expected, "X-Isolation-Probe-Pid") in [str(p) for p in inproc.esmtpd_pids()],
          "in-process: the module ran in esmtpd")
    inproc.stop()

    mta = Estafette(tmp, name="isolated", filters='"module-isolated:%s tagged"' % PROBE,
                    **settings)
    stoppers.append(mta)
    mta.start()
    esmtpd = sorted(mta.esmtpd_pids())
    host1 = filterhost_pid(mta)
    check(host1 not in esmtpd, "the filterhost is its own process")
    out = os.popen("%s status -c %s" % (mta.program("estafette"), mta.conf)).read()
    check("estafette-filterhost" in out, "estafette status shows the filterhost:\n" + out)
    sock_dir = os.path.join(mta.state, "run", "filterhost")
    mode = stat.S_IMODE(os.stat(sock_dir).st_mode)
    check(mode == 0o700, "socket directory mode %o, not 700" % mode)
    check(stat.S_ISSOCK(os.stat(os.path.join(sock_dir, "0.sock")).st_mode), "no 0.sock")

    # 1. A normal message: the module's headers, as in-process; run by the filterhost.
    mta.send("s@example.test", ["a@estafette.test"], message("same", "a@estafette.test"))
    got = delivered(mta, "a")
    check(header(got, "X-Isolation-Probe") == "tagged from=<s@example.test> client=127.0.0.1",
          "isolated: header %r" % header(got, "X-Isolation-Probe"))
    check(header(got, "X-Isolation-Probe-Pid") == str(host1),
          "isolated: the module ran in pid %s, not the filterhost %d"
          % (header(got, "X-Isolation-Probe-Pid"), host1))
    check(comparable(got) == comparable(expected),
          "module: and module-isolated: deliver different bytes:\n%r\n%r"
          % (comparable(expected), comparable(got)))
    print("module-isolated delivers what module: delivers (%d bytes compared)"
          % len(comparable(got)))

    # 2. A crash: only the filterhost's sessions get the default action; esmtpd goes on.
    other = smtplib.SMTP("127.0.0.1", mta.port, timeout=30)
    other.ehlo("other.test")
    other.sendmail("s@example.test", ["b@estafette.test"], message("before", "b@estafette.test"))
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("crash.test")
        code, text = s.mail("crash@example.test")
        check(code == 451, "crash: MAIL answered %d %r, not 451" % (code, text))
        check(s.noop()[0] == 250, "crash: the session goes on after the 451")
    host2 = restarted(mta, host1)
    check(sorted(mta.esmtpd_pids()) == esmtpd, "esmtpd's pids changed: %r -> %r"
          % (esmtpd, mta.esmtpd_pids()))
    # The session open during the crash: not cut, its earlier message delivered; its filter
    # host is gone, so its next message gets the default action; it ends normally.
    delivered(mta, "b")
    check(other.noop()[0] == 250, "the other session was cut")
    code, _ = other.mail("s@example.test")
    check(code in (250, 451), "the other session: MAIL answered %d" % code)
    other.rset()
    check(other.quit()[0] == 221, "the other session did not end with 221")
    log = mta.read_log()
    check(re.search(r"signal 11 \(SIGSEGV\) in module isolation-probe, phase mail, session \S+",
                    log) or re.search(r"signal 11 \(SIGSEGV\) in module \S+, phase mail", log),
          "the crash record (module, phase, session) is not in the log")
    check("estafette-filterhost" in log and "signal 11" in log, "the crash is not logged")
    mta.send("s@example.test", ["c@estafette.test"], message("after crash", "c@estafette.test"))
    got = delivered(mta, "c")
    check(header(got, "X-Isolation-Probe-Pid") == str(host2),
          "after the restart: filtered by %s, not the new filterhost %d"
          % (header(got, "X-Isolation-Probe-Pid"), host2))

    # 3. A hang: esmtpd's milter timeout cuts it; the watchdog ends the filterhost.
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("hang.test")
        started = time.monotonic()
        code, text = s.mail("hang@example.test")
        took = time.monotonic() - started
        check(code == 451, "hang: MAIL answered %d %r, not 451" % (code, text))
        check(1.5 <= took < 10, "hang: answered after %.1f s (milter_command_timeout 2s)" % took)
    host3 = restarted(mta, host2, timeout=20)
    check(sorted(mta.esmtpd_pids()) == esmtpd, "esmtpd's pids changed after the hang")
    check("SIGALRM" in mta.read_log(), "the watchdog's end of the hung filterhost is not logged")
    mta.send("s@example.test", ["d@estafette.test"], message("after hang", "d@estafette.test"))
    got = delivered(mta, "d")
    check(header(got, "X-Isolation-Probe-Pid") == str(host3), "after the hang: not filtered")
    print("crash and hang: 451, esmtpd untouched (pids %r), filterhost %d -> %d -> %d"
          % (esmtpd, host1, host2, host3))

    # 4. A reload: a new filterhost takes the socket over, the old one drains and exits.
    done = mta.reload()
    check(done.returncode == 0, "reload failed: " + done.stderr)
    host4 = restarted(mta, host3)
    wait_for(lambda: not os.path.exists("/proc/%d" % host3) or
             open("/proc/%d/stat" % host3).read().rsplit(")", 1)[1].split()[0] == "Z", 15,
             "the old filterhost to exit")
    mta.send("s@example.test", ["e@estafette.test"], message("after reload", "e@estafette.test"))
    got = delivered(mta, "e")
    check(header(got, "X-Isolation-Probe-Pid") == str(host4), "after the reload: not filtered")
    mta.stop()

    # 5. A module that exits at load (sendmail's sample without its -p): estafetted does not
    # come up, and says why with the module's own words.
    sample = os.path.join(BUILD_DIR, "tests", "unit", "filters", "modules", "sendmail_sample.so")
    bad = Estafette(tmp, name="bad", filters="module-isolated:" + sample)
    stoppers.append(bad)
    # estafetted without -f detaches and waits until every daemon is up, or says why not.
    done = subprocess.run([bad.program("estafetted"), "-c", bad.conf], capture_output=True,
                          text=True, timeout=120)
    check(done.returncode != 0, "estafetted started with a module that exits at load")
    check("estafette-filterhost" in done.stderr and
          "exited with status 64 while loading" in done.stderr and
          "Missing required -p argument" in done.stderr,
          "the load failure's reason: %r" % done.stderr)

    as_unprivileged_user(tmp, stoppers)


run(test)
