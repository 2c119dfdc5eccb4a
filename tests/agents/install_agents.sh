#!/usr/bin/env bash
# Installs the four agent CLIs that tests/agents/run_agent.py drives, at pinned
# versions, into a cache folder (KS_AGENT_CACHE, default
# /var/cache/killswitch-tests/agents):
#
#   $KS_AGENT_CACHE/<agent>-<version>/node_modules/...   one npm prefix each
#   $KS_AGENT_CACHE/<agent> -> <agent>-<version>         what run_agent.py uses
#
# Quick and offline when the pinned versions are there already. Exits 77 with
# a one-line reason when node/npm is missing or the npm registry cannot be
# reached. Usage: install_agents.sh [claude codex gemini opencode]
set -euo pipefail

# Pinned versions (the newest on the registry when pinned), all checked on
# Node.js v20:
#  - claude-code ships a native binary per platform (an optional dependency
#    copied over bin/claude.exe by its postinstall): its "node >=22" engine
#    field is moot, Node is not used at run time.
#  - codex: a small node wrapper that spawns a native (musl) binary.
#  - gemini-cli: plain node (>=20), relaunches itself under a second node.
#  - opencode-ai: native binary (bun-compiled), copied by its postinstall.
declare -A PKG=(
  [claude]=@anthropic-ai/claude-code
  [codex]=@openai/codex
  [gemini]=@google/gemini-cli
  [opencode]=opencode-ai
)
declare -A VER=(
  [claude]=2.1.332
  [codex]=0.171.0
  [gemini]=0.61.0
  [opencode]=1.18.33
)
declare -A BIN=([claude]=claude [codex]=codex [gemini]=gemini [opencode]=opencode)

CACHE=${KS_AGENT_CACHE:-/var/cache/killswitch-tests/agents}
agents=("$@")
[[ ${#agents[@]} -gt 0 ]] || agents=(claude codex gemini opencode)

skip() { echo "install_agents: $*"; exit 77; }

installed() { # agent -> 0 when the pinned version is in place and runs
  local a=$1 dir=$CACHE/$1-${VER[$1]}
  [[ -x $dir/node_modules/.bin/${BIN[$a]} ]] || return 1
  [[ -f $dir/.ks-installed ]] || return 1
  grep -q "\"version\": *\"${VER[$a]}\"" "$dir/node_modules/${PKG[$a]}/package.json" 2>/dev/null
}

todo=()
for a in "${agents[@]}"; do
  [[ -n ${PKG[$a]:-} ]] || { echo "install_agents: unknown agent $a" >&2; exit 2; }
  if installed "$a"; then
    ln -sfn "$a-${VER[$a]}" "$CACHE/$a"
  else
    todo+=("$a")
  fi
done
if [[ ${#todo[@]} -eq 0 ]]; then
  echo "install_agents: cached in $CACHE: $(for a in "${agents[@]}"; do printf '%s@%s ' "$a" "${VER[$a]}"; done)"
  exit 0
fi

command -v node >/dev/null || skip "node is not installed"
command -v npm >/dev/null || skip "npm is not installed"
mkdir -p "$CACHE"
if ! timeout 30 npm view "${PKG[${todo[0]}]}@${VER[${todo[0]}]}" version >/dev/null 2>&1; then
  skip "the npm registry cannot be reached ($(npm config get registry 2>/dev/null))"
fi

for a in "${todo[@]}"; do
  dir=$CACHE/$a-${VER[$a]}
  tmp=$CACHE/.tmp-$a-$$
  rm -rf "$tmp"
  mkdir -p "$tmp"
  echo "install_agents: installing ${PKG[$a]}@${VER[$a]} into $dir"
  # Install scripts must run: claude-code and opencode-ai put their native
  # binary in place in their postinstall.
  if ! timeout 600 npm install --prefix "$tmp" --no-audit --no-fund --no-save \
      --engine-strict=false --ignore-scripts=false --loglevel=error \
      "${PKG[$a]}@${VER[$a]}" >"$tmp.log" 2>&1; then
    tail -n 20 "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    echo "install_agents: npm install of ${PKG[$a]}@${VER[$a]} failed" >&2
    exit 1
  fi
  rm -f "$tmp.log"
  if ! out=$(cd "$tmp" && HOME=$tmp timeout 60 "node_modules/.bin/${BIN[$a]}" --version </dev/null 2>&1) ||
     [[ $out != *"${VER[$a]}"* ]]; then
    echo "install_agents: ${BIN[$a]} --version after install: $out" >&2
    rm -rf "$tmp"
    exit 1
  fi
  # --version may leave config files behind in the HOME it was given
  find "$tmp" -mindepth 1 -maxdepth 1 ! -name node_modules ! -name package.json \
       ! -name package-lock.json -exec rm -rf {} +
  touch "$tmp/.ks-installed"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  ln -sfn "$a-${VER[$a]}" "$CACHE/$a"
  echo "install_agents: ${BIN[$a]} ${VER[$a]} ok"
done
