#include "process_guard/guard_bpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cstring>

#include "common/bpf_util.h"
#include "common/pins.h"

#include "process_guard.skel.h"

namespace ks {

uint64_t GuardCounters::lost_total() const {
    uint64_t sum = 0;
    for (auto v : lost) sum += v;
    return sum;
}

Result<std::unique_ptr<GuardBpf>> GuardBpf::load(const Options& opts) {
    std::unique_ptr<GuardBpf> g(new GuardBpf());
    g->skel_ = process_guard__open();
    if (!g->skel_) return sys_error("open process_guard BPF object");
    g->skel_->rodata->hold_seeded_tasks = opts.hold_seeded_tasks;
    if (auto st = pins::use_state_maps(g->skel_->obj); !st) return st.error();
    if (int err = process_guard__load(g->skel_))
        return sys_error(
            "load process_guard BPF programs (is BTF, bpf_loop and the BPF ring buffer "
            "available? see `killswitch doctor`)",
            -err);
    if (int err = process_guard__attach(g->skel_))
        return sys_error("attach process_guard raw tracepoints", -err);
    pins::pin_skeleton_links(g->skel_->skeleton);
    return g;
}

GuardBpf::~GuardBpf() {
    if (skel_) process_guard__destroy(skel_);
}

Status GuardBpf::set_agent_names(const std::vector<std::string>& names) {
    int fd = bpf_map__fd(skel_->maps.agent_names);
    // Replace the whole set: delete what is there, then add the new names.
    char key[KS_COMM_LEN] = {}, next[KS_COMM_LEN] = {};
    std::vector<std::array<char, KS_COMM_LEN>> old;
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, next) == 0) {
        std::array<char, KS_COMM_LEN> k{};
        std::memcpy(k.data(), next, KS_COMM_LEN);
        old.push_back(k);
        std::memcpy(key, next, KS_COMM_LEN);
        prev = key;
    }
    for (auto& k : old) bpf_map_delete_elem(fd, k.data());
    for (const auto& name : names) {
        char k[KS_COMM_LEN] = {};
        // The kernel's comm keeps the first 15 bytes of the basename.
        std::strncpy(k, name.c_str(), KS_COMM_LEN - 1);
        uint32_t one = 1;
        if (bpf_map_update_elem(fd, k, &one, BPF_ANY) != 0)
            return sys_error("add agent name '" + name + "' to agent_names");
    }
    return {};
}

Status GuardBpf::set_guarded_uids(const std::vector<uint32_t>& uids) {
    return replace_u32_set(bpf_map__fd(skel_->maps.guarded_uids), uids, "guarded_uids");
}

Status GuardBpf::add_cgroup(uint64_t cgroup_id, uint32_t session_id) {
    ks_cgroup_guard v{session_id, 0};
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.guarded_cgroups), &cgroup_id, &v, BPF_ANY))
        return sys_error("add cgroup " + std::to_string(cgroup_id) + " to guarded_cgroups");
    return {};
}

Status GuardBpf::remove_cgroup(uint64_t cgroup_id) {
    if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.guarded_cgroups), &cgroup_id) &&
        errno != ENOENT)
        return sys_error("remove cgroup " + std::to_string(cgroup_id) + " from guarded_cgroups");
    return {};
}

Status GuardBpf::add_task(int tgid, uint32_t session_id, uint32_t seed) {
    uint32_t key = static_cast<uint32_t>(tgid);
    ks_task_guard v{session_id, seed};
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.guarded_tasks), &key, &v, BPF_ANY))
        return sys_error("add pid " + std::to_string(tgid) + " to guarded_tasks");
    return {};
}

std::optional<uint32_t> GuardBpf::session_of(int tgid) const {
    uint32_t key = static_cast<uint32_t>(tgid);
    ks_task_guard v{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.guarded_tasks), &key, &v) != 0)
        return std::nullopt;
    return v.session_id;
}

GuardCounters GuardBpf::counters() const {
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
        }
    }
    return c;
}

std::string_view GuardBpf::elf_bytes() {
    size_t sz = 0;
    const void* p = process_guard__elf_bytes(&sz);
    return {static_cast<const char*>(p), sz};
}

bpf_object* GuardBpf::skeleton_object() const { return skel_->obj; }

int GuardBpf::guarded_tasks_fd() const { return bpf_map__fd(skel_->maps.guarded_tasks); }

int GuardBpf::ringbuf_map_fd() const { return bpf_map__fd(skel_->maps.events); }

std::vector<std::string> GuardBpf::program_names() const {
    std::vector<std::string> out;
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, skel_->obj) out.emplace_back(bpf_program__name(prog));
    return out;
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
