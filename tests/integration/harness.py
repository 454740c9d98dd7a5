"""harness.py: start real Estafette daemons and real peers on loopback for integration tests.

Every test gets a fresh temporary directory, free ports, its own config and its own processes,
and stops them all at the end (also on failure). BUILD_DIR names the build tree holding the
estafette* programs (set by `make check`). Exit codes follow automake: 0 pass, 1 fail, 77 skip.
"""
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import traceback

BUILD_DIR = os.path.abspath(os.environ.get("BUILD_DIR", os.getcwd()))
SRC_DIR = os.path.abspath(os.environ.get("SRC_DIR",
                                         os.path.join(os.path.dirname(__file__), "..", "..")))
SMTP_SINK = "/usr/sbin/smtp-sink"

# The fixtures shared with the benchmarks: bench/kit/orchestrate/{common,rig,postfix}.py.
sys.path.insert(0, os.path.join(SRC_DIR, "bench", "kit", "orchestrate"))
import postfix as _postfix  # noqa: E402
import rig as _rig  # noqa: E402
from common import Unavailable  # noqa: E402


def skip(why):
    print("SKIP:", why)
    sys.exit(77)


_ports_given = set()


def free_port():
    """A loopback port free now and not given out before by this process: servers made before
    any of them starts (three sinks, then their start()s) must not get the same one, and the
    kernel hands a just-closed ephemeral port out again (dsn_test's two sinks once did)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def unix_socket_open(path):
    """A server accepts on the unix socket at path."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)
            return True
    except OSError:
        return False


class ServerProcess:
    """A server process owned by the test, listening on 127.0.0.1:self.port."""
    port = None
    proc = None

    def spawn(self, args, what):
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), 10, "%s on %d" % (what, self.port))
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class ThreadedSink(socketserver.ThreadingTCPServer):
    """An SMTP server written in a test (`handler`, a SinkHandler, speaks SMTP) on host:port,
    serving from a thread of its own; connections and messages are counted under `lock`. A
    subclass sets its own attributes before calling __init__ (serving starts there)."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, host, port, handler):
        self.lock = threading.Lock()
        self.connections = 0
        self.messages = []
        super().__init__((host, port), handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self):
        self.shutdown()
        self.server_close()


class SinkHandler(socketserver.StreamRequestHandler):
    """The handler side of a ThreadedSink: replies, and numbers its connections from 1."""

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def count_connection(self):
        with self.server.lock:
            self.server.connections += 1
            return self.server.connections


class SmtpSink(ServerProcess):
    """Postfix's smtp-sink on a loopback port, dumping each message to a file."""

    def __init__(self, tmp, port=None, options=()):
        if not os.access(SMTP_SINK, os.X_OK):
            skip("smtp-sink (postfix) is not installed")
        self.port = port or free_port()
        self.dir = os.path.join(tmp, "sink-%d" % self.port)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o777)
        self.options = list(options)
        self.proc = None

    def start(self):
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        return self.spawn([SMTP_SINK] + user + self.options +
                          ["-d", self.dir + "/%H%M%S.", "127.0.0.1:%d" % self.port, "256"],
                          "smtp-sink")

    def messages(self):
        """The messages smtp-sink has finished: it creates a message's file when the
        transaction starts and writes it as the data comes, so a file it still holds open is
        left out (read empty or cut, it made scram_test fail under CI load). The directory is
        listed before smtp-sink's open files are: a file not open then is complete."""
        names = sorted(os.listdir(self.dir))
        writing = set()
        if self.proc and self.proc.poll() is None:
            fd_dir = "/proc/%d/fd" % self.proc.pid
            try:
                fds = os.listdir(fd_dir)
            except OSError:
                fds = []
            for fd in fds:
                try:
                    writing.add(os.readlink(os.path.join(fd_dir, fd)))
                except OSError:
                    pass
        out = []
        for name in names:
            path = os.path.join(self.dir, name)
            if os.path.realpath(path) in writing:
                continue
            with open(path, "rb") as f:
                out.append(f.read())
        return out


def program_copy(tmp, name):
    """A copy of the build's program `name` in tmp/bin (made once, mode 0755), for running it as
    another user: the build tree may lie where only root can enter (a clone in root's home, mode
    0700, or in a mktemp -d directory), while tmp is a scratch() directory that anyone can."""
    bin_dir = os.path.join(tmp, "bin")
    path = os.path.join(bin_dir, name)
    if not os.path.exists(path):
        os.makedirs(bin_dir, exist_ok=True)
        os.chmod(bin_dir, 0o755)
        shutil.copyfile(os.path.join(BUILD_DIR, name), path + ".new")
        os.chmod(path + ".new", 0o755)
        os.rename(path + ".new", path)
    return path


def status_kb(pid, field):
    """A /proc/PID/status figure in kB (VmRSS, VmHWM, ...)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for %d" % (field, pid))


def rss(pid):
    """Resident set size of PID in bytes."""
    return status_kb(pid, "VmRSS") * 1024


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def last_reply_line(f):
    """The last line of one (possibly multi-line) SMTP reply read from a socket's binary file,
    as bytes with its line end (b"" at EOF)."""
    line = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
    return line


def maildir_files(maildir):
    """The messages delivered to a Maildir (its new/), oldest first; [] while it has none.

    Names are SECONDS.M<microseconds>P<pid>_N.host with the microseconds not zero-padded, so
    plain name order puts 1.M478150 before 1.M81443; the key reads the two numbers."""
    new = os.path.join(maildir, "new")
    if not os.path.isdir(new):
        return []

    def delivery_order(name):
        m = re.match(r"(\d+)\.M(\d+)P", name)
        return (int(m.group(1)), int(m.group(2)), name) if m else (0, 0, name)

    out = []
    for name in sorted(os.listdir(new), key=delivery_order):
        with open(os.path.join(new, name), "rb") as f:
            out.append(f.read())
    return out


class Estafette:
    """One Estafette instance (estafetted -f and its daemons) with its own state directory."""

    def __init__(self, tmp, name="mta", **settings):
        self.tmp = tmp
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = settings.pop("port", None) or free_port()
        self.host = settings.pop("host", "127.0.0.1")  # another 127.0.0.x for a fixed port
        self.state = os.path.join(self.dir, "state")
        self.conf = os.path.join(self.dir, "estafette.conf")
        self.log = os.path.join(self.dir, "estafette.log")
        routes = settings.pop("routes", None)
        base = {
            "hostname": "mta.estafette.test",
            "state_dir": self.state,
            "listen": "%s:%d" % (self.host, self.port),
            "local_domains": "estafette.test",
            "local_mailboxes": "create",  # any local part has a mailbox (tests may say otherwise)
            "relay_clients": "127.0.0.0/8",
            "log_file": self.log,
            "log_level": "debug",
            "retry_base": "300ms",
            "retry_max": "2s",
            "host_backoff": "300ms",
            "connect_timeout": "5s",
            "rdns_check": "no",     # tests that want the checks turn them on
            "BOFHCHECKDNS": "no",
        }
        base.update(settings)
        if routes is not None:
            path = os.path.join(self.dir, "esmtproutes")
            with open(path, "w") as f:
                f.write("".join("%s: %s\n" % kv for kv in routes.items()))
            base["esmtproutes"] = path
        with open(self.conf, "w") as f:
            for k, v in base.items():
                f.write("%s = %s\n" % (k, v))
        self.proc = None

    def program(self, name):
        return os.path.join(BUILD_DIR, name)

    def program_for_others(self, name):
        """program(name) for running as another user: program_copy() into the test's directory."""
        return program_copy(self.tmp, name)

    def start(self):
        out = open(os.path.join(self.dir, "estafetted.out"), "ab")
        self.proc = subprocess.Popen([self.program("estafetted"), "-f", "-c", self.conf],
                                     stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(self.port, self.host) or self.proc.poll() is not None, 15,
                 "esmtpd on %d" % self.port)
        if self.proc.poll() is not None:
            raise AssertionError("estafetted exited: " + self.read_log())
        # estafetted binds the listeners itself, so an open port does not mean esmtpd runs yet:
        # wait until `estafette status` reports every daemon ready (queue open, listening).
        wait_for(lambda: self.status() == 0 or self.proc.poll() is not None, 15,
                 "every daemon ready (estafette status)")
        if self.proc.poll() is not None:
            raise AssertionError("estafetted exited: " + self.read_log())
        return self

    def status(self):
        """`estafette status`'s exit code: 0 when every daemon is up."""
        return subprocess.run([self.program("estafette"), "status", "-c", self.conf],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode

    def daemon_pids(self):
        """PIDs of estafetted's children (esmtpd, courierd) and their children (modules)."""
        pids = []
        todo = [self.proc.pid] if self.proc else []
        while todo:
            pid = todo.pop()
            try:
                with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                    kids = [int(p) for p in f.read().split()]
            except OSError:
                kids = []
            pids.extend(kids)
            todo.extend(kids)
        return pids

    def pids_of(self, program):
        """PIDs of this instance's running processes whose program is `program` (e.g.
        "estafette-esmtpd"); at least one, or AssertionError."""
        pids = []
        for pid in self.daemon_pids():
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    argv0 = f.read().split(b"\0")[0]
            except OSError:
                continue
            if os.path.basename(argv0) == program.encode():
                pids.append(pid)
        assert pids, "no %s among %r" % (program, self.daemon_pids())
        return pids

    def esmtpd_pids(self):
        return self.pids_of("estafette-esmtpd")

    def kill9(self):
        """kill -9 the supervisor and every daemon at once, as a crash would."""
        victims = ([self.proc.pid] if self.proc else []) + self.daemon_pids()
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait(10)
        for pid in victims:
            wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                     open("/proc/%d/stat" % pid).read().split()[2] == "Z", 10, "pid %d" % pid)
        self.proc = None

    def kill_supervisor(self, timeout=15):
        """SIGKILL to estafetted alone (a crash): every daemon and module must then stop by
        itself (the parent-death signal each gets from its supervisor) within timeout seconds.
        Returns the pids that were running; AssertionError names those still alive."""
        daemons = self.daemon_pids()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

        def alive():
            running = []
            for pid in daemons:
                with contextlib.suppress(OSError, IndexError):
                    with open("/proc/%d/stat" % pid) as f:
                        if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                            running.append(pid)
            return running

        with contextlib.suppress(AssertionError):
            wait_for(lambda: not alive(), timeout, "the daemons to stop")
        assert not alive(), "still running %ds after estafetted's SIGKILL: %s" % (
            timeout, ["%d %s" % (p, open("/proc/%d/comm" % p).read().strip()) for p in alive()])
        return daemons

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.proc = None

    def reload(self):
        """`estafette reload`: the config again, and new daemons with it; its CompletedProcess
        (exit 0 reloaded, 1 with the reason on stderr and the old config in force)."""
        return subprocess.run([self.program("estafette"), "reload", "-c", self.conf],
                              capture_output=True, text=True, timeout=180)

    def read_log(self):
        text = ""
        for name in (self.log, os.path.join(self.dir, "estafetted.out")):
            with contextlib.suppress(OSError):
                with open(name, errors="replace") as f:
                    text += f.read()
        return text

    def maildir(self, user):
        return os.path.join(self.state, "maildir", user)

    def maildir_messages(self, user):
        return maildir_files(self.maildir(user))

    def queue_files(self):
        return queued_ids(os.path.join(self.state, "queue"))

    def send(self, sender, rcpts, message, **kw):
        with smtplib.SMTP(self.host, self.port, timeout=30) as s:
            return s.sendmail(sender, rcpts, message, **kw)


def stop_process(proc, timeout=10):
    """SIGTERM to a Popen still running, SIGKILL if it is not gone after `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def kill_tree(proc):
    """SIGKILL to a Popen and all its descendants at once, as a crash would; waits for it."""
    pids, i = [proc.pid], 0
    while i < len(pids):
        try:
            with open("/proc/%d/task/%d/children" % (pids[i], pids[i])) as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        i += 1
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(10)


POSTGREY = "/usr/sbin/postgrey"


class Postgrey:
    """Debian's postgrey on 127.0.0.1:port, its database and log in tmp: a new triplet is
    greylisted for `delay` seconds; recipients (addresses or domains) in `whitelist` never are.
    skip()s when postgrey or its user is missing."""

    def __init__(self, tmp, port, delay, whitelist=()):
        if not os.access(POSTGREY, os.X_OK):
            skip("postgrey is not installed (scripts/install-deps)")
        try:
            pw = pwd.getpwnam("postgrey")
        except KeyError:
            skip("no postgrey user (the package makes it)")
        self.port = port
        db = os.path.join(tmp, "postgrey-db")
        os.makedirs(db)
        os.chown(db, pw.pw_uid, pw.pw_gid)
        clients = os.path.join(tmp, "postgrey-clients")
        recipients = os.path.join(tmp, "postgrey-recipients")
        with open(clients, "w"):
            pass
        with open(recipients, "w") as f:
            f.write("".join(w + "\n" for w in whitelist))
        self.out = open(os.path.join(tmp, "postgrey.log"), "ab")
        self.proc = subprocess.Popen(
            [POSTGREY, "--inet=127.0.0.1:%d" % port, "--dbdir=%s" % db, "--delay=%d" % delay,
             "--pidfile=%s" % os.path.join(db, "postgrey.pid"), "--user=postgrey",
             "--group=postgrey", "--whitelist-clients=%s" % clients,
             "--whitelist-recipients=%s" % recipients, "--hostname=policy.test"],
            stdout=self.out, stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(port) or self.proc.poll() is not None, 30, "postgrey")
        assert self.proc.poll() is None, "postgrey exited"

    def stop(self):
        stop_process(self.proc)


def mailq_messages(mta):
    """The queued messages as `estafette mailq --json` lists them."""
    r = subprocess.run([mta.program("estafette"), "mailq", "--json", "-c", mta.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)["messages"]


def release(mta, *ids):
    """`estafette release ID...`; its output."""
    r = subprocess.run([mta.program("estafette"), "release", *ids, "-c", mta.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def recipient_errors(mta):
    """{address: last error} of every queued recipient that has one (`estafette mailq --json`)."""
    r = subprocess.run([mta.program("estafette"), "mailq", "--json", "-c", mta.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    return {rc["address"]: rc["last_error"] for m in json.loads(r.stdout)["messages"]
            for rc in m["recipients"] if rc.get("last_error")}


def write_passwd(path, users):
    """An auth_backend = file: passwd file: user:SHA-512-crypt lines (`openssl passwd -6`)."""
    lines = []
    for user, password in users.items():
        r = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(),
                           capture_output=True, check=True)
        lines.append("%s:%s\n" % (user, r.stdout.decode().strip()))
    with open(path, "w") as f:
        f.write("# estafette test users\n" + "".join(lines))
    os.chmod(path, 0o644)  # esmtpd may run as another user in the test
    return path


def queued_ids(queue):
    """Ids of the messages still queued in a queue dir, read with a parser of our own (docs:
    lib/queue/queue_file.h, segment_backend.h): records in seg/*, minus the ones the state log
    says are finished; msg/* for the file backend. Also used by bench/queue-flat.sh."""
    msg = os.path.join(queue, "msg")
    if os.path.isdir(msg):
        return [n for n in os.listdir(msg) if not n.endswith((".done", ".held", ".warned"))]
    finished = set()
    try:
        with open(os.path.join(queue, "state"), "rb") as f:
            for line in f.read().split(b"\n"):
                if line.startswith(b"X "):
                    finished.add(line[2:].decode())
    except FileNotFoundError:
        pass
    ids = []
    seg = os.path.join(queue, "seg")
    for name in sorted(os.listdir(seg)) if os.path.isdir(seg) else []:
        with open(os.path.join(seg, name), "rb") as f:
            data = f.read()
        at = 0
        while True:
            b_line = data.find(b"\nB ", at)
            if not data.startswith(b"ESTAFETTE-QUEUE 1\n", at) or b_line < 0:
                break
            header = data[at:b_line].split(b"\n")
            body = b_line + 24
            size = int(data[b_line + 3:body - 1])
            end = body + size + len(b"\nEND  xxxxxxxx xxxxxxxx\n") + len(str(size))
            if end > len(data):
                break  # torn: never acknowledged
            ids += [h[2:].decode() for h in header if h.startswith(b"I ")]
            at = end
    return [i for i in ids if i not in finished]


@contextlib.contextmanager
def scratch():
    """A temporary directory and a list of things to stop, cleaned up however the test ends."""
    tmp = tempfile.mkdtemp(prefix="estafette-test-")
    os.chmod(tmp, 0o755)
    stoppers = []
    ok = False
    try:
        yield tmp, stoppers
        ok = True
    finally:
        for thing in reversed(stoppers):
            with contextlib.suppress(Exception):
                thing.stop()
        if ok and not os.environ.get("KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("test files kept in", tmp)


def run(test):
    """Runs test(tmp, stoppers); prints the outcome; exits with automake's codes."""
    try:
        with scratch() as (tmp, stoppers):
            try:
                test(tmp, stoppers)
            except AssertionError:
                for thing in stoppers:
                    if isinstance(thing, (Estafette, Postfix)):
                        print("---- log of", thing.dir, "(last 6000 bytes)")
                        print(thing.read_log()[-6000:])
                raise
    except AssertionError as e:
        # Where it failed, for an assert without a message too.
        frames = traceback.extract_tb(e.__traceback__)
        where = ([f for f in frames if os.path.basename(f.filename) != "harness.py"] or frames)[-1]
        print("FAIL: %s (%s:%d)" % (e, os.path.basename(where.filename), where.lineno))
        sys.exit(1)
    print("PASS")
    sys.exit(0)


# The DNS, IDENT and Postfix fixtures (below: dnsmasq_command, Dnsmasq, RigDns, Identd, Postfix)
# are the ones the benchmarks use (bench/kit/orchestrate: rig.py, postfix.py); the names here
# keep the tests' API, turn a fixture that cannot run here (common.Unavailable: a package
# missing, not root) into a skip and a fixture that fails into a test failure.


@contextlib.contextmanager
def _fixture():
    """Unavailable -> skip; a fixture's RuntimeError or TimeoutError -> AssertionError (a
    failure with the harness's report)."""
    try:
        yield
    except Unavailable as e:
        skip(str(e))
    except (RuntimeError, TimeoutError) as e:
        raise AssertionError(str(e)) from e


def dnsmasq_installed():
    return _rig.which("dnsmasq") is not None


def dnsmasq_command(port, log_file, records):
    """dnsmasq in the foreground on 127.0.0.1:port, authoritative for .test and answering only
    what `records` (--mx-host=..., --host-record=..., other options) give; skips the test when
    dnsmasq is not installed."""
    with _fixture():
        return _rig.dnsmasq_command(port, log_file, records)


class Dnsmasq(ServerProcess):
    """dnsmasq_command() as a process owned by the test; start() skips the test when dnsmasq is
    not installed."""

    def __init__(self, tmp, port, records):
        self.port, self.records = port, list(records)
        self.log = os.path.join(tmp, "dnsmasq-%d.log" % port)

    def start(self):
        return self.spawn(dnsmasq_command(self.port, self.log, self.records), "dnsmasq")


ProcessGroup = _rig.Processes


class RigDns(_rig.Dns):
    """The project's DNS fixture (bench/kit/orchestrate/rig.py, whose docstring lists the
    records) for the connection checks: dnsmasq on 127.0.0.1:port (a free one by default)
    answering the .test zone, handing bl1.test/bl2.test to rbldnsd on port+1. Files go to
    tmp/dns-PORT; start() skips the test when dnsmasq or rbldnsd is missing."""

    def __init__(self, tmp, port=None):
        port = port or free_port()
        super().__init__(os.path.join(tmp, "dns-%d" % port), port)

    def start(self):
        with _fixture():
            return super().start()


UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
LDNS_KEYGEN = shutil.which("ldns-keygen") or "/usr/bin/ldns-keygen"
LDNS_SIGNZONE = shutil.which("ldns-signzone") or "/usr/bin/ldns-signzone"


class DnssecZone:
    """A test zone for ValidatingDns. records: zone-file lines relative to the zone
    ("@ MX 10 mx", "mx A 127.0.0.1", "_25._tcp.mx TLSA 3 1 1 <hex>"); an SOA and NS come with
    it. kind: "signed" (ldns-signzone, with a trust anchor: answers come out secure, AD set),
    "unsigned" (no signatures, no anchor: insecure) or "bogus" (signed and anchored, then the
    RDATA of every `broken` record type changed after signing: those answers fail validation,
    SERVFAIL; the rest of the zone stays secure)."""

    def __init__(self, name, records, kind="signed", broken=("TLSA",)):
        assert kind in ("signed", "unsigned", "bogus")
        self.name, self.records, self.kind, self.broken = name.rstrip("."), list(records), kind, broken
        self.ds = None  # the trust anchor (a DS record) once built

    def build(self, directory):
        """Writes (and signs) the zone file in directory; returns its path."""
        path = os.path.join(directory, self.name + ".zone")
        with open(path, "w") as f:
            f.write("$ORIGIN %s.\n$TTL 300\n" % self.name)
            f.write("@ SOA ns.%s. admin.%s. 1 3600 600 86400 300\n" % (self.name, self.name))
            f.write("@ NS ns.%s.\nns A 127.0.0.1\n" % self.name)
            f.write("".join(line + "\n" for line in self.records))
        if self.kind == "unsigned":
            return path
        key = subprocess.run([LDNS_KEYGEN, "-a", "ECDSAP256SHA256", "-k", self.name],
                             cwd=directory, check=True, capture_output=True,
                             text=True).stdout.strip()
        subprocess.run([LDNS_SIGNZONE, "-f", path + ".signed", path, key], cwd=directory,
                       check=True, capture_output=True)
        with open(os.path.join(directory, key + ".ds")) as f:
            self.ds = " ".join(f.read().split())
        if self.kind == "bogus":
            self._break(path + ".signed")
        return path + ".signed"

    def _break(self, path):
        """Changes the last RDATA character of each record of a `broken` type (not the RRSIGs)."""
        out, changed = [], 0
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4 and fields[3] in self.broken:
                    last = fields[-1]
                    fields[-1] = last[:-1] + ("0" if last[-1] != "0" else "1")
                    line = "\t".join(fields) + "\n"
                    changed += 1
                out.append(line)
        assert changed, "bogus zone %s has no %s records to break" % (self.name, self.broken)
        with open(path, "w") as f:
            f.writelines(out)


class ValidatingDns(ProcessGroup):
    """A DNSSEC-validating resolver for the test's zones, as an admin would put in dns_servers:
    Debian's unbound on 127.0.0.1:port (validator + iterator, a trust anchor per signed zone,
    RD answers with AD for secure data, SERVFAIL for bogus), which asks a second unbound on
    port+... (auth_port, authoritative for the DnssecZones through auth-zone) by stub-zone.
    Nothing leaves 127.0.0.0/8: both only answer the test zones (local-zone "." refuse, each
    test zone transparent), send only from 127.0.0.1, know no root hints but a loopback one and
    no root trust anchor. start() skips the test when unbound or ldns-signzone is missing."""

    def __init__(self, tmp, zones, port=None):
        self.port = port or free_port()
        self.auth_port = free_port()
        self.zones = list(zones)
        self.dir = os.path.join(tmp, "unbound-%d" % self.port)
        os.makedirs(self.dir, exist_ok=True)
        self.procs = []

    def _server(self, port, log, extra):
        lines = ["server:",
                 "  interface: 127.0.0.1@%d" % port, "  port: %d" % port,
                 "  do-daemonize: no", "  username: \"\"", "  chroot: \"\"",
                 "  directory: \"%s\"" % self.dir, "  pidfile: \"\"", "  use-syslog: no",
                 "  logfile: \"%s\"" % os.path.join(self.dir, log), "  verbosity: 1",
                 "  do-ip6: no", "  num-threads: 1", "  so-reuseport: no",
                 "  access-control: 127.0.0.0/8 allow", "  outgoing-interface: 127.0.0.1",
                 "  root-hints: \"%s\"" % os.path.join(self.dir, "root.hints"),
                 "  trust-anchor-signaling: no", "  local-zone: \".\" refuse"]
        lines += ["  local-zone: \"%s.\" transparent" % z.name for z in self.zones]
        return "\n".join(lines + extra) + "\n"

    def start(self):
        for exe in (UNBOUND, LDNS_KEYGEN, LDNS_SIGNZONE):
            if not os.access(exe, os.X_OK):
                skip(exe + " is not installed (scripts/install-deps: unbound ldnsutils)")
        with open(os.path.join(self.dir, "root.hints"), "w") as f:
            f.write(". 3600 IN NS root.invalid.\nroot.invalid. 3600 IN A 127.0.0.1\n")
        auth = []
        for z in self.zones:
            path = z.build(self.dir)
            auth += ["auth-zone:", "  name: \"%s.\"" % z.name, "  zonefile: \"%s\"" % path,
                     "  for-downstream: yes", "  for-upstream: no"]
        resolver = ["  do-not-query-localhost: no", "  module-config: \"validator iterator\""]
        resolver += ["  trust-anchor: \"%s\"" % z.ds for z in self.zones if z.ds]
        for z in self.zones:
            resolver += ["stub-zone:", "  name: \"%s.\"" % z.name,
                         "  stub-addr: 127.0.0.1@%d" % self.auth_port]
        for name, port, log, extra in (("auth.conf", self.auth_port, "auth.log", auth),
                                       ("resolver.conf", self.port, "resolver.log", resolver)):
            conf = os.path.join(self.dir, name)
            with open(conf, "w") as f:
                f.write(self._server(port, log, extra if name == "resolver.conf" else [])
                        + ("\n".join(extra) + "\n" if name == "auth.conf" else ""))
            self.procs.append(subprocess.Popen([UNBOUND, "-d", "-c", conf],
                                               stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL))
            wait_for(lambda: port_open(port) or self.procs[-1].poll() is not None, 10,
                     "unbound on %d" % port)
            if self.procs[-1].poll() is not None:
                raise AssertionError("unbound %s did not start: %s" % (name, self.log(log)))
        return self

    def log(self, name="resolver.log"):
        with contextlib.suppress(OSError), open(os.path.join(self.dir, name)) as f:
            return f.read()
        return ""



class Identd(_rig.Identd):
    """oidentd (RFC 1413) on 127.0.0.1:113 (rig.Identd); an identd already answering there
    (another test's) is used as it is. start() skips the test when it cannot start one (not
    root, oidentd missing)."""

    def __init__(self, tmp):
        super().__init__()
        self.dir = os.path.join(tmp, "identd")

    def start(self):
        with _fixture():
            return super().start()


class Postfix(_postfix.Postfix):
    """A throwaway Postfix (bench/kit/orchestrate/postfix.py) under tmp/NAME: smtpd on a free
    loopback port (or `port` on `host`), accepting from 127.0.0.0/8 and relaying everything to
    relayhost = [127.0.0.1]:relay_port (the Estafette under test); `main_cf` adds or overrides
    main.cf parameters. Skips the test when Postfix is not installed or we are not root."""

    def __init__(self, tmp, relay_port, name="postfix", port=None, host="127.0.0.1", **main_cf):
        port = port or free_port()
        params = {"myhostname": "postfix.rig.test", "syslog_name": "postfix-test-%d" % port}
        params.update(main_cf)
        with _fixture():
            super().__init__(os.path.join(tmp, name), port,
                             relayhost="[127.0.0.1]:%d" % relay_port, host=host, **params)

    def start(self):
        with _fixture():
            return super().start()

    def send(self, sender, rcpts, message):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            return s.sendmail(sender, rcpts, message)


def smtp_from(source_ip, port, timeout=30):
    """An smtplib client whose socket is bound to source_ip (127.0.0.0/8 is all local)."""
    return smtplib.SMTP("127.0.0.1", port, timeout=timeout, source_address=(source_ip, 0))


def start_with_program_alias(tmp, stoppers, alias_text):
    """Starts an Estafette whose aliases file is alias_text, with program delivery on; its
    daemons run as nobody when the test runs as root (programs then run as program_user)."""
    aliases = os.path.join(tmp, "aliases")
    with open(aliases, "w") as f:
        f.write(alias_text)
    settings = dict(aliases=aliases, allow_program_delivery="yes", program_timeout="5s")
    if os.geteuid() == 0:
        settings["user"] = "nobody"
    mta = Estafette(tmp, **settings)
    mta.start()
    stoppers.append(mta)
    return mta


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), as lib/queue/checksum.h: crc32c(b"123456789") == 0xE3069283."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def queue_record(queue_id, sender, recipients, body, arrival=None):
    """One complete queue record (lib/queue/queue_file.h), written by this test rather than by
    Estafette: recipients are (address, [(tag, value), ...]) with the records after its R line
    (P, N, O); body is in wire form (CRLF, dot-stuffed)."""
    header = b"ESTAFETTE-QUEUE 1\n"
    header += b"I %s\nT %d\nF %s\n" % (queue_id.encode(), arrival or int(time.time()),
                                       sender.encode())
    for address, records in recipients:
        header += b"R %s\n" % address.encode()
        for tag, value in records:
            header += b"%s %s\n" % (tag.encode(), value.encode())
    header += b"B %020d\n" % len(body)
    return header + body + b"\nEND %d %08x %08x\n" % (len(body), crc32c(header), crc32c(body))
