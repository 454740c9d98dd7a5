"""Routing with real daemons: aliases (two local users, a remote address delivered to a real
smtp-sink, :include:, a program), a hosted domain's mailbox, 550 5.1.1 at RCPT for unknown local
and hosted users, an alias loop (550 5.4.6 at RCPT; check-config names file:line), sendmail
injection expanded like SMTP, a bounce to an aliased sender reaching the alias's mailbox,
program delivery as an unprivileged user with EX_TEMPFAIL and a timeout retried, and
`estafette reload` picking up a new alias while a broken file keeps the old maps."""
import os
import pwd
import smtplib
import subprocess

import harness


def rcpt(mta, address):
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail("sender@client.test")
        return s.rcpt(address)


def estafette(mta, *args):
    return subprocess.run([mta.program("estafette")] + list(args) + ["-c", mta.conf],
                          capture_output=True, text=True, timeout=60)


def msg(subject):
    return "From: s@client.test\r\nSubject: %s\r\n\r\nbody of %s\r\n" % (subject, subject)


def test(tmp, stoppers):
    sink = harness.SmtpSink(tmp).start()
    stoppers.append(sink)
    out = os.path.join(tmp, "out")  # where the programs write, as nobody
    os.makedirs(out)
    os.chmod(out, 0o777)
    etc = os.path.join(tmp, "etc")
    os.makedirs(os.path.join(etc, "lists"))
    aliases = os.path.join(etc, "aliases")
    alias_text = (
        "# test aliases\n"
        "team: alice, bob\n"
        "ext: carol@remote.test\n"
        "everyone: :include:lists/everyone\n"
        "owner: alice\n"
        "loopa: loopb\n"
        "loopb@x.sub.test: loopa@x.sub.test\n"
        "prog: \"|cat > %(out)s/prog.out; id -u > %(out)s/prog.uid\"\n"
        "busy: \"|if [ -e %(out)s/busy.flag ]; then cat > %(out)s/busy.out;"
        " else touch %(out)s/busy.flag; echo try later; exit 75; fi\"\n"
        "slow: \"|if [ -e %(out)s/slow.flag ]; then cat > %(out)s/slow.out;"
        " else touch %(out)s/slow.flag; sleep 30; fi\"\n"
        "fail: \"|echo no such list here; exit 1\"\n" % {"out": out})
    with open(aliases, "w") as f:
        f.write(alias_text)
    with open(os.path.join(etc, "lists", "everyone"), "w") as f:
        f.write("alice\ndan@remote.test\n")
    with open(os.path.join(etc, "hosteddomains"), "w") as f:
        f.write("hosted.test\n")
    with open(os.path.join(etc, "hosted_mailboxes"), "w") as f:
        f.write("joe@hosted.test: hosted/joe\n")

    mta = harness.Estafette(
        tmp, local_domains="estafette.test, .sub.test", local_mailboxes="existing",
        aliases=aliases, hosteddomains=os.path.join(etc, "hosteddomains"),
        hosted_mailboxes=os.path.join(etc, "hosted_mailboxes"), allow_program_delivery="yes",
        program_timeout="1s", routes={"remote.test": "127.0.0.1:%d" % sink.port})
    for user in ("alice", "bob"):
        os.makedirs(mta.maildir(user))
    mta.start()
    stoppers.append(mta)

    # Unknown local and hosted users, and a loop only expansion can see, are refused at RCPT.
    code, text = rcpt(mta, "nosuch@estafette.test")
    assert code == 550 and text.startswith(b"5.1.1"), (code, text)
    code, text = rcpt(mta, "ann@hosted.test")
    assert code == 550 and text.startswith(b"5.1.1"), (code, text)
    code, text = rcpt(mta, "loopa@x.sub.test")
    assert code == 550 and text.startswith(b"5.4.6"), (code, text)
    assert not os.path.exists(mta.maildir("nosuch")), "a mailbox was created for nosuch"

    # Two local users, a remote target, an include (alice once only) and a hosted mailbox.
    mta.send("s@client.test", ["team@estafette.test", "ext@estafette.test",
                               "everyone@estafette.test", "joe@hosted.test"], msg("one"))
    harness.wait_for(lambda: len(mta.maildir_messages("alice")) == 1 and
                     len(mta.maildir_messages("bob")) == 1, 15, "alice and bob")
    joe = os.path.join(mta.state, "maildir", "hosted", "joe", "new")
    harness.wait_for(lambda: os.path.isdir(joe) and len(os.listdir(joe)) == 1, 15, "joe")
    harness.wait_for(lambda: len(sink.messages()) >= 1, 15, "the sink")
    sunk = b"".join(sink.messages())
    assert b"carol@remote.test" in sunk and b"dan@remote.test" in sunk, sunk[:2000]
    assert b"body of one" in sunk
    assert b"Delivered-To: alice@estafette.test" in mta.maildir_messages("alice")[0]

    # sendmail injection goes through esmtpd: expanded the same way.
    r = subprocess.run([mta.program("estafette-sendmail"), "-C", mta.conf, "-f",
                        "s@estafette.test", "team@estafette.test"],
                       input=msg("two").replace("\r\n", "\n"), text=True, timeout=30)
    assert r.returncode == 0
    harness.wait_for(lambda: len(mta.maildir_messages("bob")) == 2, 15, "bob's second")

    # Programs: run as nobody (the alias file is root's), EX_TEMPFAIL and a timeout retried,
    # another exit status bounced to the sender, whose alias leads to alice.
    mta.send("owner@estafette.test", ["prog@estafette.test", "busy@estafette.test",
                                      "slow@estafette.test"], msg("three"))
    mta.send("owner@estafette.test", ["fail@estafette.test"], msg("four"))
    uid_file = os.path.join(out, "prog.uid")
    harness.wait_for(lambda: os.path.exists(uid_file) and os.path.getsize(uid_file) > 0, 15,
                     "prog")
    with open(os.path.join(out, "prog.out")) as f:
        assert "body of three" in f.read()
    with open(os.path.join(out, "prog.uid")) as f:
        assert int(f.read()) == pwd.getpwnam("nobody").pw_uid
    harness.wait_for(lambda: os.path.exists(os.path.join(out, "busy.out")), 20, "busy retried")
    harness.wait_for(lambda: os.path.exists(os.path.join(out, "slow.out")), 20, "slow retried")
    log = mta.read_log()
    assert "program exited 75 (EX_TEMPFAIL): try later" in log, log[-3000:]
    assert "program timed out" in log, log[-3000:]
    harness.wait_for(lambda: any(b"no such list here" in m for m in mta.maildir_messages("alice")),
                     15, "the bounce in alice's mailbox")

    # Reload: a new alias without restart; then a broken file keeps the old maps.
    code, _ = rcpt(mta, "newalias@estafette.test")
    assert code == 550
    with open(aliases, "w") as f:
        f.write(alias_text + "newalias: bob\n")
    r = estafette(mta, "reload")
    assert r.returncode == 0, r.stderr
    assert rcpt(mta, "newalias@estafette.test")[0] == 250, "the new alias after the reload"
    with open(aliases, "w") as f:
        f.write(alias_text + "newalias: bob\nthis line is broken\n")
    broken = "%s:%d:" % (aliases, len(alias_text.splitlines()) + 2)
    r = estafette(mta, "check-config")
    assert r.returncode == 1 and broken + " expected 'name: target, ...'" in r.stdout, r.stdout
    r = estafette(mta, "reload")
    assert r.returncode == 1 and broken in r.stderr, r.stdout + r.stderr
    code, _ = rcpt(mta, "newalias@estafette.test")
    assert code == 250, "the old maps were not kept"

    # An alias loop check-config can see is reported with file:line.
    with open(aliases, "w") as f:
        f.write("a: b\nb: a@estafette.test\n")
    r = estafette(mta, "check-config")
    assert r.returncode == 1 and "alias loop" in r.stdout and aliases + ":" in r.stdout, r.stdout


harness.run(test)
