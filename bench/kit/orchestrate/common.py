"""What every orchestration command uses: ports, waiting, process CPU, the progress line."""
import contextlib
import os
import socket
import sys
import time


class Unavailable(Exception):
    """A fixture cannot run here (a package is missing, root is needed): the run cannot be
    made, and the message says what to install or how to run it. Tests turn it into a skip."""


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    with contextlib.suppress(OSError):
        with socket.create_connection((host, port), timeout=1):
            return True
    return False


def wait_for(predicate, timeout, what):
    """Polls predicate until it is true; raises TimeoutError naming `what` after timeout s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.05)


def which(name, *fallbacks):
    """The path of an installed program (PATH, then the sbin directories), or None."""
    import shutil
    for candidate in (shutil.which(name), *fallbacks, "/usr/sbin/" + name, "/sbin/" + name):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid, children=True):
    """utime + stime of a process (and, with children, of its waited-for children), in seconds;
    0 once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # fields[0] is the state (field 3); utime, stime, cutime, cstime are fields 14-17.
    return sum(int(x) for x in fields[11:15 if children else 13]) / CLOCK_TICKS


def processes_named(prefixes):
    """{pid: comm} of the running processes whose command name starts with one of prefixes."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open("/proc/%s/comm" % entry) as f:
                comm = f.read().strip()
            if comm.startswith(tuple(prefixes)):
                found[int(entry)] = comm
    return found


class CpuSampler:
    """CPU use of groups of processes over a run: sample() every interval records, per group,
    the percent of one CPU used since the previous sample. groups: {name: callable returning
    the group's pids now}. Processes that exit between samples lose their last interval (the
    kernel keeps no per-pid total after exit), so short-lived workers are under-counted.
    own_only: count each process's own time only, for groups that are whole process trees
    (Postfix's master and the daemons it forks and reaps), where a reaped child's time would
    count twice, in its own line and again in its parent's cutime."""

    def __init__(self, groups, own_only=False):
        self.groups = groups
        self.own_only = own_only
        self.samples = []  # [t, {group: percent}]
        self._last = None
        self._start = time.monotonic()

    def _totals(self):
        return {name: {pid: process_cpu_seconds(pid, not self.own_only) for pid in pids()}
                for name, pids in self.groups.items()}

    def sample(self):
        now = time.monotonic()
        totals = self._totals()
        if self._last is not None:
            then, before = self._last
            dt = max(now - then, 1e-6)
            row = {}
            for name, per_pid in totals.items():
                used = sum(max(0.0, cpu - before.get(name, {}).get(pid, cpu))
                           for pid, cpu in per_pid.items())
                row[name] = round(100.0 * used / dt, 1)
            self.samples.append([round(now - self._start, 3), row])
        self._last = (now, totals)


class Progress:
    """One line on stderr, rewritten in place ("sent N delivered N R msgs/s"); only on a
    terminal unless forced, so logs and CI output stay clean."""

    def __init__(self, label, total, enabled=None):
        self.label, self.total = label, total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.monotonic()
        self.shown = False

    def update(self, sent, delivered):
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.start, 1e-6)
        sys.stderr.write("\r%s: sent %d/%d delivered %d  %.0f msgs/s   " % (
            self.label, sent, self.total, delivered, delivered / elapsed))
        sys.stderr.flush()
        self.shown = True

    def done(self):
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.shown = False
