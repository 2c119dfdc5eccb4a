#!/usr/bin/env bash
# Installs the database clients, ORMs and migration tools that the scenario
# scripts in tests/clients/ drive, when they are missing:
#
#   Debian packages (apt-get, only those not installed): python3-django,
#     python3-sqlalchemy, python3-alembic, python3-pymysql, python3-redis,
#     python3-psycopg2, python3-psycopg (3), python3-asyncpg, python3-pymongo,
#     for /usr/bin/python3;
#   npm packages at pinned versions into one prefix, KS_CLIENTS_CACHE
#     (default /var/cache/killswitch-tests/clients): $KS_CLIENTS_CACHE/node_modules,
#     reused as it is when .ks-installed there lists the same versions.
#
# Quick and offline when everything is there. Exits 77 with a one-line reason
# when a registry (Debian's or npm's) cannot be reached or node/npm is
# missing; 1 when an install itself fails. Prints the cache folder last
# ("install_clients: node_modules DIR").
set -euo pipefail

# Pinned versions (the newest on the registry when pinned, unless said):
#  - ioredis: 5.9.3, the newest 5.x; 6.x needs Node.js 20 and Debian 12's
#    own nodejs is 18.
#  - pg-hstore: sequelize's PostgreSQL dialect requires it next to pg.
NPM_PKGS=(
  pg@8.23.1
  pg-hstore@2.3.4
  knex@3.3.0
  sequelize@6.37.8
  mysql2@3.24.6
  ioredis@5.9.3
)
DEB_PKGS=(python3-django python3-sqlalchemy python3-alembic python3-pymysql python3-redis
  python3-psycopg2 python3-psycopg python3-asyncpg python3-pymongo)

CACHE=${KS_CLIENTS_CACHE:-/var/cache/killswitch-tests/clients}
skip() { echo "install_clients: $*"; exit 77; }

# Debian packages.
missing=()
for p in "${DEB_PKGS[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  [[ $(id -u) -eq 0 ]] || skip "missing Debian packages ${missing[*]} (not root: cannot apt-get)"
  echo "install_clients: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! timeout 300 apt-get update -qq >/tmp/install_clients.apt.$$ 2>&1; then
    reason=$(grep -m1 -E '^(E|W):' /tmp/install_clients.apt.$$ || tail -n1 /tmp/install_clients.apt.$$)
    rm -f /tmp/install_clients.apt.$$
    skip "the Debian archive cannot be reached (apt-get update: $reason)"
  fi
  if grep -qE '^(W|E): Failed to fetch' /tmp/install_clients.apt.$$; then
    reason=$(grep -m1 -E '^(W|E): Failed to fetch' /tmp/install_clients.apt.$$)
    rm -f /tmp/install_clients.apt.$$
    skip "the Debian archive cannot be reached ($reason)"
  fi
  rm -f /tmp/install_clients.apt.$$
  if ! timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" \
      >/tmp/install_clients.apt.$$ 2>&1; then
    if grep -qE 'Failed to fetch|Temporary failure|Could not resolve|Unable to connect' \
        /tmp/install_clients.apt.$$; then
      reason=$(grep -m1 -E 'Failed to fetch|Temporary failure|Could not resolve|Unable to connect' \
        /tmp/install_clients.apt.$$)
      rm -f /tmp/install_clients.apt.$$
      skip "the Debian archive cannot be reached ($reason)"
    fi
    tail -n 20 /tmp/install_clients.apt.$$ >&2
    rm -f /tmp/install_clients.apt.$$
    echo "install_clients: apt-get install ${missing[*]} failed" >&2
    exit 1
  fi
  rm -f /tmp/install_clients.apt.$$
fi

# npm packages.
want=$(printf '%s\n' "${NPM_PKGS[@]}")
if [[ -f $CACHE/.ks-installed && $(cat "$CACHE/.ks-installed") == "$want" ]] &&
   [[ -d $CACHE/node_modules ]]; then
  echo "install_clients: cached: ${NPM_PKGS[*]}"
  echo "install_clients: node_modules $CACHE/node_modules"
  exit 0
fi

command -v node >/dev/null || skip "node is not installed (Debian packages nodejs npm)"
command -v npm >/dev/null || skip "npm is not installed (Debian package npm)"
mkdir -p "$CACHE"
if ! timeout 30 npm view --fetch-retries=0 "${NPM_PKGS[0]}" version >/dev/null 2>&1; then
  skip "the npm registry cannot be reached ($(npm config get registry 2>/dev/null))"
fi

tmp=$CACHE/.tmp-$$
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp" "$tmp.log"' EXIT
echo "install_clients: npm install ${NPM_PKGS[*]} into $CACHE"
# A package.json of its own, so that npm does not look for one further up.
echo '{"name": "killswitch-test-clients", "private": true}' >"$tmp/package.json"
if ! timeout 600 npm install --prefix "$tmp" --no-audit --no-fund --save-exact \
    --loglevel=error "${NPM_PKGS[@]}" >"$tmp.log" 2>&1; then
  tail -n 20 "$tmp.log" >&2
  echo "install_clients: npm install failed" >&2
  exit 1
fi
# Each package loads, at the version asked for.
for spec in "${NPM_PKGS[@]}"; do
  name=${spec%@*} version=${spec##*@}
  got=$(cd "$tmp" && node -e "console.log(require('$name/package.json').version); require('$name')")
  if [[ $got != "$version" ]]; then
    echo "install_clients: $name is $got after install, not $version" >&2
    exit 1
  fi
done
echo "$want" >"$tmp/.ks-installed"
rm -rf "$CACHE/node_modules" "$CACHE/package.json" "$CACHE/package-lock.json" "$CACHE/.ks-installed"
mv "$tmp/node_modules" "$tmp/package.json" "$tmp/package-lock.json" "$CACHE/"
mv "$tmp/.ks-installed" "$CACHE/.ks-installed"
echo "install_clients: installed: ${NPM_PKGS[*]}"
echo "install_clients: node_modules $CACHE/node_modules"
