"""A full disk: the queue directory is a 4 MiB tmpfs (needs root: skipped otherwise). Messages
accepted (250) before it fills up wait for a dead destination. Once a filler file takes the rest
of the space, a client gets "452 4.3.1 Insufficient system storage" for a message that is kept in
memory until commit (the segment write fails) and for a big one spooled to queue/tmp (the spool
write fails), and its session goes on: NOOP works and, once space is freed, the same connection
sends the message with 250. esmtpd keeps running, and every message answered 250 is delivered to
smtp-sink once its host is up. The tmpfs is unmounted however the test ends."""
import errno
import os
import re
import smtplib
import subprocess

import harness


def estafette(mta, *args):
    return subprocess.run([mta.program("estafette")] + list(args) + ["-c", mta.conf],
                          capture_output=True, text=True, timeout=60)


def message(tag, size=0):
    body = b"".join(b"%07d filler line for a big message...............\r\n" % i
                    for i in range(size // 56 + 1)) if size else b"body\r\n"
    return b"Subject: %s\r\nMessage-ID: <%s@estafette.test>\r\n\r\n" % (tag, tag) + body


def transaction(s, msg):
    """MAIL, RCPT, DATA on an open smtplib session; returns DATA's (code, reply)."""
    code, resp = s.mail("alice@estafette.test")
    assert code == 250, (code, resp)
    code, resp = s.rcpt("bob@dead.test")
    assert code == 250, (code, resp)
    return s.data(msg)


def fill(path):
    """Writes path until the file system is full; returns the bytes written."""
    written = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                return written


def test(tmp, stoppers):
    if os.geteuid() != 0:
        harness.skip("the full-disk test mounts a tmpfs and needs root")
    port = harness.free_port()
    mta = harness.Estafette(tmp, relay_domains="dead.test", retry_base="60s", retry_max="10m",
                            host_backoff="60s", routes={"dead.test": "127.0.0.1,%d" % port})
    queue = os.path.join(mta.state, "queue")
    os.makedirs(queue)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", queue],
                       capture_output=True, text=True)
    if r.returncode != 0:
        harness.skip("cannot mount a tmpfs on %s: %s" % (queue, r.stderr.strip()))
    try:
        run(tmp, stoppers, mta, queue, port)
    finally:
        mta.stop()
        subprocess.run(["umount", queue], check=False)
        if os.path.ismount(queue):
            subprocess.run(["umount", "-l", queue], check=False)
    assert not os.path.ismount(queue), "the tmpfs is still mounted on " + queue


def run(tmp, stoppers, mta, queue, port):
    stoppers.append(mta)
    mta.start()
    accepted = []
    for i in range(3):
        tag = b"before-%d" % i
        mta.send("alice@estafette.test", ["bob@dead.test"], message(tag))
        accepted.append(tag)

    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        filler = os.path.join(queue, "filler")
        assert fill(filler) > 3 << 20, "the filler did not take the space"

        for tag, size in ((b"small-1", 100 << 10), (b"big-1", 1 << 20)):
            code, resp = transaction(s, message(tag, size))
            assert (code, resp) == (452, b"4.3.1 Insufficient system storage"), \
                "%s: %r %r" % (tag, code, resp)
            code, resp = s.noop()
            assert code == 250, "the session after a 452: %r %r" % (code, resp)
        log = mta.read_log()
        assert re.search(r"esmtpd: queue write failed session=[\d.]+ error=\"No space left", log) or \
            re.search(r"esmtpd: commit failed id=\S+ error=\"No space left", log), log[-3000:]

        # Space again: the same connection sends the message.
        os.unlink(filler)
        code, resp = transaction(s, message(b"after-1", 100 << 10))
        assert code == 250 and b"queued as" in resp, (code, resp)
        accepted.append(b"after-1")
        code, resp = transaction(s, message(b"after-big", 1 << 20))
        assert code == 250 and b"queued as" in resp, (code, resp)
        accepted.append(b"after-big")

    assert mta.proc.poll() is None, "estafetted exited"
    assert "restarting in" not in mta.read_log(), "a daemon died and was restarted"

    # Every message answered 250 is delivered once the host is up; none of the refused ones.
    sink = harness.SmtpSink(tmp, port=port).start()
    stoppers.append(sink)
    r = estafette(mta, "flush")
    assert r.returncode == 0, r.stdout + r.stderr

    def delivered():
        got = b"".join(sink.messages())
        return all(b"<%s@estafette.test>" % tag in got for tag in accepted) and \
            estafette(mta, "mailq").stdout == "Mail queue is empty\n"
    harness.wait_for(delivered, 20, "delivery of every accepted message")
    got = b"".join(sink.messages())
    for tag in (b"small-1", b"big-1"):
        assert b"<%s@estafette.test>" % tag not in got, "%s was refused but delivered" % tag
    assert len(sink.messages()) == len(accepted), "duplicates: %d" % len(sink.messages())


harness.run(test)
