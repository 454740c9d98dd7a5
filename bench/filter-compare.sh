#!/usr/bin/env bash
# filter-compare.sh: the seed relay test (`estafette-bench relay`: one message per connection,
# 250 concurrent sessions) through Estafette five ways in one run: no filter; a native module
# in-process (tests/unit/filters/modules/envelope_module.c: at end of message it reads the
# recipients and the size and adds three headers; each header field goes to its header
# callback); the sample libmilter filter (filters/examples/sample_milter.c) in-process as a
# module, its callbacks on the shim's worker threads (`module:`) and on the event loop
# (`module-inline:`); the same module isolated in estafette-filterhost (`module-isolated:`); and
# the same source built against Debian's libmilter as an external milter. Prints msgs/s for each and the
# ratios to no filter (medians over --rounds, which rotate the order).
#   ESTAFETTE=builddir bench/filter-compare.sh [--count N] [--size BYTES] [--rounds R]
# Each run's result.json, runs.csv and report.html go to $OUT/ROUND-KIND (default OUT: a new
# directory under /tmp).
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${ESTAFETTE:-$here/..}
count=10000 size=400 rounds=1
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift ;;
    --size) size=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    *) echo "usage: $0 [--count N] [--size BYTES] [--rounds R]" >&2; exit 2 ;;
  esac
  shift
done
module=$bin/filters/examples/sample_milter.so
milter=$bin/filters/examples/sample_milter
native=$bin/tests/unit/filters/modules/envelope_module.so
for f in "$bin/estafette-bench" "$module" "$milter" "$native"; do
  [ -e "$f" ] || { echo "filter-compare: $f not found (make check builds the examples)" >&2; exit 2; }
done
out=${OUT:-$(mktemp -d /tmp/filter-compare.XXXXXX)}
mkdir -p "$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$milter" -p "inet:$port@127.0.0.1" >"$out/milter.log" 2>&1 &
milter_pid=$!
trap 'kill $milter_pid 2>/dev/null' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

declare -A conf=([none]="" [native]="filters = module:$native" [inproc]="filters = module:$module"
  [inline]="filters = module-inline:$module"
  [isolated]="filters = module-isolated:$module" [milter]="filters = milter:inet:$port@127.0.0.1")
declare -A rates
order=(none native inproc inline isolated milter)
status=0
for r in $(seq "$rounds"); do
  for kind in "${order[@]}"; do
    extra=()
    [ -n "${conf[$kind]}" ] && extra=(--conf "${conf[$kind]}")
    line=$("$bin/estafette-bench" relay --messages "$count" --size "$size" --label "$kind" \
      --quiet --out "$out/$r-$kind" "${extra[@]}" | grep "^estafette $kind size=") || status=1
    echo "$line"
    rates[$kind]="${rates[$kind]:-} $(sed -n 's/.*: msgs_per_s=\([0-9.]*\).*/\1/p' <<<"$line")"
  done
  order=("${order[@]:1}" "${order[0]}")  # rotate, so no kind always runs first
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
none=$(median <<<"${rates[none]}")
for kind in none native inproc inline isolated milter; do
  m=$(median <<<"${rates[$kind]}")
  echo "filter-compare: size=$size $kind=$m msgs/s (runs:${rates[$kind]}) ratio_to_none=$(awk -v a="$m" -v b="$none" 'BEGIN{printf "%.3f", (b > 0 ? a / b : 0)}')"
done
exit $status
