"""`estafette-bench loopback --peer postfix`: the same S -> R test with two throwaway Postfix
instances (postfix.py), the closest match to the Estafette pair that Postfix allows:

  S  smtpd on a free port (no client lookups), relaying .example.com to R by a transport map
     (`inline:{.example.com=smtp:[127.0.0.1]:R}`), 40 deliveries at once to R (MAXHOST 40).
     --inject sendmail uses Postfix's own sendmail (-C S's config). --inject queue holds every
     message at S's cleanup (header_checks HOLD) and releases them with `postsuper -H ALL` and
     `postqueue -f`.
  R  virtual(8) delivery to Maildirs <R>/maildir/rcpt-N/ (the Estafette layout). With checks
     on: reject_unknown_client_hostname (forward-confirmed rDNS) and reject_rbl_client
     bl1.test and bl2.test. Postfix has no IDENT client; that check has no counterpart. Postfix
     resolves through the C library (port 53 of the nameserver in /etc/resolv.conf, /etc/hosts
     first), so R's master runs in a private mount namespace (`unshare -m`) where
     /etc/resolv.conf and /etc/hosts are bind mounts of files of the run directory:
     `nameserver 127.0.0.X` with a second DNS fixture (dnsmasq + rbldnsd, the same records) on
     127.0.0.X:53, and no hosts entries. The host's /etc is never changed. With checks off
     R does no client lookups (smtpd_peername_lookup = no), as Estafette's rdns_check = no.
"""
import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import time

import rig
from common import Unavailable, free_port, which
from loopback import R_HOST, S_HOST, SENDER, descendants
from postfix import Postfix

MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                      "Sep", "Oct", "Nov", "Dec"), 1)}
# maillog_file lines: "Dec  7 01:26:34.123456 host postfix-N/smtpd[1]: ..." (sub-second part
# when Postfix writes one).
MAILLOG_TIME = re.compile(r"^(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d)(\.\d+)? ")


def check_available():
    """Raises Unavailable unless two Postfix instances and R's namespace can run here."""
    if os.geteuid() != 0:
        raise Unavailable("--peer postfix needs root (Postfix's daemons, the mount namespace)")
    if not os.access("/usr/sbin/postfix", os.X_OK):
        raise Unavailable("postfix is not installed (apt-get install postfix)")
    if not which("unshare") or not which("mount"):
        raise Unavailable("--peer postfix needs unshare and mount (util-linux)")


def maillog_time(line):
    m = MAILLOG_TIME.match(line)
    if not m:
        return None
    now = time.localtime()
    year = now.tm_year - (1 if MONTHS.get(m.group(1), 1) > now.tm_mon else 0)
    t = time.mktime((year, MONTHS.get(m.group(1), 1), int(m.group(2)), int(m.group(3)),
                     int(m.group(4)), int(m.group(5)), 0, 0, -1))
    # Whole seconds: the middle of the second, so that latencies are not biased by 0.5 s.
    return t + float(m.group(6) or 0.5)


def free_loopback_address():
    """A 127.0.0.X (X in 60..249, tried in random order, so that two runs at once rarely pick the
    same) whose ports 53 and 54 (rig.Dns: dnsmasq and rbldnsd) nothing uses, UDP and TCP."""
    for x in random.sample(range(60, 250), 190):
        address = "127.0.0.%d" % x
        ok = True
        for port in (53, 54):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    try:
                        s.bind((address, port))
                    except OSError:
                        ok = False
        if ok:
            return address
    raise RuntimeError("no 127.0.0.X has port 53 free")


class Instance(Postfix):
    """A Postfix of the pair, with what the measurement reads from it."""

    name = "postfix"

    def __init__(self, args, directory, host_name, port, **main_cf):
        super().__init__(directory, port, myhostname=host_name, **main_cf)
        self.args = args

    def start(self):
        super().start()
        return self

    def pids(self):
        pid = self.master_pid()
        return descendants(pid) if pid and os.path.exists("/proc/%d" % pid) else []

    def accepted_pattern(self):
        return b": message-id="

    def delivered_pattern(self):
        return b"status=sent (delivered to maildir)"

    def accepted_times(self):
        """{queue id: time S's cleanup took it}."""
        out = {}
        for line in self.read_log().splitlines():
            m = re.search(r"/cleanup\[\d+\]: ([0-9A-Za-z]+): message-id=", line)
            if m:
                out[m.group(1)] = maillog_time(line)
        return out

    def connections(self):
        return len(re.findall(r"/smtpd\[\d+\]: connect from ", self.read_log()))

    def maildir_root(self):
        return os.path.join(self.dir, "maildir")


class PostfixPair:
    def __init__(self, args, base, fixtures, checks, hold):
        self.args, self.base = args, base
        self.dns = None
        r_port, s_port = free_port(), free_port()
        r_cf = {
            "smtpd_peername_lookup": "yes" if checks else "no",
            "virtual_mailbox_domains": " ".join("h%d.foo.example.com" % h
                                                for h in range(args.hosts)),
            "virtual_mailbox_base": os.path.join(base, "R", "maildir"),
            "virtual_mailbox_maps": "texthash:" + os.path.join(base, "R", "vmailbox"),
            "virtual_uid_maps": "static:65534", "virtual_gid_maps": "static:65534",
            "virtual_destination_concurrency_limit": "40",
            "message_size_limit": "67108864", "virtual_mailbox_limit": "0",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "smtpd_recipient_restrictions": "permit",
        }
        if checks:
            r_cf["smtpd_client_restrictions"] = (
                "reject_unknown_client_hostname, reject_rbl_client bl1.test=127.0.0.2, "
                "reject_rbl_client bl2.test")
        self.r = Instance(args, os.path.join(base, "R"), R_HOST, r_port, **r_cf)
        # virtual(8) takes no regexp substitutions: one line per recipient of the run.
        with open(os.path.join(base, "R", "vmailbox"), "w") as f:
            f.writelines("rcpt-%d@h%d.foo.example.com rcpt-%d/\n" % (n, n % args.hosts, n)
                         for n in range(1, args.messages + 1))
        os.makedirs(r_cf["virtual_mailbox_base"])
        shutil.chown(r_cf["virtual_mailbox_base"], 65534, 65534)
        s_cf = {
            "smtpd_peername_lookup": "no",
            "relay_domains": ".example.com",
            "transport_maps": "inline:{.example.com=smtp:[127.0.0.1]:%d}" % r_port,
            "smtp_destination_concurrency_limit": "40",
            "default_destination_concurrency_limit": "40",
            "message_size_limit": "67108864",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
        }
        if hold:
            checks_file = os.path.join(base, "S", "hold_checks")
            os.makedirs(os.path.dirname(checks_file), exist_ok=True)
            with open(checks_file, "w") as f:
                f.write("/^Subject:/ HOLD loopback --inject queue\n")
            s_cf["header_checks"] = "regexp:" + checks_file
        self.s = Instance(args, os.path.join(base, "S"), S_HOST, s_port, **s_cf)
        if checks:
            self._private_resolver(os.path.join(base, "R"))

    def _private_resolver(self, directory):
        """R's resolv.conf and hosts, its DNS fixture on 127.0.0.X:53, and the namespace."""
        address = free_loopback_address()
        self.dns = rig.Dns(os.path.join(directory, "dns53"), 53, address=address).start()
        resolv = os.path.join(directory, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("nameserver %s\noptions timeout:2 attempts:2\n" % address)
        hosts = os.path.join(directory, "hosts")
        with open(hosts, "w") as f:
            f.write("")
        self.r.command_prefix = (
            "unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/resolv.conf && mount --bind "$1" /etc/hosts && '
            'shift && exec "$@"', resolv, hosts)

    def release(self):
        """--inject queue: S's held messages to the deferred queue, then delivered now."""
        conf = self.s.conf_dir
        subprocess.run(["postsuper", "-c", conf, "-H", "ALL"], check=True, capture_output=True,
                       timeout=60)
        subprocess.run(["postqueue", "-c", conf, "-f"], check=True, timeout=60)

    def sendmail_command(self, rcpt):
        return ["/usr/sbin/sendmail", "-C", self.s.conf_dir, "-f", SENDER, rcpt]

    def s_queue_id(self, received):
        # "by S (Postfix) with ESMTP id X", or "(Postfix, from userid 0) id X" (sendmail).
        m = re.search(r" by %s \(Postfix[^)]*\)(?: with \S+)? id ([0-9A-Za-z]+)"
                      % re.escape(S_HOST), received)
        return m.group(1) if m else None

    def cleanup(self):
        for inst in (self.s, self.r):
            with contextlib.suppress(Exception):
                inst.stop()
        if self.dns:
            self.dns.stop()
