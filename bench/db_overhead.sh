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
#   - guarded (pgbench itself under `killswitch run`): every query judged on
#     the socket send path and recorded, with and without the libpq uprobes.
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
    --pin-dir "$PIN" --db "postgres=127.0.0.1:$PORT" "$@" 2>"$work/daemon.log" &
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
# The sk_msg program's own run time, from the kernel's BPF statistics.
msg_prog_stats() {
  bpftool prog show name ks_db_msg 2>/dev/null |
    awk '{for (i = 1; i < NF; i++) { if ($i == "run_time_ns") t = $(i+1); if ($i == "run_cnt") c = $(i+1) }}
         END {print (t ? t : 0), (c ? c : 0)}'
}

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
stats_was=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -q -w kernel.bpf_stats_enabled=1
records_before=$(grep -c '"event":"db"' "$work/audit.jsonl" || true)
ticks_before=$(daemon_ticks)
guarded_np=$(guarded_tps 2)
read -r msg_ns msg_runs < <(msg_prog_stats)
sysctl -q -w kernel.bpf_stats_enabled="$stats_was"
ticks_after=$(daemon_ticks)
sleep 1
records=$(( $(grep -c '"event":"db"' "$work/audit.jsonl" || true) - records_before ))
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
printf '%-44s %10s %8s %14s\n' "guarded, libpq uprobes + socket path" "$guarded" "$(ratio "$base" "$guarded")" "$(us_per_query "$base" "$guarded")"
printf '%-44s %10s %8s %14s\n' "guarded, socket path only" "$guarded_np" "$(ratio "$base" "$guarded_np")" "$(us_per_query "$base" "$guarded_np")"
echo
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on a private port, pgbench pinned to CPU 1;"
echo "kernel $(uname -r), $(nproc) CPUs. Goals: unguarded ratio >= 0.98; guarded under 10 us/query."
hz=$(getconf CLK_TCK)
echo
echo "Guarded client, socket path only: $records requests recorded in the audit log;"
awk -v ns="$msg_ns" -v runs="$msg_runs" 'BEGIN { if (runs > 0) printf "  sk_msg verdict in the client'"'"'s sendmsg: %.2f us per run (%d runs; kernel.bpf_stats_enabled)\n", ns / runs / 1000, runs }'
awk -v t="$((ticks_after - ticks_before))" -v hz="$hz" -v n="$records" 'BEGIN { if (n > 0) printf "  daemon CPU to classify and record them: %.1f us per request (off the client'"'"'s path)\n", t / hz * 1e6 / n }'
echo "Throughput of a guarded client depends on how busy the other CPU is (the daemon"
echo "keeps it awake), so its tps ratio is not its cost: the two lines above are."
