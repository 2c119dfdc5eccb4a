#!/usr/bin/env bash
# What a `killswitch run` session costs, on a kernel with no hook layer (no
# LSM, no fentry), with each way of covering it, in one run:
#   - no daemon;
#   - the daemon's default: the session covered by the syscall tracepoints
#     (and per-process libc uprobes), which put every thread of every process
#     on the syscall slow path while the session exists;
#   - `killswitch daemon --seccomp-sessions`: the session under a seccomp
#     filter whose listener is the daemon; no syscall tracepoint attached.
# Measured: the same open(O_CREAT)+close+stat+unlink loop on tmpfs, pinned to
# CPU 1, run by a process that is NOT guarded (what the database server pays)
# and by one inside the session (what the agent pays: under the filter,
# open(O_CREAT) and unlink each wait for the daemon's answer).
# The policy protects one directory and has protect.min_free off: with the
# space budget on, the write calls' tracepoints stay in both cases.
#
# Reproduce (as root, after scripts/build.sh):
#   bench/seccomp_sessions.sh [ROUNDS] [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
ITER=${2:-100000}
BUILD_DIR=${KS_BUILD_DIR:-build}
KS="$BUILD_DIR/killswitch"
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x "$KS" ]] || scripts/build.sh >/dev/null

work=$(mktemp -d /tmp/ks-bench-XXXXXX)
scratch=$(mktemp -d /dev/shm/ks-bench-XXXXXX)
mkdir -p "$work/data"
printf 'version: 1\nprotect:\n  paths: [%s]\n  min_free: off\n' "$work/data" > "$work/policy.yaml"
daemon_pid=""
agent_pid=""
PIN="/sys/fs/bpf/ks-bench-$$"
stop_agent() {
  if [[ -n "$agent_pid" ]]; then kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; agent_pid=""; fi
}
stop_daemon() {
  stop_agent
  if [[ -n "$daemon_pid" ]]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=""; fi
  "$KS" --runtime-dir "$work/run" daemon --uninstall --pin-dir "$PIN" --audit-log "$work/audit.jsonl" >/dev/null 2>&1 || true
}
trap 'stop_daemon; rm -rf "$work" "$scratch"' EXIT
cc -O2 -o "$work/loop" bench/syscall_loop.c

start_daemon() {
  "$KS" --runtime-dir "$work/run" daemon --policy "$work/policy.yaml" --audit-log "$work/audit.jsonl" \
    --cgroup-parent "ks-bench-$$" --pin-dir "$PIN" "$@" 2>"$work/daemon.log" &
  daemon_pid=$!
  for _ in $(seq 100); do
    "$KS" --runtime-dir "$work/run" status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "daemon did not start:" >&2; cat "$work/daemon.log" >&2; exit 1
}
start_agent() {
  "$KS" --runtime-dir "$work/run" run --session bench-agent -- sleep 600 &
  agent_pid=$!
  for _ in $(seq 100); do
    "$KS" --runtime-dir "$work/run" status --json 2>/dev/null | grep -q '"file_protection_attached": true' && return 0
    sleep 0.1
  done
  echo "agent session did not start" >&2; exit 1
}
loop() { taskset -c 1 "$work/loop" "$scratch" "$1"; }
guarded_loop() {
  "$KS" --runtime-dir "$work/run" run --session bench-loop -- taskset -c 1 "$work/loop" "$scratch" "$1"
}
tracepoints_attached() {
  "$KS" --runtime-dir "$work/run" status --json | grep -o '"file_tracepoints_attached": [a-z]*' | awk '{print $2}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b/a}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2)? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

loop 20000 >/dev/null
base=(); tp_u=(); tp_g=(); sc_u=(); sc_g=()
for r in $(seq "$ROUNDS"); do
  base+=("$(loop "$ITER")")
  start_daemon
  start_agent
  tp_u+=("$(loop "$ITER")")
  tp_g+=("$(guarded_loop "$ITER")")
  tp_state=$(tracepoints_attached)
  stop_daemon
  start_daemon --seccomp-sessions
  start_agent
  sc_state=$(tracepoints_attached)
  sc_u+=("$(loop "$ITER")")
  sc_g+=("$(guarded_loop "$ITER")")
  stop_daemon
  echo "round $r: tracepoints attached: default $tp_state, --seccomp-sessions $sc_state" >&2
done
mb=$(median "${base[@]}")
printf '%-44s %12s %8s\n' "ns per iteration (median of $ROUNDS)" "ns" "ratio"
printf '%-44s %12s %8s\n' "no daemon" "$mb" "1.000"
for row in "unguarded, session on tracepoints (default)|${tp_u[*]}" \
           "unguarded, session under seccomp|${sc_u[*]}" \
           "guarded, session on tracepoints (default)|${tp_g[*]}" \
           "guarded, session under seccomp|${sc_g[*]}"; do
  name=${row%%|*}; vals=(${row#*|})
  m=$(median "${vals[@]}")
  printf '%-44s %12s %8s\n' "$name" "$m" "$(ratio "$mb" "$m")"
done
echo
echo "open(O_CREAT)+close+stat+unlink on tmpfs, $ITER iterations per run, pinned to CPU 1;"
echo "policy: one protected directory, protect.min_free off; kernel $(uname -r), $(nproc) CPUs"
