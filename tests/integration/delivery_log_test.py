"""The delivery log with real daemons: one line per recipient per attempt, Postfix-like
(`id= to= orig_to= relay= delay= delays=a/b/c/d dsn= status= (reply)`), for mail to an alias
(postmaster -> bob, shown as orig_to, for mail and for the bounce to postmaster), to a real
SMTP sink, to a dead route (deferred) and to a sink that refuses the recipient (bounced, with
the notice's id on a `notification: id=` line);
then `estafette log QUEUE-ID` shows exactly one message's history (accept, attempts, removal;
for the bounced one also its notice's lines), nothing of the others, the same when the log was
rotated into a gzipped copy, and exit 1 for an id nobody logged."""
import gzip
import os
import re
import subprocess

import harness


def estafette_log(mta, *args):
    return subprocess.run([mta.program("estafette"), "log"] + list(args) + ["-c", mta.conf],
                          capture_output=True, text=True, timeout=60)


def accepted_id(mta, sender):
    m = re.search(r"esmtpd: accepted id=(\S+) client=\S+ from=<%s>" % re.escape(sender),
                  mta.read_log())
    return m.group(1) if m else None


ATTEMPT = re.compile(r"courierd: id=(?P<id>\S+) to=<(?P<to>[^>]*)>(?: orig_to=<(?P<orig>[^>]*)>)? "
                     r"relay=(?P<relay>\S+) delay=(?P<delay>\d+\.\d\d) "
                     r"delays=(?P<a>\d+\.\d\d)/(?P<b>\d+\.\d\d)/(?P<c>\d+\.\d\d)/(?P<d>\d+\.\d\d) "
                     r"dsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3})(?P<extra>(?: \S+=\S+)*) "
                     r"status=(?P<status>\S+) \((?P<reply>.*)\)$")


def attempts(mta, qid):
    out = []
    for line in mta.read_log().splitlines():
        m = ATTEMPT.search(line)
        if m and m.group("id") == qid:
            parts = [float(m.group(k)) for k in "abcd"]
            # The four parts add up to the delay (each rounded down to 10 ms).
            assert abs(sum(parts) - float(m.group("delay"))) <= 0.035, line
            out.append(m)
    return out


def test(tmp, stoppers):
    sink = harness.SmtpSink(tmp).start()
    stoppers.append(sink)
    refusing = harness.SmtpSink(tmp, options=["-f", "rcpt", "-B", "550 5.1.1 No such user here"])
    refusing.start()
    stoppers.append(refusing)
    dead = harness.free_port()  # nobody listens: connection refused
    aliases = os.path.join(tmp, "aliases")
    with open(aliases, "w") as f:
        f.write("postmaster: bob\n")
    mta = harness.Estafette(
        tmp, aliases=aliases, relay_domains="far.test, dead.test, refusing.test",
        retry_base="60s", retry_max="10m", host_backoff="60s",
        routes={"far.test": "127.0.0.1,%d" % sink.port, "dead.test": "127.0.0.1,%d" % dead,
                "refusing.test": "127.0.0.1,%d" % refusing.port})
    stoppers.append(mta)
    mta.start()

    body = b"Subject: log\r\n\r\nbody\r\n"
    mta.send("one@estafette.test", ["postmaster@estafette.test", "carol@far.test"], body)
    mta.send("two@estafette.test", ["dan@dead.test"], body)
    mta.send("postmaster@estafette.test", ["erin@refusing.test"], body)
    one = harness.wait_for(lambda: accepted_id(mta, "one@estafette.test"), 10, "message one")
    two = harness.wait_for(lambda: accepted_id(mta, "two@estafette.test"), 10, "message two")
    three = harness.wait_for(lambda: accepted_id(mta, "postmaster@estafette.test"), 10,
                             "message three")
    harness.wait_for(lambda: "courierd: id=%s removed" % one in mta.read_log(), 20, "one delivered")
    harness.wait_for(lambda: attempts(mta, two), 20, "two's first attempt")
    notice = harness.wait_for(
        lambda: re.search(r"courierd: id=%s sender non-delivery notification: id=(\S+) "
                          r"to=<postmaster@estafette.test>" % three, mta.read_log()), 20,
        "the bounce")
    notice = notice.group(1)
    harness.wait_for(lambda: "courierd: id=%s removed" % notice in mta.read_log(), 20,
                     "the bounce delivered")

    # The alias: the mailbox's address, and the address the client gave as orig_to.
    by_rcpt = {m.group("to"): m for m in attempts(mta, one)}
    assert sorted(by_rcpt) == ["bob@estafette.test", "carol@far.test"], sorted(by_rcpt)
    bob = by_rcpt["bob@estafette.test"]
    assert bob.group("orig") == "postmaster@estafette.test", bob.group(0)
    assert bob.group("relay") == "local" and bob.group("status") == "sent", bob.group(0)
    assert bob.group("dsn") == "2.0.0" and bob.group("c") == "0.00", bob.group(0)
    assert bob.group("reply").startswith("250 2.0.0 delivered to maildir "), bob.group(0)
    carol = by_rcpt["carol@far.test"]
    assert carol.group("orig") is None, carol.group(0)  # the address the client gave: none
    assert carol.group("relay") == "[127.0.0.1]:%d" % sink.port, carol.group(0)
    assert carol.group("status") == "sent" and carol.group("dsn").startswith("2."), carol.group(0)
    assert carol.group("reply").startswith("250 "), carol.group(0)
    # bob: the message to postmaster, and the bounce to postmaster (below).
    assert len(sink.messages()) == 1 and len(harness.maildir_files(mta.maildir("bob"))) == 2

    # The dead route: deferred, the host it tried, the connection error, when it is tried again.
    (dan,) = attempts(mta, two)
    assert dan.group("to") == "dan@dead.test" and dan.group("status") == "deferred", dan.group(0)
    assert dan.group("relay") == "[127.0.0.1]:%d" % dead, dan.group(0)
    assert dan.group("dsn").startswith("4."), dan.group(0)
    assert re.search(r" retry_in=\d+\.\ds host_failed=yes$", dan.group("extra")), dan.group(0)
    assert "Connection refused" in dan.group("reply"), dan.group(0)
    assert "courierd: id=%s removed" % two not in mta.read_log()

    # The refused recipient: bounced with the next hop's code, its notice delivered to the
    # sender, postmaster, that is bob.
    (erin,) = attempts(mta, three)
    assert erin.group("status") == "bounced" and erin.group("dsn") == "5.1.1", erin.group(0)
    assert erin.group("relay") == "[127.0.0.1]:%d" % refusing.port, erin.group(0)
    assert erin.group("reply") == "550 5.1.1 No such user here", erin.group(0)
    (back,) = attempts(mta, notice)
    assert back.group("to") == "bob@estafette.test" and back.group("status") == "sent", back.group(0)
    assert back.group("orig") == "postmaster@estafette.test", back.group(0)

    # estafette log: one message's history, in order, and nothing else.
    r = estafette_log(mta, one)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert all(re.search(r"\bid=%s\b" % re.escape(one), l) for l in lines), r.stdout
    assert "esmtpd: accepted id=%s " % one in lines[0], r.stdout
    assert lines[-1].endswith("courierd: id=%s removed" % one), r.stdout
    assert sum(1 for l in lines if ATTEMPT.search(l)) == 2, r.stdout
    for other in (two, three, notice):
        assert other not in r.stdout, r.stdout

    # The bounced message: its lines, then its notice's, up to both removals.
    r = estafette_log(mta, three)
    assert r.returncode == 0, r.stdout + r.stderr
    text = r.stdout
    for want in ("esmtpd: accepted id=%s " % three, "status=bounced (550 5.1.1",
                 "notification: id=%s" % notice, "courierd: id=%s to=<bob@" % notice,
                 "courierd: id=%s removed" % notice, "courierd: id=%s removed" % three):
        assert want in text, (want, text)
    assert text.index("accepted id=%s" % three) < text.index("status=bounced") < \
        text.index("id=%s to=<bob@" % notice), text
    assert one not in text and two not in text, text

    # Several ids at once; an unknown one alone is exit 1.
    r = estafette_log(mta, two, one)
    assert r.returncode == 0 and two in r.stdout and one in r.stdout, r.stdout + r.stderr
    r = estafette_log(mta, "0NOSUCHID")
    assert r.returncode == 1 and r.stdout == "", r.stdout + r.stderr

    # Rotated: the older half gzipped as .1.gz, the rest in the log; the same history.
    before = estafette_log(mta, one).stdout
    mta.stop()
    with open(mta.log, "rb") as f:
        data = f.read()
    cut = data.index(b"id=%s to=<" % one.encode())
    cut = data.rindex(b"\n", 0, cut) + 1
    with gzip.open(mta.log + ".1.gz", "wb") as f:
        f.write(data[:cut])
    with open(mta.log, "wb") as f:
        f.write(data[cut:])
    r = estafette_log(mta, one)
    assert r.returncode == 0 and r.stdout == before, (before, r.stdout, r.stderr)
    r = estafette_log(mta, one, "--file", mta.log + ".1.gz")  # a file named on its own
    older = before.splitlines()
    older = older[:next(i for i, l in enumerate(older) if " to=<" in l)]
    assert r.returncode == 0 and r.stdout.splitlines() == older, (older, r.stdout)


harness.run(test)
