#include "self_guard/self_guard_bpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cstring>

#include "common/bpf_util.h"
#include "common/log.h"
#include "common/pins.h"
#include "common/skeleton.h"
#include "self_guard.skel.h"

namespace ks {

KS_SKELETON(self_guard);
namespace {

constexpr const char* kTracefsSyscalls = "/sys/kernel/tracing/events/syscalls/";

bool has_tracepoint(const std::string& name) {
    return ::access((kTracefsSyscalls + name).c_str(), F_OK) == 0;
}

// The raw system calls each hook covers.
bool covered_by_hooks(const std::string& call, const HookCoverage& hooks) {
    static const char* signals[] = {"kill", "tkill", "tgkill", "rt_sigqueueinfo",
                                    "rt_tgsigqueueinfo"};
    for (const char* s : signals)
        if (call == s) return hooks.signals;
    if (call == "ptrace" || call == "process_vm_writev") return hooks.ptrace;
    if (call == "bpf") return hooks.bpf;
    if (call == "init_module" || call == "finit_module" || call == "kexec_load" ||
        call == "kexec_file_load")
        return hooks.modules;
    // A pidfd serves to signal, and the signal is refused.
    if (call == "pidfd_open") return hooks.signals;
    if (call == "reboot") return hooks.reboot;
    if (call == "delete_module") return hooks.module_unload;
    return false;
}

}  // namespace

Result<std::unique_ptr<SelfGuardBpf>> SelfGuardBpf::load(const std::vector<bpf_object*>& shared,
                                                         std::string libc,
                                                         const HookCoverage& hooks,
                                                         UprobeScope* scope, int uprobe_multi) {
    std::unique_ptr<SelfGuardBpf> g(new SelfGuardBpf());
    g->libc_ = std::move(libc);
    g->scope_ = scope;
    g->hooks_ = hooks;
    if (auto st = g->skel_.open(); !st) return st.error();
    for (bpf_object* obj : shared)
        if (auto st = share_maps(g->skel_->obj, obj); !st) return st.error();
    if (auto st = pins::use_state_maps(g->skel_->obj); !st) return st.error();
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, g->skel_->obj) {
        std::string name = bpf_program__name(prog);
        if (name.rfind("ks_self_up_", 0) == 0) {
            bpf_program__set_autoattach(prog, false);
            if (scope)
                bpf_program__set_expected_attach_type(prog,
                                                      static_cast<bpf_attach_type>(uprobe_multi));
            continue;
        }
        // ks_self_NAME <- tp/syscalls/sys_enter_NAME
        std::string call = name.substr(std::strlen("ks_self_"));
        std::string tp = "sys_enter_" + call;
        if (covered_by_hooks(call, hooks)) bpf_program__set_autoattach(prog, false);
        if (!has_tracepoint(tp)) {
            bpf_program__set_autoload(prog, false);
            g->missing_.push_back(tp);
        }
    }
    if (auto st = g->skel_.load(); !st) return st.error();
    for (const auto& m : g->missing_)
        spdlog::info(
            "self-protection: no {} tracepoint on this kernel (the call does not exist "
            "here)",
            m);
    return g;
}

SelfGuardBpf::~SelfGuardBpf() {
    if (detaching_.joinable()) detaching_.detach();  // the process is going
    destroy_links(links_);
}

Status SelfGuardBpf::set_active(bool active) {
    if (active == active_) return {};
    if (!active) {
        if (scope_) scope_->drop_entries("self");
        detach_layer(skel_->skeleton, links_, uprobe_names_, detaching_);
        active_ = false;
        return {};
    }
    if (auto st = attach_layer(skel_->skeleton, "self_guard syscall tracepoints", detaching_); !st)
        return st;
    active_ = true;
    if (libc_.empty()) return {};
    // libc wrapper, its program, the system call it makes.
    const struct {
        const char* fn;
        bpf_program* prog;
        const char* call;
    } wrappers[] = {
        {"kill", skel_->progs.ks_self_up_kill, "kill"},
        {"tgkill", skel_->progs.ks_self_up_tgkill, "tgkill"},
        {"sigqueue", skel_->progs.ks_self_up_sigqueue, "rt_sigqueueinfo"},
        {"pidfd_open", skel_->progs.ks_self_up_pidfd_open, "pidfd_open"},
        {"ptrace", skel_->progs.ks_self_up_ptrace, "ptrace"},
        {"process_vm_writev", skel_->progs.ks_self_up_process_vm_writev, "process_vm_writev"},
        {"reboot", skel_->progs.ks_self_up_reboot, "reboot"},
        {"init_module", skel_->progs.ks_self_up_module, "init_module"},
        {"delete_module", skel_->progs.ks_self_up_module, "delete_module"},
    };
    std::vector<UprobeSpec> specs;
    for (const auto& w : wrappers)
        if (!covered_by_hooks(w.call, hooks_)) specs.push_back({w.fn, w.prog});
    if (specs.empty()) return {};
    if (scope_) return scope_->set_entries("self", specs, uprobe_names_);
    attach_uprobes(libc_, specs, links_, uprobe_names_);
    return {};
}

Status SelfGuardBpf::set_protected_pids(const std::vector<int>& pids) {
    std::vector<uint32_t> keys(pids.begin(), pids.end());
    return replace_u32_set(bpf_map__fd(skel_->maps.protected_pids), keys, "protected_pids");
}

Status SelfGuardBpf::set_reachable_names(const std::vector<std::string>& names) {
    return replace_comm_set(bpf_map__fd(skel_->maps.reachable_names), names, "reachable_names");
}

Status SelfGuardBpf::set_reachable_pids(const std::vector<int>& pids) {
    std::vector<uint32_t> keys(pids.begin(), pids.end());
    return replace_u32_set(bpf_map__fd(skel_->maps.reachable_pids), keys, "reachable_pids");
}

std::vector<std::string> SelfGuardBpf::programs() const { return program_names(skel_.object()); }

void SelfGuardBpf::describe(nlohmann::json& layers) const {
    layers["self_protection"] = active();
    layers["self_tracepoints"] = tracepoints();
    layers["self_uprobes"] = uprobes();
    layers["self_missing"] = missing();
}

std::vector<std::string> SelfGuardBpf::tracepoints() const {
    std::vector<std::string> out;
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, skel_->obj) {
        std::string name = bpf_program__name(prog);
        if (name.rfind("ks_self_up_", 0) == 0 || !bpf_program__autoload(prog) ||
            !bpf_program__autoattach(prog))
            continue;
        out.push_back("sys_enter_" + name.substr(std::strlen("ks_self_")));
    }
    return out;
}

std::string_view SelfGuardBpf::elf_bytes() { return Skeleton<self_guard>::elf_bytes(); }

}  // namespace ks
