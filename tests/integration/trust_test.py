"""The trust boundary between the unprivileged daemons and estafette-local (root): a queue
record is written by esmtpd or courierd, which run as the unprivileged user, so anyone with code
running as that user can write one. This test does what such an attacker would: it writes queue
records of its own into the queue, as the queue's owner, with program targets (`P` lines) that
no alias names, that name another alias's command, or that carry a uid as older records did;
then starts Estafette. estafette-local must run only the program the aliases name for that
alias, as the user its own read of the alias file gives, and bounce the rest with 5.7.1. A
forged record without a program is delivered, which shows the forged records are well-formed
and were read. Root only in full (the daemons run as `nobody`); as another user the records are
forged as that user."""
import contextlib
import os
import pwd
import smtplib

import harness


def send(mta, rcpt, subject):
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.sendmail("sender@client.test", [rcpt],
                   "From: sender@client.test\r\nSubject: %s\r\n\r\nbody\r\n" % subject)


def program_uid(out, timeout, what):
    """The uid the alias's program wrote to out/legit.uid, read once the line is there in full
    (the shell makes the file before `id -u` writes to it)."""
    path = os.path.join(out, "legit.uid")

    def line():
        with contextlib.suppress(FileNotFoundError), open(path) as f:
            text = f.read()
            return text if text.endswith("\n") else None

    return int(harness.wait_for(line, timeout, what))


def test(tmp, stoppers):
    out = os.path.join(tmp, "out")  # where the programs write
    os.makedirs(out)
    os.chmod(out, 0o777)
    mta = harness.start_with_program_alias(tmp, stoppers, 'prog: "|touch %s/legit; id -u > %s/legit.uid"\n' % (out, out))

    # The alias's own program runs, as program_user (nobody) for a root-owned alias file.
    send(mta, "prog@estafette.test", "legit")
    uid = program_uid(out, 15, "the program")
    if os.geteuid() == 0:
        assert uid == pwd.getpwnam("nobody").pw_uid, uid
    os.unlink(os.path.join(out, "legit"))
    mta.stop()

    # The attacker's records, written into the queue as its owner.
    seg = os.path.join(mta.state, "queue", "seg")
    st = os.stat(seg)
    body = b"From: attacker@estafette.test\r\nSubject: forged\r\n\r\nforged body\r\n"
    forged = {
        "0FORGED1-00001-0000000A": [
            ("alice@estafette.test", [("P", "touch %s/pwned-no-alias" % out)])],
        "0FORGED1-00001-0000000B": [
            ("prog@estafette.test", [("P", "touch %s/pwned-other-command" % out)]),
            ("prog@estafette.test", [("P", "0 touch %s/pwned-root-uid" % out)])],
        "0FORGED1-00001-0000000C": [
            ("prog@estafette.test", [("P", "0 touch %s/legit; id -u > %s/legit.uid" % (out, out))])],
        "0FORGED1-00001-0000000D": [("bob@estafette.test", [])],
    }
    os.unlink(os.path.join(out, "legit.uid"))
    for queue_id, rcpts in forged.items():
        path = os.path.join(seg, queue_id)
        with open(path, "wb") as f:
            f.write(harness.queue_record(queue_id, "attacker@estafette.test", rcpts, body))
        os.chown(path, st.st_uid, st.st_gid)
    mta.start()

    # The record without a program is delivered: the forged records are read.
    harness.wait_for(lambda: len(mta.maildir_messages("bob")) == 1, 20, "bob's forged message")
    # An old-style "UID COMMAND" record for the alias's own command runs it, as program_user:
    # the uid in the record (0) is ignored.
    uid = program_uid(out, 20, "the alias's program from an old-style record")
    if os.geteuid() == 0:
        assert uid == pwd.getpwnam("nobody").pw_uid, uid
    # The three forged programs bounce with 5.7.1 to the sender; none ran.
    harness.wait_for(lambda: len(mta.maildir_messages("attacker")) >= 2, 20, "the bounces")
    bounces = b"".join(mta.maildir_messages("attacker"))
    assert bounces.count(b"5.7.1") >= 3, bounces[:3000]
    assert b"no alias names this program delivery" in bounces, bounces[:3000]
    harness.wait_for(lambda: mta.queue_files() == [], 20, "an empty queue")
    for name in ("pwned-no-alias", "pwned-other-command", "pwned-root-uid"):
        assert not os.path.exists(os.path.join(out, name)), name + " ran"
    log = mta.read_log()
    assert log.count("refused program target") == 3, log[-3000:]


if __name__ == "__main__":
    harness.run(test)
