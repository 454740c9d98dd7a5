"""Mail kept while the MTA is down (root only: it runs estafette-sendmail as nobody and plants
files as nobody). With Estafette stopped, estafette-sendmail run by nobody keeps the message in
<state>/maildrop (root's, mode 1733: nobody can create a file there but not list it), its file
nobody's and mode 0600, and exits 0; root's too; also when the socket is stale, when esmtpd
greets with 421 and when no greeting comes within smtpd_timeout. At start estafette-pickup submits each file as
its owner: the mail arrives with "Received: from local (uid 65534)" whatever the file claims,
root's with uid 0, and the files are gone. A refused one (esmtpd's 501 to a recipient) comes back
to nobody from MAILER-DAEMON with the reason and the original, and is removed.
Attacks planted by nobody on the real file system: a symlink to a root-only maildrop file, a
fifo, a sparse 1 GB file, a file that keeps growing, garbage, a hard link, 1500 badly named
files, 300 valid files (flooding: root's message still goes out in the first pass), and a file of
a uid with no passwd entry. None blocks the pickup, none makes it read through a link or act as
anyone but the file's owner; junk is removed, the too big and the garbage are returned to nobody,
the hard link and the unknown uid's file are left alone. A user (daemon) who stops the child
that submits as them holds the pickup up for the deadline only."""
import os
import pwd
import re
import signal
import socket
import stat
import subprocess
import threading
import time

import harness

NOBODY = 65534


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def sendmail(mta, args, data, nobody=True):
    if nobody:
        return subprocess.run([mta.program_for_others("estafette-sendmail"), "-C", mta.conf] +
                              args, input=data, capture_output=True, timeout=60,
                              preexec_fn=as_nobody, cwd=mta.tmp)
    return subprocess.run([mta.program("estafette-sendmail"), "-C", mta.conf] + args,
                          input=data, capture_output=True, timeout=60)


DAEMON = 1


def as_daemon():
    os.setgroups([])
    os.setgid(DAEMON)
    os.setuid(DAEMON)


# Stops (SIGSTOP) every new process of its own uid, watching the pids just handed out (the
# last one is in /proc/loadavg): the child that submits as this user lives for milliseconds.
STOPPER = r"""
import os, signal, time
me = os.getpid()
stopped = set()
while True:
    with open("/proc/loadavg") as f:
        last = int(f.read().split()[-1])
    for pid in range(last - 20, last + 20):
        if pid == me or pid in stopped:
            continue
        try:  # /proc/PID of a process that changed its ids is root's: read its status
            with open("/proc/%d/status" % pid) as f:
                uid = [l.split()[1] for l in f if l.startswith("Uid:")][0]
            if int(uid) == os.getuid():
                os.kill(pid, signal.SIGSTOP)
                stopped.add(pid)
        except (OSError, IndexError):
            pass
    time.sleep(0.0005)
"""


def stopped_of(uid):
    """PIDs of the stopped processes whose real uid is uid."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/status" % pid) as f:
                fields = dict(l.split(":", 1) for l in f if ":" in l)
        except OSError:
            continue
        if fields["Uid"].split()[0] == str(uid) and fields["State"].strip().startswith("T"):
            found.append(int(pid))
    return found


def as_nobody_run(code, *args):
    """Python code run as nobody (what a hostile local user can do)."""
    return subprocess.run(["python3", "-c", code] + list(args), preexec_fn=as_nobody,
                          capture_output=True, text=True, timeout=120)


def maildrop_file(sender, rcpts, body):
    wire = body.replace(b"\n", b"\r\n")
    env = b"S " + sender + b"\n" + b"".join(b"R " + r + b"\n" for r in rcpts)
    return b"estafette-maildrop 1\n" + env + b"D %d\n" % len(wire) + wire + b"E\n"


def messages(mta, user):
    return mta.maildir_messages(user)


def test(tmp, stoppers):
    if os.geteuid() != 0:
        harness.skip("runs estafette-sendmail as nobody: needs root")
    try:
        pwd.getpwuid(4242)
        harness.skip("uid 4242 exists here")
    except KeyError:
        pass
    mta = harness.Estafette(tmp, local_domains="estafette.test mta.estafette.test",
                            max_message_size="300000", smtpd_timeout="10s")
    drop = os.path.join(mta.state, "maildrop")
    mta.start()
    stoppers.append(mta)
    st = os.stat(drop)
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o1733, oct(st.st_mode)
    mta.stop()

    # The MTA is down: sendmail keeps the message and says so, as nobody and as root.
    r = sendmail(mta, ["-f", "root@mta.estafette.test", "alice@estafette.test"],
                 b"Subject: kept\n\nwritten while down\n.x\n")
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert b"kept in " + drop.encode() in r.stderr, r.stderr
    kept = os.listdir(drop)
    assert len(kept) == 1, kept
    st = os.stat(os.path.join(drop, kept[0]))
    assert st.st_uid == NOBODY and stat.S_IMODE(st.st_mode) == 0o600, (st.st_uid, oct(st.st_mode))
    # Too big for the maildrop (max_message_size + 64 KiB once made CRLF): refused at once.
    r = sendmail(mta, ["big@estafette.test"], b"Subject: big\n\n" + b"x\n" * 150000)
    assert r.returncode == 65 and b"message too big" in r.stderr, (r.returncode, r.stderr)
    assert len(os.listdir(drop)) == 1, os.listdir(drop)
    r = sendmail(mta, ["bad..address@estafette.test"], b"Subject: refused later\n\nx\n")
    assert r.returncode == 0, r.stderr
    r = sendmail(mta, ["carol@estafette.test"], b"Subject: from root\n\nroot's\n", nobody=False)
    assert r.returncode == 0, r.stderr
    # Kept too when the socket is stale (ECONNREFUSED), when the greeting is a 421, and when no
    # greeting comes within smtpd_timeout (a listener that never accepts).
    sock_path = os.path.join(mta.state, "run", "submit.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock_path)
    stale.close()
    os.chmod(sock_path, 0o666)
    r = sendmail(mta, ["refused@estafette.test"], b"Subject: refused conn\n\nx\n")
    assert r.returncode == 0 and b"Connection refused" in r.stderr, r.stderr
    os.unlink(sock_path)
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(sock_path)
        os.chmod(sock_path, 0o666)
        listener.listen(4)
        def greet_421():
            conn, _ = listener.accept()
            conn.sendall(b"421 4.3.2 going down\r\n")
            conn.close()
        t = threading.Thread(target=greet_421)
        t.start()
        r = sendmail(mta, ["greeting@estafette.test"], b"Subject: 421\n\nx\n")
        t.join()
        assert r.returncode == 0 and b"421 4.3.2" in r.stderr, r.stderr
        started = time.monotonic()
        r = sendmail(mta, ["silent@estafette.test"], b"Subject: silent\n\nx\n")
        assert r.returncode == 0 and b"timeout" in r.stderr, r.stderr
        assert 9 <= time.monotonic() - started < 25, time.monotonic() - started
    os.unlink(sock_path)
    legit = set(os.listdir(drop))
    assert len(legit) == 6, legit

    # estafette-pickup alone, with no esmtpd: the first file it tries ends the pass (no point in
    # trying the others), and every file stays.
    alone = subprocess.Popen([mta.program("estafette-pickup"), "-c", mta.conf])
    try:
        harness.wait_for(lambda: "for later: cannot connect" in mta.read_log(), 15, "a pass")
        time.sleep(1)
    finally:
        alone.terminate()
        assert alone.wait(10) == 0
    assert mta.read_log().count("for later: cannot connect") == 1, mta.read_log()[-2000:]
    assert set(os.listdir(drop)) == legit, os.listdir(drop)

    # nobody cannot list the maildrop, nor take root's file.
    r = as_nobody_run("import os, sys; os.listdir(sys.argv[1])", drop)
    assert r.returncode != 0 and "PermissionError" in r.stderr, r.stderr
    root_file = [n for n in legit if os.stat(os.path.join(drop, n)).st_uid == 0][0]
    r = as_nobody_run("import os, sys; os.rename(sys.argv[1], sys.argv[1] + 'x')",
                      os.path.join(drop, root_file))
    assert r.returncode != 0 and "PermissionError" in r.stderr, r.stderr

    # A root-only file in maildrop format, for nobody's symlink to point at.
    secret = os.path.join(tmp, "secret")
    with open(secret, "wb") as f:
        f.write(maildrop_file(b"", [b"eve@estafette.test"], b"Subject: secret\n\nroot only\n"))
    os.chmod(secret, 0o600)
    own = os.path.join(tmp, "nobodys")
    os.mkdir(own)
    os.chown(own, NOBODY, NOBODY)
    plant = r"""
import os, sys
drop, secret, own, good, flood = sys.argv[1:6]
os.symlink(secret, os.path.join(drop, "100.link"))
os.mkfifo(os.path.join(drop, "101.fifo"))
with open(os.path.join(own, "hard"), "wb") as f:
    f.write(good.encode().replace(b"ZZZ", b"frank"))
os.link(os.path.join(own, "hard"), os.path.join(drop, "102.hard"))
with open(os.path.join(drop, "103.huge"), "wb") as f:
    f.truncate(1 << 30)
with open(os.path.join(drop, "104.garbage"), "wb") as f:
    f.write(b"hello\n.\nMAIL FROM:<x>\n")
os.mkdir(os.path.join(drop, "105.dir"))
for i in range(1500):
    open(os.path.join(drop, "bad name %d" % i), "wb").close()
for i in range(300):
    with open(os.path.join(drop, "200.flood.%d" % i), "wb") as f:
        f.write(flood.encode())
"""
    good = maildrop_file(b"", [b"ZZZ@estafette.test"], b"Subject: planted\n\nx\n").decode()
    flood = maildrop_file(b"nobody@mta.estafette.test", [b"flood@estafette.test"],
                          b"Subject: flood\n\nx\n").decode()
    r = as_nobody_run(plant, drop, secret, own, good, flood)
    assert r.returncode == 0, r.stderr
    # A file that keeps growing while the pickup runs, and one of a uid with no passwd entry.
    grow = subprocess.Popen(["python3", "-c", r"""
import os, sys, time
with open(sys.argv[1], "wb") as f:
    while True:  # fast to 2 MiB, then slowly (the test's disk is shared)
        f.write(b"x" * 65536)
        f.flush()
        time.sleep(0.001 if f.tell() < 2 << 20 else 0.1)
""", os.path.join(drop, "106.grow")], preexec_fn=as_nobody)
    try:
        ghost = os.path.join(drop, "107.ghost")
        with open(ghost, "wb") as f:
            f.write(maildrop_file(b"", [b"ghost@estafette.test"], b"Subject: ghost\n\nx\n"))
        os.chown(ghost, 4242, 4242)
        growing = os.path.join(drop, "106.grow")
        harness.wait_for(lambda: os.path.exists(growing) and os.path.getsize(growing) > 2 << 20,
                         20, "106.grow to grow")

        mta.start()
        # The legitimate mail arrives, as its owner; root's in the first pass despite the flood.
        alice = harness.wait_for(lambda: messages(mta, "alice"), 30, "alice's message")
        m = alice[0]
        assert b"Received: from local (uid 65534)" in m, m
        assert b"Subject: kept" in m and m.endswith(b"\nwritten while down\n.x\n"), m
        carol = harness.wait_for(lambda: messages(mta, "carol"), 30, "carol's message")
        assert b"Received: from local (uid 0)" in carol[0], carol[0]
        for user in ("refused", "greeting", "silent"):
            m = harness.wait_for(lambda: messages(mta, user), 30, user + "'s message")
            assert b"Received: from local (uid 65534)" in m[0], m[0]
        flood_done = len(messages(mta, "flood"))
        assert flood_done < 300, "root's message came before the whole flood: %d" % flood_done
        harness.wait_for(lambda: len(messages(mta, "flood")) == 300, 120, "300 flood messages")
        for m in messages(mta, "flood"):
            assert b"Received: from local (uid 65534)" in m, m[:300]

        # What is left: the hard link and the unknown uid's file, nothing else.
        harness.wait_for(lambda: sorted(os.listdir(drop)) == ["102.hard", "107.ghost"], 60,
                         "the maildrop to be cleaned: %r" % sorted(os.listdir(drop))[:10])
    finally:
        grow.kill()
        grow.wait()
    assert os.path.exists(secret), "the symlink's target is untouched"

    # Returned to nobody: the refusal (with the original), the garbage, the too big, the growing.
    def bounces():
        return [m for m in messages(mta, "nobody") if b"Undelivered Mail Returned" in m]
    harness.wait_for(lambda: len(bounces()) >= 4, 30, "4 bounces to nobody")
    got = bounces()
    assert all(re.search(rb"(?m)^Return-Path: <>", m) for m in got), got
    refused = [m for m in got if b"bad..address@estafette.test" in m]
    assert len(refused) == 1 and b"501" in refused[0], got
    assert b"Content-Type: message/rfc822" in refused[0] and b"Subject: refused later" in refused[0]
    assert any(b"103.huge" in m and b"too big" in m for m in got), got
    assert any(b"104.garbage" in m and b"not a valid maildrop file" in m for m in got), got
    assert any(b"106.grow" in m for m in got), got
    for user in ("eve", "frank", "ghost", "bad..address"):
        assert not messages(mta, user), user
    log = mta.read_log()
    assert "removed " + os.path.join(drop, "100.link") in log, log[-3000:]
    assert "removed " + os.path.join(drop, "101.fifo") in log
    assert "107.ghost: its owner uid 4242 has no passwd entry" in log
    assert "102.hard (owner uid 65534): it has 2 links" in log
    # The pickup is still there and takes a new file at once (inotify).
    r = sendmail(mta, ["henry@estafette.test"], b"Subject: live\n\nx\n")
    assert r.returncode == 0 and not r.stderr, r.stderr

    # A user who stops (SIGSTOP) the child that submits as them delays the others by the deadline
    # (smtpd_timeout + 30 s) only: the child is killed, their file stays, the next owner's goes.
    stopper = subprocess.Popen(["python3", "-c", STOPPER], preexec_fn=as_daemon)
    esmtpds = mta.esmtpd_pids()
    try:
        # esmtpd paused meanwhile, so that the child waits for its greeting long enough for the
        # stopper to find it (it would often finish first otherwise).
        for pid in esmtpds:
            os.kill(pid, signal.SIGSTOP)
        for path, owner, rcpt in ((os.path.join(drop, "400.stalled"), DAEMON, b"stalled"),
                                  (os.path.join(drop, "401.after"), NOBODY, b"after")):
            with open(path + ".new", "wb") as f:
                f.write(maildrop_file(b"", [rcpt + b"@estafette.test"], b"Subject: s\n\nx\n"))
            os.chown(path + ".new", owner, owner)
            os.rename(path + ".new", path)  # as estafette-sendmail does; inotify wakes the pickup
        started = time.monotonic()
        harness.wait_for(lambda: stopped_of(DAEMON), 20, "the child stopped by its user")
        for pid in esmtpds:
            os.kill(pid, signal.SIGCONT)
        esmtpds = []
        after = harness.wait_for(lambda: messages(mta, "after"), 90, "the next owner's file")
        assert 35 <= time.monotonic() - started, time.monotonic() - started
        assert b"Received: from local (uid 65534)" in after[0], after[0]
        assert "400.stalled (uid 1) for later: the submission did not end within 40 s" in \
            mta.read_log(), mta.read_log()[-3000:]
        assert os.path.exists(os.path.join(drop, "400.stalled")) and not messages(mta, "stalled")
    finally:
        for pid in esmtpds:
            os.kill(pid, signal.SIGCONT)
        stopper.kill()
        stopper.wait()
    os.unlink(os.path.join(drop, "400.stalled"))
    # estafette reload replaces the pickup like every daemon: one runs after it, a new one.
    pickup = mta.pids_of("estafette-pickup")
    r = mta.reload()
    assert r.returncode == 0, r.stdout + r.stderr
    after = mta.pids_of("estafette-pickup")
    assert len(after) == 1 and after != pickup, (pickup, after)
    mta.stop()
    r = sendmail(mta, ["ivy@estafette.test"], b"Subject: while down again\n\nx\n")
    assert r.returncode == 0, r.stderr
    mta.start()
    harness.wait_for(lambda: messages(mta, "ivy"), 30, "ivy's message")
    assert messages(mta, "henry")


if __name__ == "__main__":
    harness.run(test)
