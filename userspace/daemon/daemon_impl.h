// The daemon's internals, shared by its source files. The daemon is the event
// loop and a router; it owns no rule:
//   daemon.cpp        start-up, the event loop, process records, the tick
//   router.cpp        each decision record: decode -> enrich -> decide_<capability>
//                     -> Enforcer::apply -> render -> audit
//   layers.cpp        the BPF layers: loading, choosing the hook layer, attaching
//   requests.cpp      the control socket's requests and `killswitch status`
//   policy_state.cpp  compile, publish, swap (start-up and `policy reload`)
//   allow_windows.cpp maintenance windows
//   session_ends.cpp  how sessions end: escalation, frozen sessions' timeout,
//                     the death of a `killswitch run` wrapper
//   db_relay.cpp      the database relay: started with the socket path, the
//                     judge of every request it reads
#pragma once

#include <bpf/bpf.h>
#include <fcntl.h>
#include <killswitch/abi/events.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "abi/decode.h"
#include "actions/actions.h"
#include "actions/emergency.h"
#include "actions/enforcer.h"
#include "actions/frozen_sessions.h"
#include "audit/audit.h"
#include "audit/render.h"
#include "common/fd.h"
#include "common/host_root.h"
#include "common/identity.h"
#include "common/layer.h"
#include "common/log.h"
#include "common/pins.h"
#include "common/sysfs.h"
#include "common/uprobe_scope.h"
#include "control/control.h"
#include "daemon/daemon.h"
#include "daemon/service_notify.h"
#include "db_guard/db_guard_bpf.h"
#include "db_guard/db_relay_decide.h"
#include "db_guard/db_wire_bpf.h"
#include "db_guard/listen_watch.h"
#include "db_guard/listeners.h"
#include "db_guard/server_builds.h"
#include "db_guard/volume.h"
#include "db_relay/relay.h"
#include "decision/decision.h"
#include "decision/escalation.h"
#include "file_guard/file_guard_bpf.h"
#include "file_guard/protected_set.h"
#include "file_guard/space_budget.h"
#include "hook_guard/hook_guard_bpf.h"
#include "outputs/metrics.h"
#include "outputs/outputs.h"
#include "outputs/sink.h"
#include "policy/compile.h"
#include "policy/policy.h"
#include "process_guard/enrich.h"
#include "process_guard/process_guard_bpf.h"
#include "process_guard/process_table.h"
#include "process_guard/sessions.h"
#include "seccomp_guard/filter.h"
#include "seccomp_guard/notice.h"
#include "self_guard/reach.h"
#include "self_guard/self_guard_bpf.h"

namespace ks::daemon_detail {

using nlohmann::json;

constexpr size_t kMaxClients = 64;

// A record about killswitch itself (start, stop, lost events, uninstall).
inline nlohmann::json own_record(const char* event) {
    return {{"event", event},       {"pid", ::getpid()},       {"ppid", ::getppid()},
            {"comm", "killswitch"}, {"exe", "/proc/self/exe"}, {"session", nullptr},
            {"uid", ::getuid()}};
}

// The name the kernel gives a process (/proc/PID/comm), "" when it is gone.
// The audit file's mode and group as the policy sets them.
inline AuditFileAccess audit_access(const policy::Policy& p) {
    return {p.audit_file_mode, p.audit_gid};
}

inline std::string comm_of(int pid) {
    auto comm = read_file("/proc/" + std::to_string(pid) + "/comm");
    std::string c = comm ? *comm : "";
    while (!c.empty() && c.back() == '\n') c.pop_back();
    return c;
}

// The parent of a process (/proc/PID/stat), 0 when it is gone.
inline int ppid_of(int pid) {
    auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    if (!stat) return 0;
    // pid (comm) state ppid: comm may hold spaces and parentheses.
    size_t close = stat->rfind(')');
    if (close == std::string::npos) return 0;
    int ppid = 0;
    char state = 0;
    if (std::sscanf(stat->c_str() + close + 1, " %c %d", &state, &ppid) != 2) return 0;
    return ppid;
}

// The policy in force: the compiled value, and the protected set built from
// its paths (the one part that reads the file system). Built in full, and
// checked, before any of it reaches the kernel.
struct PolicyState {
    policy::CompiledPolicy compiled;
    ProtectedSet protected_set;
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
    // daemon.cpp
    void acquire_lock();
    void load_policy();
    static int on_record(void* ctx, void* data, size_t size);
    void handle_ringbuf();
    void handle_event(const Event& ev);
    void on_exec(const ExecEvent& ev);
    void on_fork(const ForkEvent& ev);
    void on_exit(const ExitEvent& ev);
    void on_tick();
    void on_client_readable(int fd);

    // router.cpp: one route per decision record
    void on_file(const FileEvent& ev);
    // KS_FF_ASK: true when the chmod or chown changes nothing and was let
    // go (file_guard/metadata_change.h).
    bool pass_unchanged_metadata(const FileEvent& ev);
    // KS_OP_SYMLINK_TO with KS_FF_ASK: true when the link would reach no
    // protected data and its maker was let go; else ev is rewritten with
    // the rule of what it reaches (link: the link's path, when read).
    bool symlink_reaches_nothing(FileEvent& ev, std::string& link);
    void on_exec_check(const ExecCheckEvent& ev);
    void on_db_check(const DbCheckEvent& ev);
    void on_db_wire(const DbWireEvent& ev);

    // db_relay.cpp
    void start_relay();
    void sync_relay();
    void service_relay();
    relay::Verdict judge_relayed(uint64_t conn, relay::Origin o, const relay::Request& req,
                                 const std::vector<relay::RowCheck>& checks,
                                 const std::optional<relay::ProbeAnswer>& probe,
                                 const relay::UniqueKeys& known, uint64_t asked_boot_ns);
    void resolve_relay_hold(const Hold& h, bool approve, const std::string& why);
    void relay_closed(const relay::Origin& o, const std::string& why);
    void on_tamper(const TamperEvent& ev);
    // A guarded process went for a process outside its session (reach).
    void on_reach(const TamperEvent& ev);
    // The first process ev's call reaches that is outside the caller's
    // session, its wrapper and the programs the policy names; none: let it go.
    std::optional<ReachedProcess> outside_of_session(const TamperEvent& ev) const;
    void resolve_hold(const Hold& h, bool approve, const std::string& why);
    [[nodiscard]] Subject subject_of(const EventHeader& h) const;
    // A process known by its pid alone (the relay's clients, held requests).
    [[nodiscard]] Subject subject_of_pid(int pid, uint32_t session_id, uint64_t ts_boot_ns) const;
    // Applies the decision (after the session step: escalation, the terms
    // of a freeze), renders the record with the facts (and extra fields
    // computed after the action), and appends it.
    ActionResult carry_out(std::string_view event, const Subject& s, const json& facts, Decision d,
                           const json& extra = json::object());

    // session_ends.cpp
    // The decide step about the session: repeated refusals escalate (the
    // policy's sessions:), a freeze gets its timeout and end.
    void session_step(Decision& d, const Subject& s);
    // After the Enforcer: a session the decision froze is registered and
    // announced where a person sees it.
    void after_session_action(const Decision& d, const Subject& s, const ActionResult& r);
    // Writes msg where the people behind a session read: its `killswitch
    // run` wrapper's stderr or terminal, else its first process's; skips
    // already_told. Returns where it went, "" if nowhere.
    std::string announce(const Session& s, const std::string& msg, int already_told = 0);
    // On the tick: frozen sessions whose time is up end; sessions whose
    // wrapper died end or stay, by policy; a frozen session thawed by hand
    // is no longer waited for.
    void end_sessions_on_tick();
    // A parent that stops itself when its child stops (su and runuser pass job
    // control up) stays stopped once the daemon has let a held child go or
    // ended it: its stopped ancestors in the session are continued, at once
    // and at the next ticks (one may stop itself after the child's verdict).
    void continue_stopped_parents(const Subject& held);
    void continue_stopped_ancestors(const Subject& held) const;
    void continue_stopped_parents_on_tick();
    // A person froze, thawed or killed these cgroups: no timeout of ours
    // applies to them any more.
    void person_decided(const std::vector<std::string>& cgroup_dirs);
    void forget_session(uint32_t session_id);
    json frozen_json(const Session& s) const;
    [[nodiscard]] EscalationRule escalation_rule() const;
    // Restores the frozen sessions and wrappers an earlier daemon kept.
    void restore_session_ends();
    void save_wrappers() const;

    // layers.cpp
    void start_layers();
    // The hook layer: LSM where this kernel runs it, else fentry where it
    // runs that (a probe proves either); sets hbpf_, and lsm_reason_ and
    // fentry_reason_ say why a kind is not used.
    void start_hook_layer();
    std::string try_hook_layer(HookKind kind);
    [[nodiscard]] json hook_json(HookKind kind) const;
    // Takes ownership: the daemon attaches, reports and tears down its layers
    // by looping over this list.
    template <typename T>
    T* add_layer(std::unique_ptr<T> layer) {
        T* raw = layer.get();
        layers_.push_back(std::move(layer));
        return raw;
    }
    // Every layer but process_guard is attached only while something can be
    // guarded; returns false (and logs) if file_guard could not be attached.
    // They are detached kDetachGrace after the last need went (on a tick):
    // agents that start one short session after another do not pay a detach
    // and an attach (seconds on a loaded host) each time. A daemon stopped
    // before then leaves them pinned and attached, like every layer it stops
    // with (fail-closed); the next daemon adopts them.
    bool update_file_layer(bool force_on = false);
    static constexpr std::chrono::seconds kDetachGrace{10};
    std::optional<std::chrono::steady_clock::time_point> detach_due_;
    std::optional<std::chrono::steady_clock::time_point> syscalls_detach_due_;
    [[nodiscard]] json layers_json() const;

    // policy_state.cpp
    // The command line's --mode, --audit-log, --db and --protect over a policy.
    Result<policy::Policy> apply_overrides(policy::Policy p) const;
    [[nodiscard]] policy::Environment environment() const;
    // compile, then the protected set; running: the policy in force.
    Result<PolicyState> build_state(policy::Policy p, const std::string& file,
                                    const policy::CompiledPolicy* running) const;
    // Writes next to the kernel; previous (the state in force) says what to
    // remove. On failure the kernel holds a mix: publish previous back.
    Status publish_state(const PolicyState& next, const PolicyState* previous);
    json reload_policy(const json& req, const PeerCred& peer);
    // A protected path that appeared, went or was made anew since the set
    // was built, or a change of the mount table (a bind mount of protected
    // data): the set is built again and published, and each change recorded
    // (protect_root). Checked every tick and when the mount table changes.
    void refresh_protected_set(bool mounts_changed);
    // databases.discover: what running servers listen on beyond the
    // policy's endpoints (db_guard/listeners.h), looked for at each policy
    // load, every kDiscoverEvery, and as a server, proxy or forwarder begins
    // to listen on TCP (listen: that note; db_guard/listen_watch.h);
    // watched_endpoints() is both.
    // discover_db_listeners() looks at once (at start, at a policy load);
    // look_for_db_listeners() on a thread of its own (periodic, a listen),
    // on_db_listeners_found() applying what it found.
    void discover_db_listeners();
    void look_for_db_listeners(const ks_listen_note* listen = nullptr);
    void on_db_listeners_found();
    void apply_db_listeners(std::vector<db::Listener> all,
                            const std::optional<ks_listen_note>& listen);
    [[nodiscard]] bool discovering() const;
    void on_listen_notes();
    [[nodiscard]] std::vector<db::Endpoint> watched_endpoints(
        const policy::CompiledPolicy& c) const;
    [[nodiscard]] const policy::Policy& policy() const { return state_.compiled.policy; }

    // allow_windows.cpp: allow.start, allow.list, allow.end
    json handle_allow(const std::string& cmd, const json& req, const PeerCred& peer);
    void end_window(AllowWindow& w, const std::string& how, const json& by);
    // Windows whose time is up (the kernel already ignores them), and windows
    // of sessions that ended: allow_end records.
    void close_windows(const std::vector<Session>& ended_sessions);
    // The window of a session, for the records of what it let through.
    [[nodiscard]] json window_of(uint32_t session_id) const;
    [[nodiscard]] json open_windows() const;

    // requests.cpp
    // passed: a descriptor that came with the request (SCM_RIGHTS).
    json handle_request(const json& req, const PeerCred& peer, Fd passed = {});
    // Attaches the libc uprobes to a guarded process (scope_); a failure is
    // logged and recorded (false).
    bool scope_uprobes(int tgid);
    // A clean stop: the uprobes for every process, pinned, no more holds.
    void leave_uprobes_to_kernel();
    json status_json();
    json pinned_json() const;  // where the programs are pinned, what was adopted
    json session_record(const char* event, const Session& s);
    std::string session_name(uint32_t id) const;

    DaemonOptions opts_;
    PolicyState state_;  // the policy in force, held once
    uint64_t policy_loaded_ns_ = 0;
    // In every record (audit.h): the machine id, and this run's id.
    std::string host_id_;
    std::string run_id_ = new_run_id();
    ServiceNotifier notifier_;
    // Outputs (outputs/): started at start, fed each tick.
    void start_outputs();
    void feed_outputs();
    nlohmann::json outputs_json() const;
    std::unique_ptr<outputs::MetricsServer> metrics_;
    // Record outputs (syslog, webhook, ocsf, journald): offered every audit
    // record as it is written; each delivers from its own thread.
    std::vector<std::unique_ptr<outputs::RecordSink>> sinks_;
    std::vector<std::string> metrics_files_;
    uint64_t metrics_file_errors_ = 0;
    // "enforce, policy 1a2b3c4d5e6f, 2 sessions": the unit's status line.
    std::string service_status();
    Fd lock_fd_;
    std::string cgroup2_;
    // Every BPF layer, in load order; the typed pointers below point into it
    // for what only one layer does.
    std::vector<std::unique_ptr<Layer>> layers_;
    ProcessGuardBpf* bpf_ = nullptr;
    FileGuardBpf* fbpf_ = nullptr;
    // protect.min_free: the kernel's limits, set from each file system's
    // free space every tick.
    std::unique_ptr<SpaceBudget> space_;
    HookGuardBpf* hbpf_ = nullptr;  // null: neither hook layer is used
    // The libc uprobes of guarded processes alone (null: for every process;
    // scope_reason_ says why).
    std::unique_ptr<UprobeScope> scope_;
    std::string scope_reason_;
    int scope_sweep_ticks_ = 0;
    // New children held at fork until their uprobes were attached: from the
    // stop to the SIGCONT.
    struct {
        uint64_t count = 0, total_ns = 0, max_ns = 0;
        void add(uint64_t ns) {
            ++count;
            total_ns += ns;
            max_ns = std::max(max_ns, ns);
        }
    } fork_holds_;
    json scope_json() const;
    std::string lsm_reason_, fentry_reason_;
    // protect.min_free was on at the start: a program counts writes (the
    // file layer's tracepoints or the hook layer's file_permission).
    bool space_programs_ = false;
    DbGuardBpf* dbpf_ = nullptr;
    DbWireBpf* dwbpf_ = nullptr;  // null when this kernel refused it
    std::string db_wire_error_;
    std::unique_ptr<relay::Relay> relay_;  // null: off by policy, or it could not start
    std::string relay_error_;
    std::vector<DbWireBpf::UnixPath> relay_unix_;  // what the relay listens for
    // Requests the relay keeps for a person, by hold id.
    struct RelayHold {
        uint64_t conn = 0;
        uint32_t kind = 0;
    };
    std::map<uint64_t, RelayHold> relay_holds_;

    // seccomp_sessions.cpp: `killswitch run` sessions under a seccomp filter
    // (seccomp_guard/) where no hook layer runs. The daemon answers each call
    // the filter names before it runs; while every session is so covered,
    // no syscall tracepoint is attached and no other process pays for them.
    struct SeccompListener {
        Fd fd;
        uint32_t session_id = 0;
    };
    std::map<int, SeccompListener> seccomp_;  // by listener fd
    // Sessions whose first process is installing the filter: covered (it
    // runs only killswitch until its exec, which waits for the handoff).
    std::map<uint32_t, std::chrono::steady_clock::time_point> seccomp_pending_;
    // Long enough for a loaded host to start that process and load the
    // filter; after it the tracepoints cover the session.
    static constexpr std::chrono::seconds kSeccompHandoff{30};
    static constexpr std::chrono::microseconds kSeccompLinger{50};
    struct SeccompHold {
        int fd = -1;
        uint64_t id = 0;
    };
    std::map<uint64_t, SeccompHold> seccomp_holds_;  // by hold id
    struct SeccompUnsent {
        std::string session;
        uint64_t cookie = 0;
        int error = 0;
    };
    std::vector<SeccompUnsent> seccomp_unsent_;      // decided before the listener came back
    std::string seccomp_reason_;                     // why run sessions get no filter ("": they do)
    struct {
        uint64_t asked = 0, refused = 0, passed = 0, unreadable = 0, judge_ns = 0;
    } seccomp_counts_;
    void start_seccomp();
    [[nodiscard]] bool seccomp_covers(uint32_t session_id) const;
    // No guarded process can exist outside a covered session.
    [[nodiscard]] bool syscall_tracepoints_needed() const;
    json accept_seccomp(const json& req, const PeerCred& peer, Fd passed);
    void on_seccomp(int fd, uint32_t events);
    void judge_seccomp(int fd, const seccomp::Notice& n);
    // What the call's paths reach: the first protected object, as a record
    // of the file guard's (layer seccomp); none: the call goes on.
    std::optional<FileEvent> seccomp_file_event(const EventHeader& h, const seccomp::Call& c);
    // The rule of a protected root on the file system at path (a remount of
    // it), if the data of one is there (not killswitch's own, not
    // protect.system's).
    [[nodiscard]] std::optional<uint32_t> data_fs_rule(const std::string& path) const;
    // fallocate: within the space budget's headroom (protect.min_free).
    [[nodiscard]] bool space_allows(int tid, const seccomp::Call& c) const;
    std::optional<FileEvent> seccomp_space_event(const EventHeader& h, const seccomp::Call& c);
    // ev with its rule's action, and what lets it through (monitor mode, the
    // session's allow window where the rule allows one).
    [[nodiscard]] FileEvent under_rule(FileEvent ev) const;
    // An open for writing of another process's /proc/PID/mem: c becomes
    // that process's reach (ptrace).
    void into_other_memory(const EventHeader& h, seccomp::Call& c) const;
    void answer_seccomp_hold(const Hold& h, bool approve);
    void forget_seccomp(uint32_t session_id);
    [[nodiscard]] json seccomp_json() const;
    db::VolumeBudget volume_;
    // Servers' executables by build ID (a copy under another name is one);
    // used by the listener scan's thread and the main loop (it locks).
    db::ServerBuilds server_builds_;
    std::vector<db::Listener> discovered_;
    std::chrono::steady_clock::time_point discovered_at_{};
    std::unique_ptr<ListenWatch> listen_watch_;  // null: the kernel refused it
    // A look for listeners under way on its thread (look_for_db_listeners).
    struct ListenerScan {
        std::thread thread;
        Fd done{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};  // written when it has found
        std::mutex mu;
        std::vector<db::Listener> found;     // under mu
        std::optional<ks_listen_note> note;  // the listen that asked for it
        bool again = false;                  // asked for again meanwhile
        std::optional<ks_listen_note> again_note;
        ~ListenerScan() {
            if (thread.joinable()) thread.join();
        }
    } scan_;
    static constexpr std::chrono::seconds kDiscoverEvery{5};
    SelfGuardBpf* sgbpf_ = nullptr;
    HoldRegistry holds_;
    Enforcer enforcer_{holds_};
    Escalation escalation_;
    FrozenSessions frozen_;
    // `killswitch run` wrappers, by session id: pid and start time (a pid
    // reused by another process is not the wrapper).
    struct Wrapper {
        int pid = 0;
        uint64_t start_time = 0;
    };
    std::map<uint32_t, Wrapper> wrappers_;
    struct StoppedParentWatch {
        Subject held;
        int ticks_left = 0;
    };
    std::vector<StoppedParentWatch> stopped_parent_watch_;
    static bool wrapper_alive(const Wrapper& w);
    std::map<uint32_t, AllowWindow> windows_;  // by session id, the last of each
    uint32_t next_window_id_ = 1;
    std::unique_ptr<SessionManager> sessions_;
    std::unique_ptr<RingBuffer> rb_;
    std::optional<AuditWriter> audit_;
    std::optional<ControlServer> control_;
    ProcessTable table_;
    Fd epoll_, signal_fd_, timer_fd_;
    Fd mountinfo_fd_;  // polled (EPOLLPRI): the mount table changed
    // A host whose mounts churn (containers) builds the set again at most
    // once a second: a change within a second of the last waits for the tick.
    bool mounts_dirty_ = false;
    std::chrono::steady_clock::time_point mounts_refreshed_{};
    struct Client {
        Fd fd;
        std::string buf;
        Fd passed;  // a descriptor that came with the request
    };
    std::map<int, Client> clients_;
    bool stopping_ = false;
    uint64_t started_ns_ = 0;
    pins::Found adopted_;  // what an earlier daemon had pinned
    uint64_t lost_reported_ = 0;
    uint64_t guard_full_reported_ = 0;
    uint64_t decode_errors_ = 0;
    uint64_t metadata_unchanged_ = 0;  // chmod/chown let go as changing nothing
    // Records found by the tick that should have woken the daemon at once
    // (wakes_daemon): a task waited for the tick. Zero unless the kernel's
    // wake-up is broken; status --json shows it as wakeups_missed.
    uint64_t wakeups_missed_ = 0;
    uint64_t tick_read_ns_ = 0;  // non-zero while the tick reads unannounced records
};

}  // namespace ks::daemon_detail
