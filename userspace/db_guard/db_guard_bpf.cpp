#include "db_guard/db_guard_bpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cstring>

#include "common/bpf_util.h"
#include "common/log.h"
#include "common/pins.h"
#include "common/skeleton.h"
#include "db_guard.skel.h"

namespace ks {

KS_SKELETON(db_guard);

std::string find_libpq() {
    for (const char* p :
         {"/usr/lib/x86_64-linux-gnu/libpq.so.5", "/lib/x86_64-linux-gnu/libpq.so.5",
          "/usr/lib/aarch64-linux-gnu/libpq.so.5", "/usr/lib64/libpq.so.5", "/usr/lib/libpq.so.5"})
        if (::access(p, R_OK) == 0) return p;
    return "";
}

Result<std::unique_ptr<DbGuardBpf>> DbGuardBpf::load(bpf_object* shared, bool monitor_only,
                                                     bool enabled) {
    std::unique_ptr<DbGuardBpf> g(new DbGuardBpf());
    g->enabled_ = enabled;
    if (auto st = g->skel_.open(); !st) return st.error();
    if (auto st = share_maps(g->skel_->obj, shared); !st) return st.error();
    if (auto st = pins::use_state_maps(g->skel_->obj); !st) return st.error();
    if (auto st = g->skel_.load(); !st) return st.error();
    if (auto st = g->set_monitor(monitor_only); !st) return st.error();
    g->libpq_ = find_libpq();
    if (g->libpq_.empty())
        spdlog::info("no libpq on this host: the PostgreSQL client layer is off");
    return g;
}

Status DbGuardBpf::set_monitor(bool monitor_only) {
    uint32_t zero = 0, v = monitor_only ? 1 : 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.db_guard_monitor), &zero, &v, BPF_ANY))
        return sys_error("set db_guard monitor mode");
    return {};
}

DbGuardBpf::~DbGuardBpf() { destroy_links(links_); }

std::vector<std::string> DbGuardBpf::programs() const { return program_names(skel_.object()); }

void DbGuardBpf::describe(nlohmann::json& layers) const {
    layers["libpq"] = libpq_path();
    layers["db_uprobes"] = uprobes();
}

Status DbGuardBpf::set_active(bool active) {
    active = active && enabled_;
    if (active == active_) return {};
    active_ = active;
    if (!active) {
        detach_links(links_);
        names_.clear();
        return {};
    }
    if (libpq_.empty()) return {};
    // PQexec, PQexecParams and PQprepare call these.
    attach_uprobes(libpq_,
                   {{"PQsendQuery", skel_->progs.ks_up_pq_send_query},
                    {"PQsendQueryParams", skel_->progs.ks_up_pq_send_query},
                    {"PQsendPrepare", skel_->progs.ks_up_pq_send_prepare},
                    {"PQconnectPoll", skel_->progs.ks_up_pq_connect_poll},
                    {"PQconnectPoll", skel_->progs.ks_uret_pq_connect_poll, true}},
                   links_, names_);
    return {};
}

std::string_view DbGuardBpf::elf_bytes() { return Skeleton<db_guard>::elf_bytes(); }

}  // namespace ks
