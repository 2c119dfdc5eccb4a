#include "db_guard/db_wire_bpf.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <killswitch/abi/events.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "common/bpf_util.h"
#include "common/fd.h"
#include "common/fnv.h"
#include "common/log.h"
#include "common/pins.h"
#include "common/skeleton.h"
#include "db_guard/classify.h"
#include "db_wire.skel.h"

namespace ks {

KS_SKELETON(db_wire);
namespace {

// The kernel's value of BPF_CGROUP_UNIX_CONNECT: present from Linux 6.7.
// Debian 12's libbpf (1.1) predates it, so the program is declared as
// connect4 and given this attach type before it loads. bpf_cast_to_kern_ctx
// (6.2) and bpf_sock_addr_set_sun_path (6.7) are there whenever it is.
std::optional<int> unix_connect_attach_type() {
    return kernel_enum_value("bpf_attach_type", "BPF_CGROUP_UNIX_CONNECT");
}

// Removes the keys of a hash map keyed by u64 that are not in keep.
void remove_stale_keys(int fd, const std::vector<uint64_t>& keep) {
    uint64_t key = 0, next = 0;
    std::vector<uint64_t> stale;
    bool first = true;
    while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
        first = false;
        key = next;
        if (std::find(keep.begin(), keep.end(), next) == keep.end()) stale.push_back(next);
    }
    for (uint64_t k : stale) bpf_map_delete_elem(fd, &k);
}

}  // namespace

Result<std::unique_ptr<DbWireBpf>> DbWireBpf::load(bpf_object* shared, const std::string& cgroup2,
                                                   const std::vector<db::Endpoint>& endpoints,
                                                   const DbWireConfig& config) {
    std::unique_ptr<DbWireBpf> g(new DbWireBpf());
    g->cgroup2_ = cgroup2;
    if (auto st = g->skel_.open(); !st) return st.error();
    if (auto st = share_maps(g->skel_->obj, shared); !st) return st.error();
    if (auto st = pins::use_state_maps(g->skel_->obj); !st) return st.error();
    if (auto at = unix_connect_attach_type()) {
        bpf_program__set_expected_attach_type(g->skel_->progs.ks_db_connect_unix,
                                              static_cast<bpf_attach_type>(*at));
        g->unix_rule_ = true;
    } else {
        bpf_program__set_autoload(g->skel_->progs.ks_db_connect_unix, false);
        spdlog::info(
            "no cgroup/connect_unix on this kernel (Linux 6.7+): guarded processes are "
            "not refused watched unix sockets");
    }
    if (auto st = g->skel_.load(); !st) return st.error();
    if (auto st = g->set_endpoints(endpoints); !st) return st.error();
    g->sockhash_fd_ = bpf_map__fd(g->skel_->maps.db_socks);
    g->msg_prog_fd_ = bpf_program__fd(g->skel_->progs.ks_db_msg);
    if (auto st = g->set_config(config); !st) return st.error();
    return g;
}

DbWireBpf::~DbWireBpf() {
    // Pinned links stay attached, and the verdict program stays on the pinned
    // connection map: the daemon's end is not the end of the protection.
    destroy_links(links_);
}

std::string_view DbWireBpf::elf_bytes() { return Skeleton<db_wire>::elf_bytes(); }

Status DbWireBpf::set_endpoints(const std::vector<db::Endpoint>& endpoints) {
    int ep_fd = bpf_map__fd(skel_->maps.db_endpoints);
    std::vector<ks_db_endpoint_key> keys;
    for (size_t i = 0; i < endpoints.size(); ++i) {
        const auto& ep = endpoints[i];
        if (ep.is_unix()) continue;
        ks_db_endpoint val{static_cast<uint32_t>(ep.kind), static_cast<uint32_t>(i)};
        std::vector<std::array<uint8_t, 16>> addrs = ep.addrs;
        if (addrs.empty()) addrs.push_back({});  // every address
        for (const auto& a : addrs) {
            ks_db_endpoint_key key{};
            std::memcpy(key.addr, a.data(), 16);
            key.port = ep.port;
            if (bpf_map_update_elem(ep_fd, &key, &val, BPF_ANY))
                return sys_error("add database endpoint " + ep.str());
            keys.push_back(key);
        }
    }
    auto listed = [&](const ks_db_endpoint_key& k) {
        return std::any_of(keys.begin(), keys.end(), [&](const ks_db_endpoint_key& x) {
            return std::memcmp(&x, &k, sizeof(k)) == 0;
        });
    };
    ks_db_endpoint_key key{}, next{};
    std::vector<ks_db_endpoint_key> stale;
    bool first = true;
    while (bpf_map_get_next_key(ep_fd, first ? nullptr : &key, &next) == 0) {
        first = false;
        key = next;
        if (!listed(next)) stale.push_back(next);
    }
    for (const auto& k : stale) bpf_map_delete_elem(ep_fd, &k);
    endpoints_ = endpoints;
    if (active_)
        if (auto st = publish_unix_paths(); !st) return st;
    return {};
}

std::vector<std::string> DbWireBpf::programs() const { return program_names(skel_.object()); }

void DbWireBpf::describe(nlohmann::json& layers) const {
    layers["db_socket_path"] = active();
    layers["db_socket_path_error"] = nullptr;
    layers["db_unix_connect_rule"] = unix_rule();
    layers["db_unix_sockets"] = unix_paths();
}

Status DbWireBpf::set_config(const DbWireConfig& config) {
    if (auto st = publish_bookkeeping(config.bookkeeping_tables); !st) return st;
    config_ = config;
    return write_config();
}

Status DbWireBpf::set_relay(uint16_t port4, uint16_t port6, bool unix) {
    relay_port4_ = port4;
    relay_port6_ = port6;
    relay_unix_ = unix && unix_rule_;
    return write_config();
}

int DbWireBpf::relay_conns_fd() const { return bpf_map__fd(skel_->maps.db_relay_conns); }

Status DbWireBpf::write_config() {
    ks_db_config c{};
    c.monitor = config_.monitor;
    c.refuse_unparseable = config_.refuse_unparseable;
    c.refuse_opaque = config_.refuse_encrypted;
    c.refuse_unix = 1;
    c.refuse_classes = config_.refuse_classes;
    c.relay_port4 = relay_port4_;
    c.relay_port6 = relay_port6_;
    c.relay_unix = relay_unix_;
    c.deputy_monitor = config_.deputy_monitor;
    uint32_t zero = 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.db_config), &zero, &c, BPF_ANY))
        return sys_error("set db_wire configuration");
    return {};
}

// The bookkeeping tables (built-in and the policy's) as the tokenizer looks
// them up; tables no longer listed are removed.
Status DbWireBpf::publish_bookkeeping(const std::vector<std::string>& tables) {
    int fd = bpf_map__fd(skel_->maps.db_bookkeeping);
    std::vector<uint64_t> keys = db::bookkeeping_keys({tables});
    uint8_t one = 1;
    for (uint64_t k : keys)
        if (bpf_map_update_elem(fd, &k, &one, BPF_ANY))
            return sys_error("add a bookkeeping table to the kernel's list");
    remove_stale_keys(fd, keys);
    return {};
}

// The watched unix socket paths that exist now, as written and as resolved
// (/var/run is a link to /run), hashed the way the kernel side hashes the
// path passed to connect().
Status DbWireBpf::publish_unix_paths() {
    if (!unix_rule_) return {};
    int fd = bpf_map__fd(skel_->maps.db_unix_paths);
    std::vector<std::string> paths;
    std::vector<uint64_t> keys;
    std::vector<UnixPath> watched;
    for (size_t i = 0; i < endpoints_.size(); ++i) {
        const auto& ep = endpoints_[i];
        if (!ep.is_unix()) continue;
        std::vector<std::string> found = db::expand_unix_pattern(ep.unix_path);
        if (ep.unix_path.find_first_of("*?[") == std::string::npos)
            found.push_back(ep.unix_path);  // may appear later: watch the name anyway
        ks_db_endpoint val{static_cast<uint32_t>(ep.kind), static_cast<uint32_t>(i)};
        for (const auto& f : found) {
            std::vector<std::string> names = {f};
            char real[PATH_MAX];
            if (::realpath(f.c_str(), real) && f != real) names.emplace_back(real);
            for (const auto& n : names) {
                uint64_t key = fnv1a(n);
                if (bpf_map_update_elem(fd, &key, &val, BPF_ANY))
                    return sys_error("add watched unix socket " + n);
                paths.push_back(n);
                keys.push_back(key);
                watched.push_back({n, val.kind, val.id});
            }
        }
    }
    // Drop paths that were watched before and are not any more.
    remove_stale_keys(fd, keys);
    std::sort(paths.begin(), paths.end());
    paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
    unix_paths_ = std::move(paths);
    unix_watched_ = std::move(watched);
    return {};
}

Status DbWireBpf::set_active(bool active) {
    if (active == active_) return {};
    if (!active) {
        detach_links(links_);
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
    if (auto st = publish_unix_paths(); !st) spdlog::warn("{}", st.error().str());
    std::vector<bpf_program*> progs = {skel_->progs.ks_db_sockops, skel_->progs.ks_db_connect4,
                                       skel_->progs.ks_db_connect6};
    if (unix_rule_) progs.push_back(skel_->progs.ks_db_connect_unix);
    for (bpf_program* p : progs) {
        bpf_link* l = bpf_program__attach_cgroup(p, cg.get());
        if (!l) {
            Error e = sys_error(std::string("attach ") + bpf_program__name(p) + " to " + cgroup2_);
            detach_links(links_);
            bpf_prog_detach2(msg_prog_fd_, sockhash_fd_, BPF_SK_MSG_VERDICT);
            msg_attached_ = false;
            return e;
        }
        links_.push_back(l);
        pins::pin_link(l, std::string("db_wire.") + bpf_program__name(p));
    }
    active_ = true;
    return {};
}

}  // namespace ks
