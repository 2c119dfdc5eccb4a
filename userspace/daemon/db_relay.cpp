// The database relay in the daemon: started with the socket-path layer, and
// the judge of the requests its thread does not pass by itself
// (relay_passes_unasked): decode (the relay's framing) -> enrich (Subject of
// the connecting process) -> classify_relayed / rule_relayed /
// decide_relayed -> carry_out -> the client reads the refusal in its
// protocol's error.
#include "daemon/daemon_impl.h"
#include "db_guard/db_guard_decide.h"
#include "db_guard/db_relay_decide.h"

namespace ks::daemon_detail {

void Daemon::start_relay() {
    if (!dwbpf_ || !policy().db_relay) return;
    relay::Hooks hooks;
    hooks.passes = [](const relay::Origin& o, const relay::Request& r,
                      const relay::UniqueKeys& known, bool& forget) {
        return relay_passes_unasked(
            {o.kind, "", 0, o.unix_socket, r.type, r.text, r.bound, r.params, r.unread}, known,
            forget);
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
    relay_->set_poll(static_cast<uint64_t>(policy().db_relay_poll_us) * 1000);
    if (dwbpf_->unix_watched() != relay_unix_) {
        std::vector<relay::UnixEndpoint> eps;
        for (const auto& u : dwbpf_->unix_watched())
            if (u.kind != KS_DB_DEPUTY) eps.push_back({u.path, u.kind, u.endpoint_id});
        if (auto st = relay_->set_unix_endpoints(eps); !st)
            spdlog::error("database relay: {}", st.error().str());
        relay_unix_ = dwbpf_->unix_watched();
    }
    if (auto st = dwbpf_->set_relay(relay_->port4(), relay_->port6(),
                                    relay_->has_unix() && dwbpf_->unix_rule());
        !st)
        spdlog::error("database relay: {}", st.error().str());
}

void Daemon::service_relay() {
    std::vector<relay::Question> questions;
    std::vector<relay::Closing> closings;
    relay_->take(questions, closings);
    for (auto& q : questions)
        relay_->answer(q.conn, judge_relayed(q.conn, std::move(q.origin),
                                             {q.type, q.text, q.bound, q.params, q.unread},
                                             q.checks, q.probe, q.known, q.asked_boot_ns));
    for (const auto& c : closings) relay_closed(c.origin, c.why);
}

relay::Verdict Daemon::judge_relayed(uint64_t conn, relay::Origin o, const relay::Request& req,
                                     const std::vector<relay::RowCheck>& checks,
                                     const std::optional<relay::ProbeAnswer>& probe,
                                     const relay::UniqueKeys& known, uint64_t asked_boot_ns) {
    const policy::Policy& p = policy();
    if (o.unix_socket && !o.session_id) {
        // The kernel does not say for unix sockets: the process table does.
        const ProcessInfo* pi = table_.find(o.pid);
        o.session_id = pi ? pi->session_id : 0;
    }
    RelayedRequest r{o.kind,   o.address, o.connection, o.unix_socket, req.type,
                     req.text, req.bound, req.params,   req.unread};
    db::Classification c = classify_relayed(r, classify_options(state_.compiled));
    if (c.statements.empty()) return {};
    if (!checks.empty()) apply_row_checks(c, checks);
    // Unique keys learned by the connection's earlier probes: an UPDATE ...
    // WHERE id = 5 needs none.
    drop_pinned(c, known);
    relay::UniqueKeys learned;
    if (probe) {
        if (int next = apply_effect_probe(c, *probe, p, &learned)) {
            // Under the limits: asked again whether the tables have
            // statistics, or after ANALYZE of a table without.
            EffectProbe e = effect_probe(r, c, p, next);
            if (!e.sql.empty())
                return {.later = true,
                        .probe = std::move(e.sql),
                        .probe_round = next,
                        .learned = std::move(learned)};
        }
    } else if (checks.empty() && !rule_relayed(c, "", state_.compiled).refuse) {
        // A DELETE or UPDATE that may reach every row: the server is asked
        // first, on the client's connection, and the request judged again.
        EffectProbe e = effect_probe(r, c, p);
        if (!e.sql.empty()) return {.later = true, .probe = std::move(e.sql), .probe_round = 1};
        if (!e.cannot.empty()) effect_unknown(c, e.cannot);
    }
    uint64_t now = boottime_ns();
    db::VolumeLimits limits{static_cast<uint64_t>(p.db_volume_keys),
                            static_cast<uint64_t>(p.db_volume_deletes),
                            static_cast<uint64_t>(p.db_volume_within_s) * 1'000'000'000ull};
    RelayRuling ruling = rule_relayed(c, "", state_.compiled);
    if (!ruling.refuse) {
        std::string over = volume_.charge(o.session_id, relayed_volume(r, c), now, limits);
        if (!over.empty()) {
            ruling = rule_relayed(c, over, state_.compiled);
        } else if (c.verdict() == db::Class::Harmless) {
            // Most requests: nothing to refuse and nothing to record (the
            // relay counts them).
            return {.learned = std::move(learned)};
        }
    }
    auto w = windows_.find(o.session_id);
    bool window = w != windows_.end() && w->second.open && w->second.until_boot_ns > now;
    if (ruling.refuse && checks.empty() && !relay_lets_through(window, p)) {
        // An empty table loses nothing: the server is asked first, on the
        // client's connection, and the request judged again.
        if (auto tables = rows_to_check(r, c, state_.compiled); !tables.empty())
            return {.later = true, .check_rows = std::move(tables)};
    }

    Subject s = subject_of_pid(o.pid, o.session_id, now);
    relay::Verdict v;
    v.learned = std::move(learned);
    v.refuse = ruling.refuse && !relay_lets_through(window, p);
    for (size_t i = 0; i < c.statements.size(); ++i) {
        const db::Statement& st = c.statements[i];
        Decision d = decide_relayed(r, st, i, ruling, window, p);
        json facts = relayed_facts(r, st, i, ruling, p);
        if (!st.tables.empty() && !checks.empty()) facts["rows_checked"] = row_checks_json(checks);
        if (!st.reached.empty()) facts["reached"] = reached_json(st);
        ActionResult res =
            // From the relay's question (the request read, waiting unread
            // behind it) to this verdict.
            carry_out("db", s, facts, d, {{"decision_latency_ns", boottime_ns() - asked_boot_ns}});
        if (!res.message.empty()) v.message = res.message;
        if (res.hold_id) {
            // Kept until a person decides (resolve_relay_hold); the client
            // is told it waits where its protocol can say so.
            relay_holds_[res.hold_id] = RelayHold{conn, o.kind};
            v.refuse = false;
            v.later = true;
        }
    }
    if (v.refuse && v.message.empty())
        v.message = "killswitch: refused (rule " + ruling.rule + ").\n";
    return v;
}

// A person decided on a held request (or nobody did in time): it goes on to
// the server, or the client reads the refusal in its protocol's error.
void Daemon::resolve_relay_hold(const Hold& h, bool approve, const std::string& why) {
    auto it = relay_holds_.find(h.id);
    bool waiting = it != relay_holds_.end() && relay_;
    Subject s = subject_of_pid(h.pid, h.session_id, boottime_ns());
    Decision d;
    d.verdict = approve ? Verdict::Allow : Verdict::Refused;
    d.prevented = !approve;
    d.rule = h.rule;
    d.reason = why;
    d.what = h.path;
    json facts = {{"hold_id", h.id}, {"layer", h.layer}, {"op", h.op}, {"statement", h.path}};
    if (waiting) {
        relay::Verdict v;
        if (!approve) {
            v.refuse = true;
            v.message = "killswitch: refused " + h.path + ": held, then " + why + " (rule " +
                        h.rule + ").\n";
            facts["explained_to"] = relay_told_by(it->second.kind);
        }
        relay_->answer(it->second.conn, std::move(v));
    } else {
        facts["note"] = "the client's connection had ended";
    }
    // Never the process's stderr: the relay answers in the protocol.
    d.told_by = facts.value("explained_to", "nobody: the client's connection had ended");
    if (it != relay_holds_.end()) relay_holds_.erase(it);
    carry_out(approve ? "hold_approved" : "hold_denied", s, facts, d);
}

void Daemon::relay_closed(const relay::Origin& o, const std::string& why) {
    const ProcessInfo* pi = o.session_id ? nullptr : table_.find(o.pid);
    uint32_t session = pi ? pi->session_id : o.session_id;
    json rec = own_record("db_relay_closed");
    rec["pid"] = o.pid;
    rec["comm"] = comm_of(o.pid);
    rec["session"] = session ? json(session_name(session)) : json(nullptr);
    rec["db"] = db_kind_name(o.kind);
    rec["address"] = o.address;
    rec["connection"] = o.connection;
    rec["reason"] = why;
    audit_->append(std::move(rec));
    spdlog::warn("database relay: connection of pid {} to {} closed: {}", o.pid, o.address, why);
}

}  // namespace ks::daemon_detail
