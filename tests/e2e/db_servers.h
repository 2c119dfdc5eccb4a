// Database servers for the e2e tests, each the test's own: a private port
// on 127.0.0.1, data and sockets in a temporary folder, stopped (by the PID
// it started) when the object goes away. A server that cannot start says why
// (why()), and the tests that need it skip with that reason.
#pragma once

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "harness.h"

namespace ks::test {

namespace fs = std::filesystem;

// A port for this test process: base + something of the PID, so that test
// binaries running one after another do not collide on a slow teardown.
inline std::string private_port(int base) { return std::to_string(base + ::getpid() % 5000); }

inline std::string pg_bin() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec))
        if (fs::exists(e.path() / "bin/initdb")) return (e.path() / "bin").string();
    return "";
}

class PgServer {
  public:
    // data_dir: where initdb makes the cluster (a directory of the server's
    // own temporary folder when empty); it must not exist yet.
    explicit PgServer(const std::string& data_dir = "") {
        bin_ = pg_bin();
        struct passwd* pw = ::getpwnam("postgres");
        if (bin_.empty() || !pw) {
            why_ = "no PostgreSQL server installed (Debian package postgresql)";
            return;
        }
        ::chmod(dir_.path().c_str(), 0755);
        data_ = data_dir.empty() ? dir_ / "data" : data_dir;
        sock_ = dir_ / "sock";
        for (const auto& d : {data_, sock_}) {
            fs::create_directories(d);
            ::chown(d.c_str(), pw->pw_uid, pw->pw_gid);
        }
        port_ = private_port(20000);
        auto init = as_postgres(
            {bin_ + "/initdb", "-D", data_, "-A", "trust", "-U", "postgres", "--no-sync"});
        if (init.status != 0) {
            why_ = "initdb failed: " + init.err;
            return;
        }
        auto start = as_postgres(
            {bin_ + "/pg_ctl", "-D", data_, "-w", "-l", data_ + "/log", "-o",
             "-p " + port_ + " -k " + sock_ + " -c listen_addresses=127.0.0.1 -c fsync=off",
             "start"});
        if (start.status != 0) {
            why_ = "pg_ctl start failed: " + start.out + start.err;
            return;
        }
        started_ = true;
    }
    ~PgServer() {
        if (started_) as_postgres({bin_ + "/pg_ctl", "-D", data_, "-m", "immediate", "stop"});
    }
    [[nodiscard]] bool ok() const { return started_; }
    [[nodiscard]] const std::string& why() const { return why_; }
    [[nodiscard]] const std::string& port() const { return port_; }
    [[nodiscard]] const std::string& socket_dir() const { return sock_; }
    [[nodiscard]] const std::string& data_dir() const { return data_; }

    // psql arguments for host (the socket directory or 127.0.0.1).
    [[nodiscard]] std::vector<std::string> psql(const std::string& host,
                                                const std::string& sql) const {
        return {"psql",     "-X", "-q", "-A",  "-t", "-v",       "ON_ERROR_STOP=1",
                "-h",       host, "-p", port_, "-U", "postgres", "-d",
                "postgres", "-c", sql};
    }
    // As the test itself (unguarded): the ground truth.
    [[nodiscard]] std::string query(const std::string& sql) const {
        auto r = run_command(psql(sock_, sql));
        std::string out = r.out;
        while (!out.empty() && out.back() == '\n') out.pop_back();
        return r.status == 0 ? out : "ERROR " + r.err;
    }

  private:
    CommandResult as_postgres(std::vector<std::string> argv) const {
        argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
        return run_command(argv, std::chrono::seconds(60));
    }
    TempDir dir_;
    std::string bin_, data_, sock_, port_, why_;
    bool started_ = false;
};

inline std::string read_pid_file(const std::string& path) {
    std::ifstream f(path);
    std::string pid;
    std::getline(f, pid);
    return pid;
}

// Stops a server this test started: SIGTERM to the PID, then SIGKILL if it
// has not gone after a few seconds.
inline void stop_pid(const std::string& pid_text) {
    if (pid_text.empty()) return;
    pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid <= 1) return;
    ::kill(pid, SIGTERM);
    bool gone = wait_until([&] { return ::kill(pid, 0) != 0; }, std::chrono::seconds(10));
    if (!gone) ::kill(pid, SIGKILL);
}

class MariaDbServer {
  public:
    MariaDbServer() {
        if (::access("/usr/sbin/mariadbd", X_OK) != 0 ||
            ::access("/usr/bin/mariadb-install-db", X_OK) != 0) {
            why_ = "no MariaDB server installed (Debian package mariadb-server)";
            return;
        }
        data_ = dir_ / "data";
        port_ = private_port(30000);
        auto init =
            run_command({"mariadb-install-db", "--no-defaults", "--datadir=" + data_, "--user=root",
                         "--auth-root-authentication-method=normal", "--skip-test-db"},
                        std::chrono::seconds(120));
        if (init.status != 0) {
            why_ = "mariadb-install-db failed: " + init.out + init.err;
            return;
        }
        // mariadbd stays in the foreground; sh puts it in the background and
        // it writes its PID file.
        std::string cmd =
            "/usr/sbin/mariadbd --no-defaults --datadir=" + data_ + " --socket=" + dir_.path() +
            "/mysqld.sock --port=" + port_ +
            " --bind-address=127.0.0.1 --user=root --skip-log-bin --pid-file=" + dir_.path() +
            "/mysqld.pid --log-error=" + dir_.path() + "/error.log </dev/null >/dev/null 2>&1 &";
        run_command({"/bin/sh", "-c", cmd});
        started_ = wait_until(
            [&] {
                return run_command(
                           {"mariadb-admin", "-h", "127.0.0.1", "-P", port_, "-u", "root", "ping"})
                           .status == 0;
            },
            std::chrono::seconds(60));
        if (!started_) why_ = "mariadbd did not answer on port " + port_;
    }
    ~MariaDbServer() {
        if (started_) stop_pid(read_pid_file(dir_.path() + "/mysqld.pid"));
    }
    [[nodiscard]] bool ok() const { return started_; }
    [[nodiscard]] const std::string& why() const { return why_; }
    [[nodiscard]] const std::string& port() const { return port_; }
    [[nodiscard]] std::string socket() const { return dir_.path() + "/mysqld.sock"; }

    [[nodiscard]] std::vector<std::string> mysql(const std::string& sql) const {
        return {"mysql", "--comments", "-N", "-B",   "-h", "127.0.0.1",
                "-P",    port_,        "-u", "root", "-e", sql};
    }
    // As the test itself (unguarded): the ground truth.
    [[nodiscard]] std::string query(const std::string& sql) const {
        auto r = run_command(mysql(sql));
        std::string out = r.out;
        while (!out.empty() && out.back() == '\n') out.pop_back();
        return r.status == 0 ? out : "ERROR " + r.err;
    }

  private:
    TempDir dir_;
    std::string data_, port_, why_;
    bool started_ = false;
};

class RedisServer {
  public:
    // binary: the server's executable, or a link to it of another name.
    explicit RedisServer(const std::string& binary = "redis-server") {
        if (::access("/usr/bin/redis-server", X_OK) != 0 ||
            ::access("/usr/bin/redis-cli", X_OK) != 0) {
            why_ = "no Redis server installed (Debian packages redis-server, redis-tools)";
            return;
        }
        port_ = private_port(40000);
        auto r = run_command({binary,
                              "--port",
                              port_,
                              "--bind",
                              "127.0.0.1",
                              "--save",
                              "",
                              "--appendonly",
                              "no",
                              "--dir",
                              dir_.path(),
                              "--daemonize",
                              "yes",
                              "--pidfile",
                              dir_.path() + "/redis.pid",
                              "--logfile",
                              dir_.path() + "/redis.log",
                              "--unixsocket",
                              socket(),
                              "--unixsocketperm",
                              "700"});
        started_ = r.status == 0 && wait_until([&] { return command({"PING"}) == "PONG"; },
                                               std::chrono::seconds(20));
        if (!started_) why_ = "redis-server did not start: " + r.out + r.err;
    }
    ~RedisServer() {
        if (started_) stop_pid(read_pid_file(dir_.path() + "/redis.pid"));
    }
    [[nodiscard]] bool ok() const { return started_; }
    [[nodiscard]] const std::string& why() const { return why_; }
    [[nodiscard]] const std::string& port() const { return port_; }
    [[nodiscard]] std::string socket() const { return dir_.path() + "/redis.sock"; }

    [[nodiscard]] std::vector<std::string> cli(const std::vector<std::string>& args) const {
        std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", port_};
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    }
    // As the test itself (unguarded).
    [[nodiscard]] std::string command(const std::vector<std::string>& args) const {
        auto r = run_command(cli(args));
        std::string out = r.out;
        while (!out.empty() && out.back() == '\n') out.pop_back();
        return r.status == 0 ? out : "ERROR " + r.err;
    }

  private:
    TempDir dir_;
    std::string port_, why_;
    bool started_ = false;
};

// The three servers the database tests share, watched by a daemon (args gets
// a --db for each one's TCP address and unix socket) and seeded: PostgreSQL
// accounts (100 rows, and pg_extra), MySQL d.t (3 rows), Redis k1..k5.
// Returns what went wrong ("" when nothing did).
inline std::string watch_and_seed(const PgServer& pg, const MariaDbServer& my,
                                  const RedisServer& redis, std::vector<std::string>& args,
                                  const std::string& pg_extra = "") {
    std::string errors;
    auto ok = [&](const std::string& out) {
        if (out.rfind("ERROR", 0) == 0) errors += out + "\n";
    };
    auto watch = [&](const std::string& spec) {
        args.push_back("--db");
        args.push_back(spec);
    };
    if (pg.ok()) {
        watch("postgres=127.0.0.1:" + pg.port());
        watch("postgres=" + pg.socket_dir() + "/.s.PGSQL." + pg.port());
        ok(
            pg.query("CREATE TABLE accounts (id int primary key, note text); "
                     "INSERT INTO accounts SELECT g, 'row ' || g FROM generate_series(1, 100) g; " +
                     pg_extra));
    }
    if (my.ok()) {
        watch("mysql=127.0.0.1:" + my.port());
        watch("mysql=" + my.socket());
        ok(
            my.query("CREATE DATABASE d; CREATE TABLE d.t (id int, note text); "
                     "INSERT INTO d.t VALUES (1, 'a'), (2, 'b'), (3, 'c')"));
    }
    if (redis.ok()) {
        watch("redis=localhost:" + redis.port());
        watch("redis=" + redis.socket());
        for (int i = 1; i <= 5; ++i) ok(redis.command({"SET", "k" + std::to_string(i), "v"}));
    }
    return errors;
}

// `killswitch run --session SESSION -- ARGV...` under d: a guarded process.
inline CommandResult run_guarded(const Daemon& d, const std::string& session,
                                 const std::vector<std::string>& argv,
                                 std::chrono::seconds timeout = std::chrono::seconds(120)) {
    std::vector<std::string> cmd = {"run", "--session", session, "--"};
    cmd.insert(cmd.end(), argv.begin(), argv.end());
    return d.cli(cmd, timeout);
}

// The db records of a session, once at least n are written (or after the wait).
inline std::vector<nlohmann::json> db_records_of(const Daemon& d, const std::string& session,
                                                 size_t n = 1) {
    std::vector<nlohmann::json> out;
    wait_until([&] {
        out.clear();
        for (const auto& r : d.records())
            if (r.value("event", "") == "db" && r.value("session", "") == session) out.push_back(r);
        return out.size() >= n;
    });
    return out;
}

// A suite's PostgreSQL server and a daemon protecting its data directory,
// shared by the suite's tests (Suite: the suite's own class, so that each
// suite has its own). policy_rest: YAML after protect.paths.
template <class Suite>
class PgProtectedSuite : public ::testing::Test {
  protected:
    static void start(const std::string& policy_rest = "") {
        if (::geteuid() != 0) return;
        server_ = new PgServer();
        if (!server_->ok()) return;
        dir_ = new TempDir();
        std::string policy = *dir_ / "policy.yaml";
        std::ofstream(policy) << "version: 1\nprotect:\n  paths: [" << server_->data_dir() << "]\n"
                              << policy_rest;
        daemon_ = new Daemon(Daemon::Options{.policy_file = policy});
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete dir_;
        delete server_;
        daemon_ = nullptr;
        dir_ = nullptr;
        server_ = nullptr;
    }
    // Root, a server and a ready daemon, or the test skips or fails saying why.
    static void require_ready() {
        KS_REQUIRE_ROOT();
        if (!server_->ok()) GTEST_SKIP() << server_->why();
        ASSERT_TRUE(daemon_->ready()) << daemon_->stderr_text();
    }
    static CommandResult guarded(const std::string& session, const std::string& script) {
        return daemon_->cli({"run", "--session", session, "--", "sh", "-c", script});
    }

    static inline PgServer* server_ = nullptr;
    static inline TempDir* dir_ = nullptr;
    static inline Daemon* daemon_ = nullptr;
};

}  // namespace ks::test
