#!/usr/bin/env bash
# Scoreboard of the on-disk attacks: one row per attack, run as a guarded
# agent against a protected tree of 2,000 files under the default policy
# (block, then freeze the session). The attacks are the e2e tests of
# tests/e2e/file_guard_test.cpp; this script runs them and prints the rows
# they record.
#
# Reproduce (as root, after scripts/build.sh):
#   bench/file_attacks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${KS_BUILD_DIR:-build}
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x "$BUILD_DIR/tests/ks_e2e_tests" ]] || scripts/build.sh >/dev/null

rows=$(mktemp /tmp/ks-scoreboard-XXXXXX)
trap 'rm -f "$rows"' EXIT
KS_SCOREBOARD="$rows" "$BUILD_DIR/tests/ks_e2e_tests" --gtest_filter='FileGuardE2E.*' \
  --gtest_brief=1 >/dev/null || echo "(some attack tests failed: see ctest -L e2e)"

printf '%-14s %6s %8s  %-26s %-11s %12s %12s %12s\n' attack "files" "bytes" "agent stopped" layer \
  "entry->stop" "entry->verdict" "entry->frozen"
printf '%-14s %6s %8s  %-26s %-11s %12s %12s %12s\n' "" lost lost "" "" "(kernel)" "(exec hold)" "(session)"
while IFS=$'\t' read -r name files bytes stopped layer stop decision frozen; do
  printf '%-14s %6s %8s  %-26s %-11s %12s %12s %12s\n' "$name" "$files" "$bytes" "$stopped" "$layer" \
    "$stop" "$decision" "$frozen"
done < "$rows"
echo
echo "entry->stop: syscall or libc entry to the kernel's signal (uprobe, tracepoint layers)."
echo "entry->verdict: execve entry (task stopped there) to the daemon's verdict (exec layer)."
echo "entry->frozen: entry to the session's cgroup.freeze written by the daemon."
echo "kernel $(uname -r), $(nproc) CPUs; tree: 20 dirs x 100 files of about 1 KB"
