// The file_guard BPF object: loaded with the shared maps of process_guard
// (and of the hook layer, where one runs: then its exec program alone), its
// tracepoints attached, its uprobes attached to the system libc.
#pragma once

#include <killswitch/abi/events.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/layer.h"
#include "common/result.h"
#include "common/skeleton.h"
#include "common/uprobe_scope.h"
#include "file_guard/protected_set.h"
#include "policy/compile.h"

struct file_guard;
struct bpf_object;
struct bpf_link;

namespace ks {

class FileGuardBpf : public Layer {
  public:
    // What a start needs of this layer.
    struct LoadOptions {
        // The libc uprobes: loaded, and attached with the layer.
        bool libc_uprobes = true;
        // The kernel's BPF_TRACE_UPROBE_MULTI where the libc uprobes may be
        // scoped to guarded processes (common/uprobe_scope.h): its programs
        // load for uprobe_multi links, with the programs that hold a new
        // child at its return from fork.
        std::optional<int> uprobe_multi;
        // The space budget's writes (protect.min_free) are counted: by the
        // write system calls' tracepoints here, or with files_to_hooks by
        // the hook layer (hook_guard's file_permission program). Off, a host
        // whose policy turns the budget off has no program on them.
        bool space_writes = true;
        // A hook layer (hook_guard_bpf.h, LSM or fmod_ret) refuses the
        // operations on files: only the exec layer loads here. No syscall
        // tracepoint (each sends every system call of every process down the
        // slow path), no libc uprobe (it would stop the task before the
        // kernel can refuse the call, and cost every process that opens a
        // file a trap), and io_uring needs no rule of its own (its requests
        // meet the same hooks). The hundred-odd programs left out are never
        // verified: the start is that much shorter (seconds under
        // emulation).
        bool files_to_hooks = false;
    };
    // shared: the objects whose maps (guarded_tasks, events, counters; with
    // a hook layer, protected_inodes, rules...) this one uses instead of its
    // own. Loaded and tried, then left detached until set_active(true).
    static Result<std::unique_ptr<FileGuardBpf>> load(const std::vector<bpf_object*>& shared,
                                                      const LoadOptions& opts);
    // From now on the libc uprobes are attached to the processes of scope
    // alone (load with uprobe_multi). Before the first set_active(true).
    void set_scope(UprobeScope* scope) { scope_ = scope; }
    // What a scope's links run (ks_up_dispatch) and the program array it
    // jumps through (ks_up_progs): for the libc entry points of every layer.
    [[nodiscard]] int scope_dispatcher_fd() const;
    [[nodiscard]] int scope_prog_array_fd() const;

    // Attached only while something can be guarded: a process that is not
    // guarded then pays nothing at all, not even the tracepoint slow path or
    // a uprobe trap.
    Status set_active(bool active) override;
    [[nodiscard]] bool active() const override { return active_; }
    // Whether the syscall tracepoints are part of it while active. Off while
    // every guarded process runs under a run session's seccomp filter
    // (seccomp_guard/): the exec layer stays, and no other process on the
    // host is put on the syscall slow path.
    Status set_syscalls(bool on);
    [[nodiscard]] bool syscalls() const { return syscalls_; }
    [[nodiscard]] std::string_view name() const override { return "file_guard"; }
    [[nodiscard]] std::vector<std::string> programs() const override { return program_names(); }
    void describe(nlohmann::json& layers) const override;
    ~FileGuardBpf() override;
    FileGuardBpf(const FileGuardBpf&) = delete;
    FileGuardBpf& operator=(const FileGuardBpf&) = delete;

    // Makes the kernel's protected inodes and edges those of next: every entry
    // of next is written (a key that changes rule changes in one update), then
    // the entries of previous (if given) that next does not have are removed.
    Status publish(const ProtectedSet& next, const ProtectedSet* previous = nullptr);
    // Writes rules[first, end) (clamped to rules.size() and KS_MAX_RULES).
    Status set_rules(const std::vector<policy::CompiledRule>& rules, uint32_t first = 0,
                     uint32_t end = KS_MAX_RULES);
    Status set_config(uint32_t unresolved_rule, uint32_t io_uring_rule, uint32_t block_device_rule,
                      uint32_t space_rule);
    // The space budget of one file system (dev: the kernel's encoding): the
    // count of bytes written by guarded processes at which it is spent
    // (events.h, ks_space_written).
    Status set_space_limit(uint64_t dev, uint64_t limit);
    [[nodiscard]] uint64_t space_written(uint64_t dev) const;
    void remove_space(uint64_t dev);
    // Something counts the space budget's writes: this layer's tracepoints,
    // or the hook layer that took the files over (protect.min_free was on
    // at the start).
    [[nodiscard]] bool space_writes() const { return space_writes_; }
    Status set_exec_watch(const std::vector<std::string>& tools);
    // Lets the matching calls of process pid through until deadline
    // (CLOCK_BOOTTIME ns): a person approved what it is doing.
    Status add_pass(int pid, uint64_t deadline_boot_ns);
    // KS_FF_ASK: thread tid's next chmod or chown system call passes the
    // syscall tracepoint when it is the one t describes.
    Status give_meta_ticket(int tid, const ks_meta_ticket& t);
    void remove_pass(int pid);

    [[nodiscard]] const std::vector<std::string>& uprobes() const { return uprobe_names_; }
    [[nodiscard]] const std::string& libc_path() const { return libc_; }
    [[nodiscard]] std::vector<std::string> program_names() const;
    // The syscall tracepoints attached while active (all but the exec layer's
    // are off when a hook layer refuses).
    [[nodiscard]] std::vector<std::string> tracepoints() const;
    [[nodiscard]] bpf_object* object() const;
    static std::string_view elf_bytes();

  private:
    FileGuardBpf() = default;
    Skeleton<file_guard> skel_;
    std::vector<bpf_link*> links_;
    std::vector<std::string> uprobe_names_;
    std::string libc_;
    UprobeScope* scope_ = nullptr;
    bool want_uprobes_ = true;
    bool space_writes_ = true;
    bool active_ = false;
    bool syscalls_ = true;
    std::thread detaching_;  // the last detach, finishing in the kernel
};

}  // namespace ks
