# Guest script (tests/vm/run_guest.sh --lsm LIST-WITHOUT-BPF --add raw_unlinkat
# --add uring_unlink): booted with bpf left out of lsm=, the kernel still loads
# and attaches LSM programs but never runs them. killswitch must see that, say
# so (doctor, the daemon's log, status, its daemon_start record) and fall back:
# first to the fentry layer (the same checks as fmod_ret programs on the
# security_* functions, which refuse as the LSM hooks do: the attack suite
# runs against it in its own test), then, with --no-fentry, to the libc
# uprobes and syscall tracepoints. The attacks below show what that last
# fallback can do: a raw system call completes before its caller dies;
# io_uring is refused at setup.
#
# Table rows start with "| " (scripts/test.sh prints them from ctest's log).
fail=0
killswitch doctor --json > /tmp/doctor.json || { echo "FAIL: doctor exit $?"; exit 1; }
killswitch doctor | grep -E -A1 "^  (lsm|fentry|unlink-raw-syscall) "
grep -q '"lsm": *false' /tmp/doctor.json || { echo "FAIL: doctor claims the lsm layer"; fail=1; }
grep -q 'bpf not active' /tmp/doctor.json || { echo "FAIL: doctor does not say bpf is not active"; fail=1; }
grep -q '"fentry": *true' /tmp/doctor.json || { echo "FAIL: doctor does not find fentry"; fail=1; }
killswitch doctor | grep -A2 '^  unlink-raw-syscall' | grep -q 'via: fmod_ret on security_path_unlink' ||
  { echo "FAIL: doctor's unlink-raw-syscall row does not name the fentry layer"; fail=1; }
killswitch doctor | grep '^  unlink-raw-syscall' | grep -q 'prevents' ||
  { echo "FAIL: doctor's unlink-raw-syscall row does not say prevents"; fail=1; }

mkdir -p /data/db /data/away
reset_files() { rm -f /data/db/* /data/away/*; for f in 1 2 3 4 5; do echo "rows $f" > /data/db/$f; done; }
count() { ls /data/db | wc -l; }
# The layers of a session's file records, once the daemon has written them.
layers() {
  for i in $(seq 50); do
    grep "\"session\":\"$1\"" /tmp/audit.jsonl | grep -q '"event":"file"' && break
    sleep 0.1
  done
  grep "\"session\":\"$1\"" /tmp/audit.jsonl | grep '"event":"file"' |
    grep -o '"layer":"[a-z_]*"' | cut -d'"' -f4 | sort -u | tr '\n' ' ' | sed 's/ $//'
}
# What the daemon wrote last, when a record is not the one expected.
wrong_layer() {
  echo "FAIL: expected the $1 layer; the last file records:"
  grep '"event":"file"' /tmp/audit.jsonl | tail -3 | cut -c1-600
  fail=1
}
row() { printf "| %-58s | %4s | %4s | %-10s |\n" "$@"; }
start_daemon() {
  killswitch daemon --protect /data/db --audit-log /tmp/audit.jsonl --pin-dir "" "$@" \
    > /tmp/daemon.log 2>&1 &
  dpid=$!
  for i in $(seq 300); do killswitch status > /dev/null 2>&1 && break; sleep 0.2; done
  killswitch status > /dev/null 2>&1 || { echo "FAIL: the daemon did not start"; cat /tmp/daemon.log; exit 1; }
}
stop_daemon() {
  kill -INT "$dpid"
  for i in $(seq 100); do kill -0 "$dpid" 2> /dev/null || break; sleep 0.1; done
}
# Attacks as guarded agents: $1 is the layer every record must name.
attacks() {
  want=$1 tag=$2
  reset_files
  killswitch run --session "raw$tag" -- raw_unlinkat /data/db/1 /data/db/2 /data/db/3 > /dev/null 2>&1
  rc=$?
  left=$(count)
  layer=$(layers "raw$tag")
  row "static binary, raw unlinkat(2) of 3 files" $((5 - left)) $rc "$layer"
  [ "$rc" = 137 ] || { echo "FAIL: the raw attacker was not killed (exit $rc)"; fail=1; }
  [ "$left" -ge 4 ] || { echo "FAIL: more than one file lost"; fail=1; }
  [ "$layer" = "$want" ] || wrong_layer "$want"

  # busybox is static: mv is rename(2) with no libc uprobe in the way (the
  # copy busybox.lsm: `busybox mv` would be held and refused at exec).
  killswitch run --session "mv$tag" -- busybox.lsm mv /data/db/4 /data/db/5 /data/away/ > /dev/null 2>&1
  rc=$?
  layer=$(layers "mv$tag")
  moved=$(ls /data/away | wc -l)
  row "static busybox mv of 2 files out of the tree" "$moved" $rc "$layer"
  [ "$rc" = 137 ] || { echo "FAIL: mv was not killed (exit $rc)"; fail=1; }
  [ "$moved" -le 1 ] || { echo "FAIL: more than one file moved away"; fail=1; }
  [ "$layer" = "$want" ] || wrong_layer "$want"

  # A redirection: open(O_TRUNC) by the static shell.
  reset_files
  killswitch run --session "trunc$tag" -- sh -c 'echo gone > /data/db/1; echo gone > /data/db/2' \
    > /dev/null 2>&1
  rc=$?
  layer=$(layers "trunc$tag")
  emptied=0
  for f in 1 2; do grep -q "rows $f" /data/db/$f || emptied=$((emptied + 1)); done
  row "static sh: > onto 2 files" "$emptied" $rc "$layer"
  [ "$rc" = 137 ] || { echo "FAIL: the shell was not killed (exit $rc)"; fail=1; }
  [ "$emptied" -le 1 ] || { echo "FAIL: more than one file overwritten"; fail=1; }
  [ "$layer" = "$want" ] || wrong_layer "$want"

  # io_uring: refused at setup (the requests would otherwise go first).
  reset_files
  killswitch run --session "uring$tag" -- uring_unlink /data/db/4 > /dev/null 2>&1
  rc=$?
  layer=$(layers "uring$tag")
  row "io_uring IORING_OP_UNLINKAT (killed at io_uring_setup)" \
    "$([ -f /data/db/4 ] && echo 0 || echo 1)" $rc "$layer"
  [ "$rc" = 137 ] || { echo "FAIL: the io_uring attacker was not killed (exit $rc)"; fail=1; }
  [ -f /data/db/4 ] || { echo "FAIL: io_uring deleted a file"; fail=1; }
  [ "$layer" = "$want" ] || wrong_layer "$want"
}

# 1. The default: LSM is not usable, fentry is.
start_daemon
grep -E "LSM layer|fentry layer" /tmp/daemon.log
killswitch status | grep -E "^(lsm|fentry) layer:"
killswitch status | grep -q "^lsm layer:    not used: bpf is not in the active LSM list" ||
  { echo "FAIL: status does not say why the LSM layer is not used"; fail=1; }
killswitch status | grep -q "^fentry layer: active" ||
  { echo "FAIL: status does not say the fentry layer is active"; cat /tmp/daemon.log; fail=1; }
grep '"event":"daemon_start"' /tmp/audit.jsonl | grep -q '"lsm":{"active":false,"reason":"bpf is not' ||
  { echo "FAIL: the daemon_start record does not say the LSM layer is off"; fail=1; }
grep '"event":"daemon_start"' /tmp/audit.jsonl | grep -q '"fentry":{"active":true' ||
  { echo "FAIL: the daemon_start record does not say the fentry layer is on"; fail=1; }
# No syscall tracepoint is attached, so processes that are not guarded stay
# off the syscall tracing path (and no libc uprobe: the attack suite checks).
killswitch run --session idle -- sleep 30 &
for i in $(seq 50); do killswitch status --json | grep -q '"file_protection_attached": *true' && break; sleep 0.1; done
tps=$(killswitch status --json | tr -d ' \n' | grep -o '"\(file\|self\)_tracepoints":\[[^]]*\]')
echo "attached syscall tracepoints: $tps"
echo "$tps" | grep -q 'sys_enter' && { echo "FAIL: syscall tracepoints attached with the fentry layer"; fail=1; }
echo "$tps" | grep -q '"file_tracepoints":\[\]' || { echo "FAIL: no file_tracepoints in status"; fail=1; }
# Refusals, to see the layer at work here (the attack suite has the rest).
# Two, not three: the default policy freezes a session at its third refusal
# (sessions.escalate_after), and whether that lands before the attacker's
# exit is a race; the attacker must go on here.
reset_files
killswitch run --session raw -- raw_unlinkat /data/db/1 /data/db/2 > /dev/null 2>&1
rc=$?
left=$(count)
layer=$(layers raw)
echo
echo "fentry layer (Linux $(uname -r), lsm=$(cat /sys/kernel/security/lsm)):"
row "attack (as a guarded agent)" "lost" "exit" "layer"
row "static binary, raw unlinkat(2) of 2 files: refused" $((5 - left)) $rc "$layer"
[ "$left" = 5 ] || { echo "FAIL: $((5 - left)) files lost"; fail=1; }
[ "$rc" = 0 ] || { echo "FAIL: the refused attacker did not go on (exit $rc)"; fail=1; }
[ "$layer" = fentry ] || wrong_layer fentry
stop_daemon

# 2. --no-fentry: the syscall tracepoints.
: > /tmp/audit.jsonl
start_daemon --no-fentry
killswitch status | grep -E "^(lsm|fentry) layer:"
killswitch status | grep -q "^fentry layer: not used: turned off" ||
  { echo "FAIL: status does not say the fentry layer is turned off"; fail=1; }
echo
echo "syscall tracepoint layer (killswitch daemon --no-fentry):"
row "attack (as a guarded agent)" "lost" "exit" "layer"
attacks tracepoint 2
stop_daemon
exit $fail
