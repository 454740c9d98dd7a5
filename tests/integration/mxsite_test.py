"""MX sites and per-destination limits against real DNS (dnsmasq on a loopback port) and real
SMTP sinks (recording sinks written here, on 127.0.0.1 and 127.0.0.2, port esmtp_port):

1. a.test, b.test and c.test all have MX mx.site.test (127.0.0.1); the destinations file says
   `b.test concurrency=2`, which names their common site. 12 messages to the three domains, each
   held 0.3 s by the sink: the sink never sees more than 2 sessions at once (without sites each
   domain would have a window of its own, up to MAXHOST 10), gets fewer connections than messages,
   and one connection carries mail for more than one domain (reuse across the site).
2. `rate.test rate=2/s` (MX mx.rate.test, 127.0.0.2): 5 messages reach the sink >= ~0.5 s apart.
   `estafette check-config` accepts the file, and names a broken line by file:line.
3. A DNS server that never answers: a message to a.test is queued under the domain (no site),
   deferred with a DNS error, mailq answers at once meanwhile; when dnsmasq starts on that port,
   `estafette flush` delivers it. Nothing is lost.
"""
import json
import os
import socket
import subprocess
import time

import harness


class Sink(harness.ThreadedSink):
    """An SMTP sink recording connections, sessions at once and each message's arrival."""

    def __init__(self, host, port, hold=0.0):
        self.hold = hold
        self.active = 0
        self.max_active = 0
        super().__init__(host, port, SinkHandler)  # messages: (time of MAIL, conn, rcpts)

    def count(self):
        with self.lock:
            return len(self.messages)


class SinkHandler(harness.SinkHandler):
    def handle(self):
        srv = self.server
        conn = self.count_connection()
        with srv.lock:
            srv.active += 1
            srv.max_active = max(srv.max_active, srv.active)
        try:
            self.session(srv, conn)
        finally:
            with srv.lock:
                srv.active -= 1

    def session(self, srv, conn):
        self.reply("220 sink.test ESMTP")
        mail_at, rcpts = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.reply("250-sink.test\r\n250 PIPELINING")
            elif verb == b"MAIL":
                mail_at, rcpts = time.time(), []
                self.reply("250 2.1.0 Ok")
            elif verb == b"RCPT":
                rcpts.append(line[line.index(b"<") + 1:line.index(b">")].decode())
                self.reply("250 2.1.5 Ok")
            elif verb == b"DATA":
                self.reply("354 go on")
                while self.rfile.readline() not in (b".\r\n", b""):
                    pass
                time.sleep(srv.hold)
                with srv.lock:
                    srv.messages.append((mail_at, conn, rcpts))
                self.reply("250 2.0.0 Ok")
            elif verb == b"RSET":
                self.reply("250 2.0.0 Ok")
            elif verb == b"QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 no")


# MX records for sites_and_rate: a, b and c.test share mx.site.test; rate.test has its own host.
SITE_RECORDS = ["--local-ttl=30",
                "--mx-host=a.test,mx.site.test,10", "--mx-host=b.test,mx.site.test,10",
                "--mx-host=c.test,mx.site.test,20", "--host-record=mx.site.test,127.0.0.1",
                "--mx-host=rate.test,mx.rate.test,10", "--host-record=mx.rate.test,127.0.0.2"]


def estafette(mta, *args):
    return subprocess.run([mta.program("estafette")] + list(args) + ["-c", mta.conf],
                          capture_output=True, text=True, timeout=60)


def send_all(mta, rcpts):
    import smtplib
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        for n, rcpt in enumerate(rcpts):
            s.sendmail("alice@estafette.test", [rcpt],
                       b"Subject: site %d\r\n\r\nbody %d\r\n" % (n, n))


def free_port_on_both():
    """A TCP port free on 127.0.0.1 and 127.0.0.2 (one esmtp_port for both MX hosts)."""
    for _ in range(50):
        port = harness.free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.2", port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free on 127.0.0.1 and 127.0.0.2")


def sites_and_rate(tmp, stoppers):
    smtp_port, dns_port = free_port_on_both(), harness.free_port()
    site_sink = Sink("127.0.0.1", smtp_port, hold=0.3)
    stoppers.append(site_sink)
    rate_sink = Sink("127.0.0.2", smtp_port)
    stoppers.append(rate_sink)
    stoppers.append(harness.Dnsmasq(tmp, dns_port, SITE_RECORDS).start())
    dests = os.path.join(tmp, "destinations")
    with open(dests, "w") as f:
        f.write("# the site of b.test (shared by a.test and c.test)\n"
                "b.test      concurrency=2\n"
                "rate.test   rate=2/s\n")
    mta = harness.Estafette(tmp, name="sites", esmtp_port=smtp_port,
                            dns_servers="127.0.0.1:%d" % dns_port, dns_timeout="500ms",
                            dns_tries=1, esmtpclient_processes=1, idle_reuse="5s",
                            destinations=dests)
    stoppers.append(mta)
    mta.start()
    r = estafette(mta, "check-config")
    assert r.returncode == 0, r.stdout + r.stderr
    # check-config names a broken destinations line by file and line.
    bad = os.path.join(tmp, "bad-destinations")
    with open(bad, "w") as f:
        f.write("b.test concurrency=2\nrate.test rate=2/day\n")
    bad_conf = os.path.join(tmp, "bad.conf")
    with open(mta.conf) as f, open(bad_conf, "w") as out:
        out.write(f.read().replace(dests, bad))
    r = subprocess.run([mta.program("estafette"), "check-config", "-c", bad_conf],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "%s:2: rate: expected N/s, N/m or N/h" % bad in r.stdout + r.stderr, \
        r.stdout + r.stderr

    # 1. One site for three domains: its concurrency in total, and its connections reused.
    rcpts = ["user%d@%s" % (i, d) for i in range(4) for d in ("a.test", "b.test", "c.test")]
    send_all(mta, rcpts)
    harness.wait_for(lambda: site_sink.count() == 12, 30, "12 messages at the site's sink")
    with site_sink.lock:
        got = sorted(r for _, _, rs in site_sink.messages for r in rs)
        by_conn = {}
        for _, conn, rs in site_sink.messages:
            by_conn.setdefault(conn, set()).update(r.split("@")[1] for r in rs)
        connections, max_active = site_sink.connections, site_sink.max_active
    assert got == sorted(rcpts), got
    assert max_active <= 2, "the sink saw %d sessions at once (site concurrency 2)" % max_active
    assert connections < 12, "%d connections for 12 messages: no reuse" % connections
    assert any(len(domains) > 1 for domains in by_conn.values()), \
        "no connection carried mail for two domains of the site: %r" % by_conn
    log = mta.read_log()
    assert "reused=yes" in log, "esmtpclient never reused a connection"

    # 2. rate=2/s: deliveries start 0.5 s apart; the mail over the rate waits (not deferred).
    send_all(mta, ["r%d@rate.test" % i for i in range(5)])
    harness.wait_for(lambda: rate_sink.count() == 5, 30, "5 messages at the rate sink")
    with rate_sink.lock:
        times = sorted(t for t, _, _ in rate_sink.messages)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.45, "deliveries closer than the rate allows: %r" % gaps
    assert "status=deferred" not in mta.read_log(), "mail over the rate was deferred"
    print("site: %d connections for 12 messages, at most %d at once; rate gaps %s"
          % (connections, max_active, ", ".join("%.2f" % g for g in gaps)))


def silent_dns(tmp, stoppers):
    smtp_port = harness.free_port()
    sink = Sink("127.0.0.1", smtp_port)
    stoppers.append(sink)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # takes queries, never answers
    silent.bind(("127.0.0.1", 0))
    dns_port = silent.getsockname()[1]
    mta = harness.Estafette(tmp, name="silent", esmtp_port=smtp_port,
                            dns_servers="127.0.0.1:%d" % dns_port, dns_timeout="400ms",
                            dns_tries=1, esmtpclient_processes=1, retry_base="60s",
                            retry_max="60s")
    stoppers.append(mta)
    mta.start()
    send_all(mta, ["bob@a.test"])
    harness.wait_for(lambda: "status=deferred" in mta.read_log(), 15, "a deferral")
    started = time.time()
    r = estafette(mta, "mailq", "--json")
    assert r.returncode == 0 and time.time() - started < 2, r.stdout + r.stderr
    (m,) = json.loads(r.stdout)["messages"]
    (rcpt,) = m["recipients"]
    assert rcpt["destination"] == "a.test", rcpt  # no site: the domain is the key
    assert "DNS" in rcpt["last_error"], rcpt
    assert sink.count() == 0

    # The DNS server comes back on the same port; flush delivers at once (retry_base is 60 s).
    silent.close()
    dns = harness.Dnsmasq(tmp, dns_port, ["--local-ttl=30", "--mx-host=a.test,mx.site.test,10",
                                          "--host-record=mx.site.test,127.0.0.1"])
    stoppers.append(dns.start())
    r = estafette(mta, "flush")
    assert r.returncode == 0, r.stdout + r.stderr
    harness.wait_for(lambda: sink.count() == 1, 15, "delivery once DNS answers")
    harness.wait_for(lambda: not mta.queue_files(), 10, "an empty queue")


def test(tmp, stoppers):
    sites_and_rate(tmp, stoppers)
    silent_dns(tmp, stoppers)


harness.run(test)
