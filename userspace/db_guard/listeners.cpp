#include "db_guard/listeners.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace ks::db {

namespace {

std::optional<Kind> server_kind(const std::string& comm) {
    if (comm == "postgres" || comm == "postmaster") return Kind::Postgres;
    if (comm == "mysqld" || comm == "mariadbd") return Kind::Mysql;
    if (comm == "redis-server") return Kind::Redis;
    if (comm == "mongod") return Kind::Mongodb;
    if (comm == "tmux: server" || comm == "screen" || comm == "SCREEN") return Kind::Deputy;
    return std::nullopt;
}

std::string read_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

std::string link_of(const std::string& path) {
    char buf[256];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// "socket:[12345]" -> 12345.
std::optional<unsigned long> socket_inode(const std::string& link) {
    if (link.rfind("socket:[", 0) != 0 || link.back() != ']') return std::nullopt;
    char* end = nullptr;
    unsigned long ino = std::strtoul(link.c_str() + 8, &end, 10);
    if (end != link.c_str() + link.size() - 1) return std::nullopt;
    return ino;
}

// /proc/net/tcp{,6}'s local_address: the address as the kernel holds it,
// 32-bit words in host order, then the port in hex. "" for every address.
std::optional<std::string> tcp_address(const std::string& field, bool v6) {
    auto colon = field.find(':');
    if (colon == std::string::npos) return std::nullopt;
    std::string hex = field.substr(0, colon);
    unsigned port = static_cast<unsigned>(std::strtoul(field.c_str() + colon + 1, nullptr, 16));
    if (port == 0 || port > 65535 || hex.size() != (v6 ? 32u : 8u)) return std::nullopt;
    uint8_t bytes[16] = {};
    for (size_t w = 0; w < hex.size() / 8; ++w) {
        uint32_t word =
            static_cast<uint32_t>(std::strtoul(hex.substr(w * 8, 8).c_str(), nullptr, 16));
        std::memcpy(bytes + w * 4, &word, 4);  // host order, as the kernel printed it
    }
    bool any = std::all_of(bytes, bytes + (v6 ? 16 : 4), [](uint8_t b) { return b == 0; });
    if (any) return "*:" + std::to_string(port);
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, text, sizeof(text));
    std::string host = text;
    if (v6 && host.rfind("::ffff:", 0) == 0 && host.find('.') != std::string::npos)
        host = host.substr(7);  // an IPv4-mapped address: as IPv4
    else if (v6)
        host = "[" + host + "]";
    return host + ":" + std::to_string(port);
}

// Listening sockets by inode: TCP "HOST:PORT" and unix paths.
std::map<unsigned long, std::string> listening(const std::string& net) {
    std::map<unsigned long, std::string> out;
    for (bool v6 : {false, true}) {
        std::ifstream in(net + (v6 ? "/tcp6" : "/tcp"));
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line)) {
            std::istringstream f(line);
            std::string sl, local, remote, st, queues, tr, retr, uid, timeout, inode;
            if (!(f >> sl >> local >> remote >> st >> queues >> tr >> retr >> uid >> timeout >>
                  inode))
                continue;
            if (st != "0A") continue;  // TCP_LISTEN
            if (auto a = tcp_address(local, v6)) out[std::strtoul(inode.c_str(), nullptr, 10)] = *a;
        }
    }
    std::ifstream in(net + "/unix");
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
        // Num RefCount Protocol Flags Type St Inode [Path]
        std::istringstream f(line);
        std::string num, refs, proto, flags, type, st, inode, path;
        if (!(f >> num >> refs >> proto >> flags >> type >> st >> inode)) continue;
        f >> path;
        // __SO_ACCEPTCON: listening; a path, not an abstract name.
        if (flags != "00010000" || path.empty() || path[0] != '/') continue;
        out[std::strtoul(inode.c_str(), nullptr, 10)] = path;
    }
    return out;
}

}  // namespace

std::vector<Listener> discover_listeners(const std::string& proc_root) {
    std::vector<Listener> out;
    std::string own_net = link_of(proc_root + "/self/ns/net");
    DIR* d = ::opendir(proc_root.c_str());
    if (!d) return out;
    struct Server {
        int pid;
        std::string comm;
        Kind kind;
        std::set<unsigned long> sockets;
    };
    std::vector<Server> servers;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
        std::string dir = proc_root + "/" + name;
        std::string comm = read_line(dir + "/comm");
        auto kind = server_kind(comm);
        if (!kind) continue;
        // In another network namespace its ports are not the ones guarded
        // clients here reach.
        if (own_net.empty() || link_of(dir + "/ns/net") != own_net) continue;
        Server s{std::atoi(name.c_str()), comm, *kind, {}};
        if (DIR* fds = ::opendir((dir + "/fd").c_str())) {
            while (dirent* f = ::readdir(fds))
                if (auto ino = socket_inode(link_of(dir + "/fd/" + f->d_name)))
                    s.sockets.insert(*ino);
            ::closedir(fds);
        }
        if (!s.sockets.empty()) servers.push_back(std::move(s));
    }
    ::closedir(d);
    if (servers.empty()) return out;
    auto sockets = listening(proc_root + "/self/net");
    std::set<std::string> seen;
    std::sort(servers.begin(), servers.end(),
              [](const Server& a, const Server& b) { return a.pid < b.pid; });
    for (const auto& s : servers)
        for (unsigned long ino : s.sockets) {
            auto it = sockets.find(ino);
            if (it == sockets.end()) continue;
            auto ep = parse_address(s.kind, it->second);
            if (!ep || !seen.insert(ep->str()).second) continue;
            out.push_back({std::move(*ep), s.pid, s.comm});
        }
    return out;
}

bool covered(const Endpoint& listener, const std::vector<Endpoint>& watched) {
    return std::any_of(watched.begin(), watched.end(), [&](const Endpoint& w) {
        if (w.kind != listener.kind) return false;
        if (listener.is_unix())
            return w.is_unix() &&
                   ::fnmatch(w.unix_path.c_str(), listener.unix_path.c_str(), FNM_PATHNAME) == 0;
        if (w.is_unix() || w.port != listener.port) return false;
        if (w.addrs.empty()) return true;  // every address
        return !listener.addrs.empty() &&
               std::all_of(listener.addrs.begin(), listener.addrs.end(), [&](const auto& a) {
                   return std::find(w.addrs.begin(), w.addrs.end(), a) != w.addrs.end();
               });
    });
}

}  // namespace ks::db
