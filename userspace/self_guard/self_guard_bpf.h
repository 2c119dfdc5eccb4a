// The self_guard BPF object: guarded processes may not signal, ptrace or
// write into the daemon, call bpf(), load kernel modules, kexec or reboot.
// Loaded with process_guard's shared maps; attached while something can be
// guarded, like the file layer.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/layer.h"
#include "common/result.h"
#include "common/skeleton.h"
#include "common/uprobe_scope.h"
#include "hook_guard/hook_guard_bpf.h"

struct self_guard;
struct bpf_object;
struct bpf_link;

namespace ks {

class SelfGuardBpf : public Layer {
  public:
    // libc: the library whose wrappers get uprobes ("" for none). hooks: the
    // calls the hook layer (LSM or fentry) covers; the layer refuses them
    // itself, so neither their syscall tracepoints nor their libc uprobes are
    // attached (every process that calls kill() would trap for nothing; the
    // database server wakes its backends with kill()). shared: objects whose maps
    // this one uses (process_guard's; the hook layer's protected_pids when it
    // is on). scope: where the libc uprobes are attached to guarded
    // processes alone (common/uprobe_scope.h); their programs then load for
    // uprobe_multi links.
    static Result<std::unique_ptr<SelfGuardBpf>> load(const std::vector<bpf_object*>& shared,
                                                      std::string libc,
                                                      const HookCoverage& hooks = {},
                                                      UprobeScope* scope = nullptr,
                                                      int uprobe_multi = 0);
    ~SelfGuardBpf() override;
    SelfGuardBpf(const SelfGuardBpf&) = delete;
    SelfGuardBpf& operator=(const SelfGuardBpf&) = delete;

    Status set_active(bool active) override;
    [[nodiscard]] bool active() const override { return active_; }
    [[nodiscard]] std::string_view name() const override { return "self_guard"; }
    [[nodiscard]] std::vector<std::string> programs() const override;
    void describe(nlohmann::json& layers) const override;
    // The processes guarded ones may not touch: replaces the set.
    Status set_protected_pids(const std::vector<int>& pids);
    // Outside the sessions, what guarded processes may still signal and
    // trace: programs by name (the policy's processes.reachable) and pids (the
    // `killswitch run` wrappers, which share their session's process group).
    // Each replaces its set.
    Status set_reachable_names(const std::vector<std::string>& names);
    Status set_reachable_pids(const std::vector<int>& pids);

    // What is watched here: syscall tracepoints and libc entry points. A
    // tracepoint the kernel does not have (no module or kexec support) is
    // listed in missing().
    [[nodiscard]] std::vector<std::string> tracepoints() const;
    [[nodiscard]] const std::vector<std::string>& uprobes() const { return uprobe_names_; }
    [[nodiscard]] const std::vector<std::string>& missing() const { return missing_; }
    static std::string_view elf_bytes();

  private:
    SelfGuardBpf() = default;
    Skeleton<self_guard> skel_;
    std::string libc_;
    UprobeScope* scope_ = nullptr;
    std::vector<bpf_link*> links_;
    std::vector<std::string> uprobe_names_, missing_;
    HookCoverage hooks_;
    bool active_ = false;
    std::thread detaching_;  // the last detach, finishing in the kernel
};

}  // namespace ks
