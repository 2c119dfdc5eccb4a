#!/usr/bin/env bash
# killswitch beside the tools an operator could use on the same host, in one
# run: what each costs processes it does not watch (the database server, its
# unguarded clients), and what killswitch costs the clients it guards.
#
# Rows, each measured in every round (the medians are printed):
#   none                     no monitoring at all
#   killswitch idle          the daemon, no agent session
#   killswitch session       the daemon while an agent session exists (every
#                            layer this kernel gives it: syscall tracepoints,
#                            libc and libpq uprobes, the socket hooks); on 6.6+
#                            the libc uprobes are in guarded processes alone
#   ks session, global uprobes  the same with --global-uprobes: the libc
#                            uprobes in every process, as before Linux 6.6
#   ks session, no uprobes   the same with --no-libc-uprobes --no-db-client-probes
#   ks seccomp session       the session under a seccomp filter whose listener
#                            is the daemon (--seccomp-sessions, a policy of the
#                            built-in one with protect.min_free off): no
#                            syscall tracepoint attached while only such
#                            sessions live (docs/guarantees.md)
#   auditd                   auditd with one watch rule (-w DIR -p wa) on a
#                            directory the loop does not touch
#   bpftrace                 six syscall tracepoints (openat, unlinkat, renameat2,
#                            write, kill, execve), each filtered to a cgroup the
#                            loop is not in
# The rows run in a different order in each round (rotated by one), so that
# no row is always the first after the host was idle.
# Columns: an open/close/stat/unlink loop on tmpfs and on ext4 (a dynamic
# binary: its libc calls meet the libc uprobes), the same on tmpfs as a static
# binary (no uprobe can trap in it), a getppid(2) loop (only the syscall slow
# path), all pinned to CPU 1, in ns per iteration; pgbench -S and TPC-B (1
# client, scale 10, PostgreSQL on a private port watched by the daemon) in
# transactions per second, unguarded, and for the killswitch rows also under
# `killswitch run` (guarded: every request through the relay).
#
# auditd and bpftrace are installed with apt-get when missing (said so); a row
# whose tool cannot be installed or run here is printed with the reason. auditd
# runs with a configuration and log of this script's own, and only when no
# auditd already runs on the host; every process it starts is stopped by pid.
#
# Reproduce (as root, after scripts/build.sh; needs the postgresql package):
#   bench/peers.sh [ROUNDS] [PGBENCH_SECONDS]
# The vm tier's kernels (Debian 12 and 13: LSM, fentry) are not in this table
# yet: bench/hook_layers.sh measures the loop there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECS=${2:-5}
ITER=${KS_PEERS_ITER:-100000}
BUILD_DIR=${KS_BUILD_DIR:-build}
KS="$BUILD_DIR/killswitch"
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x "$KS" ]] || scripts/build.sh >/dev/null
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1)
[[ -n "$PGBIN" && -x "$PGBIN/initdb" ]] || { echo "no PostgreSQL server installed" >&2; exit 1; }

work=$(mktemp -d /tmp/ks-peers-XXXXXX)
chmod 755 "$work"
scratch=$(mktemp -d /dev/shm/ks-peers-XXXXXX)
disk="$work/disk"
watched="$work/watched"  # what auditd watches; the loop never touches it
mkdir -p "$disk" "$watched" "$work/data" "$work/sock"
chown postgres: "$work/data" "$work/sock"
PORT=$((30000 + $$ % 20000))
PIN="/sys/fs/bpf/ks-peers-$$"
CG="/sys/fs/cgroup/ks-peers-$$"  # bpftrace's filter: nothing runs in it
daemon_pid="" agent_pid="" auditd_pid="" bpftrace_pid=""

uninstall() {
  "$KS" --runtime-dir "$work/run" daemon --uninstall --pin-dir "$PIN" \
    --audit-log "$work/audit.jsonl" >/dev/null 2>&1 || true
}
stop_pid() {  # stop_pid PID: TERM, then wait
  [[ -n "$1" ]] || return 0
  kill "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
# Whether the kernel's audit was on before (auditd turns it on; left on with
# no rules it would weigh on the rows measured after it).
audit_was=$(auditctl -s 2>/dev/null | awk '$1 == "enabled" {print $2}' || true)  # none yet: not installed
stop_all() {
  stop_pid "$agent_pid"; agent_pid=""
  if [[ -n "$daemon_pid" ]]; then
    stop_pid "$daemon_pid"; daemon_pid=""; uninstall
    # The kernel lets go of a stopped daemon's programs (and unregisters its
    # uprobes) a while after: the next row waits until none is left.
    for _ in $(seq 100); do
      bpftool prog show 2>/dev/null | grep -q ' name ks_' || break
      sleep 0.1
    done
  fi
  if [[ -n "$auditd_pid" ]]; then
    auditctl -D >/dev/null 2>&1 || true
    stop_pid "$auditd_pid"; auditd_pid=""
    auditctl -e "${audit_was:-0}" >/dev/null 2>&1 || true
  fi
  stop_pid "$bpftrace_pid"; bpftrace_pid=""
}
cleanup() {
  stop_all
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rmdir "$CG" 2>/dev/null || true
  rm -rf "$work" "$scratch"
}
trap cleanup EXIT

# The peers, installed when missing.
missing=()
command -v auditd >/dev/null || missing+=(auditd)
command -v bpftrace >/dev/null || missing+=(bpftrace)
if ((${#missing[@]})); then
  echo "installing ${missing[*]} (apt-get)..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    >"$work/apt.log" 2>&1 || echo "apt-get failed: $(tail -1 "$work/apt.log")" >&2
fi
audit_was=$(auditctl -s 2>/dev/null | awk '$1 == "enabled" {print $2}' || true)
why_no_auditd="" why_no_bpftrace=""
if ! command -v auditd >/dev/null; then why_no_auditd="not installed (apt-get failed)";
elif pgrep -x auditd >/dev/null; then why_no_auditd="an auditd already runs on this host: not touched"; fi
command -v bpftrace >/dev/null || why_no_bpftrace="not installed (apt-get failed)"
mkdir -p "$CG"

cc -O2 -o "$work/loop" bench/syscall_loop.c
cc -O2 -static -o "$work/loop-static" bench/syscall_loop.c

runuser -u postgres -- "$PGBIN/initdb" -D "$work/data" -A trust -U postgres --no-sync >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/data" -w -l "$work/data/log" \
  -o "-p $PORT -k $work/sock -c listen_addresses=127.0.0.1" start >/dev/null
PGB=("$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres)
"${PGB[@]}" -i -s 10 -q postgres >/dev/null 2>&1

start_daemon() {
  "$KS" --runtime-dir "$work/run" daemon --audit-log "$work/audit.jsonl" \
    --cgroup-parent "ks-peers-$$" --pin-dir "$PIN" --db "postgres=127.0.0.1:$PORT" "$@" \
    2>"$work/daemon.log" &
  daemon_pid=$!
  for _ in $(seq 100); do "$KS" --runtime-dir "$work/run" status >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "daemon did not start:" >&2; cat "$work/daemon.log" >&2; exit 1
}
start_agent() {
  "$KS" --runtime-dir "$work/run" run --session "peers-agent" -- sleep 3600 &
  agent_pid=$!
  for _ in $(seq 100); do
    "$KS" --runtime-dir "$work/run" status --json 2>/dev/null |
      grep -q '"file_protection_attached": true' && return 0
    sleep 0.1
  done
  echo "agent session did not start" >&2; exit 1
}
start_auditd() {
  mkdir -p "$work/auditd"
  printf 'log_file = %s/auditd/audit.log\nlog_format = ENRICHED\nflush = INCREMENTAL_ASYNC\nfreq = 50\nmax_log_file = 64\nmax_log_file_action = ROTATE\nspace_left = 75\nspace_left_action = IGNORE\nadmin_space_left = 50\nadmin_space_left_action = IGNORE\ndisk_full_action = IGNORE\ndisk_error_action = IGNORE\n' \
    "$work" >"$work/auditd/auditd.conf"
  chmod 640 "$work/auditd/auditd.conf"
  auditd -n -c "$work/auditd" >"$work/auditd/out" 2>&1 &
  auditd_pid=$!
  sleep 1
  if ! kill -0 "$auditd_pid" 2>/dev/null; then
    why_no_auditd="auditd did not start: $(tail -1 "$work/auditd/out")"; auditd_pid=""; return 1
  fi
  auditctl -w "$watched" -p wa -k ks-peers >/dev/null 2>&1 ||
    { why_no_auditd="auditctl -w failed"; return 1; }
}
start_bpftrace() {
  local id; id=$(stat -c %i "$CG")
  bpftrace -e "tracepoint:syscalls:sys_enter_openat, tracepoint:syscalls:sys_enter_unlinkat,
    tracepoint:syscalls:sys_enter_renameat2, tracepoint:syscalls:sys_enter_write,
    tracepoint:syscalls:sys_enter_kill, tracepoint:syscalls:sys_enter_execve
    /cgroup == $id/ { @[probe] = count(); }" >"$work/bpftrace.out" 2>&1 &
  bpftrace_pid=$!
  for _ in $(seq 100); do grep -q "Attaching" "$work/bpftrace.out" 2>/dev/null && { sleep 0.5; return 0; }; sleep 0.1; done
  why_no_bpftrace="bpftrace did not attach: $(tail -1 "$work/bpftrace.out")"; stop_pid "$bpftrace_pid"; bpftrace_pid=""
  return 1
}

loop() { taskset -c 1 "$1" "$2" "$ITER"; }
tps() {  # tps COMMAND...: pgbench's transactions per second (nothing when it failed)
  { "$@" -n -c 1 -j 1 -T "$SECS" postgres 2>>"$work/pgbench.err" || true; } |
    awk '/^tps/ {printf "%.0f", $3}'
}
n=0
measure() {  # measure ROW [guarded]: appends one sample per column
  local row=$1 guarded=${2:-}
  R["$row,tmpfs"]+=" $(loop "$work/loop" "$scratch")"
  R["$row,ext4"]+=" $(loop "$work/loop" "$disk")"
  R["$row,static"]+=" $(loop "$work/loop-static" "$scratch")"
  R["$row,getppid"]+=" $(loop "$work/loop" getppid)"
  R["$row,S"]+=" $(tps taskset -c 1 "${PGB[@]}" -S)"
  R["$row,B"]+=" $(tps taskset -c 1 "${PGB[@]}")"
  if [[ -n "$guarded" ]]; then
    n=$((n + 1))
    R["$row,gS"]+=" $(tps "$KS" --runtime-dir "$work/run" run --session "peers-pgbench-$n-S" -- taskset -c 1 "${PGB[@]}" -S)"
    R["$row,gB"]+=" $(tps "$KS" --runtime-dir "$work/run" run --session "peers-pgbench-$n-B" -- taskset -c 1 "${PGB[@]}")"
  fi
}

declare -A R
ROWS=("none" "killswitch idle" "killswitch session" "ks session, global uprobes"
  "ks session, no uprobes" "ks seccomp session" "auditd" "bpftrace")
run_row() {  # run_row ROW: sets the row's configuration up, measures, tears it down
  case $1 in
    "none") measure "none" ;;
    "killswitch idle") start_daemon; measure "$1" ;;
    "killswitch session") start_daemon; start_agent; measure "$1" guarded ;;
    "ks session, global uprobes") start_daemon --global-uprobes; start_agent; measure "$1" guarded ;;
    "ks session, no uprobes")
      start_daemon --no-libc-uprobes --no-db-client-probes; start_agent; measure "$1" guarded ;;
    "ks seccomp session")
      printf 'version: 1\nprotect:\n  min_free: off\n' >"$work/seccomp-policy.yaml"
      start_daemon --seccomp-sessions --policy "$work/seccomp-policy.yaml"; start_agent
      for _ in $(seq 30); do
        "$KS" --runtime-dir "$work/run" status --json | grep -q '"file_tracepoints_attached": false' &&
          break
        sleep 0.1
      done
      "$KS" --runtime-dir "$work/run" status --json | grep -q '"file_tracepoints_attached": false' ||
        echo "note: the syscall tracepoints stayed attached in the seccomp row" >&2
      measure "$1" guarded ;;
    "auditd") if [[ -z "$why_no_auditd" ]] && start_auditd; then measure "$1"; fi ;;
    "bpftrace") if [[ -z "$why_no_bpftrace" ]] && start_bpftrace; then measure "$1"; fi ;;
  esac
  stop_all
}
loop "$work/loop" "$scratch" >/dev/null  # warm-up
for r in $(seq "$ROUNDS"); do
  echo "round $r of $ROUNDS..." >&2
  for i in "${!ROWS[@]}"; do run_row "${ROWS[$(( (i + r - 1) % ${#ROWS[@]} ))]}"; done
done

median() { printf '%s\n' $1 | sort -g | awk '{v[NR]=$1} END{if (NR) print (NR%2)? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
declare -A M
for row in "${ROWS[@]}"; do
  for col in tmpfs ext4 static getppid S B gS gB; do M["$row,$col"]=$(median "${R["$row,$col"]:-}"); done
done
# Loops: ns per iteration, ratio to none (lower is better); pgbench: tps,
# ratio to none's unguarded tps (higher is better).
cell() {  # cell ROW COL
  local v=${M["$1,$2"]:-} base=${M["none,$2"]:-}
  case $2 in gS) base=${M["none,S"]:-} ;; gB) base=${M["none,B"]:-} ;; esac
  if [[ -z "$v" ]]; then printf '%15s' "-"; return; fi
  awk -v v="$v" -v b="$base" 'BEGIN{ if (b > 0) printf "%8.0f %5.2fx", v, v/b; else printf "%15.0f", v }'
}
printf '\n%-28s %15s %15s %15s %15s %15s %15s %15s %15s\n' "" "loop tmpfs" "loop ext4" \
  "static tmpfs" "getppid" "pgbench -S" "TPC-B" "guarded -S" "guarded TPC-B"
printf '%-28s %15s %15s %15s %15s %15s %15s %15s %15s\n' "" "ns/iter" "ns/iter" "ns/iter" \
  "ns/iter" "tps" "tps" "tps" "tps"
for row in "${ROWS[@]}"; do
  if [[ $row == auditd && -n "$why_no_auditd" ]]; then printf '%-28s not measured: %s\n' "$row" "$why_no_auditd"; continue; fi
  if [[ $row == bpftrace && -n "$why_no_bpftrace" ]]; then printf '%-28s not measured: %s\n' "$row" "$why_no_bpftrace"; continue; fi
  printf '%-28s' "$row"
  for col in tmpfs ext4 static getppid S B gS gB; do printf ' %s' "$(cell "$row" "$col")"; done
  echo
done
echo
echo "Each cell: the median of $ROUNDS rounds and its ratio to 'none' (loops: time, lower is"
echo "better; pgbench: throughput, higher is better; guarded columns against none's unguarded"
echo "tps). Loops: $ITER iterations pinned to CPU 1. pgbench: 1 client, scale 10, ${SECS}s,"
echo "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on a private port the daemon watches."
echo "Kernel $(uname -r), $(nproc) CPUs. auditd $(dpkg-query -W -f='${Version}' auditd 2>/dev/null), bpftrace $(bpftrace --version 2>/dev/null | awk '{print $2}')."
echo "Goals (issue: no cost to the database): unguarded within 1% of none on LSM and fentry"
echo "kernels; on a tracepoint-only kernel (this one if 'killswitch doctor' says so), below"
echo "auditd and bpftrace; guarded pgbench at least 0.8 of unguarded."
