"""The supervisor: `estafette start|status|stop` with a config file and esmtpd_processes = 2,
esmtpclient_processes = 2. Two esmtpd processes share the port (SO_REUSEPORT) and both accept
mail over many connections; courierd spreads deliveries over both esmtpclient processes;
`estafette status` lists every process; a killed esmtpd is restarted (the other keeps taking
mail) and mail flows again; stop leaves nothing running; a broken config stops start-up with
file:line: reason."""
import os
import re
import signal
import subprocess

import harness

CONNECTIONS = 40


def estafette(mta, *args):
    return subprocess.run([mta.program("estafette")] + list(args) + ["-c", mta.conf],
                          capture_output=True, text=True, timeout=60)


def esmtpd_pids(mta):
    return sorted(subprocess.run(["pgrep", "-f", "estafette-esmtpd -c " + mta.conf],
                                 capture_output=True, text=True).stdout.split())


def pids_logging(mta, area, what):
    """The pids of the processes of `area` that logged a line containing `what`."""
    pattern = re.compile(r"\[(\d+)\] %s: .*%s" % (re.escape(area), re.escape(what)))
    return {m.group(1) for m in pattern.finditer(mta.read_log())}


def send_many(mta, count, tag):
    """One connection per message, half to the local Maildir and half relayed."""
    for i in range(count):
        rcpt = "alice@estafette.test" if i % 2 else "bob@domain1.grey"
        mta.send("x@else.test", [rcpt], b"Subject: %s %d\r\n\r\nok\r\n" % (tag.encode(), i))


def delivered(mta):
    return len(re.findall(r"courierd: id=\S+ .* status=sent ", mta.read_log()))


def test(tmp, stoppers):
    sink = harness.SmtpSink(tmp).start()
    stoppers.append(sink)
    mta = harness.Estafette(tmp, esmtpd_processes=2, esmtpclient_processes=2,
                            relay_domains="domain1.grey",
                            routes={"domain1.grey": "127.0.0.1,%d" % sink.port})

    class Stopper:
        def stop(self):
            estafette(mta, "stop")

    stoppers.append(Stopper())
    r = estafette(mta, "start")
    assert r.returncode == 0 and "started" in r.stdout, r.stdout + r.stderr
    harness.wait_for(lambda: harness.port_open(mta.port), 15, "esmtpd")
    harness.wait_for(lambda: len(esmtpd_pids(mta)) == 2, 15, "two esmtpd processes")
    first = esmtpd_pids(mta)

    # Both esmtpd processes take connections; both esmtpclient processes deliver.
    send_many(mta, CONNECTIONS, "spread")
    harness.wait_for(lambda: delivered(mta) == CONNECTIONS, 30, "every message delivered")
    accepting = pids_logging(mta, "esmtpd", "accepted id=")
    assert accepting == set(first), "accepted by %s, esmtpd pids %s" % (accepting, first)
    assert len(pids_logging(mta, "esmtpclient", "delivered=1")) == 2, "one esmtpclient did all"
    assert len(mta.maildir_messages("alice")) == CONNECTIONS // 2
    assert "max_sessions=1000 processes=2 reuseport=yes" in mta.read_log()

    r = estafette(mta, "status")
    assert r.returncode == 0 and "running" in r.stdout, r.stdout
    for pid in first:
        assert re.search(r"estafette-esmtpd [12]/2 +pid %s\n" % pid, r.stdout), r.stdout
    assert re.search(r"estafette-courierd +pid \d+", r.stdout), r.stdout
    assert len(re.findall(r"estafette-esmtpclient +pid \d+", r.stdout)) == 2, r.stdout
    assert re.search(r"estafette-local +pid \d+", r.stdout), r.stdout

    # Kill one esmtpd: the other keeps taking mail, the supervisor restarts the dead one.
    victim, survivor = first
    os.kill(int(victim), signal.SIGKILL)
    # Reaped: its socket has left the SO_REUSEPORT group (connections still in its own accept
    # queue were reset; new ones all go to the survivor).
    harness.wait_for(lambda: "pid=%s killed by signal 9" % victim in mta.read_log(), 5,
                     "esmtpd %s reaped" % victim)
    send_many(mta, 4, "during")
    harness.wait_for(lambda: len(esmtpd_pids(mta)) == 2, 15, "a new esmtpd")
    now = esmtpd_pids(mta)
    assert survivor in now and victim not in now, (first, now)
    (restarted,) = set(now) - {survivor}
    harness.wait_for(lambda: "[%s] esmtpd: listening on" % restarted in mta.read_log(), 10,
                     "the new esmtpd listening")
    r = estafette(mta, "status")
    assert "pid %s\n" % restarted in r.stdout, r.stdout
    send_many(mta, CONNECTIONS, "after")
    total = 2 * CONNECTIONS + 4
    harness.wait_for(lambda: delivered(mta) == total, 30, "delivery after the restart")
    assert restarted in pids_logging(mta, "esmtpd", "accepted id="), "the new esmtpd took none"

    r = estafette(mta, "stop")
    assert r.returncode == 0 and "stopped" in r.stdout, r.stdout + r.stderr
    r = estafette(mta, "status")
    assert r.returncode == 3, r.stdout
    assert not harness.port_open(mta.port)
    left = subprocess.run(["pgrep", "-f", mta.conf], capture_output=True, text=True).stdout
    assert not left.strip(), "daemons left running: " + left
    assert not os.path.exists(os.path.join(mta.state, "run", "estafetted.children"))

    # A broken config: the error names the file and the line.
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("# comment\nlisten = 127.0.0.1:2525\nMAXHOST = many\n")
    r = subprocess.run([mta.program("estafetted"), "-f", "-c", bad], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and bad + ":3: MAXHOST" in r.stderr, r.stderr
    with open(bad, "w") as f:
        f.write("esmtpd_processes = lots\n")
    r = subprocess.run([mta.program("estafetted"), "-f", "-c", bad], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and bad + ":1: esmtpd_processes" in r.stderr, r.stderr


harness.run(test)
