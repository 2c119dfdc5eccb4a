// The service manager's side of the daemon (systemd's sd_notify protocol,
// with libsystemd): READY=1 once the control socket accepts and every layer
// is attached, RELOADING=1 / READY=1 around a policy reload, STOPPING=1, a
// STATUS= line, and WATCHDOG=1 from the event loop's tick when the unit
// has WatchdogSec= (a loop that stalls is restarted; enforcement stays
// pinned). Without NOTIFY_SOCKET (not started by systemd) every call does
// nothing.
#pragma once

#include <cstdint>
#include <string>

namespace ks {

class ServiceNotifier {
  public:
    ServiceNotifier();

    [[nodiscard]] bool active() const { return active_; }
    // The watchdog interval the unit asks for (0: none).
    [[nodiscard]] uint64_t watchdog_usec() const { return watchdog_usec_; }

    void ready(const std::string& status);
    void reloading(const std::string& status);
    void stopping(const std::string& status);
    void status(const std::string& status);
    // Each tick; sends WATCHDOG=1 when the unit has a watchdog.
    void tick();

  private:
    void send(const std::string& state);
    bool active_ = false;
    uint64_t watchdog_usec_ = 0;
};

}  // namespace ks
