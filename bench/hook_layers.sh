#!/usr/bin/env bash
# What each hook layer costs processes that are NOT guarded, on a real Debian
# kernel (these machines cannot load LSM or fentry programs, so the kernel is
# booted under qemu, as in the vm test tier): the syscall loop of
# bench/syscall_loop.c, unguarded, while a guarded session exists, with no
# daemon, with the LSM layer, with the fentry layer (--no-lsm) and with the
# syscall tracepoints (--no-lsm --no-fentry), as a static binary and as a
# dynamic one (which meets the libc uprobes where a layer attaches them),
# and how long the daemon takes to start with each (the "start" row).
# Prints one row per round and loop.
#
# TCG emulates the CPU: absolute numbers are many times a real machine's;
# compare the columns of one run, not runs of different machines.
#
# Reproduce (as root, after scripts/build.sh; needs qemu-system-x86,
# busybox-static, cpio, as scripts/test.sh installs):
#   bench/hook_layers.sh [debian12|debian13] [ROUNDS] [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
KERNEL=${1:-debian12}
ROUNDS=${2:-3}
ITER=${3:-20000}
BUILD_DIR=${KS_BUILD_DIR:-build}
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -x "$BUILD_DIR/killswitch" ]] || scripts/build.sh >/dev/null
work=$(mktemp -d /tmp/ks-hookbench-XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O2 -static -o "$work/syscall_loop" bench/syscall_loop.c
cc -O2 -o "$work/syscall_loop_libc" bench/syscall_loop.c
{ echo "ROUNDS=$ROUNDS ITER=$ITER"; cat bench/guest_hook_layers.sh; } > "$work/guest.sh"
tests/vm/run_guest.sh --killswitch "$BUILD_DIR/killswitch" --kernel "$KERNEL" \
  --script "$work/guest.sh" --add "$work/syscall_loop" --add "$work/syscall_loop_libc" \
  --timeout 900 |
  grep -E '^(\| |\(| stat,| static;| lsm=)' || { echo "the guest run failed" >&2; exit 1; }
