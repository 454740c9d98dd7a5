#!/usr/bin/env python3
"""estafette-bench's sink and source (issue 17, bench/kit) straight into each other on loopback:
plaintext with and without PIPELINING and several messages per session, STARTTLS with a
throwaway self-signed certificate (`openssl req`), with and without session resumption (TLS 1.3
and 1.2); the counts on both sides must match (nothing lost), every Message-ID the sink recorded
is unique, --fail makes the source report every message failed (exit 1), --rate paces the
source (100 messages at 50 per second take about 2 s, none late; a cap of one session makes
them late, none lost), and Postfix's smtp-source (when installed) is counted by the sink like
any client."""
import os
import re
import signal
import socket
import subprocess
import time

import harness


def bench():
    return os.path.join(harness.BUILD_DIR, "estafette-bench")


def fields(line):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}


class Sink(harness.ServerProcess):
    def __init__(self, tmp, name, *options):
        self.port = harness.free_port()
        self.out = os.path.join(tmp, name + ".out")
        self.args = [bench(), "sink", "--listen", "127.0.0.1:%d" % self.port, *options]

    def start(self):
        self.file = open(self.out, "w")
        self.proc = subprocess.Popen(self.args, stdout=self.file, stderr=subprocess.STDOUT)
        harness.wait_for(lambda: self.ready(), 10, "the sink")
        return self

    def ready(self):
        """A whole session (greeting, QUIT, 221): a probe that closed with the greeting unread
        would make the kernel reset the connection, and the sink count an error."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                f = s.makefile("rb")
                greeting = f.readline()
                s.sendall(b"QUIT\r\n")
                return greeting.startswith(b"220") and f.readline().startswith(b"221")
        except OSError:
            return False

    def summary(self):
        """SIGTERM, then the summary line's fields."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(10) == 0
        self.file.close()
        with open(self.out) as f:
            text = f.read()
        lines = [l for l in text.splitlines() if l.startswith("sink: ")]
        assert len(lines) == 1, text
        return fields(lines[0])


def source(port, *options, expect_status=0):
    r = subprocess.run([bench(), "source", "--target", "127.0.0.1:%d" % port, *options],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == expect_status, (r.returncode, r.stdout, r.stderr)
    lines = [l for l in r.stdout.splitlines() if l.startswith("source: ")]
    assert len(lines) == 1, r.stdout
    f = fields(lines[0])
    for key in ("msgs_per_s", "sent", "failed", "handshakes", "resumed", "elapsed_s", "rate",
                "late"):
        assert key in f, lines[0]
    return f


def test(tmp, stoppers):
    # Usage errors exit 2 and name the option.
    r = subprocess.run([bench(), "source", "--target", "127.0.0.1:1", "--messages", "0"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--messages" in r.stderr, r.stderr

    # Plaintext: pipelined, unpipelined, several messages per session.
    ids = os.path.join(tmp, "ids")
    sink = Sink(tmp, "plain", "--record-ids", ids).start()
    stoppers.append(sink)
    a = source(sink.port, "--messages", "300", "--concurrency", "50", "--size", "400")
    b = source(sink.port, "--messages", "200", "--concurrency", "20", "--size", "65536",
               "--pipelining", "off", "--per-session", "7")
    assert (a["sent"], a["failed"], b["sent"], b["failed"]) == ("300", "0", "200", "0"), (a, b)
    assert a["handshakes"] == "0" and b["handshakes"] == "0"
    s = sink.summary()
    assert s["messages"] == "500" and s["rejected"] == "0", s
    assert s["sessions"] == str(1 + 300 + (200 + 6) // 7), s  # 1: the start-up probe
    assert int(s["bytes"]) == 300 * 400 + 200 * 65536, s
    with open(ids) as f:
        recorded = f.read().split()
    assert len(recorded) == 500 and len(set(recorded)) == 500, recorded[:3]

    # --rate: an open loop. 100 messages at 50 per second take about 2 s (the last one is due
    # 1.98 s after the start) where the closed loop takes a fraction of a second; with 20
    # sessions allowed none waits for the cap. With a cap of one session at a rate no session
    # keeps up with, all but the first wait (late), and none is lost.
    paced = Sink(tmp, "rate").start()
    stoppers.append(paced)
    closed = source(paced.port, "--messages", "100", "--concurrency", "20")
    assert (closed["sent"], closed["rate"], closed["late"]) == ("100", "0", "0"), closed
    assert float(closed["elapsed_s"]) < 1.6, closed
    began = time.monotonic()
    p = source(paced.port, "--messages", "100", "--concurrency", "20", "--rate", "50")
    took = time.monotonic() - began
    assert (p["sent"], p["failed"], p["rate"], p["late"]) == ("100", "0", "50", "0"), p
    assert 1.6 <= float(p["elapsed_s"]) <= 4 and 1.6 <= took <= 4, (took, p)
    q = source(paced.port, "--messages", "200", "--concurrency", "1", "--rate", "100000")
    assert (q["sent"], q["failed"], q["sessions"]) == ("200", "0", "200"), q
    assert 100 <= int(q["late"]) <= 199, q
    s = paced.summary()
    assert s["messages"] == "400" and s["rejected"] == "0" and s["errors"] == "0", s

    # STARTTLS, then STARTTLS resuming the session of its previous connection.
    pem, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", pem,
                        "-days", "30", "-subj", "/CN=sink.bench.test"], capture_output=True)
    assert r.returncode == 0, r.stderr
    sink = Sink(tmp, "tls", "--tls-cert", pem, "--tls-key", key).start()
    stoppers.append(sink)
    t = source(sink.port, "--messages", "200", "--concurrency", "25", "--starttls")
    assert (t["sent"], t["failed"], t["handshakes"], t["resumed"]) == ("200", "0", "200", "0"), t
    u = source(sink.port, "--messages", "200", "--concurrency", "25", "--tls-resume",
               "--per-session", "2")
    assert (u["sent"], u["failed"], u["handshakes"]) == ("200", "0", "100"), u
    # Only the first connection makes a full handshake; the others wait for its ticket.
    assert int(u["resumed"]) == 99, u
    # TLS 1.2: session resumption (a session ticket of TLS 1.2) works too.
    y = source(sink.port, "--messages", "60", "--concurrency", "10", "--tls-resume",
               "--tls-max", "1.2")
    assert (y["sent"], y["handshakes"], y["resumed"]) == ("60", "60", "59"), y
    s = sink.summary()
    assert s["messages"] == "460" and s["tls_sessions"] == "360" and s["errors"] == "0", s
    assert s["tls_resumed"] == "158", s

    # A source asked for STARTTLS fails every message at a sink that does not offer it.
    plain = Sink(tmp, "plain2").start()
    stoppers.append(plain)
    v = source(plain.port, "--messages", "10", "--concurrency", "5", "--starttls",
               expect_status=1)
    assert (v["sent"], v["failed"]) == ("0", "10"), v

    # --fail: every message refused, reported by the source, counted apart by the sink.
    failing = Sink(tmp, "fail", "--fail", "451 4.3.0 try again later").start()
    stoppers.append(failing)
    w = source(failing.port, "--messages", "60", "--concurrency", "10", "--per-session", "3",
               expect_status=1)
    assert (w["sent"], w["failed"]) == ("0", "60"), w
    s = failing.summary()
    assert s["messages"] == "0" and s["rejected"] == "60", s

    # --count: the sink ends by itself once that many arrived.
    counted = Sink(tmp, "count", "--count", "40").start()
    x = source(counted.port, "--messages", "40", "--concurrency", "8")
    assert x["sent"] == "40", x
    assert counted.proc.wait(10) == 0
    counted.file.close()
    with open(counted.out) as f:
        assert "messages=40 " in f.read()

    # Another client (Postfix's smtp-source) into the sink: all counted.
    if os.access("/usr/sbin/smtp-source", os.X_OK):
        other = Sink(tmp, "other").start()
        stoppers.append(other)
        r = subprocess.run(["/usr/sbin/smtp-source", "-s", "10", "-m", "100", "-l", "400",
                            "127.0.0.1:%d" % other.port], capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        s = other.summary()
        assert s["messages"] == "100", s


if __name__ == "__main__":
    harness.run(test)
