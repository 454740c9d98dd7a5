"""start, status, reload and restart tell the truth (issue 16), with the real daemons:
- `estafette start` with an alias loop or an unwritable log file exits 1 with the daemon's own
  reason and leaves nothing running; a good start returns only once esmtpd listens;
- `estafette reload` re-reads estafette.conf itself: a domain added to local_domains is
  delivered locally after it, while a session opened before it finishes its message on the old
  esmtpd; a new listen address is served; a broken aliases file or a changed state_dir fails
  the reload with the exact error, exit 1, and the old config stays in force;
- `estafette status` exits 1 and says why when a daemon cannot be restarted, 0 once it is back;
- `estafette restart` stops and starts.
"""
import os
import smtplib
import signal
import subprocess
import time
import urllib.request

import harness


def estafette(mta, *args, timeout=120):
    return subprocess.run([mta.program("estafette")] + list(args) + ["-c", mta.conf],
                          capture_output=True, text=True, timeout=timeout)


def running(mta):
    return subprocess.run(["pgrep", "-f", "-c " + mta.conf], capture_output=True,
                          text=True).stdout.split()


def esmtpd_pids(mta):
    return [int(p) for p in subprocess.run(["pgrep", "-f", "estafette-esmtpd -c " + mta.conf],
                                           capture_output=True, text=True).stdout.split()]


def set_setting(mta, key, value):
    lines = [l for l in open(mta.conf).read().splitlines() if not l.startswith(key + " =")]
    with open(mta.conf, "w") as f:
        f.write("\n".join(lines + ["%s = %s" % (key, value)]) + "\n")


def message(tag):
    return b"Subject: %s\r\n\r\nbody %s\r\n" % (tag.encode(), tag.encode())


def test(tmp, stoppers):
    aliases = os.path.join(tmp, "aliases")
    with open(aliases, "w") as f:
        f.write("a: b\nb: a@estafette.test\n")  # a loop: esmtpd refuses to start
    mta = harness.Estafette(tmp, aliases=aliases, esmtpd_processes=2)

    class Stopper:
        def stop(self):
            estafette(mta, "stop")

    stoppers.append(Stopper())

    # A loop in the aliases: start fails with esmtpd's reason; nothing is left running.
    r = estafette(mta, "start")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "alias loop" in r.stderr and aliases + ":2:" in r.stderr, r.stderr
    assert "started" not in r.stdout, r.stdout
    assert estafette(mta, "status").returncode == 3
    harness.wait_for(lambda: not running(mta), 15, "nothing running after the failed start")
    assert not harness.port_open(mta.port)

    # A log file that cannot be opened: the reason on the terminal, not in that log.
    set_setting(mta, "log_file", os.path.join(tmp, "no", "such", "dir", "x.log"))
    with open(aliases, "w") as f:
        f.write("postmaster: alice\n")
    r = estafette(mta, "check-config")
    assert r.returncode == 1 and "log_file: no directory" in r.stdout, r.stdout
    r = estafette(mta, "start")
    assert r.returncode == 1 and "log_file" in r.stderr and "no/such/dir" in r.stderr, r.stderr
    harness.wait_for(lambda: not running(mta), 15, "nothing running")
    set_setting(mta, "log_file", mta.log)

    # A good start returns once esmtpd listens: no waiting needed.
    r = estafette(mta, "start")
    assert r.returncode == 0 and "started (pid" in r.stdout, r.stdout + r.stderr
    assert harness.port_open(mta.port), "start returned before esmtpd listened"
    r = estafette(mta, "status")
    assert r.returncode == 0 and "not running" not in r.stdout, r.stdout
    assert r.stdout.count("estafette-esmtpd") == 2, r.stdout
    mta.send("x@else.test", ["postmaster@estafette.test"], message("one"))
    harness.wait_for(lambda: len(mta.maildir_messages("alice")) == 1, 15, "alice's first")

    # Reload with estafette.conf changed: a session opened before it ends on the old esmtpd, and
    # mail for the new local domain is delivered locally after it.
    old_esmtpd = set(esmtpd_pids(mta))
    session = smtplib.SMTP(mta.host, mta.port, timeout=30)
    session.ehlo("before.test")
    assert session.mail("x@else.test")[0] == 250
    set_setting(mta, "local_domains", "estafette.test new.test")
    second_port = harness.free_port()
    set_setting(mta, "listen", "127.0.0.1:%d, 127.0.0.1:%d" % (mta.port, second_port))
    r = estafette(mta, "reload")
    assert r.returncode == 0 and "reloaded" in r.stdout, r.stdout + r.stderr
    new_esmtpd = set(esmtpd_pids(mta)) - old_esmtpd
    assert len(new_esmtpd) == 2, (old_esmtpd, new_esmtpd)
    assert harness.port_open(second_port), "the new listen address is not served"
    assert session.rcpt("alice@estafette.test")[0] == 250
    assert session.data(message("across the reload"))[0] == 250
    session.quit()
    harness.wait_for(lambda: not (set(esmtpd_pids(mta)) & old_esmtpd), 15,
                     "the old esmtpd processes gone once their session ended")
    with smtplib.SMTP("127.0.0.1", second_port, timeout=30) as s:
        s.sendmail("x@else.test", ["carol@new.test"], message("new domain"))
    harness.wait_for(lambda: len(mta.maildir_messages("alice")) == 2, 15, "the old session's mail")
    harness.wait_for(lambda: len(mta.maildir_messages("carol")) == 1, 15,
                     "new.test delivered locally after the reload")
    log = mta.read_log()
    assert "reloaded: every daemon runs the new config" in log, log[-3000:]

    # A broken reload: the exact error, exit 1, and the old config keeps working.
    with open(aliases, "w") as f:
        f.write("postmaster: alice\na: b\nb: a@estafette.test\n")
    r = estafette(mta, "reload")
    assert r.returncode == 1 and "alias loop" in r.stderr, r.stdout + r.stderr
    assert "nothing changed" in r.stderr, r.stderr
    mta.send("x@else.test", ["postmaster@new.test", "alice@estafette.test"], message("after"))
    # Both reach alice: postmaster@new.test through the alias of the config in force.
    harness.wait_for(lambda: len(mta.maildir_messages("alice")) == 4, 15, "mail after the failure")
    r = estafette(mta, "status")
    assert r.returncode == 0 and "the last reload failed" in r.stdout, r.stdout

    # A setting that cannot change while running is named.
    set_setting(mta, "queue_backend", "file")
    with open(aliases, "w") as f:
        f.write("postmaster: alice\n")
    r = estafette(mta, "reload")
    assert r.returncode == 1 and "queue_backend (segment -> file)" in r.stderr, r.stderr
    assert "estafette restart" in r.stderr, r.stderr
    set_setting(mta, "queue_backend", "segment")

    # A daemon that cannot come back: status exits 1 and says why; 0 again once it is back.
    with open(aliases, "w") as f:
        f.write("a: b\nb: a@estafette.test\n")
    victim = sorted(esmtpd_pids(mta))[0]
    os.kill(victim, signal.SIGKILL)
    def status_says_why():
        r = estafette(mta, "status")
        return r.returncode == 1 and "alias loop" in r.stdout

    harness.wait_for(status_says_why, 15, "status exit 1 with the reason")
    r = estafette(mta, "status")
    assert "not running: " + aliases + ":2: alias loop" in r.stdout, r.stdout
    assert "not every daemon is up" in r.stdout, r.stdout
    with open(aliases, "w") as f:
        f.write("postmaster: alice\n")
    harness.wait_for(lambda: estafette(mta, "status").returncode == 0, 40, "the esmtpd back")

    # A reload that turns the metrics endpoint on starts estafette-metrics; one that turns it off
    # stops it (a program the new config does not run goes with the old daemons).
    metrics_port = harness.free_port()
    set_setting(mta, "metrics_listen", "127.0.0.1:%d" % metrics_port)
    r = estafette(mta, "reload")
    assert r.returncode == 0, r.stdout + r.stderr
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=20) as resp:
        assert resp.status == 200 and b"estafette_" in resp.read()
    set_setting(mta, "metrics_listen", "")
    r = estafette(mta, "reload")
    assert r.returncode == 0, r.stdout + r.stderr
    harness.wait_for(lambda: not harness.port_open(metrics_port), 15, "the metrics endpoint gone")
    assert "estafette-metrics" not in estafette(mta, "status").stdout

    # restart: another estafetted, the mail still flows.
    before = open(os.path.join(mta.state, "run", "estafetted.pid")).read()
    r = estafette(mta, "restart")
    assert r.returncode == 0 and "stopped" in r.stdout and "started" in r.stdout, r.stdout
    assert open(os.path.join(mta.state, "run", "estafetted.pid")).read() != before
    mta.send("x@else.test", ["alice@estafette.test"], message("restarted"))
    harness.wait_for(lambda: len(mta.maildir_messages("alice")) == 5, 15, "mail after restart")
    r = estafette(mta, "stop")
    assert r.returncode == 0
    harness.wait_for(lambda: not running(mta), 15, "nothing running after stop")


harness.run(test)
