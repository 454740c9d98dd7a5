#!/usr/bin/env bash
# queue-flat.sh: does a full queue slow the relay? The seed relay test (400 B) against Estafette
# with an empty queue, then again after --queued messages were queued for a destination that is
# down (dead.grey, routed to 127.0.0.1:DEAD_PORT where nothing listens). Prints both rates, their
# ratio (full/empty; the goal is >= 0.90), courierd's RSS and CPU per phase, and courierd's
# memory per queued message. Everything must arrive (lost=0) and every dead.grey message must
# still be queued at the end.
#   queue-flat.sh [--queued N] [--count N] [--rounds R] [--dead refused|silent]
#                 [--host-backoff DURATION] [--settle SECS] [--perf DIR]
#   ESTAFETTE     build directory (as for estafette-relay.sh)
#   BENCH_DIR     state and config (default /tmp/estafette-relay-flat); the last run's log is
#                 kept as $BENCH_DIR/last.log
#   DEAD_PORT     the dead destination's port (default 55299; must be closed)
# --dead refused (default): nothing listens, connections are refused at once. --dead silent: a
# listener that never accepts nor answers (connects hang until connect_timeout, or the greeting
# never comes), like a host that is down behind a firewall or overloaded.
# Each phase runs the relay test R times (default 3); ratio compares the best runs (the least
# disturbed on a shared machine), worst_ratio the slowest ones (a stall after queueing shows
# there). --host-backoff sets courierd's host_backoff (default 5s, so that the dead destination
# is retried during the measured runs). --perf DIR records `perf record -g` of courierd and
# esmtpd during each phase's first run into DIR.
# --settle SECS: `sync` and wait SECS before each measured run and after the final clean-up.
# On an ext4 without a journal (this machine's /) every file created skips the inodes deleted in
# the last 60 s (360 s while their inode table block is dirty), so a run is slowed by whatever
# deleted many files just before it, ours or another benchmark's; --settle 65 makes the runs
# start alike. BENCH_DIR on tmpfs (/dev/shm/...) avoids the effect and isolates the daemons.
# The relay uses the seed test's ports: run it under `flock /tmp/estafette-bench.lock`.
set -u
here=$(cd "$(dirname "$0")" && pwd)
shared=${SHARED_BENCH:-$here/../../shared/bench}
queued=100000 count=20000 rounds=3 backoff=5s perfdir= dead=refused settle=0
while [ $# -gt 0 ]; do
  case "$1" in
    --queued) queued=$2; shift ;;
    --count) count=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --host-backoff) backoff=$2; shift ;;
    --perf) perfdir=$2; shift ;;
    --dead) dead=$2; shift ;;
    --settle) settle=$2; shift ;;
    *) echo "usage: $0 [--queued N] [--count N] [--rounds R] [--dead refused|silent] [--host-backoff DURATION] [--settle SECS] [--perf DIR]" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$shared/relay-bench.sh" ] || { echo "queue-flat: $shared/relay-bench.sh not found (set SHARED_BENCH)" >&2; exit 2; }
PATH=$PATH:/usr/sbin
export BENCH_DIR=${BENCH_DIR:-/tmp/estafette-relay-flat}
dead_port=${DEAD_PORT:-55299}
export EXTRA_ROUTES="dead.grey:127.0.0.1,$dead_port"
export EXTRA_CONF="host_backoff = $backoff"
relay=$here/estafette-relay.sh
log=$BENCH_DIR/estafette.log
msgdir=$BENCH_DIR/state/queue/msg
hz=$(getconf CLK_TCK)

if (exec 3<>"/dev/tcp/127.0.0.1/$dead_port") 2>/dev/null; then
  echo "queue-flat: something listens on 127.0.0.1:$dead_port (set DEAD_PORT)" >&2; exit 2
fi

# The daemon's pid (for esmtpd: its first process, "1/N", when there are several).
pid_of() { sed -n "s/.*started estafette-$1\( 1\/[0-9]*\)\{0,1\} pid=\([0-9]*\).*/\2/p" "$log" | tail -1; }
cpu_s() { awk -v hz="$hz" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
rss_kb() { awk -v k="${2:-VmRSS}" '$1 == k ":" {print $2}' "/proc/$1/status"; }
queued_lines() { grep -c ' queued id=' "$log"; }
queue_files() {  # messages still queued, read by the integration tests' own queue parser
  python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import harness
print(len(harness.queued_ids(sys.argv[2])))' "$here/../tests/integration" "$(dirname "$msgdir")"
}
rate() { sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p' <<<"$1"; }
settle() { if [ "$settle" -gt 0 ]; then sync; sleep "$settle"; fi; }

dead_attempts() { grep -c "remote=\[127.0.0.1\]:$dead_port .*host_failed=yes" "$log"; }
case "$dead" in
  refused) ;;
  silent)
    python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); time.sleep(86400)' "$dead_port" &
    dead_pid=$! ;;
  *) echo "queue-flat: --dead refused|silent" >&2; exit 2 ;;
esac
# Never leave the relay on the shared ports (nor the dead listener), whatever happens.
trap '"$relay" stop >/dev/null 2>&1; [ -n "${dead_pid:-}" ] && kill "$dead_pid" 2>/dev/null' EXIT

mkdir -p "$BENCH_DIR"
"$relay" stop >/dev/null 2>&1 || true
"$relay" clean >/dev/null
"$relay" start || exit 1
for _ in $(seq 50); do [ -n "$(pid_of courierd)" ] && break; sleep 0.1; done
cpid=$(pid_of courierd) epid=$(pid_of esmtpd)
[ -n "$cpid" ] && [ -n "$epid" ] || { echo "queue-flat: no courierd/esmtpd pid in $log" >&2; exit 1; }
status=0

# One phase: the relay test $rounds times; sets best and worst (msgs/s) and all (every rate).
phase() {  # label
  local out r i perf_pids=()
  best=0 worst= all=
  for i in $(seq "$rounds"); do
    settle
    if [ -n "$perfdir" ] && [ "$i" = 1 ]; then
      mkdir -p "$perfdir"
      perf record -q -g -p "$cpid" -o "$perfdir/$1-courierd.data" >/dev/null 2>&1 & perf_pids+=($!)
      perf record -q -g -p "$epid" -o "$perfdir/$1-esmtpd.data" >/dev/null 2>&1 & perf_pids+=($!)
      sleep 0.5
    fi
    out=$("$shared/relay-bench.sh" --count "$count" --size 400 --label "$1") || status=1
    echo "$out"
    for p in "${perf_pids[@]}"; do kill -INT "$p"; wait "$p"; done
    perf_pids=()
    r=$(rate "$out"); r=${r:-0}
    all="$all${all:+,}$r"
    [ "$r" -gt "$best" ] && best=$r
    if [ -z "$worst" ] || [ "$r" -lt "$worst" ]; then worst=$r; fi
  done
  return 0
}

# 1. empty queue
c0=$(cpu_s "$cpid") e0=$(cpu_s "$epid")
phase empty-queue
r1=$best w1=$worst all1=$all
c1=$(cpu_s "$cpid") e1=$(cpu_s "$epid") rss1=$(rss_kb "$cpid")

# 2. queue $queued messages for the dead destination: 20 sessions, many messages per connection
want=$(( $(queued_lines) + queued ))
t0=$(date +%s.%N)
smtp-source -d -s 20 -m "$queued" -l 400 -f tester@domain9.grey -t user@dead.grey \
  "127.0.0.1:$(sed -n 's/^listen = .*:\([0-9]*\)$/\1/p' "$BENCH_DIR/estafette.conf")" >/dev/null 2>&1 ||
  echo "queue-flat: smtp-source reported an error" >&2
# accepted means: indexed by courierd (a " queued id=" log line each)
end=$(( $(date +%s) + 120 + queued / 200 ))
while [ "$(queued_lines)" -lt "$want" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 0.5; done
t1=$(date +%s.%N)
have=$(( $(queued_lines) - want + queued ))
c2=$(cpu_s "$cpid") e2=$(cpu_s "$epid") rss2=$(rss_kb "$cpid")
echo "queue-flat: queued=$have of $queued in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}') s; courierd cpu=$(awk -v a="$c1" -v b="$c2" 'BEGIN{printf "%.2f", b - a}') s rss=${rss2} KiB"
[ "$have" -ge "$queued" ] || status=1

# 3. the same relay test with the full queue
d0=$(dead_attempts)
phase full-queue
r2=$best w2=$worst all2=$all
c3=$(cpu_s "$cpid") e3=$(cpu_s "$epid") rss3=$(rss_kb "$cpid") hwm=$(rss_kb "$cpid" VmHWM)
left=$(queue_files)
[ "$left" -ge "$queued" ] || { echo "queue-flat: only $left messages left in the queue, expected $queued" >&2; status=1; }
d1=$(dead_attempts)

echo "---"
awk -v r1="$r1" -v r2="$r2" -v w1="$w1" -v w2="$w2" -v a1="$all1" -v a2="$all2" -v q="$queued" -v n="$count" -v left="$left" \
    -v d0="$d0" -v d1="$d1" \
    -v c01="$(awk -v a="$c0" -v b="$c1" 'BEGIN{print b - a}')" \
    -v c23="$(awk -v a="$c2" -v b="$c3" 'BEGIN{print b - a}')" \
    -v e01="$(awk -v a="$e0" -v b="$e1" 'BEGIN{print b - a}')" \
    -v e23="$(awk -v a="$e2" -v b="$e3" 'BEGIN{print b - a}')" \
    -v rss1="$rss1" -v rss2="$rss2" -v rss3="$rss3" -v hwm="$hwm" 'BEGIN {
  printf "queue-flat: count=%d empty=%d msgs/s (%s) full(queued=%d)=%d msgs/s (%s) ratio=%.2f worst_ratio=%.2f\n",
    n, r1, a1, q, r2, a2, (r1 > 0 ? r2 / r1 : 0), (w1 > 0 ? w2 / w1 : 0)
  printf "queue-flat: left_queued=%d dead_host_attempts=%d (during the full-queue runs: %d)\n",
    left, d1, d1 - d0
  printf "queue-flat: courierd cpu empty=%.2fs full=%.2fs; esmtpd cpu empty=%.2fs full=%.2fs\n",
    c01, c23, e01, e23
  printf "queue-flat: courierd rss empty=%d KiB queued=%d KiB after=%d KiB peak=%d KiB bytes_per_queued=%.0f\n",
    rss1, rss2, rss3, hwm, (q > 0 ? (rss2 - rss1) * 1024 / q : 0) }'
"$relay" stop >/dev/null
cp "$log" "$BENCH_DIR/last.log"
"$relay" clean >/dev/null
settle
exit $status
