#!/usr/bin/env bash
# Builds the container image of killswitch from this tree: the Debian
# package (scripts/package.sh), then scripts/container/Containerfile with
# podman (or docker). Prints the image's name.
#
#   scripts/container.sh [--base IMAGE] [--tag NAME]
#
# --base: the Debian 12 image to start from (default debian:bookworm-slim
# from docker.io; a mirror or a local image where docker.io is not reached).
set -euo pipefail
cd "$(dirname "$0")/.."
base="" tag=""
while (($#)); do
  case "$1" in
    --base) base=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    *) echo "container.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
engine=$(command -v podman || command -v docker || true)
[[ -n "$engine" ]] || { echo "container.sh: needs podman or docker (apt-get install podman)" >&2; exit 1; }
deb=$(bash scripts/package.sh | tail -1)
version=$(dpkg-deb -f "$deb" Version)
tag=${tag:-killswitch:$version}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$deb" scripts/container/Containerfile "$ctx/"
"$engine" build ${base:+--build-arg BASE="$base"} -t "$tag" -f "$ctx/Containerfile" "$ctx" >&2
echo "$tag"
