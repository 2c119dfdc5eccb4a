// The db_wire BPF object: database requests of guarded processes judged on
// the socket send path (bpf/db_wire.bpf.c). connect4/connect6 and sockops are
// attached to the root of the cgroup2 hierarchy, the sk_msg verdict to the
// SOCKHASH of guarded connections. Attached only while something can be
// guarded, like the file protection programs.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/layer.h"
#include "common/result.h"
#include "common/skeleton.h"
#include "policy/compile.h"
#include "policy/db_endpoints.h"

struct db_wire;
struct bpf_object;
struct bpf_link;

namespace ks {

using DbWireConfig = policy::DbWireSettings;

class DbWireBpf : public Layer {
  public:
    // endpoints: the TCP ones go into the kernel's table (unix sockets are
    // covered by the client-library layer); their index is the endpoint id
    // in records.
    static Result<std::unique_ptr<DbWireBpf>> load(bpf_object* shared, const std::string& cgroup2,
                                                   const std::vector<db::Endpoint>& endpoints,
                                                   const DbWireConfig& config);
    ~DbWireBpf() override;
    DbWireBpf(const DbWireBpf&) = delete;
    DbWireBpf& operator=(const DbWireBpf&) = delete;

    // Attaching also re-reads which unix socket paths exist (patterns).
    Status set_active(bool active) override;
    [[nodiscard]] bool active() const override { return active_; }
    [[nodiscard]] std::string_view name() const override { return "db_wire"; }
    [[nodiscard]] std::vector<std::string> programs() const override;
    void describe(nlohmann::json& layers) const override;
    Status set_config(const DbWireConfig& config);
    // Replaces the watched endpoints (a policy reload): every endpoint of the
    // list is written, then the ones no longer listed are removed. Connections
    // already watched stay watched until they close.
    Status set_endpoints(const std::vector<db::Endpoint>& endpoints);
    // cgroup/connect_unix exists on this kernel (Linux 6.7+): guarded
    // processes are refused watched unix sockets, libpq excepted.
    [[nodiscard]] bool unix_rule() const { return unix_rule_; }
    [[nodiscard]] const std::vector<std::string>& unix_paths() const { return unix_paths_; }
    // The watched unix socket paths with their endpoints (the relay listens
    // for each).
    struct UnixPath {
        std::string path;
        uint32_t kind = 0;
        uint32_t endpoint_id = 0;
        bool operator==(const UnixPath&) const = default;
    };
    [[nodiscard]] const std::vector<UnixPath>& unix_watched() const { return unix_watched_; }
    // Where the connect programs send guarded connections (the daemon's
    // relay): 0 ports for none; unix: watched unix sockets go to the relay.
    Status set_relay(uint16_t port4, uint16_t port6, bool unix);
    // The kernel's table of relayed connections (db_relay_conns).
    [[nodiscard]] int relay_conns_fd() const;
    static std::string_view elf_bytes();

  private:
    DbWireBpf() = default;
    Skeleton<db_wire> skel_;
    std::string cgroup2_;
    std::vector<bpf_link*> links_;
    int sockhash_fd_ = -1;
    int msg_prog_fd_ = -1;
    bool msg_attached_ = false;
    bool active_ = false;
    bool unix_rule_ = false;
    std::vector<db::Endpoint> endpoints_;
    std::vector<std::string> unix_paths_;
    std::vector<UnixPath> unix_watched_;
    DbWireConfig config_;
    uint16_t relay_port4_ = 0, relay_port6_ = 0;
    bool relay_unix_ = false;
    Status write_config();
    Status publish_unix_paths();
    Status publish_bookkeeping(const std::vector<std::string>& tables);
};

}  // namespace ks
