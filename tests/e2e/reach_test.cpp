// Reach: a guarded process cannot take hold of a process outside its session.
// The database server above all: a guarded `kill -9` or `kill -STOP` of the
// postmaster, `pg_ctl stop`, a debugger's attach and a write into its memory
// are refused, the server answers afterwards, and the record names the rule;
// signals within the session (a shell's own jobs, timeout) go on as before,
// and a program the policy names (processes.reachable) may be signalled.
//
// On this kernel (no LSM, no fentry) the libc layer stops the caller before
// the call; the vm tier's LSM guests refuse the call itself.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "db_servers.h"

namespace ks::test {
namespace {

using nlohmann::json;

// The state letter of /proc/PID/stat ('T': stopped), or '\0' when gone.
char state_of(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return '\0';
    auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() ? line[close + 2] : '\0';
}

std::string comm_of_pid(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
    std::string comm;
    std::getline(f, comm);
    return comm;
}

int tracer_of(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("TracerPid:", 0) == 0) return std::stoi(line.substr(10));
    return -1;
}

class ReachE2E : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0) return;
        server_ = new PgServer();
        if (!server_->ok()) return;
        setup_ = server_->query("CREATE TABLE accounts (id int primary key)");
        setup_ += server_->query("INSERT INTO accounts SELECT generate_series(1, 100)");
        policy_dir_ = new TempDir();
        std::string policy = policy_dir_->path() + "/policy.yaml";
        deputy_socket_ = policy_dir_->path() + "/deputy.sock";
        std::ofstream(policy) << "version: 1\nprocesses:\n  reachable: [ks-reachable]\n"
                              << "  deputies: [" << deputy_socket_ << "]\n";
        daemon_ = new Daemon(Daemon::Options{.policy_file = policy});
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete policy_dir_;
        delete server_;
        daemon_ = nullptr;
        server_ = nullptr;
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        if (!server_->ok()) GTEST_SKIP() << server_->why();
        ASSERT_EQ(setup_.find("ERROR"), std::string::npos) << setup_;
        ASSERT_TRUE(daemon_->ready()) << daemon_->stderr_text();
        postmaster_ = std::stoi(read_pid_file(server_->data_dir() + "/postmaster.pid"));
        ASSERT_GT(postmaster_, 1);
        ASSERT_EQ(server_->query("SELECT count(*) FROM accounts"), "100");
    }
    // The server is still there, running and answering.
    void expect_server_unharmed() const {
        EXPECT_EQ(::kill(postmaster_, 0), 0) << "the postmaster is gone";
        EXPECT_NE(state_of(postmaster_), 'T') << "the postmaster is stopped";
        EXPECT_EQ(tracer_of(postmaster_), 0) << "the postmaster is traced";
        EXPECT_EQ(server_->query("SELECT count(*) FROM accounts"), "100");
    }
    json reach_record(const std::string& session) const {
        return session_record(*daemon_, "reach", session);
    }

    static PgServer* server_;
    static std::string setup_;
    static std::string deputy_socket_;
    static TempDir* policy_dir_;
    static Daemon* daemon_;
    int postmaster_ = 0;
};
PgServer* ReachE2E::server_ = nullptr;
std::string ReachE2E::setup_;
std::string ReachE2E::deputy_socket_;
TempDir* ReachE2E::policy_dir_ = nullptr;
Daemon* ReachE2E::daemon_ = nullptr;

TEST_F(ReachE2E, AGuardedKillOfTheDatabaseServerIsRefusedAndTheServerAnswers) {
    // Unguarded, the signal takes the server: SIGSTOP stops it (then on).
    ASSERT_EQ(run_command({"kill", "-STOP", std::to_string(postmaster_)}).status, 0);
    EXPECT_TRUE(wait_until([&] { return state_of(postmaster_) == 'T'; }))
        << "an unguarded SIGSTOP did not stop the server";
    ASSERT_EQ(run_command({"kill", "-CONT", std::to_string(postmaster_)}).status, 0);
    ASSERT_TRUE(wait_until([&] { return state_of(postmaster_) != 'T'; }));

    auto r = daemon_->cli(
        {"run", "--session", "kill9", "--", "kill", "-9", std::to_string(postmaster_)});
    EXPECT_NE(r.status, 0) << "the guarded kill -9 succeeded";
    EXPECT_NE(r.err.find("killswitch: refused SIGKILL to postgres"), std::string::npos) << r.err;
    json rec = reach_record("kill9");
    ASSERT_FALSE(rec.is_null()) << "no reach record";
    EXPECT_EQ(rec["rule"], "process:signal");
    EXPECT_EQ(rec["target"], postmaster_);
    EXPECT_EQ(rec["target_comm"], "postgres");
    EXPECT_EQ(rec["signal"], SIGKILL);
    EXPECT_EQ(rec["prevented"], true);
    expect_server_unharmed();

    r = daemon_->cli({"run", "--session", "stop", "--", "bash", "-c",
                      "kill -STOP " + std::to_string(postmaster_) + "; echo after=$?"});
    EXPECT_EQ(r.out.find("after=0"), std::string::npos) << "the guarded SIGSTOP was sent";
    EXPECT_FALSE(reach_record("stop").is_null());
    expect_server_unharmed();
}

TEST_F(ReachE2E, PgCtlStopAndADebuggerAttachAreRefused) {
    auto r =
        daemon_->cli({"run", "--session", "pgctl", "--", "runuser", "-u", "postgres", "--",
                      pg_bin() + "/pg_ctl", "-D", server_->data_dir(), "-m", "immediate", "stop"});
    EXPECT_NE(r.status, 0) << "pg_ctl stop succeeded: " << r.out << r.err;
    json rec = reach_record("pgctl");
    ASSERT_FALSE(rec.is_null()) << "no reach record for pg_ctl stop";
    EXPECT_EQ(rec["comm"], "pg_ctl");
    EXPECT_EQ(rec["target_comm"], "postgres");
    expect_server_unharmed();

    r = daemon_->cli({"run", "--session", "strace", "--", "strace", "-p",
                      std::to_string(postmaster_), "-o", "/dev/null"},
                     std::chrono::seconds(20));
    EXPECT_NE(r.status, 0);
    rec = reach_record("strace");
    ASSERT_FALSE(rec.is_null()) << "no reach record for strace -p";
    EXPECT_EQ(rec["rule"], "process:ptrace");
    expect_server_unharmed();
}

TEST_F(ReachE2E, SignalsWithinTheSessionAndToGoneProcessesGoOn) {
    // A shell's own job, a pid that is gone, timeout's child, kill 0 inside
    // a process group of the session's own.
    auto r = daemon_->cli({"run", "--session", "own", "--", "bash", "-c",
                           "sleep 100 & kill $!; wait $!; echo job=$?; "
                           "kill 2147483; echo gone=$?; "
                           "timeout 0.2 sleep 5; echo timeout=$?; "
                           "setsid bash -c 'sleep 100 & kill 0' ; echo group=$?"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("job=143"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("gone=1"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("timeout=124"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("group=143"), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find("killswitch: refused"), std::string::npos) << r.err;
    for (const auto& rec : daemon_->records())
        EXPECT_FALSE(rec.value("event", "") == "reach" && rec.value("session", "") == "own")
            << rec.dump();
}

TEST_F(ReachE2E, AProgramThePolicyNamesIsReachable) {
    // Two processes outside the session: one runs as ks-reachable (named by
    // the policy), the other as sleep.
    TempDir dir;
    std::string named = dir / "ks-reachable";
    ASSERT_EQ(run_command({"cp", "/bin/sleep", named}).status, 0);
    pid_t a = ::fork();
    if (a == 0) {
        ::execl(named.c_str(), "ks-reachable", "100", nullptr);
        ::_exit(127);
    }
    pid_t b = ::fork();
    if (b == 0) {
        ::execl("/bin/sleep", "sleep", "100", nullptr);
        ::_exit(127);
    }
    ASSERT_TRUE(wait_until([&] { return comm_of_pid(a) == "ks-reachable"; }));
    auto r = daemon_->cli({"run", "--session", "named", "--", "kill", std::to_string(a)});
    EXPECT_EQ(r.status, 0) << r.err;
    int st = 0;
    EXPECT_EQ(::waitpid(a, &st, 0), a);
    EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) << "ks-reachable was not signalled";

    r = daemon_->cli({"run", "--session", "unnamed", "--", "kill", std::to_string(b)});
    EXPECT_NE(r.status, 0);
    EXPECT_EQ(::waitpid(b, &st, WNOHANG), 0) << "sleep, which the policy does not name, was killed";
    EXPECT_FALSE(reach_record("unnamed").is_null());
    ::kill(b, SIGKILL);
    ::waitpid(b, nullptr, 0);
}

// A deputy: a long-running service outside every session that runs what it is
// asked to (as systemd, D-Bus or a container runtime would, here a small
// server of the test's own on a unix socket the policy names). Unguarded, it
// deletes a file for its client; a guarded client cannot connect to it.
TEST_F(ReachE2E, ADeputyIsNotAskedToActForTheSession) {
    auto st = run_command({binary(), "--runtime-dir", daemon_->runtime_dir(), "status", "--json"});
    if (st.out.find("\"db_unix_connect_rule\": false") != std::string::npos)
        GTEST_SKIP() << "no cgroup/connect_unix on this kernel (Linux 6.7+): deputies are not "
                        "refused here (killswitch doctor says so)";
    TempDir dir;
    const std::string server =
        "import socket, subprocess, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.bind(sys.argv[1])\n"
        "s.listen(4)\n"
        "while True:\n"
        "    c, _ = s.accept()\n"
        "    subprocess.run(c.recv(4096).decode(), shell=True)\n"
        "    c.sendall(b'done')\n"
        "    c.close()\n";
    const std::string client =
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(sys.argv[1])\n"
        "s.sendall(sys.argv[2].encode())\n"
        "print(s.recv(16).decode())\n";
    pid_t deputy = ::fork();
    if (deputy == 0) {
        ::execl("/usr/bin/python3", "python3", "-c", server.c_str(), deputy_socket_.c_str(),
                nullptr);
        ::_exit(127);
    }
    ASSERT_TRUE(wait_until([&] { return ::access(deputy_socket_.c_str(), F_OK) == 0; }));
    for (const char* f : {"a", "b"}) std::ofstream(dir / f) << "rows\n";

    // Unguarded, the deputy deletes the file for its client.
    auto r = run_command({"python3", "-c", client, deputy_socket_, "rm -f " + (dir / "a")});
    EXPECT_EQ(r.out, "done\n") << r.err;
    EXPECT_NE(::access((dir / "a").c_str(), F_OK), 0) << "the deputy did not act unguarded";

    // Guarded, the client cannot reach it: the file stays.
    r = daemon_->cli({"run", "--session", "deputy", "--", "python3", "-c", client, deputy_socket_,
                      "rm -f " + (dir / "b")});
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r.err;
    EXPECT_EQ(::access((dir / "b").c_str(), F_OK), 0) << "the deputy deleted b for the session";
    json rec = reach_record("deputy");
    ASSERT_FALSE(rec.is_null()) << "no reach record for the deputy";
    EXPECT_EQ(rec["rule"], "process:deputy");
    EXPECT_EQ(rec["socket"], deputy_socket_);
    EXPECT_EQ(rec["prevented"], true);
    ::kill(deputy, SIGKILL);
    ::waitpid(deputy, nullptr, 0);
}

// Runs f however the test ends (a failed ASSERT returns early): the
// multiplexer servers a test starts do not outlive it.
struct AtExit {
    std::function<void()> f;
    ~AtExit() { f(); }
};

// A terminal multiplexer's server outside every session is a deputy too: a
// person's tmux runs whatever a client asks in a shell nobody guards. Its
// socket is found from the server's process (processes.multiplexers),
// whatever -L or -S named it. A tmux the session starts itself is its own.
TEST_F(ReachE2E, ATmuxServerOutsideTheSessionIsADeputyOneItStartsIsItsOwn) {
    auto st = run_command({binary(), "--runtime-dir", daemon_->runtime_dir(), "status", "--json"});
    if (st.out.find("\"db_unix_connect_rule\": false") != std::string::npos)
        GTEST_SKIP() << "no cgroup/connect_unix on this kernel (Linux 6.7+)";
    ASSERT_EQ(::access("/usr/bin/tmux", X_OK), 0) << "tmux is installed by scripts/deps.sh --test";
    TempDir dir;
    const std::string tmpdir = "TMUX_TMPDIR=" + dir.path();
    auto tmux = [&](const std::string& name, std::vector<std::string> args) {
        std::vector<std::string> argv = {"env", tmpdir, "tmux", "-L", name};
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    };
    const std::string sock = dir.path() + "/tmux-0/ks-out";
    auto listed = [&](const std::string& path) {
        auto s =
            run_command({binary(), "--runtime-dir", daemon_->runtime_dir(), "status", "--json"});
        auto j = json::parse(s.out, nullptr, false);
        if (j.is_discarded()) return false;
        for (const auto& e : j.value("databases_discovered", json::array()))
            if (e.value("endpoint", "") == "deputy=" + path) return true;
        return false;
    };
    for (const char* f : {"a", "b"}) std::ofstream(dir / f) << "rows\n";

    // A person's tmux, outside every session. Unguarded, it runs what a
    // client asks: the file is deleted.
    ASSERT_EQ(run_command(tmux("ks-out", {"new-session", "-d", "sleep 600"})).status, 0);
    AtExit quit{[&] {
        run_command(tmux("ks-out", {"kill-server"}));
        run_command(tmux("ks-in", {"kill-server"}));  // if the test stopped before its script did
    }};
    auto r = run_command(tmux("ks-out", {"new-window", "-d", "rm -f " + (dir / "a")}));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(wait_until([&] { return ::access((dir / "a").c_str(), F_OK) != 0; }))
        << "the tmux server did not act unguarded";
    ASSERT_TRUE(wait_until([&] { return listed(sock); }, std::chrono::seconds(15)))
        << "the tmux server's socket was not found: " << st.out;

    // Guarded, its client cannot reach the server: the file stays.
    r = daemon_->cli({"run", "--session", "tmux-out", "--", "env", tmpdir, "tmux", "-L", "ks-out",
                      "new-window", "-d", "rm -f " + (dir / "b")});
    EXPECT_NE(r.status, 0);
    ::usleep(500 * 1000);
    EXPECT_EQ(::access((dir / "b").c_str(), F_OK), 0) << "the person's tmux deleted b";
    json rec = reach_record("tmux-out");
    ASSERT_FALSE(rec.is_null()) << "no reach record for the tmux server";
    EXPECT_EQ(rec["rule"], "process:deputy");
    EXPECT_EQ(rec["socket"], sock);
    EXPECT_EQ(rec.value("service", ""), "a tmux server") << rec;

    // The session's own tmux, started inside it, serves it, before and after
    // the daemon has looked again (every 5 s), and is never listed.
    const std::string in_sock = dir.path() + "/tmux-0/ks-in";
    std::string script = "export " + tmpdir + "; tmux -L ks-in new-session -d 'sleep 600' && " +
                         "tmux -L ks-in new-window -d 'touch " + (dir / "c") +
                         "' && sleep 6 && tmux -L ks-in new-window -d 'touch " + (dir / "d") +
                         "' && sleep 0.5; tmux -L ks-in kill-server";
    r = daemon_->cli({"run", "--session", "tmux-in", "--", "/bin/sh", "-c", script});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(wait_until([&] { return ::access((dir / "d").c_str(), F_OK) == 0; }))
        << "the session's own tmux was refused to it: " << r.err;
    EXPECT_EQ(::access((dir / "c").c_str(), F_OK), 0);
    EXPECT_FALSE(listed(in_sock));
}

// GNU screen likewise: a person's detached screen runs what `screen -X`
// asks in a window nobody guards. Its socket (SCREENDIR/PID.NAME) is found
// from the server's process; a guarded `screen -X` cannot reach it.
TEST_F(ReachE2E, AScreenSessionOutsideTheSessionIsADeputy) {
    auto st = run_command({binary(), "--runtime-dir", daemon_->runtime_dir(), "status", "--json"});
    if (st.out.find("\"db_unix_connect_rule\": false") != std::string::npos)
        GTEST_SKIP() << "no cgroup/connect_unix on this kernel (Linux 6.7+)";
    ASSERT_EQ(::access("/usr/bin/screen", X_OK), 0)
        << "screen is installed by scripts/deps.sh --test";
    TempDir dir;
    // screen wants its directory private to its user.
    const std::filesystem::path screendir = dir / "screen";
    std::filesystem::create_directory(screendir);
    ::chmod(screendir.c_str(), 0700);
    const std::string env = "SCREENDIR=" + screendir.string();
    auto screen = [&](std::vector<std::string> args) {
        std::vector<std::string> argv = {"env", env, "screen"};
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    };
    for (const char* f : {"a", "b"}) std::ofstream(dir / f) << "rows\n";

    // A person's screen, detached, outside every session. Unguarded, it runs
    // what a client asks: the file is deleted.
    ASSERT_EQ(run_command(screen({"-dmS", "ks-out", "sleep", "600"})).status, 0);
    AtExit quit{[&] { run_command(screen({"-S", "ks-out", "-X", "quit"})); }};
    std::string sock;
    ASSERT_TRUE(wait_until([&] {
        for (const auto& e : std::filesystem::directory_iterator(screendir))
            if (e.path().filename().string().ends_with(".ks-out")) sock = e.path().string();
        return !sock.empty();
    })) << "screen made no socket in "
        << screendir;
    auto r = run_command(screen({"-S", "ks-out", "-X", "screen", "rm", "-f", dir / "a"}));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(wait_until([&] { return ::access((dir / "a").c_str(), F_OK) != 0; }))
        << "the screen session did not act unguarded";
    ASSERT_TRUE(wait_until(
        [&] {
            auto s = run_command(
                {binary(), "--runtime-dir", daemon_->runtime_dir(), "status", "--json"});
            return s.out.find("\"deputy=" + sock + "\"") != std::string::npos;
        },
        std::chrono::seconds(15)))
        << "the screen server's socket was not found";

    // Guarded, its client cannot reach the server: the file stays.
    r = daemon_->cli({"run", "--session", "screen-out", "--", "env", env, "screen", "-S", "ks-out",
                      "-X", "screen", "rm", "-f", dir / "b"});
    ::usleep(500 * 1000);
    EXPECT_EQ(::access((dir / "b").c_str(), F_OK), 0) << "the person's screen deleted b";
    json rec = reach_record("screen-out");
    ASSERT_FALSE(rec.is_null()) << "no reach record for the screen server: " << r.err;
    EXPECT_EQ(rec["rule"], "process:deputy");
    EXPECT_EQ(rec["socket"], sock);
    EXPECT_EQ(rec.value("service", ""), "a screen session") << rec;
    EXPECT_EQ(rec["prevented"], true);
}

}  // namespace
}  // namespace ks::test
