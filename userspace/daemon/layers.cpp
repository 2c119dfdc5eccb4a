// The daemon's BPF layers: loaded in order into one list, the hook layer
// chosen by a probe, attached while something can be guarded, reported in
// `killswitch status` and torn down by looping over the list.
#include "daemon/daemon_impl.h"
#include "file_guard/exec_rules.h"

namespace ks::daemon_detail {

void Daemon::start_layers() {
    auto bpf = ProcessGuardBpf::load({.hold_seeded_tasks = policy().hold_agents_at_exec});
    if (!bpf) throw StartupError{bpf.error().str()};
    bpf_ = add_layer(std::move(bpf.value()));

    bool libc = opts_.libc_uprobes && policy().libc_uprobes;
    std::string libc_path = libc ? find_libc() : "";
    std::optional<int> multi;
    if (!libc)
        scope_reason_ = "the libc layer is off";
    else if (!opts_.scoped_uprobes)
        scope_reason_ = "turned off (killswitch daemon --global-uprobes)";
    else if (multi = uprobe_multi_support(libc_path).attach_type; !multi)
        scope_reason_ = uprobe_multi_support(libc_path).reason;
    space_programs_ = !policy().min_free.off();
    // The hook layer first: where it runs, the file layer loads its exec
    // program alone and shares the hook layer's maps.
    start_hook_layer();
    std::vector<bpf_object*> file_shared = {bpf_->skeleton_object()};
    if (hbpf_) file_shared.push_back(hbpf_->object());
    // protect.min_free off at start: no program on the write system calls
    // (turning it on takes a restart).
    auto fg = FileGuardBpf::load(
        file_shared, {.libc_uprobes = libc,
                      .uprobe_multi = multi,
                      .space_writes = space_programs_ && (!hbpf_ || hbpf_->coverage().space),
                      .files_to_hooks = hbpf_ != nullptr});
    if (!fg) throw StartupError{fg.error().str()};
    fbpf_ = add_layer(std::move(fg.value()));
    space_ = std::make_unique<SpaceBudget>(*fbpf_);
    if (auto st = fbpf_->set_exec_watch(watched_tools()); !st) throw StartupError{st.error().str()};

    // The endpoints and the configuration come with the policy (publish_state).
    auto dw = DbWireBpf::load(bpf_->skeleton_object(), cgroup2_, {}, DbWireConfig{});
    if (dw) {
        dwbpf_ = add_layer(std::move(dw.value()));
    } else {
        // Without the socket path the rest still protects: start, and say so
        // everywhere (log, status, the daemon_start record) rather than leave
        // the host with no protection at all.
        db_wire_error_ = dw.error().str();
        spdlog::error(
            "database socket path unavailable on this kernel: {}; database requests "
            "of guarded processes are NOT judged (libpq uprobes still are)",
            db_wire_error_);
    }

    start_relay();

    // Its mode is published with the rest of the policy (publish_state).
    // Where the relay reads unix sockets too (Linux 6.7+), libpq's statements
    // need no uprobes: they would only cost every libpq client on the host.
    bool relay_covers_unix = relay_ && dwbpf_->unix_rule();
    auto db =
        DbGuardBpf::load(bpf_->skeleton_object(), policy().mode == policy::Mode::Monitor,
                         policy().db_client_probes && opts_.db_client_probes && !relay_covers_unix);
    if (!db) throw StartupError{db.error().str()};
    dbpf_ = add_layer(std::move(db.value()));

    std::vector<bpf_object*> shared = {bpf_->skeleton_object()};
    HookCoverage hooks;
    if (hbpf_) {
        shared.push_back(hbpf_->object());
        hooks = hbpf_->coverage();
    }
    // The hold of a new child at fork is a file layer program, which a hook
    // layer leaves off: there the uprobes stay for every process.
    if (multi && hbpf_) {
        scope_reason_ = "a hook layer is active";
    } else if (multi) {
        scope_ = std::make_unique<UprobeScope>(*multi, libc_path, fbpf_->scope_dispatcher_fd(),
                                               fbpf_->scope_prog_array_fd());
        fbpf_->set_scope(scope_.get());
    }
    auto sg = SelfGuardBpf::load(shared, libc_path, hooks, scope_.get(), multi.value_or(0));
    if (!sg) throw StartupError{sg.error().str()};
    sgbpf_ = add_layer(std::move(sg.value()));
    if (auto st = sgbpf_->set_protected_pids({::getpid()}); !st)
        throw StartupError{st.error().str()};
    start_seccomp();
    if (scope_) {
        if (auto st = bpf_->set_uprobe_scope(true); !st) throw StartupError{st.error().str()};
        // Guarded before we started (an earlier daemon's sessions): their
        // links come with the layers.
        for (int tgid : bpf_->guarded_tgids())
            if (uint64_t start = task_start_time(tgid)) (void)scope_->add(tgid, start);
    }
}

void Daemon::start_hook_layer() {
    lsm_reason_ = opts_.lsm ? HookGuardBpf::unavailable_reason(HookKind::kLsm)
                            : "turned off (killswitch daemon --no-lsm)";
    if (lsm_reason_.empty()) lsm_reason_ = try_hook_layer(HookKind::kLsm);
    if (hbpf_) {
        fentry_reason_ = "the LSM layer is active";
    } else {
        fentry_reason_ = opts_.fentry ? HookGuardBpf::unavailable_reason(HookKind::kFentry)
                                      : "turned off (killswitch daemon --no-fentry)";
        if (fentry_reason_.empty()) fentry_reason_ = try_hook_layer(HookKind::kFentry);
    }
    if (!hbpf_) {
        spdlog::warn(
            "LSM layer not used: {}. fentry layer not used: {}. Files are protected by "
            "the exec, libc and syscall tracepoint layers: a raw system call is stopped "
            "right after it, not refused (killswitch doctor)",
            lsm_reason_, fentry_reason_);
        return;
    }
    if (hbpf_->kind() == HookKind::kLsm) {
        spdlog::info(
            "LSM layer active: the kernel refuses destructive operations of guarded "
            "processes with EPERM ({} hooks)",
            hbpf_->hooks().size());
    } else {
        spdlog::info(
            "LSM layer not used: {}. fentry layer active: fmod_ret programs on {} security_* "
            "functions refuse destructive operations of guarded processes with EPERM",
            lsm_reason_, hbpf_->hooks().size());
    }
}

std::string Daemon::try_hook_layer(HookKind kind) {
    auto h = HookGuardBpf::load(kind, {bpf_->skeleton_object()}, space_programs_);
    if (!h) return h.error().str();
    // Attached is not running: a guarded unlink must be refused.
    if (auto st = (*h)->probe(bpf_->guarded_tasks_fd(), opts_.runtime_dir); !st)
        return "probe: " + st.error().str();
    hbpf_ = add_layer(std::move(h.value()));
    return "";
}

json Daemon::hook_json(HookKind kind) const {
    if (hbpf_ && hbpf_->kind() == kind) {
        json j;
        hbpf_->describe(j);
        return j[std::string(hook_kind_name(kind))];
    }
    return {{"active", false}, {"reason", kind == HookKind::kLsm ? lsm_reason_ : fentry_reason_}};
}

json Daemon::layers_json() const {
    json layers = json::object();
    for (const auto& l : layers_) l->describe(layers);
    for (HookKind k : {HookKind::kLsm, HookKind::kFentry})
        if (!layers.contains(hook_kind_name(k)))
            layers[std::string(hook_kind_name(k))] = hook_json(k);
    if (!dwbpf_) {
        layers["db_socket_path"] = false;
        layers["db_socket_path_error"] = db_wire_error_;
        layers["db_unix_connect_rule"] = false;
        layers["db_unix_sockets"] = json::array();
    }
    if (relay_)
        layers["db_relay"] = relay_->describe();
    else
        layers["db_relay"] = {{"active", false},
                              {"reason", !relay_error_.empty() ? relay_error_
                                         : !dwbpf_             ? "no socket path on this kernel"
                                                               : "off (databases.relay: false)"}};
    layers["uprobe_scope"] = scope_json();
    layers["seccomp_sessions"] = seccomp_json();
    return layers;
}

json Daemon::scope_json() const {
    if (!scope_) return {{"active", false}, {"reason", scope_reason_}};
    json j = {{"active", true},
              {"processes", scope_->processes()},
              {"links_attached", scope_->attached_total()},
              {"link_failures", scope_->failed_total()},
              {"fork_holds", fork_holds_.count}};
    if (fork_holds_.count) {
        j["fork_hold_mean_us"] = fork_holds_.total_ns / fork_holds_.count / 1000;
        j["fork_hold_max_us"] = fork_holds_.max_ns / 1000;
    }
    return j;
}

bool Daemon::update_file_layer(bool force_on) {
    // Guarded processes can exist only in sessions, or appear at any exec when
    // the policy guards uids or cgroups, or agents that are not held at exec.
    const policy::Policy& p = policy();
    bool need = force_on || sessions_->count() > 0 || !p.guard_uids.empty() ||
                !p.guard_cgroups.empty() || (!p.hold_agents_at_exec && !p.agent_names.empty());
    auto now = std::chrono::steady_clock::now();
    // A run session's filter that never came: the tracepoints cover it.
    std::erase_if(seccomp_pending_, [&](const auto& pending) { return pending.second < now; });
    // The syscall tracepoints (file and self guards) only while a guarded
    // process can exist outside every seccomp-covered run session; gone
    // kDetachGrace after the last such need, like the layers.
    bool syscalls = force_on || syscall_tracepoints_needed();
    if (syscalls) syscalls_detach_due_.reset();
    if (need) detach_due_.reset();
    if (need && fbpf_->active() && syscalls != fbpf_->syscalls()) {
        if (!syscalls) {
            if (!syscalls_detach_due_) syscalls_detach_due_ = now + kDetachGrace;
            if (now < *syscalls_detach_due_) return true;
            syscalls_detach_due_.reset();
        }
        if (auto st = fbpf_->set_syscalls(syscalls); !st) {
            spdlog::error("file_guard: {}", st.error().str());
            if (syscalls) return false;
        }
        if (auto st = sgbpf_->set_active(syscalls); !st)
            spdlog::error("{}: {}", sgbpf_->name(), st.error().str());
        spdlog::info("syscall tracepoints {} ({} sessions, {} under a seccomp filter)",
                     syscalls ? "attached" : "detached", sessions_->count(), seccomp_.size());
    }
    if (need == fbpf_->active()) return true;
    if (!need) {
        if (!detach_due_) detach_due_ = now + kDetachGrace;
        if (now < *detach_due_) return true;
        detach_due_.reset();
    }
    // Before it attaches: with its syscall tracepoints or without.
    if (need) (void)fbpf_->set_syscalls(syscalls);
    for (const auto& l : layers_) {
        if (l->always_on()) continue;
        bool on = l.get() == sgbpf_ ? need && syscalls : need;
        if (auto st = l->set_active(on); !st) {
            spdlog::error("{}: {}", l->name(), st.error().str());
            if (l.get() == fbpf_) return false;
        }
    }
    sync_relay();  // the unix sockets found as the programs attached
    spdlog::info("file protection programs {} ({} sessions{})", need ? "attached" : "detached",
                 sessions_->count(), need && !syscalls ? ", no syscall tracepoint" : "");
    return true;
}

}  // namespace ks::daemon_detail
