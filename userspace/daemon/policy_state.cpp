// The state the daemon derives from its policy, and `killswitch policy
// reload`: the new policy is parsed, checked and turned into every piece of
// state (protected set, rules, names, endpoints, configuration) before the
// kernel sees any of it; then published; and put back as it was if
// publishing fails half way.
#include <limits.h>

#include "daemon/daemon_impl.h"

namespace ks::daemon_detail {

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

Result<PolicyState> Daemon::build_state(policy::Policy p, const std::string& file) const {
    PolicyState s;
    s.file = file;
    using policy::Mode;
    bool monitor = p.mode == Mode::Monitor;  // self-protection follows the policy's mode only
    bool protect_monitor = policy::effective_mode(p, p.protect_mode) == Mode::Monitor;
    bool db_monitor = policy::effective_mode(p, p.db_mode) == Mode::Monitor;

    // Rule ids: the fixed ones, then this policy's bank of path and self rules.
    s.rule_names = rule_names_;
    s.rule_slots = rule_slots_;
    s.rule_names.resize(KS_MAX_RULES);
    s.rule_slots.resize(KS_MAX_RULES);
    s.rule_names[kRuleUnresolved] = "unresolved-path";
    s.rule_names[kRuleIoUring] = "io_uring";
    s.rule_names[kRuleExecCommand] = "exec-command";
    // An allow window covers neither: an unresolved path may be killswitch's
    // own, and io_uring would bypass the self-protection rules.
    s.rule_slots[kRuleUnresolved] = {to_kernel_action(p.unresolved_action), protect_monitor, true};
    s.rule_slots[kRuleIoUring] = {KS_ACT_BLOCK, protect_monitor, true};
    s.rule_slots[kRuleExecCommand] = {to_kernel_action(p.protect_action), protect_monitor};

    std::vector<std::string> self = self_paths(p, file);
    size_t count = p.protect_paths.size() + self.size();
    if (count > KS_MAX_RULES - kRuleFirstPath)
        return make_error("too many protected paths: " + std::to_string(p.protect_paths.size()) +
                          " (at most " +
                          std::to_string(KS_MAX_RULES - kRuleFirstPath - self.size()) + ")");
    s.bank_first = choose_bank(static_cast<uint32_t>(count), rule_bank_first_, rule_bank_end_);
    uint32_t id = s.bank_first;
    std::vector<ProtectedSet::Entry> entries;
    for (const auto& path : p.protect_paths) {
        auto it = p.protect_path_actions.find(path);
        auto action = it != p.protect_path_actions.end() ? it->second : p.protect_action;
        entries.push_back({path, id});
        s.rule_names[id] = "protect:" + path;
        s.rule_slots[id++] = {to_kernel_action(action),
                              policy::protect_path_mode(p, path) == Mode::Monitor};
    }
    for (const auto& path : self) {
        entries.push_back({path, id, true});
        s.rule_names[id] = "self:" + path;
        s.rule_slots[id++] = {KS_ACT_BLOCK, monitor, true};
    }
    s.bank_end = id;
    std::vector<std::string> warnings;
    s.protected_set = ProtectedSet::build(entries, kMaxProtectedInodes, warnings);
    for (const auto& w : warnings) spdlog::info("{}", w);

    for (const auto& spec : p.db_endpoints) {
        auto ep = db::parse_endpoint(spec);
        if (!ep) return make_error("database endpoint " + ep.error().str());
        s.db_endpoints.push_back(std::move(ep.value()));
    }
    s.db_wire.monitor = db_monitor || p.db_action == policy::Action::Audit;
    s.db_wire.refuse_unparseable = p.db_refuse_unparseable;
    s.db_wire.refuse_encrypted = p.db_refuse_encrypted;
    s.db_client_monitor = db_monitor;
    s.policy = std::move(p);
    return s;
}

Status Daemon::publish_state(const PolicyState& next, const PolicyState* previous) {
    const policy::Policy& p = next.policy;
    // The new bank's rules before the inodes that point at them; the fixed
    // rules change in place.
    if (auto st = fbpf_->set_rules(next.rule_slots, next.bank_first, next.bank_end); !st) return st;
    if (auto st = fbpf_->set_rules(next.rule_slots, 0, kRuleFirstPath); !st) return st;
    if (auto st = fbpf_->publish(next.protected_set, previous ? &previous->protected_set : nullptr);
        !st)
        return st;
    if (auto st =
            fbpf_->set_config(kRuleUnresolved, p.io_uring_allowed ? KS_MAX_RULES : kRuleIoUring);
        !st)
        return st;
    if (auto st = bpf_->set_agent_names(p.agent_names); !st) return st;
    if (auto st = bpf_->set_guarded_uids(p.guard_uids); !st) return st;
    if (dwbpf_) {
        if (auto st = dwbpf_->set_endpoints(next.db_endpoints); !st) return st;
        if (auto st = dwbpf_->set_config(next.db_wire); !st) return st;
    }
    if (auto st = dbpf_->set_monitor(next.db_client_monitor); !st) return st;
    return {};
}

void Daemon::adopt_state(PolicyState&& s) {
    policy_ = std::move(s.policy);
    policy_file_ = std::move(s.file);
    protected_ = std::move(s.protected_set);
    rule_names_ = std::move(s.rule_names);
    rule_slots_ = std::move(s.rule_slots);
    rule_bank_first_ = s.bank_first;
    rule_bank_end_ = s.bank_end;
    db_endpoints_ = std::move(s.db_endpoints);
    db_wire_ = s.db_wire;
    db_client_monitor_ = s.db_client_monitor;
}

PolicyState Daemon::current_state() const {
    PolicyState s;
    s.policy = policy_;
    s.file = policy_file_;
    s.protected_set = protected_;
    s.rule_names = rule_names_;
    s.rule_slots = rule_slots_;
    s.bank_first = rule_bank_first_;
    s.bank_end = rule_bank_end_;
    s.db_endpoints = db_endpoints_;
    s.db_wire = db_wire_;
    s.db_client_monitor = db_client_monitor_;
    return s;
}

json Daemon::reload_policy(const json& req, const PeerCred& peer) {
    std::string file = policy_file_;
    if (req.contains("file") && req["file"].is_string()) file = req["file"].get<std::string>();
    std::string new_source = file.empty() ? policy::default_policy().source : file;
    json rec = {{"event", "policy_reload"},
                {"pid", peer.pid},
                {"ppid", 0},
                {"uid", peer.uid},
                {"comm", comm_of(peer.pid)},
                {"exe", ""},
                {"session", nullptr},
                {"old_source", policy_.source},
                {"new_source", new_source}};
    auto refuse = [&](const std::string& result, const std::string& error,
                      const json& diagnostics) -> json {
        rec["result"] = result;
        rec["error"] = error;
        rec["diagnostics"] = diagnostics;
        audit_->append(rec);
        (void)audit_->sync();
        spdlog::warn("policy reload from {} (pid {}) {}: {}", new_source, peer.pid, result, error);
        for (const auto& d : diagnostics) spdlog::warn("  {}", d.get<std::string>());
        return {{"ok", false},
                {"result", result},
                {"error", error},
                {"diagnostics", diagnostics},
                {"policy", policy_.source}};
    };

    // A guarded process never changes the rules it runs under, even as root.
    if (auto sid = bpf_->session_of(peer.pid))
        return refuse("refused",
                      "the caller is itself guarded (session " + session_name(*sid) + ")",
                      json::array());
    if (!file.empty() && file[0] != '/')
        return refuse("refused",
                      "the policy file must be given as an absolute path, not '" + file + "'",
                      json::array());

    policy::LoadResult res = file.empty() ? policy::LoadResult{policy::default_policy(), {}, {}}
                                          : policy::load_policy_file(file);
    json diagnostics = json::array(), warnings = json::array();
    for (const auto& e : res.errors) diagnostics.push_back(e.str());
    for (const auto& w : res.warnings) warnings.push_back(w.warning_str());
    rec["warnings"] = warnings;
    if (!res.policy) return refuse("refused", "the policy has errors", diagnostics);
    auto next = apply_overrides(*res.policy);
    if (!next) return refuse("refused", next.error().str(), diagnostics);
    for (const auto& msg : policy::restart_required_changes(policy_, *next))
        diagnostics.push_back(policy::Diagnostic{new_source, 0, 0, msg}.str());
    if (!diagnostics.empty())
        return refuse("refused", "the policy changes settings that need a restart", diagnostics);

    auto state = build_state(std::move(next.value()), file);
    if (!state) return refuse("refused", state.error().str(), diagnostics);
    PolicyState old = current_state();
    if (auto st = publish_state(*state, &old); !st) {
        diagnostics.push_back(st.error().str());
        auto back = publish_state(old, &state.value());
        if (!back) diagnostics.push_back("putting the previous policy back: " + back.error().str());
        return refuse("failed",
                      back ? "publishing the policy to the kernel failed; the previous policy "
                             "was put back"
                           : "publishing the policy to the kernel failed, and so did putting the "
                             "previous one back: restart the daemon",
                      diagnostics);
    }
    adopt_state(std::move(state.value()));
    policy_loaded_ns_ = realtime_now_ns();
    update_file_layer();
    rec["result"] = "accepted";
    rec["mode"] = policy::mode_name(policy_.mode);
    rec["protect"] = policy_.protect_paths;
    audit_->append(rec);
    (void)audit_->sync();
    spdlog::info("policy reloaded from {} by pid {} (uid {}): mode {}, {} protected roots",
                 policy_.source, peer.pid, peer.uid, policy::mode_name(policy_.mode),
                 protected_.roots().size());
    return {{"ok", true},
            {"result", "accepted"},
            {"policy", policy_.source},
            {"policy_loaded", format_realtime_ns(policy_loaded_ns_)},
            {"mode", policy::mode_name(policy_.mode)},
            {"warnings", warnings}};
}

}  // namespace ks::daemon_detail
