// The database relay in the daemon: started with the socket-path layer,
// serviced by the event loop, and the judge of its requests:
// decode (the relay's framing) -> enrich (Subject of the connecting process)
// -> classify_relayed / rule_relayed / decide_relayed -> carry_out -> the
// client reads the refusal in its protocol's error.
#include "daemon/daemon_impl.h"
#include "db_guard/db_guard_decide.h"
#include "db_guard/db_relay_decide.h"

namespace ks::daemon_detail {

void Daemon::start_relay() {
    if (!dwbpf_ || !policy().db_relay) return;
    relay::Hooks hooks;
    hooks.judge = [this](const relay::Origin& o, const relay::Request& r) {
        return judge_relayed(o, r);
    };
    hooks.closed = [this](const relay::Origin& o, const std::string& why) { relay_closed(o, why); };
    hooks.session_of = [this](int pid) -> uint32_t {
        const ProcessInfo* p = table_.find(pid);
        return p ? p->session_id : 0;
    };
    auto r = relay::Relay::start(dwbpf_->relay_conns_fd(), std::move(hooks));
    if (!r) {
        relay_error_ = r.error().str();
        spdlog::error(
            "database relay unavailable: {}; guarded connections are judged on the "
            "socket send path only",
            relay_error_);
        return;
    }
    relay_ = std::move(r.value());
    sync_relay();
}

// The relay listens for every watched unix socket the kernel knows of now
// (patterns are expanded when the programs attach), and the kernel sends
// guarded connections there.
void Daemon::sync_relay() {
    if (!relay_ || !dwbpf_) return;
    if (dwbpf_->unix_watched() != relay_unix_) {
        std::vector<relay::UnixEndpoint> eps;
        for (const auto& u : dwbpf_->unix_watched()) eps.push_back({u.path, u.kind, u.endpoint_id});
        if (auto st = relay_->set_unix_endpoints(eps); !st)
            spdlog::error("database relay: {}", st.error().str());
        relay_unix_ = dwbpf_->unix_watched();
    }
    if (auto st = dwbpf_->set_relay(relay_->port4(), relay_->port6(),
                                    relay_->has_unix() && dwbpf_->unix_rule());
        !st)
        spdlog::error("database relay: {}", st.error().str());
}

relay::Verdict Daemon::judge_relayed(const relay::Origin& o, const relay::Request& req) {
    const policy::Policy& p = policy();
    RelayedRequest r{o.kind, o.address, o.connection, o.unix_socket, req.type, req.text};
    db::Classification c = classify_relayed(r, classify_options(state_.compiled));
    if (c.statements.empty()) return {};
    uint64_t now = boottime_ns();
    db::VolumeLimits limits{static_cast<uint64_t>(p.db_volume_keys),
                            static_cast<uint64_t>(p.db_volume_deletes),
                            static_cast<uint64_t>(p.db_volume_within_s) * 1'000'000'000ull};
    RelayRuling ruling = rule_relayed(c, "", state_.compiled);
    if (!ruling.refuse)
        ruling = rule_relayed(
            c, volume_.charge(o.session_id, db::volume_of(c, o.kind == KS_DB_REDIS), now, limits),
            state_.compiled);
    auto w = windows_.find(o.session_id);
    bool window = w != windows_.end() && w->second.open && w->second.until_boot_ns > now;

    EventHeader h;
    h.ts_boot_ns = now;
    h.pid = o.pid;
    h.tid = o.pid;
    h.session_id = o.session_id;
    // From the process table (no /proc read per request); /proc for a
    // process it does not know.
    if (const ProcessInfo* pi = table_.find(o.pid)) {
        h.comm = pi->comm;
        h.ppid = pi->ppid;
        h.uid = pi->uid;
    } else {
        h.comm = comm_of(o.pid);
    }
    Subject s = subject_of(h);
    relay::Verdict v;
    v.refuse = ruling.refuse && !relay_lets_through(window, p);
    for (size_t i = 0; i < c.statements.size(); ++i) {
        const db::Statement& st = c.statements[i];
        Decision d = decide_relayed(r, st, i, ruling, window, p);
        ActionResult res = carry_out("db", s, relayed_facts(r, st, i, ruling, p), d,
                                     {{"decision_latency_ns", boottime_ns() - now}});
        if (!res.message.empty()) v.message = res.message;
    }
    if (v.refuse && v.message.empty())
        v.message = "killswitch: refused (rule " + ruling.rule + ").\n";
    return v;
}

void Daemon::relay_closed(const relay::Origin& o, const std::string& why) {
    json rec = own_record("db_relay_closed");
    rec["pid"] = o.pid;
    rec["comm"] = comm_of(o.pid);
    rec["session"] = o.session_id ? json(session_name(o.session_id)) : json(nullptr);
    rec["db"] = db_kind_name(o.kind);
    rec["address"] = o.address;
    rec["connection"] = o.connection;
    rec["reason"] = why;
    audit_->append(std::move(rec));
    spdlog::warn("database relay: connection of pid {} to {} closed: {}", o.pid, o.address, why);
}

}  // namespace ks::daemon_detail
