# Guest script (tests/vm/run_guest.sh): the daemon's programs load and work on
# this kernel (CO-RE against a vmlinux.h made from another kernel's BTF; an
# older verifier). A guarded `rm` of protected data is stopped before it runs
# and the file stays.
mkdir -p /data && echo rows > /data/f
killswitch daemon --protect /data --audit-log /tmp/audit.jsonl > /tmp/daemon.log 2>&1 &
for i in $(seq 300); do killswitch status > /dev/null 2>&1 && break; sleep 0.2; done
killswitch status > /dev/null 2>&1 || { echo "FAIL: the daemon did not start"; cat /tmp/daemon.log; exit 1; }
killswitch status | grep -E "^(layers|databases):"
killswitch run --session smoke -- /bin/rm -f /data/f
echo "guarded rm: exit $?"
fail=0
# Every layer loaded on this kernel: the socket path too (its verifier is older).
killswitch status --json | grep -q '"db_socket_path_error": null' ||
  { echo "FAIL: the database socket path did not load on this kernel"; fail=1; }
[ -e /data/f ] || { echo "FAIL: /data/f was deleted"; fail=1; }
# The daemon writes its records a moment after the decision.
for i in $(seq 50); do grep -q '"layer":"exec"' /tmp/audit.jsonl && break; sleep 0.2; done
grep -q '"layer":"exec"' /tmp/audit.jsonl || { echo "FAIL: no exec-layer record"; fail=1; }
grep '"event":"file"' /tmp/audit.jsonl | head -1
exit $fail
