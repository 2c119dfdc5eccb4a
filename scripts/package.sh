#!/usr/bin/env bash
# Builds the Debian package from this tree: installs what the build needs
# (scripts/deps.sh), builds, and runs cpack. Prints the .deb's path; install
# it with `apt install ./killswitch_VERSION_amd64.deb` (docs/operations.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# dpkg-shlibdeps (the package's library dependencies) is in dpkg-dev.
if ! dpkg-query -W -f='${Status}' dpkg-dev 2>/dev/null | grep -q "install ok installed"; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev
fi
bash scripts/build.sh
BUILD_DIR=${KS_BUILD_DIR:-build}
(cd "$BUILD_DIR" && cpack -G DEB >/dev/null)
ls "$PWD/$BUILD_DIR"/killswitch_*.deb
