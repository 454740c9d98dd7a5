#!/usr/bin/env bash
# relay-compare.sh: the seed relay test against Estafette and then Postfix, in one run, at 400 B
# and 64 KiB; prints both results and Estafette/Postfix ratios (and the rig's direct ceiling with
# --direct). The machine is shared and noisy: only ratios measured in the same run mean much.
#   relay-compare.sh [--count400 N] [--count64k N] [--direct] [--only-estafette]
# RELAY_PORT and SINK_PORT (defaults 55125, 55225) move Estafette's relay and the sink, so that
# two runs on one machine do not meet (Postfix's relay stays on 55125: use them with
# --only-estafette); BENCH_DIR, EXTRA_CONF, ...: see estafette-relay.sh.
set -u
here=$(cd "$(dirname "$0")" && pwd)
shared=${SHARED_BENCH:-$here/../../shared/bench}
count400=20000 count64k=5000 direct=0 only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --count400) count400=$2; shift ;;
    --count64k) count64k=$2; shift ;;
    --direct) direct=1 ;;
    --only-estafette) only=1 ;;
    *) echo "usage: $0 [--count400 N] [--count64k N] [--direct] [--only-estafette]" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$shared/relay-bench.sh" ] || { echo "relay-compare: $shared/relay-bench.sh not found (set SHARED_BENCH)" >&2; exit 2; }

rate() { sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p' <<<"$1"; }
declare -A result
status=0
run() {  # label size count
  local out
  out=$("$shared/relay-bench.sh" --count "$3" --size "$2" --label "$1" \
    --relay "127.0.0.1:${RELAY_PORT:-55125}" --sink-port "${SINK_PORT:-55225}" ${4:-}) || status=1
  echo "$out"
  result[$1-$2]=$(rate "$out")
}

# Peak RSS (VmHWM) of the supervisor and every process below it, and their sum.
peak_rss() {
  local pidfile=${BENCH_DIR:-/tmp/estafette-relay}/state/run/estafetted.pid pids total=0 line
  [ -f "$pidfile" ] || return 0
  pids=$(cat "$pidfile")
  local frontier=$pids
  while [ -n "$frontier" ]; do
    frontier=$(for p in $frontier; do pgrep -P "$p"; done)
    pids="$pids $frontier"
  done
  line="estafette-rss:"
  for p in $pids; do
    local kb; kb=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
    [ -n "$kb" ] || continue
    line="$line $(cat /proc/$p/comm)=$((kb / 1024))MiB"
    total=$((total + kb))
  done
  echo "$line total=$((total / 1024))MiB"
}

PATH=$PATH:/usr/sbin
[ "$only" = 0 ] && { postfix stop >/dev/null 2>&1 || true; }  # leave another run's Postfix be
"$here/estafette-relay.sh" stop >/dev/null 2>&1 || true
for size in 400 65536; do
  count=$count400; [ "$size" = 65536 ] && count=$count64k
  if [ "$direct" = 1 ]; then
    run direct "$size" "$count" --direct
  fi
  "$here/estafette-relay.sh" start && "$here/estafette-relay.sh" clean
  run estafette "$size" "$count"
  peak_rss
  "$here/estafette-relay.sh" stop
  if [ "$only" = 0 ]; then
    "$shared/postfix-relay.sh" start >/dev/null && "$shared/postfix-relay.sh" clean
    run postfix "$size" "$count"
    "$shared/postfix-relay.sh" stop >/dev/null
  fi
done
echo "---"
for size in 400 65536; do
  e=${result[estafette-$size]:-0}; p=${result[postfix-$size]:-0}; d=${result[direct-$size]:-}
  line="size=$size estafette=$e msgs/s"
  [ "$only" = 0 ] && line="$line postfix=$p msgs/s ratio=$(awk -v e="$e" -v p="$p" 'BEGIN{printf "%.2f", (p > 0 ? e / p : 0)}')"
  [ -n "$d" ] && line="$line direct=$d msgs/s estafette/direct=$(awk -v e="$e" -v d="$d" 'BEGIN{printf "%.2f", (d > 0 ? e / d : 0)}')"
  echo "relay-compare: $line"
done
exit $status
