"""Relay matrix (issue 13, items 7 and "keep it under test"): an outsider (127.0.0.2, not in
relay_clients) tries every form of sender-specified routing against a relay domain
(relay.test, routed to a recording sink), a local domain (estafette.test) and anything else
(smarthost: the same sink), on a real socket: the percent hack, bang paths, a quoted '@', source
routes, address literals, case variants and trailing dots. Nothing reaches the sink but the two
legitimate relay.test messages; <postmaster> through the shipped aliases lands in root's local
mailbox (not "root@" with no domain); a relay client (127.0.0.1) may still use routing
(allow_untrusted_routing only concerns untrusted clients). A HELO with NUL or control characters
is refused with 501, and a HELO with Received: structure characters is neutralised there.
"""
import os
import socket
import time

import harness


class Sink(harness.ThreadedSink):
    """Records the RCPT addresses of every message it is given."""

    def __init__(self, port):
        super().__init__("127.0.0.1", port, SinkHandler)

    def rcpts(self):
        with self.lock:
            return [r for m in self.messages for r in m]


class SinkHandler(harness.SinkHandler):
    def handle(self):
        self.count_connection()
        self.reply("220 sink.test ESMTP")
        rcpts = []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.reply("250 sink.test")
            elif verb == b"MAIL":
                rcpts = []
                self.reply("250 2.1.0 Ok")
            elif verb == b"RCPT":
                rcpts.append(line[line.index(b"<") + 1:line.rindex(b">")].decode())
                self.reply("250 2.1.5 Ok")
            elif verb == b"DATA":
                self.reply("354 go on")
                while self.rfile.readline() not in (b".\r\n", b""):
                    pass
                with self.server.lock:
                    self.server.messages.append(rcpts)
                self.reply("250 2.0.0 Ok")
            elif verb == b"QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("250 2.0.0 Ok")


class Raw:
    """A line-level SMTP client from a given source address (smtplib would quote or refuse the
    odd addresses this test sends)."""

    def __init__(self, port, source):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                             source_address=(source, 0))
        self.file = self.sock.makefile("rb")
        self.reply()

    def reply(self):
        lines = []
        while True:
            line = self.file.readline()
            assert line, "connection closed"
            lines.append(line)
            if line[3:4] != b"-":
                return int(line[:3]), b"".join(lines)

    def cmd(self, line):
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def close(self):
        try:
            self.cmd(b"QUIT")
        finally:
            self.sock.close()


# (RCPT path, expected code for the outsider). 501: bad syntax; 550: refused.
OUTSIDER = [
    (b"<user%other.test@relay.test>", 550),
    (b"<other.test!user@relay.test>", 550),
    (b'<"user@other.test"@relay.test>', 550),
    (b'<"user%other.test"@RELAY.test>', 550),
    (b"<@hop.test:user@relay.test>", 550),
    (b"<@hop.test,@hop2.test:user@relay.test>", 550),
    (b"<@estafette.test:user@other.test>", 550),
    (b"<@relay.test:user@other.test>", 550),
    (b"<user@other.test>", 550),
    (b"<user@OTHER.Test>", 550),
    (b"<user%relay.test@other.test>", 550),
    (b"<user@[127.0.0.1]>", 550),
    (b"<user@[IPv6:::1]>", 550),
    (b"<user@other.test.>", 501),
    (b"<user@relay.test.>", 501),
    (b"<user@estafette.test.>", 501),
    (b"<user@sub.relay.test>", 550),
]


def send_one(conn, rcpt, expect, label):
    assert conn.cmd(b"MAIL FROM:<outsider@sender.test>")[0] == 250
    code, text = conn.cmd(b"RCPT TO:" + rcpt)
    assert code == expect, (label, rcpt, code, text)
    if code == 250:
        assert conn.cmd(b"DATA")[0] == 354
        code, text = conn.cmd(b"Subject: " + rcpt + b"\r\n\r\nbody\r\n.")
        assert code == 250, (rcpt, code, text)
    else:
        assert conn.cmd(b"RSET")[0] == 250


def test(tmp, stoppers):
    sink_port = harness.free_port()
    sink = Sink(sink_port)
    stoppers.append(sink)
    aliases = os.path.join(tmp, "aliases")  # the shipped aliases file
    with open(os.path.join(harness.SRC_DIR, "sysconf", "aliases")) as src, \
            open(aliases, "w") as dst:
        dst.write(src.read())
    mta = harness.Estafette(tmp, relay_clients="127.0.0.1/32", relay_domains="relay.test",
                            aliases=aliases, smarthost="127.0.0.1:%d" % sink_port,
                            routes={"relay.test": "127.0.0.1,%d" % sink_port})
    stoppers.append(mta)
    mta.start()

    out = Raw(mta.port, "127.0.0.2")
    # HELO/EHLO: NUL and control characters are refused, not copied into Received.
    for bad in (b"EHLO evil\x00host", b"HELO evil\x01", b"EHLO a\x1b[31mb", b"EHLO " + b"h" * 300):
        code, text = out.cmd(bad)
        assert code == 501, (bad, code, text)
    assert out.cmd(b"EHLO evil;(by x)")[0] == 250
    send_one(out, b"<mia@Estafette.TEST>", 250, "outsider legit")
    out.close()
    # One session per attempt: each refusal counts as an error of its session.
    for rcpt, expect in OUTSIDER:
        conn = Raw(mta.port, "127.0.0.2")
        assert conn.cmd(b"EHLO outsider.test")[0] == 250
        send_one(conn, rcpt, expect, "outsider")
        conn.close()
    # The legitimate ones: relay.test in any case and <postmaster>.
    out = Raw(mta.port, "127.0.0.2")
    assert out.cmd(b"EHLO outsider.test")[0] == 250
    for rcpt in (b"<user@relay.test>", b"<User@RELAY.TEST>", b"<postmaster>", b"<PostMaster>"):
        send_one(out, rcpt, 250, "outsider legit")
    out.close()

    harness.wait_for(lambda: len(sink.rcpts()) >= 2, 20, "the two relay.test messages")
    mia = harness.wait_for(lambda: mta.maildir_messages("mia"), 20, "mia's message")
    root = harness.wait_for(lambda: len(mta.maildir_messages("root")) >= 2 and
                            mta.maildir_messages("root"), 20, "postmaster's mail in root's box")
    first = mia[0].split(b"\n")
    received = [line for line in first if line.startswith(b"Received: from ")]
    assert received == [b"Received: from evil??by?x? (unknown [127.0.0.2])"], received
    for msg in root:
        assert b"Delivered-To: root@estafette.test\n" in msg, msg[:500]

    # A relay client keeps sender-specified routing.
    inside = Raw(mta.port, "127.0.0.1")
    assert inside.cmd(b"EHLO inside.test")[0] == 250
    send_one(inside, b"<user%other.test@relay.test>", 250, "relay client")
    inside.close()
    harness.wait_for(lambda: len(sink.rcpts()) >= 3, 20, "the relay client's message")
    time.sleep(1)
    harness.wait_for(lambda: mta.queue_files() == [], 20, "an empty queue")
    got = sorted(sink.rcpts())
    assert got == sorted(["user@relay.test", "User@RELAY.TEST", "user%other.test@relay.test"]), \
        "the sink got %r" % got
    log = mta.read_log()
    assert "root@\n" not in log and "<root@>" not in log, log[-3000:]


if __name__ == "__main__":
    harness.run(test)
