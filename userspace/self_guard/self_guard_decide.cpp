#include "self_guard/self_guard_decide.h"

#include <string.h>

namespace ks {

namespace {

std::string signal_text(uint64_t sig) {
    const char* name = sig < 65 ? sigabbrev_np(static_cast<int>(sig)) : nullptr;
    return name ? std::string("SIG") + name : "signal " + std::to_string(sig);
}

std::string tamper_reason(const TamperEvent& ev, int daemon_pid) {
    std::string target = ev.target == daemon_pid
                             ? "the killswitch daemon (pid " + std::to_string(ev.target) + ")"
                             : "pid " + std::to_string(ev.target);
    switch (ev.what) {
        case KS_TAMPER_SIGNAL:
            if (ev.target == -1) return signal_text(ev.arg) + " to every process (kill -1)";
            if (ev.target < 0)
                return signal_text(ev.arg) + " to the process group of " +
                       (ev.target == -daemon_pid ? "the killswitch daemon" : target);
            return signal_text(ev.arg) + " to " + target;
        case KS_TAMPER_PTRACE:
            return "ptrace attach to " + target;
        case KS_TAMPER_PIDFD:
            return "pidfd_open of " + target;
        case KS_TAMPER_VM_WRITE:
            return "process_vm_writev into " + target;
        case KS_TAMPER_BPF:
            return "bpf() system call (command " + std::to_string(ev.arg) +
                   "): programs and maps are killswitch's";
        case KS_TAMPER_MODULE:
            return "kernel module load or unload";
        case KS_TAMPER_KEXEC:
            return "kexec: load another kernel";
        case KS_TAMPER_REBOOT:
            return "reboot, power off or halt";
        default:
            return "unknown attempt " + std::to_string(ev.what);
    }
}

// At a libc entry the call never ran; an LSM or fmod_ret hook refused it
// (EPERM). At a raw system call it ran, and the process died as it returned.
bool tamper_prevented(const TamperEvent& ev) {
    return ev.layer == KS_LAYER_UPROBE || layer_refuses(ev.layer);
}

}  // namespace

Decision decide_tamper(const TamperEvent& ev, int daemon_pid, const policy::Policy& policy) {
    Decision d;
    d.verdict = Verdict::Block;
    d.action = Action::Kill;
    d.rule = "self:" + std::string(tamper_name(ev.what));
    d.reason = tamper_reason(ev, daemon_pid);
    d.what = "a " + std::string(tamper_name(ev.what)) + " call aimed at killswitch or the kernel";
    d.prevented = tamper_prevented(ev);
    d.no_window = true;
    d.follow_up = policy.self_protection_session;
    // Refused by the daemon's answer to a seccomp notification: the kill is
    // the daemon's too.
    if (ev.layer == KS_LAYER_SECCOMP) d.task = TaskStep::Kill;
    return d;
}

nlohmann::json tamper_facts(const TamperEvent& ev) {
    nlohmann::json f;
    f["what"] = tamper_name(ev.what);
    if (ev.target != 0) f["target"] = ev.target;
    f["layer"] = layer_name(ev.layer);
    if (ev.syscall_nr) f["syscall_nr"] = ev.syscall_nr;
    if (ev.what == KS_TAMPER_SIGNAL) f["signal"] = ev.arg;
    if (ev.what == KS_TAMPER_BPF) f["bpf_cmd"] = ev.arg;
    if (ev.what == KS_TAMPER_REBOOT) f["reboot_cmd"] = ev.arg;
    if (layer_refuses(ev.layer)) f["refused"] = "EPERM";
    f["contained"] = !tamper_prevented(ev);
    return f;
}

bool is_reach(const TamperEvent& ev) {
    return ev.what >= KS_TAMPER_REACH_SIGNAL && ev.what <= KS_TAMPER_REACH_PIDFD;
}

namespace {

std::string reached_words(const ReachedProcess& t) {
    std::string who = "pid " + std::to_string(t.pid) + (t.comm.empty() ? "" : " (" + t.comm + ")");
    return who + (t.session.empty() ? ", a process outside the session"
                                    : ", a process of another session (" + t.session + ")");
}

}  // namespace

Decision decide_reach(const TamperEvent& ev, const ReachedProcess& target) {
    Decision d;
    bool refused = ev.flags & KS_TF_REFUSED;
    d.verdict = Verdict::Block;
    d.action = refused || (ev.flags & KS_TF_HELD) ? Action::Block : Action::Kill;
    d.rule = "process:" + std::string(tamper_name(ev.what));
    std::string verb;
    switch (ev.what) {
        case KS_TAMPER_REACH_SIGNAL:
            verb = signal_text(ev.arg) + " to ";
            break;
        case KS_TAMPER_REACH_PTRACE:
            verb = "ptrace attach (or a write into the memory) of ";
            break;
        case KS_TAMPER_REACH_VM_WRITE:
            verb = "process_vm_writev into ";
            break;
        default:
            verb = "pidfd_open of ";
            break;
    }
    d.reason = verb + reached_words(target) +
               ": guarded processes may only signal and trace their own session's "
               "(policy processes.reachable names programs they may reach)";
    d.what = verb + (target.comm.empty() ? "pid " + std::to_string(target.pid) : target.comm);
    // At a libc entry the call never ran; an LSM or fmod_ret hook refused
    // it. At a raw system call it ran, and the caller died as it returned.
    d.prevented = refused || ev.layer == KS_LAYER_UPROBE;
    // Held at its libc entry: it exits there (126), as a refused exec does.
    d.task = (ev.flags & KS_TF_HELD) ? TaskStep::Refuse : TaskStep::None;
    d.no_window = true;
    return d;
}

nlohmann::json reach_facts(const TamperEvent& ev, const ReachedProcess& target) {
    nlohmann::json f;
    f["what"] = tamper_name(ev.what);
    f["target"] = ev.target;
    if (target.pid != ev.target) f["reached_pid"] = target.pid;
    f["target_comm"] = target.comm;
    if (!target.session.empty()) f["target_session"] = target.session;
    f["layer"] = layer_name(ev.layer);
    if (ev.syscall_nr) f["syscall_nr"] = ev.syscall_nr;
    if (ev.what == KS_TAMPER_REACH_SIGNAL) f["signal"] = ev.arg;
    if (ev.flags & KS_TF_HELD) f["held"] = true;
    if (ev.flags & KS_TF_REFUSED) f["refused"] = "EPERM";
    f["contained"] = !(ev.flags & KS_TF_REFUSED) && ev.layer != KS_LAYER_UPROBE;
    return f;
}

}  // namespace ks
