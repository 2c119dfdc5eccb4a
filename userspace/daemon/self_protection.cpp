// Self-protection in the daemon: the kernel kills a guarded process that goes
// for killswitch itself (signals, ptrace, bpf()) or for the kernel under it
// (modules, kexec, reboot); the daemon records why and applies the policy's
// session action. The files (binary, policy, audit log, pins, cgroup tree)
// are protected by the file layer's "self:" rules.
#include "daemon/daemon_impl.h"

namespace ks::daemon_detail {

void Daemon::start_self_protection() {
    std::string libc = policy_.libc_uprobes && opts_.libc_uprobes ? find_libc() : "";
    std::vector<bpf_object*> shared = {bpf_->skeleton_object()};
    HookCoverage hooks;
    if (hbpf_) {
        shared.push_back(hbpf_->object());
        hooks = hbpf_->coverage();
    }
    auto sg = SelfGuardBpf::load(shared, libc, hooks);
    if (!sg) throw StartupError{sg.error().str()};
    sgbpf_ = std::move(sg.value());
    if (auto st = sgbpf_->set_protected_pids({::getpid()}); !st)
        throw StartupError{st.error().str()};
}

namespace {

std::string signal_text(uint64_t sig) {
    const char* name = sig < 65 ? sigabbrev_np(static_cast<int>(sig)) : nullptr;
    return name ? std::string("SIG") + name : "signal " + std::to_string(sig);
}

}  // namespace

void Daemon::on_tamper(const TamperEvent& ev) {
    const auto& h = ev.hdr;
    freeze_first(h.session_id);
    json rec = process_record("tamper", h);
    std::string what = tamper_name(ev.what);
    std::string target = ev.target == ::getpid() ? "the killswitch daemon (pid " +
                                                       std::to_string(ev.target) + ")"
                                                 : "pid " + std::to_string(ev.target);
    std::string reason;
    switch (ev.what) {
        case KS_TAMPER_SIGNAL:
            if (ev.target == -1)
                reason = signal_text(ev.arg) + " to every process (kill -1)";
            else if (ev.target < 0)
                reason = signal_text(ev.arg) + " to the process group of " +
                         (ev.target == -::getpid() ? "the killswitch daemon" : target);
            else
                reason = signal_text(ev.arg) + " to " + target;
            rec["signal"] = ev.arg;
            break;
        case KS_TAMPER_PTRACE:
            reason = "ptrace attach to " + target;
            break;
        case KS_TAMPER_PIDFD:
            reason = "pidfd_open of " + target;
            break;
        case KS_TAMPER_VM_WRITE:
            reason = "process_vm_writev into " + target;
            break;
        case KS_TAMPER_BPF:
            reason = "bpf() system call (command " + std::to_string(ev.arg) +
                     "): programs and maps are killswitch's";
            rec["bpf_cmd"] = ev.arg;
            break;
        case KS_TAMPER_MODULE:
            reason = "kernel module load or unload";
            break;
        case KS_TAMPER_KEXEC:
            reason = "kexec: load another kernel";
            break;
        case KS_TAMPER_REBOOT:
            reason = "reboot, power off or halt";
            rec["reboot_cmd"] = ev.arg;
            break;
        default:
            reason = "unknown attempt " + std::to_string(ev.what);
    }
    // At a libc entry the call never ran; an LSM hook refused it (EPERM).
    bool prevented = ev.layer == KS_LAYER_UPROBE || ev.layer == KS_LAYER_LSM;
    rec["what"] = what;
    if (ev.target != 0) rec["target"] = ev.target;
    rec["layer"] = layer_name(ev.layer);
    if (ev.syscall_nr) rec["syscall_nr"] = ev.syscall_nr;
    rec["rule"] = "self:" + what;
    rec["reason"] = reason;
    rec["action"] = "kill";
    rec["verdict"] = "block";
    // At a raw system call it ran, and the process died as it returned.
    if (ev.layer == KS_LAYER_LSM) rec["refused"] = "EPERM";
    rec["prevented"] = prevented;
    rec["contained"] = !prevented;
    rec["decision_latency_ns"] = boottime_ns() - h.ts_boot_ns;
    after_violation(h.session_id, h.ts_boot_ns, rec);
    spdlog::warn("self-protection: pid {} ({}) of session {} killed: {}", h.pid, h.comm,
                 session_name(h.session_id), reason);
    audit_->append(std::move(rec));
    (void)audit_->sync();
}

}  // namespace ks::daemon_detail
