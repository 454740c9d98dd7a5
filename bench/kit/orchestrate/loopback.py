"""estafette-bench loopback: Courier's two-instance loopback test, S -> R on one machine.

Two throwaway MTAs on 127.0.0.1 with their own directories and free ports: S takes the
injected mail and relays everything for .example.com to R; R delivers it to Maildirs and, with
--checks on, checks every SMTP client: forward-confirmed reverse DNS, two DNS lists (bl1.test,
bl2.test) and IDENT, against the fixtures of rig.py (dnsmasq + rbldnsd on a free port, oidentd
on port 113). Injection (--inject):

  sendmail  one estafette-sendmail per message (--workers at once), as Courier's test does;
  smtp      `estafette-bench source` into S's SMTP port with --concurrency sessions, so that
            the MTAs and not the injection set the pace;
  queue     the same while R is down and S retries only on demand (retry_base 1h), then R is
            started and `estafette flush` releases S's whole queue at once: S's queue -> R only.

Measured per run: throughput from the first injection (queue: the release) to the last delivery
at R, latency percentiles (S accepting a message, from its log, or the release, to its file in
R's Maildir), SMTP connections R accepted, loss (must be 0), the Received header R added (exactly
one per message; how many show the confirmed rDNS name and the IDENT user), CPU per group.
--peer postfix runs the same with two throwaway Postfix instances (see PostfixPair).
Writes <out>/result.json (the shared format), then report.py's CSV and HTML when it exists.
Exit 0 only when every message arrived with exactly one R Received header; 1 otherwise; 2 when a
run cannot be made here (a missing package, --peer postfix without root).
"""
import bisect
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import rig
from common import CpuSampler, Progress, Unavailable, free_port, port_open, wait_for

S_HOST = "s.loopback.test"
R_HOST = "r.loopback.test"
SENDER = "sender@sender.test"
RCPT_TEMPLATE = "rcpt-{n}@h{h}.foo.example.com"
DNSBL_FILE = "bl1.test  127.0.0.2  1  *\nbl2.test  -          1  *\n"
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3}) ")


def add_arguments(p):
    p.add_argument("--messages", type=int, default=2000, help="messages per run (2000)")
    p.add_argument("--hosts", type=int, default=20,
                   help="recipient host names h0..h(H-1).foo.example.com (20)")
    p.add_argument("--inject", choices=["sendmail", "smtp", "queue"], default="smtp")
    p.add_argument("--checks", choices=["off", "on", "both"], default="both",
                   help="R's connection checks (rDNS, DNSBLs, IDENT); both: off, then on")
    p.add_argument("--peer", choices=["estafette", "postfix", "both"], default="estafette",
                   help="which MTA pair; both adds estafette_over_postfix ratios")
    p.add_argument("--concurrency", type=int, default=100,
                   help="SMTP sessions at once into S (--inject smtp|queue; 100)")
    p.add_argument("--workers", type=int, default=8,
                   help="estafette-sendmail processes at once (--inject sendmail; 8)")
    p.add_argument("--size", type=int, default=4096, help="message size in bytes (4096)")
    p.add_argument("--out", default="./loopback-results", help="result directory")
    p.add_argument("--stall", type=float, default=30.0,
                   help="fail when no message arrived at R for this many seconds (30)")
    p.add_argument("--keep", action="store_true", help="keep the instances' directories")
    p.add_argument("--s-setting", action="append", default=[], metavar="'KEY = VALUE'",
                   help="an estafette.conf line added to S's config (repeatable; Estafette)")
    p.add_argument("--r-setting", action="append", default=[], metavar="'KEY = VALUE'",
                   help="an estafette.conf line added to R's config (repeatable; Estafette)")
    p.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help="the progress line on stderr (auto: on a terminal)")


def log(*what):
    print("loopback:", *what, file=sys.stderr, flush=True)


def log_time(line):
    """Seconds since the epoch of an Estafette log line ("2026-12-07T01:26:34.133 ..."), or
    None; the daemons stamp local time, as time.mktime reads it."""
    m = LOG_TIME.match(line)
    if not m:
        return None
    return time.mktime(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + int(m.group(2)) / 1e3


class LogTail:
    """Counts matching lines appended to a log file since the last look (cheap to poll: only
    the new bytes are read)."""

    def __init__(self, path, pattern):
        self.path, self.pattern, self.offset, self.count = path, pattern, 0, 0
        self.rest = b""

    def poll(self):
        with contextlib.suppress(OSError):
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
            self.offset += len(data)
            lines = (self.rest + data).split(b"\n")
            self.rest = lines.pop()
            self.count += sum(1 for line in lines if self.pattern in line)
        return self.count


def descendants(pid):
    """pid and every process under it (from /proc/PID/task/PID/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError, ValueError):
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo.extend(int(x) for x in f.read().split())
    return out


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def received_headers(head):
    """The Received fields of a message header (bytes), unfolded, as str."""
    out = []
    for field in re.split(rb"\r?\n(?![ \t])", head):
        if field[:9].lower() == b"received:":
            out.append(re.sub(rb"\s*\r?\n\s*", b" ", field).decode(errors="replace"))
    return out


@contextlib.contextmanager
def bench_lock():
    """flock BENCH_LOCK (default /tmp/estafette-bench.lock, empty: none) around a measurement,
    so that benchmarks run by several people on one machine do not overlap."""
    path = os.environ.get("BENCH_LOCK", "/tmp/estafette-bench.lock")
    if not path:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Estafette:
    """One throwaway Estafette instance: `estafetted -f` on a config written here."""

    name = "estafette"

    def __init__(self, args, directory, host, port, settings, files=None):
        self.args, self.dir, self.host, self.port = args, directory, host, port
        os.makedirs(directory)
        os.chmod(directory, 0o755)
        self.state = os.path.join(directory, "state")
        self.conf = os.path.join(directory, "estafette.conf")
        self.log = os.path.join(directory, "estafette.log")
        for fname, text in (files or {}).items():
            with open(os.path.join(directory, fname), "w") as f:
                f.write(text)
        lines = ["state_dir = " + self.state, "listen = 127.0.0.1:%d" % port,
                 "log_file = " + self.log, "log_level = information", "hostname = " + host,
                 "BOFHCHECKDNS = no", "max_message_size = 64M"] + settings
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        out = open(os.path.join(self.dir, "estafetted.out"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(self.args.sbindir, "estafetted"), "-f", "-c", self.conf],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        wait_for(lambda: self.proc.poll() is not None or (
            port_open(self.port) and
            os.path.exists(os.path.join(self.state, "run", "courierd.sock")) and
            "every daemon is up" in self.read_log()), 30, "%s on %d" % (self.dir, self.port))
        if self.proc.poll() is not None:
            raise RuntimeError("estafetted exited (%s): %s" % (self.dir, self.read_log()[-2000:]))
        return self

    def pids(self):
        return descendants(self.proc.pid) if self.proc and self.proc.poll() is None else []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                for pid in self.pids():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def admin(self, *words):
        return subprocess.run([os.path.join(self.args.sbindir, "estafette"), *words, "-c",
                               self.conf], capture_output=True, text=True, timeout=60)

    def read_log(self):
        with contextlib.suppress(OSError):
            with open(self.log, errors="replace") as f:
                return f.read()
        return ""

    def maildir_root(self):
        return os.path.join(self.state, "maildir")

    # What the measurement reads from the logs.
    def accepted_pattern(self):
        return b"esmtpd: accepted id="

    def delivered_pattern(self):
        return b" relay=local "

    def accepted_times(self):
        """{queue id: time S's esmtpd accepted it}."""
        out = {}
        for line in self.read_log().splitlines():
            m = re.search(r"esmtpd: accepted id=(\S+)", line)
            if m:
                out[m.group(1)] = log_time(line)
        return out

    def connections(self):
        return len(re.findall(r"esmtpd: connect from \[", self.read_log()))


class EstafettePair:
    """S and R as Estafette instances, R's checks against the fixtures."""

    def __init__(self, args, base, dns_port, ident, checks, hold):
        r_port, s_port = free_port(), free_port()
        resolver = "dns_servers = 127.0.0.1:%d" % dns_port  # never the host's resolver
        r_settings = [resolver, "local_domains = .example.com", "local_mailboxes = create"]
        if checks:
            r_settings += ["rdns_check = yes", "dnsbl = dnsbl", "dnsbl_threshold = 1",
                           "ident_check = %s" % ("yes" if ident else "no"),
                           "ident_timeout = 10s"]
        else:
            r_settings += ["rdns_check = no", "ident_check = no"]
        self.r = Estafette(args, os.path.join(base, "R"), R_HOST, r_port,
                           r_settings + args.r_setting,
                           {"dnsbl": DNSBL_FILE})
        # S: relays .example.com to R over one route, MAXHOST/MAXDELS 40 as in the seed. With
        # `hold` (--inject queue) S retries only when flushed.
        retry = ["retry_base = 1h", "retry_max = 2h", "host_backoff = 1s"] if hold else [
            "retry_base = 1s", "retry_max = 10s", "host_backoff = 1s"]
        s_settings = [resolver, "local_domains = " + S_HOST, "relay_clients = 127.0.0.0/8",
                      "rdns_check = no", "esmtproutes = esmtproutes", "MAXDELS = 40",
                      "MAXHOST = 40", "MAXRCPT = 100"] + retry + args.s_setting
        self.s = Estafette(args, os.path.join(base, "S"), S_HOST, s_port, s_settings,
                           {"esmtproutes": ".example.com: 127.0.0.1,%d\n" % r_port})

    def release(self):
        """--inject queue: S's queue goes to R now (R was down; S retries on `flush`)."""
        r = self.s.admin("flush")
        if r.returncode != 0:
            raise RuntimeError("estafette flush: %s%s" % (r.stdout, r.stderr))

    def sendmail_command(self, rcpt):
        return [os.path.join(self.s.args.bindir, "estafette-sendmail"), "-C", self.s.conf,
                "-f", SENDER, rcpt]

    def s_queue_id(self, received):
        """S's queue id from the Received header S added ("by s.loopback.test ... id X")."""
        m = re.search(r" by %s \(Estafette\) with \S+ id (\S+)" % re.escape(S_HOST), received)
        return m.group(1).rstrip(";") if m else None


def run_source(args, port, messages, log_path):
    """`estafette-bench source` into 127.0.0.1:port; its Popen (stdout to log_path)."""
    out = open(log_path, "w")
    try:
        return subprocess.Popen(
            [os.path.join(args.bindir, "estafette-bench"), "source",
             "--target", "127.0.0.1:%d" % port, "--messages", str(messages),
             "--concurrency", str(args.concurrency), "--size", str(args.size),
             "--helo", "client.test", "--from", SENDER, "--to", RCPT_TEMPLATE,
             "--hosts", str(args.hosts)], stdout=out, stderr=subprocess.STDOUT)
    finally:
        out.close()


def sendmail_message(n, hosts, size):
    """(recipient, message bytes) of message n for --inject sendmail."""
    rcpt = RCPT_TEMPLATE.format(n=n, h=n % hosts)
    head = ("From: <%s>\nTo: <%s>\nSubject: loopback %d\nMessage-ID: <loopback-%d.%d@sender.test>"
            "\n\n" % (SENDER, rcpt, n, n, os.getpid())).encode()
    line = b"x" * 76 + b"\n"
    body = line * (max(size - len(head), 1) // len(line) + 1)
    return rcpt, head + body[:max(size - len(head), 1) - 1] + b"\n"


class SendmailInjector:
    """--workers threads, each running one sendmail process per message until all are sent."""

    def __init__(self, pair, args):
        self.pair, self.args = pair, args
        self.next, self.failures, self.first_error = 0, 0, ""
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._work, daemon=True)
                        for _ in range(args.workers)]
        self.stopping = False

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _work(self):
        while not self.stopping:
            with self.lock:
                if self.next >= self.args.messages:
                    return
                self.next += 1
                n = self.next
            rcpt, data = sendmail_message(n, self.args.hosts, self.args.size)
            r = subprocess.run(self.pair.sendmail_command(rcpt), input=data, capture_output=True)
            if r.returncode != 0:
                with self.lock:
                    self.failures += 1
                    self.first_error = self.first_error or r.stderr.decode(errors="replace")

    def poll(self):
        return None if any(t.is_alive() for t in self.threads) else 0

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(120)


class Measurement:
    """One run: start the pair, inject, wait for R to hold everything (or stall), stop."""

    def __init__(self, args, pair, label, fixtures_pids, checks_label, ident_label):
        self.args, self.pair, self.label = args, pair, label
        self.fixtures_pids = fixtures_pids
        self.checks_label, self.ident_label = checks_label, ident_label
        self.injector = None

    def _injector_pids(self):
        inj = self.injector
        if isinstance(inj, subprocess.Popen):
            return [inj.pid] if inj.poll() is None else []
        # One short-lived sendmail per message: most exit between two samples, so count them
        # as the CPU of their waited-for children in this process's own figure (which also
        # has this script's polling, a few percent).
        return [os.getpid()]

    def run(self):
        args, pair = self.args, self.pair
        s, r = pair.s, pair.r
        queue = args.inject == "queue"
        sampler = CpuSampler({"S": s.pids, "R": r.pids, "injector": self._injector_pids,
                              "dns+ident": self.fixtures_pids})
        progress = Progress(self.label, args.messages,
                            None if args.progress == "auto" else args.progress == "on")
        accepted = LogTail(s.log, s.accepted_pattern())
        delivered = LogTail(r.log, r.delivered_pattern())
        source_log = os.path.join(os.path.dirname(s.dir), "source.out")
        try:
            if not queue:
                r.start()
            s.start()
            sampler.sample()
            t_inject = time.time()
            if args.inject == "sendmail":
                self.injector = SendmailInjector(pair, args).start()
            else:
                self.injector = run_source(args, s.port, args.messages, source_log)
            t_release = None
            last_count, last_change, next_sample = -1, time.monotonic(), 0.0
            while True:
                now = time.monotonic()
                if now >= next_sample:
                    sampler.sample()
                    next_sample = now + 0.5
                sent, count = accepted.poll(), delivered.poll()
                progress.update(sent, count)
                injecting = self.injector.poll() is None
                if queue and t_release is None and not injecting:
                    # Everything S took is queued and waiting: start R, then release.
                    wait_for(lambda: accepted.poll() >= _source_sent(source_log), 10,
                             "S's log of the accepted messages")
                    r.start()
                    t_release = time.time()
                    pair.release()
                    last_change = time.monotonic()
                if count != last_count:
                    last_count, last_change = count, time.monotonic()
                if not injecting and (t_release or not queue) and count >= sent:
                    break
                if not injecting and time.monotonic() - last_change > args.stall:
                    log("%s: nothing arrived at R for %.0f s: stopping" % (self.label, args.stall))
                    break
                time.sleep(0.1)
            t_end = time.time()
            sampler.sample()
            progress.done()
            if isinstance(self.injector, subprocess.Popen):
                failures, first_error = _source_failures(source_log, self.injector, args.messages)
            else:
                failures, first_error = self.injector.failures, self.injector.first_error
        finally:
            progress.done()
            if self.injector is not None:
                if isinstance(self.injector, subprocess.Popen):
                    if self.injector.poll() is None:
                        self.injector.kill()
                    self.injector.wait()
                else:
                    self.injector.stop()
            s.stop()
            r.stop()
        result = self.analyse(t_release or t_inject, t_end)
        result["summary"].update(injection_failures=failures)
        if first_error:
            result["summary"]["first_injection_error"] = first_error.strip()[:200]
        result["cpu"] = sampler.samples
        result["t0"] = t_release or t_inject
        return result

    def analyse(self, t0, t_end):
        pair, s, r = self.pair, self.pair.s, self.pair.r
        accepted = s.accepted_times()
        latencies, delivered_at, ids = [], [], set()
        bad_received = rdns = ident = 0
        domains = set()
        sample = ""
        root = r.maildir_root()
        with contextlib.suppress(FileNotFoundError):
            for box in os.scandir(root):
                m = re.match(r"rcpt-(\d+)$", box.name)
                new = os.path.join(box.path, "new")
                if not m or not os.path.isdir(new):
                    continue
                for entry in os.scandir(new):
                    with open(entry.path, "rb") as f:
                        head = f.read(65536).replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
                    at = entry.stat().st_mtime
                    ids.add(int(m.group(1)))
                    to = re.search(rb"(?im)^Delivered-To: *\S+@(\S+)", head)
                    domains.add(to.group(1).lower() if to else b"")
                    delivered_at.append(at)
                    fields = received_headers(head)
                    ours = [h for h in fields if " by %s " % R_HOST in h]
                    if len(ours) != 1:
                        bad_received += 1
                        continue
                    sample = sample or ours[0]
                    # "Received: from HELO (NAME [IP]...": NAME is the confirmed rDNS name or
                    # "unknown"; with IDENT "(USER@NAME [IP]...".
                    name = re.match(r"Received: from \S+ \((\S+) \[", ours[0])
                    if name and name.group(1).split("@")[-1] != "unknown":
                        rdns += 1
                    if name and "@" in name.group(1):
                        ident += 1
                    start = t0 if self.args.inject == "queue" else None
                    if start is None:
                        qid = next((pair.s_queue_id(h) for h in fields
                                    if pair.s_queue_id(h)), None)
                        start = accepted.get(qid)
                    if start is not None:
                        latencies.append(max(0.0, at - start) * 1e3)
        messages = self.args.messages
        delivered = len(delivered_at)
        last = max(delivered_at, default=t0)
        seconds = max(last - t0, 1e-6)
        sent_times = sorted(t for t in accepted.values() if t is not None)
        timeline = []
        done_times = sorted(delivered_at)
        step = 0.5
        t = step
        while True:
            timeline.append([t, _count_le(sent_times, t0 + t), _count_le(done_times, t0 + t)])
            if t0 + t >= last or t > 3600:
                break
            t += step
        summary = {
            "peer": pair.s.name, "inject": self.args.inject, "checks": self.checks_label,
            "ident": self.ident_label, "messages": messages, "injected": len(accepted),
            "delivered": delivered, "lost": messages - len(ids & set(range(1, messages + 1))),
            "duplicates": delivered - len(ids), "seconds": round(seconds, 3),
            "msgs_per_s": round(delivered / seconds, 1),
            "p50_ms": _round(percentile(latencies, 50)),
            "p90_ms": _round(percentile(latencies, 90)),
            "p99_ms": _round(percentile(latencies, 99)),
            "connections": r.connections(), "received_ok": delivered - bad_received,
            "received_bad": bad_received, "rdns_confirmed": rdns, "ident_user": ident,
            "recipient_hosts": len(domains - {b""}),
        }
        # One of R's Received headers as it was written, for the record (not a summary key).
        return {"name": self.label, "summary": summary, "timeline": timeline,
                "latencies_ms": [round(x, 3) for x in latencies], "received_sample": sample[:300]}


def _round(x):
    return None if x is None else round(x, 1)


def _count_le(sorted_values, limit):
    return bisect.bisect_right(sorted_values, limit)


def _source_sent(path):
    """How many messages the source has had accepted so far, per its summary line (0 before)."""
    with contextlib.suppress(OSError):
        with open(path) as f:
            m = re.search(r"\bsent=(\d+)", f.read())
            if m:
                return int(m.group(1))
    return 0


def _source_failures(path, proc, messages):
    """(failed messages, first error) from the source's output."""
    proc.wait()
    with open(path, errors="replace") as f:
        text = f.read()
    m = re.search(r"\bsent=(\d+) failed=(\d+)", text)
    if not m:
        return messages, "estafette-bench source: " + text.strip()[-200:]
    failed = int(m.group(2))
    err = "" if failed == 0 else text.strip()[-200:]
    return failed, err


class Fixtures:
    """The DNS (dnsmasq + rbldnsd, free ports) and IDENT (oidentd on 113 when root) fixtures."""

    def __init__(self, base):
        self.base = base
        self.dns = None
        self.identd = None
        self.ident = False
        self.why_no_ident = ""

    def start(self):
        for attempt in range(5):  # rbldnsd takes port+1, which free_port() did not check
            port = free_port()
            self.dns = rig.Dns(os.path.join(self.base, "dns-%d" % attempt), port)
            try:
                self.dns.start()
                break
            except RuntimeError:
                self.dns.stop()
                if attempt == 4:
                    raise
        self.identd = rig.Identd()
        try:
            self.identd.start()
            self.ident = True
        except Unavailable as e:
            self.why_no_ident = str(e)
        return self

    def pids(self):
        return [p.pid for f in (self.dns, self.identd) if f for p in f.procs
                if p.poll() is None]

    def stop(self):
        for f in (self.identd, self.dns):
            if f:
                f.stop()


def run(args):
    if min(args.messages, args.hosts, args.concurrency, args.workers, args.size) < 1:
        log("--messages, --hosts, --concurrency, --workers and --size must be positive")
        return 2
    for d, prog in ((args.sbindir, "estafetted"), (args.sbindir, "estafette"),
                    (args.bindir, "estafette-bench"), (args.bindir, "estafette-sendmail")):
        if not os.access(os.path.join(d, prog), os.X_OK):
            log("no %s in %s" % (prog, d))
            return 2
    # Ctrl-C and SIGTERM unwind through the finally blocks below, which stop every process the
    # run started (SIGINT too when the shell started us with it ignored, as `cmd &` does).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupted)
    peers = ["estafette", "postfix"] if args.peer == "both" else [args.peer]
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.checks]
    base = tempfile.mkdtemp(prefix="estafette-bench-loopback-")
    os.chmod(base, 0o755)
    fixtures = Fixtures(base)
    runs, ok = [], True
    try:
        try:
            fixtures.start()
            if "postfix" in peers:
                import loopback_postfix
                loopback_postfix.check_available()
        except Unavailable as e:
            log("cannot run here: %s" % e)
            return 2
        if not fixtures.ident and any(modes):
            log("checks run without IDENT (ident=off): %s" % fixtures.why_no_ident)
        for peer in peers:
            for checks in modes:
                label = "%s inject=%s checks=%s" % (peer, args.inject, "on" if checks else "off")
                run_dir = os.path.join(base, "%s-%s" % (peer, "on" if checks else "off"))
                os.makedirs(run_dir)
                if peer == "estafette":
                    pair = EstafettePair(args, run_dir, fixtures.dns.port, fixtures.ident,
                                         checks, args.inject == "queue")
                else:
                    import loopback_postfix
                    pair = loopback_postfix.PostfixPair(args, run_dir, fixtures, checks,
                                                        args.inject == "queue")
                # Postfix has no IDENT client: no counterpart to that check.
                ident = checks and fixtures.ident and peer == "estafette"
                m = Measurement(args, pair, label, fixtures.pids, "on" if checks else "off",
                                "on" if ident else "off")
                with bench_lock():
                    os.sync()  # the previous run's deletions, written back now, not during this
                    try:
                        result = m.run()
                    finally:
                        if hasattr(pair, "cleanup"):
                            pair.cleanup()
                summary = result["summary"]
                good = (summary["lost"] == 0 and summary["received_bad"] == 0 and
                        summary["injection_failures"] == 0 and summary["duplicates"] == 0)
                if not good:
                    ok = False
                    log("FAIL %s: lost=%d received_bad=%d injection_failures=%d (files in %s)"
                        % (label, summary["lost"], summary["received_bad"],
                           summary["injection_failures"], run_dir))
                result.pop("t0", None)
                runs.append(result)
                print("%s: %s" % (label, " ".join(
                    "%s=%s" % (k, summary[k]) for k in ("msgs_per_s", "lost", "p50_ms"))),
                    file=sys.stderr, flush=True)
                if good and not args.keep:
                    shutil.rmtree(run_dir, ignore_errors=True)
    except KeyboardInterrupt:
        log("interrupted: stopping what the run started")
        raise
    finally:
        fixtures.stop()
        if ok and not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            log("files kept in %s" % base)
    result = {"command": "loopback", "params": _params(args), "runs": runs,
              "ratios": _ratios(runs)}
    if not result["ratios"]:
        del result["ratios"]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    for line in _summary_lines(result, args.out):
        print(line)
    return 0 if ok else 1


def _interrupted(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def _params(args):
    """The options, flat (the settings' lists joined with "; ")."""
    names = ("messages", "hosts", "inject", "checks", "peer", "concurrency", "workers", "size",
             "stall", "s_setting", "r_setting")
    values = {k: getattr(args, k) for k in names}
    return {k: "; ".join(v) if isinstance(v, list) else v for k, v in values.items()}


def _ratios(runs):
    """checks_on_over_off per peer; estafette_over_postfix per checks setting."""
    rate = {(r["summary"]["peer"], r["summary"]["checks"]): r["summary"]["msgs_per_s"]
            for r in runs}
    ratios = {}
    for peer in ("estafette", "postfix"):
        on, off = rate.get((peer, "on")), rate.get((peer, "off"))
        if on and off:
            ratios["checks_on_over_off %s" % peer] = round(on / off, 3)
    for checks in ("off", "on"):
        e, p = rate.get(("estafette", checks)), rate.get(("postfix", checks))
        if e and p:
            ratios["estafette_over_postfix checks=%s" % checks] = round(e / p, 3)
    return ratios


def _summary_lines(result, out):
    """report.py's CSV and HTML next to result.json, and its summary lines."""
    import report
    csv_path, html_path = report.write(result, out)
    log("wrote %s, %s and %s" % (os.path.join(out, "result.json"), csv_path, html_path))
    return report.summary_lines(result)
