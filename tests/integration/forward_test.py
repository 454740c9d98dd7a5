"""~/.forward with local_mailboxes = system and a real daemon (needs root: it creates two
temporary system users with useradd and removes them however the test ends). The first user's
.forward keeps a copy (\\user), runs a program (as that user: its uid and supplementary groups
are checked) and forwards to the second user, whose copy arrives through esmtpd's submission
socket with a Delivered-To: line; the second user's group-writable .forward is ignored (logged)
and its mail goes to the Maildir. Then a forwarding loop between the two bounces (554 5.4.6), and
with allow_program_delivery = no a .forward program bounces with 5.7.1."""
import grp
import os
import pwd
import subprocess

import harness


def maildir_messages(home):
    return harness.maildir_files(os.path.join(home, "Maildir"))


def read_file(path):
    """The bytes of path; b"" while it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def write_forward(home, user, text, mode):
    path = os.path.join(home, ".forward")
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
    os.chmod(path, mode)


def test(tmp, stoppers):
    if os.geteuid() != 0:
        harness.skip("needs root (creates system users)")
    if not os.path.exists("/usr/sbin/useradd"):
        harness.skip("no useradd")
    alice, bob = "efa%d" % os.getpid(), "efb%d" % os.getpid()
    homes = {u: os.path.join(tmp, "home", u) for u in (alice, bob)}
    os.makedirs(os.path.join(tmp, "home"))
    created = []
    mta = None
    try:
        for user in (alice, bob):
            subprocess.run(["useradd", "-m", "-d", homes[user], "-s", "/bin/sh", "-G", "mail",
                            user], check=True, capture_output=True)
            created.append(user)
        mta = harness.Estafette(tmp, local_mailboxes="system", allow_program_delivery="yes",
                                program_timeout="10s")
        stoppers.append(mta)
        domain = "estafette.test"
        write_forward(homes[alice], alice,
                      "# alice keeps a copy, runs a program and forwards to bob\n"
                      "\\%s,\n\"|id -u > $HOME/prog.uid; id -G > $HOME/prog.groups;"
                      " cat > $HOME/prog.out\"\n%s\n" % (alice, bob), 0o644)
        write_forward(homes[bob], bob, "\"|touch $HOME/should-not-run\"\n", 0o664)
        mta.start()
        mta.send("sender@client.test", ["%s@%s" % (alice, domain)],
                 "From: s@client.test\r\nSubject: forward me\r\n\r\nthe body\r\n")

        a_msgs = harness.wait_for(lambda: maildir_messages(homes[alice]), 20, "alice's copy")
        b_msgs = harness.wait_for(lambda: maildir_messages(homes[bob]), 20, "bob's copy")
        uid_file = os.path.join(homes[alice], "prog.uid")
        # The program writes prog.out last: wait for all of it, not for prog.uid to exist.
        out_file = os.path.join(homes[alice], "prog.out")
        harness.wait_for(lambda: read_file(out_file).endswith(b"\nthe body\n"), 20,
                         "the program's output")
        with open(uid_file) as f:
            uid = int(f.read())
        assert uid == pwd.getpwnam(alice).pw_uid, uid
        with open(os.path.join(homes[alice], "prog.groups")) as f:
            groups = [int(g) for g in f.read().split()]
        assert grp.getgrnam("mail").gr_gid in groups, groups  # initgroups: supplementary too
        with open(os.path.join(homes[alice], "prog.out"), "rb") as f:
            assert b"Subject: forward me\n" in f.read()

        assert len(a_msgs) == 1 and b"\nthe body\n" in a_msgs[0], a_msgs
        assert os.stat(os.path.join(homes[alice], "Maildir", "new")).st_uid == uid
        # Bob's copy was re-injected: the Delivered-To: alice line travels with it, and
        # esmtpd's Received: line for the submission socket (uid 0) is on top.
        assert len(b_msgs) == 1, b_msgs
        b = b_msgs[0]
        assert ("Delivered-To: %s@%s\n" % (bob, domain)).encode() in b, b
        assert ("Delivered-To: %s@%s\n" % (alice, domain)).encode() in b, b
        assert b"Received: from local (uid 0)" in b, b
        assert b"\nthe body\n" in b, b
        # Bob's group-writable .forward was ignored.
        assert not os.path.exists(os.path.join(homes[bob], "should-not-run"))
        log = mta.read_log()
        assert "ignoring %s/.forward: writable by group or others" % homes[bob] in log, log
        harness.wait_for(lambda: not mta.queue_files(), 10, "an empty queue")

        # A loop: bob forwards to alice, who forwards back to bob; bob's second turn sees its
        # own Delivered-To: line and bounces (to client.test, which stays queued: not checked).
        write_forward(homes[bob], bob, "%s\n" % alice, 0o644)
        mta.send("sender@client.test", ["%s@%s" % (bob, domain)],
                 "From: s@client.test\r\nSubject: loop\r\n\r\nround and round\r\n")
        harness.wait_for(lambda: "mail forwarding loop: already delivered to %s@%s" % (bob, domain)
                         in mta.read_log(), 20, "the loop bounced")
        assert len(maildir_messages(homes[alice])) == 2  # alice's \alice, once
        assert len(maildir_messages(homes[bob])) == 1
        mta.stop()

        # Programs disabled: alice's .forward names one, so she bounces with 5.7.1.
        mta = harness.Estafette(tmp, name="noprog", local_mailboxes="system")
        stoppers.append(mta)
        mta.start()
        mta.send("sender@client.test", ["%s@%s" % (alice, domain)],
                 "From: s@client.test\r\nSubject: no programs\r\n\r\nbody\r\n")
        harness.wait_for(lambda: "names a program, but delivery to programs is disabled" in
                         mta.read_log(), 20, "the 5.7.1 bounce")
        assert "550 5.7.1 <%s@%s>" % (alice, domain) in mta.read_log()
    finally:
        if mta:
            mta.stop()
        for user in created:
            subprocess.run(["userdel", "-r", "-f", user], capture_output=True)


harness.run(test)
