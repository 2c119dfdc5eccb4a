#!/usr/bin/env bash
# What the database relay costs the real clients, ORMs and migration tools of
# the e2e tier (tests/clients/, tests/e2e/db_clients_test.cpp): each harmless
# case runs unguarded and guarded in turn (KS_CLIENTS_RUNS times each, 3 by
# default), and this prints the median time of the client's own work
# ("op", measured inside the script) both ways and their ratio.
# Goal: at most 1.2x for every harmless case.
#
# Reproduce (as root, after scripts/build.sh and tests/clients/install_clients.sh):
#   KS_CLIENTS_RUNS=5 bench/db_clients.sh [GTEST_FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${KS_BUILD_DIR:-build}
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
BIN="$BUILD_DIR/tests/ks_e2e_tests"
[[ -x "$BIN" ]] || { echo "build first: scripts/build.sh" >&2; exit 1; }
out=$(mktemp /tmp/ks-dbclients-bench-XXXXXX)
trap 'rm -f "$out"' EXIT
"$BIN" --gtest_filter="${1:-DbClients*}" >"$out" 2>&1 || true
python3 - "$out" <<'PY'
import statistics, sys
rows = []
for line in open(sys.argv[1], errors="replace"):
    if not line.startswith("db_clients: timing "):
        continue
    head, times = line[len("db_clients: timing "):].split(": guarded ", 1)
    g, u = times.split("; unguarded ", 1)
    g = [float(x) for x in g.split()]
    u = [float(x) for x in u.split()]
    if g and u:
        rows.append((head.strip(), statistics.median(u), statistics.median(g)))
print(f"{'case':55} {'unguarded ms':>13} {'guarded ms':>11} {'ratio':>6}  goal 1.2x")
for name, u, g in rows:
    r = g / u if u else float("inf")
    print(f"{name:55} {u:13.1f} {g:11.1f} {r:6.2f}  {'met' if r <= 1.2 else 'NOT MET'}")
if not rows:
    print("no timings: did the tier run? (needs root, the servers and tests/clients installed)")
PY
