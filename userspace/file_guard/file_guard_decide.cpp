#include "file_guard/file_guard_decide.h"

#include <fcntl.h>

namespace ks {

std::string file_event_path(const FileEvent& ev) {
    if (ev.op == KS_OP_IO_URING) return "";
    if (ev.flags & KS_FF_OBJECT) return ev.start_dir;
    if (ev.path.empty() || ev.path[0] == '/') return ev.path;
    return (ev.start_dir == "/" ? "" : ev.start_dir) + "/" + ev.path;
}

std::string caller_path(int pid, int dfd, const std::string& path) {
    std::string proc = "/proc/" + std::to_string(pid);
    if (!path.empty() && path[0] == '/') return proc + "/root" + path;
    std::string base = dfd == AT_FDCWD ? proc + "/cwd" : proc + "/fd/" + std::to_string(dfd);
    return path.empty() ? base : base + "/" + path;
}

namespace {

// At a syscall tracepoint the call goes on: the task dies as it returns.
bool stops_after(uint32_t layer) { return layer == KS_LAYER_TRACEPOINT; }

// The session's part of an enforced action: freeze and kill-session act on
// the session themselves; block and kill are followed by the rule's session
// action.
void session_part(Decision& d, Action carried_out, SessionAction follow_up) {
    if (carried_out == Action::Freeze)
        d.session = SessionAction::Freeze;
    else if (carried_out == Action::KillSession)
        d.session = SessionAction::KillSession;
    else if (carried_out == Action::Block || carried_out == Action::Kill)
        d.follow_up = follow_up;
}

}  // namespace

Decision decide_file(const FileEvent& ev, const policy::CompiledPolicy& policy) {
    Decision d;
    d.action = action_from_abi(ev.action);
    d.rule = policy.rule_name(ev.rule_id);
    d.no_window = policy.rule(ev.rule_id).no_window;
    std::string path = file_event_path(ev);
    d.what = std::string(op_name(ev.op)) + (path.empty() ? "" : " " + path);
    // A block device is judged as its open returns: killed then, before it
    // can write through the fd.
    bool at_open_exit = ev.op == KS_OP_DEVICE_WRITE && ev.layer == KS_LAYER_TRACEPOINT;
    // A write over the space budget is killed at the entry of the call, and
    // the kernel's write loops stop at a pending SIGKILL before their first
    // chunk: nothing is written (bpf/file_guard.bpf.c, ks_on_space_write).
    bool space = ev.op == KS_OP_SPACE_WRITE && !(ev.flags & KS_FF_CALL_COMPLETES);
    bool after = stops_after(ev.layer) && !at_open_exit && !space;
    d.prevented = !after;
    if (ev.op == KS_OP_SPACE_WRITE)
        d.reason = "writing " + std::to_string(ev.bytes) +
                   " bytes there would bring the free space of a file system holding protected "
                   "data under protect.min_free (" +
                   policy.policy.min_free.text() + ")";
    if (ev.op == KS_OP_SYMLINK_TO)
        d.reason = std::string("a symbolic link ") +
                   (ev.match == KS_MATCH_ANCESTOR ? "to a directory above protected data"
                                                  : "into protected data") +
                   " is a way to the data that this kernel's file layers cannot follow";
    if (ev.flags & KS_FF_PASSED) {
        d.verdict = Verdict::Allow;
        d.reason = "a person approved this operation while it was held";
        return d;
    }
    if (ev.flags & KS_FF_MONITOR) {
        d.verdict = d.action ? would(*d.action) : Verdict::WouldBlock;
        d.monitor = true;
        d.prevented = false;
        return d;
    }
    if (ev.flags & KS_FF_WINDOW) {
        d.verdict = Verdict::Allowed;
        d.window = true;
        d.prevented = false;
        return d;
    }
    if (!d.action) {
        d.verdict = Verdict::Block;  // the kernel enforced an action we have no name for
        d.reason = "unknown action " + std::to_string(ev.action);
        return d;
    }
    Action carried_out = *d.action;
    if (carried_out == Action::Hold && after) {
        // The kernel killed it: the call would complete while it waited.
        carried_out = Action::Kill;
        d.reason = "a hold cannot wait at a syscall tracepoint; killed instead";
    } else if (carried_out == Action::Hold && (ev.flags & KS_FF_DENIED)) {
        // An io_uring worker cannot be stopped: the kernel refused it.
        carried_out = Action::Block;
        d.reason = "a hold cannot wait in an io_uring worker; refused instead";
    }
    if (carried_out == Action::Audit) d.prevented = false;
    d.verdict = verdict_for(carried_out);
    // chmod or chown at the libc layer: the kernel stopped the caller for
    // the daemon to look (a change that changes nothing went on before
    // this); a refusal ends it there.
    if ((ev.flags & KS_FF_ASK) && (ev.flags & KS_FF_STOPPED)) {
        if (carried_out == Action::Block)
            d.task = TaskStep::Refuse;
        else if (carried_out == Action::Kill || carried_out == Action::KillSession)
            d.task = TaskStep::Kill;
    } else if (ev.flags & KS_FF_ASK) {
        // Not stopped (the kernel's rule only audits): the call went on.
        d.prevented = false;
    }
    // The seccomp layer refuses the call from the daemon, which kills too
    // where the rule says so (the other hook layers kill from the kernel).
    if (ev.layer == KS_LAYER_SECCOMP && carried_out == Action::Kill) d.task = TaskStep::Kill;
    session_part(d, carried_out, policy.rule(ev.rule_id).session);
    if (carried_out == Action::Hold)
        d.hold = HoldSpec{layer_name(ev.layer), op_name(ev.op), file_event_path(ev), "", d.rule};
    if (after && carried_out != Action::Audit && *d.action != Action::Audit)
        d.note = "stopped at syscall entry: this one call completes before the signal lands";
    if (at_open_exit && carried_out != Action::Audit)
        d.note = "killed as its open of the device returned: opened, never written";
    if (space && carried_out != Action::Audit)
        d.note = "killed at the entry of the call, before it wrote (the space budget)";
    return d;
}

nlohmann::json file_event_facts(const FileEvent& ev) {
    std::string path = file_event_path(ev);
    nlohmann::json f;
    f["op"] = op_name(ev.op);
    f["path"] = ev.op == KS_OP_TRUNCATE && ev.path.empty() ? "fd " + std::to_string(ev.dfd) : path;
    if (!ev.path.empty() && ev.path != path) f["path_arg"] = ev.path;
    f["match"] = match_name(ev.match);
    f["layer"] = layer_name(ev.layer);
    f["stop_latency_ns"] = ev.stop_boot_ns - ev.hdr.ts_boot_ns;
    if (ev.dev || ev.ino) f["object"] = {{"dev", ev.dev}, {"ino", ev.ino}};
    if (ev.flags & KS_FF_DENIED) f["refused"] = "EPERM";
    if (ev.flags & KS_FF_IO_WORKER) f["io_uring"] = true;
    // The hook had the object but not its mount: the path runs from the
    // root of its file system.
    if (ev.flags & KS_FF_FS_PATH) f["path_from"] = "filesystem-root";
    if (ev.op == KS_OP_SPACE_WRITE) f["bytes"] = ev.bytes;
    return f;
}

Decision decide_exec(const ExecCheckEvent& ev, const std::optional<ExecMatch>& match, bool self,
                     const policy::CompiledPolicy& policy) {
    Decision d;
    if (!match) {
        // Nothing destructive: the program goes on (it was not held in a window).
        d.record = false;
        d.task = ev.windowed ? TaskStep::None : TaskStep::Release;
        return d;
    }
    uint32_t rule_id = match->rule_id.value_or(policy::kRuleExecCommand);
    policy::CompiledRule rule = policy.rule(rule_id);
    d.action = rule.action;
    d.rule = match->rule + (match->rule_id ? " (" + policy.rule_name(rule_id) + ")" : "");
    d.reason = match->reason;
    d.no_window = rule.no_window || self;
    for (const auto& a : ev.argv) d.what += (d.what.empty() ? "" : " ") + a;
    d.prevented = rule.action != Action::Audit && !rule.monitor;
    if (rule.monitor) {
        d.monitor = true;
        d.verdict = would(rule.action);
        d.task = TaskStep::Release;
    } else if (ev.windowed && (rule.no_window || self)) {
        // Not held (the session's allow window is open), but the window does
        // not cover killswitch's own objects: the libc and syscall layers
        // stop the operation itself.
        d.verdict = Verdict::Deferred;
        d.prevented = false;
        d.note =
            "an allow window is open, so the program was not held at exec; it does not cover "
            "killswitch's own files, which the libc and syscall layers still protect";
    } else if (ev.windowed) {
        d.verdict = Verdict::Allowed;
        d.window = true;
        d.prevented = false;
    } else {
        d.verdict = verdict_for(rule.action);
        switch (rule.action) {
            case Action::Block:
                d.task = TaskStep::Refuse;
                break;
            case Action::Kill:
            case Action::KillSession:
                d.task = TaskStep::Kill;
                break;
            case Action::Audit:
                d.task = TaskStep::Release;
                break;
            case Action::Freeze:
            case Action::Hold:
                break;  // it stays stopped
        }
        session_part(d, rule.action, self ? policy.policy.self_protection_session : rule.session);
        if (rule.action == Action::Hold) {
            d.hold = HoldSpec{"exec", "exec", match->path, d.what, match->rule};
        }
    }
    return d;
}

}  // namespace ks
