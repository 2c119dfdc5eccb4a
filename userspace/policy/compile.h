// The compiled policy: everything the daemon and the kernel need from a
// policy, as one value. compile() is pure (no file system, no kernel): it
// turns (policy, environment, the policy in force) into rule ids and names,
// the paths to protect with their rules, the watched database endpoints and
// the socket path's settings. The daemon holds one, and a reload is compile,
// publish, swap.
#pragma once

#include <killswitch/abi/events.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "decision/decision.h"
#include "policy/db_endpoints.h"
#include "policy/policy.h"

namespace ks::policy {

// Fixed rule ids; the protected paths follow.
inline constexpr uint32_t kRuleUnresolved = 0;
inline constexpr uint32_t kRuleIoUring = 1;
inline constexpr uint32_t kRuleExecCommand = 2;
inline constexpr uint32_t kRuleBlockDevice = 3;
inline constexpr uint32_t kRuleSpace = 4;  // protect.min_free
inline constexpr uint32_t kRuleFirstPath = 5;

// One entry of the kernel's rules map (struct ks_rule).
struct CompiledRule {
    Action action = Action::Block;
    bool monitor = false;
    bool no_window = false;  // an allow window never covers this rule
    // After a block or kill by this rule, to the session (user space only).
    SessionAction session = SessionAction::None;
    bool operator==(const CompiledRule&) const = default;
};

// A root to protect and the rule its objects carry.
struct ProtectEntry {
    std::string path;
    uint32_t rule_id = 0;
    // killswitch's own object: an allow window never covers it, nor a
    // protected directory above it.
    bool self = false;
    // protect.system: a host setting or scheduler directory; skipped quietly
    // where the host has none.
    bool system = false;
};

// How the socket send path judges requests (db_config map).
struct DbWireSettings {
    bool monitor = false;
    bool refuse_unparseable = true;
    bool refuse_encrypted = true;
    uint32_t refuse_classes = KS_DB_CLASSES_DESTRUCTIVE;  // databases.refuse
    std::vector<std::string> bookkeeping_tables;          // beside the built-in ones
    bool deputy_monitor = false;  // processes.deputies only recorded (mode: monitor)
    bool operator==(const DbWireSettings&) const = default;
};

// What compile() needs to know about the host: killswitch's own objects,
// which the "self:" rules protect.
struct Environment {
    std::string exe;      // the daemon's binary (resolved); "" when unknown
    std::string cgroup2;  // the cgroup v2 mount
    std::string pin_dir;  // where the programs are pinned; "" when they are not
};

struct CompiledPolicy {
    Policy policy;
    std::string file;  // the policy file; empty: the built-in policy
    // Indexed by rule id, KS_MAX_RULES entries. The path and self rules of a
    // policy occupy [bank_first, bank_end); a reload places its own where the
    // running policy's are not, so that each protected inode moves from its
    // old rule to its new one in a single map update, and records of the old
    // rules still read back with the old names.
    std::vector<std::string> rule_names;
    std::vector<CompiledRule> rules;
    uint32_t bank_first = 0;
    uint32_t bank_end = 0;
    std::vector<ProtectEntry> protect;  // policy paths, then self paths
    std::vector<db::Endpoint> db_endpoints;
    DbWireSettings db_wire;
    bool db_client_monitor = false;                 // the libpq layer records, never holds
    uint32_t io_uring_rule = kRuleIoUring;          // KS_MAX_RULES: io_uring allowed
    uint32_t block_device_rule = kRuleBlockDevice;  // KS_MAX_RULES: block devices allowed
    uint32_t space_rule = kRuleSpace;               // KS_MAX_RULES: protect.min_free off

    // "protect:/srv/data", "self:...", "unresolved-path"; "rule-N" for an id
    // no rule has.
    [[nodiscard]] std::string rule_name(uint32_t id) const;
    [[nodiscard]] CompiledRule rule(uint32_t id) const;
};

// What the "self:" rules protect: the audit log, the cgroup v2 hierarchy,
// the daemon's binary, the policy file, the pinned programs.
std::vector<std::string> self_paths(const Policy& p, const std::string& policy_file,
                                    const Environment& env);

// running: the policy in force (its rule bank is left alone where there is
// room); null at start-up. Errors: too many paths, a bad endpoint.
Result<CompiledPolicy> compile(Policy p, const std::string& policy_file, const Environment& env,
                               const CompiledPolicy* running);

}  // namespace ks::policy
