// The router: each decision record goes through the same five steps.
//   decode (abi/decode.h, before this)  ->  enrich (subject_of)
//   -> decide_<capability> (file_guard/, db_guard/, self_guard/: pure)
//   -> Enforcer::apply (actions/enforcer.h)  ->  render (audit/render.h) -> audit
// Nothing here decides: a route picks the decide function, gathers its
// inputs and hands the answer on.
#include <limits.h>
#include <stdlib.h>

#include "common/fnv.h"
#include "daemon/daemon_impl.h"
#include "db_guard/db_guard_decide.h"
#include "db_guard/db_wire_decide.h"
#include "file_guard/exec_rules.h"
#include "file_guard/file_guard_decide.h"
#include "file_guard/metadata_change.h"
#include "file_guard/symlink_target.h"
#include "self_guard/self_guard_decide.h"

namespace ks::daemon_detail {

Subject Daemon::subject_of(const EventHeader& h) const {
    Subject s = enrich(h, table_, *sessions_);
    s.window = window_of(h.session_id);
    if (auto w = wrappers_.find(h.session_id); w != wrappers_.end()) {
        s.wrapper_pid = w->second.pid;
        s.wrapper_start_time = w->second.start_time;
    }
    return s;
}

Subject Daemon::subject_of_pid(int pid, uint32_t session_id, uint64_t ts_boot_ns) const {
    EventHeader h;
    h.ts_boot_ns = ts_boot_ns;
    h.pid = pid;
    h.tid = pid;
    h.session_id = session_id;
    // From the process table (no /proc read per request); /proc for a
    // process it does not know.
    if (const ProcessInfo* pi = table_.find(pid)) {
        h.comm = pi->comm;
        h.ppid = pi->ppid;
        h.uid = pi->uid;
    } else {
        h.comm = comm_of(pid);
    }
    return subject_of(h);
}

ActionResult Daemon::carry_out(std::string_view event, const Subject& s, const json& facts,
                               Decision d, const json& extra) {
    session_step(d, s);
    ActionResult r = enforcer_.apply(d, s, std::chrono::seconds(policy().hold_timeout_s));
    if (d.task != TaskStep::None) continue_stopped_parents(s);
    after_session_action(d, s, r);
    if (!d.record) return r;
    json rec = render(event, s, facts, d, r);
    for (const auto& [k, v] : extra.items()) rec[k] = v;
    audit_->append(std::move(rec));
    return r;
}

void Daemon::on_file(const FileEvent& in) {
    // The libc layer stopped the caller for the daemon to look: a chmod or
    // chown that changes nothing goes on, unrecorded (its system call
    // passes the tracepoint with a ticket); so does a symbolic link whose
    // target reaches no protected data.
    FileEvent ev = in;
    std::string link;
    if ((ev.flags & KS_FF_ASK) && ev.op != KS_OP_LINK) {
        bool goes_on = ev.op == KS_OP_SYMLINK_TO ? symlink_reaches_nothing(ev, link)
                                                 : pass_unchanged_metadata(ev);
        if (goes_on) return;
    }
    Decision d = decide_file(ev, state_.compiled);
    json facts = file_event_facts(ev);
    if (!link.empty()) facts["link"] = link;
    // At the syscall tracepoint the link was made before its maker stopped:
    // it goes before the maker could use it (in.path: the target as given).
    if (ev.op == KS_OP_SYMLINK_TO && ev.layer == KS_LAYER_TRACEPOINT &&
        (ev.flags & KS_FF_STOPPED) && !link.empty()) {
        auto removed = remove_made_link(ev, link, in.path);
        if (!removed) spdlog::warn("symlink by pid {}: {}", ev.hdr.pid, removed.error().str());
        facts["link_removed"] = removed && *removed;
    }
    // A hard link of protected data, likewise: the new name goes.
    if (ev.op == KS_OP_LINK && (ev.flags & KS_FF_ASK) && (ev.flags & KS_FF_STOPPED)) {
        auto name = read_link_path(ev);
        auto removed = name ? remove_made_hard_link(ev, *name) : Result<bool>(name.error());
        if (!removed) spdlog::warn("link by pid {}: {}", ev.hdr.pid, removed.error().str());
        if (name) facts["link"] = *name;
        facts["link_removed"] = removed && *removed;
    }
    if (ev.op == KS_OP_SPACE_WRITE)
        if (const SpaceFs* f = space_->fs(ev.dev)) {
            facts["filesystem"] = f->to_json();
            facts["filesystem"]["min_free"] = policy().min_free.text();
        }
    carry_out("file", subject_of(ev.hdr), facts, d);
}

bool Daemon::symlink_reaches_nothing(FileEvent& ev, std::string& link) {
    auto lp = read_link_path(ev);
    if (!lp) {
        // Judged as the kernel recorded it: unresolved-path.
        spdlog::warn("symlink by pid {}: {}", ev.hdr.pid, lp.error().str());
        return false;
    }
    link = *lp;
    PathVerdict v = state_.protected_set.classify(symlink_target_path(ev, link), true);
    if (!v.inside && !v.contains) {
        if (ev.flags & KS_FF_STOPPED) {
            // The libc layer's caller goes on to the system call: where the
            // tracepoints are attached too, a ticket lets that call through.
            if (ev.layer == KS_LAYER_UPROBE && fbpf_->active() && fbpf_->syscalls()) {
                constexpr uint64_t kTicketNs = 2'000'000'000ull;
                ks_meta_ticket t = meta_ticket(ev, boottime_ns() + kTicketNs);
                t.path_hash = fnv1a(link);
                if (auto st = fbpf_->give_meta_ticket(ev.hdr.tid, t); !st)
                    spdlog::error("{}", st.error().str());
            }
            ::kill(ev.hdr.pid, SIGCONT);
        }
        return true;
    }
    // It reaches the data: judged by the rule of what it reaches, recorded
    // by where it leads.
    const policy::CompiledRule rule = state_.compiled.rule(v.rule_id);
    ev.path = v.resolved;
    ev.match = v.inside ? KS_MATCH_PATH : KS_MATCH_ANCESTOR;
    ev.rule_id = v.rule_id;
    ev.action = to_abi(rule.action);
    // The kernel stopped it under protect.unresolved; what that rule lets
    // through (monitor mode, an allow window, audit) goes on.
    uint32_t lets_through = rule.monitor ? KS_FF_MONITOR
                            : !rule.no_window && !window_of(ev.hdr.session_id).is_null()
                                ? KS_FF_WINDOW
                                : 0;
    if (ev.flags & KS_FF_STOPPED) {
        if (lets_through || rule.action == Action::Audit) {
            ev.flags = (ev.flags & ~KS_FF_STOPPED) | lets_through;
            ::kill(ev.hdr.pid, SIGCONT);
        }
    }
    return false;
}

bool Daemon::pass_unchanged_metadata(const FileEvent& ev) {
    auto same = meta_unchanged(ev);
    if (!same) spdlog::debug("{} by pid {}: {}", op_name(ev.op), ev.hdr.pid, same.error().str());
    if (!same || !*same) return false;
    if (ev.flags & KS_FF_STOPPED) {
        constexpr uint64_t kTicketNs = 2'000'000'000ull;
        if (auto st =
                fbpf_->give_meta_ticket(ev.hdr.tid, meta_ticket(ev, boottime_ns() + kTicketNs));
            !st) {
            spdlog::error("{}", st.error().str());
            return false;
        }
        ::kill(ev.hdr.pid, SIGCONT);
    }
    ++metadata_unchanged_;
    return true;
}

void Daemon::on_exec_check(const ExecCheckEvent& ev) {
    const auto& h = ev.hdr;
    std::string comm = ev.filename.substr(ev.filename.find_last_of('/') + 1);
    char buf[PATH_MAX];
    std::string proc = "/proc/" + std::to_string(h.pid);
    std::string cwd = ::realpath((proc + "/cwd").c_str(), buf) ? buf : "/";
    // The task is stopped: what it runs is still its exe.
    ssize_t n = ::readlink((proc + "/exe").c_str(), buf, sizeof(buf) - 1);
    std::string program = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    const ProtectedSet& protect = state_.protected_set;
    ExecIdentity id = identify_exec(comm, program, ev.argv);
    std::optional<ExecMatch> m;
    std::string judged_as;
    for (const auto& tool : id.tools) {
        judged_as = tool;
        m = evaluate_exec_rules(tool, id.argv, cwd, [&](const std::string& abs, bool follow) {
            return protect.classify(abs, follow);
        });
        // protect.block_devices: allow lets the device rules go.
        if (m && m->rule_id == policy::kRuleBlockDevice &&
            state_.compiled.block_device_rule >= KS_MAX_RULES)
            m.reset();
        if (m) break;
    }
    // A rule about the command (mkfs, dropdb, blkdiscard) names no path: it
    // is not about killswitch's own files (an empty path would be "under"
    // every root and freeze the session as if it were).
    bool self = m && !m->path.empty() && protect.touches_self(m->path);
    Decision d = decide_exec(ev, m, self, state_.compiled);
    if (!d.record) {
        Subject held{.pid = h.pid, .tid = h.tid, .ppid = h.ppid, .session_id = h.session_id};
        enforcer_.apply(d, held, {});
        if (d.task != TaskStep::None) continue_stopped_parents(held);
        return;
    }
    json facts = {{"op", "exec"},    {"path", m->path},    {"argv", ev.argv},       {"cwd", cwd},
                  {"layer", "exec"}, {"program", program}, {"judged_as", judged_as}};
    Subject s = subject_of(h);
    carry_out("file", s, facts, d, {{"decision_latency_ns", boottime_ns() - h.ts_boot_ns}});
}

void Daemon::on_db_check(const DbCheckEvent& ev) {
    db::Classification c = classify_libpq(ev, classify_options(state_.compiled));
    Decision d = decide_libpq(ev, c, state_.compiled);
    carry_out("db", subject_of(ev.hdr), libpq_facts(ev, c), d,
              {{"decision_latency_ns", boottime_ns() - ev.hdr.ts_boot_ns}});
}

void Daemon::on_db_wire(const DbWireEvent& ev) {
    Subject s = subject_of(ev.hdr);
    if (ev.layer == KS_LAYER_CONNECT) {
        // A guarded process tried to connect to a watched unix socket (and
        // was not inside libpq, whose statements the uprobes read), or to a
        // deputy's (a reach).
        carry_out(ev.kind == KS_DB_DEPUTY ? "reach" : "db", s,
                  db_unix_connect_facts(ev, state_.compiled), decide_db_unix_connect(ev));
        return;
    }
    db::Classification c = classify_db_request(ev, classify_options(state_.compiled));
    size_t culprit = db_culprit(c, state_.compiled);
    for (size_t i = 0; i < c.statements.size(); ++i) {
        const db::Statement& st = c.statements[i];
        if (auto why = db_disagreement(ev, st, state_.compiled); !why.empty())
            spdlog::warn("db: kernel passed {} statement from pid {}: {}", db::class_name(st.cls),
                         ev.hdr.pid, printable(st.text, 200));
        carry_out("db", s, db_request_facts(ev, st, i == culprit, state_.compiled),
                  decide_db_request(ev, st, i == culprit, state_.compiled));
    }
}

void Daemon::on_tamper(const TamperEvent& ev) {
    if (is_reach(ev)) return on_reach(ev);
    Decision d = decide_tamper(ev, ::getpid(), policy());
    ++enforcer_.counters().tamper;
    carry_out("tamper", subject_of(ev.hdr), tamper_facts(ev), d,
              {{"decision_latency_ns", boottime_ns() - ev.hdr.ts_boot_ns}});
    spdlog::warn("self-protection: pid {} ({}) of session {} killed: {}", ev.hdr.pid, ev.hdr.comm,
                 session_name(ev.hdr.session_id), d.reason);
    (void)audit_->sync();
}

std::optional<ReachedProcess> Daemon::outside_of_session(const TamperEvent& ev) const {
    auto w = wrappers_.find(ev.hdr.session_id);
    for (int pid : reached_processes(ev.hdr.pid, ev.target)) {
        auto sid = bpf_->session_of(pid);
        if (sid && *sid == ev.hdr.session_id) continue;
        if (w != wrappers_.end() && w->second.pid == pid) continue;
        std::string comm = comm_of(pid);
        if (names_program(policy().reachable_names, comm)) continue;
        return ReachedProcess{pid, comm, sid ? session_name(*sid) : ""};
    }
    return std::nullopt;
}

void Daemon::on_reach(const TamperEvent& ev) {
    ReachedProcess target{static_cast<int>(ev.target), "", ""};
    if (ev.flags & KS_TF_HELD) {
        // Stopped at its libc entry: let it go unless the call reaches out.
        auto out = outside_of_session(ev);
        if (!out) {
            Decision go;
            go.task = TaskStep::Release;
            go.record = false;
            Subject held{.pid = ev.hdr.pid,
                         .tid = ev.hdr.tid,
                         .ppid = ev.hdr.ppid,
                         .session_id = ev.hdr.session_id};
            enforcer_.apply(go, held, {});
            continue_stopped_parents(held);
            return;
        }
        target = *out;
    } else {
        target.comm = comm_of(target.pid);
        if (auto sid = bpf_->session_of(target.pid)) target.session = session_name(*sid);
    }
    Decision d = decide_reach(ev, target);
    ++enforcer_.counters().tamper;
    carry_out("reach", subject_of(ev.hdr), reach_facts(ev, target), d,
              {{"decision_latency_ns", boottime_ns() - ev.hdr.ts_boot_ns}});
    spdlog::warn("reach: pid {} ({}) of session {}: {}", ev.hdr.pid, ev.hdr.comm,
                 session_name(ev.hdr.session_id), d.reason);
}

void Daemon::resolve_hold(const Hold& h, bool approve, const std::string& why) {
    if (h.layer == "relay") return resolve_relay_hold(h, approve, why);
    Subject s;
    s.pid = h.pid;
    s.tid = h.tid;
    s.session = h.session;
    s.session_id = h.session_id;
    if (const ProcessInfo* p = table_.find(h.pid)) {
        s.comm = p->comm;
        s.exe = p->exe;
        s.ppid = p->ppid;
        s.uid = p->uid;
    }
    if (const Session* sess = sessions_->find(h.session_id)) s.cgroup_path = sess->cgroup_path;
    Decision d;
    d.verdict = approve ? Verdict::Allow : Verdict::Kill;
    d.prevented = !approve;
    d.rule = h.rule;
    d.reason = why;
    d.what = h.op + " " + h.path;
    d.task = approve ? TaskStep::Release : TaskStep::Kill;
    json facts = {{"hold_id", h.id}, {"layer", h.layer}, {"op", h.op}, {"path", h.path}};
    if (approve) {
        // The later layers let through what was approved: the held call
        // (a short window), or everything the approved program does.
        uint64_t deadline = h.layer == "exec" ? UINT64_MAX : boottime_ns() + 2'000'000'000ull;
        if (auto st = fbpf_->add_pass(h.pid, deadline); !st) spdlog::error("{}", st.error().str());
        facts["pass"] =
            h.layer == "exec" ? "the approved program, until it exits" : "this call (2s)";
    }
    if (h.layer == "seccomp") {
        // It waits in the kernel, not stopped: the answer lets it go (or,
        // killed above, ends the call it never returns from). Let go, it
        // meets the syscall tracepoints where they are attached: the pass
        // above lets it through them.
        carry_out(approve ? "hold_approved" : "hold_denied", s, facts, d);
        answer_seccomp_hold(h, approve);
        return;
    }
    carry_out(approve ? "hold_approved" : "hold_denied", s, facts, d);
}

}  // namespace ks::daemon_detail
