#!/usr/bin/env bash
# How fast a guarded agent is stopped: the distribution (p50, p99, max) over
# TRIALS attempts of each kind, from the daemon's own audit records:
#   - libc entry to the kernel's signal (uprobe layer: python's os.unlink of a
#     protected file; the process dies before the call);
#   - the same entry to the session's cgroup.freeze written by the daemon;
#   - the hold round trip of every kind of hold, task stopped -> verdict
#     applied: at exec (`rm` of a protected file is stopped at its first
#     instruction, the daemon reads its argv); at an agent's start (a program
#     named like an agent, without a terminal, is stopped at exec until its
#     session cgroup and layers are ready); at a libpq statement (psql's
#     `SELECT 'drop ...'` is stopped in the libpq uprobe until the daemon has
#     parsed it: kernels before 6.7, where the relay cannot read unix
#     sockets and the libpq uprobes are attached); at the relay (a guarded
#     client without libpq, tests/helpers/wire_client.py, sends `DELETE FROM
#     holds`: the relay holds the request unread until the daemon's verdict,
#     request read -> verdict). The database rows need a PostgreSQL server
#     (the postgresql package), started privately.
# And the daemon's own count of records that a stopped task waited on but
# that did not wake it (counters.wakeups_missed: it must be 0).
# Every trial is a fresh session (`killswitch run`), against a protected tree
# in a temporary directory, the default policy with `session: freeze` (block,
# then freeze the session at the first refusal).
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
  [[ -n "${pg_port:-}" ]] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  [[ -n "$daemon_pid" ]] && { kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; }
  "$KS" --runtime-dir "$work/run" daemon --uninstall --pin-dir "$PIN" --audit-log "$work/audit.jsonl" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/data"
for i in $(seq "$TRIALS"); do echo "row $i" > "$work/data/u$i"; echo "row $i" > "$work/data/r$i"; done
# An "agent": a program named like one (sessions are opened for it at exec).
mkdir -p "$work/bin" && cp /bin/true "$work/bin/claude"

# A private PostgreSQL server for the libpq holds, when the package is there.
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1 || true)
pg_port=""
if [[ -n "$PGBIN" && -x "$PGBIN/initdb" ]]; then
  pg_port=$((30000 + $$ % 20000))
  mkdir -p "$work/pg" "$work/pgsock" && chown postgres: "$work/pg" "$work/pgsock" && chmod 755 "$work"
  runuser -u postgres -- "$PGBIN/initdb" -D "$work/pg" -A trust -U postgres --no-sync >/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/pg" -w -l "$work/pg/log" \
    -o "-p $pg_port -k $work/pgsock -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$pg_port" -U postgres postgres \
    -c "CREATE TABLE holds (id int); INSERT INTO holds SELECT generate_series(1, $TRIALS)"
  for i in $(seq "$TRIALS"); do echo "SELECT 'drop table $i' AS harmless;"; done > "$work/holds.sql"
  python3 -c 'import json,sys; print(json.dumps([{"sql": "DELETE FROM holds", "mode": "simple"}] * int(sys.argv[1])))' \
    "$TRIALS" > "$work/refused.json"
fi
db_args=()
[[ -n "$pg_port" ]] && db_args=(--db "postgres=127.0.0.1:$pg_port")
# Each refusal is measured on its own: they do not escalate (sessions:).
printf 'version: 1\nprotect:\n  session: freeze\nsessions:\n  escalate_after: 0\n' > "$work/policy.yaml"

"$KS" --runtime-dir "$work/run" daemon --audit-log "$work/audit.jsonl" --cgroup-parent "ks-latency-$$" \
  --pin-dir "$PIN" --protect "$work/data" --policy "$work/policy.yaml" "${db_args[@]}" 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do "$KS" --runtime-dir "$work/run" status >/dev/null 2>&1 && break; sleep 0.1; done
"$KS" --runtime-dir "$work/run" status >/dev/null || { cat "$work/daemon.log" >&2; exit 1; }

# A session frozen while its offender still lives waits for a person (the
# offender exits once thawed): here it is ended, as `killswitch kill` would.
run() {
  "$KS" --runtime-dir "$work/run" run --session "$1" -- "${@:2}" >/dev/null 2>&1 &
  local p=$!
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.02; done
  kill -0 "$p" 2>/dev/null && "$KS" --runtime-dir "$work/run" kill --session "$1" >/dev/null 2>&1
  wait "$p" || true
}
for i in $(seq "$TRIALS"); do
  run "u$i" /usr/bin/python3 -c "import os; os.unlink('$work/data/u$i')"
  run "r$i" /bin/rm -f "$work/data/r$i"
  setsid -w "$work/bin/claude" </dev/null >/dev/null 2>&1 || true
done
if [[ -n "$pg_port" ]]; then
  "$KS" --runtime-dir "$work/run" run --session libpq-holds -- psql -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -f "$work/holds.sql" postgres >/dev/null
  "$KS" --runtime-dir "$work/run" run --session relay-holds -- \
    python3 tests/helpers/wire_client.py postgres 127.0.0.1 "$pg_port" "$work/refused.json" >/dev/null
  rows=$("$PGBIN/psql" -X -qtA -h 127.0.0.1 -p "$pg_port" -U postgres -c "SELECT count(*) FROM holds" postgres)
  [[ "$rows" == "$TRIALS" ]] || echo "ROWS LOST: holds has $rows rows of $TRIALS" >&2
fi
sleep 2  # the last records
missed=$("$KS" --runtime-dir "$work/run" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["wakeups_missed"])')

lost=$(ls "$work/data" | wc -l)
python3 - "$work/audit.jsonl" "$TRIALS" "$lost" "$missed" "${pg_port:+yes}" <<'PY'
import json, sys
path, trials, left, missed, pg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
series = {"entry -> signal (uprobe layer)": [], "entry -> session frozen": [],
          "hold round trip at exec (stopped -> verdict)": [],
          "hold round trip at agent start (exec -> ready)": [],
          "hold round trip at libpq (stopped -> verdict)": [],
          "hold round trip at the relay (read -> verdict)": []}
for line in open(path):
    r = json.loads(line)
    if r.get("event") == "session_start" and r.get("held_at_exec") and r.get("comm") == "claude":
        series["hold round trip at agent start (exec -> ready)"].append(r["guard_ready_latency_ns"])
    if r.get("event") == "db" and "decision_latency_ns" in r:
        layer = {"uprobe": "libpq (stopped -> verdict)", "relay": "the relay (read -> verdict)"}.get(r.get("layer"))
        if layer:
            series["hold round trip at " + layer].append(r["decision_latency_ns"])
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
if not pg:
    print("database holds not measured: no PostgreSQL server installed (apt-get install postgresql).")
elif not series["hold round trip at libpq (stopped -> verdict)"]:
    print("no libpq holds: the libpq uprobes are off here (the relay reads every guarded connection, Linux 6.7+).")
print(f"records a stopped task waited on that did not wake the daemon: {missed} (must be 0).")
PY
echo "kernel $(uname -r), $(nproc) CPUs. Goals: p99 entry -> session frozen under 500 us;"
echo "hold round trip p99 under 1 ms for every kind of hold."
