// databases.discover: the servers' listening sockets read from a tree laid
// out like /proc (comm, fd links, ns/net, net/tcp, tcp6, unix), and which of
// them the policy's endpoints already watch.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "db_guard/listeners.h"
#include "db_guard/server_builds.h"

namespace ks::db {
namespace {

namespace fs = std::filesystem;

class FakeProc {
  public:
    FakeProc() {
        char tmpl[] = "/tmp/ks-fakeproc-XXXXXX";
        root_ = ::mkdtemp(tmpl);
        fs::create_directories(root_ + "/self/ns");
        fs::create_directories(root_ + "/self/net");
        fs::create_symlink("net:[4026531840]", root_ + "/self/ns/net");
    }
    ~FakeProc() { fs::remove_all(root_); }
    void process(int pid, const std::string& comm, const std::vector<unsigned long>& sockets,
                 const std::string& net = "net:[4026531840]") {
        std::string dir = root_ + "/" + std::to_string(pid);
        fs::create_directories(dir + "/fd");
        fs::create_directories(dir + "/ns");
        std::ofstream(dir + "/comm") << comm << "\n";
        fs::create_symlink(net, dir + "/ns/net");
        int fd = 3;
        for (auto ino : sockets)
            fs::create_symlink("socket:[" + std::to_string(ino) + "]",
                               dir + "/fd/" + std::to_string(fd++));
        fs::create_symlink("/dev/null", dir + "/fd/0");
    }
    void exe(int pid, const std::string& path) {
        fs::create_symlink(path, root_ + "/" + std::to_string(pid) + "/exe");
    }
    void cmdline(int pid, const std::vector<std::string>& argv) {
        std::ofstream out(root_ + "/" + std::to_string(pid) + "/cmdline", std::ios::binary);
        for (const auto& a : argv) out << a << '\0';
    }
    // What a process's own network namespace shows (/proc/PID/net/NAME).
    void net_file(int pid, const std::string& name, const std::string& text) {
        fs::create_directories(root_ + "/" + std::to_string(pid) + "/net");
        std::ofstream(root_ + "/" + std::to_string(pid) + "/net/" + name) << text;
    }
    void file(const std::string& name, const std::string& text) {
        std::ofstream(root_ + "/self/net/" + name) << text;
    }
    [[nodiscard]] const std::string& root() const { return root_; }

  private:
    std::string root_;
};

const char* kTcpHeader =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n";

std::vector<std::string> names(const std::vector<Listener>& ls) {
    std::vector<std::string> out;
    for (const auto& l : ls) out.push_back(l.endpoint.str());
    return out;
}

TEST(DbListeners, EachServersListeningSocketsAndNothingElse) {
    FakeProc proc;
    // postgres: 127.0.0.1:55432 (listening), a connected socket, a unix
    // socket; redis-server: every IPv4 address on 6380 and ::1 on 6380;
    // mariadbd: IPv4-mapped ::ffff:127.0.0.1 on 3307 and an abstract socket;
    // bash: a listening socket too, but no database server; mongod in
    // another network namespace.
    proc.process(100, "postgres", {11, 12, 13});
    proc.process(200, "redis-server", {21, 22});
    proc.process(300, "mariadbd", {31, 32});
    proc.process(400, "bash", {41});
    proc.process(500, "mongod", {51}, "net:[4026532000]");
    // A tmux server: its socket is a deputy's.
    proc.process(600, "tmux: server", {61});
    proc.file("tcp", std::string(kTcpHeader) +
                         "   0: 0100007F:D888 00000000:0000 0A 00000000:00000000 00:00000000 "
                         "00000000   106        0 11 1 0000000000000000 100 0 0 10 0\n"
                         "   1: 0100007F:D888 0100007F:9C40 01 00000000:00000000 00:00000000 "
                         "00000000   106        0 12 1 0000000000000000 100 0 0 10 0\n"
                         "   2: 00000000:18CC 00000000:0000 0A 00000000:00000000 00:00000000 "
                         "00000000   106        0 21 1 0000000000000000 100 0 0 10 0\n"
                         "   3: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 "
                         "00000000     0        0 41 1 0000000000000000 100 0 0 10 0\n"
                         "   4: 00000000:6989 00000000:0000 0A 00000000:00000000 00:00000000 "
                         "00000000     0        0 51 1 0000000000000000 100 0 0 10 0\n");
    proc.file("tcp6",
              std::string(kTcpHeader) +
                  "   0: 00000000000000000000000001000000:18CC "
                  "00000000000000000000000000000000:0000 0A 00000000:00000000 "
                  "00:00000000 00000000   106        0 22 1 0000000000000000 100 0 0 10 0\n"
                  "   1: 0000000000000000FFFF00000100007F:0CEB "
                  "00000000000000000000000000000000:0000 0A 00000000:00000000 "
                  "00:00000000 00000000   106        0 31 1 0000000000000000 100 0 0 10 0\n");
    proc.file("unix",
              "Num       RefCount Protocol Flags    Type St Inode Path\n"
              "0000000000000000: 00000002 00000000 00010000 0001 01 13 /tmp/pg/.s.PGSQL.55432\n"
              "0000000000000000: 00000002 00000000 00010000 0001 01 32 @mariadb-abstract\n"
              "0000000000000000: 00000002 00000000 00010000 0001 01 61 /tmp/tmux-0/default\n");
    auto found = discover_listeners(proc.root());
    EXPECT_EQ(names(found),
              (std::vector<std::string>{
                  "postgres=127.0.0.1:55432", "postgres=/tmp/pg/.s.PGSQL.55432", "redis=*:6348",
                  "redis=[::1]:6348", "mysql=127.0.0.1:3307", "deputy=/tmp/tmux-0/default"}));
    ASSERT_FALSE(found.empty());
    EXPECT_EQ(found[0].pid, 100);
    EXPECT_EQ(found[0].server, "postgres");
}

// A server or proxy whose process has another name (started through a link
// of another name, or renamed by a wrapper) is known by its executable.
TEST(DbListeners, AServerUnderAnotherNameIsKnownByItsExecutable) {
    FakeProc proc;
    proc.process(100, "appdb", {11});
    proc.exe(100, "/usr/lib/postgresql/15/bin/postgres");
    proc.process(200, "cache", {21});
    // Debian's redis-server links to redis-check-rdb; its package was
    // upgraded under it.
    proc.exe(200, "/usr/bin/redis-check-rdb (deleted)");
    proc.process(300, "router", {31});
    proc.exe(300, "/usr/sbin/pgbouncer");
    proc.process(400, "tmuxish", {41});
    proc.exe(400, "/usr/bin/tmux");  // not a database: its name is no deputy's either
    proc.process(500, "myapp", {51});
    proc.exe(500, "/usr/bin/python3.11");
    std::string tcp = kTcpHeader;
    for (int i = 1; i <= 5; ++i)
        tcp += "   " + std::to_string(i) + ": 0100007F:" + std::to_string(7000 + i) +
               " 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 " +
               std::to_string(i * 10 + 1) + " 1 0000000000000000 100 0 0 10 0\n";
    proc.file("tcp", tcp);
    auto found = discover_listeners(proc.root());
    EXPECT_EQ(names(found),
              (std::vector<std::string>{"postgres=127.0.0.1:28673", "redis=127.0.0.1:28674",
                                        "postgres=127.0.0.1:28675"}));
    ASSERT_EQ(found.size(), 3u);
    EXPECT_EQ(found[0].server, "appdb (postgres)");
    EXPECT_EQ(found[2].via, "a postgres proxy");
}

// A copy of a server's executable under another name and path: the same
// program, known by its ELF build ID. The test's own binary stands for the
// server (any ELF file with a build ID does).
TEST(DbListeners, ACopyOfAServersExecutableUnderAnotherNameIsKnownByItsBuildId) {
    char tmpl[] = "/tmp/ks-builds-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    std::string self = fs::read_symlink("/proc/self/exe");
    fs::create_directories(dir + "/usr/lib/postgresql/15/bin");
    fs::copy_file(self, dir + "/usr/lib/postgresql/15/bin/postgres");
    fs::copy_file(self, dir + "/appsrv");
    std::ofstream(dir + "/notes.txt") << "not an executable\n";
    std::string id = elf_build_id(self);
    EXPECT_EQ(id.size(), 40u) << "no build ID in " << self;
    EXPECT_EQ(elf_build_id(dir + "/appsrv"), id);
    EXPECT_EQ(elf_build_id(dir + "/notes.txt"), "");
    EXPECT_EQ(elf_build_id(dir + "/missing"), "");

    ServerBuilds builds({dir + "/usr/lib/postgresql/*/bin/postgres"});
    EXPECT_EQ(builds.program_of(dir + "/appsrv"), "postgres");
    EXPECT_EQ(builds.program_of("/bin/sh"), "") << "another program";
    // Learned from a server that runs under its own name.
    ServerBuilds none(std::vector<std::string>{});
    EXPECT_EQ(none.program_of(dir + "/appsrv"), "");
    none.learn(dir + "/usr/lib/postgresql/15/bin/postgres", "postgres");
    EXPECT_EQ(none.program_of(dir + "/appsrv"), "postgres");

    FakeProc proc;
    proc.process(100, "appsrv", {11});
    proc.exe(100, dir + "/appsrv");
    proc.process(200, "myapp", {21});
    proc.exe(200, "/bin/sh");
    std::string tcp = kTcpHeader;
    for (int i = 1; i <= 2; ++i)
        tcp += "   " + std::to_string(i) + ": 0100007F:" + std::to_string(7000 + i) +
               " 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 " +
               std::to_string(i * 10 + 1) + " 1 0000000000000000 100 0 0 10 0\n";
    proc.file("tcp", tcp);
    EXPECT_TRUE(discover_listeners(proc.root()).empty()) << "by names alone: not found";
    auto found = discover_listeners(proc.root(), {}, &builds);
    EXPECT_EQ(names(found), (std::vector<std::string>{"postgres=127.0.0.1:28673"}));
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].server, "appsrv (a copy of postgres)");
    fs::remove_all(dir);
}

std::vector<std::string> routes_text(const std::vector<ForwardRoute>& routes) {
    std::vector<std::string> out;
    for (const auto& r : routes) {
        std::string line = r.listen + " ->";
        for (const auto& t : r.targets) line += " " + t;
        out.push_back(line);
    }
    return out;
}

TEST(DbListeners, HaproxysTcpFrontendsForwardToTheirBackendsServers) {
    auto routes = haproxy_routes({R"(
global
    daemon
defaults
    mode tcp   # every section below in TCP unless it says
frontend pg_front
    bind 127.0.0.1:6432,ipv6@[::1]:6432
    default_backend pg
frontend web
    mode http
    bind :8080
    default_backend pg
backend pg
    server primary 127.0.0.1:5432 check
    server local unix@/var/run/postgresql/.s.PGSQL.5432
)",
                                  R"(
listen redis
    bind :7000
    bind unix@/run/redis-fwd.sock
    bind abns@hidden
    server r1 127.0.0.1:6379
listen empty
    bind :7001
)"});
    EXPECT_EQ(routes_text(routes),
              (std::vector<std::string>{
                  "127.0.0.1:6432 -> 127.0.0.1:5432 /var/run/postgresql/.s.PGSQL.5432",
                  "[::1]:6432 -> 127.0.0.1:5432 /var/run/postgresql/.s.PGSQL.5432",
                  ":7000 -> 127.0.0.1:6379", "/run/redis-fwd.sock -> 127.0.0.1:6379"}))
        << "an HTTP frontend and a section with no server forward no database";
}

TEST(DbListeners, NginxStreamServersForwardToTheirProxyPass) {
    std::map<std::string, std::string> files = {{"/etc/nginx/streams/pg.conf", R"(
upstream pg { server 127.0.0.1:5432 max_fails=3; server unix:/run/pg.sock; }
server { listen 6433; proxy_pass pg; }
)"}};
    std::vector<std::string> asked;
    auto routes = nginx_stream_routes(R"(
user www-data;
events { worker_connections 768; }
http {
    server { listen 80; location / { proxy_pass http://127.0.0.1:5432; } }
}
stream {
    # a comment; { not a block }
    server {
        listen 127.0.0.1:6380;
        listen 6381 udp;
        proxy_pass "127.0.0.1:6379";
    }
    server { listen unix:/run/fwd.sock; proxy_pass unix:/run/redis.sock; }
    server { listen 6000; proxy_pass $upstream_by_map; }
    include /etc/nginx/streams/*.conf;
}
)",
                                      [&](const std::string& pattern) {
                                          asked.push_back(pattern);
                                          std::vector<std::string> out;
                                          for (const auto& [path, text] : files)
                                              if (path.rfind("/etc/nginx/streams/", 0) == 0)
                                                  out.push_back(text);
                                          return out;
                                      });
    EXPECT_EQ(asked, (std::vector<std::string>{"/etc/nginx/streams/*.conf"}));
    EXPECT_EQ(routes_text(routes),
              (std::vector<std::string>{"127.0.0.1:6380 -> 127.0.0.1:6379",
                                        "/run/fwd.sock -> /run/redis.sock",
                                        ":6433 -> 127.0.0.1:5432 /run/pg.sock"}))
        << "http's proxy_pass, a UDP listen and a variable's target are no database route";
}

// haproxy's configuration read where its command line says, under the
// process's root: only the listener whose backend is the database is its.
TEST(DbListeners, AHaproxyListenerIsTheDatabasesOnlyWhereItsBackendIsTheDatabase) {
    FakeProc proc;
    proc.process(100, "postgres", {11});
    proc.process(200, "haproxy", {21, 22});
    proc.cmdline(200, {"/usr/sbin/haproxy", "-Ws", "-f", "/etc/haproxy/haproxy.cfg"});
    fs::create_directories(proc.root() + "/200/root/etc/haproxy");
    std::ofstream(proc.root() + "/200/root/etc/haproxy/haproxy.cfg")
        << "defaults\n  mode tcp\nlisten db\n  bind 127.0.0.1:6432\n  server a "
           "127.0.0.1:5432\nlisten other\n  bind :9000\n  server b 127.0.0.1:9999\n";
    std::string tcp = kTcpHeader;
    auto line = [](int sl, const std::string& hex_port, int ino) {
        return "   " + std::to_string(sl) + ": 0100007F:" + hex_port +
               " 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 " +
               std::to_string(ino) + " 1 0000000000000000 100 0 0 10 0\n";
    };
    tcp += line(1, "1538", 11) + line(2, "1920", 21) + line(3, "2328", 22);  // 5432 6432 9000
    proc.file("tcp", tcp);
    auto found = discover_listeners(proc.root());
    EXPECT_EQ(names(found),
              (std::vector<std::string>{"postgres=127.0.0.1:5432", "postgres=127.0.0.1:6432"}));
    ASSERT_EQ(found.size(), 2u);
    EXPECT_EQ(found[1].via, "forwards to 127.0.0.1:5432");
}

// The names whose TCP listen() makes the daemon look at once
// (listen_watch.h): what discover_listeners() would look at.
TEST(DbListeners, ServersProxiesAndForwardersAreLookedAtWhenTheyListen) {
    for (const char* comm :
         {"postgres", "mariadbd", "mysqld", "redis-server", "mongod", "pgbouncer", "proxysql",
          "socat", "ssh", "docker-proxy", "haproxy", "nginx"})
        EXPECT_TRUE(db::listens_for_databases(comm)) << comm;
    for (const char* comm : {"apache2", "python3", "node", "sshd", "postgres2", ""})
        EXPECT_FALSE(db::listens_for_databases(comm)) << comm;
}

TEST(DbListeners, WhatTheEndpointsAlreadyWatchIsCovered) {
    auto ep = [](const std::string& spec) { return parse_endpoint(spec).value(); };
    std::vector<Endpoint> watched = {ep("postgres=*:5432"), ep("redis=127.0.0.1:6379"),
                                     ep("postgres=/run/postgresql/.s.PGSQL.*")};
    EXPECT_TRUE(covered(ep("postgres=127.0.0.1:5432"), watched)) << "every address";
    EXPECT_TRUE(covered(ep("postgres=*:5432"), watched));
    EXPECT_TRUE(covered(ep("redis=127.0.0.1:6379"), watched));
    EXPECT_FALSE(covered(ep("redis=[::1]:6379"), watched)) << "another address";
    EXPECT_FALSE(covered(ep("redis=*:6379"), watched)) << "more addresses than named";
    EXPECT_FALSE(covered(ep("mysql=*:5432"), watched)) << "another kind";
    EXPECT_TRUE(covered(ep("postgres=/run/postgresql/.s.PGSQL.5433"), watched)) << "a pattern";
    EXPECT_FALSE(covered(ep("postgres=/tmp/pg/.s.PGSQL.5432"), watched));
}

TEST(DbListeners, AForwardersTargetIsReadFromItsCommandLine) {
    using V = std::vector<std::string>;
    EXPECT_EQ(forward_targets("socat", {"socat", "-d", "TCP-LISTEN:6000,fork,reuseaddr",
                                        "TCP:127.0.0.1:5432,nodelay"}),
              V{"127.0.0.1:5432"});
    EXPECT_EQ(
        forward_targets("socat", {"socat", "tcp4-listen:6000", "tcp4-connect:localhost:6379"}),
        V{"localhost:6379"});
    EXPECT_EQ(forward_targets("socat", {"socat", "UNIX-LISTEN:/tmp/x.sock,fork",
                                        "UNIX-CONNECT:/run/postgresql/.s.PGSQL.5432"}),
              V{"/run/postgresql/.s.PGSQL.5432"});
    EXPECT_EQ(forward_targets("socat", {"socat", "-T", "10", "TCP-LISTEN:1", "EXEC:/bin/sh"}), V{})
        << "a program, not a forward";
    EXPECT_EQ(forward_targets("ssh", {"ssh", "-N", "-L", "6000:127.0.0.1:5432", "db.example"}),
              V{"127.0.0.1:5432"});
    EXPECT_EQ(forward_targets(
                  "ssh", {"ssh", "-L127.0.0.1:6001:[::1]:3306", "-L", "7000:/run/x.sock", "db"}),
              (V{"[::1]:3306", "/run/x.sock"}));
    EXPECT_EQ(forward_targets("nc", {"nc", "-l", "TCP:127.0.0.1:5432"}), V{}) << "not a forwarder";
}

// pgbouncer by name; socat by what it forwards to (a server's listener, a
// watched endpoint); never a process for merely holding a database
// connection, nor a forwarder whose target is no database.
TEST(DbListeners, LocalProxiesAndForwardersServeTheDatabaseBehindThem) {
    FakeProc proc;
    proc.process(100, "postgres", {11});
    proc.process(200, "pgbouncer", {21});
    proc.process(300, "socat", {31});
    proc.cmdline(300, {"socat", "TCP-LISTEN:6000,fork,reuseaddr", "TCP:127.0.0.1:5432"});
    proc.process(301, "socat", {32});  // to a port nothing watches
    proc.cmdline(301, {"socat", "TCP-LISTEN:6001,fork", "TCP:127.0.0.1:9999"});
    proc.process(302, "socat", {33});  // to the policy's redis
    proc.cmdline(302, {"socat", "UNIX-LISTEN:/tmp/r.sock,fork", "TCP:localhost:6379"});
    proc.process(400, "node", {41, 42});  // an application: HTTP on 8080, a connection to 5432
    proc.cmdline(400, {"node", "server.js", "--db", "TCP:127.0.0.1:5432"});
    auto line = [](int n, const std::string& local, const std::string& remote,
                   const std::string& st, int ino) {
        return "   " + std::to_string(n) + ": " + local + " " + remote + " " + st +
               " 00000000:00000000 00:00000000 00000000   106        0 " + std::to_string(ino) +
               " 1 0000000000000000 100 0 0 10 0\n";
    };
    proc.file("tcp", std::string(kTcpHeader) + line(0, "0100007F:1538", "00000000:0000", "0A", 11) +
                         line(1, "0100007F:1920", "00000000:0000", "0A", 21) +
                         line(2, "0100007F:1770", "00000000:0000", "0A", 31) +
                         line(3, "0100007F:1771", "00000000:0000", "0A", 32) +
                         line(4, "00000000:1F90", "00000000:0000", "0A", 41) +
                         line(5, "0100007F:9C40", "0100007F:1538", "01", 42));
    proc.file("tcp6", kTcpHeader);
    proc.file("unix",
              "Num       RefCount Protocol Flags    Type St Inode Path\n"
              "0000000000000000: 00000002 00000000 00010000 0001 01 33 /tmp/r.sock\n");
    auto found = discover_listeners(proc.root(), {parse_endpoint("redis=*:6379").value()});
    EXPECT_EQ(names(found),
              (std::vector<std::string>{"postgres=127.0.0.1:5432", "postgres=127.0.0.1:6432",
                                        "postgres=127.0.0.1:6000", "redis=/tmp/r.sock"}));
    ASSERT_EQ(found.size(), 4u);
    EXPECT_EQ(found[1].server, "pgbouncer");
    EXPECT_EQ(found[1].via, "a postgres proxy");
    EXPECT_EQ(found[2].pid, 300);
    EXPECT_EQ(found[2].via, "forwards to 127.0.0.1:5432");
    EXPECT_EQ(found[3].via, "forwards to localhost:6379");
}

// A server in a container (another network namespace) published on the
// host by a forwarder (docker-proxy, or socat to the container's address):
// the forwarder's port is that server's. A forwarder to this namespace's
// loopback is not taken for it: the container's loopback is not this one.
TEST(DbListeners, AForwarderToAServerInAnotherNetworkNamespaceServesThatServer) {
    FakeProc proc;
    const std::string other = "net:[4026532999]";
    proc.process(700, "postgres", {71}, other);
    proc.net_file(700, "tcp",
                  std::string(kTcpHeader) +
                      "   0: 00000000:1538 00000000:0000 0A 00000000:00000000 00:00000000 "
                      "00000000   106        0 71 1 0000000000000000 100 0 0 10 0\n");
    proc.net_file(700, "tcp6", kTcpHeader);
    proc.net_file(700, "unix", "Num       RefCount Protocol Flags    Type St Inode Path\n");
    proc.process(800, "docker-proxy", {81});
    proc.cmdline(800,
                 {"/usr/bin/docker-proxy", "-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port",
                  "15432", "-container-ip", "172.17.0.2", "-container-port", "5432"});
    proc.process(801, "socat", {82});
    proc.cmdline(801, {"socat", "TCP-LISTEN:15433,fork", "TCP:127.0.0.1:5432"});
    proc.file("tcp", std::string(kTcpHeader) +
                         "   0: 00000000:3C48 00000000:0000 0A 00000000:00000000 00:00000000 "
                         "00000000     0        0 81 1 0000000000000000 100 0 0 10 0\n"
                         "   1: 0100007F:3C49 00000000:0000 0A 00000000:00000000 00:00000000 "
                         "00000000     0        0 82 1 0000000000000000 100 0 0 10 0\n");
    proc.file("tcp6", kTcpHeader);
    proc.file("unix", "Num       RefCount Protocol Flags    Type St Inode Path\n");
    EXPECT_EQ(forward_targets("docker-proxy", {"docker-proxy", "-proto", "udp", "-container-ip",
                                               "172.17.0.2", "-container-port", "53"}),
              std::vector<std::string>{})
        << "UDP carries no database session";
    auto found = discover_listeners(proc.root());
    EXPECT_EQ(names(found), std::vector<std::string>{"postgres=*:15432"});
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].pid, 800);
    EXPECT_EQ(found[0].via, "forwards to 172.17.0.2:5432");
}

}  // namespace
}  // namespace ks::db
