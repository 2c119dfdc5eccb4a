# Sourced by the vm tier's systemd guest and the container tier: a Debian
# root filesystem with what the killswitch package needs, built once.
#
#   ks_rootfs DEB CACHE SUITE MIRROR
#
# `debootstrap --variant=minbase` of SUITE with systemd, systemd-sysv, dbus,
# logrotate, procps, jq (for the checks) and DEB's Depends, kept as a
# tarball in CACHE named by a digest of the package list, so later runs only
# unpack it; its path is left in $tarball. Holds CACHE/.lock on fd 9 (the
# caller releases it with `flock -u 9` when done with the cache). Calls the
# caller's skip function when it cannot be built here (no debootstrap, no
# network for the first build).
ks_rootfs() {
  local deb=$1 cache=$2 suite=$3 mirror=$4
  local deps real_deps d p pkgs key build log
  # What the guest needs: systemd and its friends, and what the package
  # depends on (names only; debootstrap takes the suite's versions).
  deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//; s/[[:space:]]//g' | grep -v '^$' || true)
  # A virtual name (libspdlog1.10-fmt9 is provided by libspdlog1.10) is given
  # to debootstrap as the package that provides it in this system's sources.
  real_deps=()
  for d in $deps; do
    if [[ $(apt-cache show --no-all-versions "$d" 2>/dev/null) == *"Package: "* ]]; then
      real_deps+=("$d")
    else
      p=$(apt-cache showpkg "$d" 2>/dev/null | sed -n '/^Reverse Provides:/{n;p;q}' | cut -d' ' -f1)
      real_deps+=("${p:-$d}")
    fi
  done
  deps="${real_deps[*]}"
  pkgs=$(printf '%s\n' systemd systemd-sysv dbus logrotate procps init-system-helpers jq $deps | sort -u | paste -sd,)
  key=$(printf '%s %s %s\n' "$suite" "$mirror" "$pkgs" | sha256sum | cut -c1-16)
  tarball="$cache/rootfs-$suite-$key.tar.gz"

  mkdir -p "$cache"
  exec 9> "$cache/.lock"
  flock 9
  if [[ ! -s "$tarball" ]]; then
    command -v debootstrap >/dev/null || skip "debootstrap is missing (apt-get install debootstrap)"
    command -v wget >/dev/null || skip "wget is missing (debootstrap downloads with it)"
    wget -q -T 20 -t 2 -O /dev/null "$mirror/dists/$suite/Release" ||
      skip "$mirror is not reachable (no network?): the root filesystem is built once with debootstrap"
    echo "rootfs: building the $suite root filesystem (once): $pkgs"
    build=$(mktemp -d "$cache/build.XXXXXX")
    log="$cache/debootstrap-$key.log"
    if ! debootstrap --variant=minbase --include="$pkgs" "$suite" "$build" "$mirror" > "$log" 2>&1; then
      tail -5 "$log"
      [[ -f "$build/debootstrap/debootstrap.log" ]] && tail -20 "$build/debootstrap/debootstrap.log"
      rm -rf "$build"
      echo "rootfs: debootstrap $suite failed, log in $log" >&2
      exit 1
    fi
    # What a booted test system does not need.
    rm -rf "$build"/usr/share/{doc,man,info,locale}/* "$build"/var/cache/apt/*.bin \
           "$build"/var/lib/apt/lists/* "$build"/var/cache/debconf/*-old "$build"/var/log/*.log
    tar -C "$build" --numeric-owner -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$build" "$log"
  fi
}
