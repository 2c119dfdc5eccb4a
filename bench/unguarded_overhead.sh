#!/usr/bin/env bash
# What the daemon costs processes that are NOT guarded (the database server):
# the same open/close/stat/unlink loop, alternately without and with a running
# daemon, in one run. Goal: under 2% slower.
#
# Reproduce (as root, after scripts/build.sh):
#   bench/unguarded_overhead.sh [ROUNDS] [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-7}
ITER=${2:-300000}
BUILD_DIR=${KS_BUILD_DIR:-build}
KS="$BUILD_DIR/killswitch"
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x "$KS" ]] || scripts/build.sh >/dev/null

work=$(mktemp -d /tmp/ks-bench-XXXXXX)
# Scratch files on tmpfs: disk journaling noise would drown a 2% effect.
scratch=$(mktemp -d /dev/shm/ks-bench-XXXXXX)
daemon_pid=""
cleanup() {
  if [[ -n "$daemon_pid" ]]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  rm -rf "$work" "$scratch"
}
trap cleanup EXIT
cc -O2 -o "$work/loop" bench/syscall_loop.c
# The loop runs on CPU 1, the daemon wherever the scheduler puts it.
loop() { taskset -c 1 "$work/loop" "$scratch" "$1"; }

start_daemon() {
  "$KS" --runtime-dir "$work/run" daemon --audit-log "$work/audit.jsonl" \
    --cgroup-parent ks-bench-$$ 2>"$work/daemon.log" &
  daemon_pid=$!
  for _ in $(seq 100); do
    "$KS" --runtime-dir "$work/run" status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "daemon did not start:" >&2; cat "$work/daemon.log" >&2; exit 1
}
stop_daemon() { kill "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=""; }

loop 50000 >/dev/null   # warm-up
printf '%-6s %16s %16s %8s\n' round "without (ns/it)" "with (ns/it)" ratio
without=(); with=()
for r in $(seq "$ROUNDS"); do
  a=$(loop "$ITER")
  start_daemon
  b=$(loop "$ITER")
  stop_daemon
  without+=("$a"); with+=("$b")
  printf '%-6s %16s %16s %8s\n' "$r" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.4f", b/a}')"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2)? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ma=$(median "${without[@]}"); mb=$(median "${with[@]}")
ratio=$(awk -v a="$ma" -v b="$mb" 'BEGIN{printf "%.4f", b/a}')
printf '%-6s %16s %16s %8s\n' median "$ma" "$mb" "$ratio"
echo
echo "loop: open(O_CREAT)+close+stat+unlink on tmpfs x $ITER per run, pinned to CPU 1, $ROUNDS rounds,"
echo "alternately without and with a running daemon; kernel $(uname -r), $(nproc) CPUs"
awk -v r="$ratio" 'BEGIN{ if (r < 1.02) print "goal (< 2% slower): met, " sprintf("%+.2f%%", (r-1)*100); else print "goal (< 2% slower): NOT met, " sprintf("%+.2f%%", (r-1)*100) }'
