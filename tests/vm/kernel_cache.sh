# Sourced by the vm tier's guest runners: the Debian kernel a guest boots.
#
#   ks_vm_kernel PACKAGE CACHE [APT-OPTION...]
#
# PACKAGE is a kernel package (linux-image-6.1.0-57-amd64), or `debian12` /
# `debian-image` for the one linux-image-amd64 depends on in the sources the
# apt options name (this system's without options). Its vmlinuz is fetched
# with `apt-get download` once and kept as CACHE/PACKAGE.vmlinuz; the path is
# left in $vmlinuz and the package's name in $kernel. Calls the runner's
# skip function when apt cannot give it (no network, no such package).
ks_vm_kernel() {
  local want=$1 cache=$2
  shift 2
  kernel=$want
  if [[ "$kernel" == debian12 || "$kernel" == debian-image ]]; then
    kernel=$(apt-cache "$@" depends linux-image-amd64 2>/dev/null |
             awk '/Depends: linux-image-/{print $2; exit}')
    [[ -n "$kernel" ]] || skip "apt-cache knows no linux-image-amd64"
  fi
  vmlinuz="$cache/$kernel.vmlinuz"
  if [[ ! -s "$vmlinuz" ]]; then
    local dl
    dl=$(mktemp -d)
    chmod 755 "$dl"  # apt-get downloads as _apt
    (cd "$dl" && apt-get "$@" download "$kernel" >/dev/null 2>&1) || {
      rm -rf "$dl"; skip "apt-get download $kernel failed (no network or no such package)"; }
    dpkg-deb -x "$dl"/*.deb "$dl/x"
    cp "$dl"/x/boot/vmlinuz-* "$vmlinuz.tmp" && mv "$vmlinuz.tmp" "$vmlinuz"
    rm -rf "$dl"
  fi
}
