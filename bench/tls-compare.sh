#!/usr/bin/env bash
# tls-compare.sh: the TLS variant of the seed relay test (issues 14 and 15) as one
# `estafette-bench relay` run (see estafette-bench(1)): N messages of 400 B, 250 concurrent
# sessions, one message per session, through a throwaway Estafette and a throwaway Postfix (root)
# to the kit's sink, each in plaintext, STARTTLS and STARTTLS resuming a TLS 1.3 session, with the
# rig's ceiling (the source straight into the sink, which then does the server side of TLS);
# then new TLS sessions per second against one esmtpd (Estafette on CPU 0, the source on CPU 1)
# with Estafette's CPU per session, full and resumed. The ratios line has estafette_over_postfix
# per mode (issue 14's goal: >= 5 with TLS) and tls_cost_percent per MTA (goal: < 30 resumed).
#   tls-compare.sh [--count N] [--handshakes N] [--cert ec|rsa] [--only-estafette] [--out DIR]
#   tls-compare.sh --outbound [--count N] [--only-estafette] [--out DIR]
#     --outbound  TLS on the outbound leg instead (issue 15): plaintext into the MTA, the sink
#                 offers STARTTLS; the sink's sessions, TLS sessions and resumed ones show the
#                 relay's connection reuse and session resumption.
#   ESTAFETTE  the build directory holding estafette-bench (default: the source tree's top, an
#              in-tree build); without a build there, the estafette-bench on PATH.
# To profile esmtpd during a run: `perf record -g -p "$(pgrep -d, estafette-esmtpd)"` from
# another shell (docs/benchmarks.md). Exit status 0 only when nothing was lost.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${ESTAFETTE:-$here/..}
bench=$bin/estafette-bench
[ -x "$bench" ] || bench=estafette-bench
count=5000 handshakes=3000 cert=ec mta=both outbound=0 out=()
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift ;;
    --handshakes) handshakes=$2; shift ;;
    --cert) cert=$2; shift ;;
    --only-estafette) mta=estafette ;;
    --outbound) outbound=1 ;;
    --out) out=(--out "$2"); shift ;;
    *) echo "usage: $0 [--count N] [--handshakes N] [--cert ec|rsa] [--only-estafette] [--outbound] [--out DIR]" >&2
       exit 2 ;;
  esac
  shift
done
if [ "$outbound" = 1 ]; then
  exec "$bench" relay --mta "$mta" --direct --outbound-tls --messages "$count" --cert "$cert" \
    "${out[@]}"
fi
exec "$bench" relay --mta "$mta" --direct --tls plain,starttls,resume --messages "$count" \
  --handshakes "$handshakes" --cert "$cert" "${out[@]}"
