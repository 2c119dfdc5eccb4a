// The daemon's control socket: newline-delimited JSON requests and replies
// over a unix stream socket (mode 0600). Each request carries the caller's
// credentials from SO_PEERCRED, never from what the caller says.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include <nlohmann/json.hpp>
#include <string>

#include "common/fd.h"
#include "common/result.h"

namespace ks {

// `allow.start` (killswitch allow): a maintenance window lasts from 1 second
// to 24 hours; the CLI checks it, the daemon checks it again.
inline constexpr uint32_t kMaxWindowSeconds = 86400;

struct PeerCred {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

std::string control_socket_path(const std::string& runtime_dir);

class ControlServer {
  public:
    static Result<ControlServer> listen(const std::string& path);
    ControlServer(ControlServer&&) = default;
    ControlServer& operator=(ControlServer&&) = default;
    ~ControlServer();

    [[nodiscard]] int fd() const { return fd_.get(); }
    // Accepts one connection (non-blocking listener); invalid Fd when none.
    Fd accept_client() const;

  private:
    ControlServer() = default;
    Fd fd_;
    std::string path_;
};

Result<PeerCred> peer_credentials(int fd);
// Reads one request line (blocking, with a timeout in ms).
Result<nlohmann::json> read_message(int fd, int timeout_ms);
Status write_message(int fd, const nlohmann::json& msg);

// Client side: one request, one reply. With pass_fd, the descriptor goes
// along with the request (SCM_RIGHTS): a session's seccomp listener.
Result<nlohmann::json> control_request(const std::string& runtime_dir, const nlohmann::json& req,
                                       int timeout_ms = 5000, int pass_fd = -1);

// Sends bytes with one descriptor attached (SCM_RIGHTS).
Status send_with_fd(int sock, const std::string& bytes, int fd);
// Receives what is there (non-blocking); a descriptor that came with it is
// put in passed (a second one is closed). 0: the peer closed.
ssize_t receive_with_fd(int sock, char* buf, size_t len, Fd& passed);

}  // namespace ks
