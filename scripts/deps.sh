#!/usr/bin/env bash
# Installs the Debian 12 packages killswitch needs to build and test, if any
# are missing. Needs root (apt-get). Safe to run again: it does nothing when
# everything is there.
set -euo pipefail

BUILD_PKGS=(
  cmake make g++ clang llvm pkg-config
  libbpf-dev bpftool libelf-dev zlib1g-dev
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev liburing-dev libpg-query-dev libbson-dev
  libssl-dev libsystemd-dev libcpp-httplib-dev libcurl4-openssl-dev
)
TEST_PKGS=(python3 procps postgresql python3-psycopg2 mariadb-server mariadb-client
  redis-server redis-tools qemu-system-x86 busybox-static cpio acl attr tmux
  python3-django python3-sqlalchemy python3-alembic python3-pymysql python3-redis
  python3-asyncpg python3-psycopg
  dpkg-dev logrotate systemd libcap2-bin prometheus debootstrap wget rsyslog rsyslog-openssl
  podman runc socat screen haproxy nginx libnginx-mod-stream)

want=("${BUILD_PKGS[@]}")
if [[ "${1:-}" == "--test" ]]; then
  want+=("${TEST_PKGS[@]}")
  # Node.js and npm for the tiers that install npm packages (tests/agents,
  # tests/clients): Debian's, unless a node with its npm is there already
  # (another packaging of Node.js brings npm in its nodejs package).
  command -v npm >/dev/null || want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#want[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "deps: missing packages: ${missing[*]}; run as root or install them with apt-get" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The tests start PostgreSQL servers of their own; installing the package must
# not create and start a system-wide cluster.
if [[ " ${missing[*]} " == *" postgresql "* && ! -e /etc/postgresql-common/createcluster.conf ]]; then
  mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
fi
# Nor may MariaDB's or Redis's packages start system-wide servers: while
# apt-get runs, invoke-rc.d is told (policy-rc.d, exit 101) to start nothing.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "${missing[@]}"
