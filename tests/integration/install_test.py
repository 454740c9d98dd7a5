"""make install / uninstall from the build tree into a DESTDIR, at the prefix, sysconfdir and
systemd unit directory configure was given (under make distcheck: its own prefix). The
installed tree has the programs (sbindir, bindir, libexecdir/estafette), the config templates
in sysconfdir/estafette, the filter authors' headers and libestafette_milter.a, a man page for
every command and config file (each rendered by groff -ww without a warning; estafette.conf(5)
documents every setting the installed `estafette settings` lists, with the same default, and no
other) and estafette.service naming the installed paths. A second install keeps an admin's
changed file (the new template goes next to it as .dist); uninstall removes everything but that
changed file. The installed man pages name the configured sysconfdir, not /usr/local's. A daemon
program missing from the installed tree (estafette-esmtpd for estafetted, estafette-local for
courierd) is logged with the path that could not be run.

Then a copy of the source tree is configured with --prefix in the test's directory: the unit
goes under that prefix (PREFIX/lib/systemd/system), the installed man pages and the unit name the
prefix's paths, and the objects that embed paths (lib/base/paths.o, lib/config/config.o) do too;
configured again with another prefix, make finds exactly those out of date (config.h changed),
and they, the man pages and the unit carry the new paths and none of the old."""
import os
import re
import shutil
import subprocess
import time

import harness

PROGRAMS = {"sbindir": ["estafetted", "estafette"],
            "bindir": ["estafette-sendmail", "estafette-bench"],
            "pkglibexecdir": ["estafette-esmtpd", "estafette-courierd", "estafette-esmtpclient",
                              "estafette-local", "estafette-pickup",
                              "estafette-metrics", "estafette-filterhost"]}
TEMPLATES = ["estafette.conf", "esmtproutes", "dnsbl", "smtpaccess", "destinations", "locals",
             "hosteddomains", "hosted_mailboxes", "aliases"]
MAN = {"man8dir": ["estafetted.8", "estafette.8", "estafette-esmtpd.8", "estafette-courierd.8",
                   "estafette-esmtpclient.8", "estafette-local.8", "estafette-pickup.8",
                   "estafette-metrics.8", "estafette-filterhost.8"],
       "man1dir": ["estafette-sendmail.1", "estafette-bench.1"],
       "man5dir": ["estafette.conf.5", "esmtproutes.5", "dnsbl.5", "smtpaccess.5",
                   "destinations.5", "aliases.5", "hosteddomains.5", "locals.5",
                   "hosted_mailboxes.5"]}


def make_env():
    """The environment for a make of our own: not part of make check's job server."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(k, None)
    return env


def make(*args):
    r = subprocess.run(["make", "-C", harness.BUILD_DIR, "--no-print-directory"] + list(args),
                       capture_output=True, text=True, timeout=300, env=make_env())
    assert r.returncode == 0, "make %s: %s%s" % (" ".join(args), r.stdout[-3000:],
                                                 r.stderr[-3000:])
    return r.stdout


def dirs():
    """The installation directories the build tree was configured with, expanded by make."""
    names = ["prefix", "sbindir", "bindir", "pkglibexecdir", "sysconfdir", "includedir",
             "libdir", "man1dir", "man5dir", "man8dir", "systemdsystemunitdir"]
    rules = "print-dirs:\n" + "".join("\t@echo '%s=$(%s)'\n" % (n, n) for n in names)
    r = subprocess.run(["make", "-s", "--no-print-directory", "-C", harness.BUILD_DIR,
                        "-f", "Makefile", "-f", "-", "print-dirs"], input=rules,
                       capture_output=True, text=True, timeout=60, env=make_env())
    assert r.returncode == 0, r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def files_under(top):
    out = []
    for root, _, files in os.walk(top):
        out.extend(os.path.relpath(os.path.join(root, f), top) for f in files)
    return sorted(out)


def settings_of(estafette):
    """name -> default, from `estafette settings` (lib/config's settings table): columns that
    start where the header's NAME, DEFAULT and DESCRIPTION do."""
    r = subprocess.run([estafette, "settings"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr, (r.returncode, r.stderr)
    lines = r.stdout.splitlines()
    header = lines[0]
    assert header.startswith("NAME"), header
    at_default, at_doc = header.index("DEFAULT"), header.index("DESCRIPTION")
    out = {}
    for line in lines[1:]:
        name, default = line[:at_default].strip(), line[at_default:at_doc].strip()
        assert name and default and name not in out, line
        out[name] = default
    return out


def settings_in_page(page):
    """name -> the default an estafette.conf(5) entry states: each `.BI "name = "` paragraph,
    up to the next .TP or .SH, ends with "Default: TEXT." (groff escapes undone)."""
    out = {}
    for m in re.finditer(r'^\.BI "(\S+) = ".*\n((?:(?!\.TP|\.SH).*\n)*)', page, re.M):
        body = " ".join(m.group(2).split())
        at = body.rfind("Default: ")
        assert at >= 0 and body.endswith(".") and m.group(1) not in out, (m.group(1), body)
        out[m.group(1)] = body[at + len("Default: "):-1].replace("\\-", "-").replace("\\e", "\\")
    return out


def test(tmp, stoppers):
    if not shutil.which("make"):
        harness.skip("make is not installed")
    d = dirs()
    dest = os.path.join(tmp, "dest")
    at = lambda key, *names: os.path.join(dest + d[key], *names)  # noqa: E731

    make("install", "DESTDIR=" + dest)
    for key, names in PROGRAMS.items():
        for name in names:
            assert os.access(at(key, name), os.X_OK), at(key, name)
    conf = at("sysconfdir", "estafette")
    for name in TEMPLATES:
        with open(os.path.join(harness.SRC_DIR, "sysconf", name), "rb") as a, \
                open(os.path.join(conf, name), "rb") as b:
            assert a.read() == b.read(), name
    for name in ["estafette/filter.h", "estafette/libmilter/mfapi.h",
                 "estafette/libmilter/mfdef.h"]:
        assert os.path.isfile(at("includedir", name)), name
    assert os.path.isfile(at("libdir", "libestafette_milter.a"))

    # Every page in docs/man is one the test knows, so a new page cannot miss dist_man_MANS.
    pages = sorted(os.listdir(os.path.join(harness.SRC_DIR, "docs", "man")))
    assert pages == sorted(n for names in MAN.values() for n in names), pages
    groff = shutil.which("groff")
    for key, names in MAN.items():
        for name in names:
            assert os.path.isfile(at(key, name)), at(key, name)
            if groff:
                r = subprocess.run([groff, "-ww", "-z", "-man", at(key, name)],
                                   capture_output=True, text=True, timeout=60)
                assert r.returncode == 0 and not r.stderr, (name, r.stderr)
    # estafette.conf(5) is written by hand (sections per daemon, paragraphs, cross-references:
    # more than a generated list of one-line docs would give), so this compares it with the
    # settings table both ways: every setting the installed `estafette settings` lists is
    # documented with the same default, and the page documents no setting the table lacks.
    with open(at("man5dir", "estafette.conf.5")) as f:
        page = f.read()
    table = settings_of(at("sbindir", "estafette"))
    documented = settings_in_page(page)
    missing = sorted(set(table) - set(documented))
    extra = sorted(set(documented) - set(table))
    wrong = sorted("%s: page %r, table %r" % (k, documented[k], table[k])
                   for k in set(table) & set(documented) if documented[k] != table[k])
    assert len(table) > 50 and not missing and not extra and not wrong, \
        "estafette.conf.5 lacks: %s; has settings the table lacks: %s; other defaults: %s" % (
            missing, extra, wrong)

    # The installed pages carry the configured paths (the sources say /usr/local's).
    with open(at("man8dir", "estafetted.8")) as f:
        page = f.read()
    assert "%s/estafette/estafette.conf" % d["sysconfdir"] in page, page[:2000]

    missing_program(tmp, d, at)

    if d["systemdsystemunitdir"] != "no":
        with open(at("systemdsystemunitdir", "estafette.service")) as f:
            unit = f.read()
        assert "ExecStart=%s/estafetted -f -c %s/estafette/estafette.conf" % (
            d["sbindir"], d["sysconfdir"]) in unit, unit
        assert "ExecReload=%s/estafette reload -c %s/estafette/estafette.conf" % (
            d["sbindir"], d["sysconfdir"]) in unit and "Type=notify" in unit, unit
        assert "PrivateTmp" not in \
            re.sub(r"(?m)^#.*\n", "", unit), unit

    # Again, over an admin's changed file: it stays, the template goes next to it.
    with open(os.path.join(conf, "esmtproutes"), "a") as f:
        f.write("example.com: mx.admin.test\n")
    out = make("install", "DESTDIR=" + dest)
    assert "keeping" in out and os.path.isfile(os.path.join(conf, "esmtproutes.dist")), out
    assert not os.path.exists(os.path.join(conf, "estafette.conf.dist"))  # unchanged: no .dist

    make("uninstall", "DESTDIR=" + dest)
    left = files_under(dest)
    assert left == [os.path.relpath(os.path.join(conf, "esmtproutes"), dest)], left
    os.unlink(os.path.join(conf, "esmtproutes"))
    make("uninstall", "DESTDIR=" + dest)
    assert files_under(dest) == [], files_under(dest)

    configured_prefix(tmp)


def missing_program(tmp, d, at):
    """estafetted and courierd from the installed tree (ESTAFETTE_LIBEXEC: the DESTDIR copy is
    not at its prefix) with a program gone: estafette-esmtpd missing fails estafetted's start
    with the path (exit 1), rather than an anonymous exit 127 in a loop; estafette-local missing
    (a module courierd starts) is logged with the path, over and over, while the rest runs."""
    libexec = at("pkglibexecdir")
    env = dict(os.environ, ESTAFETTE_LIBEXEC=libexec)

    def run_without(name, label):
        os.rename(os.path.join(libexec, name), os.path.join(libexec, name + ".away"))
        mta = harness.Estafette(tmp, name=label)
        out = open(os.path.join(mta.dir, "estafetted.out"), "ab")
        proc = subprocess.Popen([at("sbindir", "estafetted"), "-f", "-c", mta.conf], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
        return mta, proc, out

    def restore(name, proc, out):
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=30)
        out.close()
        os.rename(os.path.join(libexec, name + ".away"), os.path.join(libexec, name))

    mta, proc, out = run_without("estafette-esmtpd", "missing-esmtpd")
    try:
        assert proc.wait(timeout=30) == 1, mta.read_log()
        log = mta.read_log()
        assert "start failed: estafette-esmtpd" in log and "cannot run %s/estafette-esmtpd: " \
            "No such file or directory" % libexec in log, log
    finally:
        restore("estafette-esmtpd", proc, out)

    mta, proc, out = run_without("estafette-local", "missing-local")
    try:
        want = "courierd: module=local cannot run %s/estafette-local: No such file or " \
            "directory" % libexec
        deadline = time.time() + 30
        while time.time() < deadline and mta.read_log().count(want) < 2:
            assert proc.poll() is None, mta.read_log()
            time.sleep(0.2)
        assert mta.read_log().count(want) >= 2, mta.read_log()
    finally:
        restore("estafette-local", proc, out)


def configured_prefix(tmp):
    """A copy of the source tree, configured with --prefix in tmp and then with another one."""
    if not shutil.which("git") or not os.path.isdir(os.path.join(harness.SRC_DIR, ".git")) and \
            not os.path.isfile(os.path.join(harness.SRC_DIR, ".git")):
        harness.skip("the prefix check copies the source tree with git ls-files")
    src = os.path.join(tmp, "src")
    listed = subprocess.run(["git", "-C", harness.SRC_DIR, "ls-files"], capture_output=True,
                            text=True, timeout=60, check=True).stdout.splitlines()
    generated = ["configure", "Makefile.in", "config.h.in", "aclocal.m4"] + [
        os.path.join("build-aux", n) for n in os.listdir(os.path.join(harness.SRC_DIR,
                                                                      "build-aux"))]
    for name in sorted(set(listed + generated)):
        path = os.path.join(harness.SRC_DIR, name)
        if os.path.isfile(path):
            os.makedirs(os.path.dirname(os.path.join(src, name)), exist_ok=True)
            shutil.copy2(path, os.path.join(src, name))
    # The autotools outputs newer than their inputs, as in the source tree: make must not rerun
    # automake in the copy.
    now = time.time()
    for name in generated:
        os.utime(os.path.join(src, name), (now, now))

    def sh(*args):
        r = subprocess.run(list(args), cwd=src, capture_output=True, text=True, timeout=600,
                           env=make_env())
        assert r.returncode == 0, "%s: %s%s" % (args, r.stdout[-3000:], r.stderr[-3000:])
        return r

    embedding = ["lib/base/paths.o", "lib/config/config.o"]
    previous = None
    for n in (1, 2):
        prefix = os.path.join(tmp, "prefix%d" % n)
        # -C: the second run reuses the first one's answers; FUZZ_CXX=false skips that probe.
        sh("./configure", "-C", "--prefix=" + prefix, "FUZZ_CXX=false")
        if previous:  # config.h changed: what embeds a path is out of date, by make's own rules
            for obj in embedding:
                r = subprocess.run(["make", "-q", obj], cwd=src, capture_output=True,
                                   timeout=120, env=make_env())
                assert r.returncode == 1, "%s not out of date after a new prefix" % obj
        sh("make", "-s", *embedding)
        dest = os.path.join(tmp, "dest%d" % n)
        sh("make", "-s", "install-data", "DESTDIR=" + dest)
        installed = dest + prefix
        unit = os.path.join(installed, "lib", "systemd", "system", "estafette.service")
        with open(unit) as f:
            text = f.read()
        assert "ExecStart=%s/sbin/estafetted -f -c %s/etc/estafette/estafette.conf" % (
            prefix, prefix) in text, text
        with open(os.path.join(installed, "share", "man", "man5", "aliases.5")) as f:
            page = f.read()
        assert "%s/etc/estafette/aliases" % prefix in page, page
        assert "/usr/local/etc/estafette" not in page, page
        for obj in embedding:
            with open(os.path.join(src, obj), "rb") as f:
                data = f.read()
            assert ("%s/etc/estafette" % prefix).encode() in data or \
                ("%s/libexec/estafette" % prefix).encode() in data, obj
            if previous:
                assert previous.encode() not in data, obj
        previous = prefix


harness.run(test)
