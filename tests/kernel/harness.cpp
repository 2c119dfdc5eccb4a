#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/sysfs.h"

namespace ks::test {

TempDir::TempDir() {
    char tmpl[] = "/tmp/ks-test-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    if (!p) throw std::runtime_error("mkdtemp failed");
    path_ = p;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string binary() { return KS_BINARY; }
std::string helper(const std::string& name) { return std::string(KS_HELPERS_DIR) + "/" + name; }

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
}

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
    CommandResult r;
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return r;
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        std::vector<char*> a;
        for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        ::execvp(a[0], a.data());
        _exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    bool killed = false;
    while (open_fds > 0) {
        int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        deadline - std::chrono::steady_clock::now())
                                        .count());
        if (left <= 0 && !killed) {
            ::kill(pid, SIGKILL);
            killed = true;
        }
        int rc = ::poll(fds, 2, left > 0 ? left : 100);
        if (rc < 0 && errno == EINTR) continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
            char buf[4096];
            ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
            if (n <= 0) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            } else {
                (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
            }
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

namespace {

// A test process that ctest killed (its timeout) never ran its daemon's
// destructor: its pinned programs would go on guarding (and holding) agents
// on this host, with no daemon. They are named after the test's pid: remove
// those whose test is gone, and end their sessions.
void remove_stale_test_pins() {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/sys/fs/bpf", ec)) {
        std::string name = e.path().filename().string();
        if (name.rfind("ks-test-", 0) != 0) continue;
        int pid = std::atoi(name.c_str() + 8);
        if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0) continue;
        // Its record goes to a file of its own (never /dev/null: a trail is
        // a file the daemon owns).
        std::string trail = "/tmp/ks-test-stale-" + std::to_string(pid) + ".audit.jsonl";
        std::fprintf(stderr, "harness: removing the pins of test process %d, which is gone\n", pid);
        run_command({binary(), "daemon", "--uninstall", "--pin-dir", e.path().string(),
                     "--cgroup-parent", "ks-test-" + std::to_string(pid), "--audit-log", trail});
        std::filesystem::remove(trail, ec);
        for (const auto& m :
             {std::string("/sys/fs/cgroup/unified"), std::string("/sys/fs/cgroup")}) {
            std::string parent = m + "/ks-test-" + std::to_string(pid);
            if (!std::filesystem::exists(parent, ec)) continue;
            for (const auto& c : std::filesystem::directory_iterator(parent, ec)) {
                std::ofstream(c.path() / "cgroup.kill") << "1";
                wait_until([&] { return ::rmdir(c.path().c_str()) == 0; }, std::chrono::seconds(5));
            }
            ::rmdir(parent.c_str());
        }
    }
}

}  // namespace

Daemon::Daemon(const Options& opts) : opts_(opts) {
    static int counter = 0;
    if (counter == 0) remove_stale_test_pins();
    runtime_dir_ = opts.runtime_dir.empty() ? dir_ / "run" : opts.runtime_dir;
    audit_log_ = dir_ / "audit.jsonl";
    stderr_path_ = dir_ / "daemon.stderr";
    cgroup_parent_ =
        opts.cgroup_parent.empty() ? "ks-test-" + std::to_string(::getpid()) : opts.cgroup_parent;
    // bpffs names cannot hold a '.'.
    pin_dir_ =
        "/sys/fs/bpf/ks-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    launch();
}

void Daemon::launch() {
    std::vector<std::string> argv = opts_.prefix;
    for (const auto& a : std::vector<std::string>{
             opts_.binary.empty() ? binary() : opts_.binary, "--runtime-dir", runtime_dir_,
             "--log-level", "debug", "daemon", "--audit-log", audit_log_, "--cgroup-parent",
             opts_.cgroup_parent_arg.empty() ? cgroup_parent_ : opts_.cgroup_parent_arg,
             "--pin-dir", pin_dir_})
        argv.push_back(a);
    if (!opts_.policy_file.empty()) {
        argv.push_back("--policy");
        argv.push_back(opts_.policy_file);
    }
    for (const auto& a : opts_.extra_args) argv.push_back(a);
    pid_ = ::fork();
    if (pid_ == 0) {
        int fd = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        ::dup2(fd, 2);
        ::dup2(fd, 1);
        for (const auto& kv : opts_.env) ::putenv(const_cast<char*>(kv.c_str()));
        std::vector<char*> a;
        for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        ::execv(a[0], a.data());
        _exit(127);
    }
    ready_ = wait_until(
        [&] {
            int st;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                pid_ = -1;
                return true;  // exited: not ready
            }
            return cli({"status"}, std::chrono::seconds(5)).status == 0;
        },
        std::chrono::seconds(20));
    if (pid_ < 0) ready_ = false;
}

bool Daemon::restart() {
    if (pid_ > 0) return false;
    launch();
    return ready_;
}

void Daemon::kill_hard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    ready_ = false;
}

Daemon::~Daemon() { stop(); }

int Daemon::stop() {
    int status = stop_keep_sessions();
    remove_sessions();
    // The pinned programs outlive a daemon by design; a test leaves none.
    if (!uninstalled_) {
        auto r = cli({"daemon", "--uninstall", "--pin-dir", pin_dir_, "--audit-log", audit_log_});
        if (r.status != 0) ADD_FAILURE() << "daemon --uninstall: " << r.err;
        uninstalled_ = true;
    }
    return status;
}

int Daemon::stop_keep_sessions() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    bool done = wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; },
                           std::chrono::seconds(15));
    if (!done) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Sessions left by the test's agents, then the parent cgroup itself.
void Daemon::remove_sessions() {
    std::error_code ec;
    for (const auto& m : {std::string("/sys/fs/cgroup/unified"), std::string("/sys/fs/cgroup")}) {
        std::string parent = m + "/" + cgroup_parent_;
        if (!std::filesystem::exists(parent, ec)) continue;
        for (const auto& e : std::filesystem::directory_iterator(parent, ec)) {
            if (!e.is_directory()) continue;
            std::ofstream(e.path() / "cgroup.kill") << "1";
            wait_until([&] { return ::rmdir(e.path().c_str()) == 0; }, std::chrono::seconds(5));
        }
        ::rmdir(parent.c_str());
    }
}

std::string Daemon::stderr_text() const {
    std::ifstream in(stderr_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

CommandResult Daemon::cli(const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout) const {
    std::vector<std::string> argv = {binary(), "--runtime-dir", runtime_dir_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, timeout);
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
    std::vector<nlohmann::json> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded()) out.push_back(std::move(j));
    }
    return out;
}

std::vector<nlohmann::json> Daemon::records() const { return read_jsonl(audit_log_); }

std::string session_dir(const Daemon& d, const std::string& name) {
    return cgroup2_mount().value() + "/" + d.cgroup_parent() + "/" + name;
}

std::string events_of(const std::string& dir) {
    auto ev = read_file(dir + "/cgroup.events");
    return ev ? *ev : "";
}

size_t procs_in(const std::string& dir) {
    auto procs = read_file(dir + "/cgroup.procs");
    return procs ? static_cast<size_t>(std::count(procs->begin(), procs->end(), '\n')) : 0;
}

int wrapper_pid(const Daemon& d, const std::string& session) {
    for (const auto& r : d.records())
        if (r.value("event", "") == "session_start" && r.value("session", "") == session)
            return r.value("pid", 0);
    return 0;
}

nlohmann::json first_record(const Daemon& d, const std::function<bool(const nlohmann::json&)>& pred,
                            std::chrono::milliseconds timeout) {
    nlohmann::json found;
    wait_until(
        [&] {
            for (const auto& r : d.records())
                if (pred(r)) {
                    found = r;
                    return true;
                }
            return false;
        },
        timeout);
    return found;
}

nlohmann::json session_record(const Daemon& d, const std::string& event, const std::string& session,
                              std::chrono::milliseconds timeout) {
    return first_record(
        d,
        [&](const nlohmann::json& r) {
            return r.value("event", "") == event && r.value("session", "") == session;
        },
        timeout);
}

}  // namespace ks::test
