// The process_guard BPF object: loading, attaching, and the maps through
// which user space says who is guarded.
#pragma once

#include <killswitch/abi/events.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/layer.h"
#include "common/result.h"
#include "common/skeleton.h"

struct process_guard;  // generated skeleton
struct ring_buffer;
struct bpf_object;

namespace ks {

struct GuardCounters {
    std::array<uint64_t, KS_EVENT_TYPE_MAX> events{};
    std::array<uint64_t, KS_EVENT_TYPE_MAX> lost{};
    std::vector<uint64_t> lost_per_cpu;  // all record types
    uint64_t guard_full = 0;
    uint64_t held = 0;
    uint64_t file_matches = 0;
    uint64_t exec_checks = 0;
    uint64_t db_requests = 0;   // requests judged on the socket send path
    uint64_t db_refused = 0;    // of which refused
    uint64_t db_sock_full = 0;  // guarded connections refused: no room to watch them
    uint64_t db_relayed = 0;    // guarded connections sent to the daemon's relay
    uint64_t tamper = 0;        // guarded processes killed by self-protection

    [[nodiscard]] uint64_t lost_total() const;
};

// Always attached: it follows every exec, fork and exit to know who is
// guarded (one map lookup for everyone else).
class ProcessGuardBpf : public Layer {
  public:
    struct Options {
        bool hold_seeded_tasks = true;
    };

    // Opens, loads and attaches; on failure nothing stays loaded.
    static Result<std::unique_ptr<ProcessGuardBpf>> load(const Options& opts);
    ~ProcessGuardBpf();
    ProcessGuardBpf(const ProcessGuardBpf&) = delete;
    ProcessGuardBpf& operator=(const ProcessGuardBpf&) = delete;

    Status set_agent_names(const std::vector<std::string>& names);
    Status set_guarded_uids(const std::vector<uint32_t>& uids);
    Status add_cgroup(uint64_t cgroup_id, uint32_t session_id);
    Status remove_cgroup(uint64_t cgroup_id);
    Status add_task(int tgid, uint32_t session_id, uint32_t seed);
    [[nodiscard]] std::optional<uint32_t> session_of(int tgid) const;
    [[nodiscard]] std::vector<int> guarded_tgids() const;
    // On: a new child of a guarded process is held at its return from fork
    // until the daemon has attached its uprobes (common/uprobe_scope.h).
    // Off: not any more, the children marked so far included.
    Status set_uprobe_scope(bool on);
    // The child tgid has its uprobes: it need not stop at its return from fork.
    Status clear_uprobe_pending(int tgid);

    [[nodiscard]] GuardCounters counters() const;
    [[nodiscard]] int ringbuf_map_fd() const;
    [[nodiscard]] int guarded_tasks_fd() const;
    [[nodiscard]] std::vector<std::string> program_names() const;
    [[nodiscard]] process_guard* skeleton() const { return skel_.get(); }

    [[nodiscard]] std::string_view name() const override { return "process_guard"; }
    Status set_active(bool) override { return {}; }
    [[nodiscard]] bool active() const override { return true; }
    [[nodiscard]] bool always_on() const override { return true; }
    [[nodiscard]] std::vector<std::string> programs() const override { return program_names(); }
    void describe(nlohmann::json& layers) const override;
    // The BPF object's bytes (for the pinned state's build id).
    static std::string_view elf_bytes();
    // The object whose maps the other BPF objects share.
    [[nodiscard]] bpf_object* skeleton_object() const;

  private:
    ProcessGuardBpf() = default;
    Skeleton<process_guard> skel_;
};

// Owns a libbpf ring_buffer consumer.
class RingBuffer {
  public:
    using Callback = int (*)(void* ctx, void* data, size_t size);
    static Result<std::unique_ptr<RingBuffer>> open(int map_fd, Callback cb, void* ctx);
    ~RingBuffer();
    RingBuffer(const RingBuffer&) = delete;
    RingBuffer& operator=(const RingBuffer&) = delete;

    [[nodiscard]] int epoll_fd() const;
    // Consumes everything available; returns records consumed or an error.
    Result<int> consume();

  private:
    RingBuffer() = default;
    ring_buffer* rb_ = nullptr;
};

}  // namespace ks
