#include "db_guard/db_guard_bpf.h"

#include <bpf/libbpf.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"
#include "db_guard.skel.h"

namespace ks {

std::string find_libpq() {
    for (const char* p : {"/usr/lib/x86_64-linux-gnu/libpq.so.5", "/lib/x86_64-linux-gnu/libpq.so.5",
                          "/usr/lib/aarch64-linux-gnu/libpq.so.5", "/usr/lib64/libpq.so.5",
                          "/usr/lib/libpq.so.5"})
        if (::access(p, R_OK) == 0) return p;
    return "";
}

Result<std::unique_ptr<DbGuardBpf>> DbGuardBpf::load(bpf_object* shared, bool monitor_only) {
    std::unique_ptr<DbGuardBpf> g(new DbGuardBpf());
    g->skel_ = db_guard__open();
    if (!g->skel_) return sys_error("open db_guard BPF object");
    g->skel_->rodata->monitor_only = monitor_only;
    bpf_map* m = nullptr;
    bpf_object__for_each_map(m, g->skel_->obj) {
        bpf_map* src = bpf_object__find_map_by_name(shared, bpf_map__name(m));
        if (!src || bpf_map__type(src) != bpf_map__type(m)) continue;
        if (int err = bpf_map__reuse_fd(m, bpf_map__fd(src)))
            return sys_error(std::string("share map ") + bpf_map__name(m), -err);
    }
    if (int err = db_guard__load(g->skel_)) return sys_error("load db_guard BPF programs", -err);
    g->libpq_ = find_libpq();
    if (g->libpq_.empty()) spdlog::info("no libpq on this host: the PostgreSQL client layer is off");
    return g;
}

DbGuardBpf::~DbGuardBpf() {
    for (auto* l : links_) bpf_link__destroy(l);
    if (skel_) db_guard__destroy(skel_);
}

Status DbGuardBpf::set_active(bool active) {
    if (active == active_) return {};
    active_ = active;
    if (!active) {
        for (auto* l : links_) bpf_link__destroy(l);
        links_.clear();
        names_.clear();
        return {};
    }
    if (libpq_.empty()) return {};
    // PQexec, PQexecParams and PQprepare call these.
    struct {
        const char* symbol;
        bpf_program* prog;
    } specs[] = {{"PQsendQuery", skel_->progs.ks_up_pq_send_query},
                 {"PQsendQueryParams", skel_->progs.ks_up_pq_send_query},
                 {"PQsendPrepare", skel_->progs.ks_up_pq_send_prepare}};
    for (const auto& s : specs) {
        LIBBPF_OPTS(bpf_uprobe_opts, opts);
        opts.func_name = s.symbol;
        bpf_link* link = bpf_program__attach_uprobe_opts(s.prog, -1, libpq_.c_str(), 0, &opts);
        if (!link) {
            spdlog::warn("uprobe on {}:{}: {}", libpq_, s.symbol, std::strerror(errno));
            continue;
        }
        links_.push_back(link);
        names_.push_back(s.symbol);
    }
    return {};
}

}  // namespace ks
