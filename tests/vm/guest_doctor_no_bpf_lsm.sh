# Guest script (tests/vm/run_guest.sh): booted with bpf left out of lsm=, the
# kernel still loads and attaches LSM programs but never runs them; doctor
# must say no, and why.
killswitch doctor --json > /tmp/doctor.json || { echo "FAIL: doctor exit $?"; exit 1; }
killswitch doctor | grep -E "^  lsm "
fail=0
grep -q '"lsm": *false' /tmp/doctor.json || { echo "FAIL: doctor claims the lsm layer"; fail=1; }
grep -q 'bpf not active' /tmp/doctor.json || { echo "FAIL: doctor does not say bpf is not active"; fail=1; }
exit $fail
