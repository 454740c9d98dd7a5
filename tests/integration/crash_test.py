"""Durability: every message acknowledged with 250 survives kill -9 of every daemon (with the
next hop down, so the messages are still queued), and is delivered exactly once after the
restart."""
import re
import threading

import harness

COUNT = 40


def test(tmp, stoppers):
    port = harness.free_port()  # nothing listens yet: deliveries fail and stay queued
    mta = harness.Estafette(tmp, relay_domains="after.test", retry_base="300ms",
                            routes={"after.test": "127.0.0.1,%d" % port}).start()
    stoppers.append(mta)
    acked = []
    lock = threading.Lock()

    def sender(n):
        for i in range(n, COUNT, 4):
            mid = "<crash-%d@estafette.test>" % i
            mta.send("alice@estafette.test", ["bob@after.test"],
                     ("Subject: crash %d\r\nMessage-ID: %s\r\n\r\nbody %d\r\n" % (i, mid, i)).encode())
            with lock:
                acked.append(mid)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(acked) == COUNT
    mta.kill9()
    assert len(mta.queue_files()) == COUNT, "queued after the crash: %d" % len(mta.queue_files())

    sink = harness.SmtpSink(tmp, port=port).start()
    stoppers.append(sink)
    mta.start()
    harness.wait_for(lambda: len(sink.messages()) >= COUNT, 60, "all messages after restart")
    harness.wait_for(lambda: not mta.queue_files(), 20, "the queue to empty")
    ids = []
    for m in sink.messages():
        ids += re.findall(rb"Message-ID: (<crash-\d+@estafette.test>)", m)
    got = sorted(i.decode() for i in ids)
    assert got == sorted(acked), "lost or duplicated: %s" % (set(acked) ^ set(got))


harness.run(test)
