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
echo "test.sh: all tiers took $(( $(date +%s) - start ))s"
exit $status
