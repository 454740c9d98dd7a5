#!/usr/bin/env bash
# shim-pool.sh: does a slow libmilter callback delay other sessions (issue 19)? The seed relay
# test (`estafette-bench relay`) through Estafette with the shim's test filter
# tests/unit/filters/modules/slow_milter.so loaded as `module:`, twice per round: "quiet" (no
# slow session) and "slow": meanwhile --slow sessions each keep a callback asleep (MAIL
# FROM:<sleep-S@example.test>: the filter's eom sleeps S seconds, then rejects the message;
# each session starts again at once, so the callbacks stay busy for the whole run). Prints each
# run's msgs/s, p50 and p99 latency (send to arrival at the sink) and the medians' ratios
# slow/quiet (issue 19: within 10%). The default --slow 8 is more than the shim's old fixed
# pool of 4 workers per process, which made every other session wait for the sleepers.
#   ESTAFETTE=builddir bench/shim-pool.sh [--count N] [--rounds R] [--slow K] [--sleep S]
#                                         [--processes P] [--concurrency C] [--rate R]
# --rate R offers R messages per second open loop (`estafette-bench relay --rate`, each in a
# session of its own, --concurrency the cap), so that latency is measured below saturation
# instead of mostly queueing; each run's "late" (messages that waited for the cap) is printed
# with it. Default: none, the closed loop (--concurrency sessions always busy).
# MODULE=path.so measures another build of slow_milter.c (say, with an older shim).
# Each run's result.json, runs.csv and report.html go to $OUT/ROUND-KIND (default OUT: a new
# directory under /tmp).
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${ESTAFETTE:-$here/..}
count=10000 rounds=3 slow=8 sleep=5 processes=1 concurrency=250 offered=
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --slow) slow=$2; shift ;;
    --sleep) sleep=$2; shift ;;
    --processes) processes=$2; shift ;;
    --concurrency) concurrency=$2; shift ;;
    --rate) offered=$2; shift ;;
    *) echo "usage: $0 [--count N] [--rounds R] [--slow K] [--sleep S] [--processes P]" \
         "[--concurrency C] [--rate R]" >&2
       exit 2 ;;
  esac
  shift
done
module=${MODULE:-$bin/tests/unit/filters/modules/slow_milter.so}
for f in "$bin/estafette-bench" "$module"; do
  [ -e "$f" ] || { echo "shim-pool: $f not found (make check builds it)" >&2; exit 2; }
done
rate_args=()
[ -n "$offered" ] && rate_args=(--rate "$offered")
out=${OUT:-$(mktemp -d /tmp/shim-pool.XXXXXX)}
mkdir -p "$out"

# The slow sessions: wait for the relay of run directory $1 to listen, then keep $slow sessions
# each in a sleeping eom until killed (exec: $! is python's pid). Counts the sessions that sent
# their message (a callback asleep from then on) and those whose answer took the whole sleep.
slow_sessions() {
  exec python3 - "$1" "$slow" "$sleep" <<'EOF'
import glob, re, signal, smtplib, sys, threading, time
run_dir, count, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
port = None
for _ in range(600):
    for conf in glob.glob(run_dir + "/state/*/estafette.conf"):
        m = re.search(r"^listen = 127\.0\.0\.1:(\d+)$", open(conf).read(), re.M)
        port = int(m.group(1)) if m else None
    if port:
        break
    time.sleep(0.1)
slept, sent = [0], [0]
def session():
    while True:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=seconds + 60) as s:
                s.ehlo("slow.bench.test")
                s.mail("sleep-%d@example.test" % seconds)
                s.rcpt("slow@domain1.grey")
                start = time.monotonic()
                sent[0] += 1
                s.data(b"Subject: slow\r\n\r\nslow\r\n")
                if time.monotonic() - start >= seconds - 0.5:
                    slept[0] += 1
        except (OSError, smtplib.SMTPException):
            time.sleep(0.1)  # not listening yet, or gone
for _ in range(count):
    threading.Thread(target=session, daemon=True).start()
try:
    while True:
        time.sleep(1)
finally:
    print("slow sessions: %d messages sent, %d answered after the whole %d s sleep"
          % (sent[0], slept[0], seconds), flush=True)
EOF
}

declare -A p50 p99 rate
order=(quiet slow)
status=0
for r in $(seq "$rounds"); do
  for kind in "${order[@]}"; do
    dir=$out/$r-$kind
    helper=
    if [ "$kind" = slow ]; then
      slow_sessions "$dir" >"$out/$r-slow-sessions.log" 2>&1 &
      helper=$!
    fi
    "$bin/estafette-bench" relay --messages "$count" --label "$kind" --quiet --out "$dir" \
      --concurrency "$concurrency" --esmtpd-processes "$processes" \
      --conf "filters = module:$module" "${rate_args[@]}" >/dev/null || status=1
    if [ -n "$helper" ]; then
      kill "$helper" 2>/dev/null
      wait "$helper" 2>/dev/null
      cat "$out/$r-slow-sessions.log"
    fi
    read -r m a b late < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["runs"][0]["summary"]
print(s["msgs_per_s"], s.get("p50_ms", 0), s.get("p99_ms", 0), s.get("late", "-"))' \
      "$dir/result.json") || status=1
    extra=${offered:+ rate=$offered late=$late}
    echo "shim-pool: round $r $kind: msgs_per_s=$m p50_ms=$a p99_ms=$b$extra"
    rate[$kind]="${rate[$kind]:-} $m" p50[$kind]="${p50[$kind]:-} $a" p99[$kind]="${p99[$kind]:-} $b"
  done
  order=("${order[@]:1}" "${order[0]}")  # rotate, so no kind always runs first
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
for kind in quiet slow; do
  echo "shim-pool: $kind (medians of $rounds): msgs_per_s=$(median <<<"${rate[$kind]}")" \
    "p50_ms=$(median <<<"${p50[$kind]}") p99_ms=$(median <<<"${p99[$kind]}")"
done
ratio() { awk -v a="$(median <<<"$1")" -v b="$(median <<<"$2")" 'BEGIN{printf "%.3f", (b > 0 ? a / b : 0)}'; }
echo "shim-pool: slow/quiet: p50=$(ratio "${p50[slow]}" "${p50[quiet]}")" \
  "p99=$(ratio "${p99[slow]}" "${p99[quiet]}") msgs_per_s=$(ratio "${rate[slow]}" "${rate[quiet]}")" \
  "(slow sessions: $slow, sleep ${sleep}s, esmtpd processes: $processes," \
  "concurrency: $concurrency${offered:+, rate: $offered/s})"
exit $status
