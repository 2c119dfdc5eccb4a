// The control socket: requests from `killswitch` commands (status, run,
// emergency, policy reload, allow, holds, approve and deny).
#include "daemon/daemon_impl.h"

namespace ks::daemon_detail {

std::string Daemon::session_name(uint32_t id) const { return ks::session_name(*sessions_, id); }

json Daemon::session_record(const char* event, const Session& s) {
    return {{"event", event},     {"pid", s.root_pid},   {"ppid", 0},
            {"comm", ""},         {"exe", ""},           {"uid", 0},
            {"session", s.name},  {"session_id", s.id},  {"origin", origin_name(s.origin)},
            {"cgroup", s.cgroup}, {"command", s.command}};
}

json Daemon::handle_request(const json& req, const PeerCred& peer, Fd passed) {
    std::string cmd = req.value("cmd", "");
    if (peer.uid != 0) return {{"ok", false}, {"error", "only root may use the control socket"}};
    // run: this daemon's run id (a wrapper that keeps a seccomp listener
    // hands it to a daemon of another run).
    if (cmd == "ping") return {{"ok", true}, {"run", run_id_}};
    if (cmd == "sync") {
        // What the kernel has reported so far is decided, carried out and
        // told before the answer (killswitch run waits for it when its
        // command was killed: the message may have to go to its stderr).
        handle_ringbuf();
        return {{"ok", true}};
    }
    if (cmd == "status") return status_json();
    if (cmd == "session.enter") {
        // `killswitch run`'s child, in its session cgroup, before its exec:
        // its uprobes now (they stay across the exec), so that the command
        // is covered from its first instruction.
        if (scope_) scope_uprobes(peer.pid);
        return {{"ok", true}};
    }
    if (cmd == "session.create") {
        if (auto sid = bpf_->session_of(peer.pid))
            return {{"ok", false},
                    {"guarded", true},
                    {"session", session_name(*sid)},
                    {"error", "the caller is itself guarded (session " + session_name(*sid) + ")"}};
        std::string name = req.value("name", "");
        if (name.empty()) name = "run-" + std::to_string(peer.pid);
        std::vector<std::string> command;
        if (req.contains("command") && req["command"].is_array())
            for (const auto& a : req["command"])
                if (a.is_string()) command.push_back(a);
        // Under a seccomp filter (seccomp_sessions.cpp) where this kernel
        // has no hook layer: the syscall tracepoints need not attach for it.
        bool seccomp = seccomp_reason_.empty() && req.value("seccomp", false);
        if (!seccomp && !update_file_layer(true))
            return {{"ok", false}, {"error", "cannot attach the file protection programs"}};
        auto s = sessions_->create(name, command);
        if (!s) {
            update_file_layer();
            return {{"ok", false}, {"error", s.error().str()}};
        }
        if (seccomp) {
            seccomp_pending_[s->id] = std::chrono::steady_clock::now() + kSeccompHandoff;
            if (!update_file_layer()) {
                seccomp_pending_.erase(s->id);
                return {{"ok", false}, {"error", "cannot attach the file protection programs"}};
            }
        }
        // The wrapper is the session's handle: its death ends the session
        // by policy (sessions.wrapper_exit).
        wrappers_[s->id] = {peer.pid, task_start_time(peer.pid)};
        save_wrappers();
        json rec = session_record("session_start", *s);
        rec["pid"] = peer.pid;
        rec["uid"] = peer.uid;
        if (std::string c = comm_of(peer.pid); !c.empty()) rec["comm"] = c;
        audit_->append(rec);
        return {{"ok", true},
                {"session", s->name},
                {"session_id", s->id},
                {"cgroup", s->cgroup},
                {"cgroup_procs", s->cgroup_path + "/cgroup.procs"},
                {"seccomp", seccomp},
                {"run", run_id_}};
    }
    if (cmd == "session.seccomp") return accept_seccomp(req, peer, std::move(passed));
    if (cmd == "emergency") {
        // A guarded process may not thaw (or freeze, or kill) sessions.
        if (auto sid = bpf_->session_of(peer.pid))
            return {{"ok", false},
                    {"error", "the caller is itself guarded (session " + session_name(*sid) + ")"}};
        auto op = parse_emergency_op(req.value("op", ""));
        auto target = EmergencyTarget::from_json(req.value("target", json::object()));
        if (!op) return {{"ok", false}, {"error", "unknown operation"}};
        if (!target) return {{"ok", false}, {"error", target.error().str()}};
        auto dirs = resolve_emergency_target(cgroup2_, sessions_->parent_path(), *target);
        if (!dirs) return {{"ok", false}, {"error", dirs.error().str()}};
        json results = json::array();
        for (const auto& r : apply_emergency(*op, cgroup2_, *dirs)) results.push_back(r.to_json());
        person_decided(*dirs);
        if (*op == EmergencyOp::Freeze) enforcer_.counters().frozen += results.size();
        json rec = {{"event", "emergency"},
                    {"op", emergency_op_name(*op)},
                    {"target", target->to_json()},
                    {"results", results},
                    {"pid", peer.pid},
                    {"uid", peer.uid},
                    {"comm", "killswitch"},
                    {"session", nullptr}};
        audit_->append(rec);
        (void)audit_->sync();
        spdlog::warn("emergency {} of {} cgroups by pid {}", emergency_op_name(*op), results.size(),
                     peer.pid);
        return {{"ok", true}, {"results", results}};
    }
    if (cmd == "policy.reload") return reload_policy(req, peer);
    if (cmd == "allow.start" || cmd == "allow.list" || cmd == "allow.end")
        return handle_allow(cmd, req, peer);
    if (cmd == "holds") {
        json list = json::array();
        for (const auto& h : holds_.list()) list.push_back(h.to_json());
        return {{"ok", true}, {"holds", list}};
    }
    if (cmd == "approve" || cmd == "deny") {
        // A guarded process never decides its own fate, even as root.
        if (auto sid = bpf_->session_of(peer.pid))
            return {
                {"ok", false},
                {"error", "refused: the caller is guarded (session " + session_name(*sid) + ")"}};
        uint64_t id = req.value("id", uint64_t{0});
        auto h = holds_.take(id);
        if (!h) return {{"ok", false}, {"error", "no hold with id " + std::to_string(id)}};
        resolve_hold(*h, cmd == "approve",
                     cmd == "approve" ? "approved by uid 0 (pid " + std::to_string(peer.pid) + ")"
                                      : "denied by uid 0 (pid " + std::to_string(peer.pid) + ")");
        return {{"ok", true}, {"hold", h->to_json()}};
    }
    return {{"ok", false}, {"error", "unknown command '" + cmd + "'"}};
}

json Daemon::pinned_json() const {
    return {{"dir", pins::dir()},
            {"generation", pins::generation()},
            {"adopted_links", adopted_.links},
            {"adopted_state", pins::state_adopted()}};
}

json Daemon::status_json() {
    GuardCounters c = bpf_->counters();
    json events = json::object(), lost = json::object();
    for (uint32_t t = 1; t < KS_EVENT_TYPE_MAX; ++t) {
        std::string name = event_type_name(t);
        if (name == "unknown") continue;
        events[name] = c.events[t];
        lost[name] = c.lost[t];
    }
    json sessions = json::array();
    for (const auto& s : sessions_->list()) {
        auto pids = sessions_->cgroup_pids(s);
        bool held = false;
        for (const auto& h : holds_.list()) held = held || h.session == s.name;
        std::string frozen = "0";
        if (auto ev = read_file(s.cgroup_path + "/cgroup.events"))
            frozen = ev->find("frozen 1") != std::string::npos ? "1" : "0";
        json entry = {{"name", s.name},
                      {"id", s.id},
                      {"origin", origin_name(s.origin)},
                      {"cgroup", s.cgroup},
                      {"root_pid", s.root_pid},
                      {"command", s.command},
                      {"processes", pids},
                      {"state", frozen == "1" ? "frozen"
                                : held        ? "held"
                                              : "running"},
                      {"started", format_realtime_ns(s.created_realtime_ns)}};
        if (frozen == "1") entry["frozen"] = frozen_json(s);
        if (auto w = wrappers_.find(s.id); w != wrappers_.end())
            entry["wrapper_pid"] = w->second.pid;
        sessions.push_back(std::move(entry));
    }
    return {{"ok", true},
            {"pid", ::getpid()},
            {"started", format_realtime_ns(started_ns_)},
            {"uptime_s", (realtime_now_ns() - started_ns_) / 1000000000ull},
            {"mode", policy::mode_name(policy().mode)},
            {"policy", policy().source},
            {"policy_files", policy().files},
            {"policy_sha256", policy().sha256},
            {"policy_loaded", format_realtime_ns(policy_loaded_ns_)},
            {"host", host_id_},
            {"hostname", host_name()},
            {"run", run_id_},
            {"version", KS_VERSION},
            {"audit_log", policy().audit_log},
            {"outputs", outputs_json()},
            {"cgroup_parent", sessions_->parent_path()},
            {"pinned", pins::enabled() ? pinned_json() : json(nullptr)},
            {"layers", layers_json()},
            {"databases",
             [&] {
                 json eps = json::array();
                 for (const auto& e : state_.compiled.db_endpoints) eps.push_back(e.str());
                 return eps;
             }()},
            // databases.discover: what running servers listen on besides.
            {"databases_discovered",
             [&] {
                 json eps = json::array();
                 for (const auto& l : discovered_)
                     eps.push_back(
                         {{"endpoint", l.endpoint.str()}, {"pid", l.pid}, {"server", l.server}});
                 return eps;
             }()},
            // New TCP listeners are looked at as they begin to listen (else
            // at the periodic scan alone).
            {"databases_discover_on_listen", listen_watch_ != nullptr},
            {"protect", policy().protect_paths},
            {"space_budget", space_->describe()},
            {"protected_roots", state_.protected_set.roots().size()},
            {"protected_inodes", state_.protected_set.inodes().size()},
            {"file_protection_enforced", policy().mode == policy::Mode::Enforce},
            {"file_protection_attached", fbpf_->active()},
            {"holds", holds_.list().size()},
            {"allow_windows", open_windows()},
            {"sessions", sessions},
            {"counters",
             {{"events", events},
              {"lost", lost},
              {"lost_total", c.lost_total()},
              {"lost_per_cpu", c.lost_per_cpu},
              {"guard_map_full", c.guard_full},
              {"held_at_exec", c.held},
              {"file_matches", c.file_matches},
              {"exec_checks", c.exec_checks},
              {"db_requests", c.db_requests},
              {"db_refused", c.db_refused},
              {"db_connections_unwatchable", c.db_sock_full},
              {"db_connections_relayed", c.db_relayed},
              {"tamper", c.tamper},
              {"decisions", enforcer_.counters().to_json()},
              {"audit_records", audit_->written()},
              {"decode_errors", decode_errors_},
              {"metadata_unchanged", metadata_unchanged_},
              {"wakeups_missed", wakeups_missed_}}}};
}

}  // namespace ks::daemon_detail
