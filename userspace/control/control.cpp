#include "control/control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ks {
namespace {

constexpr size_t kMaxMessage = 1 << 20;

Result<sockaddr_un> make_addr(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path)) return make_error("socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

}  // namespace

std::string control_socket_path(const std::string& runtime_dir) {
    return runtime_dir + "/control.sock";
}

Result<ControlServer> ControlServer::listen(const std::string& path) {
    auto addr = make_addr(path);
    if (!addr) return addr.error();
    ControlServer s;
    s.fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s.fd_.valid()) return sys_error("socket");
    ::unlink(path.c_str());  // a stale socket of a daemon that died; the lock says we are alone
    // Created 0600 from the start: no window in which others could connect.
    mode_t old = ::umask(0177);
    int rc = ::bind(s.fd_.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr));
    ::umask(old);
    if (rc != 0) return sys_error("bind " + path);
    if (::listen(s.fd_.get(), 64) != 0) return sys_error("listen " + path);
    s.path_ = path;
    return s;
}

ControlServer::~ControlServer() {
    if (fd_.valid() && !path_.empty()) ::unlink(path_.c_str());
}

Fd ControlServer::accept_client() const {
    return Fd(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
}

Result<PeerCred> peer_credentials(int fd) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return sys_error("SO_PEERCRED");
    return PeerCred{cred.pid, cred.uid, cred.gid};
}

Result<nlohmann::json> read_message(int fd, int timeout_ms) {
    std::string buf;
    char chunk[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int rc = ::poll(&p, 1, timeout_ms);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0) return sys_error("poll");
        if (rc == 0) return make_error("timed out waiting for a reply");
        ssize_t n = ::read(fd, chunk, sizeof(chunk));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) return sys_error("read");
        if (n == 0) return make_error("connection closed");
        buf.append(chunk, static_cast<size_t>(n));
        auto nl = buf.find('\n');
        if (nl != std::string::npos) {
            auto msg = nlohmann::json::parse(buf.substr(0, nl), nullptr, false);
            if (msg.is_discarded() || !msg.is_object()) return make_error("malformed message");
            return msg;
        }
        if (buf.size() > kMaxMessage) return make_error("message too long");
    }
}

Status write_message(int fd, const nlohmann::json& msg) {
    std::string out = msg.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    size_t off = 0;
    while (off < out.size()) {
        ssize_t n = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, 1000);
            continue;
        }
        if (n < 0) return sys_error("send");
        off += static_cast<size_t>(n);
    }
    return {};
}

Result<nlohmann::json> control_request(const std::string& runtime_dir, const nlohmann::json& req,
                                       int timeout_ms, int pass_fd) {
    std::string path = control_socket_path(runtime_dir);
    auto addr = make_addr(path);
    if (!addr) return addr.error();
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return sys_error("socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr)) != 0)
        return sys_error("connect " + path);
    if (pass_fd >= 0) {
        std::string line =
            req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        if (auto st = send_with_fd(fd.get(), line, pass_fd); !st) return st.error();
    } else if (auto st = write_message(fd.get(), req); !st) {
        return st.error();
    }
    return read_message(fd.get(), timeout_ms);
}

Status send_with_fd(int sock, const std::string& bytes, int fd) {
    // The descriptor rides with the first byte; the rest follows as usual.
    iovec iov{const_cast<char*>(bytes.data()), 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t n;
    do {
        n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n != 1) return sys_error("sendmsg");
    size_t off = 1;
    while (off < bytes.size()) {
        ssize_t m = ::send(sock, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (m < 0 && errno == EINTR) continue;
        if (m < 0) return sys_error("send");
        off += static_cast<size_t>(m);
    }
    return {};
}

ssize_t receive_with_fd(int sock, char* buf, size_t len, Fd& passed) {
    iovec iov{buf, len};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); n >= 0 && c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (!passed.valid())
                passed.reset(fd);
            else
                ::close(fd);
        }
    }
    return n;
}

}  // namespace ks
