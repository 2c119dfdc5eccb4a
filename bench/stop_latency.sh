#!/usr/bin/env bash
# How fast a guarded agent is stopped: the distribution (p50, p99, max) over
# TRIALS attempts of each kind, from the daemon's own audit records:
#   - libc entry to the kernel's signal (uprobe layer: python's os.unlink of a
#     protected file; the process dies before the call);
#   - the same entry to the session's cgroup.freeze written by the daemon;
#   - the hold round trip at exec: `rm` of a protected file is stopped at its
#     first instruction, the daemon reads its argv and applies the verdict
#     (task stopped -> verdict applied).
# Every trial is a fresh session (`killswitch run`), against a protected tree
# in a temporary directory, default policy (block, then freeze the session).
# Goal (issue 5): p99 under 500 us from entry to session frozen.
#
# Reproduce (as root, after scripts/build.sh):
#   bench/stop_latency.sh [TRIALS]        (default 1000; about 2 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-1000}
BUILD_DIR=${KS_BUILD_DIR:-build}
KS="$BUILD_DIR/killswitch"
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x "$KS" ]] || scripts/build.sh >/dev/null

work=$(mktemp -d /tmp/ks-latency-XXXXXX)
daemon_pid=""
PIN="/sys/fs/bpf/ks-latency-$$"  # pinned programs outlive the daemon: removed at the end
cleanup() {
  [[ -n "$daemon_pid" ]] && { kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; }
  "$KS" --runtime-dir "$work/run" daemon --uninstall --pin-dir "$PIN" --audit-log "$work/audit.jsonl" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/data"
for i in $(seq "$TRIALS"); do echo "row $i" > "$work/data/u$i"; echo "row $i" > "$work/data/r$i"; done

"$KS" --runtime-dir "$work/run" daemon --audit-log "$work/audit.jsonl" --cgroup-parent "ks-latency-$$" \
  --pin-dir "$PIN" --protect "$work/data" 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do "$KS" --runtime-dir "$work/run" status >/dev/null 2>&1 && break; sleep 0.1; done
"$KS" --runtime-dir "$work/run" status >/dev/null || { cat "$work/daemon.log" >&2; exit 1; }

run() { "$KS" --runtime-dir "$work/run" run --session "$1" -- "${@:2}" >/dev/null 2>&1 || true; }
for i in $(seq "$TRIALS"); do
  run "u$i" /usr/bin/python3 -c "import os; os.unlink('$work/data/u$i')"
  run "r$i" /bin/rm -f "$work/data/r$i"
done
sleep 2  # the last records

lost=$(ls "$work/data" | wc -l)
python3 - "$work/audit.jsonl" "$TRIALS" "$lost" <<'PY'
import json, sys
path, trials, left = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
series = {"entry -> signal (uprobe layer)": [], "entry -> session frozen": [],
          "hold round trip at exec (stopped -> verdict)": []}
for line in open(path):
    r = json.loads(line)
    if r.get("event") != "file":
        continue
    if r.get("layer") == "uprobe" and "stop_latency_ns" in r:
        series["entry -> signal (uprobe layer)"].append(r["stop_latency_ns"])
    if "session_frozen_latency_ns" in r:
        series["entry -> session frozen"].append(r["session_frozen_latency_ns"])
    if r.get("layer") == "exec" and "decision_latency_ns" in r:
        series["hold round trip at exec (stopped -> verdict)"].append(r["decision_latency_ns"])
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
print(f"{'measure':48} {'n':>6} {'p50 us':>9} {'p99 us':>9} {'max us':>9}")
for name, v in series.items():
    if not v:
        print(f"{name:48} {0:>6} {'-':>9} {'-':>9} {'-':>9}")
        continue
    print(f"{name:48} {len(v):>6} {pct(v,50)/1000:>9.1f} {pct(v,99)/1000:>9.1f} {max(v)/1000:>9.1f}")
print()
print(f"{trials} trials of each; protected files left: {left} of {2 * trials} (none may be lost).")
PY
echo "kernel $(uname -r), $(nproc) CPUs. Goal: p99 entry -> session frozen under 500 us."
