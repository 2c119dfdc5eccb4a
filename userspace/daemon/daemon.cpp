// The daemon: start-up, the event loop, the records of guarded processes
// (exec, fork, exit) and sessions, the tick; `killswitch daemon --uninstall`.
#include <dirent.h>
#include <sys/resource.h>

#include <set>

#include "actions/tell.h"
#include "daemon/daemon_impl.h"
#include "file_guard/exec_rules.h"

namespace ks {
namespace daemon_detail {

void Daemon::acquire_lock() {
    if (::mkdir(opts_.runtime_dir.c_str(), 0700) != 0 && errno != EEXIST)
        throw StartupError{"create runtime directory " + opts_.runtime_dir + ": " +
                           std::strerror(errno)};
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
    if (::ftruncate(lock_fd_.get(), 0) != 0 ||
        ::pwrite(lock_fd_.get(), me.data(), me.size(), 0) < 0)
        spdlog::warn("write pid to {}: {}", path, std::strerror(errno));
}

void Daemon::load_policy() {
    policy::LoadResult res = policy::load_policy_set(opts_.policy_file, opts_.policy_dir);
    for (const auto& w : res.warnings) spdlog::warn("{}", w.warning_str());
    if (!res.policy) {
        std::string msg = "invalid policy";
        for (const auto& e : res.errors) msg += "\n  " + e.str();
        throw StartupError{msg};
    }
    auto p = apply_overrides(*res.policy);
    if (!p) throw StartupError{p.error().str()};
    // Compiled once the layers are loaded (the environment needs them).
    state_.compiled.policy = std::move(p.value());
    state_.compiled.file = opts_.policy_file;
    policy_loaded_ns_ = realtime_now_ns();
}

Result<policy::Policy> Daemon::apply_overrides(policy::Policy p) const {
    if (!opts_.mode.empty()) {
        auto m = policy::parse_mode(opts_.mode);
        if (!m) return make_error("--mode must be enforce or monitor, not '" + opts_.mode + "'");
        p.mode = *m;
    }
    if (!opts_.audit_log.empty()) p.audit_log = opts_.audit_log;
    for (const auto& spec : opts_.outputs) {
        if (auto o = outputs::parse_output(spec); !o)
            return make_error("--output: " + o.error().message);
        if (std::find(p.outputs.begin(), p.outputs.end(), spec) == p.outputs.end())
            p.outputs.push_back(spec);
    }
    if (!opts_.db.empty()) {
        for (const auto& spec : opts_.db)
            if (auto ep = db::parse_endpoint(spec); !ep)
                return make_error("--db " + ep.error().str());
        p.db_endpoints = opts_.db;
        p.db_discover = false;  // the list given is the list
    }
    for (const auto& path : opts_.protect) {
        if (path.empty() || path[0] != '/')
            return make_error("--protect needs an absolute path, not '" + path + "'");
        // The same spelling rules as policy paths: no "//", no trailing '/'.
        std::string norm;
        for (char c : path)
            if (!(c == '/' && !norm.empty() && norm.back() == '/')) norm += c;
        while (norm.size() > 1 && norm.back() == '/') norm.pop_back();
        if (std::find(p.protect_paths.begin(), p.protect_paths.end(), norm) ==
            p.protect_paths.end())
            p.protect_paths.push_back(norm);
    }
    return p;
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

    // Before the protected set is built: the audit log is one of its files.
    auto audit = AuditWriter::open(policy().audit_log, audit_access(policy()));
    if (!audit) throw StartupError{audit.error().str()};
    audit_.emplace(std::move(audit.value()));
    host_id_ = machine_id();
    if (host_id_.empty())
        spdlog::warn(
            "no machine id in /etc/machine-id or /var/lib/dbus/machine-id: records carry no "
            "\"host\" (systemd-machine-id-setup makes one)");
    audit_->set_identity(host_id_, run_id_);
    // Every record from here on goes to the outputs too.
    start_outputs();

    // Fail-closed: programs and state pinned in bpffs; what an earlier daemon
    // left is adopted (its links are removed once ours are attached).
    if (!opts_.pin_dir.empty()) {
        adopted_ = pins::scan(opts_.pin_dir);
        // Every object this binary can load: a new build never adopts the
        // state of another.
        std::string build = pins::build_id(all_skeleton_bytes());
        if (auto st = pins::enable(opts_.pin_dir, build); !st) throw StartupError{st.error().str()};
    }

    // A descriptor per guarded process (its uprobe link) and per relayed
    // connection: the soft limit (often 1024) is raised to the hard one.
    if (rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &rl) != 0)
            spdlog::warn("cannot raise the descriptor limit: {}", std::strerror(errno));
    }

    start_layers();
    auto state = build_state(policy(), state_.compiled.file, nullptr);
    if (!state) throw StartupError{state.error().str()};
    if (auto st = publish_state(*state, nullptr); !st) throw StartupError{st.error().str()};
    state_ = std::move(state.value());
    space_->set(state_.protected_set.roots(), policy().min_free);

    auto parent = session_parent_cgroup(opts_.cgroup_parent);
    if (!parent) throw StartupError{parent.error().str()};
    sessions_ = std::make_unique<SessionManager>(*bpf_, cgroup2_, *parent);
    if (auto st = sessions_->start(policy().guard_cgroups); !st)
        throw StartupError{st.error().str()};
    // For `killswitch emergency` and `daemon --uninstall` with no daemon.
    if (auto st =
            write_file_atomic(opts_.runtime_dir + "/" + kSessionsCgroupFile, *parent + "\n", 0644);
        !st)
        spdlog::warn("{}", st.error().str());
    if (!update_file_layer()) throw StartupError{"cannot attach the file protection programs"};

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

    // Tasks an earlier daemon held are still stopped: their holds come back.
    for (const auto& h : holds_.persist_to(opts_.runtime_dir + "/holds.json")) {
        if (h.layer == "relay") {
            // Its connection ended with the earlier daemon: the client read
            // a closed connection, and nothing reached the server.
            holds_.take(h.id);
            json rec = own_record("hold_ended");
            rec["hold"] = h.to_json();
            rec["reason"] = "the relay's connection ended with the earlier daemon";
            audit_->append(std::move(rec));
            continue;
        }
        spdlog::warn("hold {} of an earlier daemon taken back: {} {} by pid {} (session {})", h.id,
                     h.op, h.path, h.pid, h.session);
        json rec = own_record("hold_adopted");
        rec["hold"] = h.to_json();
        audit_->append(std::move(rec));
    }

    // A refusal message may go into an agent's output file, never into
    // protected data or killswitch's own files.
    enforcer_.set_file_write_check([this](const std::string& path) {
        return !state_.protected_set.classify(path, true).inside;
    });

    // Frozen sessions keep their timeout, run sessions their wrapper.
    restore_session_ends();

    // Every program of ours is attached: the earlier daemon's may go.
    size_t retired = pins::retire_previous();
    if (adopted_.links || !adopted_.builds.empty())
        spdlog::info(
            "adopted the pinned state of an earlier daemon in {}: {} links replaced, "
            "state {}",
            opts_.pin_dir, retired,
            pins::state_adopted() ? "kept (same build)" : "rebuilt (another build)");

    // The socket comes last: once it accepts, the daemon is ready.
    auto srv = ControlServer::listen(control_socket_path(opts_.runtime_dir));
    if (!srv) throw StartupError{srv.error().str()};
    control_.emplace(std::move(srv.value()));

    std::vector<int> fds = {rb_->epoll_fd(), signal_fd_.get(), timer_fd_.get(), control_->fd()};
    if (relay_) fds.push_back(relay_->notify_fd());
    if (scan_.done.valid()) fds.push_back(scan_.done.get());
    if (dwbpf_) {
        // New TCP listeners are looked at as they begin to listen; without
        // this, the periodic scan finds them.
        if (auto w = ListenWatch::start(); w) {
            listen_watch_ = std::move(w.value());
            fds.push_back(listen_watch_->fd());
        } else {
            spdlog::warn("databases.discover: {}: new listeners are found every {} s",
                         w.error().str(), kDiscoverEvery.count());
        }
    }
    for (int fd : fds) {
        epoll_event e{};
        e.events = EPOLLIN;
        e.data.fd = fd;
        if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &e) != 0)
            throw StartupError{std::string("epoll_ctl: ") + std::strerror(errno)};
    }
    // The kernel flags the mount table file (EPOLLPRI) when a mount is made
    // or removed in the daemon's mount namespace: a bind mount of protected
    // data made since the set was built gets its edges then.
    mountinfo_fd_.reset(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
    if (mountinfo_fd_.valid()) {
        epoll_event e{};
        e.events = EPOLLPRI;
        e.data.fd = mountinfo_fd_.get();
        if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, mountinfo_fd_.get(), &e) != 0)
            mountinfo_fd_.reset(-1);
    }
    if (!mountinfo_fd_.valid())
        spdlog::warn(
            "cannot watch /proc/self/mountinfo ({}): bind mounts made after start are "
            "seen only with the next change of a protected path",
            std::strerror(errno));

    started_ns_ = realtime_now_ns();
    json rec = own_record("daemon_start");
    rec["mode"] = policy::mode_name(policy().mode);
    rec["policy"] = policy().source;
    rec["policy_files"] = policy().files;
    rec["policy_sha256"] = policy().sha256;
    rec["hostname"] = host_name();
    rec["version"] = KS_VERSION;
    rec["programs"] = bpf_->program_names();
    rec["protect"] = policy().protect_paths;
    rec["agents"] = policy().agent_names;
    if (!dwbpf_) rec["db_socket_path_error"] = db_wire_error_;
    if (relay_) rec["db_relay"] = relay_->describe();
    if (!relay_error_.empty()) rec["db_relay_error"] = relay_error_;
    rec["lsm"] = hook_json(HookKind::kLsm);
    rec["fentry"] = hook_json(HookKind::kFentry);
    if (pins::enabled()) rec["pinned"] = pinned_json();
    audit_->append(rec);
    discover_db_listeners();
    (void)audit_->sync();
    notifier_.ready(service_status());
    if (notifier_.watchdog_usec() > 0 && notifier_.watchdog_usec() < 2000000)
        spdlog::warn(
            "the service's watchdog interval is {} ms: the daemon pings it once a "
            "second, so give WatchdogSec= 2 s at least",
            notifier_.watchdog_usec() / 1000);
    spdlog::info("killswitch daemon ready: mode {}, policy {}, audit log {}, sessions under {}",
                 policy::mode_name(policy().mode), policy().source, policy().audit_log,
                 sessions_->parent_path());
    spdlog::info("file protection: {} roots, {} inodes, {} edges; libc layer {}",
                 state_.protected_set.roots().size(), state_.protected_set.inodes().size(),
                 state_.protected_set.edges().size(),
                 policy().libc_uprobes && opts_.libc_uprobes ? fbpf_->libc_path() : "off");
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
                        if (auto st = audit_->reopen(); !st)
                            spdlog::error("{}", st.error().str());
                        else
                            spdlog::info("audit log reopened");
                        for (auto& s : sinks_) s->reopen();
                    } else {
                        spdlog::info("signal {} received: stopping", strsignal(si.ssi_signo));
                        stopping_ = true;
                    }
                }
            } else if (fd == timer_fd_.get()) {
                uint64_t ticks;
                while (::read(timer_fd_.get(), &ticks, sizeof(ticks)) == sizeof(ticks)) {
                }
                on_tick();
            } else if (fd == mountinfo_fd_.get()) {
                // Read to its end: that clears the flag until the next change.
                char buf[4096];
                ::lseek(fd, 0, SEEK_SET);
                while (::read(fd, buf, sizeof(buf)) > 0) {
                }
                mounts_dirty_ = true;
                if (std::chrono::steady_clock::now() - mounts_refreshed_ >= std::chrono::seconds(1))
                    refresh_protected_set(true);
            } else if (relay_ && fd == relay_->notify_fd()) {
                service_relay();
            } else if (listen_watch_ && fd == listen_watch_->fd()) {
                on_listen_notes();
            } else if (fd == scan_.done.get()) {
                on_db_listeners_found();
            } else if (seccomp_.count(fd)) {
                on_seccomp(fd, evs[i].events);
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

bool Daemon::scope_uprobes(int tgid) {
    uint64_t start = task_start_time(tgid);
    if (start == 0 || scope_->contains(tgid, start)) return true;  // gone, or done
    if (auto st = scope_->add(tgid, start); !st) {
        // The syscall layer still covers it, stopping right after the call.
        spdlog::error("libc layer for pid {}: {}", tgid, st.error().str());
        json rec = own_record("error");
        rec["pid"] = tgid;
        rec["message"] = "libc layer not attached: " + st.error().str();
        audit_->append(std::move(rec));
        return false;
    }
    return true;
}

void Daemon::leave_uprobes_to_kernel() {
    // With no daemon, nobody would attach the uprobes of a new child: the
    // kernel keeps them for every process until the next daemon, and no
    // child is held any more.
    if (auto st = scope_->attach_everywhere(); !st) {
        spdlog::error("libc layer for every process: {}", st.error().str());
        return;
    }
    if (auto st = bpf_->set_uprobe_scope(false); !st) spdlog::error("{}", st.error().str());
    handle_ringbuf();  // children held until now are let go
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    handle_ringbuf();
    scope_->release_all();
}

void Daemon::start_outputs() {
    for (const auto& spec : policy().outputs) {
        auto o = outputs::parse_output(spec);
        if (!o) throw StartupError{o.error().str()};
        if (o->kind == outputs::Kind::Metrics) {
            if (metrics_) throw StartupError{"output " + spec + ": one metrics endpoint at most"};
            auto m = outputs::MetricsServer::start(o->target);
            if (!m) throw StartupError{"output " + spec + ": " + m.error().str()};
            metrics_ = std::move(m.value());
            spdlog::info("metrics at http://{}/metrics", metrics_->address());
        } else if (o->kind == outputs::Kind::MetricsFile) {
            metrics_files_.push_back(o->target);
        } else {
            if (o->kind == outputs::Kind::Journald &&
                ::access("/run/systemd/journal/socket", F_OK) != 0)
                spdlog::warn(
                    "output journald: no journal on this host (/run/systemd/journal/socket): "
                    "its records will be counted as dropped");
            auto sink = outputs::make_record_sink(*o);
            if (!sink) throw StartupError{"output " + spec + ": " + sink.error().str()};
            spdlog::info("output {}", spec);
            sinks_.push_back(std::move(sink.value()));
        }
    }
    if (!sinks_.empty())
        audit_->set_observer([this](const json& rec) {
            for (auto& s : sinks_) s->offer(rec);
        });
}

void Daemon::feed_outputs() {
    if (!metrics_ && metrics_files_.empty()) return;
    std::string text = outputs::render_prometheus(status_json());
    for (const auto& f : metrics_files_)
        if (auto st = outputs::write_textfile(f, text); !st) {
            if (metrics_file_errors_++ == 0) spdlog::warn("metrics file: {}", st.error().str());
        }
    if (metrics_) metrics_->publish(std::move(text));
}

nlohmann::json Daemon::outputs_json() const {
    json out = json::array();
    if (metrics_)
        out.push_back({{"name", "metrics"},
                       {"target", metrics_->address()},
                       {"scrapes", metrics_->scrapes()},
                       {"dropped", 0}});
    for (const auto& f : metrics_files_)
        out.push_back({{"name", "metrics-file"},
                       {"target", f},
                       {"write_errors", metrics_file_errors_},
                       {"dropped", 0}});
    for (const auto& s : sinks_) out.push_back(s->stats_json());
    return out;
}

std::string Daemon::service_status() {
    return fmt::format("{}, policy sha256 {}, {} sessions", policy::mode_name(policy().mode),
                       policy().sha256.substr(0, 12), sessions_ ? sessions_->list().size() : 0);
}

void Daemon::shutdown() {
    if (!audit_) return;
    notifier_.stopping("stopping; the pinned programs go on enforcing");
    if (scope_ && pins::enabled() && fbpf_->active()) leave_uprobes_to_kernel();
    handle_ringbuf();
    audit_->append(own_record("daemon_stop"));
    if (auto st = audit_->sync(); !st) spdlog::error("{}", st.error().str());
    // What the outputs still hold gets two seconds to go; the rest is
    // counted as dropped (the audit file has it).
    audit_->set_observer(nullptr);
    for (auto& s : sinks_) s->begin_stop(std::chrono::milliseconds(2000));
    for (auto& s : sinks_) s->stop(std::chrono::milliseconds(2000));
    for (const auto& s : sinks_)
        if (auto st = s->stats(); st.dropped)
            spdlog::warn("output {}={}: {} records not delivered ({})", s->kind(), s->target(),
                         st.dropped, st.last_error.empty() ? "queue full" : st.last_error);
    for (const auto& s : sessions_->sweep()) spdlog::debug("removed empty session {}", s.name);
    // Fails while sessions with processes remain; they are adopted next time.
    ::rmdir(sessions_->parent_path().c_str());
    clients_.clear();
    control_.reset();
    rb_.reset();
    sessions_.reset();
    // Last loaded, first gone; pinned links stay attached (fail-closed).
    while (!layers_.empty()) layers_.pop_back();
    bpf_ = nullptr;
    fbpf_ = nullptr;
    hbpf_ = nullptr;
    dbpf_ = nullptr;
    dwbpf_ = nullptr;
    sgbpf_ = nullptr;
    scope_.reset();
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
        if (self->decode_errors_++ < 10)
            spdlog::error("bad record from the kernel: {}", ev.error().str());
        return 0;
    }
    if (self->tick_read_ns_ && wakes_daemon(*ev)) {
        const EventHeader& h =
            std::visit([](const auto& e) -> const EventHeader& { return e.hdr; }, *ev);
        if (h.ts_boot_ns < self->tick_read_ns_ && self->wakeups_missed_++ < 10)
            spdlog::warn(
                "a {} record that a task waits on did not wake the daemon: read at its tick",
                event_type_name(h.type));
    }
    self->handle_event(*ev);
    return 0;
}

void Daemon::handle_event(const Event& ev) {
    std::visit(
        [this](const auto& e) {
            using T = std::decay_t<decltype(e)>;
            // The hook layer's start-up probe process: not an agent.
            if (e.hdr.session_id == kHookProbeSession) return;
            if constexpr (std::is_same_v<T, ExecEvent>)
                on_exec(e);
            else if constexpr (std::is_same_v<T, ForkEvent>)
                on_fork(e);
            else if constexpr (std::is_same_v<T, ExitEvent>)
                on_exit(e);
            else if constexpr (std::is_same_v<T, FileEvent>)
                on_file(e);
            else if constexpr (std::is_same_v<T, DbCheckEvent>)
                on_db_check(e);
            else if constexpr (std::is_same_v<T, DbWireEvent>)
                on_db_wire(e);
            else if constexpr (std::is_same_v<T, TamperEvent>)
                on_tamper(e);
            else
                on_exec_check(e);
        },
        ev);
}

void Daemon::on_exec(const ExecEvent& ev) {
    const auto& h = ev.hdr;
    // A process guarded from this exec on: its uprobes (a held agent's
    // before it is let go; the others' as soon as we read this).
    // Not under a seccomp filter: it asks about every call the uprobes see.
    if (scope_ && !seccomp_covers(h.session_id)) scope_uprobes(h.pid);
    if (h.flags & KS_EVF_NEW_SESSION) {
        auto origin = ev.seed == KS_SEED_UID ? SessionOrigin::Uid : SessionOrigin::Agent;
        // A held agent is let go only once the layers are attached. One with
        // a terminal was not stopped and is already running: into its
        // session cgroup first (freeze and kill reach it from then on), the
        // layers right after (attaching uprobes to libc can take a second
        // on a busy host).
        bool held = h.flags & KS_EVF_HELD;
        if (held) update_file_layer(true);
        auto s = sessions_->open_for_seed(h.session_id, origin, h.pid, h.comm, ev.argv, held);
        if (!held) update_file_layer(true);
        if (s) {
            json rec = session_record("session_start", *s);
            rec["held_at_exec"] = (h.flags & KS_EVF_HELD) != 0;
            // From the exec to the agent in its cgroup with the file
            // protection programs attached.
            rec["guard_ready_latency_ns"] = boottime_ns() - h.ts_boot_ns;
            rec["uid"] = h.uid;
            rec["comm"] = h.comm;
            rec["exe"] = ev.exe;
            rec["ppid"] = h.ppid;
            audit_->append(rec);
        } else {
            spdlog::error("session for pid {} ({}): {}", h.pid, h.comm, s.error().str());
            json rec = render_subject("error", subject_of(h));
            rec["message"] = s.error().str();
            audit_->append(rec);
        }
    } else {
        sessions_->ensure_member(h.session_id, h.pid, h.cgroup_id);
        sessions_->set_root_pid(h.session_id, h.pid);
    }
    table_.on_exec(ev);
    json rec = render_subject("exec", subject_of(h));
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
    if (ev.hdr.flags & KS_EVF_HELD) {
        // The child itself, held at its return from fork (bpf/file_guard.bpf.c):
        // let go once its uprobes are attached. An earlier daemon's too.
        if (scope_) scope_uprobes(ev.hdr.pid);
        ::kill(ev.hdr.pid, SIGCONT);
        fork_holds_.add(boottime_ns() - ev.hdr.ts_boot_ns);
        return;
    }
    if (scope_ && seccomp_covers(ev.hdr.session_id)) {
        (void)bpf_->clear_uprobe_pending(ev.hdr.pid);
    } else if (scope_) {
        // A parent in a guarded cgroup is marked at its first fork.
        scope_uprobes(ev.hdr.ppid);
        // The child's link now: when this comes before its return from fork,
        // it is not stopped at all; when its hold cannot be recorded (a full
        // ring buffer), it runs covered all the same once this is read.
        if (scope_uprobes(ev.hdr.pid)) (void)bpf_->clear_uprobe_pending(ev.hdr.pid);
    }
    table_.on_fork(ev);
    sessions_->ensure_member(ev.hdr.session_id, ev.hdr.pid, ev.hdr.cgroup_id);
    audit_->append(render_subject("fork", subject_of(ev.hdr)));
}

void Daemon::on_exit(const ExitEvent& ev) {
    json rec = render_subject("exit", subject_of(ev.hdr));
    int status = static_cast<int>(ev.exit_code);
    if (WIFSIGNALED(status))
        rec["signal"] = WTERMSIG(status);
    else
        rec["exit_code"] = WEXITSTATUS(status);
    audit_->append(std::move(rec));
    table_.on_exit(ev);
    fbpf_->remove_pass(ev.hdr.pid);
    if (scope_) scope_->remove(ev.hdr.pid);
}

void Daemon::on_tick() {
    // Records that did not wake the daemon (requests let through) are read here
    // at the latest. Whether the ring buffer was signalled is asked first: if
    // it was not, a record that a task waits on was never announced.
    epoll_event e{};
    if (::epoll_wait(rb_->epoll_fd(), &e, 1, 0) == 0) tick_read_ns_ = boottime_ns();
    handle_ringbuf();
    tick_read_ns_ = 0;
    notifier_.tick();
    feed_outputs();
    GuardCounters c = bpf_->counters();
    uint64_t lost = c.lost_total();
    if (lost > lost_reported_) {
        json by_type = json::object();
        for (uint32_t t = 1; t < KS_EVENT_TYPE_MAX; ++t)
            if (c.lost[t]) by_type[event_type_name(t)] = c.lost[t];
        spdlog::warn("{} events lost (ring buffer full); {} in total", lost - lost_reported_, lost);
        json rec = own_record("lost");
        rec["count"] = lost - lost_reported_;
        rec["total"] = lost;
        rec["by_type"] = by_type;
        rec["lost_per_cpu"] = c.lost_per_cpu;
        audit_->append(std::move(rec));
        lost_reported_ = lost;
    }
    if (c.guard_full > guard_full_reported_) {
        spdlog::error("guarded_tasks map full: {} processes were killed rather than run unguarded",
                      c.guard_full - guard_full_reported_);
        guard_full_reported_ = c.guard_full;
    }
    for (const auto& h : holds_.expired(std::chrono::steady_clock::now()))
        resolve_hold(h, false,
                     "nobody decided within " + std::to_string(policy().hold_timeout_s) + "s");
    end_sessions_on_tick();
    // Processes whose exit we did not see (not guarded yet, or a record
    // lost): their links go.
    if (scope_ && ++scope_sweep_ticks_ >= 10) {
        scope_sweep_ticks_ = 0;
        for (const auto& [tgid, start] : scope_->members())
            if (task_start_time(tgid) != start) scope_->remove(tgid);
    }
    continue_stopped_parents_on_tick();
    sync_relay();
    auto ended = sessions_->sweep();
    close_windows(ended);
    for (const auto& s : ended) {
        forget_session(s.id);
        audit_->append(session_record("session_end", s));
    }
    refresh_protected_set(mounts_dirty_);
    space_->refresh();
    // A listen the kernel noted is looked at first: the periodic scan then
    // never finds a listener before its note does.
    if (listen_watch_) on_listen_notes();
    if (std::chrono::steady_clock::now() - discovered_at_ >= kDiscoverEvery)
        look_for_db_listeners();
    update_file_layer();
    if (auto st = audit_->sync(); !st) spdlog::error("{}", st.error().str());
}

void Daemon::on_client_readable(int fd) {
    auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    Client& c = it->second;
    char buf[4096];
    ssize_t n = receive_with_fd(fd, buf, sizeof(buf), c.passed);
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
    if (!peer)
        reply = {{"ok", false}, {"error", peer.error().str()}};
    else if (req.is_discarded() || !req.is_object())
        reply = {{"ok", false}, {"error", "malformed request"}};
    else
        reply = handle_request(req, *peer, std::move(c.passed));
    (void)write_message(fd, reply);
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    clients_.erase(it);
}

}  // namespace daemon_detail

int uninstall_daemon(const DaemonOptions& opts) {
    auto fail = [](const std::string& m) {
        fmt::print(stderr, "killswitch daemon --uninstall: {}\n", m);
        return 1;
    };
    if (::geteuid() != 0) return fail("must run as root");
    if (opts.pin_dir.empty()) return fail("--pin-dir is empty: nothing to remove");
    // Not under a running daemon: it would only pin its programs again.
    std::string lock = opts.runtime_dir + "/daemon.lock";
    Fd lfd(::open(lock.c_str(), O_RDWR | O_CLOEXEC));
    if (lfd.valid() && ::flock(lfd.get(), LOCK_EX | LOCK_NB) != 0) {
        auto pid = read_file(lock);
        std::string p = pid ? *pid : "";
        while (!p.empty() && (p.back() == '\n' || p.back() == ' ')) p.pop_back();
        return fail("a killswitch daemon is running" + (p.empty() ? "" : " (pid " + p + ")") +
                    ": stop it first");
    }
    // Never for a guarded process (which the kernel also stops at its first
    // bpf() call).
    pins::Found found = pins::scan(opts.pin_dir);
    std::vector<int> stopped;  // guarded tasks the kernel may have stopped for a daemon
    for (const auto& b : found.builds) {
        Fd m(bpf_obj_get((opts.pin_dir + "/state-" + b + "/guarded_tasks").c_str()));
        uint32_t me = static_cast<uint32_t>(::getpid());
        ks_task_guard v{};
        if (m.valid() && bpf_map_lookup_elem(m.get(), &me, &v) == 0)
            return fail("refused: this process is guarded (session id " +
                        std::to_string(v.session_id) + ")");
        uint32_t key = 0, next = 0;
        for (uint32_t* at = nullptr; m.valid() && bpf_map_get_next_key(m.get(), at, &next) == 0;
             at = &key) {
            key = next;
            if (task_stopped(static_cast<int>(key))) stopped.push_back(static_cast<int>(key));
        }
    }
    auto removed = pins::remove_all(opts.pin_dir);
    if (!removed) return fail(removed.error().str());
    // What the kernel stopped for a daemon (an agent held at exec, a tool
    // held for its rules, a held operation) would wait forever: a held
    // destructive operation or tool is denied, anything else goes on.
    std::set<int> held;
    if (auto text = read_file(opts.runtime_dir + "/holds.json")) {
        auto arr = nlohmann::json::parse(*text, nullptr, false);
        if (arr.is_array())
            for (const auto& h : arr)
                if (h.is_object()) held.insert(h.value("tid", 0));
    }
    const auto& tools = watched_tools();
    nlohmann::json released = nlohmann::json::array();
    for (int pid : stopped) {
        std::string comm = daemon_detail::comm_of(pid);
        bool deny = held.count(pid) || std::find(tools.begin(), tools.end(), comm) != tools.end();
        std::string msg =
            "killswitch: the daemon was uninstalled while this process was stopped for it: " +
            std::string(deny ? "the held operation is denied, the process killed"
                             : "it goes on, no longer guarded") +
            ".\n";
        (void)tell_process({pid, task_ppid(pid)}, msg);
        ::kill(pid, deny ? SIGKILL : SIGCONT);
        fmt::print("pid {} ({}) was stopped for the daemon: {}\n", pid, comm,
                   deny ? "killed (a held tool or operation)" : "let go");
        released.push_back(
            {{"pid", pid}, {"comm", comm}, {"signal", deny ? "SIGKILL" : "SIGCONT"}});
    }

    auto res = policy::load_policy_set(opts.policy_file, opts.policy_dir);
    policy::Policy pol = res.policy ? *res.policy : policy::default_policy();
    std::string log = opts.audit_log.empty() ? pol.audit_log : opts.audit_log;
    // A session a rule froze would wait for a daemon that is not coming back:
    // it ends as its timeout would have ended it (sessions.frozen_end).
    nlohmann::json ended = nlohmann::json::array();
    if (auto cg = cgroup2_mount()) {
        std::string parent = *cg + "/" + opts.cgroup_parent;
        if (DIR* d = ::opendir(parent.c_str())) {
            while (dirent* e = ::readdir(d)) {
                std::string dir = parent + "/" + e->d_name;
                if (e->d_type != DT_DIR || e->d_name[0] == '.' || !cgroup_is_frozen(dir)) continue;
                bool thaw = pol.frozen_end == policy::FrozenEnd::Thaw;
                Status st = thaw ? cgroup_freeze(dir, false) : cgroup_kill(dir);
                fmt::print("session {} was frozen: {}{}\n", e->d_name, thaw ? "thawed" : "killed",
                           st ? "" : " failed: " + st.error().str());
                ended.push_back({{"session", e->d_name},
                                 {"session_action", policy::frozen_end_name(pol.frozen_end)},
                                 {"ok", static_cast<bool>(st)}});
            }
            ::closedir(d);
        }
    }
    if (auto audit = AuditWriter::open(log, daemon_detail::audit_access(pol))) {
        audit->set_identity(machine_id(), new_run_id());
        nlohmann::json rec = daemon_detail::own_record("uninstall");
        rec["pin_dir"] = opts.pin_dir;
        rec["removed"] = *removed;
        rec["frozen_sessions_ended"] = ended;
        rec["stopped_tasks"] = released;
        audit->append(std::move(rec));
        (void)audit->sync();
    } else {
        spdlog::warn("audit log: {}", audit.error().str());
    }
    if (*removed == 0)
        fmt::print("nothing was pinned in {}\n", opts.pin_dir);
    else
        fmt::print(
            "removed {} pinned programs and maps from {}: the kernel no longer enforces "
            "killswitch's policy\n",
            *removed, opts.pin_dir);
    return 0;
}

int run_daemon(const DaemonOptions& opts) {
    // Before anything reads a path or starts a thread.
    if (!opts.host_root.empty()) {
        if (auto st = enter_host_root(opts.host_root); !st) {
            fmt::print(stderr, "killswitch daemon: {}\n", st.error().str());
            return 1;
        }
        spdlog::info("in the host's mount namespace (--host-root {}): every path is the host's",
                     opts.host_root);
    }
    daemon_detail::Daemon d(opts);
    try {
        d.start();
    } catch (const daemon_detail::StartupError& e) {
        fmt::print(stderr, "killswitch daemon: {}\n", e.message);
        return 1;
    }
    d.run();
    d.shutdown();
    return 0;
}

}  // namespace ks
