// The hook layer: programs on the kernel's security hooks, in one of two
// forms built from the same source (bpf/hook_guard.bpf.c).
//
//  - LSM (hook_guard_lsm): BPF LSM programs refuse a guarded task's destructive
//    operation on a protected object with EPERM before it changes anything,
//    whatever path, system call or io_uring request led there. Used only
//    where the kernel runs them: CONFIG_BPF_LSM, "bpf" in the active LSM list
//    (an LSM program loads and attaches without it, and never runs), and a
//    start-up probe in which the hook refused a real call.
//  - fentry (hook_guard_fentry): the same programs as fmod_ret trampolines on
//    the security_* functions, where the kernel runs BPF trampolines but not
//    the bpf LSM. A non-zero return skips the function and is its result, so
//    the call is refused as by the LSM hook; the same start-up probe.
//
// Either form shares the protected set, rules and passes with file_guard and
// the daemon's pid with self_guard, and replaces file_guard's syscall
// tracepoints and libc uprobes and the self_guard tracepoints and uprobes its
// hooks cover: a refused call needs nothing else.
#pragma once

#include <killswitch/abi/events.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "common/layer.h"
#include "common/result.h"
#include "common/skeleton.h"

struct bpf_object;
struct bpf_object_skeleton;
struct hook_guard_lsm;
struct hook_guard_fentry;

namespace ks {

// The session id the kernel programs treat as the start-up probe.
inline constexpr uint32_t kHookProbeSession = KS_PROBE_SESSION;

enum class HookKind { kLsm, kFentry };

// "lsm" or "fentry", as the audit records' layer says it.
std::string_view hook_kind_name(HookKind kind);

// What the hook layer covers besides files (the self-protection hooks this
// kernel has): the hooks refuse the call before it runs, so neither the
// syscall tracepoints nor the libc uprobes for the same calls are needed.
struct HookCoverage {
    bool signals = false;        // task_kill
    bool ptrace = false;         // ptrace_access_check
    bool bpf = false;            // bpf
    bool modules = false;        // kernel_read_file and kernel_load_data
    bool reboot = false;         // capable (CAP_SYS_BOOT in reboot)
    bool module_unload = false;  // capable (CAP_SYS_MODULE in delete_module)
    bool space = false;          // file_permission (the space budget, protect.min_free)
};

class HookGuardBpf : public Layer {
  public:
    // Why this kernel cannot run the layer of this kind ("" when it may):
    // LSM: no BTF, no bpf_lsm_* hooks (CONFIG_BPF_LSM), "bpf" not in
    // securityfs's lsm list; fentry: no BTF, no security_path_unlink
    // function (CONFIG_SECURITY_PATH) to put an fmod_ret program on. The load
    // and the probe decide the rest.
    static std::string unavailable_reason(HookKind kind);

    // shared: objects whose maps this one uses (process_guard's
    // guarded_tasks, events and counters). Loaded before the file layer and
    // self_guard, which use its protected_inodes, rules, passes, file_config,
    // space budget and protected_pids. space: the file_permission program
    // that counts the space budget's writes loads (protect.min_free on at
    // start).
    static Result<std::unique_ptr<HookGuardBpf>> load(HookKind kind,
                                                      const std::vector<bpf_object*>& shared,
                                                      bool space = true);
    ~HookGuardBpf() override;
    HookGuardBpf(const HookGuardBpf&) = delete;
    HookGuardBpf& operator=(const HookGuardBpf&) = delete;

    // Proves the hooks run here and the kernel takes their verdict: a child
    // process, guarded as the probe session through guarded_tasks_fd, unlinks
    // a file of its own in dir; the unlink must fail with EPERM and the file
    // remain. Attaches for the test and leaves the layer as it was.
    Status probe(int guarded_tasks_fd, const std::string& dir);

    Status set_active(bool active) override;
    [[nodiscard]] HookKind kind() const { return kind_; }
    [[nodiscard]] bool active() const override { return active_; }
    // "lsm" or "fentry"
    [[nodiscard]] std::string_view name() const override { return hook_kind_name(kind_); }
    [[nodiscard]] std::vector<std::string> programs() const override;
    // layers["lsm"] or layers["fentry"]: {active, attached, hooks, skipped}
    void describe(nlohmann::json& layers) const override;
    [[nodiscard]] const HookCoverage& coverage() const { return coverage_; }
    [[nodiscard]] bpf_object* object() const { return obj_; }
    // Hooks attached while active, and those this kernel lacks (with why).
    [[nodiscard]] std::vector<std::string> hooks() const;
    [[nodiscard]] const std::vector<std::string>& skipped() const { return skipped_; }
    // Both objects' bytes (the daemon's build id).
    static std::string_view elf_bytes(HookKind kind);

  private:
    HookGuardBpf() = default;
    static Result<std::unique_ptr<HookGuardBpf>> load_once(HookKind kind,
                                                           const std::vector<bpf_object*>& shared,
                                                           bool space, bool quiet);
    HookKind kind_ = HookKind::kLsm;
    bpf_object* obj_ = nullptr;
    bpf_object_skeleton* skeleton_ = nullptr;
    // Owns the object; obj_ and skeleton_ are views into it.
    std::variant<std::monostate, Skeleton<hook_guard_lsm>, Skeleton<hook_guard_fentry>> skel_;
    HookCoverage coverage_;
    std::vector<std::string> skipped_;
    bool active_ = false;
    std::thread detaching_;  // the last detach, finishing in the kernel
};

}  // namespace ks
