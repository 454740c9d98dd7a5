"""What the unprivileged user (and a local user) could make root write or read through links
(issue 13, items 9 and 10); root only (changes users, plants links for them).

Part 1, `user = nobody`: the state directory (given to nobody by an older run) is root's again
after start, so nobody can no longer put a link or a tree of its own next to maildir/; a pid
file name planted in run/ (nobody's) as a symlink is replaced, not written through. Symlinks
planted by hand at two levels of root's Maildirs (alice/new -> a directory, bob -> a directory)
are not followed: the targets stay empty, the deliveries are deferred with a log line, and once
the links are gone the same messages arrive (nothing acknowledged is lost).

Part 2, `local_mailboxes = system` with a temporary system user: a .forward that is a hard link
to a root-only file, a root-only (0600) .forward of its own, and a symlink to a root-only file
are not read as root (the mail goes to the Maildir, the log says why); a malformed .forward of
the user's defers the mail with the file's line number, and its text appears in no log, reply
or mailbox."""
import os
import pwd
import shutil
import subprocess

import harness

NOBODY = pwd.getpwnam("nobody").pw_uid
SECRET = "root:$6$SECRET-must-not-leak:19000:0:99999:7:::"


def as_nobody(*cmd):
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           *cmd], capture_output=True, text=True, timeout=30)


def everything_under(top):
    """The bytes of every regular file under top."""
    out = b""
    for root, _, files in os.walk(top):
        for n in files:
            path = os.path.join(root, n)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    out += f.read()
    return out


def part_maildir_links(tmp, stoppers):
    mta = harness.Estafette(tmp, name="links", user="nobody", local_processes=1,
                            esmtpd_processes=1, esmtpclient_processes=1)
    # An older layout: the state directory and run/ belong to nobody, which planted a symlink
    # where estafetted writes its pid file.
    os.makedirs(os.path.join(mta.state, "run"))
    victim = os.path.join(tmp, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    os.symlink(victim, os.path.join(mta.state, "run", "estafetted.pid"))
    for d in (mta.state, os.path.join(mta.state, "run")):
        os.lchown(d, NOBODY, NOBODY)
    os.lchown(os.path.join(mta.state, "run", "estafetted.pid"), NOBODY, NOBODY)
    # Root's Maildirs with links planted in them (by hand: nobody can no longer get there).
    target_new, target_box = os.path.join(tmp, "target-new"), os.path.join(tmp, "target-box")
    os.makedirs(target_new)
    os.makedirs(target_box)
    maildir = os.path.join(mta.state, "maildir")
    os.makedirs(os.path.join(maildir, "alice"), mode=0o700)
    os.chmod(maildir, 0o700)
    os.symlink(target_new, os.path.join(maildir, "alice", "new"))
    os.symlink(target_box, os.path.join(maildir, "bob"))
    mta.start()
    stoppers.append(mta)

    assert os.stat(mta.state).st_uid == 0, os.stat(mta.state)
    with open(victim) as f:
        assert f.read() == "precious\n", "estafetted wrote its pid through a planted symlink"
    harness.wait_for(lambda: os.path.isfile(os.path.join(mta.state, "run", "estafetted.pid"))
                     and not os.path.islink(os.path.join(mta.state, "run", "estafetted.pid")),
                     10, "a pid file of its own")
    # nobody cannot plant anything next to maildir/ any more.
    r = as_nobody("ln", "-s", "/etc", os.path.join(mta.state, "maildir2"))
    assert r.returncode != 0 and "Permission denied" in r.stderr, (r.returncode, r.stderr)

    mta.send("sender@else.test", ["alice@estafette.test"], b"Subject: to alice\r\n\r\nA\r\n")
    mta.send("sender@else.test", ["bob@estafette.test"], b"Subject: to bob\r\n\r\nB\r\n")
    harness.wait_for(lambda: mta.read_log().count("(delivery deferred)") >= 2, 20,
                     "both deliveries deferred")
    log = mta.read_log()
    assert "alice/new: a symbolic link, not followed" in log, log
    assert "maildir/bob: a symbolic link, not followed" in log, log
    assert os.listdir(target_new) == [] and os.listdir(target_box) == [], \
        (os.listdir(target_new), os.listdir(target_box))
    # The links go: the deferred messages arrive (retry_max is 2 s).
    os.unlink(os.path.join(maildir, "alice", "new"))
    os.unlink(os.path.join(maildir, "bob"))
    a = harness.wait_for(lambda: mta.maildir_messages("alice"), 20, "alice's message")
    b = harness.wait_for(lambda: mta.maildir_messages("bob"), 20, "bob's message")
    assert b"Subject: to alice" in a[0] and b"Subject: to bob" in b[0], (a, b)
    assert os.listdir(target_new) == [] and os.listdir(target_box) == []
    for d in ("", "alice", "bob", "bob/new"):
        assert os.stat(os.path.join(maildir, d)).st_uid == 0, d
    mta.stop()


def write_file(path, text, uid, gid, mode):
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def part_forward(tmp, stoppers):
    if not os.path.exists("/usr/sbin/useradd"):
        print("no useradd: .forward part skipped")
        return
    user = "efl%d" % os.getpid()
    home = os.path.join(tmp, "home", user)
    os.makedirs(os.path.join(tmp, "home"))
    subprocess.run(["useradd", "-m", "-d", home, "-s", "/bin/sh", user], check=True,
                   capture_output=True)
    mta = None
    try:
        pw = pwd.getpwnam(user)
        secret = os.path.join(tmp, "shadow-copy")  # a root-only file, as /etc/shadow
        write_file(secret, SECRET + "\n", 0, 0, 0o600)
        readable = os.path.join(tmp, "passwd-copy")  # root's, readable by all, as /etc/passwd
        write_file(readable, SECRET + "\n", 0, 0, 0o644)
        forward = os.path.join(home, ".forward")
        mta = harness.Estafette(tmp, name="fwd", local_mailboxes="system")
        stoppers.append(mta)
        mta.start()
        rcpt = "%s@estafette.test" % user
        cases = [
            ("hard link to a root-only file", lambda: os.link(secret, forward),
             "Permission denied"),
            ("hard link to a readable file", lambda: os.link(readable, forward),
             "has other hard links"),
            ("root-only file", lambda: write_file(forward, SECRET + "\n", 0, 0, 0o600),
             "Permission denied"),
            ("symlink", lambda: os.symlink(secret, forward), "a symbolic link"),
        ]
        for n, (what, plant, reason) in enumerate(cases, 1):
            plant()
            mta.send("sender@else.test", [rcpt], "Subject: case %d\r\n\r\n%s\r\n" % (n, what))
            harness.wait_for(lambda: len(harness.maildir_files(os.path.join(home, "Maildir")))
                             == n, 20, "message %d (%s) in the Maildir" % (n, what))
            assert "ignoring %s: %s" % (forward, reason) in mta.read_log(), (what, reason)
            os.unlink(forward)
        # The user's own malformed .forward: deferred with the line number, never the text.
        write_file(forward, "# first line\n" + SECRET + "\n", pw.pw_uid, pw.pw_gid, 0o644)
        mta.send("sender@else.test", [rcpt], "Subject: malformed\r\n\r\nM\r\n")
        harness.wait_for(lambda: "%s:2: bad address" % forward in mta.read_log(), 20,
                         "the deferral")
        assert "SECRET" not in mta.read_log()
        assert b"SECRET" not in everything_under(mta.state)
        assert b"SECRET" not in everything_under(os.path.join(home, "Maildir"))
        os.unlink(forward)  # fixed: the retry delivers it
        harness.wait_for(lambda: len(harness.maildir_files(os.path.join(home, "Maildir")))
                         == len(cases) + 1, 20, "the deferred message")
        assert "SECRET" not in mta.read_log()
        mta.stop()
    finally:
        if mta:
            mta.stop()
        subprocess.run(["userdel", "-r", user], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test(tmp, stoppers):
    if os.geteuid() != 0:
        harness.skip("needs root (changes users, plants links)")
    part_maildir_links(tmp, stoppers)
    part_forward(tmp, stoppers)


harness.run(test)
