#!/usr/bin/env bash
# queue-flat.sh: does a full queue slow the relay? The seed relay test (`estafette-bench relay`,
# 400 B) against a throwaway Estafette with an empty queue, then against one that first queued
# --queued messages for a destination that is down (`--prefill N --prefill-to user@dead.grey`,
# dead.grey routed to 127.0.0.1:DEAD_PORT where nothing listens). Prints both rates, their ratio
# (full/empty; the goal is >= 0.90) and courierd's peak RSS per phase. Everything of the measured
# runs must arrive (lost=0).
#   queue-flat.sh [--queued N] [--count N] [--rounds R] [--dead refused|silent]
#                 [--host-backoff DURATION]
#   ESTAFETTE   the build directory (default: the source tree, an in-tree build)
#   DEAD_PORT   the dead destination's port (default: a free one)
#   OUT         where each run's result.json and report.html go (default: a new /tmp directory)
#   STATE_DIR   the relays' state (default: under OUT); tmpfs (/dev/shm/...) isolates the runs
#               from what the file system does with the inodes other runs deleted
# --dead refused (default): nothing listens, connections are refused at once. --dead silent: a
# listener that never accepts nor answers. Each phase runs R times (default 3), alternating;
# ratio compares the best runs (the least disturbed on a shared machine), worst_ratio the slowest.
# --host-backoff sets courierd's host_backoff (default 5s, so that the dead destination is
# retried during the measured runs).
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${ESTAFETTE:-$here/..}
queued=100000 count=20000 rounds=3 backoff=5s dead=refused
while [ $# -gt 0 ]; do
  case "$1" in
    --queued) queued=$2; shift ;;
    --count) count=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --host-backoff) backoff=$2; shift ;;
    --dead) dead=$2; shift ;;
    *) echo "usage: $0 [--queued N] [--count N] [--rounds R] [--dead refused|silent] [--host-backoff DURATION]" >&2; exit 2 ;;
  esac
  shift
done
out=${OUT:-$(mktemp -d /tmp/queue-flat.XXXXXX)}
mkdir -p "$out"
dead_port=${DEAD_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
case "$dead" in
  refused) ;;
  silent)
    python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); time.sleep(86400)' "$dead_port" &
    dead_pid=$!
    trap 'kill "$dead_pid" 2>/dev/null' EXIT ;;
  *) echo "queue-flat: --dead refused|silent" >&2; exit 2 ;;
esac

status=0
declare -A rates rss
for round in $(seq "$rounds"); do
  for phase in empty full; do
    extra=()
    [ "$phase" = full ] && extra=(--prefill "$queued" --prefill-to user@dead.grey)
    line=$("$bin/estafette-bench" relay --quiet --size 400 --messages "$count" --label "$phase" \
      --route "dead.grey:127.0.0.1,$dead_port" --conf "host_backoff = $backoff" \
      ${STATE_DIR:+--state-dir "$STATE_DIR/$round-$phase"} --out "$out/$round-$phase" \
      "${extra[@]}" | grep "^estafette $phase size=") || status=1
    echo "$line"
    rates[$phase]="${rates[$phase]:-} $(sed -n 's/.*: msgs_per_s=\([0-9.]*\).*/\1/p' <<<"$line")"
    rss[$phase]="${rss[$phase]:-} $(sed -n 's/.*rss_mib_estafette_courierd=\([0-9.]*\).*/\1/p' <<<"$line")"
  done
done
echo "---"
awk -v e="${rates[empty]}" -v f="${rates[full]}" -v re="${rss[empty]}" -v rf="${rss[full]}" \
    -v q="$queued" -v n="$count" '
  function best(list,   v, k, m) { k = split(list, v, " "); m = 0; for (i = 1; i <= k; i++) if (v[i] + 0 > m) m = v[i] + 0; return m }
  function worst(list,   v, k, m) { k = split(list, v, " "); m = -1; for (i = 1; i <= k; i++) if (m < 0 || v[i] + 0 < m) m = v[i] + 0; return m }
  BEGIN {
    be = best(e); bf = best(f); we = worst(e); wf = worst(f)
    printf "queue-flat: count=%d empty=%d msgs/s (%s) full(queued=%d)=%d msgs/s (%s) ratio=%.2f worst_ratio=%.2f\n",
      n, be, e, q, bf, f, (be > 0 ? bf / be : 0), (we > 0 ? wf / we : 0)
    printf "queue-flat: courierd peak rss MiB empty=%s full=%s\n", re, rf
  }'
exit $status
