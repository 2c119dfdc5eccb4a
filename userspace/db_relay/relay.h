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
// Runs on a thread of its own, so that a request costs the client one hop
// and no more: most requests carry nothing to refuse, count or record, and
// the relay passes them at once (Hooks::passes, pure). The others wait,
// unread at the front of their stream, while the daemon's event loop judges
// them: notify_fd() becomes readable, the loop take()s the questions and
// answer()s each. The connection's answers from the server flow on
// meanwhile.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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
    // On the relay's thread, for each request: true when it goes on without
    // the daemon (nothing in it to refuse, count or record). known: the
    // connection's unique keys. forget: set when the request may change
    // what a table's name or keys mean; every connection's are dropped.
    std::function<bool(const Origin&, const Request&, const UniqueKeys& known, bool& forget)>
        passes;
};

// A request the daemon is to judge (Relay::answer with conn).
struct Question {
    uint64_t conn = 0;
    Origin origin;
    uint8_t type = 0;
    std::string text;
    // Asked again after the row checks the daemon wanted: the server's answers.
    std::vector<RowCheck> checks;
    // Asked again after the probe the daemon wanted: what it answered.
    std::optional<ProbeAnswer> probe;
    UniqueKeys known;            // the connection's unique keys (Hooks::passes)
    uint64_t asked_boot_ns = 0;  // when the relay asked (CLOCK_BOOTTIME)
    // A PostgreSQL Parse or Bind asked with the values of its Bind
    // (Request::bound, params, unread).
    bool bound = false;
    std::vector<std::optional<std::string>> params;
    std::string unread;
};

// A connection the relay closed because it could not carry it on (a stream
// it cannot read, the server unreachable): for the record.
struct Closing {
    Origin origin;
    std::string why;
};

// The abstract socket name ("\0ks-relay-<hex>") for a watched path.
std::string unix_relay_name(const std::string& path);

class Relay {
  public:
    // conns_map_fd: the kernel's db_relay_conns map (what each TCP
    // connection is, by its local port). The relay's thread starts here and
    // ends with the object.
    static Result<std::unique_ptr<Relay>> start(int conns_map_fd, Hooks hooks);
    ~Relay();
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    [[nodiscard]] uint16_t port4() const { return port4_; }
    [[nodiscard]] uint16_t port6() const { return port6_; }
    // Listens for each path (and stops for paths no longer listed).
    Status set_unix_endpoints(const std::vector<UnixEndpoint>& eps);
    [[nodiscard]] bool has_unix() const;
    // How long the thread looks for more after traffic before it sleeps
    // (policy databases.relay_poll_us); 0: it sleeps at once.
    void set_poll(uint64_t ns) { poll_ns_ = ns; }

    // Readable while questions or closings wait for the daemon.
    [[nodiscard]] int notify_fd() const { return notify_.get(); }
    // Takes what waits (and clears notify_fd).
    void take(std::vector<Question>& questions, std::vector<Closing>& closings);
    // The daemon's verdict on a question; the connection goes on.
    void answer(uint64_t conn, Verdict v);

    [[nodiscard]] nlohmann::json describe() const;

  private:
    struct Conn;
    struct UnixListener {
        UnixEndpoint ep;
        Fd fd;
        uint64_t token = 0;
    };
    Relay() = default;
    void loop();
    void take_answers();
    void accept_tcp(int fd, bool v6);
    void accept_unix(const UnixListener& l);
    void adopt(Fd client, Fd server, Origin o, bool connecting);
    void on_ready(uint64_t token, uint32_t events);
    void pump(Conn& c, bool read_client = true, bool read_server = true);
    void close_conn(uint64_t id, const std::string& why);
    void watch(Conn& c);
    void ask(Conn& c, uint8_t type, std::string text, std::vector<RowCheck> checks = {},
             std::optional<ProbeAnswer> probe = std::nullopt);
    void check_rows(Conn& c);
    void probe(Conn& c);
    void closed(const Origin& o, const std::string& why);
    const std::string& keys_scope(Conn& c) const;
    const UniqueKeys& known_keys(Conn& c);
    void learn_keys(Conn& c, UniqueKeys learned);

    Fd epoll_;
    Fd tcp4_, tcp6_;
    Fd wake_;    // eventfd: answers for the relay, or time to stop
    Fd notify_;  // eventfd: questions for the daemon
    uint16_t port4_ = 0, port6_ = 0;
    int conns_map_fd_ = -1;
    Hooks hooks_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<uint64_t> poll_ns_{0};
    // Waits that found traffic by looking again, and sleeps.
    std::atomic<uint64_t> polled_{0}, slept_{0};

    // The relay's own state: its thread, and the daemon's calls above.
    mutable std::mutex mu_;
    std::map<std::string, UnixListener> unix_;  // by path
    std::map<uint64_t, std::unique_ptr<Conn>> conns_;
    uint64_t next_id_ = 1;
    // Bumped when a request may change what names or keys mean: a
    // connection's unique keys count only when learned in this generation.
    uint64_t keys_gen_ = 0;
    // What probes learned of unique keys, by scope (keys_scope: the server
    // and the client's startup parameters), shared by the scope's
    // connections. Kept for kKeysKeptNs from the first learned in a
    // generation: a table that an unwatched client altered meanwhile is
    // asked about again by then.
    struct ScopeKeys {
        uint64_t gen = 0;
        uint64_t since_ns = 0;
        UniqueKeys keys;
    };
    static constexpr uint64_t kKeysKeptNs = 300ull * 1'000'000'000ull;
    static constexpr size_t kKeyScopesKept = 256;
    std::map<std::string, ScopeKeys> scope_keys_;
    uint64_t accepted_ = 0, judged_ = 0, asked_ = 0, refused_ = 0, held_ = 0, unknown_ = 0;

    // Between the two threads.
    std::mutex q_mu_;
    std::vector<Question> questions_;
    std::vector<Closing> closings_;
    std::vector<std::pair<uint64_t, Verdict>> answers_;
};

}  // namespace ks::relay
