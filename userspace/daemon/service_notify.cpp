#include "daemon/service_notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "common/log.h"

namespace ks {

ServiceNotifier::ServiceNotifier() {
    const char* sock = std::getenv("NOTIFY_SOCKET");
    active_ = sock != nullptr && *sock != '\0';
    uint64_t usec = 0;
    // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is ours.
    if (active_ && sd_watchdog_enabled(0, &usec) > 0) watchdog_usec_ = usec;
}

void ServiceNotifier::send(const std::string& state) {
    if (!active_) return;
    int rc = sd_notify(0, state.c_str());
    if (rc < 0) spdlog::warn("sd_notify: {}", std::strerror(-rc));
}

void ServiceNotifier::ready(const std::string& s) { send("READY=1\nSTATUS=" + s); }

void ServiceNotifier::reloading(const std::string& s) {
    // MONOTONIC_USEC lets systemd 253+ match the reload to this message.
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t usec = static_cast<uint64_t>(ts.tv_sec) * 1000000ull + ts.tv_nsec / 1000;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=" + s);
}

void ServiceNotifier::stopping(const std::string& s) { send("STOPPING=1\nSTATUS=" + s); }

void ServiceNotifier::status(const std::string& s) { send("STATUS=" + s); }

void ServiceNotifier::tick() {
    if (watchdog_usec_ > 0) send("WATCHDOG=1");
}

}  // namespace ks
