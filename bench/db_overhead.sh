#!/usr/bin/env bash
# What database protection costs. pgbench (select-only, one client, over TCP
# to 127.0.0.1) against a private PostgreSQL server that the daemon watches
# (--db postgres=127.0.0.1:PORT), in one run:
#   - unguarded, no daemon;
#   - unguarded, daemon idle (no agent session);
#   - unguarded, daemon with an agent session active, with the libpq uprobes
#     (policy databases.client_probes: true, the default: they trap in every
#     libpq client, pgbench included) and without them (--no-db-client-probes:
#     only the socket path, which never sees an unguarded connection);
#   - guarded (pgbench itself under `killswitch run`): its connection goes
#     through the daemon's relay (userspace/db_relay), which reads and judges
#     every request, with and without the libpq uprobes;
#   - guarded, with the daemon watching another port: the same client with
#     no relay in its path, so that the difference is what the relay's hop
#     costs (the process guard's own cost is what is left).
# Goals: unguarded throughput ratio at least 0.98; a guarded client's cost
# per query under 10 us.
#
# Reproduce (as root, after scripts/build.sh; needs the postgresql package):
#   bench/db_overhead.sh [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
BUILD_DIR=${KS_BUILD_DIR:-build}
KS="$BUILD_DIR/killswitch"
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x "$KS" ]] || scripts/build.sh >/dev/null
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
[[ -x "$PGBIN/initdb" ]] || { echo "no PostgreSQL server installed" >&2; exit 1; }

work=$(mktemp -d /tmp/ks-dbbench-XXXXXX)
chmod 755 "$work"
mkdir -p "$work/data" "$work/sock"
chown postgres: "$work/data" "$work/sock"
PORT=$((30000 + $$ % 20000))
daemon_pid=""; agent_pid=""
# The daemon's programs outlive it (pinned, fail-closed): each stop removes
# them, so that "no daemon" means no programs at all.
PIN="/sys/fs/bpf/ks-dbbench-$$"
uninstall() { "$KS" --runtime-dir "$work/run" daemon --uninstall --pin-dir "$PIN" --audit-log "$work/audit.jsonl" >/dev/null 2>&1 || true; }
cleanup() {
  [[ -n "$agent_pid" ]] && { kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; }
  [[ -n "$daemon_pid" ]] && { kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; }
  uninstall
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
runuser -u postgres -- "$PGBIN/initdb" -D "$work/data" -A trust -U postgres --no-sync >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/data" -w -l "$work/data/log" \
  -o "-p $PORT -k $work/sock -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
PGB=("$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres)
"${PGB[@]}" -i -s 1 -q postgres >/dev/null 2>&1

tps() { "$@" -n -S -c 1 -j 1 -T "$SECS" postgres 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}'; }
start_daemon() {
  "$KS" --runtime-dir "$work/run" daemon --audit-log "$work/audit.jsonl" --cgroup-parent "ks-dbbench-$$" \
    --pin-dir "$PIN" --db "${DB:-postgres=127.0.0.1:$PORT}" "$@" 2>"$work/daemon.log" &
  daemon_pid=$!
  for _ in $(seq 100); do "$KS" --runtime-dir "$work/run" status >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "daemon did not start" >&2; cat "$work/daemon.log" >&2; exit 1
}

stop_daemon() {
  kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; agent_pid=""
  kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=""
  uninstall
}
start_agent() {
  "$KS" --runtime-dir "$work/run" run --session "bench-agent-$1" -- sleep 600 &
  agent_pid=$!
  sleep 1
}
guarded_tps() {
  tps "$KS" --runtime-dir "$work/run" run --session "bench-pgbench-$1" -- taskset -c 1 "${PGB[@]}"
}
# CPU time (clock ticks) the daemon has used so far.
daemon_ticks() { awk '{print $14 + $15}' "/proc/$daemon_pid/stat"; }

base=$(tps taskset -c 1 "${PGB[@]}")
start_daemon
idle=$(tps taskset -c 1 "${PGB[@]}")
start_agent 1
active=$(tps taskset -c 1 "${PGB[@]}")
guarded=$(guarded_tps 1)
stop_daemon
start_daemon --no-db-client-probes
start_agent 2
active_np=$(tps taskset -c 1 "${PGB[@]}")
ticks_before=$(daemon_ticks)
guarded_np=$(guarded_tps 2)
ticks_after=$(daemon_ticks)
relay=$("$KS" --runtime-dir "$work/run" status --json 2>/dev/null |
  python3 -c 'import json,sys; d=json.load(sys.stdin); r=d.get("db_relay") or d.get("layers",{}).get("db_relay",{}); print(r.get("judged_requests",0), r.get("asked_daemon",0))' 2>/dev/null || echo "0 0")
read -r judged asked <<<"$relay"
stop_daemon
# The same guarded client with no relay in its path (another port watched).
DB="postgres=127.0.0.1:1" start_daemon
guarded_unwatched=$(guarded_tps 3)
stop_daemon
base2=$(tps taskset -c 1 "${PGB[@]}")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.4f", b/a}'; }
us_per_query() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", (1e6/b) - (1e6/a)}'; }
printf '%-44s %10s %8s %14s\n' "pgbench -S, 1 client, ${SECS}s" tps ratio "extra us/query"
printf '%-44s %10s %8s %14s\n' "unguarded, no daemon" "$base" 1.0000 -
printf '%-44s %10s %8s %14s\n' "unguarded, no daemon (again, at the end)" "$base2" "$(ratio "$base" "$base2")" "$(us_per_query "$base" "$base2")"
printf '%-44s %10s %8s %14s\n' "unguarded, daemon idle" "$idle" "$(ratio "$base" "$idle")" "$(us_per_query "$base" "$idle")"
printf '%-44s %10s %8s %14s\n' "unguarded, agent session, libpq uprobes" "$active" "$(ratio "$base" "$active")" "$(us_per_query "$base" "$active")"
printf '%-44s %10s %8s %14s\n' "unguarded, agent session, socket path only" "$active_np" "$(ratio "$base" "$active_np")" "$(us_per_query "$base" "$active_np")"
printf '%-44s %10s %8s %14s\n' "guarded, through the relay, libpq uprobes" "$guarded" "$(ratio "$base" "$guarded")" "$(us_per_query "$base" "$guarded")"
printf '%-44s %10s %8s %14s\n' "guarded, through the relay" "$guarded_np" "$(ratio "$base" "$guarded_np")" "$(us_per_query "$base" "$guarded_np")"
printf '%-44s %10s %8s %14s\n' "guarded, port not watched (no relay)" "$guarded_unwatched" "$(ratio "$base" "$guarded_unwatched")" "$(us_per_query "$base" "$guarded_unwatched")"
echo
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on a private port, pgbench pinned to CPU 1;"
echo "kernel $(uname -r), $(nproc) CPUs. Goals: unguarded ratio >= 0.98; guarded under 10 us/query."
hz=$(getconf CLK_TCK)
echo
echo "Guarded client through the relay (no libpq uprobes): $judged requests judged by the relay,"
echo "  $asked of them asked of the daemon's event loop (the rest passed on the relay's thread);"
awk -v t="$((ticks_after - ticks_before))" -v hz="$hz" -v n="$judged" 'BEGIN { if (n > 0) printf "  daemon CPU (relay thread included): %.1f us per request\n", t / hz * 1e6 / n }'
echo "The relay's hop is the difference between \"through the relay\" and \"port not watched\":"
echo "two more socket reads and writes and two more wake-ups per query (one client,"
echo "one backend, the relay's thread: each hop waits on the one before)."
