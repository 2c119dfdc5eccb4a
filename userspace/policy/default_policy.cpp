// The built-in policy. It is also the source of every default: a policy file
// that leaves out a key gets the value written here.
#include "policy/policy.h"

namespace ks::policy {

const std::string& default_policy_text() {
    static const std::string text =
        R"(# killswitch policy (format version 1). Reference: docs/policy.md
#
# This is the built-in policy. A policy file only needs the keys it changes:
# every key that is left out takes the value shown here.
# Check a file with `killswitch policy check FILE`.

version: 1

# enforce: stop destructive actions and record them in the audit log.
# monitor: stop nothing, record what would have been stopped.
mode: enforce

agents:
  # Programs that are AI agents, by the name of the executable (its basename,
  # no directory). The kernel compares only the first 15 bytes of a name.
  # Every exec of one of these opens a guarded session, as does
  # `killswitch run -- CMD`.
  names: [claude, codex, gemini, aider, goose, opencode, cursor-agent]
  # Stop an agent at exec until the daemon has moved it into its session
  # cgroup, so that it cannot run a single instruction unguarded.
  hold_at_exec: true

guard:
  # Every exec by these user ids opens a guarded session, whatever the program.
  uids: []
  # cgroup v2 paths, relative to the cgroup2 mount ("/system.slice/ci.service"):
  # processes in them are guarded.
  cgroups: []

protect:
  # Absolute paths that guarded processes must not destroy: database data
  # directories, and killswitch's own configuration, binary and logs.
  paths:
    - /var/lib/postgresql
    - /var/lib/pgsql
    - /var/lib/mysql
    - /var/lib/mongodb
    - /var/lib/mongo
    - /var/lib/redis
    - /var/lib/etcd
    - /etc/killswitch
    - /usr/local/sbin/killswitch
    - /var/log/killswitch

audit:
  # The audit trail: one JSON object per line, appended.
  log: /var/log/killswitch/audit.jsonl
)";
    return text;
}

}  // namespace ks::policy
