"""Mail loops (issue 13, item 2), on real sockets with a real DNS server (dnsmasq on loopback):

1. MX pointing at ourselves: loop.test has MX mx.loop.test = 127.0.0.1, and esmtp_port is
   esmtpd's own port. A success DSN for a message from bob@loop.test (the issue's scenario) and
   plain mail to carol@loop.test must not be relayed to ourselves: esmtpd accepts exactly the
   two messages the test sends, nothing more, and the plain one bounces once to its sender with
   5.4.6 "loops back to myself". (Before: each pass re-queued the mail, for ever.)
   A route to our own address on another port (a sink there) still delivers.
2. Two instances routing far.test to each other (different ports, so neither is "myself"): the
   Received: count stops the loop. The message comes back after max_hops passes refused with
   554 5.4.6, and its sender gets one bounce.
3. esmtpd refuses at the end of DATA a message that already carries max_hops Received: fields
   (SMTP and estafette-sendmail), and accepts one less.
4. estafette-local bounces a queued record over the limit (written into the queue directly, as
   an older queue or another writer would leave it) instead of delivering it.
Each wait is bounded; with the old code (no check) part 1 and 2 fail within seconds.
"""
import os
import smtplib
import subprocess
import time

import harness


def received(n):
    return b"".join(b"Received: from hop%d.test (hop%d.test [192.0.2.%d])\r\n"
                    b"\tby hop%d.test; Thu, 1 Jan 2026 00:00:00 +0000\r\n" % (i, i, i % 250, i)
                    for i in range(n))


BODY = b"From: <bob@loop.test>\r\nSubject: loop\r\n\r\nbody\r\n"


def accepted(mta):
    return mta.read_log().count("accepted id=")


def self_mx(tmp, stoppers):
    dns_port, sink_port = harness.free_port(), harness.free_port()
    stoppers.append(harness.Dnsmasq(tmp, dns_port, [
        "--mx-host=loop.test,mx.loop.test,10", "--host-record=mx.loop.test,127.0.0.1"]).start())
    sink = harness.SmtpSink(tmp, port=sink_port).start()
    stoppers.append(sink)
    port = harness.free_port()
    mta = harness.Estafette(tmp, name="selfmx", port=port, esmtp_port=port,
                            dns_servers="127.0.0.1:%d" % dns_port, dns_timeout="500ms",
                            routes={"routed.test": "127.0.0.1,%d" % sink_port})
    stoppers.append(mta)
    mta.start()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        # The scenario: a success notice to a sender whose MX is ourselves.
        s.ehlo("client.test")
        s.mail("bob@loop.test")
        assert s.rcpt("alice@estafette.test", options=["NOTIFY=SUCCESS"])[0] == 250
        assert s.data(BODY)[0] == 250
        # Plain mail to such a domain, from a local sender who gets the bounce.
        s.sendmail("dave@estafette.test", ["carol@loop.test"], BODY)
        # A route names our address on another port: not ourselves.
        s.sendmail("dave@estafette.test", ["erin@routed.test"], BODY)
    harness.wait_for(lambda: mta.maildir_messages("alice"), 20, "alice's message")
    harness.wait_for(lambda: sink.messages(), 20, "the routed message at the sink")
    bounce = harness.wait_for(lambda: mta.maildir_messages("dave"), 20, "dave's bounce")
    harness.wait_for(lambda: mta.read_log().count("loops back to myself") >= 2, 20,
                     "both loops found")
    time.sleep(2)  # a loop would go on meanwhile
    log = mta.read_log()
    assert accepted(mta) == 3, "esmtpd accepted %d messages for 3 sent: relayed to itself\n%s" % (
        accepted(mta), log[-4000:])
    assert len(mta.maildir_messages("dave")) == 1, "dave got %d bounces" % len(
        mta.maildir_messages("dave"))
    assert b"5.4.6" in bounce[0] and b"mail for loop.test loops back to myself" in bounce[0], \
        bounce[0][:3000]
    assert len(sink.messages()) == 1
    harness.wait_for(lambda: mta.queue_files() == [], 20, "an empty queue")


def ping_pong(tmp, stoppers):
    pa, pb = harness.free_port(), harness.free_port()
    a = harness.Estafette(tmp, name="a", port=pa, routes={"far.test": "127.0.0.1,%d" % pb})
    b = harness.Estafette(tmp, name="b", port=pb, routes={"far.test": "127.0.0.1,%d" % pa})
    stoppers += [a, b]
    a.start()
    b.start()
    a.send("frank@estafette.test", ["gina@far.test"], BODY)
    # The instance whose relay was refused bounces it; frank is local to both.
    bounces = lambda: a.maildir_messages("frank") + b.maildir_messages("frank")  # noqa: E731
    bounce = harness.wait_for(bounces, 60, "frank's bounce")
    time.sleep(1)
    assert len(bounces()) == 1, bounces()
    assert b"554 5.4.6 Too many hops" in bounce[0], bounce[0][:3000]
    passes = accepted(a) + accepted(b)
    assert 49 <= passes <= 51, "%d passes for max_hops 50" % passes
    assert "mail loop session=" in a.read_log() + b.read_log()


def hop_limit(tmp, stoppers):
    mta = harness.Estafette(tmp, name="hops").start()
    stoppers.append(mta)
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail("hank@estafette.test")
        s.rcpt("ivy@estafette.test")
        code, text = s.data(received(50) + BODY)
        assert (code, text[:20]) == (554, b"5.4.6 Too many hops "), (code, text)
        # The session goes on; one hop less is fine.
        refused = s.sendmail("hank@estafette.test", ["ivy@estafette.test"], received(49) + BODY)
        assert refused == {}
    msgs = harness.wait_for(lambda: mta.maildir_messages("ivy"), 20, "ivy's message")
    assert len(msgs) == 1 and msgs[0].count(b"\nReceived: ") == 50, msgs
    # Through estafette-sendmail (the local submission socket) too.
    r = subprocess.run([mta.program("estafette-sendmail"), "-C", mta.conf, "-f",
                        "hank@estafette.test", "jo@estafette.test"],
                       input=received(50) + BODY, capture_output=True, timeout=30)
    assert r.returncode != 0 and b"5.4.6" in r.stdout + r.stderr, r
    time.sleep(1)
    assert mta.maildir_messages("jo") == [] and accepted(mta) == 1


def queued_loop(tmp, stoppers):
    mta = harness.Estafette(tmp, name="queued").start()
    stoppers.append(mta)
    mta.send("kim@estafette.test", ["lee@estafette.test"], BODY)  # makes the queue dirs
    harness.wait_for(lambda: mta.maildir_messages("lee"), 20, "lee's first message")
    mta.stop()
    seg = os.path.join(mta.state, "queue", "seg")
    st = os.stat(seg)
    wire = received(51) + BODY
    for queue_id, body in (("0LOOPREC-00001-0000000A", wire),
                           ("0LOOPREC-00001-0000000B", received(50) + BODY)):
        path = os.path.join(seg, queue_id)
        with open(path, "wb") as f:
            f.write(harness.queue_record(queue_id, "kim@estafette.test",
                                         [("lee@estafette.test", [])], body))
        os.chown(path, st.st_uid, st.st_gid)
    mta.start()
    bounce = harness.wait_for(lambda: mta.maildir_messages("kim"), 20, "kim's bounce")
    harness.wait_for(lambda: len(mta.maildir_messages("lee")) == 2, 20, "the 50-hop record")
    time.sleep(1)
    assert len(mta.maildir_messages("lee")) == 2, "the 51-hop record was delivered"
    assert len(bounce) == 1 and b"5.4.6 mail loop: 51 Received:" in bounce[0], bounce


def test(tmp, stoppers):
    if not harness.dnsmasq_installed():
        harness.skip("dnsmasq is not installed (scripts/install-deps)")
    for part in (self_mx, ping_pong, hop_limit, queued_loop):
        part(tmp, stoppers)
        print(part.__name__, "ok")


if __name__ == "__main__":
    harness.run(test)
