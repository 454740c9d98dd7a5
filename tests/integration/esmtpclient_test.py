#!/usr/bin/env python3
"""esmtpclient_test.py: drives estafette-esmtpclient directly over its IPC socketpair, as courierd
would, against SMTP sinks written here (recording every connection, command and DATA byte).

Checks: ModuleReady; one DeliverResult per Deliver with per-recipient results (250 / 451 / 550
at RCPT), pipelined and not; the wire bytes (dot-stuffing kept on the wire, undone by the
receiver); reuse of an idle connection for a second Deliver; a dead port -> host_failed; a
256 KiB body; MX routing with a dead first MX (when dnsmasq is available); clean exit when the
channel closes. Builds nothing: BUILD_DIR (default: cwd) holds estafette-esmtpclient.
Exit 0 on pass, 1 on failure, 77 to skip.
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import harness

BUILD_DIR = os.environ.get("BUILD_DIR", os.getcwd())
PROGRAM = os.path.join(BUILD_DIR, "estafette-esmtpclient")

DELIVER, DELIVER_RESULT, MODULE_READY = 2, 3, 4
STATUS = {0: "D", 1: "T", 2: "P"}
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- IPC frames (lib/ipc/frame.h) ----
def s_(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack("<I", len(b)) + b


def strings_(items):
    return struct.pack("<I", len(items)) + b"".join(s_(i) for i in items)


def deliver_frame(job_id, queue_id, path, offset, size, sender, destination, rcpts,
                  ret="", envid="", notify=(), orcpt=()):
    payload = (struct.pack("<Q", job_id) + s_(queue_id) + s_(path) + struct.pack("<QQ", offset, size)
               + s_(sender) + s_(destination) + strings_(rcpts)
               + s_(ret) + s_(envid) + strings_(notify) + strings_(orcpt))  # DSN (RFC 3461)
    return struct.pack("<I", len(payload) + 1) + bytes([DELIVER]) + payload


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        v = self.data[self.pos:self.pos + n]
        self.pos += n
        return v

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def str(self):
        return self.take(self.u32()).decode()


class Module:
    def __init__(self, config):
        ours, theirs = socket.socketpair()
        self.sock = ours
        self.proc = subprocess.Popen(
            [PROGRAM, "--fd", str(theirs.fileno()), "--config", config], pass_fds=[theirs.fileno()])
        theirs.close()
        self.buf = b""
        self.results = {}

    def frame(self, timeout):
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack("<I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    t, payload = self.buf[4], self.buf[5:4 + n]
                    self.buf = self.buf[4 + n:]
                    return t, payload
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("module closed the channel")
            self.buf += chunk

    def send(self, frame):
        self.sock.sendall(frame)

    def result(self, job_id, timeout=20):
        deadline = time.time() + timeout
        while job_id not in self.results:
            t, payload = self.frame(max(0.1, deadline - time.time()))
            if t != DELIVER_RESULT:
                raise AssertionError("unexpected frame type %d" % t)
            r = Reader(payload)
            jid, remote, host_failed, n = r.u64(), r.str(), r.u8() != 0, r.u32()
            res = [(STATUS[r.u8()], r.str()) for _ in range(n)]
            next_hop_dsn = r.u8() != 0
            setup_ms, transfer_ms = r.u64(), r.u64()
            check(r.pos == len(payload), "DeliverResult %d fully decoded" % jid)
            check(jid not in self.results, "one DeliverResult for job %d" % jid)
            self.results[jid] = {"remote": remote, "host_failed": host_failed, "results": res,
                                 "next_hop_dsn": next_hop_dsn, "setup_ms": setup_ms,
                                 "transfer_ms": transfer_ms}
        return self.results[job_id]


# ---- a recording SMTP sink ----
class Sink(harness.ThreadedSink):
    def __init__(self, host, port, pipelining=True, size=None, slow=0.0, slow_greeting=0.0):
        self.pipelining, self.size, self.slow = pipelining, size, slow
        self.slow_greeting = slow_greeting
        self.commands = []
        # messages: dicts with conn, sender, rcpts, wire, text
        super().__init__(host, port, SinkHandler)

    def server_bind(self):
        if self.slow:  # a small window, so that the client meets a full socket buffer
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        super().server_bind()

    def wait_messages(self, n, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return True
            time.sleep(0.02)
        return False


class SinkHandler(harness.SinkHandler):
    def handle(self):
        srv = self.server
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = self.count_connection()
        time.sleep(srv.slow_greeting)
        self.reply("220 sink.test ESMTP test sink")
        sender, rcpts = None, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode()
            with srv.lock:
                srv.commands.append((conn, cmd))
            verb = cmd[:4].upper()
            if verb == "EHLO":
                caps = ["sink.test"] + (["PIPELINING"] if srv.pipelining else [])
                caps += ["SIZE %d" % srv.size if srv.size else "SIZE", "8BITMIME"]
                self.reply("\r\n".join("250-" + c for c in caps[:-1]) + "\r\n250 " + caps[-1])
            elif verb == "HELO":
                self.reply("250 sink.test")
            elif verb == "MAIL":
                sender, rcpts = cmd[cmd.index("<") + 1:cmd.index(">")], []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                rcpt = cmd[cmd.index("<") + 1:cmd.index(">")]
                if rcpt.startswith("temp"):
                    self.reply("451 4.2.0 mailbox temporarily unavailable")
                elif rcpt.startswith("bad"):
                    self.reply("550 5.1.1 no such user")
                else:
                    rcpts.append(rcpt)
                    self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                if sender is None or not rcpts:
                    self.reply("554 5.5.1 no valid recipients")
                    continue
                self.reply("354 end with .")
                if srv.slow:
                    time.sleep(srv.slow)
                parts = []
                while True:
                    l = self.rfile.readline()
                    if not l:
                        return
                    if l == b".\r\n":
                        break
                    parts.append(l)
                wire = b"".join(parts)
                text = b"".join(l[1:] if l.startswith(b".") else l
                                for l in wire.splitlines(keepends=True))
                with srv.lock:
                    srv.messages.append({"conn": conn, "sender": sender, "rcpts": rcpts,
                                         "wire": wire, "text": text})
                sender, rcpts = None, []
                self.reply("250 2.0.0 Ok: queued")
            elif verb == "RSET":
                sender, rcpts = None, []
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 command not recognized")


def main():
    if not os.access(PROGRAM, os.X_OK):
        print("skip: %s not built" % PROGRAM)
        return 77
    tmp = tempfile.mkdtemp(prefix="esmtpclient-test-")
    procs = []
    try:
        return run(tmp, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)


def run(tmp, procs):
    port, plain_port, dead_port, dns_port = free_port(), free_port(), free_port(), free_port()
    sink = Sink("127.0.0.1", port)
    plain = Sink("127.0.0.1", plain_port, pipelining=False, size=100000)
    dns = None
    if harness.dnsmasq_installed():  # else the MX cases are left out
        dns = harness.Dnsmasq(tmp, dns_port, [
            "--mx-host=mx.test,dead.mx.test,10", "--mx-host=mx.test,live.mx.test,20",
            "--host-record=dead.mx.test,127.0.0.3", "--host-record=live.mx.test,127.0.0.1"])
        procs.append(dns.start().proc)

    config = os.path.join(tmp, "estafette.conf")
    with open(config, "w") as f:
        f.write("state_dir = %s/state\nhostname = client.test\nidle_reuse = 1s\n"
                "esmtp_port = %d\ndns_servers = 127.0.0.1:%d\ndns_timeout = 500ms\n"
                "connect_timeout = 5s\nlog_file = %s/esmtpclient.log\nlog_level = debug\n"
                % (tmp, port, dns_port, tmp))

    # A queue file: some record bytes, then the wire-form (dot-stuffed, CRLF) body.
    text = (b"Subject: test\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\n"
            b"a line with . inside\r\n.\r\nlast\r\n")
    wire = b"".join(b"." + l if l.startswith(b".") else l for l in text.splitlines(keepends=True))
    prefix = b"ESTAFETTE-QUEUE-RECORDS\n" * 3
    qfile = os.path.join(tmp, "q1")
    with open(qfile, "wb") as f:
        f.write(prefix + wire + b"TRAILING-RECORDS\n")
    big_text = b"".join(b"%s line %06d of a big message ......................................\r\n"
                        % (b"." if i % 7 == 0 else b"x", i) for i in range(3500))
    big_wire = b"".join(b"." + l if l.startswith(b".") else l
                        for l in big_text.splitlines(keepends=True))
    big_file = os.path.join(tmp, "q2")
    with open(big_file, "wb") as f:
        f.write(prefix + big_wire)

    mod = Module(config)
    procs.append(mod.proc)
    t, payload = mod.frame(10)
    r = Reader(payload)
    check(t == MODULE_READY and r.str() == "esmtp", "ModuleReady esmtp")

    dest = "127.0.0.1:%d" % port
    # 1. Per-recipient results, pipelined.
    mod.send(deliver_frame(1, "Q1", qfile, len(prefix), len(wire), "sender@client.test", dest,
                           ["a@sink.test", "temp1@sink.test", "bad1@sink.test", "b@sink.test"]))
    res = mod.result(1)
    got = [s for s, _ in res["results"]]
    check(got == ["D", "T", "P", "D"], "job 1 results D,T,P,D (got %s)" % res["results"])
    check(res["results"][1][1].startswith("451 4.2.0") and res["results"][2][1].startswith("550 5.1.1"),
          "job 1 carries the RCPT replies")
    check(not res["host_failed"] and "127.0.0.1" in res["remote"], "job 1 remote %r" % res["remote"])
    check(sink.wait_messages(1), "job 1 arrived")
    m = sink.messages[0]
    check(m["wire"] == wire, "wire bytes identical (dot-stuffing kept on the wire)")
    check(m["text"] == text, "receiver's unstuffed text equals the original")
    check(m["sender"] == "sender@client.test" and m["rcpts"] == ["a@sink.test", "b@sink.test"],
          "envelope of job 1")
    pipelined = [c for _, c in sink.commands]
    check(any(c.startswith("MAIL FROM:<sender@client.test> SIZE=%d" % len(wire)) for c in pipelined),
          "MAIL with SIZE=")

    # 2. A second Deliver to the same destination reuses the idle connection (no RSET).
    mod.send(deliver_frame(2, "Q2", qfile, len(prefix), len(wire), "", dest, ["c@sink.test"]))
    res = mod.result(2)
    check([s for s, _ in res["results"]] == ["D"], "job 2 delivered")
    check(sink.wait_messages(2) and sink.messages[1]["sender"] == "", "job 2 null sender arrived")
    check(sink.connections == 1, "one connection for two Delivers (got %d)" % sink.connections)
    check(res["setup_ms"] == 0, "no set-up time on a reused connection (%d ms)" % res["setup_ms"])
    check(sum(1 for _, c in sink.commands if c.upper().startswith("RSET")) == 0,
          "no RSET after a completed transaction")

    # 3. A 256 KiB body, sent with sendfile without blocking.
    mod.send(deliver_frame(3, "Q3", big_file, len(prefix), len(big_wire), "s@client.test", dest,
                           ["big@sink.test"]))
    res = mod.result(3)
    check([s for s, _ in res["results"]] == ["D"], "job 3 (big) delivered")
    check(sink.wait_messages(3) and sink.messages[2]["wire"] == big_wire
          and sink.messages[2]["text"] == big_text, "big body identical")

    # 4. Two Delivers at once: two connections, both delivered.
    for jid in (4, 5):
        mod.send(deliver_frame(jid, "Q%d" % jid, qfile, len(prefix), len(wire), "s@client.test",
                               dest, ["p%d@sink.test" % jid]))
    check(all(mod.result(j)["results"][0][0] == "D" for j in (4, 5)), "concurrent jobs delivered")

    # 5. No PIPELINING: one command at a time, same per-recipient results; SIZE limit.
    pdest = "[127.0.0.1]:%d" % plain_port
    mod.send(deliver_frame(6, "Q6", qfile, len(prefix), len(wire), "s@client.test", pdest,
                           ["temp2@sink.test", "ok@sink.test", "bad2@sink.test"]))
    res = mod.result(6)
    check([s for s, _ in res["results"]] == ["T", "D", "P"], "unpipelined results T,D,P")
    check(plain.wait_messages(1) and plain.messages[0]["rcpts"] == ["ok@sink.test"],
          "unpipelined message arrived")
    mod.send(deliver_frame(7, "Q7", big_file, len(prefix), len(big_wire), "s@client.test", pdest,
                           ["x@sink.test"]))
    res = mod.result(7)
    check(res["results"][0][0] == "P" and "5.3.4" in res["results"][0][1],
          "message over the server's SIZE: 552 5.3.4 (%s)" % res["results"][0][1])

    # 6. A dead port: host_failed, every recipient TempFail.
    mod.send(deliver_frame(8, "Q8", qfile, len(prefix), len(wire), "s@client.test",
                           "127.0.0.1:%d" % dead_port, ["a@dead.test", "b@dead.test"]))
    res = mod.result(8)
    check(res["host_failed"] and [s for s, _ in res["results"]] == ["T", "T"],
          "dead port -> host_failed, all TempFail (%s)" % res["results"])

    # 7. MX routing: the first MX refuses connections, the second takes the mail.
    if dns:
        mod.send(deliver_frame(9, "Q9", qfile, len(prefix), len(wire), "s@client.test", "mx.test",
                               ["mx@mx.test"]))
        res = mod.result(9)
        check([s for s, _ in res["results"]] == ["D"] and "live.mx.test" in res["remote"],
              "MX fallback to the second host (%s)" % res)
        mod.send(deliver_frame(10, "Q10", qfile, len(prefix), len(wire), "s@client.test",
                               "nodomain.test", ["x@nodomain.test"]))
        res = mod.result(10)
        check(res["results"][0][0] == "P", "NXDOMAIN -> PermFail (%s)" % res["results"])
    else:
        print("skip MX checks: dnsmasq not available")

    # 8. A slow peer does not hold up other deliveries: a 9 MB body to a sink that stalls after
    # 354 (small receive window) must not block the loop while another job completes.
    slow_port = free_port()
    slow = Sink("127.0.0.1", slow_port, slow=1.5)
    huge_text = big_text * 36  # ~9 MB: more than the kernel's send buffer
    huge_wire = big_wire * 36
    huge_file = os.path.join(tmp, "q3")
    with open(huge_file, "wb") as f:
        f.write(prefix + huge_wire)
    mod.send(deliver_frame(11, "Q11", huge_file, len(prefix), len(huge_wire), "s@client.test",
                           "127.0.0.1:%d" % slow_port, ["slow@sink.test"]))
    time.sleep(0.3)
    mod.send(deliver_frame(12, "Q12", qfile, len(prefix), len(wire), "s@client.test", dest,
                           ["quick@sink.test"]))
    res = mod.result(12)
    check(res["results"][0][0] == "D" and 11 not in mod.results,
          "a quick job finishes while a slow peer stalls")
    res = mod.result(11)
    check(res["results"][0][0] == "D", "slow job delivered")
    # The stall after 354 is the transaction's (d of courierd's delays=), not the set-up's.
    check(res["transfer_ms"] >= 1400 and res["setup_ms"] < 1000,
          "slow transfer timed as such (setup %d ms, transfer %d ms)"
          % (res["setup_ms"], res["transfer_ms"]))
    check(slow.wait_messages(1) and slow.messages[0]["wire"] == huge_wire
          and slow.messages[0]["text"] == huge_text, "9 MB body identical")
    slow.shutdown()

    # 9. An idle connection is closed with QUIT after idle_reuse (1 s); the next Deliver connects
    # again.
    before = sink.connections
    time.sleep(1.6)
    with sink.lock:
        quits = sum(1 for _, c in sink.commands if c.upper() == "QUIT")
    check(quits >= 2, "idle connections sent QUIT after idle_reuse (%d QUITs)" % quits)
    mod.send(deliver_frame(13, "Q13", qfile, len(prefix), len(wire), "s@client.test", dest,
                           ["again@sink.test"]))
    check(mod.result(13)["results"][0][0] == "D" and sink.connections == before + 1,
          "a new connection after the idle ones were closed")

    # 9b. A slow greeting is the connection's set-up (c of courierd's delays=).
    greet_port = free_port()
    greet = Sink("127.0.0.1", greet_port, slow_greeting=0.8)
    mod.send(deliver_frame(14, "Q14", qfile, len(prefix), len(wire), "s@client.test",
                           "127.0.0.1:%d" % greet_port, ["greet@sink.test"]))
    res = mod.result(14)
    check(res["results"][0][0] == "D" and res["setup_ms"] >= 750 and res["transfer_ms"] < 750,
          "slow greeting timed as set-up (setup %d ms, transfer %d ms)"
          % (res["setup_ms"], res["transfer_ms"]))
    greet.shutdown()

    # 10. Closing the channel ends the program.
    mod.sock.close()
    try:
        rc = mod.proc.wait(10)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, "exit 0 when the channel closes (rc=%s)" % rc)
    with open(os.path.join(tmp, "esmtpclient.log"), errors="replace") as f:
        log = f.read()
    check("id=Q1 " in log and "conn=" in log, "transaction and connection log lines")
    sink.shutdown()
    plain.shutdown()
    if failures:
        print("esmtpclient log:\n" + log)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
