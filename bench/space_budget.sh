#!/usr/bin/env bash
# What the space budget (protect.min_free) costs: its programs on the write
# system calls run for every write of every process while something can be
# guarded (a task-storage lookup for a process that is not guarded), and for
# a guarded process's write also a look at the file and, on a file system
# holding protected data, an atomic add to the budget's count.
#
# Rows, each measured in every round (rotated; the medians are printed):
#   none                     no monitoring at all
#   ks session, min_free off the daemon with an agent session, protect.min_free:
#                            off (the write tracepoints are not loaded)
#   ks session, min_free 5%  the same with the default budget
# Columns, in ns per iteration, pinned to CPU 1: a 4 KiB pwrite(2) loop of a
# process that is not guarded, a getppid(2) loop (the syscall slow path alone,
# for reference), and the pwrite loop under `killswitch run` (guarded) on the
# file system that holds the protected path and on another one.
#
# Reproduce (as root, after scripts/build.sh):
#   bench/space_budget.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
ITER=${KS_SPACE_ITER:-200000}
BUILD_DIR=${KS_BUILD_DIR:-build}
KS="$BUILD_DIR/killswitch"
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x "$KS" ]] || scripts/build.sh >/dev/null

work=$(mktemp -d /tmp/ks-space-XXXXXX)
shm=$(mktemp -d /dev/shm/ks-space-XXXXXX)  # tmpfs: the file system with protected data
mkdir -p "$shm/data"
PIN="/sys/fs/bpf/ks-space-$$"
daemon_pid="" agent_pid=""
for m in off 5%; do
  printf 'version: 1\nprotect:\n  paths: [%s]\n  min_free: %s\n' "$shm/data" "$m" >"$work/policy-${m%\%}.yaml"
done

stop_pid() {
  [[ -n "$1" ]] || return 0
  kill "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
stop_all() {
  stop_pid "$agent_pid"; agent_pid=""
  if [[ -n "$daemon_pid" ]]; then
    stop_pid "$daemon_pid"; daemon_pid=""
    "$KS" --runtime-dir "$work/run" daemon --uninstall --pin-dir "$PIN" \
      --audit-log "$work/audit.jsonl" >/dev/null 2>&1 || true
  fi
}
trap 'stop_all; rm -rf "$work" "$shm"' EXIT

start_daemon() {  # start_daemon POLICY
  "$KS" --runtime-dir "$work/run" daemon --audit-log "$work/audit.jsonl" \
    --cgroup-parent "ks-space-$$" --pin-dir "$PIN" --policy "$1" 2>"$work/daemon.log" &
  daemon_pid=$!
  for _ in $(seq 100); do "$KS" --runtime-dir "$work/run" status >/dev/null 2>&1 && break; sleep 0.1; done
  "$KS" --runtime-dir "$work/run" run --session "space-agent" -- sleep 3600 &
  agent_pid=$!
  for _ in $(seq 100); do
    "$KS" --runtime-dir "$work/run" status --json 2>/dev/null |
      grep -q '"file_protection_attached": true' && return 0
    sleep 0.1
  done
  echo "daemon or session did not start:" >&2; cat "$work/daemon.log" >&2; exit 1
}

cc -O2 -o "$work/loop" bench/syscall_loop.c
loop() { taskset -c 1 "$work/loop" "$1" "$ITER"; }
declare -A R
measure() {  # measure ROW [guarded]
  R["$1,write"]+=" $(loop "write:$work/unguarded")"
  R["$1,getppid"]+=" $(loop getppid)"
  if [[ -n "${2:-}" ]]; then
    R["$1,gprot"]+=" $("$KS" --runtime-dir "$work/run" run --session "space-w-$n" -- \
      taskset -c 1 "$work/loop" "write:$shm/w" "$ITER")"
    R["$1,gother"]+=" $("$KS" --runtime-dir "$work/run" run --session "space-o-$n" -- \
      taskset -c 1 "$work/loop" "write:$work/w" "$ITER")"
  fi
  n=$((n + 1))
}
ROWS=("none" "ks session, min_free off" "ks session, min_free 5%")
run_row() {
  case $1 in
    "none") measure "$1" ;;
    "ks session, min_free off") start_daemon "$work/policy-off.yaml"; measure "$1" guarded ;;
    "ks session, min_free 5%") start_daemon "$work/policy-5.yaml"; measure "$1" guarded ;;
  esac
  stop_all
}
n=0
loop "write:$work/unguarded" >/dev/null  # warm-up
for r in $(seq "$ROUNDS"); do
  for i in "${!ROWS[@]}"; do run_row "${ROWS[$(( (i + r - 1) % ${#ROWS[@]} ))]}"; done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
declare -A M
for row in "${ROWS[@]}"; do
  for col in write getppid gprot gother; do
    [[ -n "${R[$row,$col]:-}" ]] && M["$row,$col"]=$(echo "${R[$row,$col]}" | median)
  done
done
printf '\n%-26s %18s %18s %20s %20s\n' "" "unguarded pwrite" "unguarded getppid" \
  "guarded, protected fs" "guarded, other fs"
printf '%-26s %18s %18s %20s %20s\n' "" "ns/iter" "ns/iter" "ns/iter" "ns/iter"
for row in "${ROWS[@]}"; do
  cell() {
    local v=${M["$row,$1"]:-}
    [[ -z "$v" ]] && { printf '%*s' "$2" "-"; return; }
    local base=${M["none,$3"]}
    printf '%*s' "$2" "$(awk -v v="$v" -v b="$base" 'BEGIN {printf "%.0f  %.2fx", v, v / b}')"
  }
  printf '%-26s %s %s %s %s\n' "$row" "$(cell write 18 write)" "$(cell getppid 18 getppid)" \
    "$(cell gprot 20 write)" "$(cell gother 20 write)"
done
echo
echo "Medians of $ROUNDS rounds of $ITER iterations; ratios to the unguarded pwrite (or getppid)"
echo "loop with no monitoring. The guarded loops rewrite the same 4 KiB (no space is used)."
echo "Reproduce: bench/space_budget.sh $ROUNDS (as root; KS_SPACE_ITER sets the iterations)."
