#!/usr/bin/env bash
# What the daemon costs processes that are NOT guarded (the database server):
# the same open/close/stat/unlink loop, in one run, alternately
#   - with no daemon,
#   - with the daemon running and no agent session (the usual state),
#   - with the daemon running while a guarded agent session exists (the
#     file protection programs are attached then, and the libc uprobes trap
#     in every process that calls the hooked functions).
# Goal: under 2% slower.
#
# Reproduce (as root, after scripts/build.sh):
#   bench/unguarded_overhead.sh [ROUNDS] [ITERATIONS]
# Extra daemon arguments: KS_DAEMON_ARGS="--no-libc-uprobes" bench/unguarded_overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
ITER=${2:-200000}
BUILD_DIR=${KS_BUILD_DIR:-build}
KS="$BUILD_DIR/killswitch"
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x "$KS" ]] || scripts/build.sh >/dev/null

work=$(mktemp -d /tmp/ks-bench-XXXXXX)
# Scratch files on tmpfs: disk journaling noise would drown a 2% effect.
scratch=$(mktemp -d /dev/shm/ks-bench-XXXXXX)
daemon_pid=""
agent_pid=""
stop_agent() {
  if [[ -n "$agent_pid" ]]; then kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; agent_pid=""; fi
}
# The daemon's programs outlive it (pinned, fail-closed): each stop removes
# them, so that "no daemon" means no programs at all.
PIN="/sys/fs/bpf/ks-bench-$$"
stop_daemon() {
  stop_agent
  if [[ -n "$daemon_pid" ]]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=""; fi
  "$KS" --runtime-dir "$work/run" daemon --uninstall --pin-dir "$PIN" --audit-log "$work/audit.jsonl" >/dev/null 2>&1 || true
}
trap 'stop_daemon; rm -rf "$work" "$scratch"' EXIT
cc -O2 -o "$work/loop" bench/syscall_loop.c

start_daemon() {
  "$KS" --runtime-dir "$work/run" daemon --audit-log "$work/audit.jsonl" \
    --cgroup-parent "ks-bench-$$" --pin-dir "$PIN" ${KS_DAEMON_ARGS:-} 2>"$work/daemon.log" &
  daemon_pid=$!
  for _ in $(seq 100); do
    "$KS" --runtime-dir "$work/run" status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "daemon did not start:" >&2; cat "$work/daemon.log" >&2; exit 1
}
start_agent() {
  # A guarded session that just sleeps; the loop itself stays unguarded.
  "$KS" --runtime-dir "$work/run" run --session bench-agent -- sleep 600 &
  agent_pid=$!
  for _ in $(seq 100); do
    "$KS" --runtime-dir "$work/run" status --json 2>/dev/null | grep -q '"file_protection_attached": true' && return 0
    sleep 0.1
  done
  echo "agent session did not start" >&2; exit 1
}
# The loop runs on CPU 1, the daemon wherever the scheduler puts it.
loop() { taskset -c 1 "$work/loop" "$scratch" "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.4f", b/a}'; }

loop 50000 >/dev/null   # warm-up
printf '%-6s %14s %14s %8s %16s %8s\n' round "no daemon" "daemon idle" ratio "agent active" ratio
base=(); idle=(); active=()
for r in $(seq "$ROUNDS"); do
  a=$(loop "$ITER")
  start_daemon
  b=$(loop "$ITER")
  start_agent
  c=$(loop "$ITER")
  stop_daemon
  base+=("$a"); idle+=("$b"); active+=("$c")
  printf '%-6s %14s %14s %8s %16s %8s\n' "$r" "$a" "$b" "$(ratio "$a" "$b")" "$c" "$(ratio "$a" "$c")"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2)? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ma=$(median "${base[@]}"); mb=$(median "${idle[@]}"); mc=$(median "${active[@]}")
printf '%-6s %14s %14s %8s %16s %8s\n' median "$ma" "$mb" "$(ratio "$ma" "$mb")" "$mc" "$(ratio "$ma" "$mc")"
echo
echo "ns per iteration of open(O_CREAT)+close+stat+unlink on tmpfs, $ITER iterations per run,"
echo "pinned to CPU 1, $ROUNDS rounds; daemon: killswitch daemon ${KS_DAEMON_ARGS:-(defaults)};"
echo "kernel $(uname -r), $(nproc) CPUs"
awk -v r="$(ratio "$ma" "$mb")" 'BEGIN{ printf "goal (< 2%% slower) with the daemon idle: %s, %+.2f%%\n", (r < 1.02 ? "met" : "NOT met"), (r-1)*100 }'
awk -v r="$(ratio "$ma" "$mc")" 'BEGIN{ printf "while an agent session is active: %+.2f%% (see docs/performance.md)\n", (r-1)*100 }'
