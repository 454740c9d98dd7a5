"""estafette hold/release/cancel/delete with real daemons. Mail for dead.test is routed to a port
where nothing listens, so it waits in the queue:
- hold: mailq shows the message held ('!' after its id, next=held; "held": true in --json);
  flush does not touch it; it stays held across a restart of the daemons (both queue backends)
  and is not delivered even once its host is up; release delivers it at once to smtp-sink.
- cancel: the sender (a local user) gets an RFC 3464 bounce in its Maildir saying "cancelled by
  the administrator"; for the null sender no bounce is made.
- delete: the message is gone, with no bounce, and the log says so.
- an id not in the queue: a message and exit 1; courierd stopped: exit 75.
- several ids at once, ids on standard input ("-"), and ALL for delete: each id is answered,
  exit 1 when one was not there; delete ALL empties the queue with no bounce."""
import email
import email.policy
import json
import re
import smtplib
import subprocess

import harness


def estafette(mta, *args):
    return subprocess.run([mta.program("estafette")] + list(args) + ["-c", mta.conf],
                          capture_output=True, text=True, timeout=60)


def send(mta, sender, rcpt, tag):
    """Sends one message; returns its queue id from the 250 reply."""
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail(sender)
        s.rcpt(rcpt)
        code, resp = s.data(b"Subject: %s\r\nMessage-ID: <%s@estafette.test>\r\n\r\nbody\r\n"
                            % (tag.encode(), tag.encode()))
        assert code == 250, (code, resp)
        return re.search(rb"queued as (\S+)", resp).group(1).decode()


def queue_doc(mta):
    r = estafette(mta, "mailq", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return {m["id"]: m for m in json.loads(r.stdout)["messages"]}


def attempts(mta, qid):
    return len(re.findall(r"courierd: id=%s .* status=deferred " % qid, mta.read_log()))


def sink_has(sink, tag):
    return any(tag.encode() in m for m in sink.messages())


def new_mta(tmp, name, port, backend):
    return harness.Estafette(tmp, name=name, relay_domains="dead.test", retry_base="60s",
                             retry_max="10m", host_backoff="60s", queue_backend=backend,
                             routes={"dead.test": "127.0.0.1,%d" % port})


def test_segment(tmp, stoppers):
    port = harness.free_port()  # nobody listens yet
    mta = new_mta(tmp, "mta", port, "segment")
    stoppers.append(mta)
    mta.start()
    held = send(mta, "alice@estafette.test", "bob@dead.test", "held-1")
    cancelled = send(mta, "alice@estafette.test", "bob@dead.test", "cancel-1")
    deleted = send(mta, "alice@estafette.test", "bob@dead.test", "delete-1")
    later = send(mta, "alice@estafette.test", "bob@dead.test", "later-1")
    null = send(mta, "", "bob@dead.test", "null-1")
    # The first attempt holds the dead destination (host_backoff): the rest wait behind it.
    harness.wait_for(lambda: len(queue_doc(mta)) == 5, 15, "five queued messages")
    harness.wait_for(lambda: "host_failed=yes" in mta.read_log(), 15, "the first attempt")

    # hold one message
    r = estafette(mta, "hold", held)
    assert r.returncode == 0 and "1 message(s) on hold, 1 recipient(s)" in r.stdout, \
        "hold: exit %d: %r %r" % (r.returncode, r.stdout, r.stderr)
    r = estafette(mta, "mailq")
    assert re.search(r"^%s! +\d+ " % held, r.stdout, re.M), r.stdout
    assert re.search(r"^    bob@dead.test  dest=\S+ attempts=\d next=held$", r.stdout, re.M), \
        r.stdout
    doc = queue_doc(mta)
    assert doc[held]["held"] is True and doc[later]["held"] is False, doc
    assert doc[held]["recipients"][0]["state"] == "held", doc[held]
    assert "courierd: hold id=%s nrcpt=1 in_flight=0" % held in mta.read_log()
    r = estafette(mta, "flush", held)
    assert r.returncode == 0 and "0 recipient(s)" in r.stdout, r.stdout + r.stderr

    # unknown ids
    for op in ("hold", "release", "cancel", "delete"):
        r = estafette(mta, op, "NOSUCHID")
        assert r.returncode == 1 and \
            r.stderr == "estafette: %s: no message NOSUCHID in the queue\n" % op, \
            "%s: exit %d: %r %r" % (op, r.returncode, r.stdout, r.stderr)
    r = estafette(mta, "cancel", "ALL", held)  # ALL takes nothing besides
    assert r.returncode == 2 and "usage" in r.stderr, (r.returncode, r.stderr)

    # cancel: a bounce to alice's Maildir
    r = estafette(mta, "cancel", cancelled)
    assert r.returncode == 0 and \
        "%s cancelled, 1 recipient(s) bounced to the sender" % cancelled in r.stdout, \
        "cancel: exit %d: %r %r" % (r.returncode, r.stdout, r.stderr)
    bounces = harness.wait_for(lambda: mta.maildir_messages("alice"), 20, "the bounce")
    assert len(bounces) == 1, bounces
    assert bounces[0].startswith(b"Return-Path: <>"), bounces[0][:100]
    dsn = email.message_from_bytes(bounces[0], policy=email.policy.default)
    assert dsn.get_content_type() == "multipart/report" and \
        dsn.get_param("report-type") == "delivery-status", dsn["Content-Type"]
    parts = list(dsn.iter_parts())
    types = [p.get_content_type() for p in parts]
    assert "message/delivery-status" in types, types
    status = parts[types.index("message/delivery-status")].as_bytes().decode(errors="replace")
    assert "X-Estafette-Queue-ID: %s" % cancelled in status, status
    assert re.search(r"Final-Recipient: rfc822; ?bob@dead.test", status), status
    assert "Action: failed" in status and "Status: 5.0.0" in status, status
    assert "cancelled by the administrator" in status, status
    assert "cancel-1@estafette.test" in bounces[0].decode(errors="replace"), "original headers"

    # delete: gone, no bounce; the null sender's cancel makes no bounce either
    r = estafette(mta, "delete", deleted)
    assert r.returncode == 0 and "%s deleted, 1 recipient(s) dropped" % deleted in r.stdout, \
        "delete: exit %d: %r %r" % (r.returncode, r.stdout, r.stderr)
    assert re.search(r"courierd: id=%s to=<bob@dead.test> .* status=deleted " % deleted,
                     mta.read_log())
    r = estafette(mta, "cancel", null)
    assert r.returncode == 0, r.stdout + r.stderr
    harness.wait_for(lambda: "double-bounce id=%s" % null in mta.read_log(), 10,
                     "the null sender's cancel")
    doc = queue_doc(mta)
    assert sorted(doc) == sorted([held, later]), doc
    for qid in (cancelled, deleted, null):
        assert qid not in mta.queue_files(), qid
        assert "courierd: id=%s removed" % qid in mta.read_log(), qid

    # hold --all: the one not held yet
    r = estafette(mta, "hold", "--all")
    assert r.returncode == 0 and "1 message(s) on hold" in r.stdout, r.stdout + r.stderr
    assert all(m["held"] for m in queue_doc(mta).values())

    # Across a restart: still held, and not delivered although the host is now up.
    mta.stop()
    sink = harness.SmtpSink(tmp, port=port).start()
    stoppers.append(sink)
    mta.start()
    doc = queue_doc(mta)
    assert sorted(doc) == sorted([held, later]) and all(m["held"] for m in doc.values()), doc
    estafette(mta, "flush")
    before = attempts(mta, held)
    r = estafette(mta, "release", held)
    assert r.returncode == 0 and \
        "1 message(s) released, 1 recipient(s) ready for delivery" in r.stdout, r.stdout
    harness.wait_for(lambda: sink_has(sink, "held-1"), 10, "delivery of the released message")
    assert not sink_has(sink, "later-1"), "a held message was delivered"
    assert attempts(mta, held) == before
    r = estafette(mta, "release", "--all")
    assert r.returncode == 0 and "1 message(s) released" in r.stdout, r.stdout
    harness.wait_for(lambda: sink_has(sink, "later-1"), 10, "delivery after release --all")
    harness.wait_for(lambda: queue_doc(mta) == {}, 10, "an empty queue")
    assert len(mta.maildir_messages("alice")) == 1, "one bounce only (cancel, not delete)"
    assert len(sink.messages()) == 2, "each released message delivered once"

    # courierd stopped: EX_TEMPFAIL
    mta.stop()
    for args in (["hold", "--all"], ["release", held], ["cancel", held], ["delete", held]):
        r = estafette(mta, *args)
        assert r.returncode == 75 and "courierd is not running" in r.stderr, \
            "%s: exit %d: %r" % (args, r.returncode, r.stderr)


def test_file_backend(tmp, stoppers):
    """The hold is recorded by the file backend too (msg/<id>.held) and survives a restart."""
    port = harness.free_port()
    mta = new_mta(tmp, "filemta", port, "file")
    stoppers.append(mta)
    mta.start()
    qid = send(mta, "alice@estafette.test", "bob@dead.test", "file-held-1")
    harness.wait_for(lambda: "host_failed=yes" in mta.read_log(), 15, "the first attempt")
    r = estafette(mta, "hold", qid)
    assert r.returncode == 0, r.stdout + r.stderr
    mta.stop()
    assert mta.queue_files() == [qid], mta.queue_files()
    sink = harness.SmtpSink(tmp, port=port).start()
    stoppers.append(sink)
    mta.start()
    assert queue_doc(mta)[qid]["held"] is True
    r = estafette(mta, "release", qid)
    assert r.returncode == 0, r.stdout + r.stderr
    harness.wait_for(lambda: sink_has(sink, "file-held-1"), 10, "delivery after release")
    harness.wait_for(lambda: mta.queue_files() == [], 10, "an empty file queue")


def test_many(tmp, stoppers):
    port = harness.free_port()  # nobody listens
    mta = new_mta(tmp, "manymta", port, "segment")
    stoppers.append(mta)
    mta.start()
    ids = [send(mta, "alice@estafette.test", "bob@dead.test", "many-%d" % i) for i in range(5)]
    harness.wait_for(lambda: len(queue_doc(mta)) == 5, 15, "five queued messages")
    r = estafette(mta, "hold", ids[0], ids[1])
    assert r.returncode == 0 and r.stdout.count("1 message(s) on hold") == 2, r.stdout + r.stderr
    doc = queue_doc(mta)
    assert [doc[i]["held"] for i in ids] == [True, True, False, False, False], doc
    # Ids on standard input, one of them unknown: the others are done, exit 1.
    r = subprocess.run([mta.program("estafette"), "delete", "-", "-c", mta.conf],
                       input="%s\nNOSUCHID %s\n" % (ids[2], ids[3]), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "%s deleted" % ids[2] in r.stdout and "%s deleted" % ids[3] in r.stdout, r.stdout
    assert "no message NOSUCHID in the queue" in r.stderr, r.stderr
    assert sorted(queue_doc(mta)) == sorted([ids[0], ids[1], ids[4]])
    # ALL: held or not, every message goes; no bounce.
    r = estafette(mta, "delete", "ALL")
    assert r.returncode == 0 and "3 message(s) deleted, 3 recipient(s) dropped" in r.stdout, \
        r.stdout + r.stderr
    harness.wait_for(lambda: queue_doc(mta) == {}, 10, "an empty queue")
    assert not mta.maildir_messages("alice"), "delete made a bounce"


def test(tmp, stoppers):
    test_segment(tmp, stoppers)
    test_file_backend(tmp, stoppers)
    test_many(tmp, stoppers)


harness.run(test)
