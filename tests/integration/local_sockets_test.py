"""The local sockets (issue 13, item 11); root only (runs estafette-sendmail as nobody).

courierd.sock (admin requests, NewMessage) is 0600 and submit.sock 0666 even when estafetted
starts with umask 000 (their modes were the umask's). With submit_allowed_users = @<a group
nobody is not in>, estafette-sendmail run as nobody is refused (554 5.7.1, logged with its uid)
and nothing is queued, while root still submits; a list naming nobody lets it in again."""
import os
import stat
import subprocess

import harness


def sendmail(mta, rcpt, text, nobody):
    def drop():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    program = mta.program_for_others("estafette-sendmail") if nobody else \
        mta.program("estafette-sendmail")
    return subprocess.run([program, "-C", mta.conf, rcpt], input=text, capture_output=True,
                          timeout=30, preexec_fn=drop if nobody else None, cwd=mta.tmp)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test(tmp, stoppers):
    if os.geteuid() != 0:
        harness.skip("needs root (runs estafette-sendmail as nobody)")
    mta = harness.Estafette(tmp, submit_allowed_users="@daemon, 12345")
    old = os.umask(0)
    try:
        mta.start()
    finally:
        os.umask(old)
    stoppers.append(mta)
    run = os.path.join(mta.state, "run")
    assert mode(os.path.join(run, "courierd.sock")) == 0o600, oct(mode(os.path.join(run,
                                                                              "courierd.sock")))
    assert mode(os.path.join(run, "submit.sock")) == 0o666, oct(mode(os.path.join(run,
                                                                            "submit.sock")))

    r = sendmail(mta, "alice@estafette.test", b"Subject: from nobody\n\nhi\n", nobody=True)
    assert r.returncode != 0, (r.returncode, r.stdout, r.stderr)
    assert b"554 5.7.1" in r.stderr, r.stderr
    harness.wait_for(lambda: "refused local submission uid=65534" in mta.read_log(), 10,
                     "the refusal logged")
    r = sendmail(mta, "alice@estafette.test", b"Subject: from root\n\nhi\n", nobody=False)
    assert r.returncode == 0, (r.returncode, r.stderr)
    msgs = harness.wait_for(lambda: mta.maildir_messages("alice"), 15, "root's message")
    assert len(msgs) == 1 and b"Subject: from root" in msgs[0], msgs
    assert "connect from local uid=0" in mta.read_log()
    mta.stop()

    mta = harness.Estafette(tmp, name="open", submit_allowed_users="nobody")
    mta.start()
    stoppers.append(mta)
    r = sendmail(mta, "bob@estafette.test", b"Subject: from nobody\n\nhi\n", nobody=True)
    assert r.returncode == 0, (r.returncode, r.stderr)
    msgs = harness.wait_for(lambda: mta.maildir_messages("bob"), 15, "nobody's message")
    assert b"Received: from local (uid 65534)" in msgs[0], msgs
    assert "connect from local uid=65534" in mta.read_log()


harness.run(test)
