// The database relay: guarded processes' connections to watched database
// endpoints, sent here by the kernel (bpf/db_wire.bpf.c rewrites their
// connect(): TCP to 127.0.0.1 or ::1, watched unix sockets, from Linux 6.7,
// to one abstract socket per path). The relay connects to where the client
// was going, reads every request whole with the protocol's framing (wire.h),
// asks the judge, and passes it on or answers the refusal in the protocol's
// own error. Requests of any length are judged in full, over TCP and unix
// sockets alike; the connection stays usable after a refusal.
//
// While nothing listens (the daemon is down, or the client is in another
// network namespace) the kernel leaves TCP connections where they were going
// and judges them on the send path itself; watched unix sockets then refuse
// the connection.
//
// Runs in the daemon's event loop: epoll_fd() goes into the loop's epoll
// set and service() does what is ready, never blocking.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/result.h"
#include "db_relay/wire.h"
#include "nlohmann/json.hpp"

namespace ks::relay {

// What a relayed connection is, as the relay learns it when it accepts it.
struct Origin {
    Protocol protocol = Protocol::Postgres;
    uint32_t kind = 0;  // KS_DB_*
    uint32_t endpoint_id = 0;
    uint32_t session_id = 0;
    int pid = 0;              // the process that connected
    uint64_t connection = 0;  // the client socket's cookie (TCP), or the relay's own number
    std::string address;      // where the client was going
    bool unix_socket = false;
};

// A watched unix socket the relay stands in for.
struct UnixEndpoint {
    std::string path;  // as the kernel sees it in connect()
    uint32_t kind = 0;
    uint32_t endpoint_id = 0;
};

struct Hooks {
    std::function<Verdict(const Origin&, const Request&)> judge;
    // The relay closed a connection it could not carry on (a stream it cannot
    // read, the server unreachable): for the record.
    std::function<void(const Origin&, const std::string& why)> closed;
    // The session of a process (unix sockets: the kernel does not say).
    std::function<uint32_t(int pid)> session_of;
};

// The abstract socket name ("\0ks-relay-<hex>") for a watched path.
std::string unix_relay_name(const std::string& path);

class Relay {
  public:
    // conns_map_fd: the kernel's db_relay_conns map (what each TCP
    // connection is, by its local port).
    static Result<std::unique_ptr<Relay>> start(int conns_map_fd, Hooks hooks);
    ~Relay();
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    [[nodiscard]] int epoll_fd() const { return epoll_.get(); }
    [[nodiscard]] uint16_t port4() const { return port4_; }
    [[nodiscard]] uint16_t port6() const { return port6_; }
    // Listens for each path (and stops for paths no longer listed).
    Status set_unix_endpoints(const std::vector<UnixEndpoint>& eps);
    [[nodiscard]] bool has_unix() const { return !unix_.empty(); }
    // Does what is ready; never blocks.
    void service();
    [[nodiscard]] nlohmann::json describe() const;

  private:
    struct Conn;
    struct UnixListener {
        UnixEndpoint ep;
        Fd fd;
        uint64_t token = 0;
    };
    Relay() = default;
    void accept_tcp(int fd, bool v6);
    void accept_unix(const UnixListener& l);
    void adopt(Fd client, Fd server, Origin o, bool connecting);
    void on_ready(uint64_t token, uint32_t events);
    void pump(Conn& c);
    void close_conn(uint64_t id, const std::string& why);
    void watch(Conn& c);

    Fd epoll_;
    Fd tcp4_, tcp6_;
    uint16_t port4_ = 0, port6_ = 0;
    int conns_map_fd_ = -1;
    Hooks hooks_;
    std::map<std::string, UnixListener> unix_;  // by path
    std::map<uint64_t, std::unique_ptr<Conn>> conns_;
    uint64_t next_id_ = 1;
    uint64_t accepted_ = 0, refused_ = 0, unknown_ = 0;
};

}  // namespace ks::relay
