#!/usr/bin/env bash
# cores.sh: does Estafette scale with cores? Runs the seed relay test
# (../shared/bench/relay-bench.sh: 5 smtp-source processes x 50 sessions, one message per
# connection, relayed to the sink on 55225) against Estafette (bench/estafette-relay.sh) set up
#   1c    confined to CPU 0: `taskset -c 0` on estafetted, inherited by every daemon and module;
#         esmtpd_processes = esmtpclient_processes = 1
#   2c    on CPUs 0 and 1: `taskset -c 0,1`; esmtpd_processes = esmtpclient_processes = 2
#   2c1p  (with --with-2c1p) on CPUs 0 and 1 but one esmtpd and one esmtpclient: how much the
#         second core gives without more processes (courierd and the modules move off esmtpd's)
# at 400 B and 64 KiB, and prints msgs/s of each and the 2c/1c ratio (medians of --rounds runs,
# the configurations interleaved so that drift of the shared machine hits them alike).
# The load generator and the sink are not pinned: they run on whatever CPU is free.
#
#   cores.sh [--rounds N] [--count400 N] [--count64k N] [--sizes "400 65536"] [--with-2c1p]
#
# Each measurement (start, run, stop) holds flock $BENCH_LOCK (default /tmp/estafette-bench.lock),
# the lock every benchmark on this machine takes, and uses the default ports 55125 and 55225
# only while holding it. Already holding that lock (`flock LOCK bench/cores.sh`)? Set BENCH_LOCK=
# (empty), or the nested flock waits for ever.
#   BENCH_DIR     Estafette's state and config (default /tmp/estafette-relay-cores)
#   ESTAFETTE     the build directory (default: the source tree, an in-tree build)
#   SHARED_BENCH  where relay-bench.sh is (default ../../shared/bench from here)
# Before each run it waits SETTLE (12 s), then up to QUIET_WAIT (300 s) for the machine to be
# quiet (< 15% busy).
# Output: one `cores: run ...` line per measurement: relay-bench's line plus the configuration,
# the CPUs Estafette's processes were allowed, the CPU seconds used during the run by Estafette,
# by the rig (relay-bench, smtp-source, the sink), by the whole machine, and by everything else
# (other_cpu_s: other agents' work, and kernel work not charged to a process such as softirqs),
# how busy the machine was just before, and Estafette's CPU seconds per program. Then per size:
#   cores: size=400 1c=N msgs/s 2c=N msgs/s ratio_2c_1c=R [2c1p=N msgs/s] paired_ratio=R
#          rounds=N | undisturbed rounds=K 1c=N 2c=N ratio_2c_1c=R paired_ratio=R
# Exit status 0 only when every run delivered every message.
set -u
here=$(cd "$(dirname "$0")" && pwd)
shared=${SHARED_BENCH:-$here/../../shared/bench}
export BENCH_DIR=${BENCH_DIR:-/tmp/estafette-relay-cores}
lock=${BENCH_LOCK-/tmp/estafette-bench.lock}

# config -> "cpus esmtpd_processes esmtpclient_processes"
declare -A setup=([1c]="0 1 1" [2c]="0,1 2 2" [2c1p]="0,1 1 1")

# Sum of utime+stime (and that of reaped children) of a process and all its descendants, in s.
tree_cpu() {
  local todo=("$1") pid ticks=0 stat
  while [ ${#todo[@]} -gt 0 ]; do
    pid=${todo[0]}; todo=("${todo[@]:1}")
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    stat=${stat##*) }  # fields after "(comm) ", starting with field 3
    ticks=$(( ticks + $(awk '{print $12 + $13 + $14 + $15}' <<<"$stat") ))
    todo+=($(cat "/proc/$pid/task/$pid/children" 2>/dev/null))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", t / hz}'
}

# CPU seconds per program in the tree: "esmtpd:5.10,courierd:1.20,..." (processes of one
# program summed; utime+stime of the live processes only).
tree_cpu_by_program() {
  local todo=("$1") pid stat prog out=""
  while [ ${#todo[@]} -gt 0 ]; do
    pid=${todo[0]}; todo=("${todo[@]:1}")
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    prog=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -1)
    prog=${prog##*/}; prog=${prog#estafette-}
    out="$out $prog $(awk '{print $12 + $13}' <<<"${stat##*) }")"
    todo+=($(cat "/proc/$pid/task/$pid/children" 2>/dev/null))
  done
  awk -v hz="$(getconf CLK_TCK)" '{ for (i = 1; i < NF; i += 2) { if (!($i in t)) o[++n] = $i; t[$i] += $(i + 1) } }
    END { for (i = 1; i <= n; i++) printf "%s%s:%.2f", (i > 1 ? "," : ""), o[i], t[o[i]] / hz }' <<<"$out"
}

# The distinct CPU lists the process tree may run on ("0" or "0,1"; more than one: a leak).
tree_cpus() {
  local todo=("$1") pid lists=()
  while [ ${#todo[@]} -gt 0 ]; do
    pid=${todo[0]}; todo=("${todo[@]:1}")
    lists+=("$(taskset -pc "$pid" 2>/dev/null | sed 's/.*: //')")
    todo+=($(cat "/proc/$pid/task/$pid/children" 2>/dev/null))
  done
  printf '%s\n' "${lists[@]}" | sort -u | paste -sd/ -
}

# Busy CPU seconds of the whole machine so far (all CPUs; from /proc/stat, in clock ticks).
machine_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }

# Waits SETTLE seconds (default 12: the previous instance's exit and writeback), then (up to
# QUIET_WAIT seconds, default 300) until the machine is quiet: under 15% of all CPUs busy over
# 2 s. Other agents' builds do not take the benchmark lock; measuring next to one measures the
# build. Prints the busy percentage it last saw.
# (No pause is long enough for one effect: ext4 without a journal, as on this machine's /, skips
# every free inode deleted in the last 60 s, 360 s while its inode table block is dirty, when it
# allocates one; each run's thousands of deleted queue files slow file creation for minutes.
# Interleaving the configurations spreads that over all of them alike.)
wait_quiet() {
  sleep "${SETTLE:-12}"
  local deadline=$(( $(date +%s) + ${QUIET_WAIT:-300} )) b0 b1 pct
  while :; do
    b0=$(machine_busy); sleep 2; b1=$(machine_busy)
    pct=$(( (b1 - b0) * 100 / (2 * $(getconf CLK_TCK) * $(nproc --all)) ))
    if [ "$pct" -lt 15 ] || [ "$(date +%s)" -ge "$deadline" ]; then echo "$pct"; return; fi
  done
}

# CPU seconds used by this shell's reaped children so far (relay-bench, smtp-source, the sink).
# (`times` must run in this shell, not in a pipeline's or $(...)'s subshell: those start at 0.)
children_cpu() {
  local f
  f=$(mktemp)
  times >"$f"
  awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$f"
  rm -f "$f"
}

count_procs() { pgrep -f "$1 .*$BENCH_DIR/estafette.conf" | wc -l; }

# One measurement: cores.sh --one CONFIG SIZE COUNT (run under the lock by the main loop).
one() {
  local config=$1 size=$2 count=$3 cpus esmtpd clients relay=$here/estafette-relay.sh
  read -r cpus esmtpd clients <<<"${setup[$config]}"
  export CPUS=$cpus ESMTPD_PROCESSES=$esmtpd ESMTPCLIENT_PROCESSES=$clients
  "$relay" stop >/dev/null 2>&1
  if (exec 3<>/dev/tcp/127.0.0.1/55125) 2>/dev/null; then
    echo "cores: something else listens on 127.0.0.1:55125; not measuring" >&2; return 2
  fi
  "$relay" clean && "$relay" start || return 2
  local pid got_esmtpd got_clients line cpu allowed by_program
  pid=$(cat "$BENCH_DIR/state/run/estafetted.pid")
  for _ in $(seq 50); do
    got_esmtpd=$(count_procs estafette-esmtpd); got_clients=$(count_procs estafette-esmtpclient)
    [ "$got_esmtpd" = "$esmtpd" ] && [ "$got_clients" = "$clients" ] && break
    sleep 0.1
  done
  allowed=$(tree_cpus "$pid")
  local idle_busy busy0 busy1 rig0 rig1
  idle_busy=$(wait_quiet)
  busy0=$(machine_busy)
  children_cpu >"$BENCH_DIR/rig0"
  line=$("$shared/relay-bench.sh" --count "$count" --size "$size" --label "$config")
  local status=$?
  children_cpu >"$BENCH_DIR/rig1"
  rig0=$(cat "$BENCH_DIR/rig0"); rig1=$(cat "$BENCH_DIR/rig1")
  busy1=$(machine_busy)
  cpu=$(tree_cpu "$pid")
  by_program=$(tree_cpu_by_program "$pid")
  "$relay" stop >/dev/null
  awk -v line="cores: run $line config=$config esmtpd=$got_esmtpd esmtpclient=$got_clients" \
      -v cpus="$allowed" -v est="$cpu" -v m=$((busy1 - busy0)) -v hz="$(getconf CLK_TCK)" \
      -v rig="$(awk -v a="$rig0" -v b="$rig1" 'BEGIN{print b - a}')" -v before="$idle_busy" \
      -v by="$by_program" 'BEGIN {
    m /= hz
    printf "%s allowed_cpus=%s estafette_cpu_s=%.2f rig_cpu_s=%.2f machine_cpu_s=%.2f other_cpu_s=%.2f busy_before_pct=%s cpu_by_program=%s\n",
      line, cpus, est, rig, m, m - est - rig, before, by }'

  [ "$allowed" = "$cpus" ] || { echo "cores: processes not confined to CPUs $cpus" >&2; return 1; }
  return $status
}

if [ "${1:-}" = --one ]; then
  shift
  one "$@"
  exit $?
fi

rounds=3 count400=20000 count64k=5000 sizes="400 65536" configs="1c 2c"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift ;;
    --count400) count400=$2; shift ;;
    --count64k) count64k=$2; shift ;;
    --sizes) sizes=$2; shift ;;
    --with-2c1p) configs="1c 2c 2c1p" ;;
    *) echo "usage: $0 [--rounds N] [--count400 N] [--count64k N] [--sizes LIST] [--with-2c1p]" >&2
       exit 2 ;;
  esac
  shift
done
[ -x "$shared/relay-bench.sh" ] || { echo "cores: $shared/relay-bench.sh not found (set SHARED_BENCH)" >&2; exit 2; }
command -v taskset >/dev/null || { echo "cores: taskset (util-linux) is needed" >&2; exit 2; }
[ "$(nproc --all)" -ge 2 ] || { echo "cores: needs a machine with 2 CPUs" >&2; exit 2; }

runs=$(mktemp)
status=0
for size in $sizes; do
  count=$count400; [ "$size" -gt 400 ] && count=$count64k
  for round in $(seq "$rounds"); do
    for config in $configs; do
      if [ -n "$lock" ]; then
        out=$(flock "$lock" "$0" --one "$config" "$size" "$count") || status=1
      else
        out=$("$0" --one "$config" "$size" "$count") || status=1
      fi
      echo "$out round=$round"
      echo "$out round=$round" >>"$runs"
    done
  done
done

# Per size: medians of each configuration's msgs/s over all runs and the ratio of the medians;
# the median of the per-round ratios (1c and 2c of one round ran back to back); and the same
# over the undisturbed rounds only: those where other processes (neither Estafette nor the load
# generator and sink) used under DISTURBED_PCT (default 15) % of the machine during both runs
# (softirqs alone, charged to no process, are 3-8%).
echo "---"
awk -v sizes="$sizes" -v ncpu="$(nproc --all)" -v limit="${DISTURBED_PCT:-15}" '
  function field(name,   m) { return match($0, " " name "=[^ ]*") ? substr($0, RSTART + length(name) + 2, RLENGTH - length(name) - 2) : "" }
  function median(list,   v, n, i, j, t) {
    n = split(list, v, " "); if (n == 0) return 0
    for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  /^cores: run / {
    k = field("size") SUBSEP field("config") SUBSEP field("round")
    rate[k] = field("msgs_per_s")
    quiet[k] = field("other_cpu_s") + 0 <= limit / 100 * field("total_s") * ncpu
    rounds[field("size")] = field("round") > rounds[field("size")] ? field("round") : rounds[field("size")]
  }
  END {
    n = split(sizes, sz, " ")
    for (i = 1; i <= n; i++) {
      s = sz[i]; all1 = all2 = allp = q1 = q2 = ratios = qratios = ""; nq = 0
      for (r = 1; r <= rounds[s]; r++) {
        a = s SUBSEP "1c" SUBSEP r; b = s SUBSEP "2c" SUBSEP r; p = s SUBSEP "2c1p" SUBSEP r
        all1 = all1 " " rate[a]; all2 = all2 " " rate[b]
        if (p in rate) allp = allp " " rate[p]
        if (rate[a] > 0) ratios = ratios " " rate[b] / rate[a]
        if (quiet[a] && quiet[b] && rate[a] > 0) { nq++; q1 = q1 " " rate[a]; q2 = q2 " " rate[b]; qratios = qratios " " rate[b] / rate[a] }
      }
      m1 = median(all1); m2 = median(all2)
      printf "cores: size=%s 1c=%d msgs/s 2c=%d msgs/s ratio_2c_1c=%.2f", s, m1, m2, (m1 > 0 ? m2 / m1 : 0)
      if (allp != "") printf " 2c1p=%d msgs/s", median(allp)
      printf " paired_ratio=%.2f rounds=%d", median(ratios), rounds[s]
      if (nq > 0)
        printf " | undisturbed rounds=%d 1c=%d 2c=%d ratio_2c_1c=%.2f paired_ratio=%.2f", nq, median(q1), median(q2), (median(q1) > 0 ? median(q2) / median(q1) : 0), median(qratios)
      else
        printf " | undisturbed rounds=0"
      printf "\n"
    }
  }' "$runs"
rm -f "$runs"
exit $status
