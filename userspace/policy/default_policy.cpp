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
  # Stop an agent (and an exec by a guarded uid) that has no controlling
  # terminal at exec until the daemon has moved it into its session cgroup.
  # One started from a terminal is never stopped: its shell would report the
  # job as stopped. It is guarded in the kernel all the same.
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
    # An entry may carry its own action, mode and session action:
    # {path: /srv/exports, action: hold}, {path: /srv/new, mode: monitor},
    # {path: /srv/ledger, session: freeze}
  # What happens to a guarded process that tries to delete, rename away,
  # truncate or overwrite protected data: audit, block, kill, freeze,
  # kill-session or hold (see docs/policy.md). block prevents the operation
  # where the kernel allows it and kills the process at once where it can
  # only contain it.
  action: block
  # And then, to the agent's whole session: none, freeze or kill-session.
  # none: the refused operation fails, the agent is told why (on the stderr
  # or terminal its tool reads) and goes on; repeated refusals escalate
  # (sessions: below). `session: freeze` freezes it at the first refusal.
  session: none
  # Paths the kernel cannot resolve in full (longer than it reads) are never
  # taken as unprotected: this action applies to them.
  unresolved: block
  # io_uring operations bypass the syscall hooks: refuse io_uring to guarded
  # processes (refuse), or allow it.
  io_uring: refuse
  # A block device opened for writing (/dev/sda, /dev/nvme0n1p2, a loop or
  # device-mapper device, whatever node or symlink reaches it) bypasses every
  # rule above: refuse it to guarded processes (refuse), or allow it.
  block_devices: refuse
  # The space budget: a guarded process may not bring a file system that
  # holds protected paths under this much free space (a full disk stops the
  # database as surely as a deletion). A share of the file system (5%), a size
  # (2GiB, 512MiB) or off; compared with the space an unprivileged writer can
  # use (df's Avail). The write that would pass it is refused; what is
  # written within the budget, and on other file systems, is free. off at
  # start attaches no program to the write system calls.
  min_free: 5%
  # Seconds a held operation waits for `killswitch approve|deny ID`; then denied.
  hold_timeout: 120
  # The libc layer: uprobes on libc's unlink, rename, truncate, open... stop a
  # guarded process before the call. They trap in EVERY process that calls
  # those functions, guarded or not (measured: docs/performance.md). false
  # leaves the exec layer and the syscall tracepoints, which stop the agent at
  # the first such call but let that one call complete.
  libc_uprobes: true
  # enforce, or monitor: the protect rules record what they would have done
  # and prevent nothing (an entry's own mode wins; the top-level mode: monitor
  # wins over both).
  mode: enforce
  # Kernel settings and the schedulers' spool and configuration: a guarded
  # process may not write there, nor make a link there (a sysctl that makes
  # the kernel start a program, SysRq, a cron or at job, a systemd unit or
  # timer: work that would run later, outside any session). Each path is a
  # rule system:PATH with the action, session and mode above; one the host
  # does not have is skipped. [] turns this off. Package-managed unit files
  # (/usr/lib/systemd) are not listed: they take effect only through systemd
  # (a deputy, processes.deputies) or a reboot. Nor are tracefs and debugfs
  # (/sys/kernel/tracing, /sys/kernel/debug): runtimes write trace markers
  # there (Bun opens trace_marker at start).
  system:
    - /proc/sys
    - /proc/sysrq-trigger
    - /sys/kernel/uevent_helper
    - /sys/kernel/mm
    - /sys/kernel/security
    - /sys/kernel/config
    - /sys/module
    - /sys/power
    - /sys/firmware
    - /sys/devices
    - /sys/class
    - /sys/block
    - /sys/bus
    - /etc/crontab
    - /etc/cron.d
    - /etc/cron.hourly
    - /etc/cron.daily
    - /etc/cron.weekly
    - /etc/cron.monthly
    - /etc/anacrontab
    - /var/spool/cron
    - /etc/systemd
    - /run/systemd/system
    - /run/systemd/transient

processes:
  # A guarded process may signal, ptrace, pidfd_open, process_vm_writev or
  # open /proc/PID/mem for writing only the processes of its own session.
  # Every other process (the database server, another agent's session, any
  # service) is out of its reach: a guarded `kill -9` of the server or
  # `pg_ctl stop` is refused (docs/policy.md says where it is refused and where
  # the caller is stopped before the call). Programs outside the sessions that
  # guarded processes may still reach, by name (first 15 bytes): [nginx]...
  reachable: []
  # Deputies: the unix sockets of services that run commands or change the
  # system for whoever asks (systemd, D-Bus, container runtimes). A guarded
  # process may not connect to them (systemctl, systemd-run, busctl, docker
  # run -v /:/host...). Absolute paths, shell patterns allowed. Refused where
  # the kernel has cgroup/connect_unix (Linux 6.7+; killswitch doctor).
  deputies:
    - /run/systemd/private
    - /run/dbus/system_bus_socket
    - /var/run/dbus/system_bus_socket
    - /run/user/*/systemd/private
    - /run/user/*/bus
    - /run/docker.sock
    - /var/run/docker.sock
    - /run/containerd/containerd.sock
    - /run/podman/podman.sock
    - /run/crio/crio.sock
  # And the sockets of tmux and screen servers running outside every session,
  # found from their processes every 5 seconds: `tmux send-keys` to a
  # person's tmux would type into a shell nobody guards. A multiplexer the
  # agent starts inside its session stays the session's own.
  multiplexers: true

databases:
  # The databases to watch, as KIND=ADDRESS (KIND: postgres, mysql, redis,
  # mongodb; ADDRESS: HOST:PORT, [IPV6]:PORT, *:PORT for every address, or a
  # unix socket path, patterns allowed). `killswitch daemon --db ...` replaces
  # this list. Every request a guarded process sends on a TCP connection to one
  # of them is judged in the kernel before it leaves (docs/database-protection.md).
  endpoints:
    - postgres=*:5432
    - mysql=*:3306
    - redis=*:6379
    - mongodb=*:27017
    - postgres=/var/run/postgresql/.s.PGSQL.*
    - postgres=/run/postgresql/.s.PGSQL.*
    - mysql=/var/run/mysqld/mysqld.sock
    - mysql=/run/mysqld/mysqld.sock
    - redis=/var/run/redis/*.sock
    - redis=/run/redis/*.sock
  # And every other port and unix socket that a running PostgreSQL, MySQL,
  # MariaDB, Redis or MongoDB server listens on, found from the server's own
  # process (checked every 5 seconds; `killswitch status` lists them):
  # a second listener, a private socket directory or ::1 is watched too.
  # `killswitch daemon --db ...` turns this off.
  discover: true
  # A destructive request (DROP, TRUNCATE, DELETE/UPDATE of every row,
  # FLUSHALL, dropDatabase...) is refused before the server sees it. Then:
  # audit (refuse nothing, record only), block (the client gets an error and
  # goes on), kill, freeze or kill-session. hold is not possible here.
  action: block
  # And then, to the agent's whole session: none, freeze or kill-session.
  session: none
  # Requests the kernel cannot read in full (longer than 4096 bytes, malformed,
  # an unknown message): refuse or allow.
  unparseable: refuse
  # TLS or protocol compression requested by a guarded process: the requests
  # after it cannot be read. refuse or allow.
  encrypted: refuse
  # Bytes of each statement written to the audit record.
  statement_max: 1024
  # enforce, or monitor: destructive requests are recorded (would-refuse) and
  # sent (the top-level mode: monitor wins over this).
  mode: enforce
  # The classes of request refused: drop, truncate, delete-all, update-all,
  # alter-drop (a column), opaque-code (EXECUTE of a string, EVALSHA...),
  # flush, shutdown-nosave, swapdb, config-set-path (where or whether Redis
  # keeps data), host-access (the server reads, writes or runs something on
  # its host, or loads code:
  # COPY ... PROGRAM, lo_export, ALTER SYSTEM, INTO OUTFILE, LOAD_FILE,
  # INSTALL PLUGIN, SET GLOBAL, MODULE LOAD, DEBUG, MIGRATE...). Two more
  # lose no row and pass unless listed:
  # schema-change (DROP INDEX, ALTER ... DROP NOT NULL/DEFAULT/CONSTRAINT...)
  # and bookkeeping (DELETE/UPDATE of every row of a migration tool's table).
  # A class left out is sent and recorded (would-refuse when destructive).
  refuse: [drop, truncate, delete-all, update-all, alter-drop, opaque-code, flush,
           shutdown-nosave, swapdb, config-set-path, host-access]
  # Migration tools' tables, beside the built-in django_migrations,
  # alembic_version, knex_migrations, knex_migrations_lock,
  # flyway_schema_history, databasechangelog, databasechangeloglock,
  # schema_migrations, ar_internal_metadata, _prisma_migrations, SequelizeMeta:
  # names alone (any schema, any case, quoted or not).
  bookkeeping_tables: []
  # Uprobes on libpq's send functions: they also cover libpq clients over unix
  # sockets and TLS, but trap in every libpq client, guarded or not, while a
  # session exists (docs/performance.md).
  client_probes: true
  # Guarded connections go through the daemon's relay, which reads every
  # request with the full parsers, over TCP and (Linux 6.7+) unix sockets, and
  # answers a refused one in the protocol's own error (PostgreSQL
  # ErrorResponse 42501, MySQL ERR 1227, Redis -ERR); the connection stays
  # usable. false: the kernel alone judges them on the socket send path.
  relay: true
  # After traffic on a guarded connection the relay's thread looks for the
  # next bytes for this many microseconds before it sleeps: the answer and
  # the next request usually come within it, and waking the thread is most of
  # what the relay's hop costs on small machines. It spins only while guarded
  # connections talk (a busy guarded client keeps one CPU busy); 0: never
  # (docs/performance.md).
  relay_poll_us: 100
  # A PostgreSQL DELETE or UPDATE whose WHERE may or may not limit it (WHERE
  # id > 0, WHERE col IS NOT NULL...), sent over the relay as a simple query,
  # is judged by what it would reach: the relay asks the server on the
  # client's own connection (EXPLAIN, with ANALYZE first for a table without
  # statistics, in a block it rolls back) and refuses it as delete-all or
  # update-all when the
  # planner's rows reach `percent` of the table and at least `min_rows`, or
  # `max_rows` whatever the table's size (0: no such limit).
  effect:
    check: true
    percent: 90
    min_rows: 2
    max_rows: 100000
  # Destruction one harmless-looking request at a time: what one session may
  # delete within `within` seconds before such requests are refused (0: no
  # limit). keys: Redis keys deleted, expired or moved (DEL, UNLINK, EXPIRE...);
  # deletes: DELETE statements that have a WHERE.
  volume:
    keys: 1000
    deletes: 1000
    within: 60

sessions:
  # Escalation: this many refused operations by one session within
  # escalate_within seconds, and escalate_to (freeze or kill-session) happens
  # to the whole session. 0 never escalates.
  escalate_after: 3
  escalate_within: 600
  escalate_to: freeze
  # An operation this kernel could only contain (it ran, then the process was
  # killed: a syscall tracepoint; `killswitch doctor` says where that
  # happens) is not a refusal an agent can work around: none, freeze or
  # kill-session, at once.
  on_contained: freeze
  # Any attempt on killswitch itself (its files, process, programs) or on the
  # kernel (modules, kexec, reboot): none, freeze or kill-session.
  self_protection: freeze
  # A session frozen by a rule is announced (its terminal, the log, `killswitch
  # status`) and waits this many seconds for a person (`killswitch thaw` or
  # `killswitch kill --session NAME`); then frozen_end: kill-session or thaw.
  # 0: it waits for a person, however long. A session a person froze
  # (`killswitch freeze`) is never ended by this timeout.
  frozen_timeout: 900
  frozen_end: kill-session
  # When the `killswitch run` wrapper of a session dies (killed, or its
  # terminal gone): kill-session, or keep (the daemon keeps guarding it).
  wrapper_exit: kill-session

# Where state and decisions go besides the audit trail, as KIND=TARGET:
#   metrics=127.0.0.1:9464      Prometheus text at http://127.0.0.1:9464/metrics
#   metrics-file=/var/lib/prometheus/node-exporter/killswitch.prom
#                               the same, for node-exporter's textfile collector
#   syslog=tls://logs.example.com:6514?ca=/etc/killswitch/logs-ca.pem
#                               every record, RFC 5424 (also udp://, tcp://)
#   webhook=https://hooks.example.com/killswitch
#                               decisions, and each hold and frozen session
#                               with the command a person runs
#   ocsf=/var/log/killswitch/ocsf.jsonl
#                               OCSF 1.8.0 events
#   journald                    journal entries with fields
# Each has a bounded queue and never holds enforcement up; what it could not
# deliver is counted (docs/outputs.md). Read at start: a change needs a restart.
outputs: []

audit:
  # The audit trail: one JSON object per line, appended.
  log: /var/log/killswitch/audit.jsonl
  # Its permission bits (octal, at most 0644: only root writes it) and group
  # (a name or number; empty: root's). 0640 with group adm lets the members
  # of adm read it, as they read the system's logs. Applied at start, at
  # each reload and when SIGHUP reopens the file after rotation.
  mode: "0600"
  group: ""
)";
    return text;
}

}  // namespace ks::policy
