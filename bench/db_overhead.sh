#!/usr/bin/env bash
# What database protection costs. pgbench (select-only, one client) against a
# private PostgreSQL server, in one run:
#   - unguarded, no daemon;
#   - unguarded, daemon idle (no agent session);
#   - unguarded, daemon with an agent session active (the libpq uprobes are
#     attached then, and trap in every libpq client: pgbench is one);
#   - guarded (pgbench itself under `killswitch run`).
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
cleanup() {
  [[ -n "$agent_pid" ]] && { kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; }
  [[ -n "$daemon_pid" ]] && { kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; }
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
runuser -u postgres -- "$PGBIN/initdb" -D "$work/data" -A trust -U postgres --no-sync >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/data" -w -l "$work/data/log" \
  -o "-p $PORT -k $work/sock -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
PGB=("$PGBIN/pgbench" -h "$work/sock" -p "$PORT" -U postgres)
"${PGB[@]}" -i -s 1 -q postgres >/dev/null 2>&1

tps() { "$@" -n -S -c 1 -j 1 -T "$SECS" postgres 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}'; }
start_daemon() {
  "$KS" --runtime-dir "$work/run" daemon --audit-log "$work/audit.jsonl" --cgroup-parent "ks-dbbench-$$" \
    2>"$work/daemon.log" &
  daemon_pid=$!
  for _ in $(seq 100); do "$KS" --runtime-dir "$work/run" status >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "daemon did not start" >&2; cat "$work/daemon.log" >&2; exit 1
}

base=$(tps taskset -c 1 "${PGB[@]}")
start_daemon
idle=$(tps taskset -c 1 "${PGB[@]}")
"$KS" --runtime-dir "$work/run" run --session bench-agent -- sleep 600 &
agent_pid=$!
sleep 1
active=$(tps taskset -c 1 "${PGB[@]}")
guarded=$(tps "$KS" --runtime-dir "$work/run" run --session bench-pgbench -- taskset -c 1 "${PGB[@]}")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.4f", b/a}'; }
us_per_query() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", (1e6/b) - (1e6/a)}'; }
printf '%-44s %10s %8s %14s\n' "pgbench -S, 1 client, ${SECS}s" tps ratio "extra us/query"
printf '%-44s %10s %8s %14s\n' "unguarded, no daemon" "$base" 1.0000 -
printf '%-44s %10s %8s %14s\n' "unguarded, daemon idle" "$idle" "$(ratio "$base" "$idle")" "$(us_per_query "$base" "$idle")"
printf '%-44s %10s %8s %14s\n' "unguarded, daemon with an agent session" "$active" "$(ratio "$base" "$active")" "$(us_per_query "$base" "$active")"
printf '%-44s %10s %8s %14s\n' "guarded (pgbench under killswitch run)" "$guarded" "$(ratio "$base" "$guarded")" "$(us_per_query "$base" "$guarded")"
echo
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on a private port, pgbench pinned to CPU 1;"
echo "kernel $(uname -r), $(nproc) CPUs. Goals: unguarded ratio >= 0.98; guarded under 10 us/query."
