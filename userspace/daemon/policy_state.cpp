// The policy in force, and `killswitch policy reload`: compile, publish,
// swap. The new policy is parsed, checked and compiled (rules, names,
// endpoints, configuration; policy/compile.h) and its protected set built
// before the kernel sees any of it; then published; and put back as it was if
// publishing fails half way.
#include <limits.h>

#include "daemon/daemon_impl.h"

namespace ks::daemon_detail {

policy::Environment Daemon::environment() const {
    policy::Environment env;
    char exe[PATH_MAX];
    if (::realpath("/proc/self/exe", exe)) env.exe = exe;
    env.cgroup2 = cgroup2_;
    if (pins::enabled()) env.pin_dir = pins::dir();
    return env;
}

Result<PolicyState> Daemon::build_state(policy::Policy p, const std::string& file,
                                        const policy::CompiledPolicy* running) const {
    auto compiled = policy::compile(std::move(p), file, environment(), running);
    if (!compiled) return compiled.error();
    PolicyState s;
    s.compiled = std::move(compiled.value());
    std::vector<std::string> warnings;
    s.protected_set = ProtectedSet::build(s.compiled.protect, KS_MAX_PROTECTED_INODES, warnings);
    for (const auto& w : warnings) spdlog::info("{}", w);
    return s;
}

Status Daemon::publish_state(const PolicyState& next, const PolicyState* previous) {
    const policy::CompiledPolicy& c = next.compiled;
    const policy::Policy& p = c.policy;
    // The new bank's rules before the inodes that point at them; the fixed
    // rules change in place.
    if (auto st = fbpf_->set_rules(c.rules, c.bank_first, c.bank_end); !st) return st;
    if (auto st = fbpf_->set_rules(c.rules, 0, policy::kRuleFirstPath); !st) return st;
    if (auto st = fbpf_->publish(next.protected_set, previous ? &previous->protected_set : nullptr);
        !st)
        return st;
    if (auto st = fbpf_->set_config(policy::kRuleUnresolved, c.io_uring_rule, c.block_device_rule,
                                    c.space_rule);
        !st)
        return st;
    if (auto st = bpf_->set_agent_names(p.agent_names); !st) return st;
    if (auto st = bpf_->set_guarded_uids(p.guard_uids); !st) return st;
    if (auto st = sgbpf_->set_reachable_names(p.reachable_names); !st) return st;
    if (dwbpf_) {
        if (auto st = dwbpf_->set_endpoints(watched_endpoints(c)); !st) return st;
        if (auto st = dwbpf_->set_config(c.db_wire); !st) return st;
    }
    if (auto st = dbpf_->set_monitor(c.db_client_monitor); !st) return st;
    return {};
}

void Daemon::refresh_protected_set(bool mounts_changed) {
    auto changes = state_.protected_set.changes(state_.compiled.protect);
    // A directory of the trees removed (DROP DATABASE, a test's own files):
    // its inode number must not stay protected for whoever gets it next.
    bool stale = changes.empty() && !mounts_changed && state_.protected_set.stale();
    if (changes.empty() && !mounts_changed && !stale) return;
    if (mounts_changed) {
        mounts_dirty_ = false;
        mounts_refreshed_ = std::chrono::steady_clock::now();
    }
    std::vector<std::string> warnings;  // said when the policy was loaded
    ProtectedSet next =
        ProtectedSet::build(state_.compiled.protect, KS_MAX_PROTECTED_INODES, warnings);
    if (auto st = fbpf_->publish(next, &state_.protected_set); !st) {
        // The kernel may hold a mix: the set in force goes back, and the
        // change is tried again at the next tick.
        spdlog::error("publishing the protected set again failed: {}", st.error().str());
        if (auto back = fbpf_->publish(state_.protected_set, &next); !back)
            spdlog::error("putting the protected set back failed: {}", back.error().str());
        return;
    }
    if (next.truncated() && !state_.protected_set.truncated())
        for (const auto& w : warnings) spdlog::warn("{}", w);
    state_.protected_set = std::move(next);
    space_->set(state_.protected_set.roots(), policy().min_free);
    const auto& c = state_.compiled;
    for (const auto& ch : changes) {
        auto kind = root_change_name(ch.kind);
        json rec = own_record("protect_root");
        rec["path"] = ch.path;
        rec["change"] = kind;
        rec["rule"] = c.rule_name(ch.rule_id);
        if (const auto* r = state_.protected_set.root_of_rule(ch.rule_id))
            rec["real_path"] = r->real_path;
        audit_->append(std::move(rec));
        if (ch.kind == RootChange::Kind::kGone)
            spdlog::warn("protected path {} is gone: protected again when it reappears", ch.path);
        else if (!ch.system || ch.kind == RootChange::Kind::kReplaced)
            spdlog::info("protected path {} {}: protected as it is now", ch.path, kind);
    }
    if (mounts_changed && changes.empty())
        spdlog::debug("mount table changed: protected set built again ({} edges)",
                      state_.protected_set.edges().size());
    if (stale)
        spdlog::debug(
            "a protected directory was removed or replaced: protected set built "
            "again ({} inodes)",
            state_.protected_set.inodes().size());
}

json Daemon::reload_policy(const json& req, const PeerCred& peer) {
    std::string file = state_.compiled.file;
    if (req.contains("file") && req["file"].is_string()) file = req["file"].get<std::string>();
    std::string new_source = file.empty() ? policy::default_policy().source : file;
    // The unit's reload (ExecReload) waits for READY=1 again, whatever the result.
    notifier_.reloading("reloading the policy from " + new_source);
    struct Ready {
        Daemon* d;
        ~Ready() { d->notifier_.ready(d->service_status()); }
    } ready{this};
    json rec = {{"event", "policy_reload"},
                {"pid", peer.pid},
                {"ppid", 0},
                {"uid", peer.uid},
                {"comm", comm_of(peer.pid)},
                {"exe", ""},
                {"session", nullptr},
                {"old_source", policy().source},
                {"new_source", new_source},
                {"old_sha256", policy().sha256}};
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
                {"policy", policy().source}};
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

    policy::LoadResult res = policy::load_policy_set(file, opts_.policy_dir);
    json diagnostics = json::array(), warnings = json::array();
    for (const auto& e : res.errors) diagnostics.push_back(e.str());
    for (const auto& w : res.warnings) warnings.push_back(w.warning_str());
    rec["warnings"] = warnings;
    if (!res.policy) return refuse("refused", "the policy has errors", diagnostics);
    auto next = apply_overrides(*res.policy);
    if (!next) return refuse("refused", next.error().str(), diagnostics);
    for (const auto& msg : policy::restart_required_changes(policy(), *next))
        diagnostics.push_back(policy::Diagnostic{new_source, 0, 0, msg}.str());
    if (!space_programs_ && !next->min_free.off())
        diagnostics.push_back(
            policy::Diagnostic{new_source, 0, 0,
                               "protect.min_free: the daemon started with it off, so no program "
                               "counts writes; turning it on needs a restart"}
                .str());
    if (!diagnostics.empty())
        return refuse("refused", "the policy changes settings that need a restart", diagnostics);

    auto state = build_state(std::move(next.value()), file, &state_.compiled);
    if (!state) return refuse("refused", state.error().str(), diagnostics);
    if (auto st = publish_state(*state, &state_); !st) {
        diagnostics.push_back(st.error().str());
        auto back = publish_state(state_, &state.value());
        if (!back) diagnostics.push_back("putting the previous policy back: " + back.error().str());
        return refuse("failed",
                      back ? "publishing the policy to the kernel failed; the previous policy "
                             "was put back"
                           : "publishing the policy to the kernel failed, and so did putting the "
                             "previous one back: restart the daemon",
                      diagnostics);
    }
    state_ = std::move(state.value());
    space_->set(state_.protected_set.roots(), policy().min_free);
    policy_loaded_ns_ = realtime_now_ns();
    if (auto st = audit_->set_access(audit_access(policy())); !st)
        spdlog::error("audit log: {}", st.error().str());
    discover_db_listeners();
    update_file_layer();
    rec["result"] = "accepted";
    rec["new_sha256"] = policy().sha256;
    rec["policy_files"] = policy().files;
    rec["mode"] = policy::mode_name(policy().mode);
    rec["protect"] = policy().protect_paths;
    audit_->append(rec);
    (void)audit_->sync();
    spdlog::info("policy reloaded from {} by pid {} (uid {}): mode {}, {} protected roots",
                 policy().source, peer.pid, peer.uid, policy::mode_name(policy().mode),
                 state_.protected_set.roots().size());
    return {{"ok", true},
            {"result", "accepted"},
            {"policy", policy().source},
            {"policy_sha256", policy().sha256},
            {"policy_loaded", format_realtime_ns(policy_loaded_ns_)},
            {"mode", policy::mode_name(policy().mode)},
            {"warnings", warnings}};
}

}  // namespace ks::daemon_detail
