// databases.discover: a database server on ports and sockets the policy does
// not name (a private port, a private unix socket directory) is watched all
// the same, found from the server's own process: one running when the daemon
// starts, and one started after it. Real PostgreSQL and Redis servers of the
// test's own (db_servers.h); the daemon with its built-in policy, no --db.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "db_servers.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;

// What the daemon says it found (status databases_discovered).
std::vector<std::string> discovered(const Daemon& d) {
    std::vector<std::string> out;
    auto st = d.cli({"status", "--json"});
    auto j = json::parse(st.out, nullptr, false);
    if (j.is_discarded()) return out;
    for (const auto& e : j.value("databases_discovered", json::array()))
        out.push_back(e.value("endpoint", ""));
    return out;
}

// The first db_listeners record that names an endpoint (null: none).
json first_naming(const Daemon& d, const std::string& endpoint) {
    for (const auto& r : d.records())
        if (r.value("event", "") == "db_listeners")
            for (const auto& e : r.value("discovered", json::array()))
                if (e.value("endpoint", "") == endpoint) return r;
    return nullptr;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

// Once the daemon says it watches an endpoint (within 15 s), the first
// db_listeners record that names it; null if it never did.
json watched_record(const Daemon& d, const std::string& endpoint) {
    if (!wait_until([&] { return has(discovered(d), endpoint); }, std::chrono::seconds(15)))
        return nullptr;
    return first_naming(d, endpoint);
}

TEST(DbListeners, AServerOnPortsThePolicyDoesNotNameIsWatchedFromItsOwnProcess) {
    KS_REQUIRE_ROOT();
    PgServer pg;
    if (!pg.ok()) GTEST_SKIP() << pg.why();
    ASSERT_EQ(pg.query("CREATE TABLE kept (id int); INSERT INTO kept VALUES (1), (2); "
                       "CREATE TABLE gone (id int); INSERT INTO gone VALUES (1)"),
              "");
    // Unguarded, over the private port: the table is dropped.
    auto plain = run_command(pg.psql("127.0.0.1", "DROP TABLE gone"));
    ASSERT_EQ(plain.status, 0) << plain.err;
    ASSERT_EQ(pg.query("SELECT count(*) FROM pg_tables WHERE tablename = 'gone'"), "0");

    // The built-in policy names port 5432 and the standard sockets only.
    Daemon d(Daemon::Options{});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto found = discovered(d);
    EXPECT_TRUE(has(found, "postgres=127.0.0.1:" + pg.port())) << json(found).dump();
    std::string sock = pg.socket_dir() + "/.s.PGSQL." + pg.port();
    EXPECT_TRUE(has(found, "postgres=" + sock)) << json(found).dump();

    // Guarded, over TCP and over the private socket: refused, in the
    // protocol's error, and the table keeps its rows.
    auto tcp = run_guarded(d, "listeners-tcp", pg.psql("127.0.0.1", "DROP TABLE kept"));
    EXPECT_NE(tcp.err.find("killswitch: refused DROP TABLE kept"), std::string::npos) << tcp.err;
    auto unix_socket = run_guarded(d, "listeners-unix", pg.psql(pg.socket_dir(), "TRUNCATE kept"));
    EXPECT_NE(unix_socket.err.find("killswitch: refused TRUNCATE kept"), std::string::npos)
        << unix_socket.err;
    EXPECT_EQ(pg.query("SELECT count(*) FROM kept"), "2");
    auto recs = db_records_of(d, "listeners-tcp", 1);
    ASSERT_FALSE(recs.empty());
    EXPECT_EQ(recs[0].value("rule", ""), "db:drop") << recs[0].dump();

    // A server started after the daemon: watched as it begins to listen on
    // TCP (the kernel's note of the listen, db_listen.bpf.c), and said so in
    // the record.
    RedisServer redis;
    if (!redis.ok()) GTEST_SKIP() << redis.why();
    ASSERT_EQ(redis.command({"SET", "k1", "v"}), "OK");
    json first = watched_record(d, "redis=127.0.0.1:" + redis.port());
    ASSERT_FALSE(first.is_null()) << json(discovered(d)).dump();
    ASSERT_TRUE(first["trigger"].is_object()) << "found by the periodic scan: " << first.dump();
    EXPECT_EQ(first["trigger"]["listen"].value("comm", ""), "redis-server") << first.dump();
    EXPECT_EQ(std::to_string(first["trigger"]["listen"].value("port", 0)), redis.port());
    EXPECT_GT(first["trigger"].value("after_ns", 0ull), 0ull);
    auto flush = run_guarded(d, "listeners-redis", redis.cli({"FLUSHALL"}));
    EXPECT_NE(flush.out.find("ERR killswitch: refused FLUSHALL"), std::string::npos)
        << flush.out << flush.err;
    EXPECT_EQ(redis.command({"GET", "k1"}), "v");
    bool recorded = false;
    for (const auto& r : d.records())
        if (r.value("event", "") == "db_listeners")
            for (const auto& e : r.value("discovered", json::array()))
                recorded = recorded || e.value("endpoint", "") == "redis=127.0.0.1:" + redis.port();
    EXPECT_TRUE(recorded) << "no db_listeners record names the Redis server";
}

// A server started under another name (through a link, as a wrapper or an
// init script may): its process is not named redis-server, its executable is.
TEST(DbListeners, AServerUnderAnotherNameIsWatchedByItsExecutable) {
    KS_REQUIRE_ROOT();
    TempDir bin;
    std::string link = bin.path() + "/cachesrv";
    ASSERT_EQ(::symlink("/usr/bin/redis-server", link.c_str()), 0);
    RedisServer redis(link);
    if (!redis.ok()) GTEST_SKIP() << redis.why();
    std::string dir = redis.socket().substr(0, redis.socket().rfind('/'));
    std::ifstream comm_of("/proc/" + read_pid_file(dir + "/redis.pid") + "/comm");
    std::string comm;
    std::getline(comm_of, comm);
    EXPECT_EQ(comm, "cachesrv") << "the server runs under the link's name";
    // Unprotected: FLUSHALL loses every key.
    ASSERT_EQ(redis.command({"SET", "k1", "v"}), "OK");
    ASSERT_EQ(redis.command({"FLUSHALL"}), "OK");
    ASSERT_EQ(redis.command({"GET", "k1"}), "");
    ASSERT_EQ(redis.command({"SET", "k1", "v"}), "OK");

    Daemon d(Daemon::Options{});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    ASSERT_TRUE(wait_until([&] { return has(discovered(d), "redis=127.0.0.1:" + redis.port()); },
                           std::chrono::seconds(15)))
        << json(discovered(d)).dump();
    auto flush = run_guarded(d, "listeners-renamed", redis.cli({"FLUSHALL"}));
    EXPECT_NE(flush.out.find("ERR killswitch: refused FLUSHALL"), std::string::npos)
        << flush.out << flush.err;
    EXPECT_EQ(redis.command({"GET", "k1"}), "v");
    bool named = false;
    for (const auto& r : d.records())
        if (r.value("event", "") == "db_listeners")
            for (const auto& e : r.value("discovered", json::array()))
                named = named || e.value("server", "") == "cachesrv (redis-server)";
    EXPECT_TRUE(named) << "the record names the process and its executable";
}

// A copy of the server's executable under another name and path, started
// after the daemon: neither its name nor its executable's says Redis, its
// build ID does; watched as it listens.
TEST(DbListeners, ACopyOfAServersExecutableIsWatchedByItsBuildId) {
    KS_REQUIRE_ROOT();
    TempDir bin;
    std::string copy = bin.path() + "/kvstore";
    std::error_code ec;
    std::filesystem::copy_file("/usr/bin/redis-server", copy, ec);  // the link's target
    ASSERT_FALSE(ec) << ec.message();
    Daemon d(Daemon::Options{});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    RedisServer redis(copy);
    if (!redis.ok()) GTEST_SKIP() << redis.why();
    std::string dir = redis.socket().substr(0, redis.socket().rfind('/'));
    std::string pid = read_pid_file(dir + "/redis.pid");
    std::ifstream comm_of("/proc/" + pid + "/comm");
    std::string comm;
    std::getline(comm_of, comm);
    EXPECT_EQ(comm, "kvstore");
    EXPECT_EQ(std::filesystem::read_symlink("/proc/" + pid + "/exe").string(), copy);
    ASSERT_EQ(redis.command({"SET", "k1", "v"}), "OK");
    json first = watched_record(d, "redis=127.0.0.1:" + redis.port());
    ASSERT_FALSE(first.is_null()) << json(discovered(d)).dump();
    EXPECT_TRUE(first["trigger"].is_object()) << "found by the periodic scan: " << first.dump();
    bool named = false;
    for (const auto& e : first.value("discovered", json::array()))
        named = named || e.value("server", "") == "kvstore (a copy of redis-server)";
    EXPECT_TRUE(named) << first.dump();
    // Unguarded the copy is a Redis like any other: FLUSHALL empties it.
    ASSERT_EQ(redis.command({"SET", "k0", "v"}), "OK");
    ASSERT_EQ(redis.command({"FLUSHALL"}), "OK");
    ASSERT_EQ(redis.command({"GET", "k0"}), "");
    ASSERT_EQ(redis.command({"SET", "k1", "v"}), "OK");
    auto flush = run_guarded(d, "listeners-copy", redis.cli({"FLUSHALL"}));
    EXPECT_NE(flush.out.find("ERR killswitch: refused FLUSHALL"), std::string::npos)
        << flush.out << flush.err;
    EXPECT_EQ(redis.command({"GET", "k1"}), "v");
}

// A forwarder the test starts (socat, in a process group of its own): ended
// with its children (one per connection) when the test is done.
class Forwarder {
  public:
    Forwarder(const std::string& listen, const std::string& target)
        : Forwarder({"socat", listen, target}) {}
    // Any forwarder's command line (haproxy, nginx in the foreground).
    explicit Forwarder(const std::vector<std::string>& argv) {
        pid_ = ::fork();
        if (pid_ == 0) {
            ::setpgid(0, 0);
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
        ::setpgid(pid_, pid_);
    }
    ~Forwarder() {
        if (pid_ <= 0) return;
        ::kill(-pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
    }
    Forwarder(const Forwarder&) = delete;
    Forwarder& operator=(const Forwarder&) = delete;

  private:
    pid_t pid_ = -1;
};

// psql through another port (a forwarder's) instead of the server's.
std::vector<std::string> via_port(std::vector<std::string> argv, const std::string& port) {
    for (size_t i = 0; i + 1 < argv.size(); ++i)
        if (argv[i] == "-p") argv[i + 1] = port;
    return argv;
}

// A local forwarder in front of the server (socat, as an agent might find
// or start one outside its session): what a guarded client sends through it
// is judged as at the server, over TCP and over a unix socket, whether the
// forwarder ran before the daemon or started after it.
TEST(DbListeners, AClientThroughALocalForwarderIsJudgedAsAtTheServer) {
    KS_REQUIRE_ROOT();
    if (run_command({"sh", "-c", "command -v socat"}).status != 0)
        GTEST_SKIP() << "socat is missing (scripts/deps.sh --test installs it)";
    PgServer pg;
    if (!pg.ok()) GTEST_SKIP() << pg.why();
    ASSERT_EQ(pg.query("CREATE TABLE kept (id int); INSERT INTO kept VALUES (1), (2); "
                       "CREATE TABLE gone (id int); INSERT INTO gone VALUES (1)"),
              "");
    std::string tport = private_port(40000), uport = private_port(45000);
    Forwarder tcp("TCP-LISTEN:" + tport + ",bind=127.0.0.1,fork,reuseaddr",
                  "TCP:127.0.0.1:" + pg.port());
    ASSERT_TRUE(wait_until(
        [&] { return run_command(via_port(pg.psql("127.0.0.1", "SELECT 1"), tport)).status == 0; },
        std::chrono::seconds(10)))
        << "the forwarder does not answer on " << tport;
    // Unprotected, through the forwarder: the table is dropped.
    auto plain = run_command(via_port(pg.psql("127.0.0.1", "DROP TABLE gone"), tport));
    ASSERT_EQ(plain.status, 0) << plain.err;
    ASSERT_EQ(pg.query("SELECT count(*) FROM pg_tables WHERE tablename = 'gone'"), "0");

    Daemon d(Daemon::Options{});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    std::string tcp_ep = "postgres=127.0.0.1:" + tport;
    EXPECT_TRUE(has(discovered(d), tcp_ep)) << json(discovered(d)).dump();
    auto dropped =
        run_guarded(d, "forwarder-tcp", via_port(pg.psql("127.0.0.1", "DROP TABLE kept"), tport));
    EXPECT_NE(dropped.status, 0);
    EXPECT_NE(dropped.err.find("killswitch: refused DROP TABLE kept"), std::string::npos)
        << dropped.err;
    auto read = run_guarded(d, "forwarder-read",
                            via_port(pg.psql("127.0.0.1", "SELECT count(*) FROM kept"), tport));
    EXPECT_EQ(read.status, 0) << read.err;
    EXPECT_EQ(read.out, "2\n") << "ordinary work through the forwarder";

    // A second forwarder, on a unix socket, started after the daemon: found
    // within the discovery's period.
    std::string dir = pg.socket_dir() + "/fwd";
    std::filesystem::create_directories(dir);
    Forwarder unix_fwd("UNIX-LISTEN:" + dir + "/.s.PGSQL." + uport + ",fork,mode=777",
                       "UNIX-CONNECT:" + pg.socket_dir() + "/.s.PGSQL." + pg.port());
    std::string unix_ep = "postgres=" + dir + "/.s.PGSQL." + uport;
    ASSERT_TRUE(wait_until([&] { return has(discovered(d), unix_ep); }, std::chrono::seconds(15)))
        << json(discovered(d)).dump();
    auto truncated =
        run_guarded(d, "forwarder-unix", via_port(pg.psql(dir, "TRUNCATE kept"), uport));
    EXPECT_NE(truncated.err.find("killswitch: refused TRUNCATE kept"), std::string::npos)
        << truncated.err;
    EXPECT_EQ(pg.query("SELECT count(*) FROM kept"), "2");

    auto recs = db_records_of(d, "forwarder-tcp", 1);
    ASSERT_FALSE(recs.empty());
    EXPECT_EQ(recs[0].value("rule", ""), "db:drop") << recs[0].dump();
    std::string via;
    for (const auto& r : d.records())
        if (r.value("event", "") == "db_listeners")
            for (const auto& e : r.value("discovered", json::array()))
                if (e.value("endpoint", "") == tcp_ep) via = e.value("via", "");
    EXPECT_EQ(via, "forwards to 127.0.0.1:" + pg.port());
}

// haproxy and nginx (stream) in front of the server, each from its own
// configuration file: the listener whose backend is the database is judged
// as the database; another of the same haproxy is not.
TEST(DbListeners, HaproxyAndNginxInFrontOfTheServerAreFoundFromTheirConfiguration) {
    KS_REQUIRE_ROOT();
    for (const char* tool : {"haproxy", "nginx"})
        if (run_command({"sh", "-c", std::string("command -v ") + tool}).status != 0)
            GTEST_SKIP() << tool << " is missing (scripts/deps.sh --test installs it)";
    const std::string stream_module = "/usr/lib/nginx/modules/ngx_stream_module.so";
    if (!std::filesystem::exists(stream_module))
        GTEST_SKIP() << "nginx's stream module is missing (libnginx-mod-stream)";
    PgServer pg;
    if (!pg.ok()) GTEST_SKIP() << pg.why();
    ASSERT_EQ(pg.query("CREATE TABLE kept (id int); INSERT INTO kept VALUES (1), (2); "
                       "CREATE TABLE gone (id int); INSERT INTO gone VALUES (1)"),
              "");
    TempDir conf;
    std::string hport = private_port(30000), other = private_port(35000),
                nport = private_port(50000);
    std::ofstream(conf.path() + "/haproxy.cfg")
        << "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n"
           "  timeout server 60s\nfrontend pg_front\n  bind 127.0.0.1:"
        << hport << "\n  default_backend pg\nbackend pg\n  server db 127.0.0.1:" << pg.port()
        << "\nlisten other\n  bind 127.0.0.1:" << other << "\n  server x 127.0.0.1:9\n";
    std::filesystem::create_directories(conf.path() + "/streams");
    std::ofstream(conf.path() + "/nginx.conf")
        << "load_module " << stream_module << ";\npid " << conf.path()
        << "/nginx.pid;\nworker_processes 1;\nevents { worker_connections 64; }\n"
           "stream { include streams/*.conf; }\n";
    std::ofstream(conf.path() + "/streams/pg.conf")
        << "upstream pg { server 127.0.0.1:" << pg.port()
        << "; }\nserver { listen 127.0.0.1:" << nport << "; proxy_pass pg; }\n";
    auto answers = [&](const std::string& port) {
        return wait_until(
            [&] {
                return run_command(via_port(pg.psql("127.0.0.1", "SELECT 1"), port)).status == 0;
            },
            std::chrono::seconds(10));
    };
    Forwarder haproxy({"haproxy", "-db", "-f", conf.path() + "/haproxy.cfg"});
    ASSERT_TRUE(answers(hport)) << "haproxy does not answer on " << hport;
    // Unprotected, through haproxy: the table is dropped.
    auto plain = run_command(via_port(pg.psql("127.0.0.1", "DROP TABLE gone"), hport));
    ASSERT_EQ(plain.status, 0) << plain.err;
    ASSERT_EQ(pg.query("SELECT count(*) FROM pg_tables WHERE tablename = 'gone'"), "0");

    Daemon d(Daemon::Options{});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    std::string h_ep = "postgres=127.0.0.1:" + hport, n_ep = "postgres=127.0.0.1:" + nport;
    EXPECT_TRUE(has(discovered(d), h_ep)) << json(discovered(d)).dump();
    for (const auto& l : discovered(d))
        EXPECT_EQ(l.find(":" + other), std::string::npos)
            << "haproxy's other listener forwards to no database: " << l;
    // nginx, started after the daemon: found once it listens.
    Forwarder nginx({"nginx", "-e", conf.path() + "/error.log", "-c", conf.path() + "/nginx.conf",
                     "-g", "daemon off;"});
    ASSERT_TRUE(answers(nport)) << "nginx does not answer on " << nport;
    ASSERT_TRUE(wait_until([&] { return has(discovered(d), n_ep); }, std::chrono::seconds(15)))
        << json(discovered(d)).dump();

    auto dropped =
        run_guarded(d, "haproxy-drop", via_port(pg.psql("127.0.0.1", "DROP TABLE kept"), hport));
    EXPECT_NE(dropped.status, 0);
    EXPECT_NE(dropped.err.find("killswitch: refused DROP TABLE kept"), std::string::npos)
        << dropped.err;
    auto truncated =
        run_guarded(d, "nginx-truncate", via_port(pg.psql("127.0.0.1", "TRUNCATE kept"), nport));
    EXPECT_NE(truncated.err.find("killswitch: refused TRUNCATE kept"), std::string::npos)
        << truncated.err;
    auto read = run_guarded(d, "nginx-read",
                            via_port(pg.psql("127.0.0.1", "SELECT count(*) FROM kept"), nport));
    EXPECT_EQ(read.status, 0) << read.err;
    EXPECT_EQ(read.out, "2\n") << "ordinary work through nginx";
    EXPECT_EQ(pg.query("SELECT count(*) FROM kept"), "2");
    std::map<std::string, std::string> via;
    for (const auto& r : d.records())
        if (r.value("event", "") == "db_listeners")
            for (const auto& e : r.value("discovered", json::array()))
                via[e.value("endpoint", "")] = e.value("server", "") + " " + e.value("via", "");
    EXPECT_EQ(via[h_ep], "haproxy forwards to 127.0.0.1:" + pg.port());
    EXPECT_EQ(via[n_ep], "nginx forwards to 127.0.0.1:" + pg.port());
}

// A network namespace of the test's own, joined to this one by a veth pair
// (10.213.N.1 here, 10.213.N.2 there), removed with everything in it.
class TestNetns {
  public:
    TestNetns() {
        int n = ::getpid() % 250;
        name_ = "ks-fwd-" + std::to_string(::getpid());
        here_ = "ksfa" + std::to_string(::getpid());
        inside_ = "10.213." + std::to_string(n) + ".2";
        std::string outside = "10.213." + std::to_string(n) + ".1";
        std::string there = "ksfb" + std::to_string(::getpid());
        for (const auto& argv : std::vector<std::vector<std::string>>{
                 {"ip", "netns", "add", name_},
                 {"ip", "link", "add", here_, "type", "veth", "peer", "name", there},
                 {"ip", "link", "set", there, "netns", name_},
                 {"ip", "addr", "add", outside + "/30", "dev", here_},
                 {"ip", "link", "set", here_, "up"},
                 {"ip", "-n", name_, "addr", "add", inside_ + "/30", "dev", there},
                 {"ip", "-n", name_, "link", "set", there, "up"},
                 {"ip", "-n", name_, "link", "set", "lo", "up"}}) {
            auto r = run_command(argv);
            if (r.status != 0) {
                why_ = "network namespace set-up failed: " + r.err;
                return;
            }
        }
    }
    ~TestNetns() {
        run_command({"ip", "link", "del", here_});
        run_command({"ip", "netns", "del", name_});
    }
    TestNetns(const TestNetns&) = delete;
    TestNetns& operator=(const TestNetns&) = delete;
    [[nodiscard]] const std::string& why() const { return why_; }
    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] const std::string& inside() const { return inside_; }

  private:
    std::string name_, here_, inside_, why_;
};

// A Redis server in another network namespace (a container's, in kind),
// published here by a forwarder to its address (as docker-proxy does): the
// forwarder's port is watched as Redis, and a guarded FLUSHALL through it is
// refused while every key stays.
TEST(DbListeners, AServerInAnotherNetworkNamespaceIsJudgedThroughItsForwarder) {
    KS_REQUIRE_ROOT();
    if (run_command({"sh", "-c", "command -v socat && command -v redis-server"}).status != 0)
        GTEST_SKIP() << "socat or redis-server is missing (scripts/deps.sh --test installs them)";
    TestNetns ns;
    ASSERT_TRUE(ns.why().empty()) << ns.why();
    TempDir dir;
    std::string port = private_port(36000), fport = private_port(31000);
    auto r = run_command({"ip",
                          "netns",
                          "exec",
                          ns.name(),
                          "redis-server",
                          "--port",
                          port,
                          "--bind",
                          ns.inside(),
                          "--protected-mode",
                          "no",
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--dir",
                          dir.path(),
                          "--daemonize",
                          "yes",
                          "--pidfile",
                          dir.path() + "/redis.pid",
                          "--logfile",
                          dir.path() + "/redis.log"});
    ASSERT_EQ(r.status, 0) << r.err;
    struct StopRedis {
        std::string pidfile;
        ~StopRedis() { stop_pid(read_pid_file(pidfile)); }
    } stop{dir.path() + "/redis.pid"};
    auto inside = [&](std::vector<std::string> args) {
        std::vector<std::string> argv = {"redis-cli", "-h", ns.inside(), "-p", port};
        argv.insert(argv.end(), args.begin(), args.end());
        auto c = run_command(argv);
        return c.out.substr(0, c.out.find('\n'));
    };
    ASSERT_TRUE(wait_until([&] { return inside({"PING"}) == "PONG"; }, std::chrono::seconds(20)));
    Forwarder fwd("TCP-LISTEN:" + fport + ",bind=127.0.0.1,fork,reuseaddr",
                  "TCP:" + ns.inside() + ":" + port);
    auto through = [&](std::vector<std::string> args) {
        std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", fport};
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    };
    ASSERT_TRUE(wait_until([&] { return run_command(through({"PING"})).out == "PONG\n"; },
                           std::chrono::seconds(10)));
    // Unprotected, through the forwarder: every key is gone.
    ASSERT_EQ(inside({"MSET", "k1", "v", "k2", "v"}), "OK");
    ASSERT_EQ(run_command(through({"FLUSHALL"})).out, "OK\n");
    ASSERT_EQ(inside({"DBSIZE"}), "0");
    ASSERT_EQ(inside({"MSET", "k1", "v", "k2", "v"}), "OK");

    Daemon d(Daemon::Options{});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    std::string ep = "redis=127.0.0.1:" + fport;
    EXPECT_TRUE(has(discovered(d), ep)) << json(discovered(d)).dump();
    auto flush = run_guarded(d, "netns-fwd", through({"FLUSHALL"}));
    EXPECT_NE(flush.out.find("ERR killswitch: refused FLUSHALL"), std::string::npos)
        << flush.out << flush.err;
    auto get = run_guarded(d, "netns-get", through({"GET", "k1"}));
    EXPECT_EQ(get.out, "v\n") << "ordinary work through the forwarder: " << get.err;
    EXPECT_EQ(inside({"DBSIZE"}), "2");
}

// --db names exactly what to watch: nothing is discovered beside it.
TEST(DbListeners, AnExplicitListTurnsDiscoveryOff) {
    KS_REQUIRE_ROOT();
    PgServer pg;
    if (!pg.ok()) GTEST_SKIP() << pg.why();
    ASSERT_EQ(pg.query("CREATE TABLE t (id int); INSERT INTO t VALUES (1)"), "");
    Daemon d({.extra_args = {"--db", "postgres=127.0.0.1:1"}});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    EXPECT_TRUE(discovered(d).empty()) << json(discovered(d)).dump();
    auto r = run_guarded(d, "listeners-off", pg.psql("127.0.0.1", "DROP TABLE t"));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(pg.query("SELECT count(*) FROM pg_tables WHERE tablename = 't'"), "0")
        << "an endpoint nobody named was watched";
}

}  // namespace
}  // namespace ks::test
