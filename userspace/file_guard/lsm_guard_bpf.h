// The lsm_guard BPF object: the preventive layer. Its programs run on the
// kernel's security hooks and refuse a guarded task's destructive operation
// on a protected object (EPERM) before it changes anything, whatever path,
// system call or io_uring request led there. It shares the protected set,
// rules and passes with file_guard and the daemon's pid with self_guard.
//
// Used only where the kernel runs it: CONFIG_BPF_LSM, "bpf" in the active LSM
// list (an LSM program loads and attaches without it, and never runs), and a
// start-up probe in which the hook refused a real call.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"

struct lsm_guard;
struct bpf_object;
struct bpf_link;

namespace ks {

// The session id the kernel programs treat as the start-up probe.
inline constexpr uint32_t kLsmProbeSession = 0xffffffffu;

// What the LSM layer covers besides files (the self-protection hooks this
// kernel has); the syscall tracepoints for the same calls are not needed.
struct LsmCoverage {
    bool signals = false;  // task_kill
    bool ptrace = false;   // ptrace_access_check
    bool bpf = false;      // bpf
    bool modules = false;  // kernel_read_file and kernel_load_data
    bool reboot = false;         // capable (CAP_SYS_BOOT in reboot)
    bool module_unload = false;  // capable (CAP_SYS_MODULE in delete_module)
};

class LsmGuardBpf {
  public:
    // Why this kernel cannot run the layer ("" when it can): no BTF, no
    // bpf_lsm_* hooks (CONFIG_BPF_LSM), "bpf" not in securityfs's lsm list.
    static std::string unavailable_reason();
    // The active LSM list, as the kernel gives it ("" when unreadable).
    static std::string active_lsms();

    // shared: objects whose maps this one uses (guarded_tasks, events and
    // counters; protected_inodes, rules and passes; protected_pids).
    static Result<std::unique_ptr<LsmGuardBpf>> load(const std::vector<bpf_object*>& shared);
    ~LsmGuardBpf();
    LsmGuardBpf(const LsmGuardBpf&) = delete;
    LsmGuardBpf& operator=(const LsmGuardBpf&) = delete;

    // Proves the hooks run here: a child process, guarded as the probe
    // session through guarded_tasks_fd, unlinks a file of its own in dir; the
    // kernel must refuse it and the file must remain. Attaches for the test
    // and leaves the layer as it was.
    Status probe(int guarded_tasks_fd, const std::string& dir);

    Status set_active(bool active);
    [[nodiscard]] bool active() const { return active_; }
    [[nodiscard]] const LsmCoverage& coverage() const { return coverage_; }
    [[nodiscard]] bpf_object* object() const;
    // Hooks attached while active, and those this kernel lacks (with why).
    [[nodiscard]] std::vector<std::string> hooks() const;
    [[nodiscard]] const std::vector<std::string>& skipped() const { return skipped_; }
    static std::string_view elf_bytes();

  private:
    LsmGuardBpf() = default;
    lsm_guard* skel_ = nullptr;
    LsmCoverage coverage_;
    std::vector<std::string> skipped_;
    bool active_ = false;
    std::thread detaching_;  // the last detach, finishing in the kernel
};

}  // namespace ks
