"""Lost new-mail notices (issue 13, item 14): courierd is up and has scanned the queue, but esmtpd
cannot reach it (its socket is renamed away for a while, as in the second between a courierd's
start-up scan and esmtpd's reconnect), and esmtpd's backlog of notices (courierd_notify_backlog,
here 1) overflows: two of three notices are dropped. Once the socket is back, esmtpd asks
courierd to rescan the queue, and all three messages answered 250 are delivered without a
restart (they used to wait for the next start of courierd)."""
import os
import subprocess

import harness


def test(tmp, stoppers):
    mta = harness.Estafette(tmp, courierd_notify_backlog="1", esmtpd_processes="1")
    run = os.path.join(mta.state, "run")
    sock, hidden = os.path.join(run, "courierd.sock"), os.path.join(run, "hidden.sock")
    out = open(os.path.join(mta.dir, "daemons.out"), "ab")
    courierd = harness.ServerProcess()
    courierd.proc = subprocess.Popen([mta.program("estafette-courierd"), "-c", mta.conf],
                                     stdout=out, stderr=subprocess.STDOUT)
    stoppers.append(courierd)
    harness.wait_for(lambda: os.path.exists(sock), 10, "courierd's socket")
    os.rename(sock, hidden)  # courierd still listens there; esmtpd cannot find it
    esmtpd = harness.ServerProcess()
    esmtpd.proc = subprocess.Popen([mta.program("estafette-esmtpd"), "-c", mta.conf],
                                   stdout=out, stderr=subprocess.STDOUT)
    stoppers.append(esmtpd)
    harness.wait_for(lambda: harness.port_open(mta.port), 10, "esmtpd")
    tags = [b"lost-%d" % i for i in range(3)]
    for tag in tags:
        mta.send("alice@estafette.test", ["bob@estafette.test"],
                 b"Subject: %s\r\nMessage-ID: <%s@estafette.test>\r\n\r\nbody\r\n" % (tag, tag))
    assert mta.maildir_messages("bob") == [], "delivered before courierd heard of it"
    os.rename(hidden, sock)
    harness.wait_for(lambda: len(mta.maildir_messages("bob")) == 3, 20,
                     "the three messages (two notices were lost)")
    got = b"".join(mta.maildir_messages("bob"))
    for tag in tags:
        assert b"<%s@estafette.test>" % tag in got, tag
    log = mta.read_log()
    assert "rescan found id=" in log, "no rescan"
    harness.wait_for(lambda: not mta.queue_files(), 10, "the queue to empty")


harness.run(test)
