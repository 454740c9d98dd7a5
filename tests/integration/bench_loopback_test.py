#!/usr/bin/env python3
"""`estafette-bench loopback` (issue 17): two throwaway Estafette instances S -> R on loopback,
R checking rDNS, two DNSBLs and IDENT against the rig fixtures the command starts itself.
Short runs: SMTP injection with checks off and on (300 messages over 7 host names), sendmail
injection (60), queue injection (held at S, then released; 100), and the Postfix pair when root
and Postfix are there. Each must lose nothing, give every message exactly one Received header
of R's (with the confirmed rDNS name and, as root, the IDENT user when the checks are on),
spread the recipients over the host names, and write result.json in the shared format and the
summary lines (msgs_per_s=, lost=, the ratio line)."""
import json
import os
import re
import subprocess

import harness


def loopback(tmp, name, *options, timeout=120):
    """Runs estafette-bench loopback; (exit status, output, result.json as a dict)."""
    out = os.path.join(tmp, name)
    env = dict(os.environ, BENCH_LOCK="")  # a test does not wait for someone's benchmark
    r = subprocess.run([os.path.join(harness.BUILD_DIR, "estafette-bench"), "loopback",
                        "--out", out, "--stall", "20", *options], capture_output=True,
                       text=True, timeout=timeout, env=env)
    text = r.stdout + r.stderr
    path = os.path.join(out, "result.json")
    result = None
    if os.path.exists(path):
        with open(path) as f:
            result = json.load(f)
    return r.returncode, text, result


def check_run(run, messages, hosts, checks, ident, text):
    s = run["summary"]
    assert s["lost"] == 0 and s["delivered"] == messages, (s, text)
    assert s["injection_failures"] == 0 and s["duplicates"] == 0, (s, text)
    assert s["received_ok"] == messages and s["received_bad"] == 0, (s, text)
    assert s["recipient_hosts"] == hosts, s
    assert s["msgs_per_s"] > 0 and s["seconds"] > 0, s
    assert s["connections"] >= 1, s
    assert s["p50_ms"] is not None and s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"], s
    assert len(run["latencies_ms"]) == messages, len(run["latencies_ms"])
    assert run["timeline"][-1][2] == messages, run["timeline"][-1]
    assert run["cpu"] and "R" in run["cpu"][-1][1], run["cpu"][:2]
    if checks:
        assert s["rdns_confirmed"] == messages, s
        assert s["ident_user"] == (messages if ident else 0), s
        assert "client.test" in run["received_sample"], run["received_sample"]
    else:
        assert s["rdns_confirmed"] == 0 and s["ident_user"] == 0, s
    # The summary line of the run: at least msgs_per_s= and lost=0.
    line = [l for l in text.splitlines() if l.startswith(run["name"] + ":")]
    assert line and re.search(r"\bmsgs_per_s=[0-9.]+", line[-1]), text
    assert re.search(r"\blost=0\b", line[-1]), line


def test(tmp, stoppers):
    root = os.geteuid() == 0
    for prog in ("dnsmasq", "rbldnsd"):
        if not any(os.access(os.path.join(d, prog), os.X_OK)
                   for d in ("/usr/sbin", "/usr/bin", "/sbin")):
            harness.skip("%s is not installed" % prog)
    ident = root and any(os.access(os.path.join(d, "oidentd"), os.X_OK)
                         for d in ("/usr/sbin", "/usr/bin"))

    rc, text, result = loopback(tmp, "smtp", "--messages", "300", "--hosts", "7",
                                "--inject", "smtp", "--concurrency", "50", "--checks", "both",
                                "--size", "2000")
    assert rc == 0, text
    assert result["command"] == "loopback" and result["params"]["messages"] == 300, result
    runs = {r["summary"]["checks"]: r for r in result["runs"]}
    assert sorted(runs) == ["off", "on"], result["runs"]
    check_run(runs["off"], 300, 7, False, ident, text)
    check_run(runs["on"], 300, 7, True, ident, text)
    assert runs["on"]["summary"]["ident"] == ("on" if ident else "off")
    ratio = result["ratios"]["checks_on_over_off estafette"]
    assert ratio > 0, result["ratios"]
    assert re.search(r"(?m)^ratios: .*checks_on_over_off\S*=[0-9.]+", text), text

    rc, text, result = loopback(tmp, "sendmail", "--messages", "60", "--hosts", "3",
                                "--inject", "sendmail", "--checks", "on")
    assert rc == 0, text
    check_run(result["runs"][0], 60, 3, True, ident, text)

    # Queue injection: nothing reaches R before the release, then everything does.
    rc, text, result = loopback(tmp, "queue", "--messages", "100", "--hosts", "4",
                                "--inject", "queue", "--checks", "off")
    assert rc == 0, text
    run = result["runs"][0]
    check_run(run, 100, 4, False, ident, text)
    assert run["timeline"][0][1] == 100, run["timeline"][:3]  # all queued before t=0

    if root and os.access("/usr/sbin/postfix", os.X_OK):
        rc, text, result = loopback(tmp, "postfix", "--messages", "100", "--hosts", "5",
                                    "--inject", "smtp", "--checks", "on", "--peer", "postfix")
        assert rc == 0, text
        check_run(result["runs"][0], 100, 5, True, False, text)
    else:
        print("no Postfix pair (needs root and postfix)")


if __name__ == "__main__":
    harness.run(test)
