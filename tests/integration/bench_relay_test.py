#!/usr/bin/env python3
"""`estafette-bench relay` and `report` (issue 17): a short seed relay test (a few hundred
messages, one per connection) through a throwaway Estafette, the rig's ceiling (--direct) and,
as root with Postfix installed, a throwaway Postfix: nothing may be lost, the summary lines carry
the agreed keys, result.json holds a timeline, one latency per message and CPU samples, nothing
the command started is left running. A relay that loses everything (--target: a sink that keeps
the mail) makes it exit 1 with lost=N; Postfix's smtp-source as the load (--load) is counted
like the kit's source. With --tls plain,resume and --handshakes, TLS sessions are made and
resumed (into Estafette and into the sink) and the handshake-only runs report their rate and
Estafette's CPU per session; with --outbound-tls every session to the sink is TLS. With --rate
the source offers a fixed load and the summary and params record it.
report.html rendered by headless Chromium must show the
three plots (throughput, latency CDF, CPU) with drawn lines. report.py's pure parts are checked
on small inputs too."""
import csv
import json
import os
import re
import subprocess
import sys

import harness

sys.path.insert(0, os.path.join(harness.SRC_DIR, "bench", "kit", "orchestrate"))
import relay  # noqa: E402
import report  # noqa: E402

MESSAGES = 300


def bench():
    return os.path.join(harness.BUILD_DIR, "estafette-bench")


def fields(line):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}


def check_pure_parts():
    assert relay.percentile([], 50) == 0.0
    values = list(range(1, 101))
    assert (relay.percentile(values, 50), relay.percentile(values, 99),
            relay.percentile(values, 100)) == (50, 99, 100)
    assert relay.percentile([7], 1) == 7
    rows = [(100.0, {"sent": 5}), (100.5, {"sent": 9}), (101.0, {"sent": 10})]
    sink = [(100.2, {"messages": 1}), (100.7, {"messages": 8}), (101.3, {"messages": 10})]
    assert relay.timeline(99.5, rows, sink) == [[0.0, 0, 0], [0.7, 5, 1], [1.2, 9, 8],
                                              [1.8, 10, 10]]
    assert report.nice_ticks(0, 97) == [0, 20, 40, 60, 80, 100]
    assert report.nice_ticks(0, 0.9)[-1] >= 0.9
    assert report.cdf_series([3, 1, 2]) == [(1, 1 / 3), (2, 2 / 3), (3, 1.0)]
    assert report.throughput_series({"timeline": [[0.5, 10, 5], [1.0, 20, 15]]}) == \
        [(0.5, 10.0), (1.0, 20.0)]
    result = {"command": "relay", "params": {}, "runs": [
        {"name": "a size=400", "summary": {"lost": 0, "msgs_per_s": 12.5, "x": "y z"}},
        {"name": "b size=400", "summary": {"msgs_per_s": 3, "lost": 2, "extra": 1}}],
        "ratios": {"a_over_b size=400": 4.17}}
    assert report.summary_lines(result) == [
        "a size=400: msgs_per_s=12.5 lost=0 x=y_z",
        "b size=400: msgs_per_s=3 lost=2 extra=1",
        "ratios: a_over_b_size=400=4.17"], report.summary_lines(result)
    svg = report.line_chart("c", "t <&>", [("s", [(1, 2), (3, 4)])], "x", "y")
    assert svg.count("<path ") == 1 and "t &lt;&amp;&gt;" in svg, svg
    # A point at 0 is left off a log axis instead of failing.
    svg = report.line_chart("c", "t", [("s", [(0, 1), (10, 2), (100, 3)])], "x", "y", log_x=True)
    assert svg.count(" L") == 1, svg


def run_relay(out, *options):
    r = subprocess.run([bench(), "relay", "--messages", str(MESSAGES), "--concurrency", "50",
                        "--out", out, "--quiet", "--stall", "30", *options],
                       capture_output=True, text=True, timeout=240)
    return r, [l for l in r.stdout.splitlines()]


def leftovers(marker):
    """Processes whose command line mentions `marker` (the run's directory)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def render(html_path, tmp):
    exe = relay_which("chromium")
    if not exe:
        harness.skip("chromium is not installed (scripts/install-deps)")
    profile = os.path.join(tmp, "chromium-profile")
    r = subprocess.run([exe, "--headless", "--disable-gpu", "--no-sandbox",
                        "--user-data-dir=" + profile, "--dump-dom", "file://" + html_path],
                       capture_output=True, text=True, timeout=90,
                       env=dict(os.environ, HOME=tmp))
    assert r.returncode == 0 and "</html>" in r.stdout, (r.returncode, r.stderr[-2000:])
    return r.stdout


def relay_which(name):
    import shutil
    return shutil.which(name) or next((p for p in ("/usr/bin/" + name,)
                                       if os.access(p, os.X_OK)), None)


def test(tmp, stoppers):
    check_pure_parts()

    postfix = os.geteuid() == 0 and os.access("/usr/sbin/postfix", os.X_OK)
    out = os.path.join(tmp, "out")
    r, lines = run_relay(out, "--mta", "both" if postfix else "estafette", "--direct")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-3000:])
    expected = ["direct size=400", "estafette size=400"] + (["postfix size=400"] if postfix
                                                            else [])
    runs = {l.split(":", 1)[0]: fields(l) for l in lines if l.split(":", 1)[0] in expected}
    assert sorted(runs) == sorted(expected), lines
    for name, f in runs.items():
        for key in ("msgs_per_s", "lost", "delivered", "seconds", "p50_ms", "p99_ms"):
            assert key in f, (name, f)
        assert f["lost"] == "0" and f["delivered"] == str(MESSAGES), (name, f)
        assert float(f["msgs_per_s"]) > 0 and float(f["p99_ms"]) >= float(f["p50_ms"]) > 0, f
    if postfix:
        ratio = [l for l in lines if l.startswith("ratios: ")]
        assert len(ratio) == 1 and "estafette_over_postfix_size=400=" in ratio[0], lines

    with open(os.path.join(out, "result.json")) as f:
        result = json.load(f)
    assert result["command"] == "relay" and result["params"]["messages"] == MESSAGES
    for run in result["runs"]:
        # Every message's latency (send -> arrival, joined by Message-ID), a timeline that ends
        # with all of them delivered, CPU samples of the source, the sink and the MTA.
        assert len(run["latencies_ms"]) == MESSAGES, (run["name"], len(run["latencies_ms"]))
        assert all(x > 0 for x in run["latencies_ms"]), run["name"]
        assert run["timeline"] and run["timeline"][-1][1:] == [MESSAGES, MESSAGES], run["timeline"]
        groups = set().union(*(set(row) for _, row in run["cpu"]))
        assert {"source", "sink"} <= groups, groups
        if run["name"].startswith("estafette"):
            assert "estafette-esmtpd" in groups, groups
    with open(os.path.join(out, "runs.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [row["name"] for row in rows] == [r["name"] for r in result["runs"]], rows
    assert all(row["lost"] == "0" for row in rows), rows
    assert not leftovers(out), leftovers(out)

    # `report` writes the same files again from result.json, elsewhere.
    again = os.path.join(tmp, "again")
    r = subprocess.run([bench(), "report", os.path.join(out, "result.json"), "--out", again],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [l for l in r.stdout.splitlines() if l.startswith("estafette size=400: ")], r.stdout
    assert os.path.exists(os.path.join(again, "report.html"))

    # --rate: 300 messages at 300 per second take about a second, none waits for --concurrency;
    # the run's summary and params record the rate. smtp-source has none: refused.
    paced = os.path.join(tmp, "rate")
    r, lines = run_relay(paced, "--direct", "--rate", "300")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-3000:])
    f = [fields(l) for l in lines if l.startswith("direct size=400: ")]
    assert len(f) == 1 and (f[0]["lost"], f[0]["rate"], f[0]["late"]) == ("0", "300", "0"), lines
    assert float(f[0]["seconds"]) >= 0.9, f
    with open(os.path.join(paced, "result.json")) as fh:
        paced_result = json.load(fh)
    assert paced_result["params"]["rate"] == 300, paced_result["params"]
    assert paced_result["runs"][0]["summary"]["rate"] == 300, paced_result["runs"][0]["summary"]
    assert "rate" not in result["runs"][0]["summary"] and result["params"]["rate"] == 0, result
    r, _ = run_relay(os.path.join(tmp, "rate-refused"), "--direct", "--rate", "300", "--load",
                     "smtp-source")
    assert r.returncode == 2 and "--rate" in r.stderr, (r.returncode, r.stderr)

    # Postfix's smtp-source as the load, counted by the same sink.
    if os.access("/usr/sbin/smtp-source", os.X_OK):
        r, lines = run_relay(os.path.join(tmp, "smtp-source"), "--direct", "--load",
                             "smtp-source")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-3000:])
        f = [fields(l) for l in lines if l.startswith("direct smtp-source size=400: ")]
        assert len(f) == 1 and f[0]["lost"] == "0" and f[0]["delivered"] == str(MESSAGES), lines

    # TLS: STARTTLS resuming TLS 1.3 sessions into Estafette and straight into the sink, the
    # handshake-only runs against one esmtpd, and TLS on the outbound leg.
    r, lines = run_relay(os.path.join(tmp, "tls"), "--mta", "estafette", "--direct", "--tls",
                         "plain,resume", "--handshakes", "100")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-3000:])
    runs = {l.split(":", 1)[0]: fields(l) for l in lines}
    for name in ("direct size=400 tls=resume", "estafette size=400 tls=resume"):
        f = runs[name]
        assert f["lost"] == "0" and f["tls"] == "resume", (name, f)
        assert int(f["handshakes"]) == MESSAGES and int(f["resumed"]) > MESSAGES // 2, (name, f)
    for mode in ("full", "resumed"):
        f = runs["estafette handshakes=%s" % mode]
        assert f["failed"] == "0" and f["handshakes"] == "100", (mode, f)
        assert float(f["handshakes_per_s"]) > 0 and int(f["estafette_cpu_us_per_session"]) > 0, f
    assert int(runs["estafette handshakes=resumed"]["resumed"]) > 50, runs
    assert any("tls_cost_percent_estafette_size=400_tls=resume=" in l for l in lines), lines
    r, lines = run_relay(os.path.join(tmp, "outbound"), "--mta", "estafette", "--outbound-tls")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-3000:])
    f = [fields(l) for l in lines if l.startswith("estafette size=400: ")][0]
    assert f["lost"] == "0" and 0 < int(f["sink_tls_sessions"]) == int(f["sink_sessions"]), f

    # A relay that loses everything: the "MTA" is a second sink that keeps what it gets.
    keeper = harness.free_port()
    keeper_proc = subprocess.Popen([bench(), "sink", "--listen", "127.0.0.1:%d" % keeper],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        harness.wait_for(lambda: harness.port_open(keeper), 10, "the keeping sink")
        lossy = os.path.join(tmp, "lossy")
        r, lines = run_relay(lossy, "--target", "127.0.0.1:%d" % keeper, "--sink-port",
                             str(harness.free_port()), "--stall", "2")
    finally:
        keeper_proc.terminate()
        keeper_proc.wait(10)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    line = [l for l in lines if l.startswith("target size=400: ")]
    assert len(line) == 1, lines
    f = fields(line[0])
    assert f["lost"] == str(MESSAGES) and f["delivered"] == "0", f

    # The report in a browser: each plot an <svg> with drawn lines.
    dom = render(os.path.join(out, "report.html"), tmp)
    for plot in ["throughput", "latency"] + ["cpu-%d" % i for i in range(len(result["runs"]))]:
        m = re.search(r'<svg id="%s"[^>]*>(.*?)</svg>' % plot, dom, re.S)
        assert m, (plot, dom[:2000])
        paths = re.findall(r'<path d="M[0-9.]+,[0-9.]+ L[^"]+"', m.group(1))
        assert len(paths) >= len(result["runs"]) or (plot.startswith("cpu") and paths), \
            (plot, m.group(1)[:1000])


if __name__ == "__main__":
    harness.run(test)
