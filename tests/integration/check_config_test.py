"""`estafette check-config` and `--strict` on real files (issue 16): each mistake it used to pass
is an error with file:line -- a network with host bits set (relay_clients, smtpaccess), the same
listen address twice, a hosted mailbox for a domain not in hosteddomains, an esmtproutes line
without the colon after the domain, an unknown log_level (all eight levels listed), a missing
user (its line); a setting given twice is a warning, also in the daemons' log, and the last one
wins (Postfix). --strict
also warns about alias targets without a mailbox (the shipped `postmaster: root` under
local_mailboxes = system) and settings or lines that have no effect, and exits 1 on any warning.
The shipped estafette.conf and aliases pass --strict once root's mail goes to an account."""
import os
import pwd
import shutil
import subprocess

import harness


def check(conf, *args):
    return subprocess.run([os.path.join(harness.BUILD_DIR, "estafette"), "check-config"] +
                          list(args) + ["-c", conf], capture_output=True, text=True, timeout=60)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test(tmp, stoppers):
    d = os.path.join(tmp, "etc")
    os.makedirs(d)
    conf = os.path.join(d, "estafette.conf")
    base = "state_dir = %s\nlocal_domains = local.test\n" % os.path.join(tmp, "state")
    write(os.path.join(d, "hosteddomains"), "hosted.test\n")
    write(os.path.join(d, "hosted_mailboxes"), "joe@hosted.test: joe\nann@other.test: ann\n")
    write(os.path.join(d, "routes"), "ok.test: 127.0.0.1:2500\ndeferred.test 127.0.0.1:3399\n")
    write(os.path.join(d, "smtpaccess"), "127.0.0.0/8 allow\n10.1.2.3/16 deny\n")

    errors = [  # (lines after base, the one line printed)
        ("relay_clients = 127.0.0.1/8\n",
         conf + ":3: relay_clients: host bits set in '127.0.0.1/8' (the network is 127.0.0.0/8)"),
        ("smtpaccess = smtpaccess\n",
         d + "/smtpaccess:2: host bits set in '10.1.2.3/16' (the network is 10.1.0.0/16)"),
        ("listen = 127.0.0.1:2525, [::1]:2525, [0:0::1]:2525\n",
         conf + ":3: listen: address [0:0::1]:2525 listed twice (as [::1]:2525)"),
        ("hosteddomains = hosteddomains\nhosted_mailboxes = hosted_mailboxes\n",
         d + "/hosted_mailboxes:2: 'ann@other.test': other.test is not in hosteddomains"),
        ("esmtproutes = routes\n",
         d + "/routes:2: expected 'domain: host[,port]' (no ':' after 'deferred.test')"),
        ("log_level = loud\n",
         conf + ":3: log_level: expected one of fatal, critical, error, warning, notice, "
         "information, debug, trace"),
        ("# the daemons' user\nuser = no-such-user-estafette\n",
         conf + ":4: user: no such user 'no-such-user-estafette'"),
    ]
    for lines, want in errors:
        write(conf, base + lines)
        r = check(conf)
        assert r.returncode == 1 and r.stdout == want + "\n", (lines, r.returncode, r.stdout,
                                                                r.stderr)

    # Given twice: a warning naming both lines; the last value is the one used.
    write(conf, base + "MAXDELS = 10\nMAXHOST = 10\n\nMAXDELS = 20\n")
    r = check(conf)
    assert r.returncode == 0 and r.stdout == (
        "warning: %s:6: MAXDELS given again (the value at %s:3 is ignored)\n"
        "config OK: %s\n" % (conf, conf, conf)), r.stdout
    r = check(conf, "--strict")
    assert r.returncode == 1 and "config has warnings (--strict)" in r.stdout, r.stdout
    # The daemons start with it, and log the same warning (Postfix logs "overriding earlier
    # entry" too).
    mta = harness.Estafette(tmp, name="twice", MAXDELS="10")
    with open(mta.conf, "a") as f:
        f.write("MAXDELS = 20\n")
    stoppers.append(mta)
    mta.start()
    harness.wait_for(lambda: "config: %s:" % mta.conf in mta.read_log(), 15, "the warning")
    assert "MAXDELS given again (the value at %s:" % mta.conf in mta.read_log(), mta.read_log()
    mta.stop()

    # --strict: what has no effect. Without --strict the same config is OK and silent.
    write(os.path.join(d, "aliases"), "postmaster: root\nabuse: postmaster\n")
    write(os.path.join(d, "locals"), "extra.test\nextra.test\n")
    write(conf, base + "local_mailboxes = system\naliases = aliases\nlocals = locals\n"
          "program_user = nobody\n")
    r = check(conf)
    assert r.returncode == 0 and r.stdout == "config OK: %s\n" % conf, r.stdout
    r = check(conf, "--strict")
    why = "has no mailbox (local_mailboxes = system: no such user, or root, which never has one)"
    assert r.returncode == 1 and r.stdout.splitlines() == [
        "warning: %s:6: program_user: ignored: allow_program_delivery = no" % conf,
        "warning: %s/aliases:1: postmaster: root@local.test %s" % (d, why),
        "warning: %s/aliases:2: abuse: root@local.test %s" % (d, why),
        "warning: %s/locals:2: 'extra.test' listed again (first at %s/locals:1)" % (d, d),
        "config has warnings (--strict): %s" % conf], r.stdout

    # The shipped files: estafette.conf passes --strict as it is (its user and state_dir
    # aside), and so do the shipped aliases under local_mailboxes = system once root's mail goes
    # to an account (the template says so; without it --strict names the line).
    shipped = os.path.join(tmp, "shipped")
    shutil.copytree(os.path.join(harness.SRC_DIR, "sysconf"), shipped)
    conf = os.path.join(shipped, "estafette.conf")
    with open(conf) as f:
        text = f.read()
    text = text.replace("state_dir = /var/spool/estafette", "state_dir = " +
                        os.path.join(tmp, "state"))
    text = text.replace("user = estafette", "user = " + pwd.getpwuid(os.getuid()).pw_name)
    write(conf, text)
    r = check(conf, "--strict")
    assert r.returncode == 0 and r.stdout == "config OK: %s\n" % conf, r.stdout
    write(conf, text.replace("#aliases = aliases", "aliases = aliases").replace(
        "#local_mailboxes = existing", "local_mailboxes = system"))
    r = check(conf, "--strict")
    assert r.returncode == 1 and "postmaster: root@localhost has no mailbox" in r.stdout, r.stdout
    with open(os.path.join(shipped, "aliases")) as f:
        aliases = f.read()
    assert "\n# root: alice\n" in aliases, aliases
    write(os.path.join(shipped, "aliases"), aliases.replace("\n# root: alice\n", "\nroot: nobody\n"))
    r = check(conf, "--strict")
    assert r.returncode == 0 and r.stdout == "config OK: %s\n" % conf, r.stdout


harness.run(test)
