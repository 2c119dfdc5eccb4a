// The daemon's internals, shared by its source files: daemon.cpp (start-up,
// event loop, process events, control socket), file_protection.cpp,
// db_protection.cpp and policy_state.cpp (the state derived from the policy,
// and `policy reload`).
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
#include <chrono>
#include <climits>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

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
#include "file_guard/hook_guard_bpf.h"
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

// The name the kernel gives a process (/proc/PID/comm), "" when it is gone.
inline std::string comm_of(int pid) {
    auto comm = read_file("/proc/" + std::to_string(pid) + "/comm");
    std::string c = comm ? *comm : "";
    while (!c.empty() && c.back() == '\n') c.pop_back();
    return c;
}

// Everything the daemon derives from a policy. Built in full, and checked,
// before any of it reaches the kernel (at start-up and at `policy reload`).
struct PolicyState {
    policy::Policy policy;
    std::string file;  // the policy file; empty: the built-in policy
    ProtectedSet protected_set;
    // Indexed by rule id, KS_MAX_RULES entries. The path and self rules of a
    // policy occupy [bank_first, bank_end); a reload places its own where the
    // running policy's are not, so that each protected inode moves from its
    // old rule to its new one in a single map update, and records of the old
    // rules still read back with the old names.
    std::vector<std::string> rule_names;
    std::vector<RuleSlot> rule_slots;
    uint32_t bank_first = 0;
    uint32_t bank_end = 0;
    std::vector<db::Endpoint> db_endpoints;
    DbWireConfig db_wire;
    bool db_client_monitor = false;  // the libpq layer records, never holds
};

// A maintenance window (`killswitch allow`): until until_boot_ns the kernel
// lets the session's destructive operations through, self-protection
// excepted. The kernel compares the time; the daemon records the end.
struct AllowWindow {
    uint32_t id = 0;
    uint32_t session_id = 0;
    std::string session;
    std::string reason;
    json opened_by;  // {pid, uid, comm}
    uint64_t opened_realtime_ns = 0;
    uint64_t until_boot_ns = 0;
    uint64_t until_realtime_ns = 0;
    uint32_t seconds = 0;
    bool open = true;
    [[nodiscard]] json to_json() const;
};

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
    // The command line's --mode, --audit-log, --db and --protect over a policy.
    Result<policy::Policy> apply_overrides(policy::Policy p) const;
    // policy_state.cpp
    Result<PolicyState> build_state(policy::Policy p, const std::string& file) const;
    // Writes next to the kernel; previous (the state in force) says what to
    // remove. On failure the kernel holds a mix: publish previous back.
    Status publish_state(const PolicyState& next, const PolicyState* previous);
    void adopt_state(PolicyState&& s);
    [[nodiscard]] PolicyState current_state() const;
    json reload_policy(const json& req, const PeerCred& peer);
    // allow_windows.cpp: allow.start, allow.list, allow.end
    json handle_allow(const std::string& cmd, const json& req, const PeerCred& peer);
    void end_window(AllowWindow& w, const std::string& how, const json& by);
    // Windows whose time is up (the kernel already ignores them), and windows
    // of sessions that ended: allow_end records.
    void close_windows(const std::vector<Session>& ended_sessions);
    // The window of a session, for the records of what it let through.
    [[nodiscard]] json window_of(uint32_t session_id) const;
    [[nodiscard]] json open_windows() const;
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
    // The hook layer: LSM where this kernel runs it, else fentry where it
    // runs that (a probe proves either); sets hbpf_, and lsm_reason_ and
    // fentry_reason_ say why a kind is not used.
    void start_hook_layer();
    // Loads, probes and keeps one kind; "" or why not.
    std::string try_hook_layer(HookKind kind);
    [[nodiscard]] json hook_json(HookKind kind) const;
    // What the "self:" rules protect, for a policy and the file it came from.
    [[nodiscard]] std::vector<std::string> self_paths(const policy::Policy& p,
                                                      const std::string& policy_file) const;
    void start_db_protection();
    void start_self_protection();
    void on_tamper(const TamperEvent& ev);
    // The kernel refused a request: the policy's action, then the session's.
    void apply_db_action(const EventHeader& h, json& rec);
    // When the policy freezes sessions after a violation: freezes the session
    // at once, before the decision's record is built; after_violation then
    // reports that freeze instead of writing cgroup.freeze again.
    void freeze_first(uint32_t session_id);
    struct EarlyFreeze {
        bool valid = false;
        uint32_t session_id = 0;
        uint64_t frozen_boot_ns = 0;
        std::string error;
    };
    EarlyFreeze early_freeze_;
    // What happens to the whole session after a blocked or killed operation.
    void after_violation(uint32_t session_id, uint64_t entry_boot_ns, json& rec);
    void apply_action(uint32_t action, const EventHeader& h, const std::string& layer,
                      const std::string& op, const std::string& path, const std::string& rule,
                      const std::string& command, json& rec);
    void resolve_hold(const Hold& h, bool approve, const std::string& why);
    // The file protection programs are attached only while something can be
    // guarded; returns false (and logs) if they could not be attached. They
    // are detached kDetachGrace after the last need went (on a tick): agents
    // that start one short session after another do not pay a detach and an
    // attach (seconds on a loaded host) each time. A daemon stopped before
    // then leaves them pinned and attached, like every layer it stops with
    // (fail-closed); the next daemon adopts them.
    bool update_file_layer(bool force_on = false);
    static constexpr std::chrono::seconds kDetachGrace{10};
    std::optional<std::chrono::steady_clock::time_point> detach_due_;
    std::string rule_name(uint32_t id) const;
    void on_tick();
    void on_client_readable(int fd);
    json handle_request(const json& req, const PeerCred& peer);
    json status_json();
    json pinned_json() const;  // where the programs are pinned, what was adopted
    json process_record(const char* event, const EventHeader& h);
    json session_record(const char* event, const Session& s);
    std::string session_name(uint32_t id) const;

    DaemonOptions opts_;
    policy::Policy policy_;
    std::string policy_file_;  // the file in force; empty: the built-in policy
    uint64_t policy_loaded_ns_ = 0;
    uint32_t rule_bank_first_ = 0, rule_bank_end_ = 0;
    Fd lock_fd_;
    std::string cgroup2_;
    std::unique_ptr<GuardBpf> bpf_;
    std::unique_ptr<FileGuardBpf> fbpf_;
    // null: neither hook layer is used (lsm_reason_, fentry_reason_ say why)
    std::unique_ptr<HookGuardBpf> hbpf_;
    std::string lsm_reason_, fentry_reason_;
    std::unique_ptr<DbGuardBpf> dbpf_;
    std::unique_ptr<DbWireBpf> dwbpf_;  // null when this kernel refused it
    std::string db_wire_error_;
    std::unique_ptr<SelfGuardBpf> sgbpf_;
    std::vector<db::Endpoint> db_endpoints_;
    bool db_client_probes_ = true;
    DbWireConfig db_wire_;
    bool db_client_monitor_ = false;
    ProtectedSet protected_;
    std::vector<std::string> rule_names_;
    std::vector<RuleSlot> rule_slots_;
    HoldRegistry holds_;
    std::map<uint32_t, AllowWindow> windows_;  // by session id, the last of each
    uint32_t next_window_id_ = 1;
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
    // Decisions, counted from the records as they are written.
    struct Decisions {
        uint64_t blocked = 0, killed = 0, frozen = 0, held = 0, window_allowed = 0,
                 monitored = 0, tamper = 0;
        void count(const nlohmann::json& rec);
    } decisions_;
    uint64_t lost_reported_ = 0;
    uint64_t guard_full_reported_ = 0;
    uint64_t decode_errors_ = 0;
};

}  // namespace ks::daemon_detail
