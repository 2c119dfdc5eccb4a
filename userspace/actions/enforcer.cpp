#include "actions/enforcer.h"

#include <signal.h>

#include "actions/tell.h"
#include "common/clock.h"
#include "common/log.h"

namespace ks {

namespace {

// Who is told, in order: the offender, its parent, its other ancestors in
// the session, then the session's wrapper while it is the same process
// (`killswitch run -- sh -c CMD`: the kernel killed CMD, sh exited 137,
// the wrapper still waits for the daemon).
std::vector<int> listeners(const Subject& s) {
    std::vector<int> pids{s.pid, s.ppid};
    for (const auto& l : s.lineage) pids.push_back(l.pid);
    if (s.wrapper_pid > 0 && task_start_time(s.wrapper_pid) == s.wrapper_start_time)
        pids.push_back(s.wrapper_pid);
    return pids;
}

}  // namespace

void Enforcer::act_on_session(SessionAction what, const Subject& s, ActionResult& r) {
    if (what == SessionAction::None || s.cgroup_path.empty()) return;
    r.session_acted = true;
    if (what == SessionAction::Freeze) {
        if (auto st = cgroup_freeze(s.cgroup_path, true); st)
            r.session_frozen_latency_ns = boottime_ns() - s.ts_boot_ns;
        else
            r.session_error = st.error().str();
    } else if (auto st = cgroup_kill(s.cgroup_path); !st) {
        r.session_error = st.error().str();
    }
}

ActionResult Enforcer::apply(const Decision& d, const Subject& s,
                             std::chrono::seconds hold_timeout) {
    ActionResult r;
    // The session first, then the offender: a task killed before its
    // session froze would let its parent (a shell, the agent) run on and
    // even exit in between. A frozen task still dies of SIGKILL.
    const SessionAction on_session = d.session != SessionAction::None ? d.session : d.follow_up;
    act_on_session(on_session, s, r);
    if (d.close_connection) {
        if (auto st = destroy_tcp_socket(*d.close_connection); !st)
            r.connection_error = st.error().str();
        r.connection_closed = r.connection_error.empty();
    }
    if (d.hold) {
        Hold h;
        h.pid = s.pid;
        h.tid = s.tid;
        h.session_id = s.session_id;
        h.session = s.session;
        h.layer = d.hold->layer;
        h.op = d.hold->op;
        h.path = d.hold->path;
        h.rule = d.hold->rule;
        h.command = d.hold->command;
        h.created_realtime_ns = realtime_now_ns();
        const Hold& added = holds_.add(h, hold_timeout);
        r.hold_id = added.id;
        r.hold_timeout_s = static_cast<int>(hold_timeout.count());
        spdlog::warn(
            "hold {}: {} {} {} by pid {} (session {}): `killswitch approve {}` or "
            "`killswitch deny {}` within {}s",
            added.id, h.layer, h.op, h.path, s.pid, h.session, added.id, added.id,
            hold_timeout.count());
    }
    // A refused program exits where the kernel stopped it, with a status its
    // caller reads as a failed command; where that cannot be arranged it is
    // killed, and told so.
    TaskStep step = d.task;
    if (step == TaskStep::Refuse) {
        bool frozen =
            r.session_acted && r.session_error.empty() && on_session == SessionAction::Freeze;
        if (auto st = exit_where_stopped(s.pid, kRefusedExitStatus, frozen ? s.cgroup_path : "");
            st) {
            r.task_result = "exit " + std::to_string(kRefusedExitStatus);
        } else {
            r.task_result = "killed";
            r.task_error = st.error().str();
            step = TaskStep::Kill;
        }
    }
    // Told while it still has its stderr (a task the kernel stopped), or
    // through the nearest that still has one (one the kernel killed).
    if (tells_offender(d)) {
        Decision said = d;
        said.task = step;
        std::string msg = refusal_message(said, s, r.hold_id, r.hold_timeout_s);
        auto told = d.told_by.empty() ? tell_process(listeners(s), msg, file_ok_)
                                      : Result<std::string>(d.told_by);
        if (!d.told_by.empty()) r.message = std::move(msg);
        if (told)
            r.told = *told;
        else
            r.tell_error = told.error().str();
    }
    if (step == TaskStep::Kill) ::kill(s.pid, SIGKILL);
    if (step == TaskStep::Release || step == TaskStep::Refuse) ::kill(s.pid, SIGCONT);
    counters_.count(d, r);
    return r;
}

}  // namespace ks
