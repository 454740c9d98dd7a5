#!/usr/bin/env python3
"""metrics_listen: estafetted runs estafette-metrics, and a scrape of /metrics by a real HTTP
client, parsed by prometheus_client's own parser, counts exactly what a known run did: accepted
messages, refusals for relay and for an unknown user, deliveries to a sink and to a dead route,
summed over two esmtpd processes. A hostile file in run/metrics is refused without spoiling the
scrape; the daemons' files go away when they stop."""
import os
import smtplib
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import harness

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client is for Debian's python3: when make check runs another
    # one first in PATH (a pyenv shim), this test runs again under /usr/bin/python3.
    DEBIAN_PYTHON = "/usr/bin/python3"
    if (os.access(DEBIAN_PYTHON, os.X_OK) and not os.environ.get("METRICS_TEST_REEXEC") and
            os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON)):
        os.environ["METRICS_TEST_REEXEC"] = "1"
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)
    harness.skip("python3-prometheus-client is not installed (scripts/install-deps)")

RELAY = "127.0.0.230"     # a relay client
STRANGER = "127.0.0.231"  # not one


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=20) as r:
        assert r.status == 200, r.status
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
        text = r.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def send(source, rcpts, body="Subject: m\r\n\r\nhello\r\n", tls=False):
    with smtplib.SMTP("127.0.0.1", send.port, timeout=30, source_address=(source, 0)) as s:
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            s.starttls(context=context)
        return s.sendmail("sender@example.test", rcpts, body)


def make_cert(tmp):
    key, pem = os.path.join(tmp, "mta.key"), os.path.join(tmp, "mta.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", pem,
                        "-days", "30", "-subj", "/CN=mta.estafette.test"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    os.chmod(key, 0o644)
    return pem, key


def test(tmp, stoppers):
    sink = harness.SmtpSink(tmp)
    stoppers.append(sink)
    sink.start()
    dead = harness.free_port()  # nobody listens there
    metrics_port = harness.free_port()
    pem, key = make_cert(tmp)
    mta = harness.Estafette(tmp, metrics_listen="127.0.0.1:%d" % metrics_port,
                            tls_cert_file=pem, tls_key_file=key,
                            relay_clients=RELAY + "/32", local_mailboxes="existing",
                            esmtpd_processes="2",
                            routes={"sink.test": "127.0.0.1,%d" % sink.port,
                                    "dead.test": "127.0.0.1,%d" % dead})
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(mta.state, "maildir", "alice", sub))
    stoppers.append(mta)
    mta.start()
    send.port = mta.port
    harness.wait_for(lambda: harness.port_open(metrics_port), 15, "estafette-metrics")
    harness.wait_for(lambda: value(scrape(metrics_port), "estafette_processes",
                                   program="estafette-esmtpd") == 2 and
                     value(scrape(metrics_port), "estafette_processes",
                           program="estafette-courierd") == 1, 15, "the daemons' files")
    # The harness's port probes during start-up wait in the listen queues until the esmtpd
    # loops run: the baseline is taken once they are all counted (no change for a second).
    def settled():
        first = value(scrape(metrics_port), "estafette_esmtpd_connections_total")
        time.sleep(1)
        return value(scrape(metrics_port), "estafette_esmtpd_connections_total") == first
    harness.wait_for(settled, 20, "the start-up probes counted")
    before = scrape(metrics_port)
    assert value(before, "estafette_esmtpd_messages_accepted_total") == 0, before

    # The known run: 3 messages queued (one over STARTTLS), 2 relay refusals and 1 unknown user,
    # over 5 sessions.
    send(RELAY, ["a@sink.test", "b@sink.test"])
    send(RELAY, ["x@dead.test"])
    send(RELAY, ["alice@estafette.test"], tls=True)
    for rcpts in (["y@elsewhere.test"], ["z@elsewhere.test", "nobody@estafette.test"]):
        try:
            send(STRANGER, rcpts)
            raise AssertionError("accepted %r from a stranger" % rcpts)
        except smtplib.SMTPRecipientsRefused:
            pass

    def delivered():
        s = scrape(metrics_port)
        return (value(s, "estafette_deliveries_total", result="delivered",
                      destination="127.0.0.1:%d" % sink.port) == 2 and
                value(s, "estafette_deliveries_total", result="delivered",
                      destination="local") == 1 and
                value(s, "estafette_deliveries_total", result="deferred",
                      destination="127.0.0.1:%d" % dead) >= 1)
    try:
        harness.wait_for(delivered, 30, "the deliveries counted")
    except AssertionError:
        print({k: v for k, v in scrape(metrics_port).items() if "deliver" in k[0]})
        raise

    # courierd's queue shape: the dead route's recipient waits; the delivered ones are gone.
    shape = scrape(metrics_port)
    assert value(shape, "estafette_queue_up") == 1, shape
    assert value(shape, "estafette_queue_recipients", destination="127.0.0.1:%d" % dead) == 1
    assert 0 <= value(shape, "estafette_queue_oldest_seconds",
                      destination="127.0.0.1:%d" % dead) < 120
    assert not any(k[0] == "estafette_queue_recipients" and k[1] != (("destination",
                   "127.0.0.1:%d" % dead),) for k in shape), shape

    # A hostile file under a live pid (estafetted's): refused, the rest is served as before.
    hostile = os.path.join(mta.state, "run", "metrics", "estafette-esmtpd.%d" % mta.proc.pid)
    with open(hostile, "wb") as f:
        f.write(b"ESTMTRC1" + b"\xff" * 5000)
    after = scrape(metrics_port)
    connections = (value(after, "estafette_esmtpd_connections_total") -
                   value(before, "estafette_esmtpd_connections_total"))
    assert connections == 5, "connections: %s, expected 5" % connections
    assert value(after, "estafette_esmtpd_messages_accepted_total") == 3, after
    expected = {"relay": 2, "unknown_user": 1, "dnsbl": 0, "filter": 0, "access": 0,
                "other_4xx": 0, "other_5xx": 0}
    for reason, n in expected.items():
        got = value(after, "estafette_esmtpd_rejects_total", reason=reason)
        assert got == n, "rejects %s: %s, expected %s" % (reason, got, n)
    assert value(after, "estafette_deliveries_total", result="bounced",
                 destination="127.0.0.1:%d" % sink.port) == 0
    assert value(after, "estafette_processes", program="estafette-esmtpd") == 2, after
    assert value(after, "estafette_esmtpd_tls_handshakes_total", result="ok") == 1, after
    assert value(after, "estafette_esmtpd_tls_handshakes_total", result="failed") == 0, after
    # esmtpd's queue commits: one fsync batch at least per message, each in a histogram.
    commits = value(after, "estafette_queue_commit_batch_size_sum")
    assert commits >= 3, commits
    assert value(after, "estafette_queue_commit_seconds_count") >= 1, after
    assert value(after, "estafette_queue_commit_seconds_bucket", le="+Inf") == \
        value(after, "estafette_queue_commit_seconds_count")
    assert "refused" in mta.read_log() and hostile in mta.read_log(), "no log of the bad file"

    # Only /metrics, only GET and HEAD.
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/other" % metrics_port, timeout=10)
        raise AssertionError("/other answered")
    except urllib.error.HTTPError as e:
        assert e.code == 404, e.code
    os.unlink(hostile)

    # The daemons remove their files when they stop.
    metrics_dir = os.path.join(mta.state, "run", "metrics")
    mta.stop()
    left = os.listdir(metrics_dir)
    assert left == [], left


if __name__ == "__main__":
    harness.run(test)
