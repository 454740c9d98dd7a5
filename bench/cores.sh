#!/usr/bin/env bash
# cores.sh: does Estafette scale with cores? Runs the seed relay test (`estafette-bench relay`:
# 250 sessions, one message per connection, relayed to the sink) against a throwaway Estafette
# set up as
#   1c    confined to CPU 0 (`--cpus 0`: taskset on estafetted, inherited by every daemon and
#         module); esmtpd_processes = esmtpclient_processes = 1
#   2c    on CPUs 0 and 1 (`--cpus 0,1`); esmtpd_processes = esmtpclient_processes = 2
#   2c1p  (with --with-2c1p) on CPUs 0 and 1 but one esmtpd and one esmtpclient: how much the
#         second core gives without more processes (courierd and the modules move off esmtpd's)
# at 400 B and 64 KiB, and prints msgs/s of each and the 2c/1c ratio (medians of --rounds runs,
# the configurations interleaved so that drift of the shared machine hits them alike). The
# source and the sink are not pinned. Each run's CPU per program is in its result.json and
# report.html (OUT/SIZE-ROUND-CONFIG; default OUT: a new directory under /tmp).
#
#   cores.sh [--rounds N] [--count400 N] [--count64k N] [--sizes "400 65536"] [--with-2c1p]
#   ESTAFETTE  the build directory (default: the source tree, an in-tree build)
#   SETTLE     seconds to wait before each run (default 5: the previous instance's writeback)
# Output: one `cores: run config=C size=S round=R SUMMARY` line per measurement (SUMMARY: the
# relay's summary line), then per size:
#   cores: size=400 1c=N msgs/s 2c=N msgs/s ratio_2c_1c=R [2c1p=N msgs/s] paired_ratio=R rounds=N
# Exit status 0 only when every run delivered every message.
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${ESTAFETTE:-$here/..}
declare -A setup=([1c]="0 1" [2c]="0,1 2" [2c1p]="0,1 1")  # config -> "cpus processes"
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
command -v taskset >/dev/null || { echo "cores: taskset (util-linux) is needed" >&2; exit 2; }
[ "$(nproc --all)" -ge 2 ] || { echo "cores: needs a machine with 2 CPUs" >&2; exit 2; }
out=${OUT:-$(mktemp -d /tmp/cores.XXXXXX)}
mkdir -p "$out"
runs=$out/runs.txt
status=0
for size in $sizes; do
  count=$count400; [ "$size" -gt 400 ] && count=$count64k
  for round in $(seq "$rounds"); do
    for config in $configs; do
      read -r cpus procs <<<"${setup[$config]}"
      sleep "${SETTLE:-5}"
      line=$("$bin/estafette-bench" relay --quiet --size "$size" --messages "$count" \
        --label "$config" --cpus "$cpus" --esmtpd-processes "$procs" \
        --esmtpclient-processes "$procs" --out "$out/$size-$round-$config" |
        grep "^estafette $config size=") || status=1
      echo "cores: run config=$config size=$size round=$round $line" | tee -a "$runs"
    done
  done
done

# Per size: medians of each configuration's msgs/s and the ratio of the medians; the median of
# the per-round ratios (1c and 2c of one round ran back to back).
echo "---"
awk -v sizes="$sizes" '
  function field(name,   m) { return match($0, " " name "=[^ ]*") ? substr($0, RSTART + length(name) + 2, RLENGTH - length(name) - 2) : "" }
  function median(list,   v, n, i, j, t) {
    n = split(list, v, " "); if (n == 0) return 0
    for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  /^cores: run / {
    k = field("size") SUBSEP field("config") SUBSEP field("round")
    rate[k] = field("msgs_per_s")
    if (field("round") > rounds[field("size")]) rounds[field("size")] = field("round")
  }
  END {
    n = split(sizes, sz, " ")
    for (i = 1; i <= n; i++) {
      s = sz[i]; all1 = all2 = allp = ratios = ""
      for (r = 1; r <= rounds[s]; r++) {
        a = s SUBSEP "1c" SUBSEP r; b = s SUBSEP "2c" SUBSEP r; p = s SUBSEP "2c1p" SUBSEP r
        all1 = all1 " " rate[a]; all2 = all2 " " rate[b]
        if (p in rate) allp = allp " " rate[p]
        if (rate[a] > 0) ratios = ratios " " rate[b] / rate[a]
      }
      m1 = median(all1); m2 = median(all2)
      printf "cores: size=%s 1c=%d msgs/s 2c=%d msgs/s ratio_2c_1c=%.2f", s, m1, m2, (m1 > 0 ? m2 / m1 : 0)
      if (allp != "") printf " 2c1p=%d msgs/s", median(allp)
      printf " paired_ratio=%.2f rounds=%d\n", median(ratios), rounds[s]
    }
  }' "$runs"
exit $status
