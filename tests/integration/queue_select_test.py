"""estafette hold/release/cancel/delete/flush with a selection (--sender, --rcpt-domain,
--destination, --older-than, --reason), and mailq with the daemons stopped, with real daemons.
Mail for dead.test goes to a port where nothing listens (its attempt fails with "Connection
refused"); mail for busy.test goes to smtp-sink, which answers RCPT with a 4xx: both stay queued
with a known last error.
- each selector alone, and together (AND), picks exactly the expected messages: one line per
  message, then the count; exit 1 and a message when nothing matches; a selection with an id,
  an unknown option or a bad duration is a usage error (exit 2).
- hold by selection holds only those messages (mailq shows them held), flush by selection skips
  held ones, release by selection releases only its own, cancel bounces to the sender, delete
  leaves nothing.
- with courierd stopped (estafette stop) mailq reads the queue files: a first line saying
  courierd is not running, every queued message, held ones marked; exit 0; --json too; and the
  queue files are unchanged by it. Selections then exit 75. After a restart --reason matches
  nothing until mail fails again (the last errors live in courierd's memory)."""
import json
import os
import re
import smtplib
import subprocess
import time

import harness


def estafette(mta, *args):
    return subprocess.run([mta.program("estafette")] + list(args) + ["-c", mta.conf],
                          capture_output=True, text=True, timeout=60)


def send(mta, sender, rcpts, tag):
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail(sender)
        for r in rcpts:
            s.rcpt(r)
        code, resp = s.data(b"Subject: %s\r\n\r\nbody\r\n" % tag.encode())
        assert code == 250, (code, resp)
        return re.search(rb"queued as (\S+)", resp).group(1).decode()


def queue_doc(mta):
    r = estafette(mta, "mailq", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return {m["id"]: m for m in json.loads(r.stdout)["messages"]}


def selected(mta, op, *selection, code=0):
    """The ids the operation reports, checking the count line and the exit code."""
    r = estafette(mta, op, *selection)
    assert r.returncode == code, "%s %s: exit %d: %r %r" % (op, selection, r.returncode,
                                                             r.stdout, r.stderr)
    ids = re.findall(r"^(\S+): \d+ recipient\(s\) ", r.stdout, re.M)
    if code == 1:
        assert ids == [] and \
            r.stderr == "estafette: %s: no message matches the selection\n" % op, r.stderr
    else:
        assert re.search(r"^estafette: %s: %d message\(s\)" % (op, len(ids)), r.stdout, re.M), \
            r.stdout
    return sorted(ids)


def tree(path):
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            out[p] = (st.st_size, st.st_mode, st.st_mtime_ns)
    return out


def test(tmp, stoppers):
    dead = harness.free_port()  # nobody listens
    sink = harness.SmtpSink(tmp, options=["-r", "rcpt"]).start()  # 4xx to every RCPT
    stoppers.append(sink)
    mta = harness.Estafette(tmp, relay_domains="dead.test busy.test", retry_base="60s",
                            retry_max="10m", host_backoff="60s",
                            routes={"dead.test": "127.0.0.1,%d" % dead,
                                    "busy.test": "127.0.0.1,%d" % sink.port})
    stoppers.append(mta)
    mta.start()
    m1 = send(mta, "alice@estafette.test", ["bob@dead.test"], "m1")
    harness.wait_for(lambda: "host_failed=yes" in mta.read_log(), 15, "the dead host's attempt")
    m2 = send(mta, "Carol@Other.Test", ["bob@busy.test"], "m2")
    m3 = send(mta, "", ["x@busy.test"], "m3")
    m4 = send(mta, "alice@estafette.test", ["y@busy.test", "z@dead.test"], "m4")
    everything = sorted([m1, m2, m3, m4])

    def busy_deferred():
        doc = queue_doc(mta)
        return len(doc) == 4 and all(r["last_error"] for m in doc.values()
                                     for r in m["recipients"] if r["address"].endswith("busy.test"))
    harness.wait_for(busy_deferred, 20, "the busy recipients deferred")
    doc = queue_doc(mta)
    refused = doc[m1]["recipients"][0]["last_error"]
    busy = doc[m2]["recipients"][0]["last_error"]
    assert "Connection refused" in refused, refused
    assert "Connection refused" not in busy and busy.startswith("4"), busy
    busy_word = busy.split()[-1]  # smtp-sink's reply text, e.g. "failed"
    time.sleep(2)  # so that --older-than 1s takes all of them

    # Each selector alone (flush changes nothing but the next try).
    assert selected(mta, "flush", "--sender", "Carol@other.TEST") == [m2]  # domain: any case
    selected(mta, "flush", "--sender", "carol@other.test", code=1)         # local part: exact
    assert selected(mta, "flush", "--sender", "<>") == [m3]
    assert selected(mta, "flush", "--sender", "<alice@estafette.test>") == sorted([m1, m4])
    assert selected(mta, "flush", "--rcpt-domain", "dead.test") == sorted([m1, m4])
    assert selected(mta, "flush", "--rcpt-domain", "BUSY.test") == sorted([m2, m3, m4])
    selected(mta, "flush", "--rcpt-domain", "test", code=1)
    assert selected(mta, "flush", "--destination", "127.0.0.1:%d" % dead) == sorted([m1, m4])
    assert selected(mta, "flush", "--destination", "127.0.0.1:%d" % sink.port) == \
        sorted([m2, m3, m4])
    assert selected(mta, "flush", "--older-than", "1s") == everything
    selected(mta, "flush", "--older-than", "1h", code=1)
    assert selected(mta, "flush", "--reason", "connection REFUSED") == [m1]
    harness.wait_for(lambda: len([m for m in queue_doc(mta).values() for r in m["recipients"]
                                  if busy_word in r["last_error"]]) == 3, 20,
                     "the busy errors again")
    assert selected(mta, "flush", "--reason", busy_word) == sorted([m2, m3, m4])
    # Together: every one must match.
    assert selected(mta, "flush", "--sender", "alice@estafette.test", "--rcpt-domain",
                    "busy.test") == [m4]
    assert selected(mta, "flush", "--sender", "alice@estafette.test", "--reason",
                    "refused", "--older-than", "1s") == [m1]
    selected(mta, "flush", "--sender", "<>", "--rcpt-domain", "dead.test", code=1)

    # Usage errors: nothing is done.
    for args in (["hold", "--sender", "<>", m1], ["hold", "--older-than", "5x"],
                 ["delete", "--older-than", "0s"], ["hold", "--sender", "a@b", "ALL"],
                 ["hold", "--rcpt-domain", "a@b.test"], ["cancel", "--colour", "red"],
                 ["delete", "--sender"], ["hold", "--sender", "<>", "--sender", "<>"]):
        r = estafette(mta, *args)
        assert r.returncode == 2 and "usage" in r.stderr, (args, r.returncode, r.stderr)
    assert sorted(queue_doc(mta)) == everything

    # hold by selection: only those; flush then skips them; release takes back its own only.
    assert selected(mta, "hold", "--rcpt-domain", "busy.test") == sorted([m2, m3, m4])
    doc = queue_doc(mta)
    assert [doc[i]["held"] for i in (m1, m2, m3, m4)] == [False, True, True, True], doc
    assert selected(mta, "flush", "--rcpt-domain", "dead.test") == [m1]  # m4 is held
    selected(mta, "flush", "--sender", "<>", code=1)  # m3 is held: flush leaves it
    selected(mta, "hold", "--sender", "<>", code=1)   # already held
    assert selected(mta, "release", "--sender", "<>") == [m3]
    doc = queue_doc(mta)
    assert [doc[i]["held"] for i in (m1, m2, m3, m4)] == [False, True, False, True], doc
    assert "courierd: select op=release messages=1 nrcpt=1" in mta.read_log()

    # mailq with the daemons stopped: the queue files, read-only.
    stop_with_estafette(mta)
    assert not os.path.exists(os.path.join(mta.state, "run", "courierd.sock"))
    before = tree(os.path.join(mta.state, "queue"))
    r = estafette(mta, "mailq")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("courierd is not running:") and "unknown" in lines[0], lines[0]
    for qid, held in ((m1, False), (m2, True), (m3, False), (m4, True)):
        assert re.search(r"^%s%s +\d+ " % (qid, "!" if held else ""), r.stdout, re.M), \
            (qid, r.stdout)
    assert re.search(r"^    z@dead.test  dest=dead.test attempts=\? next=held$", r.stdout,
                     re.M), r.stdout
    assert re.search(r"^    bob@dead.test  dest=dead.test attempts=\? next=unknown$", r.stdout,
                     re.M), r.stdout
    assert "MAILER-DAEMON" in r.stdout and "-- 1 Kbytes in 4 Requests." in r.stdout, r.stdout
    assert r.stderr == "", r.stderr
    r = estafette(mta, "mailq", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["courierd_running"] is False, doc
    assert sorted(m["id"] for m in doc["messages"]) == everything, doc
    assert tree(os.path.join(mta.state, "queue")) == before, "mailq changed the queue"
    for args in (["hold", "--sender", "<>"], ["flush", "--older-than", "1s"]):
        r = estafette(mta, *args)
        assert r.returncode == 75 and "courierd is not running" in r.stderr, (args, r.stderr)

    # Back up: cancel bounces to the sender, delete leaves nothing.
    mta.start()
    assert sorted(queue_doc(mta)) == everything
    assert selected(mta, "cancel", "--sender", "alice@estafette.test", "--rcpt-domain",
                    "dead.test") == sorted([m1, m4])
    harness.wait_for(lambda: len(mta.maildir_messages("alice")) == 2, 20,
                     "the bounces of the cancel")
    assert selected(mta, "delete", "--older-than", "1s") == sorted([m2, m3])
    harness.wait_for(lambda: queue_doc(mta) == {}, 10, "an empty queue")
    assert len(mta.maildir_messages("alice")) == 2, "delete made a bounce"
    selected(mta, "delete", "--older-than", "1s", code=1)


def stop_with_estafette(mta):
    """estafette stop waits for estafetted to go, which is our child here: reaped meanwhile."""
    stop = subprocess.Popen([mta.program("estafette"), "stop", "-c", mta.conf],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mta.proc.wait(20)
    out, err = stop.communicate(timeout=30)
    assert stop.returncode == 0 and "stopped" in out, out + err
    mta.stop()


def test_file_backend(tmp, stoppers):
    """mailq without courierd reads the file backend too: a held message and one with a
    recipient done."""
    dead = harness.free_port()
    mta = harness.Estafette(tmp, name="filemta", relay_domains="dead.test", retry_base="60s",
                            retry_max="10m", host_backoff="60s", queue_backend="file",
                            routes={"dead.test": "127.0.0.1,%d" % dead})
    stoppers.append(mta)
    mta.start()
    held = send(mta, "alice@estafette.test", ["bob@dead.test"], "f1")
    part = send(mta, "alice@estafette.test", ["carol@estafette.test", "dan@dead.test"], "f2")
    harness.wait_for(lambda: mta.maildir_messages("carol"), 15, "the local delivery")
    time.sleep(1.5)  # so that --older-than 1s takes both
    assert selected(mta, "hold", "--rcpt-domain", "dead.test", "--older-than", "1s") == \
        sorted([held, part])
    assert selected(mta, "release", "--sender", "alice@estafette.test", "--older-than", "1s") \
        == sorted([held, part])
    assert selected(mta, "hold", "--sender", "alice@estafette.test", "--older-than", "1s") \
        == sorted([held, part])
    stop_with_estafette(mta)
    before = tree(os.path.join(mta.state, "queue"))
    r = estafette(mta, "mailq")
    assert r.returncode == 0 and r.stdout.startswith("courierd is not running"), \
        (r.returncode, r.stdout, r.stderr)
    assert re.search(r"^%s! " % held, r.stdout, re.M), r.stdout
    assert re.search(r"^%s! " % part, r.stdout, re.M), r.stdout
    assert "carol@" not in r.stdout, "a delivered recipient is listed: " + r.stdout
    assert "    dan@dead.test  dest=dead.test attempts=? next=held" in r.stdout, r.stdout
    assert tree(os.path.join(mta.state, "queue")) == before, "mailq changed the queue"


def tests(tmp, stoppers):
    test(tmp, stoppers)
    test_file_backend(tmp, stoppers)


harness.run(tests)
