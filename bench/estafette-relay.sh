#!/usr/bin/env bash
# estafette-relay.sh start|stop|clean|status: a long-running Estafette set up as the relay of the
# seed relay test, for measuring by hand and for bench/tls-compare.sh: esmtpd on 127.0.0.1:55125,
# domain1.grey .. domain5.grey routed to the sink at 127.0.0.1:55225, up to 250 deliveries at once
# (MAXDELS = MAXHOST = 250), durable queue (fsync before every 250) as always. The seed relay test
# itself is `estafette-bench relay` (a throwaway relay of the same config per run; see
# docs/benchmarks.md); load this one with `estafette-bench source --target 127.0.0.1:55125` and
# count with `estafette-bench sink --listen 127.0.0.1:55225`.
#   BENCH_DIR    state and config (default /tmp/estafette-relay)
#   QUEUE_BACKEND  segment (default) or file
#   ESTAFETTE    directory holding the built programs (default: the source tree's top, an
#                in-tree build; or set it to a VPATH build directory)
#   EXTRA_ROUTES space-separated "domain:host,port" routes added to the five above (and relayed)
#   EXTRA_CONF   config lines appended to the generated config (later keys win)
#   ESMTPD_PROCESSES, ESMTPCLIENT_PROCESSES
#                esmtpd_processes / esmtpclient_processes (default: the config's default, auto)
#   CPUS         start estafetted under `taskset -c $CPUS` (its daemons inherit the affinity)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${BENCH_DIR:-/tmp/estafette-relay}
bin=${ESTAFETTE:-$here/..}
relay_port=${RELAY_PORT:-55125}
sink_port=${SINK_PORT:-55225}
conf=$dir/estafette.conf
cmd=${1:-}

configure() {
  mkdir -p "$dir"
  {
    echo "hostname = relay.bench.test"
    echo "state_dir = $dir/state"
    echo "listen = 127.0.0.1:$relay_port"
    echo "local_domains = relay.bench.test"
    relay="domain1.grey, domain2.grey, domain3.grey, domain4.grey, domain5.grey"
    for r in ${EXTRA_ROUTES:-}; do relay="$relay, ${r%%:*}"; done
    echo "relay_domains = $relay"
    echo "relay_clients = 127.0.0.0/8"
    # The seed relay test has no connection checks, and no DNS server but loopback may be asked.
    echo "rdns_check = no"
    echo "esmtproutes = $dir/esmtproutes"
    echo "MAXDELS = 250"
    echo "MAXHOST = 250"
    echo "MAXRCPT = 100"
    echo "max_sessions = 1000"
    echo "queue_backend = ${QUEUE_BACKEND:-segment}"
    [ -n "${ESMTPD_PROCESSES:-}" ] && echo "esmtpd_processes = $ESMTPD_PROCESSES"
    [ -n "${ESMTPCLIENT_PROCESSES:-}" ] && echo "esmtpclient_processes = $ESMTPCLIENT_PROCESSES"
    echo "retry_base = 10s"
    echo "log_file = $dir/estafette.log"
    echo "log_level = ${LOG_LEVEL:-information}"
    if [ -n "${EXTRA_CONF:-}" ]; then printf '%s\n' "$EXTRA_CONF"; fi
  } > "$conf"
  : > "$dir/esmtproutes"
  for d in 1 2 3 4 5; do echo "domain$d.grey: 127.0.0.1,$sink_port" >> "$dir/esmtproutes"; done
  for r in ${EXTRA_ROUTES:-}; do echo "${r%%:*}: ${r#*:}" >> "$dir/esmtproutes"; done
}

case "$cmd" in
  start)
    [ -x "$bin/estafette" ] || { echo "estafette-relay: no build in $bin (set ESTAFETTE=builddir)" >&2; exit 2; }
    configure
    ulimit -n 65536 2>/dev/null || true
    ${CPUS:+taskset -c "$CPUS"} "$bin/estafette" start -c "$conf" >/dev/null
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$relay_port) 2>/dev/null && exit 0; sleep 0.1; done
    echo "estafette-relay: esmtpd did not come up; see $dir/estafette.log" >&2; exit 1 ;;
  stop)
    [ -f "$conf" ] && "$bin/estafette" stop -c "$conf" >/dev/null || true ;;
  clean)
    # Drop whatever is still queued (like postsuper -d ALL), keeping the instance as it was.
    was_running=0
    if [ -f "$conf" ] && "$bin/estafette" status -c "$conf" >/dev/null 2>&1; then
      was_running=1; "$bin/estafette" stop -c "$conf" >/dev/null
    fi
    rm -rf "$dir/state/queue" "$dir/state/maildir"
    [ -d "$dir" ] && : > "$dir/estafette.log"
    [ "$was_running" = 1 ] && "$0" start || true ;;
  status)
    "$bin/estafette" status -c "$conf" ;;
  *) echo "usage: $0 start|stop|clean|status" >&2; exit 2 ;;
esac
