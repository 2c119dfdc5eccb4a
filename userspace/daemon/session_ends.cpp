// How sessions end. A refused operation fails and the agent goes on; the
// policy's sessions: section decides when a session as a whole is frozen or
// killed (repeated refusals, self-protection, rules marked so), how long a
// frozen session waits for a person and what happens then, and what happens
// to a session whose `killswitch run` wrapper died. Nothing here leaves a
// session frozen unseen: each freeze is announced, listed by `status`, and
// ends by policy.
#include "actions/tell.h"
#include "daemon/daemon_impl.h"

namespace ks::daemon_detail {

namespace {

constexpr uint64_t kNsPerSec = 1'000'000'000ull;

std::string session_words(const std::string& end) { return end == "thaw" ? "thawed" : "killed"; }

}  // namespace

// The same process (not a reused pid), and not a zombie waiting for its
// parent to reap it: a zombie reads nothing and tells nobody.
bool Daemon::wrapper_alive(const Wrapper& w) {
    char state = task_state(w.pid);
    return state != '\0' && state != 'Z' && state != 'X' && task_start_time(w.pid) == w.start_time;
}

EscalationRule Daemon::escalation_rule() const {
    return {policy().escalate_after, policy().escalate_within_s, policy().escalate_to,
            policy().contained_session};
}

void Daemon::session_step(Decision& d, const Subject& s) {
    escalation_.consider(d, s.session_id, boottime_ns(), escalation_rule());
    if (freezes_session(d) && policy().frozen_timeout_s > 0)
        d.freeze_terms = FreezeTerms{policy().frozen_timeout_s,
                                     std::string(policy::frozen_end_name(policy().frozen_end))};
}

std::string Daemon::announce(const Session& s, const std::string& msg, int already_told) {
    int to = 0;
    if (auto w = wrappers_.find(s.id); w != wrappers_.end() && wrapper_alive(w->second))
        to = w->second.pid;
    else
        to = s.root_pid;
    if (to <= 0 || to == already_told) return "";
    auto told = tell_process({to}, msg, [this](const std::string& path) {
        return !state_.protected_set.classify(path, true).inside;
    });
    return told ? *told : "";
}

void Daemon::after_session_action(const Decision& d, const Subject& s, const ActionResult& r) {
    if (!freezes_session(d) || !r.session_acted || !r.session_error.empty()) return;
    const Session* sess = sessions_->find(s.session_id);
    if (!sess) return;
    FrozenSession f;
    f.session_id = sess->id;
    f.session = sess->name;
    f.cgroup_path = sess->cgroup_path;
    f.rule = d.rule;
    f.reason = d.what.empty() ? d.reason : d.what;
    f.since_realtime_ns = realtime_now_ns();
    if (d.freeze_terms) {
        f.deadline_boot_ns =
            boottime_ns() + static_cast<uint64_t>(d.freeze_terms->timeout_s) * kNsPerSec;
        f.end = d.freeze_terms->end;
    }
    frozen_.note(f);
    std::string when = d.freeze_terms ? "; in " + std::to_string(d.freeze_terms->timeout_s) +
                                            "s it is " + session_words(f.end)
                                      : "; it waits for a person";
    spdlog::warn(
        "session {} frozen (rule {}: {}){}: `killswitch thaw --session {}` or "
        "`killswitch kill --session {}`",
        sess->name, d.rule, f.reason, when, sess->name, sess->name);
    std::string why = d.escalation && d.escalation->contained
                          ? "an operation that ran before its process was stopped: "
                      : d.escalation ? refusals_text(*d.escalation) + " within " +
                                           std::to_string(d.escalation->within_s) + "s, the last: "
                                     : "";
    announce(*sess,
             "killswitch: session " + sess->name + " is frozen, every process in it stopped (" +
                 why + f.reason + ", rule " + d.rule + "). A person can run `killswitch thaw " +
                 "--session " + sess->name + "` or `killswitch kill --session " + sess->name + "`" +
                 when + ".\n",
             s.pid);
}

void Daemon::person_decided(const std::vector<std::string>& cgroup_dirs) {
    for (const auto& s : sessions_->list())
        if (std::find(cgroup_dirs.begin(), cgroup_dirs.end(), s.cgroup_path) != cgroup_dirs.end())
            frozen_.forget(s.id);
}

void Daemon::forget_session(uint32_t session_id) {
    escalation_.forget(session_id);
    frozen_.forget(session_id);
    volume_.forget(session_id);
    forget_seccomp(session_id);
    if (wrappers_.erase(session_id)) save_wrappers();
}

json Daemon::frozen_json(const Session& s) const {
    if (const FrozenSession* f = frozen_.find(s.id)) {
        json j = f->to_json(boottime_ns());
        j["since"] = format_realtime_ns(f->since_realtime_ns);
        return j;
    }
    return {{"rule", nullptr},
            {"reason", "frozen by a person (killswitch freeze), or before this daemon started"},
            {"ends_in_s", nullptr},
            {"then", nullptr}};
}

void Daemon::end_sessions_on_tick() {
    // Thawed or killed by hand (with the daemon up or down), or gone: no
    // longer waited for.
    for (const auto& f : frozen_.list()) {
        const Session* sess = sessions_->find(f.session_id);
        if (!sess || !cgroup_is_frozen(sess->cgroup_path)) frozen_.forget(f.session_id);
    }
    for (const auto& f : frozen_.expired(boottime_ns())) {
        const Session* sess = sessions_->find(f.session_id);
        if (!sess) continue;
        // Told first: once its processes die, the wrapper exits too.
        announce(*sess, "killswitch: session " + sess->name + " was frozen by rule " + f.rule +
                            " and nobody decided in time: it is " + session_words(f.end) +
                            " (policy sessions.frozen_end).\n");
        Status st = f.end == "thaw" ? cgroup_freeze(sess->cgroup_path, false)
                                    : cgroup_kill(sess->cgroup_path);
        json rec = session_record("session_timeout", *sess);
        rec["frozen_since"] = format_realtime_ns(f.since_realtime_ns);
        rec["rule"] = f.rule;
        rec["reason"] = f.reason;
        rec["session_action"] = f.end;
        if (!st) rec["session_action_error"] = st.error().str();
        audit_->append(std::move(rec));
        spdlog::warn("session {}: frozen since {} (rule {}) and nobody decided: {}{}", sess->name,
                     format_realtime_ns(f.since_realtime_ns), f.rule, session_words(f.end),
                     st ? "" : " failed: " + st.error().str());
    }
    bool changed = false;
    for (auto it = wrappers_.begin(); it != wrappers_.end();) {
        const auto [pid, start] = it->second;
        const Session* sess = sessions_->find(it->first);
        if (sess && wrapper_alive(it->second)) {
            ++it;
            continue;
        }
        it = wrappers_.erase(it);
        changed = true;
        if (!sess || sessions_->cgroup_pids(*sess).empty()) continue;
        bool kill = policy().wrapper_exit == policy::WrapperExit::KillSession;
        Status st = kill ? cgroup_kill(sess->cgroup_path) : Status{};
        json rec = session_record("session_wrapper_gone", *sess);
        rec["wrapper_pid"] = pid;
        rec["session_action"] = kill ? "kill-session" : "none";
        if (!st) rec["session_action_error"] = st.error().str();
        audit_->append(std::move(rec));
        spdlog::warn("session {}: its killswitch run wrapper (pid {}) is gone: {}", sess->name, pid,
                     kill ? "every process of the session is killed (sessions.wrapper_exit)"
                          : "the daemon keeps guarding it (sessions.wrapper_exit: keep)");
    }
    if (changed) save_wrappers();
}

void Daemon::continue_stopped_ancestors(const Subject& held) const {
    int pid = held.ppid ? held.ppid : task_ppid(held.pid);
    for (int depth = 0; depth < 4 && pid > 1; ++depth, pid = task_ppid(pid)) {
        if (task_state(pid) != 'T' || bpf_->session_of(pid) != held.session_id) break;
        ::kill(pid, SIGCONT);
    }
}

void Daemon::continue_stopped_parents(const Subject& held) {
    continue_stopped_ancestors(held);
    if (stopped_parent_watch_.size() < 256) stopped_parent_watch_.push_back({held, 3});
}

void Daemon::continue_stopped_parents_on_tick() {
    for (auto& w : stopped_parent_watch_) {
        continue_stopped_ancestors(w.held);
        --w.ticks_left;
    }
    std::erase_if(stopped_parent_watch_, [](const auto& w) { return w.ticks_left <= 0; });
}

void Daemon::save_wrappers() const {
    json arr = json::array();
    std::vector<int> pids;
    for (const auto& [id, w] : wrappers_)
        if (const Session* s = sessions_->find(id)) {
            arr.push_back(
                {{"cgroup_path", s->cgroup_path}, {"pid", w.pid}, {"start_time", w.start_time}});
            pids.push_back(w.pid);
        }
    // A session shares its wrapper's process group (kill 0 reaches it).
    if (auto st = sgbpf_->set_reachable_pids(pids); !st) spdlog::error("{}", st.error().str());
    if (auto st = write_file_atomic(opts_.runtime_dir + "/wrappers.json", arr.dump() + "\n", 0600);
        !st)
        spdlog::error("save run wrappers: {}", st.error().str());
}

void Daemon::restore_session_ends() {
    // Session ids are new after a restart: entries are matched by cgroup.
    auto by_cgroup = [&](const std::string& path) -> const Session* {
        for (const auto& s : sessions_->list())
            if (s.cgroup_path == path) return sessions_->find(s.id);
        return nullptr;
    };
    std::vector<FrozenSession> restored = frozen_.persist_to(opts_.runtime_dir + "/frozen.json");
    for (auto f : restored) {
        frozen_.forget(f.session_id);
        const Session* s = by_cgroup(f.cgroup_path);
        if (!s || !cgroup_is_frozen(s->cgroup_path)) continue;
        f.session_id = s->id;
        f.session = s->name;
        frozen_.note(f);
        spdlog::warn("session {} is frozen (rule {}, since {}){}", s->name, f.rule,
                     format_realtime_ns(f.since_realtime_ns),
                     f.deadline_boot_ns ? "; its timeout goes on" : "");
    }
    auto text = read_file(opts_.runtime_dir + "/wrappers.json");
    auto arr = text ? json::parse(*text, nullptr, false) : json();
    if (arr.is_array())
        for (const auto& j : arr)
            if (j.is_object())
                if (const Session* s = by_cgroup(j.value("cgroup_path", "")))
                    wrappers_[s->id] = {j.value("pid", 0), j.value("start_time", uint64_t{0})};
    save_wrappers();
}

}  // namespace ks::daemon_detail
