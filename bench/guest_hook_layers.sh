# Guest script for bench/hook_layers.sh (runs inside the qemu guest): the
# syscall loop of an UNGUARDED process while a guarded session exists (the
# file layers attached), with each way killswitch can watch files:
#   none        no daemon
#   lsm         the LSM layer (default where bpf is an active LSM)
#   fentry      killswitch daemon --no-lsm: fmod_ret on the security_* functions
#   tracepoint  killswitch daemon --no-lsm --no-fentry: libc uprobes and
#               syscall tracepoints
# "files" is a static binary: no libc uprobe can trap in it, what differs is
# the hook layer alone. "files-libc" is the same loop linked against libc, as
# the database server and most programs are: it traps into every libc uprobe
# a layer attaches (only the tracepoint mode attaches them). "write" is one
# 4 KiB pwrite per iteration, static: every write asks the file_permission
# hook, which the hook layers use for the space budget (protect.min_free, on
# by default); an unguarded writer leaves it at the guarded-task lookup.
# "start" is the daemon's start to ready, in seconds (mostly the kernel
# verifying the programs the layer loads).
ROUNDS=${ROUNDS:-3}
ITER=${ITER:-20000}
mkdir -p /tmp/scratch /data/db
echo rows > /data/db/1
dpid="" apid=""
uptime_cs() { cut -d' ' -f1 /proc/uptime | tr -d .; }
ready="-"
start() {
  t0=$(uptime_cs)
  killswitch daemon --protect /data/db --audit-log /tmp/audit.jsonl --pin-dir "" "$@" \
    > /tmp/daemon.log 2>&1 &
  dpid=$!
  for i in $(seq 3000); do killswitch status > /dev/null 2>&1 && break; sleep 0.1; done
  ready=$(awk -v a="$t0" -v b="$(uptime_cs)" 'BEGIN { printf "%.1fs", (b - a) / 100 }')
  killswitch run --session bench -- sleep 600 > /dev/null 2>&1 &
  apid=$!
  for i in $(seq 100); do
    killswitch status --json | grep -q '"file_protection_attached": *true' && break
    sleep 0.1
  done
}
stop() {
  kill "$apid" 2> /dev/null
  kill -INT "$dpid"
  for i in $(seq 100); do kill -0 "$dpid" 2> /dev/null || break; sleep 0.1; done
}
layer_of() {
  killswitch status | grep -q '^lsm layer:    active' && { echo lsm; return; }
  killswitch status | grep -q '^fentry layer: active' && { echo fentry; return; }
  echo tracepoint
}
# Every loop, each mode: "files" (open/close/stat/unlink), static and
# dynamic, and "getppid".
measure() {
  echo "$1:files=$(syscall_loop /tmp/scratch "$ITER")" \
    "$1:files-libc=$(syscall_loop_libc /tmp/scratch "$ITER")" \
    "$1:getppid=$(syscall_loop getppid $((ITER * 10)))" \
    "$1:write=$(syscall_loop write:/tmp/scratch/w $((ITER * 5)))" \
    "$1:start=$ready"
}
syscall_loop /tmp/scratch 2000 > /dev/null  # warm-up
printf '| %-5s | %-10s | %10s | %10s | %10s | %10s |\n' round loop none lsm fentry tracepoint
for r in $(seq "$ROUNDS"); do
  ready="-"
  res=$(measure none)
  for args in "" "--no-lsm" "--no-lsm --no-fentry"; do
    start $args
    res="$res $(measure "$(layer_of)")"
    stop
  done
  pick() { echo "$res" | tr ' ' '\n' | grep "^$1:$2=" | cut -d= -f2; }
  for loop in files files-libc getppid write start; do
    printf '| %-5s | %-10s | %10s | %10s | %10s | %10s |\n' "$r" "$loop" "$(pick none $loop)" \
      "$(pick lsm $loop)" "$(pick fentry $loop)" "$(pick tracepoint $loop)"
  done
done
echo "(ns per iteration of an unguarded process under TCG: files = open, close,"
echo " stat, unlink, static; files-libc = the same, dynamic; getppid = one getppid,"
echo " static; write = one 4 KiB pwrite, static; start = seconds from"
echo " killswitch daemon to ready; kernel $(uname -r),"
echo " lsm=$(cat /sys/kernel/security/lsm))"
