#include "db_guard/db_wire_bpf.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <killswitch/abi/events.h>

#include "common/bpf_util.h"
#include "common/fd.h"
#include "common/log.h"
#include "db_wire.skel.h"

namespace ks {

Result<std::unique_ptr<DbWireBpf>> DbWireBpf::load(bpf_object* shared, const std::string& cgroup2,
                                                   const std::vector<db::Endpoint>& endpoints,
                                                   const DbWireConfig& config) {
    std::unique_ptr<DbWireBpf> g(new DbWireBpf());
    g->cgroup2_ = cgroup2;
    g->skel_ = db_wire__open();
    if (!g->skel_) return sys_error("open db_wire BPF object");
    if (auto st = share_maps(g->skel_->obj, shared); !st) return st.error();
    if (int err = db_wire__load(g->skel_)) return sys_error("load db_wire BPF programs", -err);

    int ep_fd = bpf_map__fd(g->skel_->maps.db_endpoints);
    for (size_t i = 0; i < endpoints.size(); ++i) {
        const auto& ep = endpoints[i];
        if (ep.is_unix()) continue;
        ks_db_endpoint val{static_cast<uint32_t>(ep.kind), static_cast<uint32_t>(i)};
        auto put = [&](const std::array<uint8_t, 16>& addr) -> Status {
            ks_db_endpoint_key key{};
            std::memcpy(key.addr, addr.data(), 16);
            key.port = ep.port;
            if (bpf_map_update_elem(ep_fd, &key, &val, BPF_ANY))
                return sys_error("add database endpoint " + ep.str());
            return {};
        };
        if (ep.addrs.empty()) {
            if (auto st = put({}); !st) return st.error();
        }
        for (const auto& a : ep.addrs)
            if (auto st = put(a); !st) return st.error();
    }
    g->sockhash_fd_ = bpf_map__fd(g->skel_->maps.db_socks);
    g->msg_prog_fd_ = bpf_program__fd(g->skel_->progs.ks_db_msg);
    if (auto st = g->set_config(config); !st) return st.error();
    return g;
}

DbWireBpf::~DbWireBpf() {
    (void)set_active(false);
    if (skel_) db_wire__destroy(skel_);
}

Status DbWireBpf::set_config(const DbWireConfig& config) {
    ks_db_config c{};
    c.monitor = config.monitor;
    c.refuse_unparseable = config.refuse_unparseable;
    c.refuse_opaque = config.refuse_encrypted;
    c.refuse_unix = 0;
    uint32_t zero = 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.db_config), &zero, &c, BPF_ANY))
        return sys_error("set db_wire configuration");
    return {};
}

Status DbWireBpf::set_active(bool active) {
    if (active == active_) return {};
    if (!active) {
        destroy_links(links_);
        if (msg_attached_) {
            bpf_prog_detach2(msg_prog_fd_, sockhash_fd_, BPF_SK_MSG_VERDICT);
            msg_attached_ = false;
        }
        active_ = false;
        return {};
    }
    // The verdict first: a socket must never be in the map without it.
    if (bpf_prog_attach(msg_prog_fd_, sockhash_fd_, BPF_SK_MSG_VERDICT, 0))
        return sys_error("attach sk_msg verdict to the guarded-connection map");
    msg_attached_ = true;
    Fd cg(::open(cgroup2_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg.valid()) return sys_error("open cgroup2 root " + cgroup2_);
    for (bpf_program* p : {skel_->progs.ks_db_sockops, skel_->progs.ks_db_connect4,
                           skel_->progs.ks_db_connect6}) {
        bpf_link* l = bpf_program__attach_cgroup(p, cg.get());
        if (!l) {
            Error e = sys_error(std::string("attach ") + bpf_program__name(p) + " to " + cgroup2_);
            destroy_links(links_);
            bpf_prog_detach2(msg_prog_fd_, sockhash_fd_, BPF_SK_MSG_VERDICT);
            msg_attached_ = false;
            return e;
        }
        links_.push_back(l);
    }
    active_ = true;
    return {};
}

}  // namespace ks
