// Logging: spdlog to stderr, with libbpf's own messages routed into it.
#pragma once

#include <spdlog/spdlog.h>

namespace ks {

// level: "trace", "debug", "info", "warn", "error".
void setup_logging(const std::string& level = "info");

// libbpf prints through spdlog from now on: its warnings as warn, info as
// debug, debug as trace.
void route_libbpf_logs();

// While alive, libbpf's messages are dropped (probes that are expected to fail).
class QuietLibbpf {
  public:
    QuietLibbpf();
    ~QuietLibbpf();
    QuietLibbpf(const QuietLibbpf&) = delete;
    QuietLibbpf& operator=(const QuietLibbpf&) = delete;
};

}  // namespace ks
