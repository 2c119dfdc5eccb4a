#include "daemon/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <killswitch/abi/events.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <memory>

#include "actions/actions.h"
#include "audit/audit.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/sysfs.h"
#include "control/control.h"
#include "file_guard/exec_rules.h"
#include "file_guard/file_guard_bpf.h"
#include "file_guard/protected_set.h"
#include "policy/policy.h"
#include "process_guard/events.h"
#include "process_guard/guard_bpf.h"
#include "process_guard/process_table.h"
#include "process_guard/sessions.h"

namespace ks {
namespace {

using nlohmann::json;

constexpr size_t kMaxClients = 64;
constexpr size_t kMaxProtectedInodes = 262144;

// Fixed rule ids; the protected paths follow.
constexpr uint32_t kRuleUnresolved = 0;
constexpr uint32_t kRuleIoUring = 1;
constexpr uint32_t kRuleExecCommand = 2;
constexpr uint32_t kRuleFirstPath = 3;

uint64_t boottime_ns() {
    timespec ts{};
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint32_t to_kernel_action(policy::Action a) {
    switch (a) {
        case policy::Action::Audit: return KS_ACT_AUDIT;
        case policy::Action::Block: return KS_ACT_BLOCK;
        case policy::Action::Kill: return KS_ACT_KILL;
        case policy::Action::Freeze: return KS_ACT_FREEZE;
        case policy::Action::KillSession: return KS_ACT_KILL_SESSION;
        case policy::Action::Hold: return KS_ACT_HOLD;
    }
    return KS_ACT_BLOCK;
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
    void start_file_protection();
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
    uint64_t lost_reported_ = 0;
    uint64_t guard_full_reported_ = 0;
    uint64_t decode_errors_ = 0;
};

void Daemon::acquire_lock() {
    if (::mkdir(opts_.runtime_dir.c_str(), 0700) != 0 && errno != EEXIST)
        throw StartupError{"create runtime directory " + opts_.runtime_dir + ": " + std::strerror(errno)};
    std::string path = opts_.runtime_dir + "/daemon.lock";
    lock_fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock_fd_.valid()) throw StartupError{"open " + path + ": " + std::strerror(errno)};
    if (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
        auto other = read_file(path);
        std::string pid = other ? *other : "";
        while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
        throw StartupError{"another killswitch daemon is running" +
                           (pid.empty() ? std::string() : " (pid " + pid + ")") + "; lock " + path};
    }
    std::string me = std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock_fd_.get(), 0) != 0 || ::pwrite(lock_fd_.get(), me.data(), me.size(), 0) < 0)
        spdlog::warn("write pid to {}: {}", path, std::strerror(errno));
}

void Daemon::load_policy() {
    policy::LoadResult res = opts_.policy_file.empty() ? policy::LoadResult{policy::default_policy(), {}, {}}
                                                       : policy::load_policy_file(opts_.policy_file);
    for (const auto& w : res.warnings) spdlog::warn("{}", w.warning_str());
    if (!res.policy) {
        std::string msg = "invalid policy";
        for (const auto& e : res.errors) msg += "\n  " + e.str();
        throw StartupError{msg};
    }
    policy_ = *res.policy;
    if (!opts_.mode.empty()) {
        auto m = policy::parse_mode(opts_.mode);
        if (!m) throw StartupError{"--mode must be enforce or monitor, not '" + opts_.mode + "'"};
        policy_.mode = *m;
    }
    if (!opts_.audit_log.empty()) policy_.audit_log = opts_.audit_log;
    for (const auto& p : opts_.protect) {
        if (p.empty() || p[0] != '/') throw StartupError{"--protect needs an absolute path, not '" + p + "'"};
        // The same spelling rules as policy paths: no "//", no trailing '/'.
        std::string norm;
        for (char c : p)
            if (!(c == '/' && !norm.empty() && norm.back() == '/')) norm += c;
        while (norm.size() > 1 && norm.back() == '/') norm.pop_back();
        if (std::find(policy_.protect_paths.begin(), policy_.protect_paths.end(), norm) ==
            policy_.protect_paths.end())
            policy_.protect_paths.push_back(norm);
    }
}

void Daemon::start() {
    if (::geteuid() != 0) throw StartupError{"the daemon must run as root (it loads BPF programs)"};
    acquire_lock();
    load_policy();

    // Later layers attach syscall tracepoints (tracefs) and pin state (bpffs).
    if (auto t = ensure_mounted("tracefs", "/sys/kernel/tracing", true); !t)
        throw StartupError{"tracefs: " + t.error().str()};
    if (auto b = ensure_mounted("bpf", "/sys/fs/bpf"); !b)
        throw StartupError{"bpffs: " + b.error().str()};
    auto cg = cgroup2_mount();
    if (!cg) throw StartupError{cg.error().str()};
    cgroup2_ = *cg;

    auto bpf = GuardBpf::load({.hold_seeded_tasks = policy_.hold_agents_at_exec});
    if (!bpf) throw StartupError{bpf.error().str()};
    bpf_ = std::move(bpf.value());
    if (auto st = bpf_->set_agent_names(policy_.agent_names); !st) throw StartupError{st.error().str()};
    if (auto st = bpf_->set_guarded_uids(policy_.guard_uids); !st) throw StartupError{st.error().str()};

    start_file_protection();

    sessions_ = std::make_unique<SessionManager>(*bpf_, cgroup2_, opts_.cgroup_parent);
    if (auto st = sessions_->start(policy_.guard_cgroups); !st) throw StartupError{st.error().str()};
    if (!update_file_layer()) throw StartupError{"cannot attach the file protection programs"};

    auto audit = AuditWriter::open(policy_.audit_log);
    if (!audit) throw StartupError{audit.error().str()};
    audit_.emplace(std::move(audit.value()));

    auto rb = RingBuffer::open(bpf_->ringbuf_map_fd(), &Daemon::on_record, this);
    if (!rb) throw StartupError{rb.error().str()};
    rb_ = std::move(rb.value());

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    signal_fd_.reset(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    timer_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    itimerspec its{{1, 0}, {1, 0}};
    timerfd_settime(timer_fd_.get(), 0, &its, nullptr);
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!signal_fd_.valid() || !timer_fd_.valid() || !epoll_.valid())
        throw StartupError{std::string("event loop setup: ") + std::strerror(errno)};

    // The socket comes last: once it accepts, the daemon is ready.
    auto srv = ControlServer::listen(control_socket_path(opts_.runtime_dir));
    if (!srv) throw StartupError{srv.error().str()};
    control_.emplace(std::move(srv.value()));

    for (int fd : {rb_->epoll_fd(), signal_fd_.get(), timer_fd_.get(), control_->fd()}) {
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.fd = fd;
        if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &e) != 0)
            throw StartupError{std::string("epoll_ctl: ") + std::strerror(errno)};
    }

    started_ns_ = realtime_now_ns();
    json rec = {{"event", "daemon_start"}, {"pid", ::getpid()}, {"ppid", ::getppid()},
                {"comm", "killswitch"}, {"exe", "/proc/self/exe"}, {"session", nullptr},
                {"uid", ::getuid()}, {"mode", policy::mode_name(policy_.mode)},
                {"policy", policy_.source}, {"programs", bpf_->program_names()},
                {"protect", policy_.protect_paths}, {"agents", policy_.agent_names}};
    audit_->append(rec);
    (void)audit_->sync();
    spdlog::info("killswitch daemon ready: mode {}, policy {}, audit log {}, sessions under {}",
                 policy::mode_name(policy_.mode), policy_.source, policy_.audit_log,
                 sessions_->parent_path());
    spdlog::info("file protection: {} roots, {} inodes, {} edges; libc layer {}",
                 protected_.roots().size(), protected_.inodes().size(), protected_.edges().size(),
                 policy_.libc_uprobes && opts_.libc_uprobes ? fbpf_->libc_path() : "off");
}

void Daemon::start_file_protection() {
    auto fg = FileGuardBpf::load(bpf_->skeleton_object(), opts_.libc_uprobes && policy_.libc_uprobes);
    if (!fg) throw StartupError{fg.error().str()};
    fbpf_ = std::move(fg.value());

    bool monitor = policy_.mode == policy::Mode::Monitor;
    rule_names_ = {"unresolved-path", "io_uring", "exec-command"};
    rule_slots_ = {{to_kernel_action(policy_.unresolved_action), monitor},
                   {KS_ACT_BLOCK, monitor},
                   {to_kernel_action(policy_.protect_action), monitor}};
    std::vector<ProtectedSet::Entry> entries;
    for (const auto& path : policy_.protect_paths) {
        if (rule_slots_.size() >= KS_MAX_RULES) throw StartupError{"too many protected paths"};
        auto it = policy_.protect_path_actions.find(path);
        auto action = it != policy_.protect_path_actions.end() ? it->second : policy_.protect_action;
        entries.push_back({path, static_cast<uint32_t>(rule_slots_.size())});
        rule_names_.push_back("protect:" + path);
        rule_slots_.push_back({to_kernel_action(action), monitor});
    }
    // killswitch's own binary, policy and audit log, wherever they are.
    std::vector<std::string> self = {policy_.audit_log};
    char exe[PATH_MAX];
    if (::realpath("/proc/self/exe", exe)) self.push_back(exe);
    if (!opts_.policy_file.empty()) self.push_back(opts_.policy_file);
    for (const auto& path : self) {
        if (rule_slots_.size() >= KS_MAX_RULES) break;
        entries.push_back({path, static_cast<uint32_t>(rule_slots_.size())});
        rule_names_.push_back("self:" + path);
        rule_slots_.push_back({KS_ACT_BLOCK, monitor});
    }
    std::vector<std::string> warnings;
    protected_ = ProtectedSet::build(entries, kMaxProtectedInodes, warnings);
    for (const auto& w : warnings) spdlog::info("{}", w);
    if (auto st = fbpf_->publish(protected_); !st) throw StartupError{st.error().str()};
    if (auto st = fbpf_->set_rules(rule_slots_); !st) throw StartupError{st.error().str()};
    if (auto st = fbpf_->set_config(kRuleUnresolved, policy_.io_uring_allowed ? KS_MAX_RULES : kRuleIoUring); !st)
        throw StartupError{st.error().str()};
    if (auto st = fbpf_->set_exec_watch(watched_tools()); !st) throw StartupError{st.error().str()};
}

std::string Daemon::rule_name(uint32_t id) const {
    return id < rule_names_.size() ? rule_names_[id] : "rule-" + std::to_string(id);
}

void Daemon::after_violation(uint32_t session_id, uint64_t entry_boot_ns, json& rec) {
    const Session* s = sessions_->find(session_id);
    if (!s || policy_.violation_session_action == policy::SessionAction::None) return;
    if (policy_.violation_session_action == policy::SessionAction::Freeze) {
        auto st = cgroup_freeze(s->cgroup_path, true);
        rec["session_action"] = "freeze";
        if (st) rec["session_frozen_latency_ns"] = boottime_ns() - entry_boot_ns;
        else rec["session_action_error"] = st.error().str();
    } else {
        auto st = cgroup_kill(s->cgroup_path);
        rec["session_action"] = "kill-session";
        if (!st) rec["session_action_error"] = st.error().str();
    }
}

void Daemon::apply_action(uint32_t action, const EventHeader& h, const std::string& layer,
                          const std::string& op, const std::string& path, const std::string& rule,
                          const std::string& command, json& rec) {
    const Session* s = sessions_->find(h.session_id);
    switch (action) {
        case KS_ACT_AUDIT:
            rec["verdict"] = "audit";
            break;
        case KS_ACT_BLOCK:
        case KS_ACT_KILL:
            rec["verdict"] = action == KS_ACT_BLOCK ? "block" : "kill";
            after_violation(h.session_id, h.ts_boot_ns, rec);
            break;
        case KS_ACT_FREEZE:
            rec["verdict"] = "freeze";
            if (s) {
                auto st = cgroup_freeze(s->cgroup_path, true);
                if (st) rec["session_frozen_latency_ns"] = boottime_ns() - h.ts_boot_ns;
                else rec["session_action_error"] = st.error().str();
            }
            break;
        case KS_ACT_KILL_SESSION:
            rec["verdict"] = "kill-session";
            if (s) {
                if (auto st = cgroup_kill(s->cgroup_path); !st) rec["session_action_error"] = st.error().str();
            }
            break;
        case KS_ACT_HOLD: {
            Hold hold;
            hold.pid = h.pid;
            hold.tid = h.tid;
            hold.session_id = h.session_id;
            hold.session = session_name(h.session_id);
            hold.layer = layer;
            hold.op = op;
            hold.path = path;
            hold.rule = rule;
            hold.command = command;
            hold.created_realtime_ns = realtime_now_ns();
            const Hold& added = holds_.add(hold, std::chrono::seconds(policy_.hold_timeout_s));
            rec["verdict"] = "hold";
            rec["hold_id"] = added.id;
            rec["hold_timeout_s"] = policy_.hold_timeout_s;
            spdlog::warn("hold {}: {} {} {} by pid {} (session {}): `killswitch approve {}` or "
                         "`killswitch deny {}` within {}s",
                         added.id, layer, op, path, h.pid, hold.session, added.id, added.id,
                         policy_.hold_timeout_s);
            break;
        }
        default:
            rec["verdict"] = "unknown";
    }
}

void Daemon::on_file(const FileEvent& ev) {
    const auto& h = ev.hdr;
    std::string path = ev.path.empty() || ev.path[0] == '/' ? ev.path
                       : (ev.start_dir == "/" ? "" : ev.start_dir) + "/" + ev.path;
    if (ev.op == KS_OP_IO_URING) path = "";
    json rec = process_record("file", h);
    rec["op"] = op_name(ev.op);
    rec["path"] = ev.op == KS_OP_TRUNCATE && ev.path.empty() ? "fd " + std::to_string(ev.dfd) : path;
    if (!ev.path.empty() && ev.path != path) rec["path_arg"] = ev.path;
    rec["match"] = match_name(ev.match);
    rec["rule"] = rule_name(ev.rule_id);
    rec["layer"] = layer_name(ev.layer);
    rec["action"] = action_name(ev.action);
    rec["prevented"] = ev.layer != KS_LAYER_TRACEPOINT;
    rec["stop_latency_ns"] = ev.stop_boot_ns - h.ts_boot_ns;
    if (ev.dev || ev.ino) rec["object"] = {{"dev", ev.dev}, {"ino", ev.ino}};
    if (ev.flags & KS_FF_PASSED) {
        rec["verdict"] = "allow";
        rec["reason"] = "a person approved this operation while it was held";
    } else if (ev.flags & KS_FF_MONITOR) {
        rec["verdict"] = std::string("would-") + action_name(ev.action);
        rec["prevented"] = false;
    } else {
        uint32_t action = ev.action;
        if (action == KS_ACT_HOLD && ev.layer == KS_LAYER_TRACEPOINT) {
            // The kernel killed it: a syscall tracepoint cannot hold a call.
            action = KS_ACT_KILL;
            rec["reason"] = "a hold cannot wait at a syscall tracepoint; killed instead";
        }
        if (ev.action == KS_ACT_AUDIT) rec["prevented"] = false;
        apply_action(action, h, layer_name(ev.layer), op_name(ev.op), path, rule_name(ev.rule_id), "",
                     rec);
    }
    if (ev.layer == KS_LAYER_TRACEPOINT && rec.value("prevented", false) == false &&
        ev.action != KS_ACT_AUDIT && !(ev.flags & (KS_FF_MONITOR | KS_FF_PASSED)))
        rec["note"] = "stopped at syscall entry: this one call completes before the signal lands";
    audit_->append(std::move(rec));
}

void Daemon::on_exec_check(const ExecCheckEvent& ev) {
    const auto& h = ev.hdr;
    std::string tool = ev.filename.substr(ev.filename.find_last_of('/') + 1);
    char buf[PATH_MAX];
    std::string proc_cwd = "/proc/" + std::to_string(h.pid) + "/cwd";
    std::string cwd = ::realpath(proc_cwd.c_str(), buf) ? buf : "/";
    auto m = evaluate_exec_rules(tool, ev.argv, cwd, [&](const std::string& abs, bool follow) {
        return protected_.classify(abs, follow);
    });
    if (!m) {
        ::kill(h.pid, SIGCONT);
        return;
    }
    uint32_t rule_id = m->rule_id.value_or(kRuleExecCommand);
    RuleSlot slot = rule_id < rule_slots_.size() ? rule_slots_[rule_id] : RuleSlot{};
    std::string command;
    for (const auto& a : ev.argv) command += (command.empty() ? "" : " ") + a;

    json rec = process_record("file", h);
    rec["op"] = "exec";
    rec["path"] = m->path;
    rec["argv"] = ev.argv;
    rec["cwd"] = cwd;
    rec["rule"] = m->rule + (m->rule_id ? " (" + rule_name(rule_id) + ")" : "");
    rec["reason"] = m->reason;
    rec["layer"] = "exec";
    rec["action"] = action_name(slot.action);
    rec["prevented"] = slot.action != KS_ACT_AUDIT && !slot.monitor;
    if (slot.monitor) {
        ::kill(h.pid, SIGCONT);
        rec["verdict"] = std::string("would-") + action_name(slot.action);
    } else {
        if (slot.action == KS_ACT_BLOCK || slot.action == KS_ACT_KILL || slot.action == KS_ACT_KILL_SESSION)
            ::kill(h.pid, SIGKILL);
        else if (slot.action == KS_ACT_AUDIT)
            ::kill(h.pid, SIGCONT);
        // freeze and hold: it stays stopped.
        apply_action(slot.action, h, "exec", "exec", m->path, m->rule, command, rec);
    }
    rec["decision_latency_ns"] = boottime_ns() - h.ts_boot_ns;
    audit_->append(std::move(rec));
}

void Daemon::resolve_hold(const Hold& h, bool approve, const std::string& why) {
    json rec = {{"event", approve ? "hold_approved" : "hold_denied"},
                {"pid", h.pid}, {"ppid", 0}, {"comm", ""}, {"exe", ""}, {"uid", 0},
                {"session", h.session}, {"hold_id", h.id}, {"layer", h.layer}, {"op", h.op},
                {"path", h.path}, {"rule", h.rule}, {"reason", why},
                {"verdict", approve ? "allow" : "kill"}};
    if (const ProcessInfo* p = table_.find(h.pid)) {
        rec["comm"] = p->comm;
        rec["exe"] = p->exe;
        rec["ppid"] = p->ppid;
        rec["uid"] = p->uid;
    }
    if (approve) {
        // The later layers let through what was approved: the held call
        // (a short window), or everything the approved program does.
        uint64_t deadline = h.layer == "exec" ? UINT64_MAX : boottime_ns() + 2'000'000'000ull;
        if (auto st = fbpf_->add_pass(h.pid, deadline); !st) spdlog::error("{}", st.error().str());
        rec["pass"] = h.layer == "exec" ? "the approved program, until it exits" : "this call (2s)";
        ::kill(h.pid, SIGCONT);
    } else {
        ::kill(h.pid, SIGKILL);
    }
    audit_->append(std::move(rec));
}

void Daemon::run() {
    epoll_event evs[16];
    while (!stopping_) {
        int n = epoll_wait(epoll_.get(), evs, 16, 1000);
        if (n < 0 && errno == EINTR) continue;
        for (int i = 0; i < n; ++i) {
            int fd = evs[i].data.fd;
            if (fd == rb_->epoll_fd()) {
                handle_ringbuf();
            } else if (fd == signal_fd_.get()) {
                signalfd_siginfo si{};
                while (::read(signal_fd_.get(), &si, sizeof(si)) == sizeof(si)) {
                    if (si.ssi_signo == SIGHUP) {
                        if (auto st = audit_->reopen(); !st) spdlog::error("{}", st.error().str());
                        else spdlog::info("audit log reopened");
                    } else {
                        spdlog::info("signal {} received: stopping", strsignal(si.ssi_signo));
                        stopping_ = true;
                    }
                }
            } else if (fd == timer_fd_.get()) {
                uint64_t ticks;
                while (::read(timer_fd_.get(), &ticks, sizeof(ticks)) == sizeof(ticks)) {}
                on_tick();
            } else if (fd == control_->fd()) {
                for (;;) {
                    Fd c = control_->accept_client();
                    if (!c.valid()) break;
                    if (clients_.size() >= kMaxClients) continue;  // closed by Fd
                    int cfd = c.get();
                    epoll_event e{};
                    e.events = EPOLLIN;
                    e.data.fd = cfd;
                    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, cfd, &e) == 0)
                        clients_[cfd] = Client{std::move(c), {}};
                }
            } else {
                on_client_readable(fd);
            }
        }
        // Whatever this round produced reaches the file before we sleep again.
        if (auto st = audit_->flush(); !st) spdlog::error("{}", st.error().str());
    }
}

void Daemon::shutdown() {
    if (!audit_) return;
    handle_ringbuf();
    json rec = {{"event", "daemon_stop"}, {"pid", ::getpid()}, {"ppid", ::getppid()},
                {"comm", "killswitch"}, {"exe", "/proc/self/exe"}, {"session", nullptr},
                {"uid", ::getuid()}};
    audit_->append(rec);
    if (auto st = audit_->sync(); !st) spdlog::error("{}", st.error().str());
    for (const auto& s : sessions_->sweep()) spdlog::debug("removed empty session {}", s.name);
    // Fails while sessions with processes remain; they are adopted next time.
    ::rmdir(sessions_->parent_path().c_str());
    clients_.clear();
    control_.reset();
    rb_.reset();
    sessions_.reset();
    fbpf_.reset();
    bpf_.reset();  // detaches every program
    spdlog::info("killswitch daemon stopped");
}

void Daemon::handle_ringbuf() {
    auto n = rb_->consume();
    if (!n) spdlog::error("{}", n.error().str());
}

int Daemon::on_record(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Daemon*>(ctx);
    auto ev = decode_event(data, size);
    if (!ev) {
        if (self->decode_errors_++ < 10) spdlog::error("bad record from the kernel: {}", ev.error().str());
        return 0;
    }
    self->handle_event(*ev);
    return 0;
}

void Daemon::handle_event(const Event& ev) {
    std::visit(
        [this](const auto& e) {
            using T = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<T, ExecEvent>) on_exec(e);
            else if constexpr (std::is_same_v<T, ForkEvent>) on_fork(e);
            else if constexpr (std::is_same_v<T, ExitEvent>) on_exit(e);
            else if constexpr (std::is_same_v<T, FileEvent>) on_file(e);
            else on_exec_check(e);
        },
        ev);
}

std::string Daemon::session_name(uint32_t id) const {
    if (const Session* s = sessions_->find(id)) return s->name;
    return "unknown-" + std::to_string(id);
}

json Daemon::process_record(const char* event, const EventHeader& h) {
    json rec;
    rec["ts"] = format_realtime_ns(boot_to_realtime_ns(h.ts_boot_ns));
    rec["event"] = event;
    rec["pid"] = h.pid;
    rec["ppid"] = h.ppid;
    rec["tid"] = h.tid;
    rec["comm"] = h.comm;
    const ProcessInfo* p = table_.find(h.pid);
    rec["exe"] = p ? p->exe : "";
    rec["uid"] = h.uid;
    rec["session"] = session_name(h.session_id);
    rec["session_id"] = h.session_id;
    const Session* s = sessions_->find(h.session_id);
    if (s && s->cgroup_id == h.cgroup_id) rec["cgroup"] = s->cgroup;
    else rec["cgroup_id"] = h.cgroup_id;
    json lineage = json::array();
    for (const auto& l : table_.lineage(h.pid)) lineage.push_back({{"pid", l.pid}, {"comm", l.comm}, {"exe", l.exe}});
    rec["lineage"] = lineage;
    return rec;
}

json Daemon::session_record(const char* event, const Session& s) {
    return {{"event", event},
            {"pid", s.root_pid},
            {"ppid", 0},
            {"comm", ""},
            {"exe", ""},
            {"uid", 0},
            {"session", s.name},
            {"session_id", s.id},
            {"origin", origin_name(s.origin)},
            {"cgroup", s.cgroup},
            {"command", s.command}};
}

void Daemon::on_exec(const ExecEvent& ev) {
    const auto& h = ev.hdr;
    if (h.flags & KS_EVF_NEW_SESSION) {
        auto origin = ev.seed == KS_SEED_UID ? SessionOrigin::Uid : SessionOrigin::Agent;
        // Before the held agent is let go.
        update_file_layer(true);
        auto s = sessions_->open_for_seed(h.session_id, origin, h.pid, h.comm, ev.argv,
                                          h.flags & KS_EVF_HELD);
        if (s) {
            json rec = session_record("session_start", *s);
            rec["uid"] = h.uid;
            rec["comm"] = h.comm;
            rec["exe"] = ev.exe;
            rec["ppid"] = h.ppid;
            audit_->append(rec);
        } else {
            spdlog::error("session for pid {} ({}): {}", h.pid, h.comm, s.error().str());
            json rec = process_record("error", h);
            rec["message"] = s.error().str();
            audit_->append(rec);
        }
    } else {
        sessions_->ensure_member(h.session_id, h.pid, h.cgroup_id);
        sessions_->set_root_pid(h.session_id, h.pid);
    }
    table_.on_exec(ev);
    json rec = process_record("exec", h);
    rec["filename"] = ev.filename;
    rec["argv"] = ev.argv;
    rec["cwd"] = ev.cwd;
    rec["seed"] = seed_name(ev.seed);
    if (ev.argv_truncated) rec["argv_truncated"] = true;
    if (ev.cwd_truncated) rec["cwd_truncated"] = true;
    if (ev.cwd_deleted) rec["cwd_deleted"] = true;
    if (ev.exe_truncated) rec["exe_truncated"] = true;
    if (h.flags & KS_EVF_HELD) rec["held_at_exec"] = true;
    audit_->append(std::move(rec));
}

void Daemon::on_fork(const ForkEvent& ev) {
    table_.on_fork(ev);
    sessions_->ensure_member(ev.hdr.session_id, ev.hdr.pid, ev.hdr.cgroup_id);
    audit_->append(process_record("fork", ev.hdr));
}

void Daemon::on_exit(const ExitEvent& ev) {
    json rec = process_record("exit", ev.hdr);
    int status = static_cast<int>(ev.exit_code);
    if (WIFSIGNALED(status)) rec["signal"] = WTERMSIG(status);
    else rec["exit_code"] = WEXITSTATUS(status);
    audit_->append(std::move(rec));
    table_.on_exit(ev);
    fbpf_->remove_pass(ev.hdr.pid);
}

void Daemon::on_tick() {
    GuardCounters c = bpf_->counters();
    uint64_t lost = c.lost_total();
    if (lost > lost_reported_) {
        json by_type = json::object();
        for (uint32_t t = 1; t < KS_EVENT_TYPE_MAX; ++t)
            if (c.lost[t]) by_type[event_type_name(t)] = c.lost[t];
        spdlog::warn("{} events lost (ring buffer full); {} in total", lost - lost_reported_, lost);
        audit_->append({{"event", "lost"}, {"pid", ::getpid()}, {"ppid", ::getppid()},
                        {"comm", "killswitch"}, {"exe", ""}, {"session", nullptr}, {"uid", 0},
                        {"count", lost - lost_reported_}, {"total", lost}, {"by_type", by_type},
                        {"lost_per_cpu", c.lost_per_cpu}});
        lost_reported_ = lost;
    }
    if (c.guard_full > guard_full_reported_) {
        spdlog::error("guarded_tasks map full: {} processes were killed rather than run unguarded",
                      c.guard_full - guard_full_reported_);
        guard_full_reported_ = c.guard_full;
    }
    for (const auto& h : holds_.expired(std::chrono::steady_clock::now()))
        resolve_hold(h, false, "nobody decided within " + std::to_string(policy_.hold_timeout_s) + "s");
    for (const auto& s : sessions_->sweep()) audit_->append(session_record("session_end", s));
    update_file_layer();
    if (auto st = audit_->sync(); !st) spdlog::error("{}", st.error().str());
}

bool Daemon::update_file_layer(bool force_on) {
    // Guarded processes can exist only in sessions, or appear at any exec when
    // the policy guards uids or cgroups, or agents that are not held at exec.
    bool need = force_on || sessions_->count() > 0 || !policy_.guard_uids.empty() ||
                !policy_.guard_cgroups.empty() ||
                (!policy_.hold_agents_at_exec && !policy_.agent_names.empty());
    if (need == fbpf_->active()) return true;
    if (auto st = fbpf_->set_active(need); !st) {
        spdlog::error("{}", st.error().str());
        return false;
    }
    spdlog::info("file protection programs {} ({} sessions)", need ? "attached" : "detached",
                 sessions_->count());
    return true;
}

void Daemon::on_client_readable(int fd) {
    auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    Client& c = it->second;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) c.buf.append(buf, static_cast<size_t>(n));
    auto nl = c.buf.find('\n');
    if (nl == std::string::npos) {
        if (n > 0 && c.buf.size() < (1u << 20)) return;  // wait for the rest
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        clients_.erase(it);
        return;
    }
    json reply;
    auto req = json::parse(c.buf.substr(0, nl), nullptr, false);
    auto peer = peer_credentials(fd);
    if (!peer) reply = {{"ok", false}, {"error", peer.error().str()}};
    else if (req.is_discarded() || !req.is_object()) reply = {{"ok", false}, {"error", "malformed request"}};
    else reply = handle_request(req, *peer);
    (void)write_message(fd, reply);
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    clients_.erase(it);
}

json Daemon::handle_request(const json& req, const PeerCred& peer) {
    std::string cmd = req.value("cmd", "");
    if (peer.uid != 0) return {{"ok", false}, {"error", "only root may use the control socket"}};
    if (cmd == "ping") return {{"ok", true}};
    if (cmd == "status") return status_json();
    if (cmd == "session.create") {
        if (auto sid = bpf_->session_of(peer.pid))
            return {{"ok", false}, {"guarded", true}, {"session", session_name(*sid)},
                    {"error", "the caller is itself guarded (session " + session_name(*sid) + ")"}};
        std::string name = req.value("name", "");
        if (name.empty()) name = "run-" + std::to_string(peer.pid);
        std::vector<std::string> command;
        if (req.contains("command") && req["command"].is_array())
            for (const auto& a : req["command"]) if (a.is_string()) command.push_back(a);
        if (!update_file_layer(true))
            return {{"ok", false}, {"error", "cannot attach the file protection programs"}};
        auto s = sessions_->create(name, command);
        if (!s) {
            update_file_layer();
            return {{"ok", false}, {"error", s.error().str()}};
        }
        json rec = session_record("session_start", *s);
        rec["pid"] = peer.pid;
        rec["uid"] = peer.uid;
        audit_->append(rec);
        return {{"ok", true}, {"session", s->name}, {"session_id", s->id},
                {"cgroup", s->cgroup}, {"cgroup_procs", s->cgroup_path + "/cgroup.procs"}};
    }
    if (cmd == "holds") {
        json list = json::array();
        for (const auto& h : holds_.list()) list.push_back(h.to_json());
        return {{"ok", true}, {"holds", list}};
    }
    if (cmd == "approve" || cmd == "deny") {
        // A guarded process never decides its own fate, even as root.
        if (auto sid = bpf_->session_of(peer.pid))
            return {{"ok", false}, {"error", "refused: the caller is guarded (session " + session_name(*sid) + ")"}};
        uint64_t id = req.value("id", uint64_t{0});
        auto h = holds_.take(id);
        if (!h) return {{"ok", false}, {"error", "no hold with id " + std::to_string(id)}};
        resolve_hold(*h, cmd == "approve", cmd == "approve" ? "approved by uid 0 (pid " + std::to_string(peer.pid) + ")"
                                                             : "denied by uid 0 (pid " + std::to_string(peer.pid) + ")");
        return {{"ok", true}, {"hold", h->to_json()}};
    }
    return {{"ok", false}, {"error", "unknown command '" + cmd + "'"}};
}

json Daemon::status_json() {
    GuardCounters c = bpf_->counters();
    json events = json::object(), lost = json::object();
    for (uint32_t t = 1; t < KS_EVENT_TYPE_MAX; ++t) {
        std::string name = event_type_name(t);
        if (name == "unknown") continue;
        events[name] = c.events[t];
        lost[name] = c.lost[t];
    }
    json sessions = json::array();
    for (const auto& s : sessions_->list()) {
        auto pids = sessions_->cgroup_pids(s);
        std::string frozen = "0";
        if (auto ev = read_file(s.cgroup_path + "/cgroup.events"))
            frozen = ev->find("frozen 1") != std::string::npos ? "1" : "0";
        sessions.push_back({{"name", s.name}, {"id", s.id}, {"origin", origin_name(s.origin)},
                            {"cgroup", s.cgroup}, {"root_pid", s.root_pid},
                            {"command", s.command}, {"processes", pids},
                            {"state", frozen == "1" ? "frozen" : "running"},
                            {"started", format_realtime_ns(s.created_realtime_ns)}});
    }
    return {{"ok", true},
            {"pid", ::getpid()},
            {"started", format_realtime_ns(started_ns_)},
            {"uptime_s", (realtime_now_ns() - started_ns_) / 1000000000ull},
            {"mode", policy::mode_name(policy_.mode)},
            {"policy", policy_.source},
            {"audit_log", policy_.audit_log},
            {"cgroup_parent", sessions_->parent_path()},
            {"layers", {{"process_guard", bpf_->program_names()},
                        {"file_guard", fbpf_->program_names()},
                        {"uprobes", fbpf_->uprobes()},
                        {"libc", fbpf_->libc_path()},
                        {"exec_rules", watched_tools()}}},
            {"protect", policy_.protect_paths},
            {"protected_roots", protected_.roots().size()},
            {"protected_inodes", protected_.inodes().size()},
            {"file_protection_enforced", policy_.mode == policy::Mode::Enforce},
            {"file_protection_attached", fbpf_->active()},
            {"holds", holds_.list().size()},
            {"sessions", sessions},
            {"counters",
             {{"events", events},
              {"lost", lost},
              {"lost_total", c.lost_total()},
              {"lost_per_cpu", c.lost_per_cpu},
              {"guard_map_full", c.guard_full},
              {"held_at_exec", c.held},
              {"file_matches", c.file_matches},
              {"exec_checks", c.exec_checks},
              {"audit_records", audit_->written()},
              {"decode_errors", decode_errors_}}}};
}

}  // namespace

int run_daemon(const DaemonOptions& opts) {
    Daemon d(opts);
    try {
        d.start();
    } catch (const StartupError& e) {
        fmt::print(stderr, "killswitch daemon: {}\n", e.message);
        return 1;
    }
    d.run();
    d.shutdown();
    return 0;
}

}  // namespace ks
