// `killswitch run`: start a command inside a fresh guarded session.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>

#include "cli/commands.h"
#include "common/sysfs.h"
#include "control/control.h"
#include "seccomp_guard/filter.h"

namespace ks::cli {
namespace {

volatile sig_atomic_t g_child = 0;
volatile sig_atomic_t g_pending = 0;  // a signal for the session, not yet passed on

// The command at once (the one async-signal-safe step); the rest of the
// session from the wait loop.
void forward_signal(int sig) {
    if (g_child > 0) ::kill(g_child, sig);
    g_pending = sig;
}

// Every process of the session gets sig: what the command started in the
// background, or detached from its terminal, too.
void signal_session(const std::string& procs, int sig) {
    auto list = read_file(procs);
    if (!list) return;
    size_t at = 0;
    while (at < list->size()) {
        size_t nl = list->find('\n', at);
        std::string pid = list->substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        at = nl == std::string::npos ? list->size() : nl + 1;
        if (!pid.empty()) ::kill(std::stoi(pid), sig);
    }
}

[[noreturn]] void exec_command(const std::vector<std::string>& command) {
    std::vector<char*> argv;
    for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    int err = errno;
    fprintf(stderr, "killswitch run: %s: %s\n", argv[0], std::strerror(err));
    _exit(err == ENOENT ? 127 : 126);
}

// The session's first process, before its exec: the filter, whose
// listener goes to the daemon, and a copy to the wrapper (keep), which
// hands it to the next daemon when this one restarts. When the filter
// cannot be installed, the daemon covers the session with its syscall
// tracepoints instead (attached before it answers); when the daemon cannot
// take the listener, the command is not run (its destructive calls would
// have no one to answer them).
void under_seccomp_filter(const GlobalOptions& g, const std::string& name, int keep) {
    nlohmann::json req = {{"cmd", "session.seccomp"}, {"session", name}};
    auto listener = seccomp::install_session_filter();
    if (!listener) req["error"] = listener.error().str();
    if (listener && !send_with_fd(keep, "k", listener->get())) {
        fprintf(stderr, "killswitch run: session %s: cannot keep the seccomp listener\n",
                name.c_str());
        _exit(125);
    }
    ::close(keep);
    auto reply = control_request(g.runtime_dir, req, 30000, listener ? listener->get() : -1);
    if (!reply || !reply->value("ok", false)) {
        fprintf(stderr, "killswitch run: session %s: %s. Refusing to run the command.\n",
                name.c_str(),
                !reply ? reply.error().str().c_str()
                       : reply->value("error", "the daemon refused the seccomp listener").c_str());
        _exit(125);
    }
}

// The wrapper's copy of a session's seccomp listener: while the daemon that
// holds the other is down, the session's filtered calls wait (instead of
// failing); a daemon that comes back (another run) gets it. A daemon gone
// for longer than kOrphanWait is taken for gone for good (uninstalled): the
// copy is closed, and the calls fail with ENOSYS from then on.
class KeptListener {
  public:
    KeptListener(const GlobalOptions& g, std::string session, std::string run, Fd fd)
        : g_(g), session_(std::move(session)), run_(std::move(run)), fd_(std::move(fd)) {}
    [[nodiscard]] bool held() const { return fd_.valid(); }
    // Once a second while the command runs.
    void check() {
        if (!fd_.valid()) return;
        auto now = std::chrono::steady_clock::now();
        auto ping = control_request(g_.runtime_dir, {{"cmd", "ping"}}, 2000);
        if (!ping || !ping->value("ok", false)) {
            if (!down_since_) down_since_ = now;
            if (!told_ && now - *down_since_ > std::chrono::seconds(5)) {
                fprintf(stderr,
                        "killswitch run: the killswitch daemon is not answering; session %s's "
                        "file changes and signals wait for it\n",
                        session_.c_str());
                told_ = true;
            }
            if (now - *down_since_ > kOrphanWait) {
                fprintf(stderr,
                        "killswitch run: no killswitch daemon for %lld s: session %s's file "
                        "changes and signals now fail (ENOSYS)\n",
                        static_cast<long long>(kOrphanWait.count()), session_.c_str());
                fd_.reset();
            }
            return;
        }
        down_since_.reset();
        std::string run = ping->value("run", "");
        if (run.empty() || run == run_) return;
        auto r = control_request(
            g_.runtime_dir, {{"cmd", "session.seccomp"}, {"session", session_}, {"adopt", true}},
            5000, fd_.get());
        if (r && r->value("ok", false)) {
            run_ = run;
            if (told_)
                fprintf(stderr, "killswitch run: session %s is answered again\n", session_.c_str());
            told_ = false;
        }
    }

  private:
    static constexpr std::chrono::seconds kOrphanWait{60};
    const GlobalOptions& g_;
    std::string session_, run_;
    Fd fd_;
    std::optional<std::chrono::steady_clock::time_point> down_since_;
    bool told_ = false;
};

int run_guarded(const GlobalOptions& g, const std::string& session,
                const std::vector<std::string>& command) {
    // seccomp: this process can put the session under a seccomp filter,
    // which the daemon asks for where the kernel has no hook layer.
    nlohmann::json req = {
        {"cmd", "session.create"}, {"name", session}, {"command", command}, {"seccomp", true}};
    // The daemon attaches its file layers for the first session: seconds on a
    // loaded host.
    auto reply = control_request(g.runtime_dir, req, 30000);
    if (!reply) {
        fprintf(stderr,
                "killswitch run: cannot reach the killswitch daemon (%s); start it with "
                "`killswitch daemon`. Refusing to run the command unguarded.\n",
                reply.error().str().c_str());
        return 125;
    }
    if (!reply->value("ok", false)) {
        if (reply->value("guarded", false)) {
            // Already inside a session: the command is guarded there.
            fprintf(stderr, "killswitch run: already guarded in session %s; running there\n",
                    reply->value("session", "").c_str());
            exec_command(command);
        }
        fprintf(stderr, "killswitch run: %s\n", reply->value("error", "refused").c_str());
        return 125;
    }
    std::string procs = reply->value("cgroup_procs", "");
    std::string name = reply->value("session", "");
    bool seccomp = reply->value("seccomp", false);
    int keep[2] = {-1, -1};
    if (seccomp && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, keep) != 0) {
        perror("killswitch run: socketpair");
        return 125;
    }

    pid_t child = ::fork();
    if (child < 0) {
        perror("killswitch run: fork");
        return 125;
    }
    if (child == 0) {
        // Into the session cgroup first: the kernel marks the task guarded at
        // its exec, and everything it starts inherits the mark.
        if (auto st = write_file(procs, std::to_string(::getpid())); !st) {
            fprintf(stderr, "killswitch run: join session %s: %s\n", name.c_str(),
                    st.error().str().c_str());
            _exit(125);
        }
        ::setenv("KILLSWITCH_SESSION", name.c_str(), 1);
        if (seccomp) {
            ::close(keep[0]);
            under_seccomp_filter(g, name, keep[1]);
        } else {
            // The libc layer for this process before the exec, where the
            // daemon attaches it per process (an older daemon does not know
            // the request: it attaches it when it sees the exec).
            (void)control_request(g.runtime_dir, {{"cmd", "session.enter"}}, 30000);
        }
        exec_command(command);
    }
    g_child = child;
    // The copy of the listener (none when the child could not install it).
    Fd listener;
    if (seccomp) {
        ::close(keep[1]);
        Fd from_child(keep[0]);
        pollfd p{from_child.get(), POLLIN, 0};
        char byte;
        if (::poll(&p, 1, 30000) == 1) (void)receive_with_fd(from_child.get(), &byte, 1, listener);
    }
    KeptListener kept(g, name, reply->value("run", ""), std::move(listener));
    // Terminal signals reach the whole foreground group, the command included;
    // the ones sent to us alone are passed on to the whole session.
    struct sigaction ign {
    }, fwd{};
    ign.sa_handler = SIG_IGN;
    fwd.sa_handler = forward_signal;
    sigemptyset(&fwd.sa_mask);
    sigaction(SIGINT, &ign, nullptr);
    sigaction(SIGQUIT, &ign, nullptr);
    for (int sig : {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) sigaction(sig, &fwd, nullptr);

    int status = 0;
    // With a listener kept, the daemon is looked at once a second meanwhile.
    Fd pidfd(kept.held() ? static_cast<int>(::syscall(SYS_pidfd_open, child, 0)) : -1);
    for (;;) {
        if (pidfd.valid()) {
            pollfd p{pidfd.get(), POLLIN, 0};
            int rc = ::poll(&p, 1, 1000);
            if (rc == 0) {
                kept.check();
                continue;
            }
            if (rc < 0 && errno == EINTR) {
                if (int sig = g_pending) {
                    g_pending = 0;
                    signal_session(procs, sig);
                }
                continue;
            }
        }
        if (::waitpid(child, &status, 0) >= 0) break;
        if (errno != EINTR) {
            perror("killswitch run: waitpid");
            return 125;
        }
        if (int sig = g_pending) {
            g_pending = 0;
            signal_session(procs, sig);
        }
    }
    if (int sig = g_pending) signal_session(procs, sig);  // came as the command ended
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        // Failed, perhaps because killswitch killed the command or one of its
        // children in the kernel (a shell then exits 137 itself): the daemon
        // tells why on the stderr of the process, or of its parent when it is
        // gone, and that stderr is often ours. It has done so when it answers,
        // before our caller reads what we leave.
        (void)control_request(g.runtime_dir, {{"cmd", "sync"}}, 2000);
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 125;
}

}  // namespace

void add_run_command(CLI::App& app, Registry& reg) {
    struct Opts {
        std::string session;
        std::vector<std::string> command;
    };
    auto opts = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand(
        "run",
        "Run CMD as a guarded agent in a fresh session (a cgroup of its own under the\n"
        "killswitch parent cgroup). CMD and everything it starts are guarded from their first\n"
        "instruction. Exit status: CMD's, 128+N if CMD was killed by signal N, 125 if it could\n"
        "not be started guarded (no daemon, bad session name), 126/127 if CMD could not be\n"
        "executed. SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 sent to this process reach every\n"
        "process of the session; its pid also names the session for `killswitch freeze|thaw|kill\n"
        "--pid`. If this process dies (killed, its terminal gone), the daemon kills the session's\n"
        "processes (policy sessions.wrapper_exit: kill-session, or keep). When a rule freezes the\n"
        "session, it says so here, and what a person can run. Needs root and a running daemon.\n\n"
        "Example: killswitch run --session fix-migrations -- claude -p 'fix the migration'");
    cmd->add_option("--session", opts->session,
                    "Session name: 1-64 letters, digits, '-', '_', '.' (default: run-PID)");
    cmd->add_option("command", opts->command, "The command and its arguments, after --")
        ->required();
    cmd->positionals_at_end();
    cmd->callback([&reg, opts] {
        reg.action = [&reg, opts] { return run_guarded(reg.global, opts->session, opts->command); };
    });
}

}  // namespace ks::cli
