# Guest script (tests/vm/run_guest.sh --lsm LIST-WITHOUT-BPF --add raw_unlinkat
# --add uring_unlink): booted with bpf left out of lsm=, the kernel still loads
# and attaches LSM programs but never runs them. killswitch must see that, say
# so (doctor, the daemon's log, status, its daemon_start record) and fall back
# to the other layers, whose limits the attacks below show: a raw system call
# completes before its caller dies.
fail=0
killswitch doctor --json > /tmp/doctor.json || { echo "FAIL: doctor exit $?"; exit 1; }
killswitch doctor | grep -E "^  lsm "
grep -q '"lsm": *false' /tmp/doctor.json || { echo "FAIL: doctor claims the lsm layer"; fail=1; }
grep -q 'bpf not active' /tmp/doctor.json || { echo "FAIL: doctor does not say bpf is not active"; fail=1; }

mkdir -p /data/db
for f in 1 2 3 4; do echo "rows $f" > /data/db/$f; done
killswitch daemon --protect /data/db --audit-log /tmp/audit.jsonl > /tmp/daemon.log 2>&1 &
for i in $(seq 300); do killswitch status > /dev/null 2>&1 && break; sleep 0.2; done
killswitch status > /dev/null 2>&1 || { echo "FAIL: the daemon did not start"; cat /tmp/daemon.log; exit 1; }
grep "LSM layer" /tmp/daemon.log
killswitch status | grep -E "^lsm layer:"
killswitch status | grep -q "^lsm layer:    not used: bpf is not in the active LSM list" ||
  { echo "FAIL: status does not say why the LSM layer is not used"; fail=1; }
grep '"event":"daemon_start"' /tmp/audit.jsonl | grep -q '"lsm":{"active":false,"reason":"bpf is not' ||
  { echo "FAIL: the daemon_start record does not say the LSM layer is off"; fail=1; }

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
row() { printf "| %-58s | %4s | %4s | %-10s |\n" "$@"; }
row "attack (as a guarded agent)" "lost" "exit" "layer"
# The static attacker: the syscall tracepoint kills it, after its first call.
killswitch run --session raw -- raw_unlinkat /data/db/1 /data/db/2 /data/db/3 > /dev/null 2>&1
rc=$?
left=$(count)
layer=$(layers raw)
row "static binary, raw unlinkat(2) of 3 files" $((4 - left)) $rc "$layer"
[ "$rc" = 137 ] || { echo "FAIL: the raw attacker was not killed (exit $rc)"; fail=1; }
[ "$left" -ge 3 ] || { echo "FAIL: more than one file lost"; fail=1; }
[ "$layer" = tracepoint ] || { echo "FAIL: expected the tracepoint layer"; fail=1; }
# io_uring: refused at setup (its requests would meet no hook).
killswitch run --session uring -- uring_unlink /data/db/4 > /dev/null 2>&1
rc=$?
layer=$(layers uring)
row "io_uring IORING_OP_UNLINKAT (killed at io_uring_setup)" "$([ -f /data/db/4 ] && echo 0 || echo 1)" \
  $rc "$layer"
[ -f /data/db/4 ] || { echo "FAIL: io_uring deleted a file"; fail=1; }
[ "$layer" = tracepoint ] || { echo "FAIL: expected the tracepoint layer"; fail=1; }
exit $fail
