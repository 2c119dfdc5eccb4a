#!/usr/bin/env bash
# Boots a Debian kernel under qemu (TCG: the VM's /dev/kvm is too slow to be
# worth it) with an initramfs that holds killswitch, its shared libraries,
# busybox and a guest script, runs the script as the guest's init, and exits
# with the script's exit status. The guest's console goes to stdout.
#
#   tests/vm/run_guest.sh --killswitch BIN --kernel PACKAGE --script FILE
#                         [--add PROGRAM]... [--lsm LIST] [--timeout SECONDS]
#                         [--cache DIR]
#
# PACKAGE is a Debian kernel package (linux-image-6.1.0-56-amd64), or
# `debian12` for the one linux-image-amd64 depends on in this system's apt
# sources, or `debian13` for trixie's (through a private apt configuration in
# the cache directory: the system's sources are not touched). It is fetched
# with `apt-get download` once and kept in the cache directory (default
# /var/cache/killswitch-vm). --lsm sets the kernel's lsm= list (the
# default is the kernel's own, which on Debian ends in bpf). The script runs
# with /bin/sh (busybox) as root in the guest, with proc, sysfs, devtmpfs,
# tmpfs on /tmp, bpffs, securityfs, tracefs and cgroup2 mounted, and the
# killswitch binary at /usr/bin/killswitch. Each --add PROGRAM goes to
# /usr/bin as well, with the shared libraries it needs.
#
# The exit status reaches the host through qemu's isa-debug-exit device:
# the guest writes it to I/O port 0xf4 (/dev/port) and qemu exits with
# (status << 1) | 1. A guest that never writes it (panic, timeout) gives 125.
# A host that cannot run the tier (not root, no qemu, no kernel package to
# download) gives 77, the skip status of the ctest tier, with the reason.
set -euo pipefail

ks="" kernel="" script="" lsm="" timeout_s=330 extra=() cache=${KS_VM_CACHE:-/var/cache/killswitch-vm}
while (($#)); do
  case "$1" in
    --killswitch) ks=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --script) script=$2; shift 2 ;;
    --add) extra+=("$2"); shift 2 ;;
    --lsm) lsm=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    *) echo "run_guest: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -x "$ks" && -n "$kernel" && -r "$script" ]] || {
  echo "run_guest: needs --killswitch BIN, --kernel PACKAGE and --script FILE" >&2; exit 2; }
skip() { echo "run_guest: SKIP: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root (apt-get download into the cache, the guest's BPF programs)"
for tool in qemu-system-x86_64 busybox cpio; do
  command -v "$tool" >/dev/null || skip "$tool is missing (scripts/deps.sh --test installs it)"
done
# Guests run two at a time (ctest -j2): one fetches a kernel, or updates
# the trixie package lists, while the other waits.
mkdir -p "$cache"
exec 9> "$cache/.lock"
flock 9
apt_opts=()
if [[ "$kernel" == debian13 ]]; then
  a="$cache/apt-trixie"
  mkdir -p "$a/lists/partial" "$a/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    > "$a/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$a/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a" -o Debug::NoLocking=1)
  if [[ -z $(find "$a/lists" -name '*Packages*' -mmin -1440 2>/dev/null | head -1) ]]; then
    apt-get "${apt_opts[@]}" update >/dev/null 2>&1 || skip "apt-get update for trixie failed (no network?)"
  fi
  kernel=debian-image
fi
# The kernel: downloaded once, its vmlinuz kept.
source "$(dirname "$0")/kernel_cache.sh"
ks_vm_kernel "$kernel" "$cache" "${apt_opts[@]}"

flock -u 9

# The initramfs: busybox, killswitch and every library it loads.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,proc,sys,dev,tmp,run,sys/fs/bpf,etc}
cp "$(command -v busybox)" "$root/bin/busybox"
# A copy under another name: the exec layer holds `busybox APPLET` (judged as
# APPLET) but not this one, so the guest scripts reach the kernel's own
# layers with it (busybox runs ARGV[1] for any name that starts "busybox").
cp "$root/bin/busybox" "$root/bin/busybox.lsm"
for applet in sh mount umount mkdir cat echo ls sleep dd printf rm rmdir mv cp ln grep sync \
              poweroff head seq test true false stat wc tr find xargs sort md5sum truncate kill \
              cut sed reboot; do
  ln -s busybox "$root/bin/$applet"
done
cp "$ks" "$root/usr/bin/killswitch"
for prog in "${extra[@]}"; do
  [[ -x "$prog" ]] || { echo "run_guest: --add $prog: not an executable" >&2; exit 2; }
  cp "$prog" "$root/usr/bin/"
done
# ldd says "not a dynamic executable" (status 1) for a static program.
for prog in "$ks" "${extra[@]}"; do ldd "$prog" 2>/dev/null || true; done |
  awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp "$script" "$root/guest.sh"
cat > "$root/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t bpf bpf /sys/fs/bpf
mount -t securityfs securityfs /sys/kernel/security
mount -t tracefs tracefs /sys/kernel/tracing
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "guest: kernel $(cat /proc/sys/kernel/osrelease), lsm $(cat /sys/kernel/security/lsm)"
sh /guest.sh
status=$?
echo "guest: exit $status"
sync
# qemu exits with (status << 1) | 1.
printf "\\$(printf %o "$status")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
EOF
chmod 755 "$root/init"
initrd=$(mktemp --suffix=.cpio.gz)
trap 'rm -rf "$root" "$initrd"' EXIT
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 > "$initrd")

append="console=ttyS0 panic=-1 quiet"
[[ -n "$lsm" ]] && append+=" lsm=$lsm"
echo "run_guest: booting $kernel${lsm:+ with lsm=$lsm} (TCG)"
status=0
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 1 \
  -kernel "$vmlinuz" -initrd "$initrd" -append "$append" \
  -nographic -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 || status=$?
# isa-debug-exit: (code << 1) | 1; anything even is qemu's own end (or timeout).
if ((status % 2 == 1)); then exit $((status >> 1)); fi
echo "run_guest: the guest did not report a status (qemu exit $status)" >&2
exit 125
