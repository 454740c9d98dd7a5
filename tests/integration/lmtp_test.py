"""LMTP delivery (RFC 2033) to a real Dovecot (dovecot-core + dovecot-lmtpd), issue 18, with
esmtpclient running as nobody (user = nobody).

The test starts its own Dovecot: a config in the test's directory (base_dir, state, log file),
`protocols = lmtp` with a unix listener in the test directory and an inet listener on
127.0.0.1:<free port>, a passwd-file userdb (mail as nobody, Maildir under the test directory)
and the quota plugin with a 1 KiB limit for one user. Estafette delivers its local domain with
`local_transport = lmtp:unix:...` and a hosted domain with `transport=lmtp:inet:...` on its
hosteddomains line. Checked:
- `estafette check-config` passes with both transports;
- delivery into Dovecot's Maildir over the unix socket and over TCP, and a later transaction
  on an LMTP connection an earlier one opened (reuse);
- one transaction to a known and an unknown user: one delivered, one bounced with Dovecot's
  550 text in the DSN;
- one transaction to a user and the over-quota user: Dovecot's per-recipient reply after the
  end of data decides: delivered for one, Dovecot's 552 quota text in the bounce for the other;
  with Dovecot's quota_full_tempfail = yes (4xx) the over-quota user's mail is deferred with
  Dovecot's text in mailq instead;
- NOTIFY=SUCCESS: a "delivered" notice (Dovecot takes no DSN parameters and is the final
  delivery);
- Dovecot stopped: deferred (mailq shows the error), started again + `estafette flush`:
  delivered."""
import email
import glob
import os
import pwd
import shutil
import subprocess

import harness

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
LMTP_MODULE = "/usr/lib/dovecot/lmtp"
SENDER = "sender@estafette.test"


class DovecotLmtp:
    """A throwaway Dovecot serving LMTP only, users from a passwd-file."""

    def __init__(self, tmp, port, quota_tempfail=False):
        self.dir = os.path.join(tmp, "dovecot")
        self.socket = os.path.join(self.dir, "lmtp")
        self.port = port
        self.home = os.path.join(self.dir, "home")
        self.log = os.path.join(self.dir, "dovecot.log")
        self.proc = None
        os.makedirs(self.home, exist_ok=True)
        os.chmod(self.dir, 0o755)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.home, nobody.pw_uid, nobody.pw_gid)
        users = os.path.join(self.dir, "users")
        with open(users, "w") as f:
            for user in ("alice@estafette.test", SENDER, "carol@hosted.test"):
                f.write("%s:{PLAIN}unused::::::\n" % user)
            f.write("tiny@estafette.test:{PLAIN}unused::::::userdb_quota_rule=*:storage=1K\n")
        self.users = users
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.configure(quota_tempfail)

    def configure(self, quota_tempfail):
        """Writes the config; quota_tempfail: Dovecot answers a full mailbox with 4xx, not 5xx.
        Takes effect at the next start()."""
        users, port = self.users, self.port
        with open(self.conf, "w") as f:
            f.write(f"""base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.log}
protocols = lmtp
ssl = no
hostname = dovecot.test
default_internal_user = dovecot
default_login_user = dovenull
auth_username_format = %Lu
mail_location = maildir:~/Maildir
mail_plugins = quota
lmtp_rcpt_check_quota = yes
quota_full_tempfail = {"yes" if quota_tempfail else "no"}
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
  default_fields = uid=nobody gid=nogroup home={self.home}/%Lu
}}
plugin {{
  quota = maildir:User quota
}}
service lmtp {{
  unix_listener {self.socket} {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
""")

    def start(self):
        if not os.access(DOVECOT, os.X_OK) or not os.path.exists(LMTP_MODULE):
            harness.skip("dovecot-core and dovecot-lmtpd are not installed (scripts/install-deps)")
        if os.geteuid() != 0:
            harness.skip("Dovecot delivers as nobody: the test runs as root")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        harness.wait_for(lambda: harness.unix_socket_open(self.socket) and
                         harness.port_open(self.port), 15, "dovecot's LMTP listeners")
        return self

    def stop(self):
        """Dovecot and all its processes at once, as a crash would."""
        if not self.proc:
            return
        harness.kill_tree(self.proc)
        self.proc = None
        if os.path.exists(self.socket):
            os.unlink(self.socket)

    def messages(self, user):
        """The messages in user's Maildir/new, oldest first, as bytes."""
        files = sorted(glob.glob(os.path.join(self.home, user, "Maildir", "new", "*")),
                       key=os.path.getmtime)
        out = []
        for name in files:
            with open(name, "rb") as f:
                out.append(f.read())
        return out

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def message(tag, size=0):
    return (b"From: sender@estafette.test\r\nSubject: lmtp %s\r\nMessage-ID: <%s@estafette.test>"
            b"\r\n\r\nbody %s\r\n" % (tag, tag, tag)) + b"x" * 70 * (size // 72) + b"\r\n" * (
                size // 72)


def bounce_for(dovecot, count):
    """The count-th message in the sender's Maildir (a DSN), parsed."""
    msgs = harness.wait_for(lambda: len(dovecot.messages(SENDER)) >= count and
                            dovecot.messages(SENDER), 30, "bounce %d" % count)
    return msgs[count - 1]


def estafette(mta, *args):
    return subprocess.run([mta.program("estafette"), *args, "-c", mta.conf],
                          capture_output=True, text=True, timeout=60)


def test(tmp, stoppers):
    dovecot = DovecotLmtp(tmp, harness.free_port()).start()
    stoppers.append(dovecot)
    hosted = os.path.join(tmp, "hosteddomains")
    with open(hosted, "w") as f:
        f.write("hosted.test transport=lmtp:inet:127.0.0.1:%d\n" % dovecot.port)
    # user = nobody: esmtpclient connects to Dovecot's sockets as the unprivileged user.
    # One esmtpclient process: every job finds the idle LMTP connection the one before left.
    mta = harness.Estafette(tmp, user="nobody", esmtpclient_processes="1",
                            local_transport="lmtp:unix:" + dovecot.socket,
                            hosteddomains=hosted, retry_base="1h", retry_max="1h",
                            host_backoff="1h")
    r = estafette(mta, "check-config")
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout + r.stderr
    mta.start()
    stoppers.append(mta)
    # A client courierd has just started may still be dropping root (real uid first): each one
    # must be nobody, all four ids, within a few seconds.
    nobody = {str(pwd.getpwnam("nobody").pw_uid)}

    def uids_of(pid):
        with open("/proc/%d/status" % pid) as f:
            return [ln.split()[1:] for ln in f if ln.startswith("Uid:")][0]

    for pid in mta.pids_of("estafette-esmtpclient"):
        harness.wait_for(lambda: set(uids_of(pid)) == nobody, 10,
                         "esmtpclient %d as nobody (at first %r)" % (pid, uids_of(pid)))

    # Over the unix socket, and over TCP.
    mta.send(SENDER, ["alice@estafette.test"], message(b"unix-1"))
    got = harness.wait_for(lambda: dovecot.messages("alice@estafette.test"), 30, "unix delivery")
    assert b"Message-ID: <unix-1@estafette.test>" in got[0], got[0][:2000]
    assert b"Delivered-To: alice@estafette.test" in got[0], got[0][:2000]  # Dovecot's header
    mta.send(SENDER, ["carol@hosted.test"], message(b"inet-1"))
    got = harness.wait_for(lambda: dovecot.messages("carol@hosted.test"), 30, "inet delivery")
    assert b"Message-ID: <inet-1@estafette.test>" in got[0], got[0][:2000]
    # courierd logs each result once esmtpclient has reported it (after Dovecot saved it).
    for relay in ("relay=unix:%s " % dovecot.socket, "relay=[127.0.0.1]:%d " % dovecot.port):
        harness.wait_for(lambda: relay in mta.read_log(), 15, relay)

    # NOTIFY=SUCCESS: Dovecot's LMTP takes no DSN parameters and saved the message: the
    # notice says "delivered" (final delivery), not "relayed".
    mta.send(SENDER, ["carol@hosted.test"], message(b"notify-1"), rcpt_options=["NOTIFY=SUCCESS"])
    notice = bounce_for(dovecot, 1).decode(errors="replace")
    assert "Action: delivered" in notice and "carol@hosted.test" in notice, notice[:4000]
    assert len(dovecot.messages("carol@hosted.test")) == 2

    # A known and an unknown user in one transaction: Dovecot's 550 is the bounce's.
    mta.send(SENDER, ["alice@estafette.test", "nosuch@estafette.test"], message(b"mixed-1"))
    harness.wait_for(lambda: len(dovecot.messages("alice@estafette.test")) == 2, 30,
                     "the known user's copy")
    dsn = email.message_from_bytes(bounce_for(dovecot, 2))
    text = dsn.as_string()
    assert "nosuch@estafette.test" in text and "Action: failed" in text, text[:4000]
    assert "550 5.1.1" in text and "User doesn't exist" in text, text[:4000]
    assert "alice@estafette.test" not in text.split("message/rfc822")[0].replace(
        "To: alice", ""), text[:4000]

    # Over quota: Dovecot's reply after the end of data for that recipient only.
    mta.send(SENDER, ["alice@estafette.test", "tiny@estafette.test"], message(b"quota-1", 4096))
    harness.wait_for(lambda: len(dovecot.messages("alice@estafette.test")) == 3, 30,
                     "the user with room's copy")
    dsn = email.message_from_bytes(bounce_for(dovecot, 3)).as_string()
    assert "tiny@estafette.test" in dsn and "Action: failed" in dsn, dsn[:4000]
    assert "552 5.2.2" in dsn and "Quota exceeded" in dsn, dsn[:4000]
    assert not dovecot.messages("tiny@estafette.test"), "nothing for the full mailbox"
    harness.wait_for(lambda: not mta.queue_files(), 15, "an empty queue")
    # Connection reuse: a transaction on an LMTP connection an earlier one opened.
    reused = [ln for ln in mta.read_log().splitlines()
              if "remote=unix:%s " % dovecot.socket in ln and " reused=yes " in ln]
    assert reused, mta.read_log()[-3000:]

    # Dovecot down: deferred (never bounced), and delivered after it is back and a flush.
    dovecot.stop()
    mta.send(SENDER, ["alice@estafette.test"], message(b"down-1"))
    errors = harness.wait_for(lambda: harness.recipient_errors(mta), 30, "a deferral")
    assert "connect to unix:" + dovecot.socket in errors.get("alice@estafette.test", ""), errors
    assert len(dovecot.messages(SENDER)) == 3, "no bounce for a deferral"
    dovecot.configure(quota_tempfail=True)  # for the last check, below
    dovecot.start()
    r = estafette(mta, "flush")
    assert r.returncode == 0, r.stdout + r.stderr
    harness.wait_for(lambda: len(dovecot.messages("alice@estafette.test")) == 4, 30,
                     "delivery after Dovecot is back")
    assert b"<down-1@estafette.test>" in dovecot.messages("alice@estafette.test")[3]
    harness.wait_for(lambda: not mta.queue_files(), 15, "an empty queue")
    # One LMTP session carried several transactions (connection reuse) at some point, and no
    # message was delivered twice.
    all_alice = b"".join(dovecot.messages("alice@estafette.test"))
    for tag in (b"unix-1", b"mixed-1", b"quota-1", b"down-1"):
        assert all_alice.count(b"Message-ID: <%s@" % tag) == 1, tag

    # Dovecot told to answer a full mailbox with 4xx: deferred, with its text in mailq, and no
    # bounce.
    mta.send(SENDER, ["tiny@estafette.test"], message(b"quota-2", 4096))
    errors = harness.wait_for(lambda: harness.recipient_errors(mta), 30, "a quota deferral")
    assert "Quota exceeded" in errors.get("tiny@estafette.test", ""), errors
    assert errors["tiny@estafette.test"].startswith("4"), errors
    assert len(dovecot.messages(SENDER)) == 3, "no bounce for a deferral"
    assert not dovecot.messages("tiny@estafette.test")


harness.run(test)
