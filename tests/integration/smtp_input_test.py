"""Bad input over a real socket: bare LF in DATA (an SMTP smuggling attempt must not end the
message early), an oversize message, an oversize command line, PIPELINING of a whole
transaction in one write, and a message that declares too big a SIZE. Nothing rejected is
queued; the smuggled second message never exists."""
import socket

import harness


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        self.reply()  # greeting

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise AssertionError("connection closed; so far %r" % lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), b"\n".join(lines)

    def cmd(self, text):
        self.sock.sendall(text)
        return self.reply()


def test(tmp, stoppers):
    mta = harness.Estafette(tmp, max_message_size="64K").start()
    stoppers.append(mta)
    c = Client(mta.port)
    code, text = c.cmd(b"EHLO client.test\r\n")
    assert code == 250 and b"PIPELINING" in text and b"SIZE 65536" in text, text
    assert b"8BITMIME" in text and b"ENHANCEDSTATUSCODES" in text, text

    # Smuggling: "\n.\r\n" must not end DATA; the whole thing is rejected at the real end.
    assert c.cmd(b"MAIL FROM:<a@x.test>\r\n")[0] == 250
    assert c.cmd(b"RCPT TO:<alice@estafette.test>\r\n")[0] == 250
    assert c.cmd(b"DATA\r\n")[0] == 354
    code, text = c.cmd(b"Subject: one\r\n\r\nbody\n.\r\nMAIL FROM:<evil@x.test>\r\n"
                       b"RCPT TO:<bob@estafette.test>\r\nDATA\r\nSubject: smuggled\r\n\r\n.\r\n")
    assert code == 550 and b"5.6.0" in text, (code, text)

    # Oversize body: 552 after the end of data, session still usable.
    assert c.cmd(b"MAIL FROM:<a@x.test>\r\n")[0] == 250
    assert c.cmd(b"RCPT TO:<alice@estafette.test>\r\n")[0] == 250
    assert c.cmd(b"DATA\r\n")[0] == 354
    code, text = c.cmd(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 80 + b".\r\n")
    assert code == 552, (code, text)

    # Declared SIZE too big.
    code, text = c.cmd(b"MAIL FROM:<a@x.test> SIZE=1000000\r\n")
    assert code == 552, (code, text)

    # Too long a command line.
    code, text = c.cmd(b"NOOP " + b"y" * 5000 + b"\r\n")
    assert code == 500, (code, text)

    # A bare LF in a command: that line is refused, the next one (after CRLF) is read normally.
    code, text = c.cmd(b"NOOP\nNOOP\r\n")
    assert code == 500, (code, text)
    assert c.reply()[0] == 250

    # A whole pipelined transaction in one write.
    c.sock.sendall(b"RSET\r\nMAIL FROM:<p@x.test>\r\nRCPT TO:<carol@estafette.test>\r\nDATA\r\n")
    codes = [c.reply()[0] for _ in range(4)]
    assert codes == [250, 250, 250, 354], codes
    code, text = c.cmd(b"Subject: piped\r\n\r\nok\r\n.\r\n")
    assert code == 250 and b"queued as" in text, text
    assert c.cmd(b"QUIT\r\n")[0] == 221

    harness.wait_for(lambda: mta.maildir_messages("carol"), 15, "carol's message")
    assert not mta.maildir_messages("bob"), "the smuggled message must not exist"
    assert not mta.maildir_messages("alice"), "rejected messages must not be delivered"


harness.run(test)
