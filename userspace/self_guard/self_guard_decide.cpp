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

// At a libc entry the call never ran; an LSM hook refused it (EPERM). At a
// raw system call it ran, and the process died as it returned.
bool tamper_prevented(const TamperEvent& ev) {
    return ev.layer == KS_LAYER_UPROBE || ev.layer == KS_LAYER_LSM;
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
    if (ev.layer == KS_LAYER_LSM) f["refused"] = "EPERM";
    f["contained"] = !tamper_prevented(ev);
    return f;
}

}  // namespace ks
