#!/usr/bin/env python3
"""queue_verify_bodies (issue 13, item 13): a queued message whose body bytes were damaged on
disk, its record structure intact (header crc, sizes and trailer still match), written into a
segment while Estafette is stopped, in front of a good message in the same segment. With
queue_verify_bodies = yes courierd sets it aside in queue/corrupt/ and never relays it, and still
relays the good one behind it; with no it relays the damaged body as it now reads (only the
envelope, sizes and trailer are checked), which is what that setting means."""
import os
import time

import harness

GOOD = b"Subject: good\r\n\r\nthe good one\r\n"
DAMAGED = b"Subject: damaged\r\n\r\nhello from disk\r\n"


def damaged_segment(seg, st):
    """One segment with a record whose body no longer matches its crc, then a good record."""
    bad = bytearray(harness.queue_record("0VERIFYB-00001-0000000A", "kim@estafette.test",
                                         [("lee@far.test", [])], DAMAGED))
    at = bad.index(b"hello from disk")
    bad[at] = ord("j")  # the body as a failing disk might return it
    good = harness.queue_record("0VERIFYB-00001-0000000B", "kim@estafette.test",
                                [("lee@far.test", [])], GOOD)
    path = os.path.join(seg, "0VERIFYB-00001-0000000A")
    with open(path, "wb") as f:
        f.write(bytes(bad) + good)
    os.chown(path, st.st_uid, st.st_gid)


def part(tmp, stoppers, verify):
    sink = harness.SmtpSink(tmp).start()
    stoppers.append(sink)
    mta = harness.Estafette(tmp, name="verify-" + verify, queue_verify_bodies=verify,
                            routes={"far.test": "127.0.0.1,%d" % sink.port}).start()
    stoppers.append(mta)
    mta.send("kim@estafette.test", ["lee@far.test"], b"Subject: first\r\n\r\nmakes the queue\r\n")
    harness.wait_for(lambda: len(sink.messages()) == 1, 20, "the first message at the sink")
    mta.stop()
    queue = os.path.join(mta.state, "queue")
    seg = os.path.join(queue, "seg")
    damaged_segment(seg, os.stat(seg))
    mta.start()
    harness.wait_for(lambda: any(b"the good one" in m for m in sink.messages()), 20,
                     "the good message behind the damaged one")
    harness.wait_for(lambda: mta.queue_files() == [] or verify == "no", 20, "an empty queue")
    time.sleep(1)  # time enough for the damaged one to arrive, were it relayed
    relayed = [m for m in sink.messages() if b"Subject: damaged" in m]
    corrupt = os.listdir(os.path.join(queue, "corrupt"))
    if verify == "yes":
        assert relayed == [], "the damaged body was relayed: %r" % relayed
        assert len(corrupt) == 1, corrupt
        with open(os.path.join(queue, "corrupt", corrupt[0]), "rb") as f:
            assert b"jello from disk" in f.read()
        assert "body checksum mismatch" in mta.read_log()
    else:
        harness.wait_for(lambda: [m for m in sink.messages() if b"Subject: damaged" in m], 20,
                         "the damaged message at the sink")
        relayed = [m for m in sink.messages() if b"Subject: damaged" in m]
        assert len(relayed) == 1 and b"jello from disk" in relayed[0], relayed
        assert corrupt == [], corrupt
    mta.stop()


def test(tmp, stoppers):
    for verify in ("yes", "no"):
        part(tmp, stoppers, verify)
        print("queue_verify_bodies =", verify, "ok")


if __name__ == "__main__":
    harness.run(test)
