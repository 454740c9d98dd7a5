#!/usr/bin/env bash
# relay-compare.sh: the seed relay test against Estafette and then Postfix, in one run, at 400 B
# and 64 KiB, with the ratios (and the rig's direct ceiling with --direct): a thin wrapper over
# `estafette-bench relay --mta both` (see estafette-bench(1)); Postfix needs root. The machine is
# shared and noisy: only ratios measured in the same run mean much.
#   relay-compare.sh [--count400 N] [--count64k N] [--direct] [--only-estafette] [--out DIR]
#                    [-- more estafette-bench relay options]
#   ESTAFETTE  the build directory holding estafette-bench (default: the source tree's top, an
#              in-tree build); without a build there, the estafette-bench on PATH.
# Each size's result.json, runs.csv and report.html go to DIR/400 and DIR/65536 (default: a new
# directory under /tmp). Exit status 0 only when nothing was lost.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${ESTAFETTE:-$here/..}
bench=$bin/estafette-bench
[ -x "$bench" ] || bench=estafette-bench
count400=20000 count64k=5000 direct="" mta=both out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --count400) count400=$2; shift ;;
    --count64k) count64k=$2; shift ;;
    --direct) direct=--direct ;;
    --only-estafette) mta=estafette ;;
    --out) out=$2; shift ;;
    --) shift; break ;;
    *) echo "usage: $0 [--count400 N] [--count64k N] [--direct] [--only-estafette] [--out DIR] [-- OPTIONS]" >&2; exit 2 ;;
  esac
  shift
done
out=${out:-$(mktemp -d /tmp/relay-compare.XXXXXX)}
status=0
"$bench" relay --mta "$mta" $direct --size 400 --messages "$count400" --out "$out/400" "$@" || status=1
"$bench" relay --mta "$mta" $direct --size 65536 --messages "$count64k" --out "$out/65536" "$@" || status=1
exit $status
