// File protection in the daemon: the rules it publishes to the kernel, and
// what it does with the kernel's decisions (session follow-up, holds).
#include <limits.h>
#include <signal.h>
#include <stdlib.h>

#include "daemon/daemon_impl.h"

namespace ks::daemon_detail {

void Daemon::start_file_protection() {
    auto fg =
        FileGuardBpf::load(bpf_->skeleton_object(), opts_.libc_uprobes && policy_.libc_uprobes);
    if (!fg) throw StartupError{fg.error().str()};
    fbpf_ = std::move(fg.value());
    if (auto st = fbpf_->set_exec_watch(watched_tools()); !st) throw StartupError{st.error().str()};
    start_hook_layer();

    // Its mode is published with the rest of the policy (publish_state).
    auto db = DbGuardBpf::load(bpf_->skeleton_object(), policy_.mode == policy::Mode::Monitor);
    if (!db) throw StartupError{db.error().str()};
    dbpf_ = std::move(db.value());
}

void Daemon::start_hook_layer() {
    lsm_reason_ = opts_.lsm ? HookGuardBpf::unavailable_reason(HookKind::kLsm)
                            : "turned off (killswitch daemon --no-lsm)";
    if (lsm_reason_.empty()) lsm_reason_ = try_hook_layer(HookKind::kLsm);
    if (hbpf_) {
        fentry_reason_ = "the LSM layer is active";
    } else {
        fentry_reason_ = opts_.fentry ? HookGuardBpf::unavailable_reason(HookKind::kFentry)
                                      : "turned off (killswitch daemon --no-fentry)";
        if (fentry_reason_.empty()) fentry_reason_ = try_hook_layer(HookKind::kFentry);
    }
    if (!hbpf_) {
        spdlog::warn("LSM layer not used: {}. fentry layer not used: {}. Files are protected by "
                     "the exec, libc and syscall tracepoint layers: a raw system call is stopped "
                     "right after it, not refused (killswitch doctor)",
                     lsm_reason_, fentry_reason_);
        return;
    }
    bool lsm = hbpf_->kind() == HookKind::kLsm;
    if (auto st = fbpf_->leave_files_to_hooks(lsm, hbpf_->coverage().io_uring); !st)
        throw StartupError{st.error().str()};
    if (lsm) {
        spdlog::info("LSM layer active: the kernel refuses destructive operations of guarded "
                     "processes with EPERM ({} hooks)",
                     hbpf_->hooks().size());
    } else {
        spdlog::warn("LSM layer not used: {}. fentry layer active ({} hooks on security_* "
                     "functions): a raw system call on protected data is stopped right after "
                     "it, not refused; libc callers are stopped before it (killswitch doctor)",
                     lsm_reason_, hbpf_->hooks().size());
    }
}

std::string Daemon::try_hook_layer(HookKind kind) {
    auto h = HookGuardBpf::load(kind, {bpf_->skeleton_object(), fbpf_->object()});
    if (!h) return h.error().str();
    // Attached is not running: a guarded unlink must be refused (LSM) or its
    // process killed (fentry).
    if (auto st = (*h)->probe(bpf_->guarded_tasks_fd(), opts_.runtime_dir); !st)
        return "probe: " + st.error().str();
    hbpf_ = std::move(h.value());
    return "";
}

json Daemon::hook_json(HookKind kind) const {
    if (!hbpf_ || hbpf_->kind() != kind)
        return {{"active", false},
                {"reason", kind == HookKind::kLsm ? lsm_reason_ : fentry_reason_}};
    return {{"active", true},
            {"attached", hbpf_->active()},
            {"hooks", hbpf_->hooks()},
            {"skipped", hbpf_->skipped()}};
}

// killswitch's own binary, policy and audit log, wherever they are; and the
// cgroup v2 hierarchy: a guarded process that writes cgroup.procs,
// cgroup.freeze or cgroup.kill (to leave its session, thaw it, or kill others)
// is stopped like one that overwrites protected data. Rules "self:PATH".
std::vector<std::string> Daemon::self_paths(const policy::Policy& p,
                                            const std::string& policy_file) const {
    std::vector<std::string> self = {p.audit_log, cgroup2_};
    char exe[PATH_MAX];
    if (::realpath("/proc/self/exe", exe)) self.push_back(exe);
    if (!policy_file.empty()) self.push_back(policy_file);
    // The pinned programs: unlinking a pin would detach its program.
    if (pins::enabled()) self.push_back(pins::dir());
    return self;
}

void Daemon::on_db_check(const DbCheckEvent& ev) {
    const auto& h = ev.hdr;
    db::Classification c;
    if (ev.truncated)
        c.statements.push_back(
            {ev.query, db::Class::Unparseable,
             "longer than the " + std::to_string(KS_DB_QUERY_MAX) + " bytes read"});
    else
        c = db::classify_postgres_sql(ev.query);
    db::Class verdict = c.verdict();
    const db::Statement* worst = nullptr;
    for (const auto& st : c.statements)
        if (st.cls == verdict) {
            worst = &st;
            break;
        }
    json rec = process_record("db", h);
    rec["db"] = "postgres";
    rec["op"] = "query";
    constexpr size_t kStatementMax = 1024;
    std::string statement =
        ev.query.size() > kStatementMax ? ev.query.substr(0, kStatementMax) + "..." : ev.query;
    std::string rule = "db:" + std::string(db::class_name(verdict));
    rec["statement"] = statement;
    rec["class"] = db::class_name(verdict);
    if (worst && !worst->detail.empty()) rec["reason"] = worst->detail;
    rec["layer"] = "uprobe";
    rec["rule"] = rule;
    if (verdict == db::Class::Harmless) {
        // Held only because a keyword appeared (in a string, a column name...).
        if (!ev.monitor && !ev.windowed) ::kill(h.pid, SIGCONT);
        rec["verdict"] = "allow";
        rec["prevented"] = false;
    } else {
        // Destructive, or not readable: never sent unless the policy only
        // audits. A task stopped in a uprobe cannot be made to skip the call:
        // block and kill both end it before it sends.
        policy::Action action = policy_.db_action;
        rec["action"] = policy::action_name(action);
        if (ev.monitor) {
            rec["verdict"] = "would-" + std::string(policy::action_name(action));
            rec["prevented"] = false;
        } else if (ev.windowed) {
            rec["verdict"] = "allowed";
            rec["prevented"] = false;
            rec["window"] = window_of(h.session_id);
        } else if (action == policy::Action::Audit) {
            ::kill(h.pid, SIGCONT);
            rec["verdict"] = "audit";
            rec["prevented"] = false;
        } else {
            if (action == policy::Action::Block || action == policy::Action::Kill)
                ::kill(h.pid, SIGKILL);
            rec["verdict"] = policy::action_name(action);
            rec["prevented"] = true;
            apply_db_action(h, rec);
        }
    }
    rec["decision_latency_ns"] = boottime_ns() - h.ts_boot_ns;
    audit_->append(std::move(rec));
}

std::string Daemon::rule_name(uint32_t id) const {
    return id < rule_names_.size() ? rule_names_[id] : "rule-" + std::to_string(id);
}

void Daemon::freeze_first(uint32_t session_id) {
    early_freeze_ = {};
    const Session* s = sessions_->find(session_id);
    if (!s || policy_.violation_session_action != policy::SessionAction::Freeze) return;
    auto st = cgroup_freeze(s->cgroup_path, true);
    early_freeze_ = {true, session_id, boottime_ns(), st ? "" : st.error().str()};
}

void Daemon::after_violation(uint32_t session_id, uint64_t entry_boot_ns, json& rec) {
    const Session* s = sessions_->find(session_id);
    if (!s || policy_.violation_session_action == policy::SessionAction::None) return;
    if (policy_.violation_session_action == policy::SessionAction::Freeze) {
        EarlyFreeze done = early_freeze_;
        early_freeze_ = {};
        if (!done.valid || done.session_id != session_id) {
            auto st = cgroup_freeze(s->cgroup_path, true);
            done = {true, session_id, boottime_ns(), st ? "" : st.error().str()};
        }
        rec["session_action"] = "freeze";
        if (done.error.empty())
            rec["session_frozen_latency_ns"] = done.frozen_boot_ns - entry_boot_ns;
        else
            rec["session_action_error"] = done.error;
    } else {
        auto st = cgroup_kill(s->cgroup_path);
        rec["session_action"] = "kill-session";
        if (!st) rec["session_action_error"] = st.error().str();
    }
}

void Daemon::apply_action(uint32_t action, const EventHeader& h, const std::string& layer,
                          const std::string& op, const std::string& path, const std::string& rule,
                          const std::string& command, json& rec) {
    const Session* s = sessions_->find(h.session_id);
    switch (action) {
        case KS_ACT_AUDIT:
            rec["verdict"] = "audit";
            break;
        case KS_ACT_BLOCK:
        case KS_ACT_KILL:
            rec["verdict"] = action == KS_ACT_BLOCK ? "block" : "kill";
            after_violation(h.session_id, h.ts_boot_ns, rec);
            break;
        case KS_ACT_FREEZE:
            rec["verdict"] = "freeze";
            if (s) {
                auto st = cgroup_freeze(s->cgroup_path, true);
                if (st)
                    rec["session_frozen_latency_ns"] = boottime_ns() - h.ts_boot_ns;
                else
                    rec["session_action_error"] = st.error().str();
            }
            break;
        case KS_ACT_KILL_SESSION:
            rec["verdict"] = "kill-session";
            if (s) {
                if (auto st = cgroup_kill(s->cgroup_path); !st)
                    rec["session_action_error"] = st.error().str();
            }
            break;
        case KS_ACT_HOLD: {
            Hold hold;
            hold.pid = h.pid;
            hold.tid = h.tid;
            hold.session_id = h.session_id;
            hold.session = session_name(h.session_id);
            hold.layer = layer;
            hold.op = op;
            hold.path = path;
            hold.rule = rule;
            hold.command = command;
            hold.created_realtime_ns = realtime_now_ns();
            const Hold& added = holds_.add(hold, std::chrono::seconds(policy_.hold_timeout_s));
            rec["verdict"] = "hold";
            rec["hold_id"] = added.id;
            rec["hold_timeout_s"] = policy_.hold_timeout_s;
            spdlog::warn(
                "hold {}: {} {} {} by pid {} (session {}): `killswitch approve {}` or "
                "`killswitch deny {}` within {}s",
                added.id, layer, op, path, h.pid, hold.session, added.id, added.id,
                policy_.hold_timeout_s);
            break;
        }
        default:
            rec["verdict"] = "unknown";
    }
}

void Daemon::on_file(const FileEvent& ev) {
    const auto& h = ev.hdr;
    std::string path = (ev.flags & KS_FF_OBJECT) ? ev.start_dir
                       : ev.path.empty() || ev.path[0] == '/'
                           ? ev.path
                           : (ev.start_dir == "/" ? "" : ev.start_dir) + "/" + ev.path;
    if (ev.op == KS_OP_IO_URING) path = "";
    // The session stops before a byte of the record is built.
    if (!(ev.flags & (KS_FF_PASSED | KS_FF_MONITOR | KS_FF_WINDOW)) &&
        (ev.action == KS_ACT_BLOCK || ev.action == KS_ACT_KILL))
        freeze_first(h.session_id);
    json rec = process_record("file", h);
    rec["op"] = op_name(ev.op);
    rec["path"] =
        ev.op == KS_OP_TRUNCATE && ev.path.empty() ? "fd " + std::to_string(ev.dfd) : path;
    if (!ev.path.empty() && ev.path != path) rec["path_arg"] = ev.path;
    rec["match"] = match_name(ev.match);
    rec["rule"] = rule_name(ev.rule_id);
    rec["layer"] = layer_name(ev.layer);
    rec["action"] = action_name(ev.action);
    // At a syscall tracepoint or an fentry hook the call goes on: the task
    // dies as it returns.
    bool after = ev.layer == KS_LAYER_TRACEPOINT || ev.layer == KS_LAYER_FENTRY;
    rec["prevented"] = !after;
    rec["stop_latency_ns"] = ev.stop_boot_ns - h.ts_boot_ns;
    if (ev.dev || ev.ino) rec["object"] = {{"dev", ev.dev}, {"ino", ev.ino}};
    if (ev.flags & KS_FF_DENIED) rec["refused"] = "EPERM";
    if (ev.flags & KS_FF_IO_WORKER) rec["io_uring"] = true;
    if (ev.flags & KS_FF_PASSED) {
        rec["verdict"] = "allow";
        rec["reason"] = "a person approved this operation while it was held";
    } else if (ev.flags & KS_FF_MONITOR) {
        rec["verdict"] = std::string("would-") + action_name(ev.action);
        rec["prevented"] = false;
    } else if (ev.flags & KS_FF_WINDOW) {
        rec["verdict"] = "allowed";
        rec["prevented"] = false;
        rec["window"] = window_of(h.session_id);
    } else {
        uint32_t action = ev.action;
        if (action == KS_ACT_HOLD && after) {
            // The kernel killed it: the call would complete while it waited.
            action = KS_ACT_KILL;
            rec["reason"] = std::string("a hold cannot wait at ") +
                            (ev.layer == KS_LAYER_FENTRY ? "an fentry hook" : "a syscall tracepoint") +
                            "; killed instead";
        } else if (action == KS_ACT_HOLD && (ev.flags & KS_FF_DENIED)) {
            // An io_uring worker cannot be stopped: the kernel refused it.
            action = KS_ACT_BLOCK;
            rec["reason"] = "a hold cannot wait in an io_uring worker; refused instead";
        }
        if (ev.action == KS_ACT_AUDIT) rec["prevented"] = false;
        apply_action(action, h, layer_name(ev.layer), op_name(ev.op), path, rule_name(ev.rule_id),
                     "", rec);
    }
    if (after && rec.value("prevented", false) == false && ev.action != KS_ACT_AUDIT &&
        !(ev.flags & (KS_FF_MONITOR | KS_FF_PASSED | KS_FF_WINDOW)))
        rec["note"] = ev.layer == KS_LAYER_FENTRY
                          ? "stopped at the kernel's security check: this one call completes "
                            "before the signal lands"
                          : "stopped at syscall entry: this one call completes before the "
                            "signal lands";
    early_freeze_ = {};
    audit_->append(std::move(rec));
}

void Daemon::on_exec_check(const ExecCheckEvent& ev) {
    const auto& h = ev.hdr;
    std::string tool = ev.filename.substr(ev.filename.find_last_of('/') + 1);
    char buf[PATH_MAX];
    std::string proc_cwd = "/proc/" + std::to_string(h.pid) + "/cwd";
    std::string cwd = ::realpath(proc_cwd.c_str(), buf) ? buf : "/";
    auto m = evaluate_exec_rules(tool, ev.argv, cwd, [&](const std::string& abs, bool follow) {
        return protected_.classify(abs, follow);
    });
    if (!m) {
        if (!ev.windowed) ::kill(h.pid, SIGCONT);
        return;
    }
    uint32_t rule_id = m->rule_id.value_or(kRuleExecCommand);
    RuleSlot slot = rule_id < rule_slots_.size() ? rule_slots_[rule_id] : RuleSlot{};
    std::string command;
    for (const auto& a : ev.argv) command += (command.empty() ? "" : " ") + a;

    json rec = process_record("file", h);
    rec["op"] = "exec";
    rec["path"] = m->path;
    rec["argv"] = ev.argv;
    rec["cwd"] = cwd;
    rec["rule"] = m->rule + (m->rule_id ? " (" + rule_name(rule_id) + ")" : "");
    rec["reason"] = m->reason;
    rec["layer"] = "exec";
    rec["action"] = action_name(slot.action);
    rec["prevented"] = slot.action != KS_ACT_AUDIT && !slot.monitor;
    if (slot.monitor) {
        ::kill(h.pid, SIGCONT);
        rec["verdict"] = std::string("would-") + action_name(slot.action);
    } else if (ev.windowed && (slot.no_window || protected_.touches_self(m->path))) {
        // Not held (the session's allow window is open), but the window does
        // not cover killswitch's own objects: the libc and syscall layers
        // stop the operation itself.
        rec["verdict"] = "deferred";
        rec["prevented"] = false;
        rec["note"] =
            "an allow window is open, so the program was not held at exec; it does not cover "
            "killswitch's own files, which the libc and syscall layers still protect";
    } else if (ev.windowed) {
        rec["verdict"] = "allowed";
        rec["prevented"] = false;
        rec["window"] = window_of(h.session_id);
    } else {
        if (slot.action == KS_ACT_BLOCK || slot.action == KS_ACT_KILL ||
            slot.action == KS_ACT_KILL_SESSION)
            ::kill(h.pid, SIGKILL);
        else if (slot.action == KS_ACT_AUDIT)
            ::kill(h.pid, SIGCONT);
        // freeze and hold: it stays stopped.
        apply_action(slot.action, h, "exec", "exec", m->path, m->rule, command, rec);
    }
    rec["decision_latency_ns"] = boottime_ns() - h.ts_boot_ns;
    audit_->append(std::move(rec));
}

void Daemon::resolve_hold(const Hold& h, bool approve, const std::string& why) {
    json rec = {{"event", approve ? "hold_approved" : "hold_denied"},
                {"pid", h.pid},
                {"ppid", 0},
                {"comm", ""},
                {"exe", ""},
                {"uid", 0},
                {"session", h.session},
                {"hold_id", h.id},
                {"layer", h.layer},
                {"op", h.op},
                {"path", h.path},
                {"rule", h.rule},
                {"reason", why},
                {"verdict", approve ? "allow" : "kill"}};
    if (const ProcessInfo* p = table_.find(h.pid)) {
        rec["comm"] = p->comm;
        rec["exe"] = p->exe;
        rec["ppid"] = p->ppid;
        rec["uid"] = p->uid;
    }
    if (approve) {
        // The later layers let through what was approved: the held call
        // (a short window), or everything the approved program does.
        uint64_t deadline = h.layer == "exec" ? UINT64_MAX : boottime_ns() + 2'000'000'000ull;
        if (auto st = fbpf_->add_pass(h.pid, deadline); !st) spdlog::error("{}", st.error().str());
        rec["pass"] = h.layer == "exec" ? "the approved program, until it exits" : "this call (2s)";
        ::kill(h.pid, SIGCONT);
    } else {
        ::kill(h.pid, SIGKILL);
    }
    audit_->append(std::move(rec));
}

bool Daemon::update_file_layer(bool force_on) {
    // Guarded processes can exist only in sessions, or appear at any exec when
    // the policy guards uids or cgroups, or agents that are not held at exec.
    bool need = force_on || sessions_->count() > 0 || !policy_.guard_uids.empty() ||
                !policy_.guard_cgroups.empty() ||
                (!policy_.hold_agents_at_exec && !policy_.agent_names.empty());
    if (need) detach_due_.reset();
    if (need == fbpf_->active()) return true;
    if (!need) {
        auto now = std::chrono::steady_clock::now();
        if (!detach_due_) detach_due_ = now + kDetachGrace;
        if (now < *detach_due_) return true;
        detach_due_.reset();
    }
    if (auto st = fbpf_->set_active(need); !st) {
        spdlog::error("{}", st.error().str());
        return false;
    }
    if (auto st = dbpf_->set_active(need && db_client_probes_); !st)
        spdlog::error("{}", st.error().str());
    if (dwbpf_)
        if (auto st = dwbpf_->set_active(need); !st) spdlog::error("{}", st.error().str());
    if (auto st = sgbpf_->set_active(need); !st) spdlog::error("{}", st.error().str());
    if (hbpf_)
        if (auto st = hbpf_->set_active(need); !st) spdlog::error("{}", st.error().str());
    spdlog::info("file protection programs {} ({} sessions)", need ? "attached" : "detached",
                 sessions_->count());
    return true;
}

}  // namespace ks::daemon_detail
