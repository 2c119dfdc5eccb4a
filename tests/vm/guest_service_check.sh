#!/bin/bash
# Runs inside the systemd guest of tests/vm/run_systemd_guest.sh, as the
# oneshot unit ks-check.service (After=killswitch.service), on a Debian 12
# system where the killswitch .deb was installed with dpkg -i. Checks the
# packaged service: the notify unit, a guarded rm -rf of protected data
# (and its journal entry, with fields), systemctl reload with a good and a
# bad policy.d file, logrotate, systemctl stop leaving the pinned
# enforcement, a start deciding what was held meanwhile, an upgrade (the
# package installed again) and a removal. One line per check:
# `check: NAME: ok` or `check: NAME: FAILED (why)`; exit 1 if any failed.
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

failed=0
ok() { echo "check: $1: ok${2:+ ($2)}"; }
fail() { echo "check: $1: FAILED ($2)"; failed=1; }
info() { echo "  $*"; }

PG=/var/lib/postgresql/15/main
mkdir -p "$PG"
echo 15 > "$PG/PG_VERSION"

# 1. The unit is active once the daemon said READY=1 (Type=notify).
name=unit-notify-ready
active=$(systemctl is-active killswitch)
props=$(systemctl show -p Type,NotifyAccess,StatusText,ActiveEnterTimestamp killswitch)
info "$(echo "$props" | paste -sd' ')"
status_rc=0
killswitch status > /tmp/status.out 2>&1 || status_rc=$?
st_text=$(echo "$props" | sed -n 's/^StatusText=//p')
if [[ "$active" != active ]]; then
  fail $name "systemctl is-active killswitch: $active"
elif ! grep -qx 'Type=notify' <<< "$props"; then
  fail $name "unit is not Type=notify: $props"
elif ((status_rc != 0)); then
  fail $name "killswitch status exit $status_rc: $(head -3 /tmp/status.out)"
elif [[ -z "$st_text" ]]; then
  fail $name "StatusText is empty (no STATUS= from the daemon)"
else
  ok $name "StatusText=$st_text"
fi

# 2. A guarded rm -rf of protected data is refused.
name=guarded-rm-refused
rc=0
killswitch run --session vm-rm -- rm -rf "$PG" > /tmp/rm.out 2>&1 || rc=$?
if ((rc != 126)); then
  fail $name "killswitch run -- rm -rf $PG exited $rc, expected 126: $(head -3 /tmp/rm.out)"
elif [[ ! -f "$PG/PG_VERSION" ]]; then
  fail $name "exit 126 but $PG/PG_VERSION is gone"
else
  ok $name "exit 126, PG_VERSION kept"
fi

# 2b. The refusal is in the journal with structured fields (--output
# journald in the packaged unit): journalctl finds it by its fields.
name=journald-fields
jrec=""
for _ in $(seq 1 20); do
  jrec=$(journalctl -t killswitch KILLSWITCH_EVENT=file KILLSWITCH_SESSION=vm-rm -o json --no-pager 2>/dev/null | head -1)
  [[ -n "$jrec" ]] && break
  sleep 0.5
done
jverdict=$(jq -r '.KILLSWITCH_VERDICT // empty' <<< "$jrec" 2>/dev/null)
jprio=$(jq -r '.PRIORITY // empty' <<< "$jrec" 2>/dev/null)
jseq=$(jq -r '.KILLSWITCH_SEQ // empty' <<< "$jrec" 2>/dev/null)
jwhole=$(jq -r '.KILLSWITCH_RECORD // empty' <<< "$jrec" 2>/dev/null | jq -r '.seq // empty' 2>/dev/null)
if [[ -z "$jrec" ]]; then
  fail $name "journalctl -t killswitch KILLSWITCH_EVENT=file KILLSWITCH_SESSION=vm-rm: nothing"
elif [[ "$jverdict" != block || "$jprio" != 4 || -z "$jseq" || "$jwhole" != "$jseq" ]]; then
  fail $name "verdict '$jverdict', priority '$jprio', seq '$jseq', record seq '$jwhole'"
else
  ok $name "KILLSWITCH_VERDICT=block PRIORITY=4 KILLSWITCH_SEQ=$jseq"
fi

# 3. systemctl reload applies a new policy.d file.
name=reload-new-dropin
mkdir -p /srv/vmdata
echo keep > /srv/vmdata/x
cat > /etc/killswitch/policy.d/50-srv.yaml <<'EOF'
protect:
  paths:
    - /srv/vmdata
EOF
rc=0
systemctl reload killswitch > /tmp/reload.out 2>&1 || rc=$?
killswitch status --json > /tmp/status.json 2>&1 || true
sha3=$(jq -r '.policy_sha256 // empty' /tmp/status.json 2>/dev/null)
rrc=0
killswitch run --session vm-srv -- rm -rf /srv/vmdata/x > /tmp/rm2.out 2>&1 || rrc=$?
if ((rc != 0)); then
  fail $name "systemctl reload exit $rc: $(head -3 /tmp/reload.out)"
elif ! jq -e '.policy_files | index("/etc/killswitch/policy.d/50-srv.yaml")' /tmp/status.json >/dev/null 2>&1; then
  fail $name "status --json policy_files lacks 50-srv.yaml: $(jq -c .policy_files /tmp/status.json 2>&1 | head -3)"
elif ((rrc != 126)); then
  fail $name "guarded rm -rf /srv/vmdata/x exited $rrc, expected 126: $(head -3 /tmp/rm2.out)"
elif [[ ! -f /srv/vmdata/x ]]; then
  fail $name "exit 126 but /srv/vmdata/x is gone"
else
  ok $name "policy_sha256 ${sha3:0:12}..., /srv/vmdata/x kept"
fi

# 4. A bad drop-in is refused; the policy in force stays.
name=reload-bad-dropin-refused
printf 'protect:\n  paths:\n    - relative/path\n' > /etc/killswitch/policy.d/60-bad.yaml
rc=0
systemctl reload killswitch > /tmp/reload-bad.out 2>&1 || rc=$?
active=$(systemctl is-active killswitch)
killswitch status --json > /tmp/status2.json 2>&1 || true
sha4=$(jq -r '.policy_sha256 // empty' /tmp/status2.json 2>/dev/null)
diag=$(journalctl -u killswitch --no-pager -o cat 2>/dev/null | grep -m1 '60-bad.yaml:[0-9]*:[0-9]*: error' || true)
echo keep > /srv/vmdata/y
rrc=0
killswitch run --session vm-srv2 -- rm -f /srv/vmdata/y > /tmp/rm3.out 2>&1 || rrc=$?
if ((rc == 0)); then
  fail $name "systemctl reload with 60-bad.yaml exited 0"
elif [[ "$active" != active ]]; then
  fail $name "after the refused reload the unit is $active"
elif [[ -z "$sha4" || "$sha4" != "$sha3" ]]; then
  fail $name "policy_sha256 changed: ${sha3:-none} -> ${sha4:-none}"
elif ((rrc != 126)) || [[ ! -f /srv/vmdata/y ]]; then
  fail $name "/srv/vmdata no longer protected: guarded rm exit $rrc"
else
  ok $name "reload exit $rc, still active, sha256 unchanged${diag:+, journal: $diag}"
fi
rm -f /etc/killswitch/policy.d/60-bad.yaml

# 5. logrotate renames the audit log, the daemon reopens it on SIGHUP, and no
# record is lost or doubled.
name=logrotate-no-loss
LOG=/var/log/killswitch/audit.jsonl
run_id=$(jq -r 'select(.event == "daemon_start") | .run' "$LOG" | tail -1)
ino0=$(stat -c %i "$LOG" 2>/dev/null || echo none)
killswitch run --session vm-loop -- sh -c 'i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done' \
  > /tmp/loop.out 2>&1 &
loop=$!
sleep 2
lr1=0; logrotate -f /etc/logrotate.d/killswitch > /tmp/lr1.out 2>&1 || lr1=$?
sleep 1
ino1_rot=$(stat -c %i "$LOG.1" 2>/dev/null || echo none)
ino1_new=$(stat -c %i "$LOG" 2>/dev/null || echo none)
lr2=0; logrotate -f /etc/logrotate.d/killswitch > /tmp/lr2.out 2>&1 || lr2=$?
lrc=0; wait $loop || lrc=$?
sleep 2  # the last records reach the file
ls -li /var/log/killswitch | sed 's/^/  /'
all=$( { cat "$LOG" "$LOG.1" 2>/dev/null; for z in "$LOG".*.gz; do [[ -e "$z" ]] && zcat "$z"; done; } |
       jq -c --arg r "$run_id" 'select(.run == $r)' )
seqs=$(jq -r .seq <<< "$all" | sort -n)
n=$(grep -c . <<< "$seqs")
uniq_n=$(uniq <<< "$seqs" | grep -c .)
first=$(head -1 <<< "$seqs"); last=$(tail -1 <<< "$seqs")
loop_execs=$(jq -r 'select(.session == "vm-loop" and .event == "exec") | .pid' <<< "$all" | grep -c .)
info "run $run_id: $n records, seq $first..$last, $uniq_n distinct; vm-loop execs $loop_execs; loop exit $lrc"
info "inodes: before $ino0, after rotation .1 $ino1_rot and new $ino1_new"
if [[ -z "$run_id" ]]; then
  fail $name "no daemon_start record in $LOG"
elif ((lr1 != 0 || lr2 != 0)); then
  fail $name "logrotate exit $lr1/$lr2: $(cat /tmp/lr1.out /tmp/lr2.out | head -3)"
elif [[ ! -e "$LOG.2.gz" ]]; then
  fail $name "no $LOG.2.gz after two rotations: $(ls /var/log/killswitch | paste -sd' ')"
elif [[ "$ino1_rot" != "$ino0" || "$ino1_new" == none || "$ino1_new" == "$ino0" ]]; then
  fail $name "not a rename + new file (copytruncate?): inode $ino0 -> .1 $ino1_rot, new $ino1_new"
elif ((n != uniq_n)); then
  fail $name "duplicate seq values: $(uniq -d <<< "$seqs" | head -5 | paste -sd' ')"
elif [[ "$first" != 1 || "$last" != "$n" ]]; then
  fail $name "seq gap: $n records, seq $first..$last"
elif ((loop_execs < 300)); then
  fail $name "only $loop_execs exec records of the guarded loop (300 /bin/true + sh)"
else
  ok $name "seq 1..$last in 3 files, no gap, no duplicate"
fi

# 6. systemctl stop leaves the pinned programs enforcing: a guarded shell
# started before the stop runs rm -rf on protected data after it.
name=stop-keeps-enforcement
rm -f /tmp/keep.rc
killswitch run --session vm-keep -- sh -c 'sleep 20; rm -rf /var/lib/postgresql/15/main; echo rc=$? > /tmp/keep.rc' \
  > /tmp/keep.out 2>&1 &
keep=$!
sleep 3
src=0; systemctl stop killswitch > /tmp/stop.out 2>&1 || src=$?
stopped_at=$SECONDS
active=$(systemctl is-active killswitch)
pins=$(ls /sys/fs/bpf/killswitch 2>/dev/null | wc -l)
info "systemctl stop exit $src, unit $active, $pins entries in /sys/fs/bpf/killswitch: $(ls /sys/fs/bpf/killswitch 2>/dev/null | paste -sd' ')"
# The sleep ends about 17 s after the stop; then the rm either ends (refused)
# or is stopped where it stands, waiting for a daemon to decide.
rm_state="" keep_end=""
while ((SECONDS < stopped_at + 45)); do
  if ! kill -0 $keep 2>/dev/null; then wait $keep; keep_end="killswitch run exited $?"; break; fi
  rm_state=$(ps -eo pid,stat,args | awk '$3 == "rm" && $4 == "-rf" {print $1, $2; exit}')
  [[ "$rm_state" == *" T"* ]] && break
  sleep 1
done
sleep 5  # a stopped rm stays stopped; PG_VERSION is looked at a while after
ps -eo pid,ppid,stat,args | grep -E 'vm-keep|sleep 20|rm -rf' | grep -v grep | sed 's/^/  /'
if [[ -n "$keep_end" ]]; then
  what="$keep_end, keep.rc: $(cat /tmp/keep.rc 2>/dev/null || echo absent)"
elif [[ "$rm_state" == *" T"* ]]; then
  what="the guarded rm (pid ${rm_state%% *}) is stopped (SIGSTOP), waiting for a daemon; keep.rc absent"
else
  what="the guarded shell still runs ${rm_state:+(rm $rm_state) }$((SECONDS - stopped_at)) s after the stop"
fi
info "$what; run output: $(head -3 /tmp/keep.out | paste -sd'|')"
if [[ "$active" == active ]]; then
  fail $name "the unit is still active after systemctl stop (exit $src)"
elif ((pins == 0)); then
  fail $name "/sys/fs/bpf/killswitch is empty or missing after stop"
elif [[ ! -f "$PG/PG_VERSION" ]]; then
  fail $name "PG_VERSION is gone: the guarded rm -rf ran unguarded after the stop ($what)"
elif grep -qx 'rc=0' /tmp/keep.rc 2>/dev/null; then
  fail $name "the guarded rm -rf exited 0"
elif [[ -z "$keep_end" && "$rm_state" != *" T"* ]]; then
  fail $name "the guarded rm neither ended nor stopped: $what"
else
  ok $name "unit $active, $pins pins, PG_VERSION kept; $what"
fi

# 7. systemctl start again: the new daemon adopts the pinned programs and
# decides what was held while none ran.
name=start-decides-held
src=0; systemctl start killswitch > /tmp/start.out 2>&1 || src=$?
active=$(systemctl is-active killswitch)
end=""
while ((SECONDS < stopped_at + 120)); do
  if ! kill -0 $keep 2>/dev/null; then wait $keep; end="killswitch run exited $?"; break; fi
  sleep 1
done
LOG=/var/log/killswitch/audit.jsonl
pinned=$(jq -c 'select(.event == "daemon_start") | .pinned' "$LOG" 2>/dev/null | tail -1)
decided=$(jq -c 'select(.session == "vm-keep" and .event != "fork" and .event != "exec")
                 | with_entries(select(.key | IN("event", "comm", "op", "path", "layer", "verdict", "action",
                                                "prevented", "exit_code", "signal")))' "$LOG" 2>/dev/null | tail -5)
info "systemctl start exit $src, unit $active; pinned: $pinned"
info "vm-keep records (last 5, no fork/exec):"
echo "$decided" | sed 's/^/    /'
info "file records for $PG in the current log:"
jq -c --arg p "$PG" 'select(.event == "file" and ((.path // "") | startswith($p)))
       | with_entries(select(.key | IN("seq", "session", "comm", "op", "path", "layer", "verdict", "action",
                                      "prevented", "held")))' "$LOG" 2>/dev/null | tail -3 | sed 's/^/    /'
info "${end:-the guarded shell still runs}; keep.rc: $(cat /tmp/keep.rc 2>/dev/null || echo absent)"
# The kernel recorded the held exec while no daemon ran: the new daemon reads
# it under the session's own name (it keeps the session's id on adoption).
held_session=$(jq -r --arg p "$PG" 'select(.event == "file" and .layer == "exec" and (.path // "") == $p)
                                    | .session' "$LOG" 2>/dev/null | tail -1)
if ((src != 0)) || [[ "$active" != active ]]; then
  fail $name "systemctl start exit $src, unit $active"
elif [[ -z "$end" ]]; then
  fail $name "the held rm was not decided within $((SECONDS - stopped_at)) s of the stop"
elif [[ ! -f "$PG/PG_VERSION" ]]; then
  fail $name "PG_VERSION is gone after the restart ($end, keep.rc $(cat /tmp/keep.rc 2>/dev/null))"
elif grep -qx 'rc=0' /tmp/keep.rc 2>/dev/null; then
  fail $name "the held rm -rf exited 0"
elif [[ "$held_session" != vm-keep ]]; then
  fail $name "the record of the held rm names session '$held_session', not vm-keep"
else
  ok $name "$end, keep.rc $(cat /tmp/keep.rc 2>/dev/null || echo absent), PG_VERSION kept, recorded in session $held_session"
fi

# 8. An upgrade (the same package installed again: postinst's restart
# path) restarts the daemon, which adopts the pinned programs: enforcement
# has no gap, and a guarded rm is still refused.
name=upgrade-restarts-and-adopts
DEB=/var/cache/ks-test/killswitch.deb
pid0=$(systemctl show -p MainPID --value killswitch)
starts0=$(jq -c 'select(.event == "daemon_start")' "$LOG" 2>/dev/null | wc -l)
drc=0
DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB" > /tmp/upgrade.log 2>&1 || drc=$?
for _ in $(seq 1 60); do
  killswitch status > /dev/null 2>&1 && break
  sleep 0.5
done
active=$(systemctl is-active killswitch)
pid1=$(systemctl show -p MainPID --value killswitch)
starts1=$(jq -c 'select(.event == "daemon_start")' "$LOG" 2>/dev/null | wc -l)
adopted=$(jq -r 'select(.event == "daemon_start") | .pinned.adopted_links' "$LOG" 2>/dev/null | tail -1)
urc=0
killswitch run --session vm-upgrade -- rm -rf "$PG" > /tmp/rm4.out 2>&1 || urc=$?
if ((drc != 0)); then
  fail $name "dpkg -i again exited $drc: $(tail -3 /tmp/upgrade.log)"
elif [[ "$active" != active || "$pid1" == "$pid0" || "$pid1" == 0 ]]; then
  fail $name "unit $active, main pid $pid0 -> $pid1 (not restarted)"
elif ((starts1 != starts0 + 1)); then
  fail $name "$starts0 -> $starts1 daemon_start records"
elif [[ -z "$adopted" || "$adopted" == null || "$adopted" == 0 ]]; then
  fail $name "the new daemon adopted no pinned links ($adopted)"
elif ((urc != 126)) || [[ ! -f "$PG/PG_VERSION" ]]; then
  fail $name "guarded rm after the upgrade exited $urc, PG_VERSION $([[ -f $PG/PG_VERSION ]] && echo kept || echo gone)"
else
  ok $name "main pid $pid0 -> $pid1, $adopted links adopted, guarded rm refused (126)"
fi

# 9. Removal (not purge): the unit stops and the pinned programs go
# (prerm: daemon --uninstall), the policy (a conffile) and the audit trail
# stay, and the removal is in the trail.
name=remove-uninstalls
rrc=0
DEBIAN_FRONTEND=noninteractive dpkg -r killswitch > /tmp/remove.log 2>&1 || rrc=$?
active=$(systemctl is-active killswitch 2>/dev/null)
last=$(tail -1 "$LOG" 2>/dev/null | jq -r '.event' 2>/dev/null)
if ((rrc != 0)); then
  fail $name "dpkg -r exited $rrc: $(tail -3 /tmp/remove.log)"
elif [[ "$active" == active ]]; then
  fail $name "the unit is still active after dpkg -r"
elif [[ -e /sys/fs/bpf/killswitch ]]; then
  fail $name "/sys/fs/bpf/killswitch is still there: $(ls /sys/fs/bpf/killswitch | head -3 | paste -sd' ')"
elif [[ -e /usr/sbin/killswitch ]]; then
  fail $name "/usr/sbin/killswitch is still there"
elif [[ ! -f /etc/killswitch/policy.yaml ]]; then
  fail $name "the policy (a conffile) went with dpkg -r"
elif [[ "$last" != uninstall ]]; then
  fail $name "the trail's last record is '$last', not uninstall"
else
  ok $name "unit $active, pins gone, binary gone, policy and trail kept, last record uninstall"
fi

if ((failed)); then
  echo "--- journalctl -u killswitch (tail)"
  journalctl -u killswitch --no-pager | tail -50
fi
exit $failed
