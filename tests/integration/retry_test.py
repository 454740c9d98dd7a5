"""A 4xx from the next hop defers the message; it is retried and delivered once the next hop
accepts, exactly once."""
import time

import harness


def test(tmp, stoppers):
    port = harness.free_port()
    failing = harness.SmtpSink(tmp, port=port, options=["-r", "data"]).start()
    stoppers.append(failing)
    mta = harness.Estafette(tmp, relay_domains="later.test", retry_base="500ms",
                            routes={"later.test": "127.0.0.1,%d" % port}).start()
    stoppers.append(mta)
    mta.send("alice@estafette.test", ["bob@later.test"],
             b"Subject: retry me\r\nMessage-ID: <retry-1@estafette.test>\r\n\r\nbody\r\n")
    harness.wait_for(lambda: "deferred" in mta.read_log(), 15, "a deferral")
    assert mta.queue_files(), "a deferred message stays in the queue"
    assert not failing.messages(), failing.messages()
    failing.stop()
    good = harness.SmtpSink(tmp, port=port).start()
    stoppers.append(good)
    msgs = harness.wait_for(lambda: good.messages(), 30, "delivery after the retry")
    harness.wait_for(lambda: not mta.queue_files(), 10, "the queue to empty")
    time.sleep(1.0)
    msgs = good.messages()
    assert len(msgs) == 1 and b"retry-1@estafette.test" in msgs[0], msgs


harness.run(test)
