"""A throwaway Postfix: its own config_directory (main.cf, master.cf), queue_directory,
data_directory and maillog under one directory, smtpd on a loopback port. The system's
/etc/postfix is never read for more than the daemon paths and never changed. Needs root
(Postfix's daemons change to the postfix user) and the postfix package. Used by
`estafette-bench relay --mta postfix`, `estafette-bench loopback --peer postfix` and the
integration tests (tests/integration/harness.py)."""
import contextlib
import os
import shutil
import signal
import subprocess

from common import Unavailable, port_open, wait_for

POSTFIX = "/usr/sbin/postfix"

# The daemons a relay-only Postfix needs, none chrooted (the throwaway queue has no chroot
# tree). {listen} is the smtpd line's address; {smtpd_options} its -o lines.
MASTER_CF = """\
{listen} inet n - n - - smtpd{smtpd_options}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

# The seed relay test's Postfix (a relay with no header/body checks, no DNS, outgoing
# concurrency 250, 300 processes, 500 connections per client, no bounces sent); its durable
# queue (fsync before 250) is left as it is.
RELAY_PROFILE = {
    "smtp_host_lookup": "native",
    "default_destination_concurrency_limit": "250",
    "smtp_destination_concurrency_limit": "250",
    "relay_destination_concurrency_limit": "250",
    "default_process_limit": "300",
    "smtpd_client_connection_count_limit": "500",
    "smtpd_client_connection_rate_limit": "0",
    "smtpd_recipient_restrictions": "permit_mynetworks, reject",
    "smtpd_helo_required": "no",
}


class Postfix:
    """`postfix -c DIR start`/`stop` on a config written here. relayhost: "[127.0.0.1]:PORT"
    or "" (deliver by the transport map / locally); main_cf adds or overrides main.cf
    parameters; smtpd_options: master.cf -o options of the listening smtpd."""

    QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")
    # Run before `postfix ...` (its master inherits it): e.g. `unshare -m sh -c ...` for a
    # private resolv.conf (loopback_postfix.py). Empty: postfix itself.
    command_prefix = ()

    def __init__(self, directory, port, relayhost="", host="127.0.0.1", smtpd_options=(),
                 **main_cf):
        if not os.access(POSTFIX, os.X_OK):
            raise Unavailable("postfix is not installed (apt-get install postfix)")
        if os.geteuid() != 0:
            raise Unavailable("a throwaway Postfix needs root")
        self.port, self.host = port, host
        self.dir = directory
        self.conf_dir = os.path.join(directory, "etc")
        self.spool = os.path.join(directory, "spool")
        self.data = os.path.join(directory, "data")
        self.log = os.path.join(directory, "maillog")
        for d in (self.conf_dir, self.spool, self.data):
            os.makedirs(d, exist_ok=True)
        os.chmod(directory, 0o755)
        shutil.chown(self.data, "postfix")  # its lock file and caches
        params = {
            "compatibility_level": "3.6",
            "queue_directory": self.spool,
            "data_directory": self.data,
            "syslog_name": "postfix-%d" % port,
            "maillog_file": self.log,
            "maillog_file_prefixes": directory,
            "myhostname": "postfix-%d.rig.test" % port,
            "mydomain": "rig.test",
            "myorigin": "rig.test",
            "mydestination": "",
            # 127.0.0.1 even when smtpd listens on another 127.x address (master.cf names it):
            # Postfix refuses an inet_interfaces address that no interface has.
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "relayhost": relayhost,
            "smtp_dns_support_level": "disabled",
            "smtp_tls_loglevel": "1",
            "biff": "no",
            "notify_classes": "",
            "bounce_queue_lifetime": "1h",
            "maximal_queue_lifetime": "1h",
        }
        params.update(main_cf)
        with open(os.path.join(self.conf_dir, "main.cf"), "w") as f:
            f.writelines("%s = %s\n" % kv for kv in params.items())
        options = "".join("\n  -o %s" % o for o in smtpd_options)
        with open(os.path.join(self.conf_dir, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen="%s:%d" % (host, port), smtpd_options=options))
        self.running = False

    def postfix(self, *args, timeout=60):
        r = subprocess.run([*self.command_prefix, POSTFIX, "-c", self.conf_dir, *args],
                           capture_output=True,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("postfix %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
        return r

    def start(self):
        self.postfix("check")  # also makes the queue directories
        self.postfix("start")
        self.running = True
        wait_for(lambda: port_open(self.port, self.host), 15,
                 "Postfix's smtpd on %s:%d" % (self.host, self.port))
        return self

    def master_pid(self):
        try:
            with open(os.path.join(self.spool, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def stop(self):
        if not self.running:
            return
        pid = self.master_pid()
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.postfix("stop")
        if pid:  # its daemons leave with it
            with contextlib.suppress(TimeoutError):
                wait_for(lambda: not os.path.exists("/proc/%d" % pid), 20, "postfix master")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.running = False

    def flush(self):
        """Deliver the deferred mail now (postqueue -f)."""
        subprocess.run(["postqueue", "-c", self.conf_dir, "-f"], check=True, timeout=30)

    def queued(self):
        """Queue ids of the messages in Postfix's queue (any of QUEUES), from its files."""
        ids = []
        for q in self.QUEUES:
            for _, _, files in os.walk(os.path.join(self.spool, q)):
                ids.extend(files)
        return ids

    def read_log(self):
        with contextlib.suppress(OSError):
            with open(self.log, errors="replace") as f:
                return f.read()
        return ""
