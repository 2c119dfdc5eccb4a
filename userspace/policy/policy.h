// The policy: which processes are agents, who else is guarded, what is
// protected, and where the audit trail goes. Loaded from YAML (version 1,
// reference in docs/policy.md) with every problem reported at its line and
// column, all of them at once, so that `killswitch policy check` can list them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "decision/decision.h"

namespace ks::policy {

// Enforce stops destructive actions; Monitor only records what it would have
// stopped.
enum class Mode { Enforce, Monitor };

std::string_view mode_name(Mode mode);  // "enforce" / "monitor"
std::optional<Mode> parse_mode(std::string_view name);

// How a session frozen by a rule ends when nobody decides in time.
enum class FrozenEnd { KillSession, Thaw };
std::string_view frozen_end_name(FrozenEnd e);  // "kill-session" / "thaw"
std::optional<FrozenEnd> parse_frozen_end(std::string_view name);

// What happens to a `killswitch run` session whose wrapper died (killed, or
// its terminal gone without a SIGHUP reaching it).
enum class WrapperExit { KillSession, Keep };
std::string_view wrapper_exit_name(WrapperExit e);  // "kill-session" / "keep"
std::optional<WrapperExit> parse_wrapper_exit(std::string_view name);

// The action vocabulary is the decision pipeline's (decision/decision.h):
// one enum and one name table for the policy, the kernel and the records.
using ks::Action;
using ks::action_name;
using ks::parse_action;
using ks::parse_session_action;
using ks::session_action_name;
using ks::SessionAction;

// One problem in a policy, at a 1-based position of the source. Line and
// column are 0 when the problem is not about a place in the text (the file
// could not be read).
struct Diagnostic {
    std::string file;  // path as given, or "<built-in>"
    int line = 0;      // 1-based
    int column = 0;    // 1-based
    std::string message;

    // "FILE:LINE:COL: error: MESSAGE" ("FILE: error: MESSAGE" when line is 0).
    [[nodiscard]] std::string str() const;
    // The same with "warning:" in place of "error:".
    [[nodiscard]] std::string warning_str() const;
};

// protect.min_free: a share of the file system's size, or a size; neither
// is off. The floor is compared with the space unprivileged writers (the
// database server) can still use: statvfs f_bavail.
struct MinFree {
    uint32_t percent = 0;  // 1..90
    uint64_t bytes = 0;
    [[nodiscard]] bool off() const { return percent == 0 && bytes == 0; }
    // The floor on a file system of total bytes.
    [[nodiscard]] uint64_t floor(uint64_t total) const {
        return percent ? total / 100 * percent : bytes;
    }
    // "5%", "2GiB", "off": as the policy writes it.
    [[nodiscard]] std::string text() const;
    bool operator==(const MinFree&) const = default;
};
// "5%", "2GiB", "512MiB", "1073741824", "off"; nullopt for anything else.
std::optional<MinFree> parse_min_free(std::string_view text);

struct Policy {
    int version = 1;
    Mode mode = Mode::Enforce;
    std::vector<std::string> agent_names;  // basenames matched at exec
    // Programs outside every session that guarded processes may still signal,
    // ptrace and write into (processes.reachable); every other process outside
    // the session is out of their reach.
    std::vector<std::string> reachable_names;
    // The unix sockets (absolute paths, shell patterns allowed) of services
    // that act for whoever asks: a guarded process may not connect to them
    // (processes.deputies).
    std::vector<std::string> deputy_sockets;
    // The servers of terminal multiplexers (tmux, screen) running outside
    // every session are deputies too: a guarded `tmux send-keys` would run
    // its keys in a shell nobody guards. Their sockets are found from the
    // server processes (db_guard/listeners.h); one started inside a session
    // is the session's own.
    bool deputy_multiplexers = true;
    bool hold_agents_at_exec = true;
    std::vector<uint32_t> guard_uids;
    // cgroup v2 paths relative to the cgroup2 mount, normalised to start with '/'
    std::vector<std::string> guard_cgroups;
    std::vector<std::string> protect_paths;  // absolute paths
    // protect.system: kernel settings and the schedulers' spool and
    // configuration (/proc/sys, /sys/..., /etc/cron.d, /etc/systemd...): a
    // guarded process may not write there or make a link there. Rules
    // "system:PATH" with protect's action, mode and session action; a path
    // that does not exist on the host is skipped without a warning.
    std::vector<std::string> protect_system;
    // Paths given as {path: P, action: A, mode: M}: their own action, mode.
    std::map<std::string, Action> protect_path_actions;
    std::map<std::string, Mode> protect_path_modes;
    // ... and {path: P, session: S}: the session action of its rule.
    std::map<std::string, SessionAction> protect_path_sessions;
    // protect.mode: the mode of every protect rule (paths, unresolved paths,
    // io_uring, destructive commands) that does not give its own.
    Mode protect_mode = Mode::Enforce;
    Action protect_action = Action::Block;
    // After a block or kill by a protect rule, to the session (its own
    // `session:` wins). none: the refused operation fails and the agent goes on.
    SessionAction violation_session_action = SessionAction::None;
    // Paths the kernel cannot resolve in full (too long...) are never treated
    // as unprotected: this action applies.
    Action unresolved_action = Action::Block;
    // protect.min_free: guarded processes may not write a file system holding
    // protect.paths under this much free space (the space budget).
    MinFree min_free{.percent = 5};
    bool io_uring_allowed = false;       // io_uring bypasses the syscall hooks
    bool block_devices_allowed = false;  // a block device opened for writing bypasses them all
    // The libc layer: uprobes make the destructive calls of guarded processes
    // never happen, but they trap in every process that calls those libc
    // functions, guarded or not (docs/performance.md).
    bool libc_uprobes = true;
    int hold_timeout_s = 120;  // a hold nobody decides is denied

    // Databases (docs/database-protection.md). Endpoints as "KIND=ADDRESS";
    // the built-in list watches the standard ports on every address and the
    // standard unix sockets.
    std::vector<std::string> db_endpoints;
    // And every TCP port and unix socket that a running database server
    // (postgres, mysqld/mariadbd, redis-server, mongod) listens on, found
    // from its process and watched from then on (db_guard/listeners.h).
    // `killswitch daemon --db` turns it off: the list given is the list.
    bool db_discover = true;
    // After the kernel refused a destructive request: audit (refuse nothing,
    // record), block (refuse it; the client sees an error), kill, freeze or
    // kill-session. hold is not possible on the socket send path.
    Action db_action = Action::Block;
    SessionAction db_session_action = SessionAction::None;
    bool db_refuse_unparseable = true;  // requests the kernel cannot read in full
    bool db_refuse_encrypted = true;    // TLS / protocol compression from guarded processes
    int db_statement_max = 1024;        // bytes of a statement kept in an audit record
    // Uprobes on libpq's send functions: cover libpq clients over unix sockets
    // and TLS, at the price of a trap in every libpq client while a session
    // exists (docs/performance.md).
    bool db_client_probes = true;
    // The relay (userspace/db_relay): guarded connections, TCP and (Linux
    // 6.7+) unix sockets, go through the daemon, which judges each request
    // with the full parsers and answers a refusal in the protocol's own
    // error. false: the kernel alone judges them on the send path.
    bool db_relay = true;
    // After traffic on a guarded connection, the relay's thread looks for
    // the next bytes for this long before it sleeps: the server's answer and
    // the client's next request usually come within it, and the wake-up
    // they would otherwise take is most of what the relay's hop costs.
    // It spins only while guarded connections talk; 0: never.
    int db_relay_poll_us = 100;
    // Before the relay refuses a PostgreSQL DROP TABLE or ALTER TABLE ...
    // DROP COLUMN, it asks the server, on the client's own connection and in
    // its transaction, whether the table has a row: an empty table (the
    // first migration of a new project) loses nothing, and the statement
    // passes as a schema change. false: refused without asking.
    bool db_check_rows = true;
    // The destructive volume one session may reach within db_volume_within_s
    // seconds with requests that are each harmless (0: no limit): Redis keys
    // deleted, expired or moved, and DELETE statements. Past it, requests of
    // that kind are refused (rule db:volume) and count as refusals.
    // databases.effect: a PostgreSQL DELETE or UPDATE whose WHERE may limit
    // it, sent over the relay as a simple query, is judged by the rows it
    // would reach: the relay asks the server (EXPLAIN, ANALYZE first where
    // the table has no statistics, in a block rolled back on the client's
    // own connection) and the request is
    // refused as delete-all/update-all when the planner's rows reach
    // db_effect_percent of its table and at least db_effect_min_rows, or
    // db_effect_max_rows whatever the table (0: no such limit).
    bool db_effect = true;
    int db_effect_percent = 90;
    int db_effect_min_rows = 2;
    int db_effect_max_rows = 100000;
    int db_volume_keys = 1000;
    int db_volume_deletes = 1000;
    int db_volume_within_s = 60;
    Mode db_mode = Mode::Enforce;  // databases.mode: monitor refuses nothing, records all
    // databases.refuse: the classes of request refused, KS_DB_CLASS_BIT of
    // each ("drop", "delete-all", "schema-change"...); one left out is passed
    // and recorded (would-refuse when destructive).
    uint32_t db_refuse_classes = KS_DB_CLASSES_DESTRUCTIVE;
    // databases.bookkeeping_tables: migration tools' tables beside the
    // built-in ones (db::builtin_bookkeeping_tables), in lower case.
    std::vector<std::string> db_bookkeeping_tables;
    // sessions: escalation and the end of frozen sessions.
    // escalate_after refusals by one session within escalate_within_s seconds
    // make escalate_to happen to it (0: never).
    int escalate_after = 3;
    int escalate_within_s = 600;
    SessionAction escalate_to = SessionAction::Freeze;
    // An operation this kernel could only contain (it ran, then the process
    // died: a syscall tracepoint) is not a refusal the agent can work
    // around: the session at once.
    SessionAction contained_session = SessionAction::Freeze;
    // Any attempt on killswitch itself (its files, process, programs) or the
    // kernel (modules, kexec, reboot).
    SessionAction self_protection_session = SessionAction::Freeze;
    // A session a rule froze waits this long for a person, then frozen_end
    // (0: it waits for a person, however long).
    int frozen_timeout_s = 900;
    FrozenEnd frozen_end = FrozenEnd::KillSession;
    WrapperExit wrapper_exit = WrapperExit::KillSession;
    // outputs: "KIND=TARGET" (outputs/outputs.h), started with the daemon.
    std::vector<std::string> outputs;
    std::string audit_log = "/var/log/killswitch/audit.jsonl";
    // audit.mode and audit.group: the audit file's permission bits (no
    // write or execute for group and others) and group (-1: the daemon's).
    uint32_t audit_file_mode = 0600;
    std::string audit_group;  // as written; empty: the daemon's group
    int64_t audit_gid = -1;
    std::string source = "<built-in>";  // where it came from
    // The drop-in directory (policy.d) read after it; empty: none.
    std::string drop_in_dir;
    // Every file read, in order (the built-in policy: none), and the SHA-256
    // of their texts one after the other (of the built-in text when no file):
    // `cat FILE DIR/*.yaml | sha256sum` (LC_ALL=C) gives the same.
    std::vector<std::string> files;
    std::string sha256;

    bool operator==(const Policy&) const = default;
};

// The mode a rule runs in: monitor when the policy's mode is monitor, else the
// rule's own mode.
inline Mode effective_mode(const Policy& p, Mode rule_mode) {
    return p.mode == Mode::Monitor ? Mode::Monitor : rule_mode;
}
// The mode of a protected path's rule (its own, else protect.mode).
Mode protect_path_mode(const Policy& p, const std::string& path);

struct LoadResult {
    std::optional<Policy> policy;  // set only when errors is empty
    std::vector<Diagnostic> errors;
    std::vector<Diagnostic> warnings;
};

// The kernel keeps the first 15 bytes of a program's name (TASK_COMM_LEN - 1);
// agent names are compared on that prefix.
inline constexpr size_t kCommMaxLen = 15;

// Parses and validates a policy. Keys that are absent take the values of the
// default policy. source_name is used in diagnostics and as Policy::source.
LoadResult parse_policy(const std::string& text, const std::string& source_name);

// A group of this host by name or number (audit.group).
Result<int64_t> group_id(const std::string& name);

// Reads and parses a file. An unreadable file gives one error at line 0,
// column 0 with the errno text.
LoadResult load_policy_file(const std::string& path);

// The policy of a host: FILE (the built-in policy when empty), then each
// DIR/*.yaml (DIR empty: none) in the byte order of their names, names that
// start with '.' left out. A drop-in file's keys replace those before it,
// except lists, whose entries are added to the list before (protect.paths,
// agents.names...). Sets files and sha256. Every file's diagnostics, each
// with its own name; an unreadable directory or file is an error.
LoadResult load_policy_set(const std::string& file, const std::string& dir);

// Settings the running daemon reads only when it starts (an open file, BPF
// read-only data, programs attached or not, processes already marked): one
// message per key that differs between the policy in force and the next one,
// naming the key and saying that a restart is needed. Empty when the next
// policy can be applied to a running daemon.
std::vector<std::string> restart_required_changes(const Policy& running, const Policy& next);

// The built-in policy as commented YAML (`killswitch policy show-default`).
const std::string& default_policy_text();

// The parse of default_policy_text(); never fails.
Policy default_policy();

}  // namespace ks::policy
