#!/usr/bin/env bash
# One command to test killswitch: installs what is missing, builds, and runs
# every ctest tier (unit, kernel, e2e). Tiers that need root or a kernel
# feature skip with their reason when it is missing; as root on a machine
# like CI's they all run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${KS_BUILD_DIR:-build}

if [[ $(id -u) -eq 0 ]]; then
  scripts/deps.sh --test
else
  echo "test.sh: not root: the kernel and e2e tiers will skip (they load BPF programs)"
  scripts/deps.sh --test || true
fi
scripts/build.sh

cd "$BUILD_DIR"
start=$(date +%s)
status=0
ctest --output-on-failure -j2 --timeout 600 "$@" || status=$?
# The vm tier's attack tables, per kernel: ctest keeps a passing test's output
# only in its log.
log=Testing/Temporary/LastTest.log
if grep -q "Test: Vm\..*Attack\|Test: Vm\..*FallsBack" "$log" 2>/dev/null; then
  echo "test.sh: attack tables of the vm tier (guest output in $BUILD_DIR/$log):"
  awk '/^[0-9]+\/[0-9]+ Test: Vm\./ { test = $3 }
       /guest: kernel/ && test ~ /Attack|FallsBack/ { sub(/.*guest: kernel/, "kernel"); print "\n" test ": " $0 }
       /^\| / && test ~ /Attack|FallsBack/ { print }' "$log"
fi
# The real agents' table: per agent, terminal and case, whether the agent
# reached its next turn, how long that took, and what the model received.
if grep -q "Test: RealCli/Agents\." "$log" 2>/dev/null; then
  echo "test.sh: real agent CLIs (tests/e2e/agents_test.cpp; rerun: ctest -R RealCli -V):"
  awk '/^\| agent / && !hdr { print; print "|---|---|---|---|---|---|"; hdr = 1 }
       /^\| (claude|codex|gemini|opencode) / { print }' "$log"
fi
# The database clients' table: per client, case and transport, whether the
# data stayed, how the client heard of the refusal, and the timings.
if grep -q "Test: DbClients" "$log" 2>/dev/null; then
  echo "test.sh: database clients, ORMs and migration tools (tests/e2e/db_clients_test.cpp; rerun: ctest -R DbClients -V):"
  awk '/^\| kind / && !hdr { print; print "|---|---|---|---|---|---|---|---|"; hdr = 1 }
       /^\| (destructive|harmless) / { print }' "$log"
fi
echo "test.sh: all tiers took $(( $(date +%s) - start ))s"
exit $status
