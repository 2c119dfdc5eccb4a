#include "process_guard/process_guard_bpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cstring>

#include "common/bpf_util.h"
#include "common/pins.h"
#include "process_guard.skel.h"

namespace ks {

KS_SKELETON(process_guard);

uint64_t GuardCounters::lost_total() const {
    uint64_t sum = 0;
    for (auto v : lost) sum += v;
    return sum;
}

Result<std::unique_ptr<ProcessGuardBpf>> ProcessGuardBpf::load(const Options& opts) {
    std::unique_ptr<ProcessGuardBpf> g(new ProcessGuardBpf());
    if (auto st = g->skel_.open(); !st) return st.error();
    g->skel_->rodata->hold_seeded_tasks = opts.hold_seeded_tasks;
    if (auto st = pins::use_state_maps(g->skel_->obj); !st) return st.error();
    if (auto st = g->skel_.load(); !st)
        return Error{st.error().code,
                     st.error().message +
                         " (is BTF, bpf_loop and the BPF ring buffer available? see "
                         "`killswitch doctor`)"};
    if (int err = process_guard__attach(g->skel_.get()))
        return sys_error("attach process_guard raw tracepoints", -err);
    pins::pin_skeleton_links(g->skel_->skeleton);
    return g;
}

ProcessGuardBpf::~ProcessGuardBpf() = default;

void ProcessGuardBpf::describe(nlohmann::json& layers) const {
    layers["process_guard"] = program_names();
}

Status ProcessGuardBpf::set_agent_names(const std::vector<std::string>& names) {
    return replace_comm_set(bpf_map__fd(skel_->maps.agent_names), names, "agent_names");
}

Status ProcessGuardBpf::set_guarded_uids(const std::vector<uint32_t>& uids) {
    return replace_u32_set(bpf_map__fd(skel_->maps.guarded_uids), uids, "guarded_uids");
}

Status ProcessGuardBpf::add_cgroup(uint64_t cgroup_id, uint32_t session_id) {
    ks_cgroup_guard v{session_id, 0};
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.guarded_cgroups), &cgroup_id, &v, BPF_ANY))
        return sys_error("add cgroup " + std::to_string(cgroup_id) + " to guarded_cgroups");
    return {};
}

Status ProcessGuardBpf::remove_cgroup(uint64_t cgroup_id) {
    if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.guarded_cgroups), &cgroup_id) &&
        errno != ENOENT)
        return sys_error("remove cgroup " + std::to_string(cgroup_id) + " from guarded_cgroups");
    return {};
}

Status ProcessGuardBpf::add_task(int tgid, uint32_t session_id, uint32_t seed) {
    uint32_t key = static_cast<uint32_t>(tgid);
    ks_task_guard v{session_id, seed};
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.guarded_tasks), &key, &v, BPF_ANY))
        return sys_error("add pid " + std::to_string(tgid) + " to guarded_tasks");
    return {};
}

std::optional<uint32_t> ProcessGuardBpf::session_of(int tgid) const {
    uint32_t key = static_cast<uint32_t>(tgid);
    ks_task_guard v{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.guarded_tasks), &key, &v) != 0)
        return std::nullopt;
    return v.session_id;
}

std::vector<int> ProcessGuardBpf::guarded_tgids() const {
    std::vector<int> out;
    int fd = bpf_map__fd(skel_->maps.guarded_tasks);
    uint32_t key = 0, next = 0;
    for (uint32_t* prev = nullptr; bpf_map_get_next_key(fd, prev, &next) == 0; prev = &key) {
        out.push_back(static_cast<int>(next));
        key = next;
    }
    return out;
}

Status ProcessGuardBpf::set_uprobe_scope(bool on) {
    uint32_t zero = 0, v = on ? 1 : 0;
    if (int err = bpf_map_update_elem(bpf_map__fd(skel_->maps.uprobe_scope), &zero, &v, BPF_ANY))
        return sys_error("uprobe_scope", -err);
    if (on) return {};
    // Children marked before: not held any more.
    int fd = bpf_map__fd(skel_->maps.uprobe_pending);
    uint32_t key = 0;
    while (bpf_map_get_next_key(fd, nullptr, &key) == 0) bpf_map_delete_elem(fd, &key);
    return {};
}

Status ProcessGuardBpf::clear_uprobe_pending(int tgid) {
    uint32_t key = static_cast<uint32_t>(tgid);
    if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.uprobe_pending), &key) != 0 && errno != ENOENT)
        return sys_error("uprobe_pending");
    return {};
}

GuardCounters ProcessGuardBpf::counters() const {
    GuardCounters c;
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return c;
    std::vector<uint64_t> vals(static_cast<size_t>(ncpu));
    c.lost_per_cpu.assign(static_cast<size_t>(ncpu), 0);
    int fd = bpf_map__fd(skel_->maps.counters);
    for (uint32_t idx = 0; idx < KS_CTR_MAX; ++idx) {
        if (bpf_map_lookup_elem(fd, &idx, vals.data()) != 0) continue;
        uint64_t sum = 0;
        for (auto v : vals) sum += v;
        if (idx >= KS_CTR_EVENTS && idx < unsigned{KS_CTR_EVENTS} + KS_EVENT_TYPE_MAX) {
            c.events[idx - KS_CTR_EVENTS] = sum;
        } else if (idx >= KS_CTR_LOST && idx < unsigned{KS_CTR_LOST} + KS_EVENT_TYPE_MAX) {
            c.lost[idx - KS_CTR_LOST] = sum;
            for (size_t cpu = 0; cpu < vals.size(); ++cpu) c.lost_per_cpu[cpu] += vals[cpu];
        } else if (idx == KS_CTR_GUARD_FULL) {
            c.guard_full = sum;
        } else if (idx == KS_CTR_HELD) {
            c.held = sum;
        } else if (idx == KS_CTR_FILE_MATCH) {
            c.file_matches = sum;
        } else if (idx == KS_CTR_EXEC_CHECK) {
            c.exec_checks = sum;
        } else if (idx == KS_CTR_DB_REFUSED) {
            c.db_refused = sum;
        } else if (idx == KS_CTR_DB_REQUESTS) {
            c.db_requests = sum;
        } else if (idx == KS_CTR_DB_SOCK_FULL) {
            c.db_sock_full = sum;
        } else if (idx == KS_CTR_TAMPER) {
            c.tamper = sum;
        } else if (idx == KS_CTR_DB_RELAYED) {
            c.db_relayed = sum;
        }
    }
    return c;
}

std::string_view ProcessGuardBpf::elf_bytes() { return Skeleton<process_guard>::elf_bytes(); }

bpf_object* ProcessGuardBpf::skeleton_object() const { return skel_.object(); }

int ProcessGuardBpf::guarded_tasks_fd() const { return bpf_map__fd(skel_->maps.guarded_tasks); }

int ProcessGuardBpf::ringbuf_map_fd() const { return bpf_map__fd(skel_->maps.events); }

std::vector<std::string> ProcessGuardBpf::program_names() const {
    return ks::program_names(skel_.object());
}

Result<std::unique_ptr<RingBuffer>> RingBuffer::open(int map_fd, Callback cb, void* ctx) {
    std::unique_ptr<RingBuffer> r(new RingBuffer());
    r->rb_ = ring_buffer__new(map_fd, cb, ctx, nullptr);
    if (!r->rb_) return sys_error("create ring buffer consumer");
    return r;
}

RingBuffer::~RingBuffer() {
    if (rb_) ring_buffer__free(rb_);
}

int RingBuffer::epoll_fd() const { return ring_buffer__epoll_fd(rb_); }

Result<int> RingBuffer::consume() {
    int n = ring_buffer__consume(rb_);
    if (n < 0) return sys_error("consume ring buffer", -n);
    return n;
}

}  // namespace ks
