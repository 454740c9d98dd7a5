"""The classic names (issue 18): estafette-sendmail run as `sendmail`, `mailq` and `newaliases`
(links to it, as configure --enable-sendmail-names installs them), against a running Estafette.

- `sendmail alice` delivers a message read from stdin, as estafette-sendmail does;
- `mailq` (and `sendmail -bp`) lists a deferred message by its queue id, also while courierd
  does not run (the queue files read directly);
- `newaliases` (and `sendmail -bi`) refuses an aliases file with an error (exit 1, file:line,
  nothing reloaded: the old alias still works), then, fixed, prints the alias count and has
  estafetted reload, so that a new alias works at once;
- `make install-sendmail-names DESTDIR=...` makes the three links.
"""
import os
import socket
import subprocess

import harness


def links(tmp):
    """A directory with sendmail, mailq and newaliases linked to the build's estafette-sendmail."""
    d = os.path.join(tmp, "names")
    os.makedirs(d)
    for name in ("sendmail", "mailq", "newaliases"):
        os.symlink(os.path.join(harness.BUILD_DIR, "estafette-sendmail"), os.path.join(d, name))
    return d


def run(d, name, *args, stdin=""):
    return subprocess.run([os.path.join(d, name), *args], input=stdin, capture_output=True,
                          text=True, timeout=60)


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test(tmp, stoppers):
    d = links(tmp)
    aliases = os.path.join(tmp, "aliases")
    with open(aliases, "w") as f:
        f.write("staff: alice\n")
    # Unqualified addresses take the hostname (as Postfix's myorigin), a local domain here.
    mta = harness.Estafette(tmp, local_domains="estafette.test, mta.estafette.test",
                            aliases=aliases, routes={"dead.test": "127.0.0.1,%d" %
                                                          closed_port()},
                            retry_base="1h", retry_max="1h")
    stoppers.append(mta.start())

    r = run(d, "sendmail", "-C", mta.conf, "-f", "cron@estafette.test", "alice",
            stdin="Subject: from cron\n\nhello\n")
    assert r.returncode == 0, r
    harness.wait_for(lambda: mta.maildir_messages("alice"), 15, "sendmail's message to alice")

    # A message that stays deferred (its route's port is closed), listed by both names.
    r = run(d, "sendmail", "-C", mta.conf, "someone@dead.test", stdin="Subject: stuck\n\nx\n")
    assert r.returncode == 0, r
    harness.wait_for(lambda: mta.queue_files(), 15, "the deferred message in the queue")
    queue_id = mta.queue_files()[0]
    harness.wait_for(lambda: "someone@dead.test" in run(d, "mailq", "-C", mta.conf).stdout, 15,
                     "mailq to list the deferred message")
    for r in (run(d, "mailq", "-C", mta.conf), run(d, "sendmail", "-bp", "-C", mta.conf)):
        assert r.returncode == 0 and queue_id in r.stdout and "someone@dead.test" in r.stdout, r

    # newaliases: an error is refused with its line, and nothing is reloaded.
    with open(aliases, "w") as f:
        f.write("staff: alice\nteam: bob\nbroken:\n")
    r = run(d, "newaliases", "-C", mta.conf)
    assert r.returncode == 1 and (aliases + ":3:") in r.stderr, r
    mta.send("x@client.test", ["staff@estafette.test"], b"Subject: staff\r\n\r\nx\r\n")
    harness.wait_for(lambda: len(mta.maildir_messages("alice")) == 2, 15,
                     "staff@ still delivered to alice")
    # Fixed: counted, and estafetted reloads so the new alias works at once (before, team@ was
    # a mailbox of its own: local_mailboxes = create).
    with open(aliases, "w") as f:
        f.write("staff: alice\nteam: bob\n")
    r = run(d, "newaliases", "-C", mta.conf)
    assert r.returncode == 0 and "%s: 2 aliases" % aliases in r.stdout, r
    assert "reloaded" in r.stdout, r
    mta.send("x@client.test", ["team@estafette.test"], b"Subject: to the team\r\n\r\nx\r\n")
    harness.wait_for(lambda: mta.maildir_messages("bob"), 15, "team@ delivered to bob")
    # sendmail -bi is the same command.
    r = run(d, "sendmail", "-bi", "-C", mta.conf)
    assert r.returncode == 0 and "%s: 2 aliases" % aliases in r.stdout, r

    # Estafette stopped: mailq reads the queue files; newaliases only checks.
    mta.stop()
    r = run(d, "mailq", "-C", mta.conf)
    assert r.returncode == 0 and queue_id in r.stdout, r
    r = run(d, "newaliases", "-C", mta.conf)
    assert r.returncode == 0 and "not running" in r.stdout, r

    # The install target makes the three links.
    dest = os.path.join(tmp, "dest")
    subprocess.run(["make", "-s", "-C", harness.BUILD_DIR, "install-sendmail-names",
                    "DESTDIR=" + dest, "sbindir=/usr/sbin", "bindir=/usr/bin"], check=True,
                   capture_output=True, timeout=60)
    assert os.readlink(dest + "/usr/sbin/sendmail") == "/usr/bin/estafette-sendmail"
    assert os.readlink(dest + "/usr/bin/mailq") == "estafette-sendmail"
    assert os.readlink(dest + "/usr/bin/newaliases") == "estafette-sendmail"


if __name__ == "__main__":
    harness.run(test)
