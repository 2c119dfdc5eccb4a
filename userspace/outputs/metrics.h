// Prometheus metrics (text exposition format 0.0.4) of the daemon's status:
// every counter `killswitch status` has, each layer up or down, sessions by
// state, holds pending, and the policy's digest as an info metric. Served at
// /metrics on a local address (`--output metrics=127.0.0.1:9464`) and/or
// written as a node-exporter textfile (`--output metrics-file=PATH`).
#pragma once

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/result.h"

namespace httplib {
class Server;
}

namespace ks::outputs {

// The exposition text of a status snapshot (Daemon::status_json()).
std::string render_prometheus(const nlohmann::json& status);

// An HTTP server on its own thread that answers GET /metrics with the last
// text published (the event loop publishes each second; the server never
// touches the daemon's state).
class MetricsServer {
  public:
    // host:port ("127.0.0.1:9464", "[::1]:9464"); port 0 takes a free one.
    static Result<std::unique_ptr<MetricsServer>> start(const std::string& address);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    void publish(std::string text);
    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] const std::string& address() const { return address_; }
    [[nodiscard]] uint64_t scrapes() const;

  private:
    MetricsServer() = default;
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
    mutable std::mutex mu_;
    std::string text_;
    uint64_t scrapes_ = 0;
    std::string address_;
    int port_ = 0;
};

// node-exporter's textfile collector: written whole and renamed into place,
// so that a scrape never reads half a file.
Status write_textfile(const std::string& path, const std::string& text);

}  // namespace ks::outputs
