#!/usr/bin/env bash
# The container image guarding its host, under podman (Debian's), with the
# flags of the DaemonSet (scripts/container/killswitch-daemonset.yaml):
# privileged, the host's PID, cgroup and network namespaces, the host's /
# at /host, bpffs, tracefs and BTF. Builds the image from the .deb with
# scripts/container/Containerfile on a base made from the vm tier's cached
# Debian root filesystem (no registry is needed), starts the daemon in it
# with --host-root /host and every path a host path, and checks from the
# host, with the host's own killswitch:
#   - the daemon is ready and says it runs in the host's mount namespace;
#   - a guarded `rm -rf` of protected data, run on the host, is refused and
#     the data is kept; the record is in the host's audit file and names the
#     host's machine id;
#   - `podman stop` leaves the programs pinned in the host's bpffs (the
#     kernel goes on enforcing: a guarded shell started before the stop
#     cannot delete the data after it);
#   - a daemon started again in a new container adopts them.
#
#   tests/container/run_podman_test.sh --deb PATH --killswitch HOST_BINARY
#
# Exit 0 when every check passes, 1 when one fails, 77 (skip, with the
# reason) where podman cannot run such a container here.
set -uo pipefail

deb="" ks=""
while (($#)); do
  case "$1" in
    --deb) deb=$2; shift 2 ;;
    --killswitch) ks=$2; shift 2 ;;
    *) echo "run_podman_test: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -r "$deb" && -x "$ks" ]] || { echo "run_podman_test: needs --deb PATH and --killswitch BINARY" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
skip() { echo "run_podman_test: SKIP: $*"; exit 77; }
[[ $(id -u) -eq 0 ]] || skip "needs root (a privileged container, BPF)"
command -v podman >/dev/null || skip "podman is missing (scripts/deps.sh --test installs podman)"
command -v runc >/dev/null || skip "runc is missing (scripts/deps.sh --test installs runc)"
deb=$(realpath "$deb")
ks=$(realpath "$ks")

failed=0
ok() { echo "check: $1: ok${2:+ ($2)}"; }
fail() { echo "check: $1: FAILED ($2)"; failed=1; }

# podman of its own: storage, runtime state, locks, events and networks in
# a temporary directory, runc (Debian's crun refuses hybrid cgroup layouts),
# ulimits this host can grant, host networking only (no bridge, no rules).
T=$(mktemp -d /tmp/ks-podman.XXXXXX)
chmod 755 "$T"
export CONTAINERS_CONF="$T/containers.conf" CONTAINERS_STORAGE_CONF="$T/storage.conf" TMPDIR="$T/tmp"
mkdir -p "$T/tmp" "$T/data" "$T/run"
cat > "$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/tmp/events.log"
tmp_dir = "$T/tmp"
lock_type = "file"
[network]
network_config_dir = "$T/networks"
EOF
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$T/storage" "$T/runroot" > "$CONTAINERS_STORAGE_CONF"
# What podman 4.3 writes outside its directories whatever it is told:
# removed afterwards when this test made it.
leftovers=()
for p in /run/containers /var/lib/containers /run/libpod; do [[ -e "$p" ]] || leftovers+=("$p"); done
name=ks-podman-$$
pins=/sys/fs/bpf/$name
cgparent=$name
cleanup() {
  for c in "$name-1" "$name-2"; do podman rm -f -t 5 "$c" >/dev/null 2>&1; done
  "$ks" --runtime-dir "$T/run" daemon --uninstall --pin-dir "$pins" --audit-log "$T/audit.jsonl" \
    --cgroup-parent "$cgparent" >/dev/null 2>&1
  podman system reset -f >/dev/null 2>&1
  for p in "${leftovers[@]}"; do rm -rf "$p"; done
  # The cgroups podman made for its containers (cgroupfs manager).
  find /sys/fs/cgroup -depth -type d -path '*/libpod_parent*' -exec rmdir {} + 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# The base: the vm tier's Debian 12 root filesystem with the package's
# dependencies (tests/vm/rootfs_cache.sh), imported as an image.
cache=${KS_VM_CACHE:-/var/cache/killswitch-vm}
source "$src/tests/vm/rootfs_cache.sh"
ks_rootfs "$deb" "$cache" bookworm "${KS_VM_MIRROR:-http://deb.debian.org/debian}"
flock -u 9
start=$SECONDS
podman import -q "$tarball" localhost/ks-base:test > "$T/import.log" 2>&1 ||
  skip "podman import failed here: $(tail -2 "$T/import.log")"
mkdir -p "$T/ctx"
cp "$deb" "$src/scripts/container/Containerfile" "$T/ctx/"
if ! podman build -q --pull=never --network=host --build-arg BASE=localhost/ks-base:test \
     -t localhost/killswitch:test -f "$T/ctx/Containerfile" "$T/ctx" > "$T/build.log" 2>&1; then
  tail -20 "$T/build.log"
  echo "run_podman_test: podman build of scripts/container/Containerfile failed" >&2
  exit 1
fi
echo "run_podman_test: image built in $((SECONDS - start)) s"

echo 15 > "$T/data/PG_VERSION"
cat > "$T/policy.yaml" <<EOF
protect:
  paths: [$T/data]
  session: none
EOF
DS=(--privileged --pid=host --cgroupns=host --network=host
    -v /:/host:ro,rslave -v /sys/fs/bpf:/sys/fs/bpf -v /sys/kernel/tracing:/sys/kernel/tracing
    -v /sys/kernel/btf:/sys/kernel/btf:ro -v /sys/fs/cgroup:/sys/fs/cgroup)
# start_daemon CONTAINER-NAME: true once the daemon in it answers status.
start_daemon() {
  local id=$1
  podman run -d --name "$id" "${DS[@]}" localhost/killswitch:test --runtime-dir "$T/run" daemon \
       --host-root /host --policy "$T/policy.yaml" --audit-log "$T/audit.jsonl" \
       --pin-dir "$pins" --cgroup-parent "$cgparent" > /dev/null 2> "$T/run.err" || {
    cat "$T/run.err"; return 1; }
  for _ in $(seq 1 120); do
    "$ks" --runtime-dir "$T/run" status > /dev/null 2>&1 && return 0
    [[ $(podman inspect -f '{{.State.Running}}' "$id" 2>/dev/null) == true ]] || break
    sleep 0.5
  done
  podman logs "$id" 2>&1 | tail -15
  return 1
}
pyjson() { /usr/bin/python3 -c "$1" "$T/audit.jsonl"; }

# 1. Ready, in the host's mount namespace, with the host's libc and id.
check=ready-in-host-namespace
id=$name-1
if ! start_daemon "$id"; then
  fail $check "the containerised daemon did not become ready"
  exit 1
fi
logs=$(podman logs "$id" 2>&1)
host_id=$(cat /etc/machine-id 2>/dev/null)
rec_host=$(pyjson 'import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l)
    if r.get("event")=="daemon_start": print(r.get("host","")); break')
if [[ "$logs" != *"in the host's mount namespace (--host-root /host)"* ]]; then
  fail $check "no word of the host's namespace in its log: $(head -3 <<< "$logs")"
elif [[ -n "$host_id" && "$rec_host" != "$host_id" ]]; then
  fail $check "daemon_start names host '$rec_host', the host's machine id is $host_id"
else
  ok $check "daemon_start host $rec_host"
fi

# 2. A guarded rm -rf on the host is refused; the host's audit file says so.
check=guarded-rm-refused
rc=0
"$ks" --runtime-dir "$T/run" run --session pod-rm -- rm -rf "$T/data" > "$T/rm.out" 2>&1 || rc=$?
verdict=$(pyjson 'import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l)
    if r.get("event")=="file" and r.get("session")=="pod-rm": print(r.get("verdict")); break')
if ((rc != 126)); then
  fail $check "killswitch run -- rm -rf exited $rc, expected 126: $(head -3 "$T/rm.out")"
elif [[ ! -f "$T/data/PG_VERSION" ]]; then
  fail $check "exit 126 but the data is gone"
elif [[ "$verdict" != block ]]; then
  fail $check "no file record of session pod-rm with verdict block (got '$verdict')"
else
  ok $check "exit 126, data kept, verdict $verdict"
fi

# 3. podman stop: the pins stay in the host's bpffs and the kernel enforces.
check=stop-keeps-enforcement
rm -f "$T/keep.rc"
"$ks" --runtime-dir "$T/run" run --session pod-keep -- sh -c "sleep 6; rm -rf $T/data; echo rc=\$? > $T/keep.rc" \
  > "$T/keep.out" 2>&1 &
keep_pid=$!
sleep 1
podman stop -t 20 "$id" > /dev/null 2>&1
src_rc=$(podman inspect -f '{{.State.ExitCode}}' "$id" 2>/dev/null)
npins=$(ls "$pins" 2>/dev/null | wc -l)
sleep 8
if [[ "$src_rc" != 0 ]]; then
  fail $check "the daemon exited $src_rc on podman stop: $(podman logs "$id" 2>&1 | tail -3)"
elif ((npins == 0)); then
  fail $check "$pins is empty after the stop"
elif [[ ! -f "$T/data/PG_VERSION" ]]; then
  fail $check "the guarded rm -rf ran after the stop"
else
  ok $check "$npins pins, data kept, keep.rc $(cat "$T/keep.rc" 2>/dev/null || echo absent: the rm waits stopped)"
fi

# 4. A new container's daemon adopts the pins and decides what waited.
check=restart-adopts
if ! start_daemon "$name-2"; then
  fail $check "the second containerised daemon did not become ready"
else
  wait "$keep_pid"
  keep_rc=$(cat "$T/keep.rc" 2>/dev/null)
  adopted=$(pyjson 'import json,sys
n=0
for l in open(sys.argv[1]):
    r=json.loads(l)
    if r.get("event")=="daemon_start": n+=1; last=r
print(last.get("pinned",{}).get("adopted_links",0) if n>=2 else "none")')
  if [[ "$keep_rc" != rc=126 ]]; then
    fail $check "the shell's rm ended '$keep_rc', expected rc=126"
  elif [[ ! -f "$T/data/PG_VERSION" ]]; then
    fail $check "the data is gone"
  elif [[ "$adopted" == none || "$adopted" == 0 ]]; then
    fail $check "the second daemon_start adopted no links ($adopted)"
  else
    ok $check "$adopted links adopted, the held rm refused (rc=126)"
  fi
fi

echo "run_podman_test: $((SECONDS - start)) s in all"
exit $failed
