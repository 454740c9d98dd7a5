"""The DNS and IDENT fixtures a receiving MTA checks its clients against, as real servers on
loopback: dnsmasq (authoritative for .test, answering only the records below) handing the two
DNSBL zones to rbldnsd, and oidentd (RFC 1413) on 127.0.0.1:113. Written by the project; the
records are the ones the integration tests and the loopback benchmark rely on:

  PTR 127.0.0.1 -> client.test, A client.test 127.0.0.1 (forward-confirmed)
  PTR 127.0.0.2 -> spammer.test, A spammer.test 127.0.0.9 (not confirmed)
  MX example.test, sink.test -> mx.sink.test (A 127.0.0.1); MX nullmx.test -> "." (RFC 7505
  null MX); TXT example.test "v=spf1 ip4:127.0.0.0/8 -all"
  bl1.test: 127.0.0.2 listed (A 127.0.0.2, TXT "Listed in bl1.test, see http://bl1.test/127.0.0.2")
  bl2.test: 127.0.0.2 listed (A 127.0.0.2, TXT "Listed in bl2.test");
            127.0.0.3 listed as 127.0.0.4 (TXT "Policy listing in bl2.test")
  nothing else is listed (127.0.0.1 is clean in both).
"""
import os
import subprocess

from common import Unavailable, port_open, wait_for, which

DNS_RECORDS = [
    "--host-record=client.test,127.0.0.1", "--host-record=spammer.test,127.0.0.9",
    "--ptr-record=1.0.0.127.in-addr.arpa,client.test",
    "--ptr-record=2.0.0.127.in-addr.arpa,spammer.test",
    "--host-record=mx.sink.test,127.0.0.1",
    "--mx-host=example.test,mx.sink.test,10", "--mx-host=sink.test,mx.sink.test,10",
    "--mx-host=nullmx.test,.,0", "--txt-record=example.test,v=spf1 ip4:127.0.0.0/8 -all",
]
BL1_ZONE = ":127.0.0.2:Listed in bl1.test, see http://bl1.test/$\n127.0.0.2\n"
BL2_ZONE = (":127.0.0.2:Listed in bl2.test\n127.0.0.2\n"
            ":127.0.0.4:Policy listing in bl2.test\n127.0.0.3\n")


def dnsmasq_command(port, log_file, records, address="127.0.0.1"):
    """dnsmasq in the foreground on address:port, authoritative for .test and answering only
    what `records` (--mx-host=..., --host-record=..., other options) give."""
    exe = which("dnsmasq")
    if not exe:
        raise Unavailable("dnsmasq is not installed (apt-get install dnsmasq-base)")
    args = [exe, "--keep-in-foreground", "--port=%d" % port, "--listen-address=" + address,
            "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
            "--pid-file=", "--log-facility=%s" % log_file, "--local=/test/"] + list(records)
    if os.geteuid() == 0:
        args.append("--user=root")
    return args


class Processes:
    """Server processes a fixture started, stopped together."""

    def __init__(self):
        self.procs = []

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []


class Dns(Processes):
    """dnsmasq on address:port with DNS_RECORDS (plus `extra` dnsmasq options) and rbldnsd on
    address:port+1 for bl1.test and bl2.test. Files go to `directory`."""

    def __init__(self, directory, port, extra=(), address="127.0.0.1"):
        super().__init__()
        self.dir, self.port, self.address, self.extra = directory, port, address, list(extra)
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, 0o755)  # rbldnsd started as root reads it as its own user

    def start(self):
        rbldnsd = which("rbldnsd")
        if not rbldnsd:
            raise Unavailable("rbldnsd is not installed (apt-get install rbldnsd)")
        with open(os.path.join(self.dir, "bl1.zone"), "w") as f:
            f.write(BL1_ZONE)
        with open(os.path.join(self.dir, "bl2.zone"), "w") as f:
            f.write(BL2_ZONE)
        bl_port = self.port + 1
        args = dnsmasq_command(self.port, os.path.join(self.dir, "dnsmasq.log"), [
            "--server=/bl1.test/%s#%d" % (self.address, bl_port),
            "--server=/bl2.test/%s#%d" % (self.address, bl_port)] + DNS_RECORDS + self.extra,
            self.address)
        self.procs.append(subprocess.Popen(
            [rbldnsd, "-n", "-b", "%s/%d" % (self.address, bl_port), "-w", self.dir,
             "bl1.test:ip4set:bl1.zone", "bl2.test:ip4set:bl2.zone"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))
        wait_for(self._answers, 10,
                 "dnsmasq on %s:%d" % (self.address, self.port))
        return self

    def _answers(self):
        """dnsmasq is up when its TCP side accepts (it serves TCP and UDP on the port)."""
        for p in self.procs:
            if p.poll() is not None:
                self.stop()
                raise RuntimeError("a DNS fixture exited at once (is port %d or %d taken?)"
                                   % (self.port, self.port + 1))
        return port_open(self.port, self.address)


class Identd(Processes):
    """oidentd (RFC 1413) on 127.0.0.1:113, answering for every local user; needs root. An
    identd already answering there is used as it is (and left running)."""

    def start(self):
        if port_open(113):
            return self
        if os.geteuid() != 0:
            raise Unavailable("IDENT needs root (port 113)")
        exe = which("oidentd")
        if not exe:
            raise Unavailable("oidentd is not installed (apt-get install oidentd)")
        proc = subprocess.Popen([exe, "-i", "-S", "-a", "127.0.0.1", "-p", "113",
                                 "-u", "root", "-g", "root"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_for(lambda: port_open(113) or proc.poll() is not None, 10, "oidentd")
        if proc.poll() is not None and not port_open(113):
            raise RuntimeError("oidentd did not start")
        return self
