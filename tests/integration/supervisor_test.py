"""The supervisor: `estafette start|status|stop` with a config file, a daemon killed by a signal
is restarted and mail flows again, and a broken config stops start-up with file:line: reason."""
import os
import signal
import subprocess

import harness


def estafette(mta, *args):
    return subprocess.run([mta.program("estafette")] + list(args) + ["-c", mta.conf],
                          capture_output=True, text=True, timeout=60)


def test(tmp, stoppers):
    mta = harness.Estafette(tmp)

    class Stopper:
        def stop(self):
            estafette(mta, "stop")

    stoppers.append(Stopper())
    r = estafette(mta, "start")
    assert r.returncode == 0 and "started" in r.stdout, r.stdout + r.stderr
    harness.wait_for(lambda: harness.port_open(mta.port), 15, "esmtpd")
    r = estafette(mta, "status")
    assert r.returncode == 0 and "running" in r.stdout, r.stdout

    # Kill esmtpd: the supervisor restarts it.
    pids = subprocess.run(["pgrep", "-f", "estafette-esmtpd -c " + mta.conf],
                          capture_output=True, text=True).stdout.split()
    assert len(pids) == 1, pids
    os.kill(int(pids[0]), signal.SIGKILL)
    harness.wait_for(lambda: subprocess.run(
        ["pgrep", "-f", "estafette-esmtpd -c " + mta.conf], capture_output=True,
        text=True).stdout.split() not in ([], pids), 15, "a new esmtpd")
    harness.wait_for(lambda: harness.port_open(mta.port), 15, "esmtpd back")
    mta.send("x@else.test", ["alice@estafette.test"], b"Subject: after restart\r\n\r\nok\r\n")
    harness.wait_for(lambda: mta.maildir_messages("alice"), 15, "delivery after the restart")

    r = estafette(mta, "stop")
    assert r.returncode == 0 and "stopped" in r.stdout, r.stdout + r.stderr
    r = estafette(mta, "status")
    assert r.returncode == 3, r.stdout
    assert not harness.port_open(mta.port)
    left = subprocess.run(["pgrep", "-f", mta.conf], capture_output=True, text=True).stdout
    assert not left.strip(), "daemons left running: " + left

    # A broken config: the error names the file and the line.
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("# comment\nlisten = 127.0.0.1:2525\nMAXHOST = many\n")
    r = subprocess.run([mta.program("estafetted"), "-f", "-c", bad], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and bad + ":3: MAXHOST" in r.stderr, r.stderr


harness.run(test)
