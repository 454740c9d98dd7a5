"""The admin commands: a message to a dead destination (a route to a closed port) shows in
`estafette mailq` and `mailq --json` with its error and attempt count, and in the qshape
summary; `estafette flush DOMAIN` makes courierd retry at once (long before host_backoff and
retry_base); once smtp-sink listens on that port, `estafette flush` delivers it and the queue is
empty; with courierd stopped flush exits 75 and mailq reads the queue files. `estafette check-config` prints OK for a good config
and file:line for broken smtpaccess, dnsbl and filters lines, exit 1."""
import json
import os
import re
import subprocess
import time

import harness


def estafette(mta, *args, conf=None):
    return subprocess.run([mta.program("estafette")] + list(args) + ["-c", conf or mta.conf],
                          capture_output=True, text=True, timeout=60)


def attempts(mta):
    return len(re.findall(r"courierd: id=\S+ to=<bob@dead.test> .* status=deferred ", mta.read_log()))


def test(tmp, stoppers):
    port = harness.free_port()  # nobody listens: connection refused
    dest = "127.0.0.1:%d" % port
    mta = harness.Estafette(tmp, relay_domains="dead.test", retry_base="60s", retry_max="10m",
                            host_backoff="60s", routes={"dead.test": "127.0.0.1,%d" % port})
    stoppers.append(mta)
    mta.start()
    mta.send("alice@estafette.test", ["bob@dead.test"],
             b"Subject: admin\r\nMessage-ID: <admin-1@estafette.test>\r\n\r\nbody\r\n")
    harness.wait_for(lambda: attempts(mta) == 1, 15, "the first attempt")

    r = estafette(mta, "mailq")
    assert r.returncode == 0, r.stdout + r.stderr
    (qid,) = mta.queue_files()
    assert re.search(r"^%s +\d+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  alice@estafette.test$" % qid,
                     r.stdout, re.M), r.stdout
    assert re.search(r"^    bob@dead.test  dest=%s attempts=1 next=\d{4}-" % re.escape(dest),
                     r.stdout, re.M), r.stdout
    refused = "connect to [127.0.0.1]:%d: Connection refused" % port
    assert "\n        (%s)\n" % refused in r.stdout, r.stdout
    assert "-- 1 Kbytes in 1 Request." in r.stdout, r.stdout
    assert re.search(r"^TOTAL +1 +1 +0 +0 +0 +0 +0 +0$", r.stdout, re.M), r.stdout
    assert re.search(r"^%s +1 +1 +0" % re.escape(dest), r.stdout, re.M), r.stdout

    # sendmail -bp is the same listing.
    sm = subprocess.run([mta.program("estafette-sendmail"), "-bp", "-C", mta.conf],
                        capture_output=True, text=True, timeout=60)
    assert sm.returncode == 0 and sm.stdout.split("\n")[0] == r.stdout.split("\n")[0], \
        "sendmail -bp: exit %d: %r" % (sm.returncode, sm.stdout + sm.stderr)

    r = estafette(mta, "mailq", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    (m,) = doc["messages"]
    assert m["id"] == qid and m["sender"] == "alice@estafette.test", m
    (rcpt,) = m["recipients"]
    assert rcpt["address"] == "bob@dead.test" and rcpt["destination"] == dest, rcpt
    assert rcpt["attempts"] == 1 and rcpt["last_error"] == refused, rcpt
    assert rcpt["next_retry"], rcpt
    rows = {row["destination"]: row for row in doc["summary"]["destinations"]}
    assert rows["TOTAL"]["total"] == 1 and rows[dest]["counts"][0] == 1, rows

    # flush: a retry now, not after host_backoff (60 s).
    started = time.time()
    r = estafette(mta, "flush", "dead.test")
    assert r.returncode == 0 and "1 recipient(s) ready" in r.stdout, r.stdout + r.stderr
    harness.wait_for(lambda: attempts(mta) == 2, 10, "a new attempt after flush")
    assert time.time() - started < 10, "flush took %.1fs" % (time.time() - started)
    assert "courierd: flush scope=domain target=\"dead.test\" ready=1" in mta.read_log(), \
        "no flush line in the log"
    r = estafette(mta, "mailq")
    assert "attempts=2" in r.stdout, r.stdout
    r = estafette(mta, "flush", "nothing.test")
    assert r.returncode == 0 and "0 recipient(s)" in r.stdout, r.stdout
    # A queue id that is not there: exit 1, as hold and delete say it.
    r = estafette(mta, "flush", "0NOSUCHID")
    assert r.returncode == 1 and "no message 0NOSUCHID in the queue" in r.stdout, r.stdout
    r = estafette(mta, "hold", "0NOSUCHID")
    assert r.returncode == 1, r.stdout + r.stderr
    sm = subprocess.run([mta.program("estafette-sendmail"), "-qRnothing.test", "-C", mta.conf],
                        capture_output=True, text=True, timeout=60)
    assert sm.returncode == 0 and "0 recipient(s)" in sm.stdout, \
        "sendmail -qR: exit %d: %r" % (sm.returncode, sm.stdout + sm.stderr)

    # The destination comes up; flush (everything) delivers at once.
    sink = harness.SmtpSink(tmp, port=port).start()
    stoppers.append(sink)
    r = estafette(mta, "flush")
    assert r.returncode == 0 and "1 recipient(s) ready" in r.stdout, r.stdout + r.stderr
    # smtp-sink creates its file before it has written all of it: wait for the content.
    harness.wait_for(lambda: any(b"admin-1@estafette.test" in m for m in sink.messages()), 10,
                     "delivery after flush")
    harness.wait_for(lambda: estafette(mta, "mailq").stdout == "Mail queue is empty\n", 10,
                     "an empty mailq")
    r = estafette(mta, "mailq", "--json")
    assert json.loads(r.stdout)["messages"] == [], r.stdout

    # courierd stopped: flush says so (EX_TEMPFAIL); sendmail -bp is `estafette mailq`, which
    # reads the queue files.
    mta.stop()
    sm = subprocess.run([mta.program("estafette-sendmail"), "-bp", "-C", mta.conf],
                        capture_output=True, text=True, timeout=60)
    assert sm.returncode == 0 and "Mail queue is empty" in sm.stdout, sm
    r = estafette(mta, "flush")
    assert r.returncode == 75 and "courierd is not running" in r.stderr, \
        "flush: exit %d: %r %r" % (r.returncode, r.stdout, r.stderr)
    # mailq reads the queue files instead (queue_select_test.py shows a queue that is not empty)
    r = estafette(mta, "mailq")
    assert r.returncode == 0 and r.stdout.startswith("courierd is not running") and \
        r.stdout.endswith("\nMail queue is empty\n"), \
        "mailq: exit %d: %r %r" % (r.returncode, r.stdout, r.stderr)

    # check-config
    r = estafette(mta, "check-config")
    assert r.returncode == 0 and r.stdout == "config OK: %s\n" % mta.conf, \
        "check-config: exit %d: %r %r" % (r.returncode, r.stdout, r.stderr)
    bad_dir = os.path.join(tmp, "bad")
    os.makedirs(bad_dir)
    files = {
        "smtpaccess": "127.0.0.0/8 allow\n# comment\n10.0.0.0/99 deny\n",
        "dnsbl": "bl1.test 127.0.0.2 1\nbl2.test 127.0.0.[x] 1\n",
    }
    for name, text in files.items():
        with open(os.path.join(bad_dir, name), "w") as f:
            f.write(text)
    conf = os.path.join(bad_dir, "estafette.conf")

    def write_conf(*lines):
        with open(conf, "w") as f:
            f.write("state_dir = %s\n" % os.path.join(bad_dir, "state") + "".join(lines))

    write_conf("smtpaccess = %s/smtpaccess\n" % bad_dir)
    r = estafette(mta, "check-config", conf=conf)
    assert r.returncode == 1 and r.stdout.startswith(bad_dir + "/smtpaccess:3: "), \
        "exit %d: %r %r" % (r.returncode, r.stdout, r.stderr)
    write_conf("dnsbl = %s/dnsbl\n" % bad_dir,
               "filters = module:%s/missing.so, milter:bogus:1\n" % bad_dir)
    r = estafette(mta, "check-config", conf=conf)
    lines = r.stdout.splitlines()
    assert r.returncode == 1 and len(lines) == 3, \
        "exit %d: %r %r" % (r.returncode, r.stdout, r.stderr)
    assert lines[0].startswith(bad_dir + "/dnsbl:2: bad answer filter '127.0.0.[x]'"), lines
    assert lines[1].startswith(conf + ":3: filters: "), lines
    assert lines[2].startswith(conf + ":3: filters: milter 'bogus:1'"), lines


harness.run(test)
