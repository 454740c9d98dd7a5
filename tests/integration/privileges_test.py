"""Privilege separation (root only): estafetted started as root with `user = nobody`, listening
on port 587 of 127.0.0.87 (a port below 1024 that neither another test nor a throwaway Postfix
uses). Checked through /proc: esmtpd, esmtpclient and courierd run as nobody with no other group
(real, effective and saved); courierd's root helper starts estafette-local, which stays root
(effective and saved; its real uid is nobody's) as does estafetted. queue/ and run/ (with a directory a run as root left) belong to
nobody, the state directory itself to root. A message still flows end to end, to the local Maildir and relayed through
esmtpclient to smtp-sink; an esmtpd that is killed comes back as nobody (estafetted binds port
587 again as root through it). When estafetted is killed with SIGKILL, every daemon stops by
itself and the port is free. A missing user stops estafetted and check-config with a clear
message."""
import os
import signal
import subprocess

import harness

NOBODY = 65534
HOST = "127.0.0.87"
PORT = 587


def ids(pid):
    """(real, effective, saved uid), (real, effective, saved gid), groups of a process."""
    with open("/proc/%d/status" % pid) as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    uids = tuple(int(x) for x in fields["Uid"].split()[:3])
    gids = tuple(int(x) for x in fields["Gid"].split()[:3])
    groups = sorted(int(x) for x in fields["Groups"].split())
    return uids, gids, groups


def parent(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def by_program(mta):
    """{program name: [pids]} for estafetted's children and their modules."""
    out = {}
    for pid in mta.daemon_pids():
        try:
            name = os.path.basename(os.readlink("/proc/%d/exe" % pid))
        except OSError:
            continue
        out.setdefault(name, []).append(pid)
    return out


def owners(top):
    """(path, uid) of every entry under top, top included, that nobody does not own."""
    wrong = []
    for root, dirs, files in os.walk(top):
        for path in [root] + [os.path.join(root, n) for n in dirs + files]:
            st = os.lstat(path)
            if st.st_uid != NOBODY:
                wrong.append((path, st.st_uid))
    return wrong


def settled(mta):
    """by_program() once every daemon runs and no esmtpd or esmtpclient is still starting
    (an esmtpd is root until it has bound its addresses), else None."""
    p = by_program(mta)
    if len(p.get("estafette-esmtpd", [])) != 2 or len(p.get("estafette-esmtpclient", [])) != 2 \
            or not p.get("estafette-local") or not p.get("estafette-courierd"):
        return None
    try:
        if any(0 in ids(pid)[0]
               for pid in p["estafette-esmtpd"] + p["estafette-esmtpclient"]):
            return None
    except OSError:
        return None
    return p


def check_ids(mta, programs):
    for pid in programs["estafette-esmtpd"] + programs["estafette-esmtpclient"]:
        uids, gids, groups = ids(pid)
        assert uids == (NOBODY,) * 3 and gids == (NOBODY,) * 3, (pid, uids, gids)
        assert groups == [NOBODY], (pid, groups)
    # courierd is nobody for good (issue 13, item 11); its root helper (a fork of it, the same
    # program) only starts estafette-local, which is courierd's child with nobody as its real
    # uid (so courierd may signal it) and root as its effective and saved uid.
    courierds = programs["estafette-courierd"]
    (courierd,) = [p for p in courierds if parent(p) == mta.proc.pid]
    uids, gids, groups = ids(courierd)
    assert uids == (NOBODY,) * 3 and gids == (NOBODY,) * 3, (uids, gids)
    assert groups == [NOBODY], groups
    (helper,) = [p for p in courierds if p != courierd]
    assert parent(helper) == courierd and ids(helper)[0] == (0, 0, 0), ids(helper)
    fds = sorted(int(n) for n in os.listdir("/proc/%d/fd" % helper))
    assert fds[:3] == [0, 1, 2] and len(fds) == 4, fds  # stdio and its link to courierd
    for pid in programs["estafette-local"]:
        uids, _, _ = ids(pid)
        assert uids == (NOBODY, 0, 0), (pid, uids)
        assert parent(pid) == courierd, (pid, parent(pid))
    assert ids(mta.proc.pid)[0] == (0, 0, 0)


def test(tmp, stoppers):
    if os.geteuid() != 0:
        harness.skip("needs root (binds port %d and changes users)" % PORT)
    if harness.port_open(PORT, HOST):
        harness.skip("%s:%d is in use" % (HOST, PORT))
    sink = harness.SmtpSink(tmp).start()
    stoppers.append(sink)
    mta = harness.Estafette(tmp, host=HOST, port=PORT, user="nobody", esmtpd_processes=2,
                            esmtpclient_processes=2, local_processes=1,
                            routes={"remote.test": "127.0.0.1,%d" % sink.port})
    # What a run as root leaves: a root-owned directory in the queue; nobody must get it.
    os.makedirs(os.path.join(mta.state, "queue", "tmp"))
    os.makedirs(os.path.join(mta.state, "run"))
    mta.start()
    stoppers.append(mta)

    programs = harness.wait_for(lambda: settled(mta), 15, "every daemon started and settled")
    check_ids(mta, programs)
    assert not owners(os.path.join(mta.state, "queue")), owners(os.path.join(mta.state, "queue"))
    # The state directory itself stays root's: nobody must not be able to plant a link next
    # to maildir/ (issue 13, item 9).
    assert os.stat(mta.state).st_uid == 0

    mta.send("sender@else.test", ["alice@estafette.test"], b"Subject: local\r\n\r\nhi\r\n")
    mta.send("sender@else.test", ["bob@remote.test"], b"Subject: relayed\r\n\r\nhi\r\n")
    msgs = harness.wait_for(lambda: mta.maildir_messages("alice"), 20, "local delivery")
    assert b"Subject: local" in msgs[0], msgs
    msgs = harness.wait_for(sink.messages, 20, "relayed delivery")
    assert b"Subject: relayed" in msgs[0], msgs
    # Everything the daemons wrote in queue/ and run/ belongs to nobody, but the files
    # estafetted itself keeps there (root's).
    assert not owners(os.path.join(mta.state, "queue")), owners(os.path.join(mta.state, "queue"))
    roots = {os.path.basename(p) for p, _ in owners(os.path.join(mta.state, "run"))}
    assert roots <= {"estafetted.pid", "estafetted.children", "submit.sock"}, roots

    # A killed esmtpd comes back as nobody, on port 587 again.
    victim = programs["estafette-esmtpd"][0]
    os.kill(victim, signal.SIGKILL)
    programs = harness.wait_for(
        lambda: (lambda p: p if p and victim not in p["estafette-esmtpd"] else None)(
            settled(mta)), 15, "esmtpd restarted and settled")
    check_ids(mta, programs)
    for i in range(4):  # the kernel spreads connections over both processes
        mta.send("sender@else.test", ["carol@estafette.test"],
                 b"Subject: after restart %d\r\n\r\nhi\r\n" % i)
    harness.wait_for(lambda: len(mta.maildir_messages("carol")) == 4, 20, "4 deliveries")
    # Queue ids: courierd, both esmtpd processes and the restarted one each claimed an instance
    # number of their own, as nobody (issue 13, item 15).
    with open(os.path.join(mta.state, "queue", "instance")) as f:
        assert int(f.read()) >= 4
    assert "no queue id instance" not in mta.read_log()
    # estafetted killed outright (SIGKILL, a crash): every daemon stops by itself, also those
    # that dropped to nobody (the kernel clears the parent-death signal on a uid change; they
    # set it again), and port 587 is free for the next start.
    stopped = mta.kill_supervisor()
    assert len(stopped) >= 6, stopped  # 2 esmtpd, courierd, 2 esmtpclient, local, pickup
    assert not harness.port_open(PORT, HOST)

    # A user that does not exist: a clear error, nothing starts.
    bad = harness.Estafette(tmp, name="bad", user="no-such-user-estafette")
    r = subprocess.run([bad.program("estafetted"), "-f", "-c", bad.conf], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "user 'no-such-user-estafette'" in r.stderr and \
        "no such user" in r.stderr, (r.returncode, r.stderr)
    r = subprocess.run([bad.program("estafette"), "check-config", "-c", bad.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "no such user 'no-such-user-estafette'" in r.stdout, r.stdout


harness.run(test)
