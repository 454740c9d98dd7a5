"""estafette-bench relay: the seed relay test. `estafette-bench source` sends N messages (one per
connection, 250 sessions at once by default; with --rate R, R per second offered open loop) to a
relay MTA that routes domain1..5.grey to `estafette-bench sink`; the sink's arrival times joined
with the source's send times by Message-ID give each message's end-to-end latency. The relay is
a throwaway Estafette (from the build tree or the installed programs), a throwaway Postfix
(root), any MTA the tester started (--target, routing to --sink-port), or nothing (--direct: the
source straight into the sink, the rig's ceiling). Writes OUT/result.json, OUT/runs.csv and
OUT/report.html (report.py) and prints one summary line per run; exit 0 only when every message
of every run arrived.
"""
import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import report
from common import (CpuSampler, Progress, Unavailable, free_port, port_open,
                    process_cpu_seconds, wait_for, which)

SEED_DOMAINS = ["domain%d.grey" % i for i in range(1, 6)]
DEFAULT_MESSAGES = 20000  # the seed test sends 500000; 20000 takes seconds, not minutes
SIZES = {"400": [400], "65536": [65536], "64k": [65536], "both": [400, 65536]}


def add_arguments(p):
    p.add_argument("--mta", choices=["estafette", "postfix", "both", "none"], default=None,
                   help="the relay to measure (default: estafette, or none with --target/"
                        "--direct alone)")
    p.add_argument("--target", metavar="HOST:PORT",
                   help="also measure an MTA the tester started, relaying domain1..5.grey to "
                        "127.0.0.1:--sink-port")
    p.add_argument("--sink-port", type=int, default=0,
                   help="the sink's port (default: a free one; needed with --target)")
    p.add_argument("--direct", action="store_true",
                   help="also measure the source straight into the sink (the rig's ceiling)")
    p.add_argument("--load", choices=["estafette-bench", "smtp-source", "both"],
                   default="estafette-bench",
                   help="the load generator: the kit's source (default), Postfix's smtp-source "
                        "(-s CONCURRENCY, one message per session; no per-message latencies), or "
                        "both in turn (adds the ratio kit_over_smtp_source)")
    p.add_argument("--messages", type=int, default=DEFAULT_MESSAGES,
                   help="messages per run (default %d; the seed test's is 500000)"
                        % DEFAULT_MESSAGES)
    p.add_argument("--concurrency", type=int, default=250)
    p.add_argument("--size", default="400",
                   help="message size in bytes: 400, 65536, both, or any number >= 100")
    p.add_argument("--per-session", type=int, default=1)
    p.add_argument("--rate", type=rate_arg, metavar="PER_SECOND",
                   help="offer PER_SECOND messages per second, open loop (the kit's source: each "
                        "in a session of its own, --concurrency the cap on sessions at once; a "
                        "message that waits for the cap counts as late); default: closed loop, "
                        "--concurrency sessions always busy")
    p.add_argument("--stall", type=float, default=30,
                   help="give up when nothing moved for this many seconds (default 30)")
    p.add_argument("--out", help="directory for result.json, runs.csv, report.html "
                                 "(default: a new estafette-bench-relay-* in the current one)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--label", default="",
                   help="added to each run's name (\"estafette milter size=400\")")
    t = p.add_argument_group("TLS (a throwaway self-signed certificate for every server)")
    t.add_argument("--tls", default="plain",
                   help="inbound modes, comma-separated: plain, starttls (a full handshake per "
                        "session), resume (STARTTLS resuming a TLS 1.3 session); default plain")
    t.add_argument("--cert", choices=["ec", "rsa"], default="ec",
                   help="the certificate's key: ECDSA P-256 (default) or RSA 2048")
    t.add_argument("--outbound-tls", action="store_true",
                   help="the sink offers STARTTLS and the relay uses it when offered (Estafette "
                        "tls_policy = may, Postfix smtp_tls_security_level = may with its session "
                        "cache); the sink's sessions, TLS sessions and resumed ones are reported")
    t.add_argument("--handshakes", type=int, default=0, metavar="N",
                   help="also N handshake-only sessions (full, then resumed) against one esmtpd "
                        "(Estafette on CPU 0, the source on CPU 1): handshakes per second and "
                        "Estafette's CPU per session")
    g = p.add_argument_group("the throwaway Estafette relay")
    g.add_argument("--esmtpd-processes", type=int, help="esmtpd_processes (default: auto)")
    g.add_argument("--esmtpclient-processes", type=int,
                   help="esmtpclient_processes (default: auto)")
    g.add_argument("--queue-backend", default="segment", choices=["segment", "file"])
    g.add_argument("--conf", action="append", default=[], metavar="'KEY = VALUE'",
                   help="a config line appended to the relay's (repeatable; later keys win), "
                        "e.g. 'filters = milter:inet:PORT@127.0.0.1'")
    g.add_argument("--route", action="append", default=[], metavar="DOMAIN:HOST,PORT",
                   help="another route (and relay domain) besides domain1..5.grey")
    g.add_argument("--prefill", type=int, default=0, metavar="N",
                   help="before the measured run, queue N messages to --prefill-to (a "
                        "destination that is down: a full queue)")
    g.add_argument("--prefill-to", default="user@dead.grey", metavar="ADDRESS",
                   help="the prefill's recipient (default user@dead.grey; route its domain "
                        "with --route)")
    g.add_argument("--cpus", help="run estafetted under `taskset -c CPUS` (its daemons inherit)")
    g.add_argument("--state-dir", help="the relay's directory (default: under --out); "
                                       "e.g. on tmpfs")


TLS_MODES = {"plain": [], "starttls": ["--starttls"], "resume": ["--tls-resume"]}


def rate_arg(text):
    """--rate's value as the source takes it (digits, an optional fraction; above 0, at most
    1000000), kept as text to be passed on as it is."""
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", text) or not 0 < float(text) <= 1000000:
        raise argparse.ArgumentTypeError("expected messages per second above 0 and at most "
                                         "1000000 (like 50 or 2.5), got %r" % text)
    return text


def rate_number(text):
    """--rate's text as a number for result.json: 50, 2.5."""
    value = float(text)
    return int(value) if value.is_integer() else value


def source_timeout(args):
    """The source's --timeout: its default 600 s, or with --rate the time the offer takes on top
    (at most the source's limit of a day)."""
    if not args.rate:
        return 600
    return min(86400, 600 + math.ceil(args.messages / float(args.rate)))


def tls_modes_of(text):
    modes = [m.strip() for m in text.split(",") if m.strip()]
    if not modes or any(m not in TLS_MODES for m in modes):
        raise SystemExit("estafette-bench relay: --tls: plain, starttls and/or resume")
    return modes


def make_certificate(directory, kind):
    """A throwaway self-signed certificate and key (readable by Postfix's and esmtpd's users)
    for relay.bench.test; returns (cert, key)."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    alg = (["-newkey", "rsa:2048"] if kind == "rsa" else
           ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
    r = subprocess.run(["openssl", "req", "-x509", *alg, "-nodes", "-keyout", key, "-out", cert,
                        "-days", "30", "-subj", "/CN=relay.bench.test",
                        "-addext", "subjectAltName=DNS:relay.bench.test"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Unavailable("openssl req failed: %s" % r.stderr.strip())
    os.chmod(cert, 0o644)
    os.chmod(key, 0o644)  # a throwaway key, read by the MTAs as their own users
    return cert, key


def sizes_of(text):
    if text in SIZES:
        return SIZES[text]
    if text.isdigit() and int(text) >= 100:
        return [int(text)]
    raise SystemExit("estafette-bench relay: --size: 400, 65536, both or a number >= 100")


def read_stats(path):
    """The stats file's lines ("time=T name=N ...") as [(t, {name: n})]; a partial last line
    (being written) is left out."""
    rows = []
    with contextlib.suppress(OSError):
        with open(path) as f:
            text = f.read()
        for line in text.split("\n")[:-1]:
            fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            with contextlib.suppress(KeyError, ValueError):
                rows.append((float(fields.pop("time")), {k: int(v) for k, v in fields.items()}))
    return rows


def read_times(path):
    """{message-id: epoch} from a time record file ("EPOCH ID" lines); the first of a
    duplicate id counts."""
    times = {}
    with contextlib.suppress(OSError):
        with open(path) as f:
            for line in f:
                stamp, _, mid = line.rstrip("\n").partition(" ")
                if mid and mid not in times:
                    with contextlib.suppress(ValueError):
                        times[mid] = float(stamp)
    return times


def percentile(sorted_values, q):
    """Nearest-rank percentile q (0..100) of an ascending list; 0 for none."""
    if not sorted_values:
        return 0.0
    rank = max(1, int(-(-q * len(sorted_values) // 100)))  # ceil(q/100 * n)
    return sorted_values[min(rank, len(sorted_values)) - 1]


def timeline(start, source_rows, sink_rows):
    """[[t, sent, delivered]] from 0 at the start, then at each sink stats line, t seconds after
    start; sent is the source's count (answered 250) at that moment."""
    out, i, sent = [[0.0, 0, 0]], 0, 0
    for t, counts in sink_rows:
        while i < len(source_rows) and source_rows[i][0] <= t:
            sent = source_rows[i][1].get("sent", 0)
            i += 1
        out.append([round(t - start, 3), sent, counts.get("messages", 0)])
    return out


def descendants(pid):
    """pid's children, grandchildren, ... (from /proc/PID/task/PID/children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        found.extend(kids)
        todo.extend(kids)
    return found


def program_of(pid):
    with contextlib.suppress(OSError, IndexError):
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return os.path.basename(f.read().split(b"\0")[0].decode(errors="replace"))
    return ""


class EstafetteRelay:
    """A throwaway Estafette as the seed test's relay: estafetted -f on its own config and state
    directory, domain1..5.grey (and --route's) routed to the sink, no DNS checks, up to 250
    deliveries at once, the durable queue as always."""

    name = "estafette"

    def __init__(self, args, directory, sink_port):
        self.args, self.dir = args, directory
        self.port = free_port()
        self.proc = None
        os.makedirs(directory, exist_ok=True)
        self.conf = os.path.join(directory, "estafette.conf")
        self.log = os.path.join(directory, "estafette.log")
        routes = {d: "127.0.0.1,%d" % sink_port for d in SEED_DOMAINS}
        for r in args.route:
            domain, _, target = r.partition(":")
            routes[domain] = target
        with open(os.path.join(directory, "esmtproutes"), "w") as f:
            f.writelines("%s: %s\n" % kv for kv in routes.items())
        lines = [
            "hostname = relay.bench.test",
            "state_dir = %s" % os.path.join(directory, "state"),
            "listen = 127.0.0.1:%d" % self.port,
            "local_domains = relay.bench.test",
            "relay_domains = %s" % ", ".join(routes),
            "relay_clients = 127.0.0.0/8",
            "rdns_check = no",  # the seed test has no connection checks and no DNS
            "esmtproutes = %s" % os.path.join(directory, "esmtproutes"),
            "MAXDELS = 250", "MAXHOST = 250", "MAXRCPT = 100",
            "max_sessions = 1000",
            "queue_backend = %s" % args.queue_backend,
            "retry_base = 10s",
            "log_file = %s" % self.log,
            "log_level = information",
        ]
        if args.esmtpd_processes:
            lines.append("esmtpd_processes = %d" % args.esmtpd_processes)
        if args.esmtpclient_processes:
            lines.append("esmtpclient_processes = %d" % args.esmtpclient_processes)
        if getattr(args, "tls_files", None):
            lines += ["tls_cert_file = %s" % args.tls_files[0],
                      "tls_key_file = %s" % args.tls_files[1]]
        if args.outbound_tls:
            lines.append("tls_policy = may")
        lines += args.conf
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        exe = os.path.join(self.args.sbindir, "estafetted")
        if not os.access(exe, os.X_OK):
            raise Unavailable("%s not found (build the tree first)" % exe)
        argv = [exe, "-f", "-c", self.conf]
        if self.args.cpus:
            argv = ["taskset", "-c", self.args.cpus] + argv
        out = open(os.path.join(self.dir, "estafetted.out"), "ab")
        self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        wait_for(lambda: port_open(self.port) or self.proc.poll() is not None, 30,
                 "Estafette's esmtpd on %d" % self.port)
        if self.proc.poll() is not None:
            raise RuntimeError("estafetted exited; see %s" % self.log)
        wait_for(lambda: os.path.exists(os.path.join(self.dir, "state", "run", "courierd.sock")),
                 15, "courierd's socket")
        return self

    def cpu_groups(self):
        """One group per program (estafetted, estafette-esmtpd, ...), found now."""
        if not self.proc:
            return {}
        root = self.proc.pid
        names = {program_of(p) for p in descendants(root)} | {"estafetted"}
        names.discard("")

        def pids(name):
            tree = [root] + descendants(root)
            return [p for p in tree if program_of(p) == name]

        return {n: (lambda n=n: pids(n)) for n in sorted(names)}

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                for pid in descendants(self.proc.pid) + [self.proc.pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None


class PostfixRelay:
    """postfix.py's throwaway Postfix with the seed test's RELAY_PROFILE, routing
    domain1..5.grey to the sink by a transport map."""

    name = "postfix"

    def __init__(self, args, directory, sink_port):
        import postfix
        os.makedirs(directory, exist_ok=True)
        self.port = free_port()
        transport = os.path.join(directory, "transport")
        with open(transport, "w") as f:
            f.writelines("%s smtp:[127.0.0.1]:%d\n" % (d, sink_port) for d in SEED_DOMAINS)
        tls = {}
        if getattr(args, "tls_files", None):
            tls.update(smtpd_tls_security_level="may", smtpd_tls_cert_file=args.tls_files[0],
                       smtpd_tls_key_file=args.tls_files[1],
                       smtpd_tls_session_cache_database="btree:${data_directory}/smtpd_scache")
        if args.outbound_tls:
            tls.update(smtp_tls_security_level="may",
                       smtp_tls_session_cache_database="btree:${data_directory}/smtp_scache")
        self.postfix = postfix.Postfix(
            directory, self.port, relay_domains=", ".join(SEED_DOMAINS),
            transport_maps="texthash:" + transport, **postfix.RELAY_PROFILE, **tls)

    def start(self):
        self.postfix.start()
        return self

    def cpu_groups(self):
        master = self.postfix.master_pid()
        return {"postfix": lambda: [master] + descendants(master) if master else []}

    def stop(self):
        self.postfix.stop()


class TargetRelay:
    """An MTA the tester runs; it must relay domain1..5.grey to 127.0.0.1:--sink-port."""

    def __init__(self, target):
        host, _, port = target.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.name = "target %s" % target

    def start(self):
        if not port_open(self.port, self.host):
            raise Unavailable("nothing answers on %s:%d" % (self.host, self.port))
        return self

    def cpu_groups(self):
        return {}

    def stop(self):
        pass


def start_sink(args, directory, port, tls=False):
    stats = os.path.join(directory, "sink.stats")
    argv = [os.path.join(args.bindir, "estafette-bench"), "sink", "--listen",
            "127.0.0.1:%d" % port, "--record-times", os.path.join(directory, "sink.times"),
            "--stats", stats]
    if tls:  # STARTTLS offered: --outbound-tls, or the source's TLS straight into the sink
        argv += ["--tls-cert", args.tls_files[0], "--tls-key", args.tls_files[1]]
    out = open(os.path.join(directory, "sink.out"), "w")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    # The stats file is opened once the listener is bound; connections wait in its queue until
    # the loop runs (a probe connection would be counted as a session and an error).
    wait_for(lambda: os.path.exists(stats) or proc.poll() is not None, 10, "the sink")
    if proc.poll() is not None:
        raise RuntimeError("the sink exited: %s" % open(os.path.join(directory, "sink.out")).read())
    return proc


def peak_rss(groups):
    """{group: peak RSS (VmHWM) of its processes now, summed, in MiB}."""
    out = {}
    for name, pids in groups.items():
        kib = 0
        for pid in pids():
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open("/proc/%d/status" % pid) as f:
                    kib += next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
        out[name] = round(kib / 1024, 1)
    return out


def reap(proc, block=False):
    """Checks whether proc exited (waits for it with block) by wait4, keeping its CPU seconds
    (user + system, from the kernel's rusage: exact even for a process that lived less than a
    sampling interval) in proc.cpu_s; True once it has exited."""
    if proc.returncode is not None:
        return True
    pid, status, usage = os.wait4(proc.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return False
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.cpu_s = round(usage.ru_utime + usage.ru_stime, 3)
    return True


def key_of(name):
    """A group name as part of a summary key: estafette-esmtpd -> estafette_esmtpd."""
    return name.replace("-", "_").replace(" ", "_")


def summary_fields(path, prefix):
    with contextlib.suppress(OSError):
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    return {}


def prefill(args, target, directory):
    """Queues --prefill messages for --prefill-to at the relay (accepted, never delivered)."""
    with open(os.path.join(directory, "prefill.out"), "w") as out:
        r = subprocess.run([os.path.join(args.bindir, "estafette-bench"), "source", "--target",
                            target, "--messages", str(args.prefill), "--concurrency", "100",
                            "--size", "400", "--per-session", "1000", "--to", args.prefill_to],
                           stdout=out, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError("the prefill failed; see %s" % os.path.join(directory, "prefill.out"))


def smtp_source_argv(args, target, size):
    """Postfix's smtp-source sending what the kit's source sends: --messages messages of about
    `size` bytes (-l is the body's length; its few headers come on top), one per session, to
    the seed test's recipient."""
    exe = which("smtp-source")
    if not exe:
        raise Unavailable("smtp-source is not installed (apt-get install postfix)")
    return [exe, "-s", str(args.concurrency), "-m", str(args.messages), "-l",
            str(max(size - 150, 1)), "-f", "tester@bench.estafette.test",
            "-t", "recip1@domain1.grey", target]


def measure(args, name, relay, size, directory, load="estafette-bench", tls="plain"):
    """One run: sink, relay (or none), the load (in TLS mode `tls`); returns the run's dict of
    the result format."""
    os.makedirs(directory, exist_ok=True)
    # The tools append to these: a run into an --out used before starts from nothing.
    for stale in ("sink.stats", "sink.times", "source.stats", "source.sends"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(directory, stale))
    sink_port = args.sink_port or free_port()
    sink = start_sink(args, directory, sink_port,
                      tls=args.outbound_tls or (relay == "direct" and tls != "plain"))
    mta = source = None
    try:
        if relay == "direct":
            target = "127.0.0.1:%d" % sink_port
        else:
            mta = relay(sink_port).start()
            target = "%s:%d" % (getattr(mta, "host", "127.0.0.1"), mta.port)
        if mta and args.prefill:
            prefill(args, target, directory)
        groups = dict(mta.cpu_groups()) if mta else {}
        source_stats = os.path.join(directory, "source.stats")
        sends = os.path.join(directory, "source.sends")
        argv = [os.path.join(args.bindir, "estafette-bench"), "source", "--target", target,
                "--messages", str(args.messages), "--concurrency", str(args.concurrency),
                "--size", str(size), "--per-session", str(args.per_session),
                "--record-sends", sends, "--stats", source_stats] + TLS_MODES[tls]
        if args.rate:
            argv += ["--rate", args.rate, "--timeout", str(source_timeout(args))]
        if load == "smtp-source":
            argv = smtp_source_argv(args, target, size)
        source_out = os.path.join(directory, "source.out")
        start = time.time()
        with open(source_out, "w") as out:
            source = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        groups["source"] = lambda: [source.pid] if source.returncode is None else []
        groups["sink"] = lambda: [sink.pid]
        cpu = CpuSampler(groups, own_only=True)
        cpu.sample()
        progress = Progress(name, args.messages, enabled=False if args.quiet else None)
        sink_stats = os.path.join(directory, "sink.stats")
        last_move, last_counts = time.monotonic(), None
        # At a low --rate nothing moves between two messages' due times: not a stall.
        stall = args.stall + (1 / float(args.rate) if args.rate else 0)
        delivered = sent = 0
        while True:
            time.sleep(0.25)
            if mta:  # daemons started on demand (esmtpclient, modules) join their group
                for group, pids in mta.cpu_groups().items():
                    cpu.groups.setdefault(group, pids)
            cpu.sample()
            src_rows, sink_rows = read_stats(source_stats), read_stats(sink_stats)
            delivered = sink_rows[-1][1].get("messages", 0) if sink_rows else 0
            sent = src_rows[-1][1].get("sent", 0) if src_rows else delivered
            progress.update(sent, delivered)
            if delivered >= args.messages and reap(source):
                break
            counts = (sent, delivered, src_rows[-1][1].get("failed", 0) if src_rows else 0)
            if counts != last_counts:
                last_counts, last_move = counts, time.monotonic()
            elif time.monotonic() - last_move > stall:
                break
        cpu.sample()  # the end of the run: a short run has two samples at least
        progress.done()
        rss = peak_rss(mta.cpu_groups()) if mta else {}
        if not reap(source):
            source.kill()
        reap(source, block=True)
        sink.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: reap(sink), 30, "the sink to exit")
    finally:  # also on an error or ^C: nothing of the run is left running
        if source and not reap(source):
            source.kill()
            reap(source, block=True)
        if not reap(sink):
            sink.kill()
            reap(sink, block=True)
        if mta:
            mta.stop()
    src = summary_fields(source_out, "source: ")
    snk = summary_fields(os.path.join(directory, "sink.out"), "sink: ")
    delivered = int(snk.get("messages", delivered))
    send_times, arrivals = read_times(sends), read_times(os.path.join(directory, "sink.times"))
    latencies = sorted(round((t - send_times[m]) * 1000, 3)
                       for m, t in arrivals.items() if m in send_times)
    # From the load generator's start (the same for both generators) to the last arrival.
    last = max(arrivals.values(), default=start)
    seconds = max(last - start, 1e-6)
    summary = {
        "msgs_per_s": round(delivered / seconds, 1),
        "lost": max(0, args.messages - delivered),
        "messages": args.messages,
        "delivered": delivered,
        "seconds": round(seconds, 3),
    }
    if latencies:  # the kit's source only
        summary.update({
            "p50_ms": percentile(latencies, 50), "p90_ms": percentile(latencies, 90),
            "p99_ms": percentile(latencies, 99), "max_ms": latencies[-1]})
    if src:
        summary.update({
            "connections": int(src.get("sessions", 0)), "accepted": int(src.get("sent", 0)),
            "refused": int(src.get("failed", 0)),
            "source_msgs_per_s": float(src.get("msgs_per_s", 0))})
        if args.rate:  # the offered load, and how many messages waited for --concurrency
            summary.update({"rate": rate_number(args.rate), "late": int(src.get("late", 0))})
    summary.update({"size": size, "concurrency": args.concurrency, "load": load, "tls": tls})
    if src.get("handshakes") is not None and tls != "plain":
        summary.update({"handshakes": int(src.get("handshakes", 0)),
                        "resumed": int(src.get("resumed", 0))})
    if args.outbound_tls and snk:  # what the relay's client did towards the sink
        summary.update({"sink_sessions": int(snk.get("sessions", 0)),
                        "sink_tls_sessions": int(snk.get("tls_sessions", 0)),
                        "sink_tls_resumed": int(snk.get("tls_resumed", 0))})
    for group, mib in rss.items():
        summary["rss_mib_" + key_of(group)] = mib
    # CPU seconds per group over the run: each sample's percent over its interval (the first
    # interval starts at the sampler's baseline, t=0).
    for group in cpu.groups:
        used, before = 0.0, 0.0
        for t, row in cpu.samples:
            used += row.get(group, 0) * (t - before) / 100
            before = t
        summary["cpu_s_" + key_of(group)] = round(used, 2)
    # The source's and the sink's own totals are exact (rusage at exit).
    summary["cpu_s_source"] = getattr(source, "cpu_s", 0)
    summary["cpu_s_sink"] = getattr(sink, "cpu_s", 0)
    return {
        "name": name,
        "summary": summary,
        "timeline": timeline(start, read_stats(os.path.join(directory, "source.stats")),
                             read_stats(os.path.join(directory, "sink.stats"))),
        "latencies_ms": latencies,
        "cpu": cpu.samples,
    }


def tree_cpu_seconds(pid):
    """CPU seconds of a process tree: each process's own and its reaped children's."""
    return sum(process_cpu_seconds(p) for p in [pid] + descendants(pid))


def handshake_runs(args, out, state_root):
    """--handshakes: new TLS sessions per second against one esmtpd (Estafette on CPU 0, the
    source on CPU 1, as the source's client side of a handshake costs about what the server's
    does), full then resumed; Estafette's own CPU per session is the figure that measures it."""
    one = argparse.Namespace(**vars(args))
    one.esmtpd_processes, one.cpus, one.conf = 1, "0", list(args.conf)
    runs = []
    state = os.path.join(state_root, "handshakes")
    shutil.rmtree(state, ignore_errors=True)
    os.makedirs(os.path.join(out, "handshakes"), exist_ok=True)
    sink = start_sink(args, os.path.join(out, "handshakes"), free_port())
    relay = None
    try:
        relay = EstafetteRelay(one, state, 9).start()  # no mail reaches the route's port
        for mode, extra in (("full", []), ("resumed", ["--tls-resume"])):
            before = tree_cpu_seconds(relay.proc.pid)
            r = subprocess.run(
                ["taskset", "-c", "1", os.path.join(args.bindir, "estafette-bench"), "source",
                 "--target", "127.0.0.1:%d" % relay.port, "--messages", str(args.handshakes),
                 "--concurrency", "50", "--handshake-only", *extra],
                capture_output=True, text=True, timeout=600)
            used = tree_cpu_seconds(relay.proc.pid) - before
            src = {}
            for line in r.stdout.splitlines():
                if line.startswith("source: "):
                    src = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
            runs.append({"name": "estafette handshakes=%s" % mode, "summary": {
                "handshakes_per_s": float(src.get("handshakes_per_s", 0)),
                "lost": 0, "sessions": args.handshakes,
                "failed": int(src.get("failed", args.handshakes)),
                "handshakes": int(src.get("handshakes", 0)),
                "resumed": int(src.get("resumed", 0)),
                "estafette_cpu_us_per_session": round(1e6 * used / args.handshakes),
                "cert": args.cert}, "timeline": [], "latencies_ms": [], "cpu": []})
    finally:
        if relay:
            relay.stop()
        sink.terminate()
        sink.wait(10)
    return runs


def run(args):
    sizes = sizes_of(args.size)
    mta = args.mta or ("none" if (args.target or args.direct) else "estafette")
    if args.target and not args.sink_port:
        print("estafette-bench relay: --target needs --sink-port (the port your MTA relays "
              "domain1..5.grey to)", file=sys.stderr)
        return 2
    if mta in ("postfix", "both") and os.geteuid() != 0:
        print("estafette-bench relay: a throwaway Postfix needs root (run as root, or use "
              "--mta estafette)", file=sys.stderr)
        return 2
    tls_modes = tls_modes_of(args.tls)
    if args.rate and args.load != "estafette-bench":
        print("estafette-bench relay: smtp-source offers no fixed rate: --rate needs --load "
              "estafette-bench", file=sys.stderr)
        return 2
    if args.rate and args.per_session != 1:
        print("estafette-bench relay: --rate gives each message a session: --per-session must "
              "be 1", file=sys.stderr)
        return 2
    if args.load != "estafette-bench" and tls_modes != ["plain"]:
        print("estafette-bench relay: smtp-source speaks no TLS: --tls needs --load "
              "estafette-bench", file=sys.stderr)
        return 2
    out = args.out or tempfile.mkdtemp(prefix="estafette-bench-relay-", dir=os.getcwd())
    os.makedirs(out, exist_ok=True)
    os.chmod(out, 0o755)  # Postfix's and esmtpd's users read the certificate in it
    state_root = args.state_dir or os.path.join(out, "state")
    args.tls_files = None
    if tls_modes != ["plain"] or args.outbound_tls or args.handshakes:
        try:
            args.tls_files = make_certificate(out, args.cert)
        except Unavailable as e:
            print("estafette-bench relay: %s" % e, file=sys.stderr)
            return 2
    label = (" " + args.label) if args.label else ""
    setups = []  # (name prefix, relay factory or "direct")
    if args.direct:
        setups.append(("direct", "direct"))
    if mta in ("estafette", "both"):
        setups.append(("estafette", "estafette"))
    if mta in ("postfix", "both"):
        setups.append(("postfix", "postfix"))
    if args.target:
        setups.append(("target", "target"))
    result = {"command": "relay", "params": {
        "mta": mta, "target": args.target or "", "direct": args.direct,
        "messages": args.messages, "concurrency": args.concurrency, "sizes": sizes,
        "per_session": args.per_session, "rate": rate_number(args.rate) if args.rate else 0,
        "stall": args.stall, "conf": args.conf,
        "esmtpd_processes": args.esmtpd_processes or 0,
        "esmtpclient_processes": args.esmtpclient_processes or 0, "cpus": args.cpus or "",
        "label": args.label, "prefill": args.prefill, "load": args.load, "tls": tls_modes,
        "cert": args.cert if args.tls_files else "", "outbound_tls": args.outbound_tls,
        "handshakes": args.handshakes}, "runs": []}
    rates = {}
    status = 0
    loads = ["estafette-bench", "smtp-source"] if args.load == "both" else [args.load]
    for size in sizes:
        for kind, how, load, tls in [(k, h, ld, t) for k, h in setups for ld in loads
                                     for t in tls_modes]:
            tag = kind if load == "estafette-bench" else "%s smtp-source" % kind
            mode = "" if tls == "plain" else " tls=%s" % tls
            name = "%s%s size=%d%s" % (tag, label, size, mode)
            slug = "%s-%d%s" % (tag.replace(" ", "-"), size, mode.replace(" tls=", "-"))
            run_dir = os.path.join(out, slug)
            state = os.path.join(state_root, slug)
            # A relay starts empty, also in an --out or --state-dir used before.
            shutil.rmtree(state, ignore_errors=True)
            if how == "estafette":
                relay = lambda port, s=state: EstafetteRelay(args, s, port)  # noqa: E731
            elif how == "postfix":
                relay = lambda port, s=state: PostfixRelay(args, s, port)  # noqa: E731
            elif how == "target":
                relay = lambda port: TargetRelay(args.target)  # noqa: E731
            else:
                relay = how
            try:
                r = measure(args, name, relay, size, run_dir, load, tls)
            except Unavailable as e:
                print("estafette-bench relay: %s: %s" % (name, e), file=sys.stderr)
                return 2
            except (RuntimeError, TimeoutError, OSError) as e:
                print("estafette-bench relay: %s: %s" % (name, e), file=sys.stderr)
                return 1
            result["runs"].append(r)
            rates[(tag, size, tls)] = r["summary"]["msgs_per_s"]
            if r["summary"]["lost"] or r["summary"].get("refused"):
                status = 1
    ratios = {}
    for size, tls in [(z, t) for z in sizes for t in tls_modes]:
        mode = "" if tls == "plain" else " tls=%s" % tls
        e, p, d = (rates.get((k, size, tls)) for k in ("estafette", "postfix", "direct"))
        if e and p:
            ratios["estafette_over_postfix%s size=%d%s" % (label, size, mode)] = round(e / p, 2)
        if e and d:
            ratios["estafette_over_direct%s size=%d%s" % (label, size, mode)] = round(e / d, 3)
        for kind, _ in setups:
            kit = rates.get((kind, size, tls))
            other = rates.get(("%s smtp-source" % kind, size, tls))
            if kit and other:
                ratios["kit_over_smtp_source %s%s size=%d" % (kind, label, size)] = \
                    round(kit / other, 2)
            plain = rates.get((kind, size, "plain"))
            if tls != "plain" and kit and plain:  # what TLS costs: 1 - tls/plain, in percent
                ratios["tls_cost_percent %s%s size=%d%s" % (kind, label, size, mode)] = \
                    round(100 * (1 - kit / plain), 1)
    if args.handshakes and mta in ("estafette", "both"):
        try:
            for r in handshake_runs(args, out, state_root):
                result["runs"].append(r)
                if r["summary"]["failed"]:
                    status = 1
        except (Unavailable, RuntimeError, TimeoutError, OSError) as e:
            print("estafette-bench relay: handshakes: %s" % e, file=sys.stderr)
            return 1
    if ratios:
        result["ratios"] = ratios
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump(result, f)
    report.write(result, out)
    for line in report.summary_lines(result):
        print(line)
    print("relay: results in %s (result.json, runs.csv, report.html)" % out)
    return status
