#include "policy/compile.h"

#include "common/log.h"

namespace ks::policy {

namespace {

// Where a policy of `count` path rules goes, given the rules of the policy in
// force at [cur_first, cur_end): below them or above them when there is room,
// so that no rule id changes meaning while the kernel moves from one to the
// other. Only when neither fits do the two overlap.
uint32_t choose_bank(uint32_t count, uint32_t cur_first, uint32_t cur_end) {
    if (cur_first == cur_end || kRuleFirstPath + count <= cur_first) return kRuleFirstPath;
    if (cur_end + count <= KS_MAX_RULES) return cur_end;
    spdlog::warn("policy: {} rules do not fit beside the {} in force; rule ids are reused", count,
                 cur_end - cur_first);
    return kRuleFirstPath;
}

}  // namespace

std::string CompiledPolicy::rule_name(uint32_t id) const {
    return id < rule_names.size() && !rule_names[id].empty() ? rule_names[id]
                                                             : "rule-" + std::to_string(id);
}

CompiledRule CompiledPolicy::rule(uint32_t id) const {
    return id < rules.size() ? rules[id] : CompiledRule{};
}

std::vector<std::string> self_paths(const Policy& p, const std::string& policy_file,
                                    const Environment& env) {
    std::vector<std::string> self = {p.audit_log, env.cgroup2};
    if (!env.exe.empty()) self.push_back(env.exe);
    if (!policy_file.empty()) self.push_back(policy_file);
    // The pinned programs: unlinking a pin would detach its program.
    if (!env.pin_dir.empty()) self.push_back(env.pin_dir);
    return self;
}

Result<CompiledPolicy> compile(Policy p, const std::string& policy_file, const Environment& env,
                               const CompiledPolicy* running) {
    CompiledPolicy s;
    s.file = policy_file;
    bool monitor = p.mode == Mode::Monitor;  // self-protection follows the policy's mode only
    bool protect_monitor = effective_mode(p, p.protect_mode) == Mode::Monitor;
    bool db_monitor = effective_mode(p, p.db_mode) == Mode::Monitor;

    // Rule ids: the fixed ones, then this policy's bank of path and self
    // rules; the running policy's bank stays readable beside it.
    if (running) {
        s.rule_names = running->rule_names;
        s.rules = running->rules;
    }
    s.rule_names.resize(KS_MAX_RULES);
    s.rules.resize(KS_MAX_RULES);
    s.rule_names[kRuleUnresolved] = "unresolved-path";
    s.rule_names[kRuleIoUring] = "io_uring";
    s.rule_names[kRuleExecCommand] = "exec-command";
    s.rule_names[kRuleBlockDevice] = "block-device";
    s.rule_names[kRuleSpace] = "low-space";
    // An allow window covers neither: an unresolved path may be killswitch's
    // own, and io_uring would bypass the self-protection rules.
    SessionAction follow_up = p.violation_session_action;
    s.rules[kRuleUnresolved] = {p.unresolved_action, protect_monitor, true, follow_up};
    s.rules[kRuleIoUring] = {Action::Block, protect_monitor, true, follow_up};
    s.rules[kRuleExecCommand] = {p.protect_action, protect_monitor, false, follow_up};
    // Nor a block device: writing one bypasses every file rule.
    s.rules[kRuleBlockDevice] = {p.protect_action, protect_monitor, true, follow_up};
    // A window may let a session write past the floor (a restore the
    // operator watches over).
    s.rules[kRuleSpace] = {p.protect_action, protect_monitor, false, follow_up};

    std::vector<std::string> self = self_paths(p, policy_file, env);
    size_t count = p.protect_paths.size() + p.protect_system.size() + self.size();
    if (count > KS_MAX_RULES - kRuleFirstPath)
        return make_error(
            "too many protected paths: " + std::to_string(p.protect_paths.size()) + " and " +
            std::to_string(p.protect_system.size()) + " system paths (at most " +
            std::to_string(KS_MAX_RULES - kRuleFirstPath - self.size()) + " together)");
    s.bank_first = choose_bank(static_cast<uint32_t>(count), running ? running->bank_first : 0,
                               running ? running->bank_end : 0);
    uint32_t id = s.bank_first;
    for (const auto& path : p.protect_paths) {
        auto it = p.protect_path_actions.find(path);
        Action action = it != p.protect_path_actions.end() ? it->second : p.protect_action;
        auto sit = p.protect_path_sessions.find(path);
        SessionAction session = sit != p.protect_path_sessions.end() ? sit->second : follow_up;
        s.protect.push_back({path, id});
        s.rule_names[id] = "protect:" + path;
        s.rules[id++] = {action, protect_path_mode(p, path) == Mode::Monitor, false, session};
    }
    for (const auto& path : p.protect_system) {
        s.protect.push_back({path, id, false, true});
        s.rule_names[id] = "system:" + path;
        s.rules[id++] = {p.protect_action, protect_monitor, false, follow_up};
    }
    for (const auto& path : self) {
        s.protect.push_back({path, id, true});
        s.rule_names[id] = "self:" + path;
        s.rules[id++] = {Action::Block, monitor, true, p.self_protection_session};
    }
    s.bank_end = id;
    s.io_uring_rule = p.io_uring_allowed ? KS_MAX_RULES : kRuleIoUring;
    s.block_device_rule = p.block_devices_allowed ? KS_MAX_RULES : kRuleBlockDevice;
    s.space_rule = p.min_free.off() ? KS_MAX_RULES : kRuleSpace;

    for (const auto& spec : p.db_endpoints) {
        auto ep = db::parse_endpoint(spec);
        if (!ep) return make_error("database endpoint " + ep.error().str());
        s.db_endpoints.push_back(std::move(ep.value()));
    }
    s.db_wire.monitor = db_monitor || p.db_action == Action::Audit;
    s.db_wire.refuse_unparseable = p.db_refuse_unparseable;
    s.db_wire.refuse_encrypted = p.db_refuse_encrypted;
    s.db_wire.refuse_classes = p.db_refuse_classes;
    s.db_wire.bookkeeping_tables = p.db_bookkeeping_tables;
    // Deputies: the unix sockets of services that act for whoever asks, in
    // the same kernel map as the databases' sockets, of their own kind.
    for (const auto& path : p.deputy_sockets) {
        db::Endpoint ep;
        ep.kind = db::Kind::Deputy;
        ep.address = path;
        ep.unix_path = path;
        s.db_endpoints.push_back(std::move(ep));
    }
    s.db_wire.deputy_monitor = monitor;
    s.db_client_monitor = db_monitor;
    s.policy = std::move(p);
    return s;
}

}  // namespace ks::policy
