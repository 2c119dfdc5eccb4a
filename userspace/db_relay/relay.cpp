#include "db_relay/relay.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <killswitch/abi/events.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/clock.h"
#include "common/fnv.h"
#include "common/log.h"

namespace ks::relay {

namespace {

constexpr uint64_t kConnBit = 1ull << 63;
constexpr uint64_t kTcp4 = 1, kTcp6 = 2, kWake = 3, kFirstUnix = 16;
constexpr size_t kChunk = 64 * 1024;
// Stop reading a side while this much waits to be written to the other.
constexpr size_t kHighWater = 4u << 20;

Protocol protocol_of(uint32_t kind) {
    switch (kind) {
        case KS_DB_MYSQL:
            return Protocol::Mysql;
        case KS_DB_REDIS:
            return Protocol::Redis;
        case KS_DB_MONGODB:
            return Protocol::Mongodb;
        default:
            return Protocol::Postgres;
    }
}

std::string random_token() {
    uint64_t v = 0;
    if (::getrandom(&v, sizeof(v), 0) != sizeof(v)) v = static_cast<uint64_t>(::getpid()) ^ 0x9e37;
    return fmt::format("{:016x}", v);
}

Result<Fd> listen_tcp(int family, uint16_t& port) {
    Fd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return sys_error("relay socket");
    int one = 1;
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    } else {
        ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    }
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
        return sys_error(family == AF_INET ? "relay bind 127.0.0.1" : "relay bind ::1");
    if (::listen(fd.get(), 1024) != 0) return sys_error("relay listen");
    len = sizeof(ss);
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                   : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return fd;
}

std::string address_of(const ks_db_relay_conn& c) {
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char buf[INET6_ADDRSTRLEN] = {};
    if (std::memcmp(c.dst, mapped, 12) == 0) {
        ::inet_ntop(AF_INET, c.dst + 12, buf, sizeof(buf));
        return fmt::format("{}:{}", buf, c.dst_port);
    }
    ::inet_ntop(AF_INET6, c.dst, buf, sizeof(buf));
    return fmt::format("[{}]:{}", buf, c.dst_port);
}

Result<Fd> connect_tcp(const ks_db_relay_conn& c, bool& connecting) {
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (std::memcmp(c.dst, mapped, 12) == 0) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        std::memcpy(&a->sin_addr, c.dst + 12, 4);
        a->sin_port = htons(c.dst_port);
        len = sizeof(*a);
    } else {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        std::memcpy(&a->sin6_addr, c.dst, 16);
        a->sin6_port = htons(c.dst_port);
        len = sizeof(*a);
    }
    Fd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return sys_error("socket");
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0) {
        connecting = false;
    } else if (errno == EINPROGRESS) {
        connecting = true;
    } else {
        return sys_error("connect to " + address_of(c));
    }
    return fd;
}

// The supplementary groups of a process, from /proc.
std::vector<gid_t> groups_of(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    std::vector<gid_t> out;
    while (std::getline(in, line))
        if (line.rfind("Groups:", 0) == 0) {
            std::istringstream ss(line.substr(7));
            gid_t g = 0;
            while (ss >> g) out.push_back(g);
        }
    return out;
}

// Connects to a unix socket as the client would have: the server sees the
// client's user and groups (PostgreSQL peer and MySQL unix_socket
// authentication read them), and the socket file's permissions are checked
// against them. The identity changes for this thread only (raw system calls:
// glibc's wrappers would change every thread) and is restored at once.
Result<Fd> connect_unix_as(const std::string& path, const ucred& cred) {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return sys_error("socket");
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (path.size() >= sizeof(un.sun_path)) return make_error("unix socket path too long: " + path);
    std::memcpy(un.sun_path, path.data(), path.size());
    bool as_other = cred.uid != ::geteuid() || cred.gid != ::getegid();
    std::vector<gid_t> saved;
    if (as_other) {
        int n = ::getgroups(0, nullptr);
        saved.resize(n > 0 ? static_cast<size_t>(n) : 0);
        if (n > 0) ::getgroups(n, saved.data());
        std::vector<gid_t> groups = groups_of(cred.pid);
        if (::syscall(SYS_setgroups, groups.size(), groups.data()) != 0 ||
            ::syscall(SYS_setresgid, -1, cred.gid, -1) != 0 ||
            ::syscall(SYS_setresuid, -1, cred.uid, -1) != 0) {
            Error e = sys_error("take the identity of uid " + std::to_string(cred.uid));
            ::syscall(SYS_setresuid, -1, 0, -1);
            ::syscall(SYS_setresgid, -1, 0, -1);
            ::syscall(SYS_setgroups, saved.size(), saved.data());
            return e;
        }
    }
    int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&un), sizeof(un));
    int err = errno;
    if (as_other) {
        ::syscall(SYS_setresuid, -1, 0, -1);
        ::syscall(SYS_setresgid, -1, 0, -1);
        ::syscall(SYS_setgroups, saved.size(), saved.data());
    }
    if (rc != 0) {
        errno = err;
        return sys_error("connect to " + path);
    }
    return fd;
}

}  // namespace

std::string unix_relay_name(const std::string& path) {
    return std::string(1, '\0') + KS_DB_RELAY_UNIX_PREFIX + fmt::format("{:016x}", fnv1a(path));
}

struct Relay::Conn {
    uint64_t id = 0;
    Origin origin;
    Fd client, server;
    std::unique_ptr<Wire> wire;
    std::string from_client, to_server, from_server, to_client;
    bool connecting = false;
    bool client_eof = false, server_eof = false;
    uint32_t client_events = 0, server_events = 0;  // registered with epoll
    // The request at the front of from_client is with the daemon; its
    // verdict, once it came back.
    bool asking = false;
    // The request at the front is larger than the relay reads ahead
    // (kHighWater) and not all there: the client's side is read on, up to
    // the longest request the wire reads whole (kMaxRequest).
    bool reads_on = false;
    std::optional<Verdict> answer;
    // The request asked about, and the tables the daemon wants checked
    // before it answers.
    uint8_t asked_type = 0;
    std::string asked_text;
    bool asked_bound = false;  // Request::bound, params, unread
    std::vector<std::optional<std::string>> asked_params;
    std::string asked_unread;
    std::vector<std::string> check_tables;
    std::string probe_sql;  // the probe the daemon wants run first
    int probe_round = 0;
    // The relay's generation of unique keys at the question: what the
    // answer learned counts only if nothing made them forget since.
    uint64_t asked_gen = 0;
    std::string scope;    // keys_scope
    bool scoped = false;  // scope is the server's and the startup's
};

Result<std::unique_ptr<Relay>> Relay::start(int conns_map_fd, Hooks hooks) {
    std::unique_ptr<Relay> r(new Relay());
    r->conns_map_fd_ = conns_map_fd;
    r->hooks_ = std::move(hooks);
    r->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!r->epoll_.valid()) return sys_error("relay epoll");
    auto t4 = listen_tcp(AF_INET, r->port4_);
    if (!t4) return t4.error();
    r->tcp4_ = std::move(*t4);
    if (auto t6 = listen_tcp(AF_INET6, r->port6_); t6)
        r->tcp6_ = std::move(*t6);
    else
        spdlog::info(
            "database relay: no IPv6 loopback ({}): IPv6 clients are judged on the "
            "socket send path",
            t6.error().str());
    r->wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    r->notify_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!r->wake_.valid() || !r->notify_.valid()) return sys_error("relay eventfd");
    for (auto [fd, token] : {std::pair{r->tcp4_.get(), kTcp4}, std::pair{r->tcp6_.get(), kTcp6},
                             std::pair{r->wake_.get(), kWake}}) {
        if (fd < 0) continue;
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.u64 = token;
        if (::epoll_ctl(r->epoll_.get(), EPOLL_CTL_ADD, fd, &e) != 0)
            return sys_error("relay epoll_ctl");
    }
    // Signals are the event loop's (its signalfd): the relay's thread is
    // born with every signal blocked, so that none is ever delivered to it
    // (a SIGTERM taken here would end the daemon without its clean stop).
    sigset_t all, before;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &before);
    Relay* self = r.get();
    r->thread_ = std::thread([self] { self->loop(); });
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    return r;
}

Relay::~Relay() {
    if (!thread_.joinable()) return;
    stop_ = true;
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof(one));
    thread_.join();
}

void Relay::loop() {
    epoll_event evs[64];
    uint64_t poll_until = 0;
    while (!stop_) {
        int n = 0;
        // After traffic, look again for a while before sleeping: the
        // server's answer, and the client's next request, usually come
        // within it, and the wake-up they would take is most of what the
        // relay's hop costs (docs/performance.md).
        while (n == 0 && !stop_ && clock_ns(CLOCK_MONOTONIC) < poll_until)
            n = ::epoll_wait(epoll_.get(), evs, 64, 0);
        if (n > 0) {
            ++polled_;
        } else {
            ++slept_;
            n = ::epoll_wait(epoll_.get(), evs, 64, -1);
        }
        if (n < 0 && errno != EINTR) {
            spdlog::error("database relay: epoll_wait: {}", std::strerror(errno));
            return;
        }
        uint64_t poll = poll_ns_;
        poll_until = n > 0 && poll > 0 ? clock_ns(CLOCK_MONOTONIC) + poll : 0;
        std::lock_guard lock(mu_);
        for (int i = 0; i < n; ++i) {
            if (evs[i].data.u64 == kWake)
                take_answers();
            else
                on_ready(evs[i].data.u64, evs[i].events);
        }
    }
}

bool Relay::has_unix() const {
    std::lock_guard lock(mu_);
    return !unix_.empty();
}

void Relay::ask(Conn& c, uint8_t type, std::string text, std::vector<RowCheck> checks,
                std::optional<ProbeAnswer> probe) {
    c.asking = true;
    ++asked_;
    if (checks.empty() && !probe) {
        c.asked_type = type;
        c.asked_text = text;
        c.asked_gen = keys_gen_;
    }
    {
        std::lock_guard lock(q_mu_);
        questions_.push_back({c.id, c.origin, type, std::move(text), std::move(checks),
                              std::move(probe), known_keys(c), boottime_ns(), c.asked_bound,
                              c.asked_params, c.asked_unread});
    }
    uint64_t one = 1;
    (void)!::write(notify_.get(), &one, sizeof(one));
}

void Relay::take(std::vector<Question>& questions, std::vector<Closing>& closings) {
    uint64_t n = 0;
    (void)!::read(notify_.get(), &n, sizeof(n));
    std::lock_guard lock(q_mu_);
    questions.swap(questions_);
    closings.swap(closings_);
    questions_.clear();
    closings_.clear();
}

void Relay::answer(uint64_t conn, Verdict v) {
    {
        std::lock_guard lock(q_mu_);
        answers_.emplace_back(conn, std::move(v));
    }
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof(one));
}

void Relay::take_answers() {
    uint64_t n = 0;
    (void)!::read(wake_.get(), &n, sizeof(n));
    std::vector<std::pair<uint64_t, Verdict>> answers;
    {
        std::lock_guard lock(q_mu_);
        answers.swap(answers_);
    }
    for (auto& [id, v] : answers) {
        auto it = conns_.find(id);
        if (it == conns_.end()) continue;  // closed meanwhile
        it->second->answer = std::move(v);
        pump(*it->second);
    }
}

Status Relay::set_unix_endpoints(const std::vector<UnixEndpoint>& eps) {
    std::lock_guard lock(mu_);
    std::map<std::string, UnixListener> next;
    uint64_t token = kFirstUnix;
    for (const auto& [path, l] : unix_) token = std::max(token, l.token + 1);
    for (const auto& ep : eps) {
        if (next.count(ep.path)) continue;
        if (auto it = unix_.find(ep.path); it != unix_.end()) {
            it->second.ep = ep;
            next.emplace(ep.path, std::move(it->second));
            unix_.erase(it);
            continue;
        }
        UnixListener l;
        l.ep = ep;
        l.token = token++;
        l.fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!l.fd.valid()) return sys_error("relay unix socket");
        std::string name = unix_relay_name(ep.path);
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        std::memcpy(un.sun_path, name.data(), name.size());
        auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
        if (::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&un), len) != 0 ||
            ::listen(l.fd.get(), 1024) != 0)
            return sys_error("relay listen for " + ep.path);
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.u64 = l.token;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, l.fd.get(), &e) != 0)
            return sys_error("relay epoll_ctl");
        next.emplace(ep.path, std::move(l));
    }
    unix_ = std::move(next);  // listeners no longer listed close here
    return {};
}

void Relay::on_ready(uint64_t token, uint32_t events) {
    if (token == kTcp4 || token == kTcp6) {
        accept_tcp(token == kTcp4 ? tcp4_.get() : tcp6_.get(), token == kTcp6);
        return;
    }
    if (!(token & kConnBit)) {
        for (auto& [path, l] : unix_)
            if (l.token == token) {
                accept_unix(l);
                return;
            }
        return;
    }
    uint64_t id = (token & ~kConnBit) >> 1;
    bool server_side = token & 1;
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Conn& c = *it->second;
    if (server_side && c.connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(c.server.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            close_conn(id, std::string("the database did not accept the connection: ") +
                               std::strerror(err));
            return;
        }
        c.connecting = false;
    }
    // Only the side that has something is read (a read of the other would
    // only say EAGAIN: a syscall more per message, which is most of what a
    // message costs here).
    bool readable = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    pump(c, readable && !server_side, readable && server_side);
}

void Relay::accept_tcp(int lfd, bool v6) {
    while (true) {
        sockaddr_storage peer{};
        socklen_t len = sizeof(peer);
        Fd client(
            ::accept4(lfd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!client.valid()) return;
        uint16_t port =
            ntohs(peer.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&peer)->sin_port
                                            : reinterpret_cast<sockaddr_in6*>(&peer)->sin6_port);
        ks_db_relay_key key{port, static_cast<uint16_t>(v6 ? 1 : 0)};
        ks_db_relay_conn info{};
        if (bpf_map_lookup_and_delete_elem(conns_map_fd_, &key, &info) != 0) {
            // Not a connection the kernel sent here: nobody may use the
            // relay as a way in.
            ++unknown_;
            continue;
        }
        Origin o;
        o.kind = info.kind;
        o.protocol = protocol_of(info.kind);
        o.endpoint_id = info.endpoint_id;
        o.session_id = info.session_id;
        o.pid = static_cast<int>(info.tgid);
        o.connection = info.cookie;
        o.address = address_of(info);
        bool connecting = false;
        auto server = connect_tcp(info, connecting);
        if (!server) {
            closed(o, server.error().str());
            continue;  // the client sees the connection closed, as it would have
        }
        int one = 1;
        ::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        adopt(std::move(client), std::move(*server), std::move(o), connecting);
    }
}

void Relay::accept_unix(const UnixListener& l) {
    while (true) {
        Fd client(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!client.valid()) return;
        ucred cred{};
        socklen_t len = sizeof(cred);
        if (::getsockopt(client.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) continue;
        Origin o;
        o.kind = l.ep.kind;
        o.protocol = protocol_of(l.ep.kind);
        o.endpoint_id = l.ep.endpoint_id;
        o.pid = cred.pid;
        o.connection = (1ull << 48) | next_id_;
        o.address = l.ep.path;
        o.unix_socket = true;
        auto server = connect_unix_as(l.ep.path, cred);
        if (!server) {
            closed(o, server.error().str());
            continue;
        }
        adopt(std::move(client), std::move(*server), std::move(o), false);
    }
}

void Relay::adopt(Fd client, Fd server, Origin o, bool connecting) {
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->origin = std::move(o);
    c->client = std::move(client);
    c->server = std::move(server);
    c->connecting = connecting;
    c->wire = make_wire(c->origin.protocol, random_token());
    ++accepted_;
    Conn& ref = *c;
    conns_.emplace(ref.id, std::move(c));
    watch(ref);
    if (!connecting) pump(ref);
}

void Relay::watch(Conn& c) {
    auto set = [&](int fd, uint32_t want, uint32_t& have, uint64_t token) {
        if (want == have) return;
        epoll_event e{};
        e.events = want;
        e.data.u64 = token;
        ::epoll_ctl(epoll_.get(), have == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &e);
        have = want;
    };
    uint32_t cw = EPOLLRDHUP;
    if (!c.client_eof && c.to_server.size() < kHighWater) cw |= EPOLLIN;
    if (!c.to_client.empty()) cw |= EPOLLOUT;
    uint32_t sw = EPOLLRDHUP;
    if (!c.server_eof && !c.connecting && c.to_client.size() < kHighWater) sw |= EPOLLIN;
    if (c.connecting || !c.to_server.empty()) sw |= EPOLLOUT;
    set(c.client.get(), cw, c.client_events, kConnBit | c.id << 1);
    set(c.server.get(), sw, c.server_events, kConnBit | c.id << 1 | 1);
}

namespace {

// Reads what is there; false at end of stream or error.
bool drain(int fd, std::string& into, size_t limit) {
    char buf[kChunk];
    while (into.size() < limit) {
        ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n > 0) {
            into.append(buf, static_cast<size_t>(n));
            // A short read emptied the socket (epoll is level-triggered:
            // more that comes wakes us again), which saves a read that
            // would only say EAGAIN.
            if (static_cast<size_t>(n) < sizeof(buf)) return true;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
        return false;
    }
    return true;
}

// Writes what it can; false on error.
bool flush(int fd, std::string& from) {
    while (!from.empty()) {
        ssize_t n = ::send(fd, from.data(), from.size(), MSG_NOSIGNAL);
        if (n > 0) {
            from.erase(0, static_cast<size_t>(n));
            continue;
        }
        return n < 0 && (errno == EAGAIN || errno == EINTR);
    }
    return true;
}

}  // namespace

void Relay::pump(Conn& c, bool read_client, bool read_server) {
    const Origin& o = c.origin;
    Judge judge = [&](const Request& r) -> Verdict {
        if (c.answer) {
            Verdict v = std::move(*c.answer);
            c.answer.reset();
            if (!v.learned.empty() && c.asked_gen == keys_gen_) learn_keys(c, std::move(v.learned));
            if (!v.check_rows.empty()) {
                // The server is asked first (below, once it owes nothing).
                c.check_tables = std::move(v.check_rows);
                return {.later = true};
            }
            if (!v.probe.empty()) {
                c.probe_sql = std::move(v.probe);
                c.probe_round = v.probe_round;
                return {.later = true};
            }
            if (v.later) {
                // Held for a person: the answer comes when they decide.
                ++held_;
                c.wire->notice(v.message, c.to_client);
                return {.later = true};
            }
            c.asking = false;
            c.asked_text.clear();
            if (v.refuse) ++refused_;
            return v;
        }
        if (c.asking) return {.later = true};
        ++judged_;
        bool forget = false;
        bool passes = hooks_.passes && hooks_.passes(o, r, known_keys(c), forget);
        if (forget) ++keys_gen_;
        if (passes) return {};
        c.asked_bound = r.bound;
        c.asked_params = r.params;
        c.asked_unread = r.unread;
        ask(c, r.type, std::string(r.text));
        return {.later = true};
    };
    if (read_client && !c.client_eof && c.to_server.size() < kHighWater &&
        !drain(c.client.get(), c.from_client, c.reads_on ? kMaxRequest + kChunk : kHighWater))
        c.client_eof = true;
    size_t unread = c.from_client.size();
    if (!c.wire->from_client(c.from_client, c.to_server, c.to_client, judge)) {
        flush(c.client.get(), c.to_client);
        close_conn(c.id, "the client's stream cannot be read: " + c.wire->error());
        return;
    }
    // Nothing taken from a full buffer, and no verdict awaited: the wire
    // waits for the rest of one request.
    c.reads_on = !c.asking && unread >= kHighWater && c.from_client.size() == unread;
    if (!c.connecting) {
        if (read_server && !c.server_eof && c.to_client.size() < kHighWater &&
            !drain(c.server.get(), c.from_server, kHighWater))
            c.server_eof = true;
        if (!c.wire->from_server(c.from_server, c.to_client)) {
            close_conn(c.id, "the server's stream cannot be read: " + c.wire->error());
            return;
        }
        c.wire->more_up(c.to_server);
        if (auto checks = c.wire->take_checks())
            ask(c, c.asked_type, c.asked_text, std::move(*checks));
        if (auto answer = c.wire->take_probe()) {
            answer->round = c.probe_round;
            ask(c, c.asked_type, c.asked_text, {}, std::move(*answer));
        }
        if (!c.check_tables.empty()) check_rows(c);
        if (!c.probe_sql.empty()) probe(c);
        if (!flush(c.server.get(), c.to_server)) c.server_eof = true;
    }
    if (!flush(c.client.get(), c.to_client)) c.client_eof = true;
    // One side is gone: the other ends once it has what was on its way.
    if ((c.client_eof && c.to_server.empty()) || (c.server_eof && c.to_client.empty()) ||
        (c.client_eof && c.server_eof)) {
        close_conn(c.id, "");
        return;
    }
    watch(c);
}

// The daemon wants to know whether tables have rows before it answers: asked
// on the client's connection once the server owes the client nothing.
void Relay::check_rows(Conn& c) {
    std::string why;
    switch (c.wire->can_check(why)) {
        case Wire::CheckReady::NotYet:
            c.wire->more_up(c.to_server);  // what the wire sends to get there
            return;                        // again when the server's answers have come
        case Wire::CheckReady::Now:
            c.wire->start_check(c.check_tables, c.to_server);
            c.check_tables.clear();
            return;
        case Wire::CheckReady::Never:
        case Wire::CheckReady::Failing: {
            std::vector<RowCheck> none;
            for (auto& t : c.check_tables) none.push_back({t, RowCheck::Outcome::Failed, why});
            c.check_tables.clear();
            ask(c, c.asked_type, c.asked_text, std::move(none));
            return;
        }
    }
}

// The daemon wants to know what a statement would reach before it answers:
// asked like the row checks, in a block or savepoint that is rolled back.
void Relay::probe(Conn& c) {
    std::string why;
    Wire::CheckReady ready = c.wire->can_check(why);
    switch (ready) {
        case Wire::CheckReady::NotYet:
            c.wire->more_up(c.to_server);
            return;
        case Wire::CheckReady::Now:
            c.wire->start_probe(c.probe_sql, c.to_server);
            c.probe_sql.clear();
            return;
        case Wire::CheckReady::Never:
        case Wire::CheckReady::Failing: {
            c.probe_sql.clear();
            ProbeAnswer none;
            none.not_asked = why;
            none.fails_anyway = ready == Wire::CheckReady::Failing;
            none.round = c.probe_round;
            ask(c, c.asked_type, c.asked_text, {}, std::move(none));
            return;
        }
    }
}

void Relay::close_conn(uint64_t id, const std::string& why) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    if (!why.empty()) closed(it->second->origin, why);
    scope_keys_.erase("#" + std::to_string(id));  // its own, if it had any
    conns_.erase(it);                             // closing the fds takes them out of the epoll set
}

// The server and what the client said of itself at startup; a connection
// of a protocol without one keeps its own ("#" and its number).
const std::string& Relay::keys_scope(Conn& c) const {
    if (!c.scoped) {
        std::string s = c.wire->scope();
        if (!s.empty()) {
            c.scope = c.origin.address + '\n' + s;  // the same for the connection's life
            c.scoped = true;
        } else if (c.scope.empty()) {
            c.scope = "#" + std::to_string(c.id);
        }
    }
    return c.scope;
}

const UniqueKeys& Relay::known_keys(Conn& c) {
    static const UniqueKeys kNone;
    auto it = scope_keys_.find(keys_scope(c));
    if (it == scope_keys_.end()) return kNone;
    if (it->second.gen != keys_gen_ || boottime_ns() - it->second.since_ns > kKeysKeptNs) {
        scope_keys_.erase(it);
        return kNone;
    }
    return it->second.keys;
}

void Relay::learn_keys(Conn& c, UniqueKeys learned) {
    std::string scope = keys_scope(c);
    uint64_t now = boottime_ns();
    auto it = scope_keys_.find(scope);
    if (it == scope_keys_.end() && scope_keys_.size() >= kKeyScopesKept)
        scope_keys_.clear();  // many users or databases at once: learned again
    ScopeKeys& k = scope_keys_[scope];
    if (k.gen != keys_gen_ || now - k.since_ns > kKeysKeptNs) k = {keys_gen_, now, {}};
    for (auto& [table, keys] : learned) k.keys[table] = std::move(keys);
}

void Relay::closed(const Origin& o, const std::string& why) {
    {
        std::lock_guard lock(q_mu_);
        closings_.push_back({o, why});
    }
    uint64_t one = 1;
    (void)!::write(notify_.get(), &one, sizeof(one));
}

nlohmann::json Relay::describe() const {
    std::lock_guard lock(mu_);
    nlohmann::json j;
    j["active"] = true;
    j["port4"] = port4_;
    j["port6"] = port6_;
    nlohmann::json paths = nlohmann::json::array();
    for (const auto& [path, l] : unix_) paths.push_back(path);
    j["unix_sockets"] = paths;
    j["connections"] = conns_.size();
    j["accepted"] = accepted_;
    j["judged_requests"] = judged_;
    j["asked_daemon"] = asked_;
    j["refused_requests"] = refused_;
    j["held_requests"] = held_;
    j["unknown_connections"] = unknown_;
    j["key_scopes"] = scope_keys_.size();
    j["poll_us"] = poll_ns_ / 1000;
    j["waits_polled"] = polled_.load();
    j["waits_slept"] = slept_.load();
    return j;
}

}  // namespace ks::relay
