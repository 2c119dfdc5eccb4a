// `killswitch run` sessions under a seccomp filter (seccomp_guard/), on
// kernels where neither the LSM nor the fentry layer runs. The session's
// first process installs the filter before its exec and hands the listener
// over (session.seccomp); from then on each call the filter names waits in
// the kernel until the daemon has judged it here, with the file and self
// guards' own decisions: refused with EPERM (and killed, frozen or held as
// the rule says) or let through. While every session is so covered, the
// syscall tracepoints are detached: nothing else on the host pays for them.
#include <poll.h>

#include "daemon/daemon_impl.h"
#include "file_guard/file_guard_decide.h"
#include "file_guard/metadata_change.h"
#include "file_guard/symlink_target.h"
#include "self_guard/self_guard_decide.h"

namespace ks::daemon_detail {

namespace {

// A record of the file guard's made by the seccomp layer.
FileEvent seccomp_event(const EventHeader& h, uint32_t op, uint32_t match, uint32_t rule_id) {
    FileEvent ev;
    ev.hdr = h;
    ev.layer = KS_LAYER_SECCOMP;
    ev.op = op;
    ev.match = match;
    ev.rule_id = rule_id;
    return ev;
}

// The self guard's name for a reach aimed at the daemon itself.
uint32_t self_tamper(uint32_t reach) {
    switch (reach) {
        case KS_TAMPER_REACH_PTRACE:
            return KS_TAMPER_PTRACE;
        case KS_TAMPER_REACH_VM_WRITE:
            return KS_TAMPER_VM_WRITE;
        case KS_TAMPER_REACH_PIDFD:
            return KS_TAMPER_PIDFD;
        default:
            return KS_TAMPER_SIGNAL;
    }
}

// The process of a pidfd of tid's (/proc/TID/fdinfo/FD "Pid:"); 0 unknown.
int pidfd_process(int tid, int fd) {
    auto info = read_file("/proc/" + std::to_string(tid) + "/fdinfo/" + std::to_string(fd));
    if (!info) return 0;
    size_t at = info->find("\nPid:");
    return at == std::string::npos ? 0 : std::atoi(info->c_str() + at + 5);
}

bool removes(uint32_t op) {
    return op == KS_OP_UNLINK || op == KS_OP_RMDIR || op == KS_OP_RENAME_FROM ||
           op == KS_OP_RENAME_ONTO || op == KS_OP_MOUNT || op == KS_OP_UMOUNT ||
           op == KS_OP_REMOUNT;
}

bool writes(uint32_t op) {
    return op == KS_OP_OPEN_WRITE || op == KS_OP_OPEN_TRUNC || op == KS_OP_TRUNCATE;
}

}  // namespace

void Daemon::start_seccomp() {
    if (!opts_.seccomp_sessions)
        seccomp_reason_ = "off (killswitch daemon --seccomp-sessions turns it on)";
    else if (hbpf_)
        seccomp_reason_ =
            "the " + std::string(hook_kind_name(hbpf_->kind())) + " layer refuses in the kernel";
    else if (opts_.libc_uprobes && policy().libc_uprobes && !scope_)
        seccomp_reason_ = "the libc uprobes are attached for every process here";
    else
        seccomp_reason_ = seccomp::unavailable_reason();
}

bool Daemon::seccomp_covers(uint32_t session_id) const {
    if (seccomp_pending_.count(session_id)) return true;
    return std::any_of(seccomp_.begin(), seccomp_.end(),
                       [&](const auto& l) { return l.second.session_id == session_id; });
}

bool Daemon::syscall_tracepoints_needed() const {
    const policy::Policy& p = policy();
    // Guarded processes that may appear outside every run session, and the
    // space budget, which counts every write call's bytes (notifying each
    // write would send all of a session's output through the daemon): the
    // tracepoints stay.
    if (!p.guard_uids.empty() || !p.guard_cgroups.empty() ||
        (!p.hold_agents_at_exec && !p.agent_names.empty()) || !p.min_free.off())
        return true;
    for (const Session& s : sessions_->list())
        if (!seccomp_covers(s.id)) return true;
    return false;
}

json Daemon::accept_seccomp(const json& req, const PeerCred& peer, Fd passed) {
    const Session* s = nullptr;
    if (req.value("adopt", false)) {
        // A session of an earlier daemon: its wrapper (same process, by its
        // start time) hands over the listener it kept.
        for (const auto& [id, w] : wrappers_)
            if (w.pid == peer.pid && w.start_time == task_start_time(peer.pid))
                s = sessions_->find(id);
        if (!s || !passed.valid())
            return {{"ok", false}, {"error", "not the wrapper of a session of this host"}};
        if (seccomp_covers(s->id)) return {{"ok", true}, {"seccomp", true}};
    } else {
        s = sessions_->find_by_name(req.value("session", ""));
        auto w = s ? wrappers_.find(s->id) : wrappers_.end();
        // Only the first process of a session this daemon made for a
        // wrapper, before its exec: a child of that wrapper.
        if (!s || w == wrappers_.end() || ppid_of(peer.pid) != w->second.pid)
            return {{"ok", false}, {"error", "not the first process of a run session"}};
    }
    seccomp_pending_.erase(s->id);
    if (!passed.valid()) {
        // The filter could not be installed: the tracepoints cover it,
        // attached before the answer (the process execs after it).
        std::string why = req.value("error", "no listener came with the request");
        spdlog::warn("session {}: no seccomp filter ({}); the syscall tracepoints cover it",
                     s->name, why);
        if (!update_file_layer(true))
            return {{"ok", false}, {"error", "cannot attach the file protection programs"}};
        return {{"ok", true}, {"seccomp", false}};
    }
    int fd = passed.get();
    if (!seccomp::wake_on_one_cpu(fd))
        spdlog::debug("session {}: the kernel wakes a filtered caller on another CPU", s->name);
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.fd = fd;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &e) != 0) {
        update_file_layer(true);
        return {{"ok", false}, {"error", std::string("epoll: ") + std::strerror(errno)}};
    }
    seccomp_[fd] = SeccompListener{std::move(passed), s->id};
    // Calls an earlier daemon held in this session are answered through it.
    for (const Hold& h : holds_.list())
        if (h.layer == "seccomp" && h.cookie && h.session == s->name)
            seccomp_holds_[h.id] = SeccompHold{fd, h.cookie};
    for (auto it = seccomp_unsent_.begin(); it != seccomp_unsent_.end();) {
        if (it->session != s->name) {
            ++it;
            continue;
        }
        (void)seccomp::answer(fd, it->cookie, it->error);
        it = seccomp_unsent_.erase(it);
    }
    spdlog::info("session {}: under a seccomp filter (listener {}{})", s->name, fd,
                 req.value("adopt", false) ? ", handed over by its wrapper" : "");
    update_file_layer();
    return {{"ok", true}, {"seccomp", true}};
}

void Daemon::on_seccomp(int fd, uint32_t events) {
    auto it = seccomp_.find(fd);
    if (it == seccomp_.end()) return;
    if (events & EPOLLIN) {
        // A session's calls come in bursts (a loop over files): after each
        // answer the next call is looked for a little while before the
        // daemon sleeps again, which spares the caller a wake-up of the
        // daemon on another CPU (most of a call's round trip here).
        auto until = std::chrono::steady_clock::now() + kSeccompLinger;
        for (;;) {
            auto n = seccomp::receive(fd);
            if (n) {
                auto t0 = std::chrono::steady_clock::now();
                judge_seccomp(fd, *n);
                seccomp_counts_.judge_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                std::chrono::steady_clock::now() - t0)
                                                .count();
            } else if (n.error().code != ENOENT) {
                spdlog::error("seccomp listener {}: {}", fd, n.error().str());
                return;
            }
            pollfd p{fd, POLLIN, 0};
            bool next = false;
            while (!next && std::chrono::steady_clock::now() < until)
                next = ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
            if (!next) return;
            until = std::chrono::steady_clock::now() + kSeccompLinger;
        }
    }
    if (events & (EPOLLHUP | EPOLLERR)) {
        // Every process under the filter is gone.
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        seccomp_.erase(it);
    }
}

void Daemon::judge_seccomp(int fd, const seccomp::Notice& n) {
    ++seccomp_counts_.asked;
    uint64_t now = boottime_ns();
    seccomp::Call c = seccomp::decode_call(n.nr, n.args);
    auto answer = [&](int error) {
        if (auto st = seccomp::answer(fd, n.id, error); !st)
            spdlog::error("seccomp answer: {}", st.error().str());
        ++(error ? seccomp_counts_.refused : seccomp_counts_.passed);
    };
    if (c.kind == seccomp::Call::Kind::kFiles) {
        if (auto st = seccomp::read_paths(n.tid, c); !st) {
            // A path the kernel could not read either (EFAULT), or longer
            // than it takes: the call fails as it would have.
            ++seccomp_counts_.unreadable;
            answer(st.error().code == 0 ? ENAMETOOLONG : EFAULT);
            return;
        }
    }
    if (c.kind == seccomp::Call::Kind::kSpace && space_allows(n.tid, c))
        c.kind = seccomp::Call::Kind::kNone;
    // Read from a task that was still waiting: its pid was not reused.
    if (!seccomp::still_waiting(fd, n.id)) return;
    if (c.kind == seccomp::Call::Kind::kNone) return answer(0);

    EventHeader h;
    h.ts_boot_ns = now;
    h.tid = n.tid;
    // A process's main thread is in the table under its own id.
    h.pid = table_.find(n.tid) ? n.tid : tgid_of(n.tid);
    if (!h.pid) return answer(0);  // gone: its call with it
    h.session_id = seccomp_.at(fd).session_id;
    if (const ProcessInfo* pi = table_.find(h.pid)) {
        h.comm = pi->comm;
        h.ppid = pi->ppid;
        h.uid = pi->uid;
    } else {
        h.comm = comm_of(h.pid);
        h.ppid = ppid_of(h.pid);
    }
    json latency = {{"decision_latency_ns", 0}};
    if (c.kind == seccomp::Call::Kind::kFiles) into_other_memory(h, c);

    if (c.kind == seccomp::Call::Kind::kProcess || c.kind == seccomp::Call::Kind::kKernel) {
        TamperEvent ev;
        ev.hdr = h;
        ev.layer = KS_LAYER_SECCOMP;
        ev.target = c.target;
        ev.arg = c.arg;
        ev.syscall_nr = static_cast<uint32_t>(n.nr);
        ev.what = c.tamper;
        auto refuse_reach = [&](const ReachedProcess& target) {
            ev.flags = KS_TF_REFUSED;
            Decision d = decide_reach(ev, target);
            ++enforcer_.counters().tamper;
            latency["decision_latency_ns"] = boottime_ns() - now;
            carry_out("reach", subject_of(h), reach_facts(ev, target), d, latency);
            answer(EPERM);
        };
        if (c.kind == seccomp::Call::Kind::kProcess) {
            if (c.tamper == KS_TAMPER_REACH_SIGNAL && c.arg == 0) return answer(0);  // alive?
            if (c.fd >= 0) {
                ev.target = c.target = pidfd_process(n.tid, c.fd);
                if (!c.target) return answer(EBADF);  // not a pidfd: as the kernel says
            }
            // The session's wrapper may be signalled (kill 0 reaches it),
            // not traced: it keeps a copy of the session's listener.
            auto w = wrappers_.find(h.session_id);
            if (c.tamper != KS_TAMPER_REACH_SIGNAL && c.tamper != KS_TAMPER_REACH_PIDFD &&
                w != wrappers_.end() && c.target > 0 &&
                tgid_of(static_cast<int>(c.target)) == w->second.pid) {
                return refuse_reach({w->second.pid, comm_of(w->second.pid), ""});
            }
            int64_t who = c.target < 0 ? -c.target : c.target;
            bool at_daemon = c.target == -1 || who == ::getpid();
            if (at_daemon) {
                ev.what = self_tamper(c.tamper);
            } else {
                auto out = outside_of_session(ev);
                if (!out) return answer(0);
                return refuse_reach(*out);
            }
        }
        Decision d = decide_tamper(ev, ::getpid(), policy());
        ++enforcer_.counters().tamper;
        latency["decision_latency_ns"] = boottime_ns() - now;
        carry_out("tamper", subject_of(h), tamper_facts(ev), d, latency);
        return answer(EPERM);
    }

    std::optional<FileEvent> ev = c.kind == seccomp::Call::Kind::kSpace ? seccomp_space_event(h, c)
                                                                        : seccomp_file_event(h, c);
    if (!ev) return answer(0);
    const policy::CompiledRule rule = state_.compiled.rule(ev->rule_id);
    bool lets_through =
        (ev->flags & (KS_FF_MONITOR | KS_FF_WINDOW)) || rule.action == Action::Audit;
    bool holds = !lets_through && rule.action == Action::Hold;
    if (!lets_through && !holds) ev->flags |= KS_FF_DENIED;
    Decision d = decide_file(*ev, state_.compiled);
    latency["decision_latency_ns"] = boottime_ns() - now;
    ActionResult r = carry_out("file", subject_of(h), file_event_facts(*ev), d, latency);
    if (holds && r.hold_id) {
        // It waits in the kernel until a person decides (answer_seccomp_hold),
        // across a restart of the daemon too (the wrapper keeps the listener).
        seccomp_holds_[r.hold_id] = SeccompHold{fd, n.id};
        holds_.set_cookie(r.hold_id, n.id);
        return;
    }
    answer(lets_through ? 0 : EPERM);
}

std::optional<FileEvent> Daemon::seccomp_file_event(const EventHeader& h, const seccomp::Call& c) {
    const ProtectedSet& protect = state_.protected_set;
    const policy::CompiledPolicy& compiled = state_.compiled;
    for (const auto& p : c.paths) {
        FileEvent ev = seccomp_event(h, p.op, KS_MATCH_NONE, 0);
        ev.dfd = p.dfd;
        // The object as the caller reaches it: through its root, working
        // directory or descriptor in /proc. A symbolic link's target: as
        // the kernel will follow it, from the link's own directory (the
        // call's first path).
        std::string where;
        if (p.op == KS_OP_SYMLINK_TO) {
            ev.path = p.path;
            where = symlink_target_path(ev, c.paths.front().path);
            if (where.empty()) continue;
        } else {
            where = caller_path(h.pid, p.dfd, p.address ? p.path : "");
        }
        PathVerdict v = protect.classify(where, p.follow);
        ev.open_flags = p.open_flags;
        ev.path = v.resolved;
        ev.meta = c.meta;
        if (p.op == KS_OP_SYMLINK_TO && (v.inside || v.contains)) {
            // Judged by the rule of what it reaches, as at the libc layer.
            ev.match = v.inside ? KS_MATCH_PATH : KS_MATCH_ANCESTOR;
            ev.rule_id = v.rule_id;
        } else if (p.op == KS_OP_SYMLINK_TO) {
            continue;
        } else if (v.block_device && writes(p.op) && (p.open_flags & O_ACCMODE) &&
                   compiled.block_device_rule < KS_MAX_RULES) {
            ev.op = KS_OP_DEVICE_WRITE;
            ev.match = KS_MATCH_BLOCK_DEVICE;
            ev.rule_id = compiled.block_device_rule;
        } else if (v.inside) {
            // O_CREAT alone: a new file in the tree; an existing one is
            // only opened.
            struct stat st {};
            if (p.op == KS_OP_CREATE_IN && c.paths.size() == 1 && ::lstat(where.c_str(), &st) == 0)
                continue;
            ev.match = KS_MATCH_PATH;
            ev.rule_id = v.rule_id;
        } else if (v.contains &&
                   (removes(p.op) || (p.op == KS_OP_MOUNT_SOURCE && v.resolved != "/"))) {
            // Above a protected root: moved away, mounted over or copied
            // (a bind's source; "/" itself is a sandbox's whole view).
            ev.match = KS_MATCH_ANCESTOR;
            ev.rule_id = v.rule_id;
        } else if (auto rule = p.op == KS_OP_REMOUNT ? data_fs_rule(where) : std::nullopt) {
            // A remount of another mount of the file system that holds the
            // data (a bind of one of its other directories): the same file
            // system, the same read-only flag.
            ev.match = KS_MATCH_DATA_FS;
            ev.rule_id = *rule;
        } else {
            continue;
        }
        if ((ev.op == KS_OP_CHMOD || ev.op == KS_OP_CHOWN) && ev.match == KS_MATCH_PATH) {
            // A change that changes nothing goes on (chown -R over data the
            // owner already owns).
            FileEvent look = ev;
            look.path = p.address ? p.path : "";
            auto same = meta_unchanged(look);
            if (same && *same) {
                // Where the syscall tracepoints are attached too, the call
                // meets them next: a ticket lets that one call through.
                look.upath = p.address;
                constexpr uint64_t kTicketNs = 2'000'000'000ull;
                if (fbpf_->active() && fbpf_->syscalls())
                    if (auto st = fbpf_->give_meta_ticket(
                            h.tid, meta_ticket(look, boottime_ns() + kTicketNs));
                        !st)
                        spdlog::error("{}", st.error().str());
                ++metadata_unchanged_;
                continue;
            }
        }
        return under_rule(ev);
    }
    if (c.kind == seccomp::Call::Kind::kIoUring && compiled.io_uring_rule < KS_MAX_RULES) {
        return under_rule(
            seccomp_event(h, KS_OP_IO_URING, KS_MATCH_ALWAYS, compiled.io_uring_rule));
    }
    return std::nullopt;
}

void Daemon::into_other_memory(const EventHeader& h, seccomp::Call& c) const {
    for (const auto& p : c.paths) {
        if (!writes(p.op) || !p.address) continue;
        std::string where =
            caller_path(h.pid, p.dfd, seccomp::caller_proc_path(p.path, h.pid, h.tid));
        char buf[PATH_MAX];
        if (!::realpath(where.c_str(), buf)) continue;
        auto target = seccomp::proc_mem_target(buf);
        if (!target || *target == h.pid) continue;
        // Writing another process's memory is tracing it (the self guard's
        // ptrace, as at the LSM layer).
        c.kind = seccomp::Call::Kind::kProcess;
        c.tamper = KS_TAMPER_REACH_PTRACE;
        c.target = *target;
        c.arg = 0;
        return;
    }
}

FileEvent Daemon::under_rule(FileEvent ev) const {
    const policy::CompiledRule rule = state_.compiled.rule(ev.rule_id);
    ev.action = to_abi(rule.action);
    if (rule.monitor)
        ev.flags |= KS_FF_MONITOR;
    else if (!rule.no_window && !window_of(ev.hdr.session_id).is_null())
        ev.flags |= KS_FF_WINDOW;
    return ev;
}

std::optional<uint32_t> Daemon::data_fs_rule(const std::string& path) const {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    for (const auto& r : state_.protected_set.roots())
        if (r.data() && r.dev == kernel_dev(st.st_dev)) return r.rule_id;
    return std::nullopt;
}

bool Daemon::space_allows(int tid, const seccomp::Call& c) const {
    struct stat st {};
    std::string file = "/proc/" + std::to_string(tid) + "/fd/" + std::to_string(c.fd);
    if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return true;
    const SpaceFs* f = space_->fs(kernel_dev(st.st_dev));
    if (!f) return true;
    uint64_t headroom = f->avail > f->floor ? f->avail - f->floor : 0;
    return c.bytes <= headroom;
}

std::optional<FileEvent> Daemon::seccomp_space_event(const EventHeader& h, const seccomp::Call& c) {
    struct stat st {};
    std::string file = "/proc/" + std::to_string(h.pid) + "/fd/" + std::to_string(c.fd);
    if (::stat(file.c_str(), &st) != 0) return std::nullopt;
    const policy::CompiledPolicy& compiled = state_.compiled;
    if (compiled.space_rule >= KS_MAX_RULES) return std::nullopt;
    FileEvent ev = seccomp_event(h, KS_OP_SPACE_WRITE, KS_MATCH_LOW_SPACE, compiled.space_rule);
    ev.dfd = c.fd;
    ev.bytes = c.bytes;
    ev.dev = kernel_dev(st.st_dev);
    char buf[PATH_MAX];
    ssize_t n = ::readlink(file.c_str(), buf, sizeof(buf) - 1);
    if (n > 0) ev.path.assign(buf, static_cast<size_t>(n));
    return under_rule(ev);
}

void Daemon::answer_seccomp_hold(const Hold& h, bool approve) {
    auto it = seccomp_holds_.find(h.id);
    if (it == seccomp_holds_.end()) {
        // Held by an earlier daemon, whose session's listener has not come
        // back yet: answered when it does.
        if (h.cookie) seccomp_unsent_.push_back({h.session, h.cookie, approve ? 0 : EPERM});
        return;
    }
    // Denied: killed before (resolve_hold), so the call never returns.
    if (auto st = seccomp::answer(it->second.fd, it->second.id, approve ? 0 : EPERM); !st)
        spdlog::error("seccomp answer to hold {}: {}", h.id, st.error().str());
    seccomp_holds_.erase(it);
}

void Daemon::forget_seccomp(uint32_t session_id) {
    seccomp_pending_.erase(session_id);
    for (auto it = seccomp_.begin(); it != seccomp_.end();) {
        if (it->second.session_id != session_id) {
            ++it;
            continue;
        }
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->first, nullptr);
        it = seccomp_.erase(it);
    }
}

json Daemon::seccomp_json() const {
    json j = {{"active", seccomp_reason_.empty()}};
    if (!seccomp_reason_.empty()) j["reason"] = seccomp_reason_;
    json sessions = json::array();
    for (const auto& [fd, l] : seccomp_) sessions.push_back(session_name(l.session_id));
    j["sessions"] = sessions;
    j["asked"] = seccomp_counts_.asked;
    j["refused"] = seccomp_counts_.refused;
    j["passed"] = seccomp_counts_.passed;
    j["unreadable"] = seccomp_counts_.unreadable;
    j["holds"] = seccomp_holds_.size();
    // The daemon's own part of a call's round trip (reading and judging it).
    if (seccomp_counts_.asked)
        j["judge_mean_ns"] = seccomp_counts_.judge_ns / seccomp_counts_.asked;
    return j;
}

}  // namespace ks::daemon_detail
