// Shared pieces of the kernel and e2e tiers: a private daemon per test,
// commands run as real processes, and the audit log read back.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "decision/decision.h"

namespace ks::test {

// Skips the test unless it runs as root.
#define KS_REQUIRE_ROOT()                                                        \
    do {                                                                         \
        if (::geteuid() != 0) GTEST_SKIP() << "needs root (loads BPF programs)"; \
    } while (0)

class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::string operator/(const std::string& name) const {
        return path_ + "/" + name;
    }

  private:
    std::string path_;
};

struct CommandResult {
    int status = -1;  // exit code, or 128+signal
    std::string out;
    std::string err;
};

// Runs argv to completion (stdout and stderr captured), with a timeout after
// which the process is killed.
CommandResult run_command(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(120));

bool wait_until(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

std::string binary();                         // the killswitch binary under test
std::string helper(const std::string& name);  // a program from tests/helpers

// A daemon of the test's own: private runtime directory, audit log and
// session parent cgroup; stopped (SIGTERM) when the object goes away.
class Daemon {
  public:
    struct Options {
        std::string policy_file;
        std::vector<std::string> extra_args;
        // NAME=VALUE set in the daemon's environment (NOTIFY_SOCKET...).
        std::vector<std::string> env;
        std::string runtime_dir;  // empty: one in the daemon's temporary directory
        std::string binary;       // empty: the build's killswitch
        // Words before the binary (a shell that moves it into a cgroup, setpriv...).
        std::vector<std::string> prefix;
        // --cgroup-parent as given ("./sessions"), and the path it resolves
        // to under the cgroup v2 mount (for the cleanup); empty: a private name.
        std::string cgroup_parent_arg, cgroup_parent;
    };
    explicit Daemon(const Options& opts);
    Daemon() : Daemon(Options{}) {}
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    [[nodiscard]] bool ready() const { return ready_; }
    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] const std::string& runtime_dir() const { return runtime_dir_; }
    [[nodiscard]] const std::string& audit_log() const { return audit_log_; }
    [[nodiscard]] const std::string& cgroup_parent() const { return cgroup_parent_; }
    [[nodiscard]] const std::string& pin_dir() const { return pin_dir_; }
    [[nodiscard]] std::string stderr_text() const;

    // `killswitch --runtime-dir DIR ARGS...`
    CommandResult cli(const std::vector<std::string>& args,
                      std::chrono::milliseconds timeout = std::chrono::seconds(120)) const;
    // All records written so far (waits for the daemon to flush first).
    std::vector<nlohmann::json> records() const;
    // Stops the daemon and removes the sessions it left; returns its exit status.
    int stop();
    // Stops the daemon only: its sessions and pinned programs stay (removed
    // when this object goes).
    int stop_keep_sessions();
    // SIGKILL: nothing of the daemon's own shutdown runs.
    void kill_hard();
    // Starts a stopped or killed daemon again, with the same directories,
    // cgroup parent and pin directory; true when it is ready.
    bool restart();

  private:
    void launch();
    void remove_sessions();
    Options opts_;
    TempDir dir_;
    std::string runtime_dir_, audit_log_, cgroup_parent_, stderr_path_, pin_dir_;
    pid_t pid_ = -1;
    bool ready_ = false;
    bool uninstalled_ = false;
};

std::vector<nlohmann::json> read_jsonl(const std::string& path);

// A session of d's: its cgroup directory, its cgroup.events text, the number
// of processes in it, the pid of the `killswitch run` that started it (from
// its session_start record; 0 if none), and the first record pred accepts
// (waits up to timeout; null if none came).
std::string session_dir(const Daemon& d, const std::string& name);
std::string events_of(const std::string& dir);
size_t procs_in(const std::string& dir);
int wrapper_pid(const Daemon& d, const std::string& session);
nlohmann::json first_record(const Daemon& d, const std::function<bool(const nlohmann::json&)>& pred,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10));
// The first record of this event ("file", "reach"...) in this session.
nlohmann::json session_record(const Daemon& d, const std::string& event, const std::string& session,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace ks::test
