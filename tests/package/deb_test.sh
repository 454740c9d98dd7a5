#!/bin/bash
# deb_test.sh: the Debian package as a user meets it (issue 18). Builds the binary package with
# `dpkg-buildpackage -b -us -uc` from a copy of the source tree's files (git's, so nothing of an
# in-tree build leaks in), runs lintian on it (errors and warnings fail, overrides in debian/),
# makes a clean Debian 12 root with mmdebstrap from this machine's Debian apt sources with
# postfix and systemd in it, and there:
#   - `apt install ./estafette_*.deb` removes postfix; sendmail, mailq and newaliases are
#     Estafette's; the user, the conffiles, the logrotate file are there; `systemctl
#     is-enabled estafette` says enabled (systemd cannot boot in a chroot: the unit's
#     ExecStartPre and ExecStart lines are run as systemd would run them);
#   - in a network namespace of its own (unshare --net: its own loopback, so port 25 is free),
#     with a pid namespace that ends every process it started when it ends: estafetted from the
#     unit's command line, `estafette status`; `echo ... | sendmail root` and an SMTP message to
#     127.0.0.1:25 for root@<mailname> land in root's Maildir; a message to example.com (no
#     network there: DNS fails temporarily) is deferred and `mailq` lists it; `estafette stop`,
#     then `estafette start` and `estafette status` work too; `newaliases` reads /etc/aliases;
#   - `apt remove estafette` keeps the queue (the deferred message), root's mail and
#     /etc/estafette; `apt purge estafette` then removes them (not /etc/aliases).
# DEB_TEST_PACKAGE=path/estafette_*.deb uses that package instead of building one (for work on
# this test only).
# Needs root, network access to the Debian mirror, mmdebstrap, dpkg-dev, debhelper, lintian
# (scripts/install-deps). Everything it makes is under $BUILD_DIR/tests/package/deb_test.work,
# removed at the end. Exit: 0 pass, 1 fail, 77 skip (automake).
set -u
BUILD_DIR=${BUILD_DIR:-$PWD}
SRC_DIR=${SRC_DIR:-$BUILD_DIR}
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
SRC_DIR=$(cd "$SRC_DIR" && pwd)
started=$(date +%s)
step() { echo "deb_test: [$(($(date +%s) - started)) s] $*"; }
fail() {
	echo "deb_test: FAIL: $*"
	exit 1
}
skip() {
	echo "deb_test: SKIP: $*"
	exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root (mmdebstrap, chroot, unshare)"
[ -d "$SRC_DIR/.git" ] || skip "$SRC_DIR is no git checkout (debian/ is not in a dist tarball)"
for tool in git dpkg-buildpackage dh lintian mmdebstrap unshare chroot ip python3 timeout; do
	command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/install-deps"
done

WORK=$BUILD_DIR/tests/package/deb_test.work
ROOT=$WORK/root
mmdebstrap_pid=""
cleanup() {
	# A failure while mmdebstrap runs in the background: it ends first (timeout passes the
	# signal on), so that nothing writes into what is removed.
	if [ -n "$mmdebstrap_pid" ]; then
		kill "$mmdebstrap_pid" 2>/dev/null
		wait "$mmdebstrap_pid" 2>/dev/null
	fi
	# Nothing stays mounted: every mount was made in a mount namespace that is gone. Check it
	# anyway before deleting, so that a mount never takes the host's files with it.
	if grep -q " $WORK/" /proc/mounts; then
		echo "deb_test: still mounted under $WORK, not removing it:"
		grep " $WORK/" /proc/mounts
		return
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
cleanup
mkdir -p "$WORK/src" || fail "cannot create $WORK"

# --- the package, from the tracked (and new, not ignored) files of the source tree
step "copying the source tree's files"
(cd "$SRC_DIR" && git ls-files -z --cached --others --exclude-standard |
	tar --null --no-recursion -T - -cf - 2>/dev/null) | tar -C "$WORK/src" -xf - ||
	fail "cannot copy the source tree"

# --- a clean Debian 12 with postfix, from this machine's Debian sources. mmdebstrap mostly waits
# on the mirror and the disk: it runs beside the package build.
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] && grep -qE '^[^#]*(deb\.debian\.org|/debian(-security)?/?( |$))' "$f" &&
		sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || fail "no Debian apt sources in /etc/apt"
step "mmdebstrap bookworm with postfix and systemd from ${sources[*]} (in the background)"
timeout 1200 nice -n 19 mmdebstrap --mode=root --variant=minbase \
	--include=postfix,systemd bookworm "$ROOT" "${sources[@]}" >"$WORK/mmdebstrap.log" 2>&1 &
mmdebstrap_pid=$!

if [ -n "${DEB_TEST_PACKAGE:-}" ]; then
	# While working on the test itself: a package built before (not in CI).
	cp "$DEB_TEST_PACKAGE" "$WORK/" || fail "cannot copy $DEB_TEST_PACKAGE"
else
	step "dpkg-buildpackage -b -us -uc (log: $WORK/build.log)"
	# At nice 19: under make check it takes the CPU the other tests leave idle. noopt and -g1
	# (line tables, after dpkg's -g) only make the compiler faster (-g1: about 15%); the
	# package is debian/rules' all the same.
	if ! (cd "$WORK/src" && DEB_BUILD_OPTIONS="nocheck noopt parallel=2" \
		DEB_CFLAGS_APPEND=-g1 DEB_CXXFLAGS_APPEND=-g1 timeout 3000 \
		nice -n 19 dpkg-buildpackage -b -us -uc >"$WORK/build.log" 2>&1); then
		tail -n 40 "$WORK/build.log"
		fail "dpkg-buildpackage failed"
	fi
fi
deb=$(find "$WORK" -maxdepth 1 -name 'estafette_*_*.deb' | head -n 1)
[ -n "$deb" ] || fail "no estafette_*.deb in $WORK"
step "built $(basename "$deb")"
fields=$(dpkg-deb -f "$deb" Provides Conflicts Replaces)
for f in "Provides: mail-transport-agent" "Conflicts: mail-transport-agent" \
	"Replaces: mail-transport-agent"; do
	echo "$fields" | grep -qx "$f" || fail "the package lacks '$f': $fields"
done

step "lintian"
if ! timeout 600 lintian --fail-on error,warning "$deb" >"$WORK/lintian.log" 2>&1; then
	cat "$WORK/lintian.log"
	fail "lintian reports errors or warnings"
fi

# --- the clean Debian 12 root, made while the package builds
step "waiting for mmdebstrap"
wait "$mmdebstrap_pid"
mmdebstrap_rc=$?
mmdebstrap_pid=""
if [ "$mmdebstrap_rc" -ne 0 ]; then
	tail -n 40 "$WORK/mmdebstrap.log"
	fail "mmdebstrap failed"
fi
in_root() { # COMMAND...: run in the root with its own /proc (a mount namespace of its own),
	# for at most $T seconds (default 60)
	timeout "${T:-60}" unshare --mount --pid --fork --mount-proc="$ROOT/proc" chroot "$ROOT" "$@"
}
status_of() { in_root dpkg-query -W -f='${Status}' "$1" 2>/dev/null; }
[ "$(status_of postfix)" = "install ok installed" ] || fail "postfix is not installed in the root"

step "apt install ./$(basename "$deb") in the root"
cp "$deb" "$ROOT/tmp/" || fail "cannot copy the package into the root"
if ! T=900 in_root env DEBIAN_FRONTEND=noninteractive sh -c \
	"apt-get update -q && apt-get install -y -q /tmp/$(basename "$deb")" >"$WORK/install.log" 2>&1; then
	tail -n 40 "$WORK/install.log"
	fail "apt install failed"
fi
[ "$(status_of estafette)" = "install ok installed" ] || fail "estafette is not installed"
[ "$(status_of postfix)" != "install ok installed" ] || fail "postfix is still installed"
for name in /usr/sbin/sendmail /usr/bin/mailq /usr/bin/newaliases; do
	target=$(in_root readlink -f "$name")
	[ "$target" = /usr/bin/estafette-sendmail ] || fail "$name is $target, not estafette-sendmail"
done
uid=$(in_root id -u estafette) || fail "no user estafette"
[ "$uid" -lt 1000 ] || fail "estafette is no system user (uid $uid)"
conffiles=$(in_root dpkg-query -W -f='${Conffiles}' estafette)
for f in /etc/estafette/estafette.conf /etc/estafette/aliases /etc/logrotate.d/estafette; do
	echo "$conffiles" | grep -q " $f " || fail "$f is no conffile: $conffiles"
done
enabled=$(in_root systemctl is-enabled estafette.service 2>&1)
[ "$enabled" = enabled ] || fail "systemctl is-enabled estafette: $enabled"
[ -s "$ROOT/etc/mailname" ] || fail "no /etc/mailname"
mailname=$(head -n 1 "$ROOT/etc/mailname")
unit=$ROOT/lib/systemd/system/estafette.service
pre=$(sed -n 's/^ExecStartPre=//p' "$unit")
start=$(sed -n 's/^ExecStart=//p' "$unit")
[ -n "$pre" ] && [ -n "$start" ] || fail "no ExecStartPre or ExecStart in $unit"

# --- the MTA at work, in namespaces of its own: its own loopback, its own pids and mounts
step "estafette at work in a network namespace (unit: $start)"
cat >"$WORK/inside.sh" <<'EOF'
# Runs as pid 1 of a new pid namespace: every process started here ends with it.
set -u
ROOT=$1 PRE=$2 START=$3 MAILNAME=$4
fail() { echo "inside: FAIL: $*"; exit 1; }
r() { chroot "$ROOT" "$@"; }
wait_for() {  # SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds
	local limit=$1 what=$2 i; shift 2
	for ((i = 0; i < limit * 4; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
	fail "not within ${limit}s: $what"
}
in_maildir() { grep -rqs -- "$1" "$ROOT/var/spool/estafette/maildir/root/new"; }
ip link set lo up || fail "ip link set lo up"
# As systemd would: ExecStartPre, then ExecStart in the foreground (Type=notify: no socket here).
# shellcheck disable=SC2086
r $PRE || fail "ExecStartPre failed: $PRE"
# shellcheck disable=SC2086
r $START &
estafetted=$!
wait_for 60 "estafette status says every daemon runs" r estafette status
r estafette status
owner=$(r stat -c %U /var/spool/estafette/queue)
[ "$owner" = estafette ] || fail "queue/ belongs to $owner, not to the user estafette"

echo "deb-test-sendmail-$$" | r /usr/sbin/sendmail root || fail "sendmail root failed"
wait_for 30 "sendmail's message in root's Maildir" in_maildir "deb-test-sendmail-$$"
timeout 60 python3 - "$MAILNAME" "$$" <<'PY' || fail "SMTP to 127.0.0.1:25 failed"
import smtplib, sys
with smtplib.SMTP("127.0.0.1", 25, timeout=30) as s:
    s.sendmail("someone@localhost", ["root@" + sys.argv[1]],
               "Subject: over SMTP\r\n\r\ndeb-test-smtp-%s\r\n" % sys.argv[2])
PY
wait_for 30 "the SMTP message in root's Maildir" in_maildir "deb-test-smtp-$$"

# No network here: example.com's DNS lookup fails temporarily and the message stays queued.
echo "deb-test-deferred-$$" | r /usr/sbin/sendmail someone@example.com ||
	fail "sendmail someone@example.com failed"
listed() { r mailq | grep -A1 "someone@example.com" | grep -q "4\.[0-9]\.[0-9]"; }
wait_for 60 "mailq lists the deferred message with its 4.x.x reply" listed
r mailq
# The classic /etc/aliases (postmaster: root) parses; estafetted reloads it.
r newaliases || fail "newaliases failed on /etc/aliases"
r estafette stop || fail "estafette stop failed"
# estafetted, started above, has ended (a zombie until waited for; this namespace's /proc).
ended() { [ "$(cut -d' ' -f3 "$ROOT/proc/$estafetted/stat" 2>/dev/null || echo Z)" = Z ]; }
wait_for 30 "estafetted ended after estafette stop" ended
wait "$estafetted"
r estafette status >/dev/null 2>&1 && fail "estafette status says running after stop"
r estafette start || fail "estafette start failed"
wait_for 60 "estafette status after estafette start" r estafette status
r estafette stop || fail "estafette stop (after estafette start) failed"
echo "inside: ok"
EOF
timeout 600 unshare --net --mount --pid --fork --mount-proc="$ROOT/proc" \
	bash "$WORK/inside.sh" "$ROOT" "$pre" "$start" "$mailname" || fail "the MTA at work (above)"
grep -q 'deb-test-deferred' -r "$ROOT/var/spool/estafette/queue" ||
	fail "the deferred message is not in the queue"

# --- apt remove keeps the queue, the mail and the config
step "apt remove estafette"
if ! T=300 in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q estafette \
	>"$WORK/remove.log" 2>&1; then
	tail -n 40 "$WORK/remove.log"
	fail "apt remove failed"
fi
[ "$(status_of estafette)" = "deinstall ok config-files" ] ||
	fail "estafette's status after remove: $(status_of estafette)"
[ ! -e "$ROOT/usr/sbin/sendmail" ] || fail "/usr/sbin/sendmail is still there"
[ -f "$ROOT/etc/estafette/estafette.conf" ] || fail "remove took /etc/estafette/estafette.conf"
grep -q 'deb-test-deferred' -r "$ROOT/var/spool/estafette/queue" ||
	fail "remove took the deferred message from the queue"
n=$(find "$ROOT/var/spool/estafette/maildir/root/new" -type f | wc -l)
[ "$n" -eq 2 ] || fail "root's Maildir holds $n messages after remove, not 2"

# --- apt purge takes them
step "apt purge estafette"
if ! T=300 in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q estafette \
	>"$WORK/purge.log" 2>&1; then
	tail -n 40 "$WORK/purge.log"
	fail "apt purge failed"
fi
for d in /etc/estafette /var/spool/estafette /var/log/estafette; do
	[ ! -e "$ROOT$d" ] || fail "$d is still there after purge"
done
[ -s "$ROOT/etc/aliases" ] || fail "purge took /etc/aliases, which is not Estafette's alone"
step "pass"
exit 0
