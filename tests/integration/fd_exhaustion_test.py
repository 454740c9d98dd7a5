"""Running out of fds does not make esmtpd spin (issue 13, item 3). esmtpd's RLIMIT_NOFILE is
lowered (prlimit on the running process) to a few fds above what it uses, and idle clients
take them all while more wait in the listen backlog: accept4 fails with EMFILE. esmtpd must
pause its listener instead of retrying at once: a few percent of CPU over 2 s, not ~100%, and a
handful of accept error lines in the log, not thousands. Once the idle clients leave, a new
client completes an SMTP transaction (still under the low limit) and the mail is delivered."""
import os
import socket
import subprocess
import time

import harness

SPARE_FDS = 16     # fds esmtpd may open beyond what it has after start-up
EXTRA_CLIENTS = 8  # clients left in the backlog once the fds are gone


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[0] is field 3 (state).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def accept_error_lines(mta):
    return [line for line in mta.read_log().splitlines() if "accept: " in line]


def test(tmp, stoppers):
    mta = harness.Estafette(tmp, esmtpd_processes="1", MAXPERIP="0").start()
    stoppers.append(mta)
    pid = mta.esmtpd_pids()[0]
    limit = harness.open_fds(pid) + SPARE_FDS
    subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%d:" % limit], check=True)

    idle = []
    try:
        for _ in range(SPARE_FDS + EXTRA_CLIENTS):
            idle.append(socket.create_connection(("127.0.0.1", mta.port), timeout=10))
        harness.wait_for(lambda: harness.open_fds(pid) >= limit, 10, "esmtpd to run out of fds")
        time.sleep(0.5)  # let a spin, if any, get going
        errors_before = len(accept_error_lines(mta))
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(2)
        cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        errors = len(accept_error_lines(mta))
        print("esmtpd out of fds: cpu %.1f%%, accept error lines %d (%d during the 2 s)" %
              (cpu * 100, errors, errors - errors_before))
        assert cpu < 0.05, "esmtpd spins while out of fds: %.0f%% CPU" % (cpu * 100)
        assert errors <= 10, "%d accept error lines in the log" % errors
        assert any("pausing the listener" in line for line in accept_error_lines(mta)), \
            accept_error_lines(mta)
    finally:
        for s in idle:
            s.close()

    # The fds come back (the idle sessions end, the backlog drains) and a client is served.
    harness.wait_for(lambda: harness.open_fds(pid) < limit - SPARE_FDS // 2, 15,
                     "esmtpd to free fds")
    started = time.monotonic()
    refused = mta.send("sender@client.test", ["alice@estafette.test"],
                       b"Subject: after the storm\r\n\r\nhello\r\n")
    assert refused == {}, refused
    assert time.monotonic() - started < 5, "the new client waited %.1fs" % (
        time.monotonic() - started)
    harness.wait_for(lambda: mta.maildir_messages("alice"), 15, "delivery to alice")
    assert "accepting again after" in mta.read_log(), "no resume line in the log"


if __name__ == "__main__":
    harness.run(test)
