#!/usr/bin/env bash
# Boots a real Debian 12 (bookworm) system, systemd as PID 1, under qemu
# (TCG) with the killswitch Debian package installed the way dpkg installs
# it, and runs a check script as a oneshot unit ordered after
# killswitch.service. Exits with the check script's exit status; the guest's
# console goes to stdout.
#
#   tests/vm/run_systemd_guest.sh --deb PATH --script FILE [--kernel PACKAGE]
#                                 [--timeout SECONDS] [--cache DIR] [--smp N]
#
# The root filesystem: `debootstrap --variant=minbase` of bookworm with
# systemd, systemd-sysv, dbus, logrotate, procps, jq (for the checks) and the
# .deb's Depends, built once and kept as a tarball in the cache directory
# (default /var/cache/killswitch-vm, or $KS_VM_CACHE), named by a digest of
# the package list, so later runs only unpack it. Each run unpacks it, installs the .deb
# with `dpkg -i` in a chroot (no systemd runs there: postinst enables the
# unit, as on a system being installed), adds the check script as
# /usr/local/sbin/ks-guest-check and the unit ks-check.service
# (WantedBy=multi-user.target, After= and Wants=killswitch.service), and boots
# the whole tree as the initramfs (uncompressed cpio; /init is systemd, and
# there is no /etc/initrd-release, so systemd boots it as the real root to
# multi-user.target).
#
# PACKAGE is a Debian kernel package, or `debian12` (the default) for the one
# linux-image-amd64 depends on in this system's apt sources; its vmlinuz is
# kept in the cache directory, as tests/vm/run_guest.sh does (same file names,
# so the two share it).
#
# The status reaches the host through qemu's isa-debug-exit device: the unit
# writes it to I/O port 0xf4 and qemu exits with (status << 1) | 1. A guest
# that never writes it (panic, hang, timeout) gives 125. A host that cannot
# run it (not root, no qemu, no debootstrap, no network for the first build)
# gives 77 with the reason.
set -euo pipefail

deb="" kernel=debian12 script="" timeout_s=600 smp=1 mem=2048
cache=${KS_VM_CACHE:-/var/cache/killswitch-vm}
suite=bookworm mirror=${KS_VM_MIRROR:-http://deb.debian.org/debian}
while (($#)); do
  case "$1" in
    --deb) deb=$2; shift 2 ;;
    --script) script=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    *) echo "run_systemd_guest: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -r "$deb" && -r "$script" ]] || {
  echo "run_systemd_guest: needs --deb PATH and --script FILE" >&2; exit 2; }
skip() { echo "run_systemd_guest: SKIP: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root (debootstrap, chroot, dpkg -i into the guest's tree)"
for tool in qemu-system-x86_64 cpio dpkg-deb chroot; do
  command -v "$tool" >/dev/null || skip "$tool is missing"
done
deb=$(realpath "$deb")
dpkg-deb -f "$deb" Package >/dev/null 2>&1 || { echo "run_systemd_guest: $deb is not a .deb" >&2; exit 2; }

# The root filesystem, built once (tests/vm/rootfs_cache.sh).
source "$(dirname "$0")/rootfs_cache.sh"
ks_rootfs "$deb" "$cache" "$suite" "$mirror"

source "$(dirname "$0")/kernel_cache.sh"
ks_vm_kernel "$kernel" "$cache"
flock -u 9

root=$(mktemp -d)
initrd=$(mktemp --suffix=.cpio)
trap 'rm -rf "$root" "$initrd"' EXIT
trap 'exit 143' TERM INT
tar -C "$root" --numeric-owner -xzf "$tarball"

# The package, installed as on any system: dpkg -i runs its postinst, which
# (no systemd running in the chroot) enables the unit without starting it.
cp "$deb" "$root/tmp/killswitch.deb"
if ! chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
     dpkg -i /tmp/killswitch.deb > "$root/tmp/dpkg.log" 2>&1; then
  cat "$root/tmp/dpkg.log"
  echo "run_systemd_guest: dpkg -i $(basename "$deb") failed in the guest's tree" >&2
  exit 1
fi
# Kept for the checks of an upgrade (dpkg -i again) and a removal.
mkdir -p "$root/var/cache/ks-test"
mv "$root/tmp/killswitch.deb" "$root/var/cache/ks-test/killswitch.deb"
[[ -L "$root/etc/systemd/system/multi-user.target.wants/killswitch.service" ]] || {
  cat "$root/tmp/dpkg.log"
  echo "run_systemd_guest: postinst did not enable killswitch.service" >&2
  exit 1
}
echo "run_systemd_guest: installed $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version); killswitch.service enabled by postinst"

# The system: a name, a fixed machine id (not a first boot), no password,
# nothing that waits for hardware or a terminal.
echo ksguest > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 ksguest\n' > "$root/etc/hosts"
tr -d '-' < /proc/sys/kernel/random/uuid > "$root/etc/machine-id"
: > "$root/etc/fstab"
rm -f "$root/etc/initrd-release"
for unit in getty@tty1.service serial-getty@ttyS0.service getty.target console-getty.service \
            systemd-timesyncd.service systemd-firstboot.service systemd-modules-load.service \
            apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
            fstrim.timer logrotate.timer man-db.timer systemd-tmpfiles-clean.timer \
            systemd-networkd-wait-online.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
# The kernel's messages go to the console already; the journal keeps the rest.
mkdir -p "$root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nForwardToConsole=no\n' > "$root/etc/systemd/journald.conf.d/ks.conf"

install -m 0755 "$script" "$root/usr/local/sbin/ks-guest-check"
cat > "$root/usr/local/sbin/ks-check-run" <<'EOF'
#!/bin/sh
# Runs the checks, hands their status to qemu (isa-debug-exit at 0xf4: qemu
# exits with (status << 1) | 1) and powers off if qemu is still there.
echo "guest: $(uname -r), systemd $(systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p'), $(cut -d' ' -f1 /proc/uptime)s since boot"
/usr/local/sbin/ks-guest-check
status=$?
echo "guest: exit $status"
sync
printf "\\$(printf %o "$status")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
systemctl poweroff -f
EOF
chmod 755 "$root/usr/local/sbin/ks-check-run"
cat > "$root/etc/systemd/system/ks-check.service" <<'EOF'
[Unit]
Description=killswitch package checks (tests/vm/guest_service_check.sh)
After=killswitch.service
Wants=killswitch.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/ks-check-run
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
EOF
ln -sf /lib/systemd/system/multi-user.target "$root/etc/systemd/system/default.target"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/ks-check.service "$root/etc/systemd/system/multi-user.target.wants/ks-check.service"
ln -sf lib/systemd/systemd "$root/init"

(cd "$root" && find . | cpio -o -H newc --quiet > "$initrd")
echo "run_systemd_guest: guest tree ready in ${SECONDS} s; booting $kernel with systemd ($(du -m "$initrd" | cut -f1) MB initramfs, TCG, -smp $smp)"

append="console=ttyS0 panic=-1 quiet systemd.show_status=0 systemd.unified_cgroup_hierarchy=1"
append+=" rdinit=/init loglevel=4"
status=0 boot_start=$SECONDS
# In the background, so that a TERM (ctest's timeout) ends qemu and the
# EXIT trap removes the guest's tree.
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -m "$mem" -smp "$smp" \
  -kernel "$vmlinuz" -initrd "$initrd" -append "$append" \
  -nographic -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 < /dev/null &
qpid=$!
trap 'kill "$qpid" 2>/dev/null; exit 143' TERM INT
wait "$qpid" || status=$?
trap - TERM INT
echo "run_systemd_guest: qemu ended after $((SECONDS - boot_start)) s (exit $status)"
if ((status % 2 == 1)); then exit $((status >> 1)); fi
echo "run_systemd_guest: the guest did not report a status (qemu exit $status)" >&2
exit 125
