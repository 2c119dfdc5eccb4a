#include "db_guard/listeners.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fnmatch.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "db_guard/server_builds.h"

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

// Database proxies and routers: each speaks its database's protocol on
// every socket it listens on.
std::optional<Kind> proxy_kind(const std::string& comm) {
    if (comm == "pgbouncer" || comm == "pgcat" || comm == "odyssey" || comm == "pgpool")
        return Kind::Postgres;
    if (comm == "proxysql" || comm == "mysqlrouter" || comm == "maxscale") return Kind::Mysql;
    if (comm == "nutcracker") return Kind::Redis;
    if (comm == "mongos") return Kind::Mongodb;
    return std::nullopt;
}

std::vector<std::string> read_argv(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<std::string> out;
    std::string arg;
    while (std::getline(in, arg, '\0')) out.push_back(arg);
    return out;
}

// The addresses a forwarder's target may name: as each kind's address.
bool reaches(const std::string& target, const std::vector<Endpoint>& endpoints, Kind& kind) {
    for (const auto& e : endpoints) {
        auto t = parse_address(e.kind, target);
        if (!t) continue;
        bool hit = false;
        if (e.is_unix() || t->is_unix())
            hit = e.is_unix() && t->is_unix() &&
                  ::fnmatch(e.unix_path.c_str(), t->unix_path.c_str(), FNM_PATHNAME) == 0;
        else
            hit = e.port == t->port &&
                  (e.addrs.empty() || t->addrs.empty() ||
                   std::any_of(t->addrs.begin(), t->addrs.end(), [&](const auto& a) {
                       return std::find(e.addrs.begin(), e.addrs.end(), a) != e.addrs.end();
                   }));
        if (hit) {
            kind = e.kind;
            return true;
        }
    }
    return false;
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

// The sockets a process holds, by inode.
std::set<unsigned long> socket_inodes(const std::string& dir) {
    std::set<unsigned long> out;
    if (DIR* fds = ::opendir((dir + "/fd").c_str())) {
        while (dirent* f = ::readdir(fds))
            if (auto ino = socket_inode(link_of(dir + "/fd/" + f->d_name))) out.insert(*ino);
        ::closedir(fds);
    }
    return out;
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

// The programs forward_targets() reads the command line of.
bool is_forwarder(const std::string& comm) {
    return comm == "socat" || comm == "ssh" || comm == "docker-proxy" || comm == "haproxy" ||
           comm == "nginx";
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// The files a pattern names (a directory: its *.cfg files, as haproxy
// reads one), under root (the process's /proc/PID/root), in glob order.
std::vector<std::string> config_texts(const std::string& root, const std::string& pattern,
                                      const char* in_directory = nullptr) {
    std::vector<std::string> out;
    glob_t g{};
    std::string full = root + pattern;
    struct stat st {};
    if (in_directory && ::stat(full.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        full += std::string("/") + in_directory;
    if (::glob(full.c_str(), 0, nullptr, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc && out.size() < 256; ++i)
            out.push_back(read_file(g.gl_pathv[i]));
    ::globfree(&g);
    return out;
}

// Words of a command line as nginx rewrites it ("nginx: master process
// /usr/sbin/nginx -c FILE", one string) or as given.
std::vector<std::string> words_of(const std::vector<std::string>& argv) {
    std::vector<std::string> out;
    for (const auto& a : argv) {
        std::istringstream in(a);
        for (std::string w; in >> w;) out.push_back(w);
    }
    return out;
}

// Where haproxy and nginx forward, from the configuration their command
// line names (proc_dir: /proc/PID; its root is where the paths are).
std::vector<ForwardRoute> configured_routes(const std::string& comm,
                                            const std::vector<std::string>& argv,
                                            const std::string& proc_dir) {
    std::string root = proc_dir + "/root";
    if (comm == "haproxy") {
        std::vector<std::string> files;
        for (size_t i = 1; i + 1 < argv.size(); ++i)
            if (argv[i] == "-f")
                for (auto& t : config_texts(root, argv[++i], "*.cfg"))
                    files.push_back(std::move(t));
        return haproxy_routes(files);
    }
    // nginx: -c FILE, else the Debian default; a worker's line has no -c,
    // its master's (the parent) has.
    auto conf_of = [](const std::vector<std::string>& w) -> std::string {
        for (size_t i = 0; i + 1 < w.size(); ++i)
            if (w[i] == "-c") return w[i + 1];
        return {};
    };
    std::vector<std::string> w = words_of(argv);
    std::string conf = conf_of(w);
    if (conf.empty() && std::find(w.begin(), w.end(), "worker") != w.end()) {
        std::string stat_line = read_line(proc_dir + "/stat");
        auto close = stat_line.rfind(')');  // after the name: state, ppid
        if (close != std::string::npos) {
            std::istringstream rest(stat_line.substr(close + 1));
            std::string state, ppid;
            rest >> state >> ppid;
            std::string parent = proc_dir.substr(0, proc_dir.rfind('/') + 1) + ppid;
            conf = conf_of(words_of(read_argv(parent + "/cmdline")));
        }
    }
    if (conf.empty()) conf = "/etc/nginx/nginx.conf";
    std::string conf_dir = conf.substr(0, conf.rfind('/') + 1);
    auto main = config_texts(root, conf);
    if (main.empty()) return {};
    return nginx_stream_routes(main[0], [&](const std::string& pattern) {
        return config_texts(root, pattern[0] == '/' ? pattern : conf_dir + pattern);
    });
}

// Whether a listener is the one a route names: the same unix path, or the
// same port (the route's address, when it names one, is not compared).
bool routed(const Endpoint& ep, const std::string& listen) {
    if (listen.empty()) return true;
    if (listen[0] == '/') return ep.is_unix() && ep.unix_path == listen;
    auto colon = listen.rfind(':');
    std::string port = colon == std::string::npos ? listen : listen.substr(colon + 1);
    return !ep.is_unix() && !port.empty() && port == std::to_string(ep.port);
}

// A TCP target that is not on loopback: it may be another network
// namespace's address (a container's), which a server there listens on.
bool remote_address(const std::string& target) {
    auto ep = parse_address(Kind::Postgres, target);
    if (!ep || ep->is_unix() || ep->addrs.empty()) return false;
    // ::1, and 127.0.0.0/8 as IPv4-mapped.
    const std::array<uint8_t, 16> v6lo = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const std::array<uint8_t, 13> v4lo = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127};
    return std::none_of(ep->addrs.begin(), ep->addrs.end(), [&](const auto& a) {
        return a == v6lo || std::equal(v4lo.begin(), v4lo.end(), a.begin());
    });
}

// socat's address "TYPE:REST[,OPTIONS]": the target of a connecting type.
std::optional<std::string> socat_target(const std::string& arg) {
    auto colon = arg.find(':');
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    std::string type = arg.substr(0, colon);
    for (auto& ch : type) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    std::string rest = arg.substr(colon + 1);
    rest = rest.substr(0, rest.find(','));
    if (rest.empty()) return std::nullopt;
    static const char* kTcp[] = {"TCP",          "TCP4",         "TCP6",    "TCP-CONNECT",
                                 "TCP4-CONNECT", "TCP6-CONNECT", "OPENSSL", "OPENSSL-CONNECT",
                                 "SSL"};
    for (const char* t : kTcp)
        if (type == t) return rest;
    if (type == "UNIX-CONNECT" || type == "UNIX-CLIENT" || type == "UNIX") return rest;
    return std::nullopt;
}

// ssh -L [BIND:]PORT:HOST:HOSTPORT, or ...:/REMOTE/SOCKET: HOST:HOSTPORT or
// the socket.
std::optional<std::string> ssh_target(const std::string& spec) {
    auto last = spec.rfind(':');
    if (last == std::string::npos) return std::nullopt;
    std::string tail = spec.substr(last + 1);
    if (!tail.empty() && tail[0] == '/') return tail;
    // A remote socket path holds no colon; HOST:HOSTPORT's host may be [v6].
    std::string head = spec.substr(0, last);
    std::string host;
    if (!head.empty() && head.back() == ']') {
        auto open = head.rfind('[');
        if (open == std::string::npos) return std::nullopt;
        host = head.substr(open);
    } else {
        auto prev = head.rfind(':');
        if (prev == std::string::npos) return std::nullopt;  // PORT:/path was handled above
        host = head.substr(prev + 1);
    }
    if (host.empty() || tail.empty()) return std::nullopt;
    return host + ":" + tail;
}

}  // namespace

std::vector<ForwardRoute> forward_routes(const std::string& comm,
                                         const std::vector<std::string>& argv,
                                         const std::string& proc_dir) {
    if (comm == "haproxy" || comm == "nginx") return configured_routes(comm, argv, proc_dir);
    auto targets = forward_targets(comm, argv);
    if (targets.empty()) return {};
    return {ForwardRoute{"", std::move(targets)}};
}

std::vector<std::string> forward_targets(const std::string& comm,
                                         const std::vector<std::string>& argv) {
    std::vector<std::string> out;
    if (comm == "socat") {
        for (size_t i = 1; i < argv.size(); ++i)
            if (!argv[i].empty() && argv[i][0] != '-')
                if (auto t = socat_target(argv[i])) out.push_back(*t);
    } else if (comm == "docker-proxy") {
        // -proto tcp -host-ip H -host-port P -container-ip C -container-port Q
        std::string proto = "tcp", ip, port;
        for (size_t i = 1; i + 1 < argv.size(); ++i) {
            if (argv[i] == "-proto") proto = argv[i + 1];
            if (argv[i] == "-container-ip") ip = argv[i + 1];
            if (argv[i] == "-container-port") port = argv[i + 1];
        }
        if (proto == "tcp" && !ip.empty() && !port.empty())
            out.push_back(ip.find(':') != std::string::npos ? "[" + ip + "]:" + port
                                                            : ip + ":" + port);
    } else if (comm == "ssh") {
        for (size_t i = 1; i < argv.size(); ++i) {
            std::string spec;
            if (argv[i] == "-L" && i + 1 < argv.size())
                spec = argv[++i];
            else if (argv[i].rfind("-L", 0) == 0 && argv[i].size() > 2)
                spec = argv[i].substr(2);
            if (auto t = spec.empty() ? std::nullopt : ssh_target(spec)) out.push_back(*t);
        }
    }
    return out;
}

std::vector<Listener> discover_listeners(const std::string& proc_root,
                                         const std::vector<Endpoint>& watched,
                                         ServerBuilds* builds) {
    std::vector<Listener> out;
    if (builds) builds->refresh();
    std::string own_net = link_of(proc_root + "/self/ns/net");
    if (own_net.empty()) return out;  // no namespace to tell ours from another
    DIR* d = ::opendir(proc_root.c_str());
    if (!d) return out;
    struct Server {
        int pid;
        std::string comm;
        std::optional<Kind> kind;          // unset: a forwarder, of its target's kind
        std::vector<ForwardRoute> routes;  // a forwarder's
        std::string via;                   // a proxy's
        std::set<unsigned long> sockets;
    };
    std::vector<Server> servers, forwarders;
    // Database servers in other network namespaces: read only when a
    // forwarder here has a target off loopback that nothing here serves.
    struct Remote {
        std::string dir, net;
        Kind kind;
    };
    std::vector<Remote> remotes;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
        std::string dir = proc_root + "/" + name;
        std::string comm = read_line(dir + "/comm");
        Server s{std::atoi(name.c_str()), comm, server_kind(comm), {}, {}, {}};
        bool by_name = s.kind || proxy_kind(comm);
        if (by_name && builds && (!s.kind || *s.kind != Kind::Deputy) &&
            executable_name(dir) == comm)
            builds->learn(dir + "/exe", comm);  // a server's own executable
        if (!by_name && !is_forwarder(comm)) {
            // A server or proxy under another name (started through a link
            // of another name, or renamed by a wrapper): its executable
            // says what it is; a copy of it under another name, its build ID.
            std::string exe = executable_name(dir), what = exe;
            auto k = server_kind(exe);
            if (!k || *k == Kind::Deputy) k = proxy_kind(exe);
            if (!k && builds) {
                if (std::string copy = builds->program_of(dir + "/exe"); !copy.empty()) {
                    k = server_kind(copy) ? server_kind(copy) : proxy_kind(copy);
                    exe = copy;
                    what = "a copy of " + copy;
                }
            }
            if (k) {
                s.comm = comm + " (" + what + ")";
                comm = exe;
                s.kind = server_kind(exe);
            }
        }
        if (!s.kind) {
            if ((s.kind = proxy_kind(comm)))
                s.via = "a " + std::string(kind_name(*s.kind)) + " proxy";
            else if (!is_forwarder(comm))
                continue;  // most processes: their command line is not read
            else if ((s.routes = forward_routes(comm, read_argv(dir + "/cmdline"), dir)).empty())
                continue;
        }
        std::string net = link_of(dir + "/ns/net");
        if (net != own_net) {
            // A server in another network namespace (a container): its ports
            // are not the ones guarded clients here reach, but a forwarder
            // here (docker-proxy, socat) may lead to them.
            if (s.kind && *s.kind != Kind::Deputy && s.via.empty())
                remotes.push_back({dir, net, *s.kind});
            continue;
        }
        s.sockets = socket_inodes(dir);
        if (s.sockets.empty()) continue;
        (s.kind ? servers : forwarders).push_back(std::move(s));
    }
    ::closedir(d);
    if (servers.empty() && forwarders.empty()) return out;
    auto sockets = listening(proc_root + "/self/net");
    std::set<std::string> seen;
    auto by_pid = [](const Server& a, const Server& b) { return a.pid < b.pid; };
    // listen: only that listener of the process (a route's; empty: all).
    auto list = [&](const Server& s, Kind kind, const std::string& via,
                    const std::string& listen = "") {
        for (unsigned long ino : s.sockets) {
            auto it = sockets.find(ino);
            if (it == sockets.end()) continue;
            auto ep = parse_address(kind, it->second);
            if (!ep || !routed(*ep, listen) || !seen.insert(ep->str()).second) continue;
            out.push_back({std::move(*ep), s.pid, s.comm, via});
        }
    };
    std::sort(servers.begin(), servers.end(), by_pid);
    for (const auto& s : servers) list(s, *s.kind, s.via);
    // A forwarder serves what its target is: a watched endpoint or one of the
    // servers' (or proxies') listeners found above.
    std::vector<Endpoint> targets = watched;
    for (const auto& l : out) targets.push_back(l.endpoint);
    // Their TCP listeners, as their own namespace shows them (one read of
    // its tables per namespace); at most once.
    std::optional<std::vector<Endpoint>> elsewhere;
    auto remote_listeners = [&]() -> const std::vector<Endpoint>& {
        if (elsewhere) return *elsewhere;
        elsewhere.emplace();
        std::map<std::string, std::map<unsigned long, std::string>> tables;
        for (const auto& r : remotes) {
            auto t = tables.find(r.net);
            if (t == tables.end()) t = tables.emplace(r.net, listening(r.dir + "/net")).first;
            for (unsigned long ino : socket_inodes(r.dir))
                if (auto it = t->second.find(ino); it != t->second.end() && it->second[0] != '/')
                    if (auto ep = parse_address(r.kind, it->second)) elsewhere->push_back(*ep);
        }
        return *elsewhere;
    };
    std::sort(forwarders.begin(), forwarders.end(), by_pid);
    for (const auto& f : forwarders)
        for (const auto& route : f.routes)
            for (const auto& t : route.targets) {
                Kind kind{};
                if (!reaches(t, targets, kind) &&
                    !(remote_address(t) && reaches(t, remote_listeners(), kind)))
                    continue;
                list(f, kind, "forwards to " + t, route.listen);
                break;
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

std::string executable_name(const std::string& proc_dir) {
    std::string exe = link_of(proc_dir + "/exe");
    if (exe.size() > 10 && exe.ends_with(" (deleted)")) exe.resize(exe.size() - 10);
    exe = exe.substr(exe.rfind('/') + 1);
    // Debian's redis-server is a link to redis-check-rdb (one program that
    // reads its argv[0]).
    return exe == "redis-check-rdb" ? "redis-server" : exe;
}

bool listens_for_databases(const std::string& comm) {
    return server_kind(comm) || proxy_kind(comm) || is_forwarder(comm);
}

}  // namespace ks::db
