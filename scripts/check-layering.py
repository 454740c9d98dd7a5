#!/usr/bin/env python3
"""check-layering: the include directions of docs/architecture.md ("Layers"), checked on the
source tree, and that no source file is compiled into two programs or libraries.

  lib/<area>  includes only lib/ areas listed for it in LIB_DEPENDS (and include/, config.h)
  filters/    includes lib/, include/ and filters/
  a program folder includes lib/, include/, its own folder, and what PROGRAM_DEPENDS allows
  tests/, bench/ and examples may include anything

Run by `make check` (from the build tree: SRC_DIR names the sources) and by hand:
`scripts/check-layering.py [SRC_DIR]`. Before it checks the tree it checks itself on a small
tree with one violation of each kind, so a check that stopped finding anything fails too.
Exit 0 when clean, 1 with one line per violation."""
import os
import re
import sys
import tempfile

# Which lib/ areas each lib/ area may include (besides itself), lowest layer first.
LIB_DEPENDS = {
    "base": set(),
    "event": {"base"},
    "auth": {"base", "event"},
    "smtp": {"base", "auth"},  # the server session runs AUTH's SASL exchange (lib/auth/sasl.h)
    "ipc": {"base", "event"},
    "dns": {"base", "event", "metrics"},  # the resolver's query times
    "queue": {"base", "event", "metrics"},  # the committer's batch sizes and durations
    "checks": {"base", "event", "dns"},
    "config": {"base", "dns", "smtp"},
    "tls": {"base", "config", "dns"},  # DANE: the client takes lib/dns/tlsa.h records
    "routing": {"base", "config", "smtp"},
    "daemon": {"base", "event", "config"},
    "submit": {"base", "config", "smtp"},
    "admin": {"base", "event", "ipc", "config"},
    "mtasts": {"base", "event", "dns", "tls", "config"},
    "tlsrpt": {"base", "auth", "smtp"},
    "metrics": {"base"},
}
# Program folders (one component each) and the component libraries above lib/ they may use.
PROGRAM_DEPENDS = {
    "esmtpd": {"filters"},
    "admin": {"filters"},  # check-config loads the filters as esmtpd would
    "courierd": set(),
    "metrics": set(),
    "esmtpclient": set(),
    "modules/local": set(),
    "sendmail": set(),
    "pickup": set(),
    "filterhost": {"filters"},  # serves one filter module as a milter
    "supervisor": set(),
}
# Compiled twice on purpose: each is built unchanged against Debian's libmilter and as an
# in-process module with the shim, which is what it demonstrates (filters/local.am) or tests
# (tests/unit/filters/local.am: milter sources written as public milters are); envelope_module.c
# is built for the native ABI 1.1 and against the 1.0 layout (old modules must still load).
COMPILED_TWICE_OK = {"filters/examples/sample_milter.c",
                     "tests/unit/filters/modules/modern_milter.c",
                     "tests/unit/filters/modules/sendmail_sample.c",
                     "tests/unit/filters/modules/envelope_module.c"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SOURCES = re.compile(r"^([A-Za-z0-9_]+)_SOURCES\s*\+?=(.*)$")


def component_of(path):
    """The component a source file belongs to: ('lib', area), ('filters', ''), ('program',
    folder), or None for files that are not checked (tests, bench, include, examples)."""
    parts = path.split("/")
    if parts[0] == "lib" and len(parts) > 2:
        return ("lib", parts[1])
    if parts[0] == "filters":
        return None if parts[1:2] == ["examples"] else ("filters", "")
    if parts[0] == "modules" and len(parts) > 2:
        return ("program", "modules/" + parts[1])
    if parts[0] in PROGRAM_DEPENDS:
        return ("program", parts[0])
    return None


def include_problem(path, kind, name, target):
    if target == "config.h" or target.startswith("include/") or "/" not in target:
        return None  # autoconf's config.h, public headers, same-directory C headers
    top = target.split("/")[0]
    if kind == "lib":
        if top != "lib":
            return "lib/%s includes %s: lib/ includes nothing above it" % (name, target)
        area = target.split("/")[1]
        if area != name and area not in LIB_DEPENDS.get(name, set()):
            return "lib/%s includes %s: not below it (LIB_DEPENDS)" % (name, target)
        return None
    if kind == "filters":
        if top not in ("lib", "filters"):
            return "filters/ includes %s: filters/ uses only lib/ and itself" % target
        return None
    own = name.split("/")[0]
    if top in ("lib", own):
        return None
    if top == "filters" and "filters" in PROGRAM_DEPENDS.get(name, set()):
        return None
    return "%s/ includes %s: a program uses only lib/, include/ and its own folder" % (name, target)


def source_files(root):
    for top in ["lib", "filters"] + sorted(set(p.split("/")[0] for p in PROGRAM_DEPENDS)):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if f.endswith((".h", ".cc", ".c")):
                    yield os.path.relpath(os.path.join(dirpath, f), root)


def am_files(root):
    for dirpath, _, files in os.walk(root):
        if "/.git" in dirpath or "autom4te" in dirpath:
            continue
        for f in files:
            if f in ("local.am", "Makefile.am"):
                yield os.path.join(dirpath, f)


def check(root):
    problems = []
    for path in source_files(root):
        where = component_of(path)
        if where is None:
            continue
        with open(os.path.join(root, path), errors="replace") as f:
            text = f.read()
        for target in INCLUDE.findall(text):
            p = include_problem(path, where[0], where[1], target)
            if p:
                problems.append("%s: %s" % (path, p))
    compiled = {}
    for am in am_files(root):
        with open(am) as f:
            text = f.read().replace("\\\n", " ")
        for line in text.split("\n"):
            m = SOURCES.match(line.strip())
            if not m or m.group(1).startswith("nodist_"):
                continue
            for token in m.group(2).split():
                if token.endswith((".cc", ".c")):
                    compiled.setdefault(token, set()).add(m.group(1))
    for source, targets in sorted(compiled.items()):
        if len(targets) > 1 and source not in COMPILED_TWICE_OK:
            problems.append("%s is compiled into %s: put it in its component's library" %
                            (source, ", ".join(sorted(targets))))
    return problems


def self_test():
    """One violation of each rule in a small tree: each must be found."""
    files = {
        "lib/base/ok.h": '#include "config.h"\n#include <string>\n',
        "lib/event/ok.cc": '#include "lib/base/ok.h"\n',
        "lib/base/up.cc": '#include "lib/event/loop.h"\n',          # base is below event
        "lib/smtp/above.cc": '#include "esmtpd/server.h"\n',        # lib includes a program
        "filters/x.cc": '#include "esmtpd/server.h"\n',             # filters includes a program
        "esmtpd/ok.cc": '#include "filters/chain.h"\n#include "lib/smtp/command.h"\n',
        "courierd/side.cc": '#include "esmtpd/server.h"\n',         # sideways between programs
        "courierd/filters.cc": '#include "filters/chain.h"\n',      # courierd may not use filters
        "courierd/local.am": "a_SOURCES = courierd/side.cc\nb_SOURCES = x.cc \\\n  courierd/side.cc\n",
    }
    with tempfile.TemporaryDirectory() as root:
        for path, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as f:
                f.write(text)
        found = check(root)
    expected = ["lib/base/up.cc", "lib/smtp/above.cc", "filters/x.cc", "courierd/side.cc:",
                "courierd/filters.cc", "courierd/side.cc is compiled into a, b"]
    missing = [e for e in expected if not any(p.startswith(e) for p in found)]
    if missing or len(found) != len(expected):
        print("check-layering self-test failed: missing %s, found %s" % (missing, found))
        return False
    return True


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "SRC_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    if not self_test():
        return 1
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print("FAIL: %d layering problem(s); the rules are in docs/architecture.md" % len(problems))
        return 1
    print("PASS: includes follow the layers; no source compiled twice")
    return 0


if __name__ == "__main__":
    sys.exit(main())
