#include "common/log.h"

#include <bpf/libbpf.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <string>

namespace ks {
namespace {

std::atomic<int> g_quiet{0};

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
    if (g_quiet.load() > 0) return 0;
    va_list copy;
    va_copy(copy, args);
    int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    std::string msg(n > 0 ? static_cast<size_t>(n) + 1 : 1, '\0');
    std::vsnprintf(msg.data(), msg.size(), fmt, args);
    msg.resize(n > 0 ? static_cast<size_t>(n) : 0);
    // A verifier log can run to megabytes; its reason is at the end.
    constexpr size_t kHead = 2048, kTail = 8192;
    if (msg.size() > kHead + kTail + 64)
        msg = msg.substr(0, kHead) + "\n... (" + std::to_string(msg.size() - kHead - kTail) +
              " bytes of the log left out) ...\n" + msg.substr(msg.size() - kTail);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    switch (level) {
        case LIBBPF_WARN:
            spdlog::warn("libbpf: {}", msg);
            break;
        case LIBBPF_INFO:
            spdlog::debug("libbpf: {}", msg);
            break;
        default:
            spdlog::trace("libbpf: {}", msg);
            break;
    }
    return 0;
}

}  // namespace

void setup_logging(const std::string& level) {
    auto logger = spdlog::stderr_color_mt("killswitch");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(level));
}

void route_libbpf_logs() { libbpf_set_print(libbpf_print); }

QuietLibbpf::QuietLibbpf() { g_quiet.fetch_add(1); }
QuietLibbpf::~QuietLibbpf() { g_quiet.fetch_sub(1); }

}  // namespace ks
