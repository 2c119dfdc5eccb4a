# Guest script (tests/vm/run_guest.sh): on a kernel with bpf in its LSM list,
# doctor must find that LSM and fentry (fmod_ret) programs run (a hit, and for
# fmod_ret a refused unlink, not only an attach)
# and say the file and self-protection rows are prevented there.
killswitch doctor --json > /tmp/doctor.json || { echo "FAIL: doctor exit $?"; exit 1; }
killswitch doctor | grep -E "^  (lsm|fentry) "
fail=0
grep -q '"lsm": *true' /tmp/doctor.json || { echo "FAIL: doctor says no lsm"; fail=1; }
grep -q '"fentry": *true' /tmp/doctor.json || { echo "FAIL: doctor says no fentry"; fail=1; }
grep -q 'bpf active' /tmp/doctor.json || { echo "FAIL: doctor does not see bpf in the active list"; fail=1; }
# Keys are sorted: "operation" is followed by "preventive".
flat=$(tr -d ' \n' < /tmp/doctor.json)
for op in unlink-raw-syscall rename truncate open-truncate-or-write io_uring-ops mount-over-data \
          self-signal-raw-syscall self-bpf-detach reach-raw-syscall metadata block-device-write; do
  echo "$flat" | grep -q "\"operation\":\"$op\",\"preventive\":true" ||
    { echo "FAIL: doctor does not say $op is prevented here"; fail=1; }
done
exit $fail
