// The daemon's internals, shared by its source files: daemon.cpp (start-up,
// event loop, process events, control socket) and file_protection.cpp.
#pragma once

#include <fcntl.h>
#include <killswitch/abi/events.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <memory>

#include "actions/actions.h"
#include "actions/emergency.h"
#include "audit/audit.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/pins.h"
#include "common/sysfs.h"
#include "control/control.h"
#include "daemon/daemon.h"
#include "db_guard/classify.h"
#include "db_guard/db_guard_bpf.h"
#include "db_guard/db_wire_bpf.h"
#include "db_guard/endpoints.h"
#include "file_guard/exec_rules.h"
#include "file_guard/file_guard_bpf.h"
#include "file_guard/protected_set.h"
#include "policy/policy.h"
#include "process_guard/events.h"
#include "process_guard/guard_bpf.h"
#include "process_guard/process_table.h"
#include "process_guard/self_guard_bpf.h"
#include "process_guard/sessions.h"

namespace ks::daemon_detail {

using nlohmann::json;

constexpr size_t kMaxClients = 64;
constexpr size_t kMaxProtectedInodes = 262144;

// Fixed rule ids; the protected paths follow.
constexpr uint32_t kRuleUnresolved = 0;
constexpr uint32_t kRuleIoUring = 1;
constexpr uint32_t kRuleExecCommand = 2;
constexpr uint32_t kRuleFirstPath = 3;

inline uint64_t boottime_ns() {
    timespec ts{};
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint32_t to_kernel_action(policy::Action a) {
    switch (a) {
        case policy::Action::Audit:
            return KS_ACT_AUDIT;
        case policy::Action::Block:
            return KS_ACT_BLOCK;
        case policy::Action::Kill:
            return KS_ACT_KILL;
        case policy::Action::Freeze:
            return KS_ACT_FREEZE;
        case policy::Action::KillSession:
            return KS_ACT_KILL_SESSION;
        case policy::Action::Hold:
            return KS_ACT_HOLD;
    }
    return KS_ACT_BLOCK;
}

// A record about killswitch itself (start, stop, lost events, uninstall).
inline nlohmann::json own_record(const char* event) {
    return {{"event", event},       {"pid", ::getpid()}, {"ppid", ::getppid()},
            {"comm", "killswitch"}, {"exe", "/proc/self/exe"}, {"session", nullptr},
            {"uid", ::getuid()}};
}

// Fatal start-up error: one line, then a non-zero exit. Everything acquired
// so far is released by the destructors on the way out.
struct StartupError {
    std::string message;
};

class Daemon {
  public:
    explicit Daemon(DaemonOptions opts) : opts_(std::move(opts)) {}
    void start();
    void run();
    void shutdown();

  private:
    void acquire_lock();
    void load_policy();
    void handle_ringbuf();
    static int on_record(void* ctx, void* data, size_t size);
    void handle_event(const Event& ev);
    void on_exec(const ExecEvent& ev);
    void on_fork(const ForkEvent& ev);
    void on_exit(const ExitEvent& ev);
    void on_file(const FileEvent& ev);
    void on_exec_check(const ExecCheckEvent& ev);
    void on_db_check(const DbCheckEvent& ev);
    void on_db_wire(const DbWireEvent& ev);
    void on_db_unix_connect(const DbWireEvent& ev);
    void start_file_protection();
    void start_db_protection();
    void start_self_protection();
    void on_tamper(const TamperEvent& ev);
    // The kernel refused a request: the policy's action, then the session's.
    void apply_db_action(const EventHeader& h, json& rec);
    // What happens to the whole session after a blocked or killed operation.
    void after_violation(uint32_t session_id, uint64_t entry_boot_ns, json& rec);
    void apply_action(uint32_t action, const EventHeader& h, const std::string& layer,
                      const std::string& op, const std::string& path, const std::string& rule,
                      const std::string& command, json& rec);
    void resolve_hold(const Hold& h, bool approve, const std::string& why);
    // The file protection programs are attached only while something can be
    // guarded; returns false (and logs) if they could not be attached.
    bool update_file_layer(bool force_on = false);
    std::string rule_name(uint32_t id) const;
    void on_tick();
    void on_client_readable(int fd);
    json handle_request(const json& req, const PeerCred& peer);
    json status_json();
    json process_record(const char* event, const EventHeader& h);
    json session_record(const char* event, const Session& s);
    std::string session_name(uint32_t id) const;

    DaemonOptions opts_;
    policy::Policy policy_;
    Fd lock_fd_;
    std::string cgroup2_;
    std::unique_ptr<GuardBpf> bpf_;
    std::unique_ptr<FileGuardBpf> fbpf_;
    std::unique_ptr<DbGuardBpf> dbpf_;
    std::unique_ptr<DbWireBpf> dwbpf_;
    std::unique_ptr<SelfGuardBpf> sgbpf_;
    std::vector<db::Endpoint> db_endpoints_;
    bool db_client_probes_ = true;
    ProtectedSet protected_;
    std::vector<std::string> rule_names_;
    std::vector<RuleSlot> rule_slots_;
    HoldRegistry holds_;
    std::unique_ptr<SessionManager> sessions_;
    std::unique_ptr<RingBuffer> rb_;
    std::optional<AuditWriter> audit_;
    std::optional<ControlServer> control_;
    ProcessTable table_;
    Fd epoll_, signal_fd_, timer_fd_;
    struct Client {
        Fd fd;
        std::string buf;
    };
    std::map<int, Client> clients_;
    bool stopping_ = false;
    uint64_t started_ns_ = 0;
    pins::Found adopted_;  // what an earlier daemon had pinned
    uint64_t lost_reported_ = 0;
    uint64_t guard_full_reported_ = 0;
    uint64_t decode_errors_ = 0;
};

}  // namespace ks::daemon_detail
