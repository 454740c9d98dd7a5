#!/bin/sh
# fuzz.sh: the runs behind `make fuzz` (tests/fuzz/README.md). Runs each built target in turn
# (niced, one at a time) for FUZZ_SECONDS over its committed corpus; new inputs go to
# $OUT/work/<name>/, never into tests/fuzz/corpus/ unless FUZZ_MERGE=1 (then only the inputs
# that add coverage are merged in). A crash, leak, timeout or out-of-memory input is saved in
# $OUT/crashes/<name>/ and makes the run fail. Prints one summary line per target; the whole
# libFuzzer output is in $OUT/logs/<name>.log.
# Environment: SRCDIR, OUT, TARGETS, FUZZ_SECONDS, FUZZ_MERGE, FUZZ_TIMEOUT (seconds per input).
# Targets that write files (segment_scan) use TMPDIR: /dev/shm when there is one (no disk, fast
# fsync), unless TMPDIR is set.
set -u
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  TMPDIR=/dev/shm
  export TMPDIR
fi
seconds=${FUZZ_SECONDS:-60}
status=0
commit=$(git -C "$SRCDIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
summary=""
for name in $TARGETS; do
  bin=$OUT/${name}_fuzz
  corpus=$SRCDIR/tests/fuzz/corpus/$name
  work=$OUT/work/$name
  crashes=$OUT/crashes/$name
  log=$OUT/logs/$name.log
  mkdir -p "$work" "$crashes" "$OUT/logs" "$corpus"
  echo "fuzz: $name for ${seconds}s (log: $log)"
  nice -n 10 "$bin" -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" \
    "$work" "$corpus" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  if [ $rc -eq 0 ]; then
    result="clean"
    if [ "${FUZZ_MERGE:-0}" = 1 ]; then
      before=$(ls "$corpus" | wc -l)
      nice -n 10 "$bin" -merge=1 "$corpus" "$work" >>"$log" 2>&1 || status=1
      result="clean, merged $(($(ls "$corpus" | wc -l) - before)) new inputs"
    fi
  else
    status=1
    result="FAILED (exit $rc): $(ls "$crashes" | tr '\n' ' ')"
    grep -m 1 -E 'ERROR: |runtime error:|ABORTING|deadly signal' "$log" >&2
  fi
  summary="$summary$(printf '%-22s %6ss %12s execs %8s exec/s cov %6s  %s' "$name" "$seconds" \
    "${execs:-?}" "${rate:-?}" "${cov:-?}" "$result")
"
done
echo "fuzz summary (commit $commit):"
printf '%s' "$summary"
[ $status -eq 0 ] || echo "fuzz: crash inputs are in $OUT/crashes/; copy each into tests/fuzz/corpus/<name>/ with its fix" >&2
exit $status
