#!/usr/bin/env bash
# tls-compare.sh: the TLS variant of the seed relay test (issue 14), in one run, with the
# project's own tools only (estafette-bench sink and source): N messages of 400 B, 250 concurrent
# sessions, one message per session, relayed to one sink, against
#   Estafette  a throwaway instance (bench/estafette-relay.sh in a temp dir) with a self-signed
#              certificate (tls_cert_file), relaying to the sink
#   Postfix    a throwaway instance (its own config_directory and queue_directory in the temp
#              dir, `postfix -c DIR start`), smtpd_tls_security_level = may, the same certificate,
#              relaying to the same sink
# each in plaintext, STARTTLS, and STARTTLS resuming the session (TLS 1.3 ticket); then new TLS
# handshakes per second against esmtpd on one core (esmtpd_processes = 1, Estafette pinned to
# CPU 0, the source to CPU 1), full and resumed. First the rig's ceiling (`direct`): the source
# straight into the sink, plaintext, STARTTLS and resumed (the sink then doing the server side of
# TLS itself). Each run also reports the CPU per message of the MTA's whole process tree and of
# the source (its TLS client side costs about what a server's does). Zero loss is checked: the sink must count every
# message the source had accepted. The machine is shared and noisy: only ratios measured within
# one run mean much.
#
#   tls-compare.sh [--count N] [--handshakes N] [--cert ec|rsa] [--only-estafette] [--perf]
#   tls-compare.sh --outbound [--count N] [--only-estafette]
#
#   --count N       messages per relay measurement (default 5000)
#   --handshakes N  sessions per handshake measurement (default 3000)
#   --cert          ECDSA P-256 (default) or RSA 2048 certificate for both MTAs
#   --perf          `perf record -g` esmtpd during Estafette's STARTTLS run (no resumption);
#                   the top of `perf report --stdio` goes to $TMP/perf.txt and is printed
#   --outbound      TLS on the outbound leg instead (issue 15): the source speaks plaintext to
#                   the MTA, the sink offers STARTTLS; Estafette with tls_policy = may (its
#                   default), Postfix with smtp_tls_security_level = may and its TLS session
#                   cache. The sink counts sessions, TLS sessions and resumed ones: connection
#                   reuse and session resumption show there. Summary:
#   tls-compare: outbound estafette/postfix=R (goal >= 5) ... sessions=N tls=N resumed=N
# Environment: ESTAFETTE (the build directory; default: the source tree, an in-tree build),
# RELAY_PORT (Estafette, default 55135), POSTFIX_PORT (55145), SINK_PORT (55235), KEEP_TMP=1 to
# keep the temp dir, BENCH_LOCK (default /tmp/estafette-bench.lock, held for the whole run;
# empty: no lock). Needs root for the Postfix instance (it runs as user postfix).
# Output: one `tls-compare: run ...` line per measurement, then the summary lines:
#   tls-compare: direct (rig ceiling) plain=N tls=N tls_resume=N msgs/s
#   tls-compare: mta=estafette plain=N tls=N tls_resume=N msgs/s (delivered) ... cpu_ms_per_msg ...
#   tls-compare: estafette_tls/postfix_tls=R (goal >= 5) ... tls_cost_resume=P% (goal < 30%)
#   tls-compare: handshakes_per_s one core: full=N resumed=N; esmtpd cpu us_per_session ...
#   tls-compare: lost=N
# Exit status 0 only when nothing was lost and every message was accepted.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${ESTAFETTE:-$here/..}
kit=$bin/estafette-bench
count=5000 handshakes=3000 cert_kind=ec only=0 perf=0 size=400 concurrency=250 outbound=0
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift ;;
    --handshakes) handshakes=$2; shift ;;
    --cert) cert_kind=$2; shift ;;
    --only-estafette) only=1 ;;
    --perf) perf=1 ;;
    --outbound) outbound=1 ;;
    *) echo "usage: $0 [--count N] [--handshakes N] [--cert ec|rsa] [--only-estafette] [--perf] [--outbound]" >&2
       exit 2 ;;
  esac
  shift
done
[ -x "$kit" ] || { echo "tls-compare: no $kit (build first, or set ESTAFETTE=builddir)" >&2; exit 2; }
PATH=$PATH:/usr/sbin
if [ "$only" = 0 ] && ! command -v postfix >/dev/null; then
  echo "tls-compare: Postfix is not installed (apt-get install postfix, or --only-estafette)" >&2
  exit 2
fi
relay_port=${RELAY_PORT:-55135} postfix_port=${POSTFIX_PORT:-55145} sink_port=${SINK_PORT:-55235}
lock=${BENCH_LOCK-/tmp/estafette-bench.lock}
if [ -n "$lock" ]; then exec 9>"$lock"; flock 9; fi
tmp=$(mktemp -d /tmp/tls-compare.XXXXXX)
chmod 755 "$tmp"
ulimit -n 65536 2>/dev/null || true
status=0

sink_pid=
cleanup() {
  [ -n "$sink_pid" ] && kill -TERM "$sink_pid" 2>/dev/null
  BENCH_DIR=$tmp/estafette ESTAFETTE=$bin "$here/estafette-relay.sh" stop >/dev/null 2>&1
  [ -d "$tmp/postfix/etc" ] && postfix -c "$tmp/postfix/etc" stop >/dev/null 2>&1
  if [ -n "${KEEP_TMP:-}" ]; then echo "tls-compare: files kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

for p in $relay_port $postfix_port $sink_port; do
  if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
    echo "tls-compare: something listens on 127.0.0.1:$p already; not measuring" >&2; exit 2
  fi
done

# One self-signed certificate for both MTAs.
cert=$tmp/cert.pem key=$tmp/key.pem
if [ "$cert_kind" = rsa ]; then alg=(-newkey rsa:2048); else alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); fi
openssl req -x509 "${alg[@]}" -nodes -keyout "$key" -out "$cert" -days 30 \
  -subj /CN=relay.bench.test -addext subjectAltName=DNS:relay.bench.test 2>/dev/null ||
  { echo "tls-compare: openssl req failed" >&2; exit 2; }
chmod 644 "$key" "$cert"  # read by esmtpd and Postfix's smtpd as their users; a throwaway key

declare -A result
# CPU seconds (utime+stime, and those of reaped children) of a process tree: Estafette under
# estafetted, Postfix under its master (smtpd processes that exited count in master's children).
tree_cpu() {
  local todo=("$@") pid ticks=0 stat
  while [ ${#todo[@]} -gt 0 ]; do
    pid=${todo[0]}; todo=("${todo[@]:1}")
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    stat=${stat##*) }
    ticks=$(( ticks + $(awk '{print $12 + $13 + $14 + $15}' <<<"$stat") ))
    todo+=($(cat "/proc/$pid/task/$pid/children" 2>/dev/null))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t / hz}'
}
mta_pid=
fields() { sed -n "s/.*[ :]$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# measure LABEL PORT [source options...]: one sink, one source run, zero-loss check.
measure() {
  local label=$1 port=$2; shift 2
  local out=$tmp/sink-$label.out
  local tls_opts=()
  [ -n "${direct_cert:-}" ] && tls_opts=(--tls-cert "$cert" --tls-key "$key")
  "$kit" sink --listen 127.0.0.1:$sink_port --count "$count" "${tls_opts[@]}" >"$out" 2>&1 &
  sink_pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$sink_port) 2>/dev/null && break; sleep 0.1; done
  local t0 src cpu0=0 cpu1=0
  [ -n "$mta_pid" ] && cpu0=$(tree_cpu "$mta_pid")
  t0=$(date +%s.%N)
  src=$(/usr/bin/time -f "source_cpu_s=%U+%S" "$kit" source --target 127.0.0.1:$port \
    --messages "$count" --concurrency $concurrency --size $size --from tester@domain9.grey \
    --to recip1@domain1.grey --timeout 600 "$@" 2>&1)
  # The relay drains into the sink: wait until it has everything, or 60 s without the sink
  # counting anything new.
  local last_seen=-1 idle=0
  while kill -0 $sink_pid 2>/dev/null && [ $idle -lt 300 ]; do
    sleep 0.2
    local seen; seen=$(stat -c %s "$out" 2>/dev/null)
    idle=$((idle + 1))
    # (the sink prints only at the end; its CPU time tells whether it still works)
    local ticks; ticks=$(awk '{print $14 + $15}' /proc/$sink_pid/stat 2>/dev/null)
    if [ "$ticks" != "$last_seen" ]; then last_seen=$ticks; idle=0; fi
  done
  [ -n "$mta_pid" ] && cpu1=$(tree_cpu "$mta_pid")
  kill -TERM $sink_pid 2>/dev/null; wait $sink_pid 2>/dev/null
  sink_pid=
  local sink_line; sink_line=$(grep '^sink:' "$out")
  local sent failed received last accept rate lost
  sent=$(fields sent "$src"); failed=$(fields failed "$src")
  received=$(fields messages "$sink_line"); last=$(fields last "$sink_line")
  accept=$(fields msgs_per_s "$src")
  sent=${sent:-0}; failed=${failed:-$count}; received=${received:-0}
  lost=$((sent - received))
  rate=$(awk -v r="$received" -v t0="$t0" -v tl="${last:-0}" 'BEGIN{printf "%.0f", (r > 0 && tl > t0 ? r / (tl - t0) : 0)}')
  [ "$lost" = 0 ] && [ "$failed" = 0 ] || status=1
  # CPU per message: the MTA's whole tree, and the load generator (its TLS client side costs
  # about what a server's does: on 2 CPUs it takes a share of what the MTA could have).
  local src_cpu mta_ms src_ms
  src_cpu=$(sed -n 's/.*source_cpu_s=\([0-9.+]*\).*/\1/p' <<<"$src" | awk -F+ '{print $1 + $2}')
  mta_ms=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$received" 'BEGIN{printf "%.2f", (n > 0 ? 1000 * (b - a) / n : 0)}')
  src_ms=$(awk -v c="${src_cpu:-0}" -v n="$count" 'BEGIN{printf "%.2f", 1000 * c / n}')
  echo "tls-compare: run label=$label sent=$sent failed=$failed received=$received lost=$lost" \
    "msgs_per_s=$rate accept_msgs_per_s=$accept handshakes=$(fields handshakes "$src")" \
    "resumed=$(fields resumed "$src") source_elapsed_s=$(fields elapsed_s "$src")" \
    "mta_cpu_ms_per_msg=$mta_ms source_cpu_ms_per_msg=$src_ms" \
    "sink_sessions=$(fields sessions "$sink_line") sink_tls=$(fields tls_sessions "$sink_line")" \
    "sink_resumed=$(fields tls_resumed "$sink_line")"
  result[sink_$label]="sessions=$(fields sessions "$sink_line") tls=$(fields tls_sessions "$sink_line") resumed=$(fields tls_resumed "$sink_line")"
  result[cpu_$label]=$mta_ms
  if [ "$failed" != 0 ]; then grep -i 'first failure' <<<"$src" | sed 's/^/tls-compare:   /'; fi
  result[$label]=$rate
  total_lost=$((${total_lost:-0} + lost))
}

# postfix_start SMTP_TLS_LEVEL: a throwaway Postfix relaying to the sink; mta_pid is its master.
postfix_start() {
  pf=$tmp/postfix
  mkdir -p "$pf/etc" "$pf/queue" "$pf/data"
  chown postfix "$pf/data"
  cat >"$pf/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
syslog_name = postfix-tlsbench
maillog_file = $pf/maillog
maillog_file_prefixes = $pf
myhostname = relay.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = domain1.grey domain2.grey domain3.grey domain4.grey domain5.grey
relayhost = [127.0.0.1]:$sink_port
smtp_dns_support_level = disabled
smtp_host_lookup = native
default_destination_concurrency_limit = 250
smtp_destination_concurrency_limit = 250
relay_destination_concurrency_limit = 250
default_process_limit = 300
smtpd_client_connection_count_limit = 500
smtpd_client_connection_rate_limit = 0
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
local_recipient_maps =
notify_classes =
biff = no
smtpd_tls_security_level = may
smtpd_tls_cert_file = $cert
smtpd_tls_key_file = $key
smtpd_tls_session_cache_database = btree:\${data_directory}/smtpd_scache
smtp_tls_security_level = $1
smtp_tls_session_cache_database = btree:\${data_directory}/smtp_scache
CF
  # Debian's master.cf without its inet services, plus smtpd on our port (as the seed relay
  # test: no header/body checks) and postlog for maillog_file.
  master=/etc/postfix/master.cf.proto; [ -f /etc/postfix/master.cf.orig ] && master=/etc/postfix/master.cf.orig
  [ -f "$master" ] || master=/etc/postfix/master.cf
  awk -v port="$postfix_port" '
    /^[^#[:space:]]+[[:space:]]+inet[[:space:]]/ { skip = 1; print "#" $0; next }
    skip && /^[[:space:]]/ { print "#" $0; next }
    { skip = 0 }
    /^#?postlog[[:space:]]/ { print "postlog   unix-dgram n  -       n       -       1       postlogd"; next }
    { print }
    END { print "127.0.0.1:" port " inet n - n - - smtpd\n  -o receive_override_options=no_header_body_checks" }' \
    "$master" >"$pf/etc/master.cf"
  postfix -c "$pf/etc" check >/dev/null 2>&1
  if ! postfix -c "$pf/etc" start >/dev/null 2>&1; then
    echo "tls-compare: Postfix did not start (see $pf/maillog)" >&2; exit 1
  fi
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$postfix_port) 2>/dev/null && break; sleep 0.1; done
  mta_pid=$(head -1 "$pf/queue/pid/master.pid" 2>/dev/null | tr -d ' ')
}

esmtpd_pids() { pgrep -f "estafette-esmtpd .*$tmp/estafette/estafette.conf" | paste -sd, -; }

if [ "$outbound" = 1 ]; then
  r() { echo "${result[$1]:-0}"; }
  measure direct_plain $sink_port
  export BENCH_DIR=$tmp/estafette ESTAFETTE=$bin RELAY_PORT=$relay_port SINK_PORT=$sink_port
  export EXTRA_CONF="tls_policy = may"
  "$here/estafette-relay.sh" start || { echo "tls-compare: Estafette did not start" >&2; exit 1; }
  mta_pid=$(cat "$tmp/estafette/state/run/estafetted.pid")
  direct_cert=1 measure estafette_out $relay_port
  "$here/estafette-relay.sh" stop >/dev/null
  mta_pid=
  if [ "$only" = 0 ]; then
    postfix_start may
    direct_cert=1 measure postfix_out $postfix_port
    postfix -c "$pf/etc" stop >/dev/null 2>&1
  fi
  echo "---"
  echo "tls-compare: direct (rig ceiling) plain=$(r direct_plain) msgs/s"
  for mta in estafette postfix; do
    [ "$mta" = postfix ] && [ "$only" = 1 ] && continue
    echo "tls-compare: outbound mta=$mta size=$size concurrency=$concurrency count=$count" \
      "msgs_per_s=$(r ${mta}_out) cpu_ms_per_msg=$(r cpu_${mta}_out) sink $(r sink_${mta}_out)"
  done
  [ "$only" = 0 ] && echo "tls-compare: outbound estafette/postfix=$(awk -v a="$(r estafette_out)" \
    -v b="$(r postfix_out)" 'BEGIN{printf "%.2f", (b > 0 ? a / b : 0)}') (goal >= 5)"
  echo "tls-compare: lost=${total_lost:-0}"
  exit $status
fi

# --- The rig's ceiling: source straight into the sink (the sink doing STARTTLS itself) --------
measure direct_plain $sink_port
direct_cert=1 measure direct_tls $sink_port --starttls
direct_cert=1 measure direct_tls_resume $sink_port --tls-resume

# --- Estafette -------------------------------------------------------------------------------
export BENCH_DIR=$tmp/estafette ESTAFETTE=$bin RELAY_PORT=$relay_port SINK_PORT=$sink_port
export EXTRA_CONF="tls_cert_file = $cert
tls_key_file = $key"
"$here/estafette-relay.sh" start || { echo "tls-compare: Estafette did not start" >&2; exit 1; }
mta_pid=$(cat "$tmp/estafette/state/run/estafetted.pid")
measure estafette_plain $relay_port
if [ "$perf" = 1 ]; then
  perf record -q -g -o "$tmp/perf.data" -p "$(esmtpd_pids)" >/dev/null 2>&1 &
  perf_pid=$!
fi
measure estafette_tls $relay_port --starttls
if [ "$perf" = 1 ]; then
  kill -INT $perf_pid; wait $perf_pid 2>/dev/null
  perf report -i "$tmp/perf.data" --stdio --no-children -g none --percent-limit 1 2>/dev/null |
    grep -v '^#' | grep -v '^$' | head -${PERF_LINES:-30} | cut -c1-110 >"$tmp/perf.txt"
  perf report -i "$tmp/perf.data" --stdio --no-children -g none --sort dso 2>/dev/null |
    grep -v '^#' | grep -v '^$' | head -10 >"$tmp/perf-dso.txt"
fi
measure estafette_tls_resume $relay_port --tls-resume
"$here/estafette-relay.sh" stop >/dev/null
mta_pid=

# New handshakes per second on one core: one esmtpd, Estafette on CPU 0, the source on CPU 1.
# The source's client side of a handshake costs about what the server's does, so on a 2-CPU
# rig the rate is mostly the source's; the server's own CPU per session (us_per_session, of
# Estafette's whole process tree) is the figure that measures Estafette.
ESMTPD_PROCESSES=1 CPUS=0 "$here/estafette-relay.sh" start ||
  { echo "tls-compare: Estafette did not start" >&2; exit 1; }
hs_pid=$(cat "$tmp/estafette/state/run/estafetted.pid")
for mode in full resumed; do
  opt=--handshake-only; [ $mode = resumed ] && opt="--handshake-only --tls-resume"
  c0=$(tree_cpu "$hs_pid")
  line=$(taskset -c 1 "$kit" source --target 127.0.0.1:$relay_port --messages "$handshakes" \
    --concurrency 50 $opt 2>&1)
  c1=$(tree_cpu "$hs_pid")
  us=$(awk -v a="$c0" -v b="$c1" -v n="$handshakes" 'BEGIN{printf "%d", (b - a) * 1e6 / n}')
  echo "tls-compare: run label=handshakes_$mode $(sed -n 's/^source: //p' <<<"$line") us_per_session=$us"
  [ "$(fields failed "$line")" = 0 ] || status=1
  result[handshakes_$mode]=$(fields handshakes_per_s "$line")
  result[hs_us_$mode]=$us
done
"$here/estafette-relay.sh" stop >/dev/null
unset EXTRA_CONF

# --- Postfix ---------------------------------------------------------------------------------
if [ "$only" = 0 ]; then
  postfix_start none
  measure postfix_plain $postfix_port
  measure postfix_tls $postfix_port --starttls
  measure postfix_tls_resume $postfix_port --tls-resume
  postfix -c "$pf/etc" stop >/dev/null 2>&1
fi

# --- Summary ---------------------------------------------------------------------------------
r() { echo "${result[$1]:-0}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b > 0 ? a / b : 0)}'; }
cost() { awk -v p="$1" -v t="$2" 'BEGIN{printf "%.0f", (p > 0 ? 100 * (1 - t / p) : 0)}'; }
echo "---"
echo "tls-compare: direct (rig ceiling) plain=$(r direct_plain) tls=$(r direct_tls)" \
  "tls_resume=$(r direct_tls_resume) msgs/s"
for mta in estafette postfix; do
  [ "$mta" = postfix ] && [ "$only" = 1 ] && continue
  echo "tls-compare: mta=$mta size=$size concurrency=$concurrency count=$count" \
    "plain=$(r ${mta}_plain) tls=$(r ${mta}_tls) tls_resume=$(r ${mta}_tls_resume) msgs/s" \
    "tls_cost=$(cost "$(r ${mta}_plain)" "$(r ${mta}_tls)")%" \
    "tls_cost_resume=$(cost "$(r ${mta}_plain)" "$(r ${mta}_tls_resume)")%" \
    "cpu_ms_per_msg plain=$(r cpu_${mta}_plain) tls=$(r cpu_${mta}_tls)" \
    "tls_resume=$(r cpu_${mta}_tls_resume)"
  echo "tls-compare: mta=$mta of_ceiling plain=$(ratio "$(r ${mta}_plain)" "$(r direct_plain)")" \
    "tls=$(ratio "$(r ${mta}_tls)" "$(r direct_tls)")" \
    "tls_resume=$(ratio "$(r ${mta}_tls_resume)" "$(r direct_tls_resume)")"
done
if [ "$only" = 0 ]; then
  echo "tls-compare: estafette/postfix plain=$(ratio "$(r estafette_plain)" "$(r postfix_plain)")" \
    "tls=$(ratio "$(r estafette_tls)" "$(r postfix_tls)") (goal >= 5)" \
    "tls_resume=$(ratio "$(r estafette_tls_resume)" "$(r postfix_tls_resume)")"
  echo "tls-compare: postfix/estafette cpu_ms_per_msg plain=$(ratio "$(r cpu_postfix_plain)" "$(r cpu_estafette_plain)")" \
    "tls=$(ratio "$(r cpu_postfix_tls)" "$(r cpu_estafette_tls)")" \
    "tls_resume=$(ratio "$(r cpu_postfix_tls_resume)" "$(r cpu_estafette_tls_resume)")"
fi
echo "tls-compare: estafette tls_cost_resume=$(cost "$(r estafette_plain)" "$(r estafette_tls_resume)")% (goal < 30%)"
echo "tls-compare: handshakes_per_s one core (esmtpd_processes=1): full=$(r handshakes_full)" \
  "resumed=$(r handshakes_resumed) cert=$cert_kind;" \
  "esmtpd cpu us_per_session full=$(r hs_us_full) resumed=$(r hs_us_resumed)"
echo "tls-compare: lost=${total_lost:-0}"
if [ "$perf" = 1 ] && [ -f "$tmp/perf.txt" ]; then
  echo "--- perf: esmtpd during estafette_tls, by DSO"
  cat "$tmp/perf-dso.txt"
  echo "--- perf: esmtpd during estafette_tls, symbols >= 1%"
  cat "$tmp/perf.txt"
fi
exit $status
