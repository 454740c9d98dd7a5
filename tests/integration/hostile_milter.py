"""hostile_milter.py: a milter written for the tests, speaking the Sendmail milter protocol (v6)
on a loopback socket, that answers every step with continue and, at end of message, sends what
the test asks for: raw SMFIR_* packets (bad header names and values, a quarantine reason with a
line end, a REPLYCODE whose later lines carry another code, recipients with line ends, an
oversized replacement body, too many changes). It records what it was sent, so a test can tell
whether esmtpd passed it a message at all."""
import socket
import struct
import threading

# SMFIF_ADDHDRS CHGBODY ADDRCPT DELRCPT CHGHDRS QUARANTINE CHGFROM
ALL_ACTIONS = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x40


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def add_header(name, value):
    return packet(b"h", name + b"\0" + value + b"\0")


def insert_header(index, name, value):
    return packet(b"i", struct.pack(">I", index) + name + b"\0" + value + b"\0")


def change_header(index, name, value):
    return packet(b"m", struct.pack(">I", index) + name + b"\0" + value + b"\0")


def add_rcpt(address):
    return packet(b"+", address + b"\0")


def change_from(address):
    return packet(b"e", address + b"\0")


def replace_body(chunk):
    return packet(b"b", chunk)


def quarantine(reason):
    return packet(b"q", reason + b"\0")


def reply_code(text):
    return packet(b"y", text + b"\0")


class HostileMilter:
    """Listens on 127.0.0.1:port; `eom` (bytes: packets) is sent at end of message, followed by
    `final` (continue unless it is a REPLYCODE that stands for the verdict). mode "hang" accepts
    and never answers; "garbage" answers the option negotiation with bytes that are no milter
    packet; "close" closes each connection as soon as it is made."""

    def __init__(self, mode="protocol"):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.eom = b""
        self.final = packet(b"c")
        self.lock = threading.Lock()
        self.headers = []   # (name, value) of every SMFIC_HEADER received
        self.bodies = 0     # SMFIC_BODY packets received
        self.eoms = 0
        self.macros = {}    # name -> value, from every SMFIC_MACRO received (last one wins)
        self.conns = []
        threading.Thread(target=self.serve, daemon=True).start()

    def spec(self):
        return "milter:inet:%d@127.0.0.1" % self.port

    def set(self, eom, final=None):
        with self.lock:
            self.eom = eom
            self.final = final if final is not None else packet(b"c")

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            if self.mode == "hang":
                continue
            if self.mode == "close":
                c.close()
                continue
            if self.mode == "garbage":
                try:
                    c.recv(4096)
                    c.sendall(b"\x00\x00\x00\x05zhello garbage")
                except OSError:
                    pass
                continue
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    @staticmethod
    def read_exact(c, n):
        data = b""
        while len(data) < n:
            got = c.recv(n - len(data))
            if not got:
                raise EOFError
            data += got
        return data

    def session(self, c):
        try:
            while True:
                size = struct.unpack(">I", self.read_exact(c, 4))[0]
                body = self.read_exact(c, size)
                cmd, data = body[:1], body[1:]
                if cmd == b"O":
                    c.sendall(packet(b"O", struct.pack(">III", 6, ALL_ACTIONS, 0)))
                elif cmd in (b"D", b"A"):
                    if cmd == b"D":  # stage letter, then name\0value\0 pairs
                        items = data[1:].split(b"\0")
                        with self.lock:
                            for name, value in zip(items[0::2], items[1::2]):
                                self.macros[name.decode()] = value.decode(errors="replace")
                    continue  # macros, abort: no reply
                elif cmd in (b"Q", b"K"):
                    return
                elif cmd == b"L":
                    name, _, value = data.partition(b"\0")
                    with self.lock:
                        self.headers.append((name, value.rstrip(b"\0")))
                    c.sendall(packet(b"c"))
                elif cmd == b"B":
                    with self.lock:
                        self.bodies += 1
                    c.sendall(packet(b"c"))
                elif cmd == b"E":
                    with self.lock:
                        self.eoms += 1
                        out = self.eom + self.final
                    c.sendall(out)
                else:
                    c.sendall(packet(b"c"))
        except (OSError, EOFError):
            pass
        finally:
            c.close()

    def stop(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
