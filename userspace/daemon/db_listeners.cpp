// databases.discover in the daemon: every port and unix socket that a
// running database server, or a local proxy or forwarder in front of one,
// listens on (db_guard/listeners.h) is watched with
// the policy's endpoints, found at start, at each policy load and every
// kDiscoverEvery; a listener that appears or goes is said in the log and
// in a db_listeners record. processes.multiplexers likewise: the sockets of
// tmux and screen servers running outside every session are deputies.
#include "daemon/daemon_impl.h"

namespace ks::daemon_detail {

namespace {

bool wanted(const db::Listener& l, const policy::Policy& p) {
    return l.endpoint.kind == db::Kind::Deputy ? p.deputy_multiplexers : p.db_discover;
}

}  // namespace

std::vector<db::Endpoint> Daemon::watched_endpoints(const policy::CompiledPolicy& c) const {
    std::vector<db::Endpoint> out = c.db_endpoints;
    for (const auto& l : discovered_)
        if (wanted(l, c.policy) && !db::covered(l.endpoint, out)) out.push_back(l.endpoint);
    return out;
}

void Daemon::on_listen_notes() {
    for (const auto& n : listen_watch_->take()) {
        std::string comm(n.comm, strnlen(n.comm, sizeof(n.comm)));
        std::string proc = "/proc/" + std::to_string(n.pid);
        if (!db::listens_for_databases(comm) &&
            !db::listens_for_databases(db::executable_name(proc)) &&
            server_builds_.program_of(proc + "/exe").empty())
            continue;
        look_for_db_listeners(&n);
        return;  // one look finds every listener there is
    }
}

bool Daemon::discovering() const {
    const policy::CompiledPolicy& c = state_.compiled;
    return dwbpf_ && (c.policy.db_discover || c.policy.deputy_multiplexers);
}

void Daemon::discover_db_listeners() {
    discovered_at_ = std::chrono::steady_clock::now();
    apply_db_listeners(discovering() ? db::discover_listeners("/proc", state_.compiled.db_endpoints,
                                                              &server_builds_)
                                     : std::vector<db::Listener>{},
                       std::nullopt);
}

// Reading /proc takes a while on a host of many processes: the periodic
// look and the one a listen asks for run on a thread of their own, and
// the main loop goes on meanwhile (holds, records, the relay's questions).
void Daemon::look_for_db_listeners(const ks_listen_note* listen) {
    discovered_at_ = std::chrono::steady_clock::now();
    if (!discovering()) {
        apply_db_listeners({}, std::nullopt);
        return;
    }
    if (scan_.thread.joinable()) {
        // One runs: another follows it (it may have read /proc before
        // this listen).
        scan_.again = true;
        if (listen && !scan_.again_note) scan_.again_note = *listen;
        return;
    }
    scan_.note = listen ? std::optional<ks_listen_note>(*listen) : std::nullopt;
    scan_.thread = std::thread([this, watched = state_.compiled.db_endpoints] {
        auto found = db::discover_listeners("/proc", watched, &server_builds_);
        {
            std::lock_guard lock(scan_.mu);
            scan_.found = std::move(found);
        }
        uint64_t one = 1;
        (void)!::write(scan_.done.get(), &one, sizeof(one));
    });
}

void Daemon::on_db_listeners_found() {
    uint64_t n;
    (void)!::read(scan_.done.get(), &n, sizeof(n));
    if (!scan_.thread.joinable()) return;
    scan_.thread.join();
    std::vector<db::Listener> found;
    {
        std::lock_guard lock(scan_.mu);
        found = std::move(scan_.found);
    }
    apply_db_listeners(discovering() ? std::move(found) : std::vector<db::Listener>{}, scan_.note);
    if (std::exchange(scan_.again, false)) {
        auto note = std::exchange(scan_.again_note, std::nullopt);
        look_for_db_listeners(note ? &*note : nullptr);
    }
}

void Daemon::apply_db_listeners(std::vector<db::Listener> all,
                                const std::optional<ks_listen_note>& listen) {
    const policy::CompiledPolicy& c = state_.compiled;
    std::vector<db::Listener> found;
    for (auto& l : all) {
        // A multiplexer started inside a session is the session's own.
        if (!wanted(l, c.policy) || db::covered(l.endpoint, c.db_endpoints) ||
            (l.endpoint.kind == db::Kind::Deputy && bpf_->session_of(l.pid)))
            continue;
        found.push_back(std::move(l));
    }
    auto names = [](const std::vector<db::Listener>& v) {
        std::vector<std::string> out;
        for (const auto& l : v) out.push_back(l.endpoint.str());
        return out;
    };
    auto now = names(found), before = names(discovered_);
    if (now == before) return;
    // What made the daemon look: a listen it saw (and how long ago that
    // was, now that the endpoints are found), else its periodic scan.
    std::string seen;
    json trigger = "scan";
    if (listen) {
        std::string comm(listen->comm, strnlen(listen->comm, sizeof(listen->comm)));
        seen = fmt::format(", seen as {} (pid {}) began to listen on port {}", comm, listen->pid,
                           listen->port);
        trigger = {{"listen", {{"pid", listen->pid}, {"comm", comm}, {"port", listen->port}}},
                   {"after_ns", boottime_ns() - listen->ts_ns}};
    }
    json eps = json::array();
    for (const auto& l : found) {
        eps.push_back({{"endpoint", l.endpoint.str()}, {"pid", l.pid}, {"server", l.server}});
        if (!l.via.empty()) eps.back()["via"] = l.via;
        if (std::find(before.begin(), before.end(), l.endpoint.str()) != before.end()) continue;
        if (l.endpoint.kind == db::Kind::Deputy)
            spdlog::info(
                "refusing guarded connections to {}: {} (pid {}) listens there outside every "
                "session (processes.multiplexers)",
                l.endpoint.unix_path, l.server, l.pid);
        else if (!l.via.empty())
            spdlog::info("watching {}: {} (pid {}) listens there, {} (databases.discover{})",
                         l.endpoint.str(), l.server, l.pid, l.via, seen);
        else
            spdlog::info("watching {}: {} (pid {}) listens there (databases.discover{})",
                         l.endpoint.str(), l.server, l.pid, seen);
    }
    for (const auto& b : before)
        if (std::find(now.begin(), now.end(), b) == now.end())
            spdlog::info("no longer watching {}: no server listens there", b);
    discovered_ = std::move(found);
    if (auto st = dwbpf_->set_endpoints(watched_endpoints(c)); !st)
        spdlog::error("databases.discover: {}", st.error().str());
    sync_relay();
    json rec = own_record("db_listeners");
    rec["discovered"] = std::move(eps);
    rec["trigger"] = std::move(trigger);
    audit_->append(std::move(rec));
}

}  // namespace ks::daemon_detail
