#!/usr/bin/env bash
# One command to run killswitch: installs what is missing, builds, and starts
# the daemon in the foreground with the built-in default policy. Extra
# arguments go to `killswitch daemon` (see `build/killswitch daemon --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "run.sh: run as root: the daemon loads BPF programs and manages cgroups" >&2
  exit 1
fi
scripts/deps.sh
scripts/build.sh
exec "${KS_BUILD_DIR:-build}/killswitch" daemon "$@"
