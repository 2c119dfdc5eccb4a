// Database protection in the daemon: loading the socket-path programs, and
// the records of what guarded processes sent to watched databases.
#include "actions/sock_destroy.h"
#include "daemon/daemon_impl.h"

namespace ks::daemon_detail {

void Daemon::start_db_protection() {
    db_client_probes_ = policy_.db_client_probes && opts_.db_client_probes;
    // The endpoints and the configuration come with the policy (publish_state).
    auto dw = DbWireBpf::load(bpf_->skeleton_object(), cgroup2_, {}, DbWireConfig{});
    if (!dw) {
        // Without the socket path the rest still protects: start, and say so
        // everywhere (log, status, the daemon_start record) rather than leave
        // the host with no protection at all.
        db_wire_error_ = dw.error().str();
        spdlog::error("database socket path unavailable on this kernel: {}; database requests "
                      "of guarded processes are NOT judged (libpq uprobes still are)",
                      db_wire_error_);
        return;
    }
    dwbpf_ = std::move(dw.value());
}

namespace {

// The statements in a request's text, as the full parser sees them.
db::Classification classify_request(const DbWireEvent& ev) {
    std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(ev.text.data()),
                                   ev.text.size());
    switch (ev.kind) {
        case KS_DB_POSTGRES: {
            std::string_view sql(ev.text);
            if (ev.msg_type == 'P') {
                // statement name, NUL, query, NUL, parameter types
                auto nul = sql.find('\0');
                sql = nul == std::string_view::npos ? std::string_view() : sql.substr(nul + 1);
            }
            if (auto nul = sql.find('\0'); nul != std::string_view::npos) sql = sql.substr(0, nul);
            return db::classify_postgres_sql(sql);
        }
        case KS_DB_MYSQL:
            return db::classify_mysql_sql(ev.text);
        case KS_DB_REDIS:
            return db::classify_redis(bytes);
        case KS_DB_MONGODB:
            return db::classify_mongodb(bytes);
        default:
            return {};
    }
}

std::string printable(std::string_view s, size_t max) {
    std::string out;
    for (char c : s.substr(0, max)) {
        auto u = static_cast<unsigned char>(c);
        if (u == '\r' || u == '\n' || u == '\t' || (u >= 32 && u != 127) || u >= 128)
            out += c;
        else
            out += fmt::format("\\x{:02x}", u);
    }
    if (s.size() > max) out += "...";
    return out;
}

}  // namespace

void Daemon::on_db_wire(const DbWireEvent& ev) {
    const auto& h = ev.hdr;
    if (ev.layer == KS_LAYER_CONNECT) {
        on_db_unix_connect(ev);
        return;
    }
    bool refused = ev.verdict == KS_DBV_REFUSE;
    bool kernel_objects = ev.reason != KS_DBR_NONE;
    db::Classification c;
    if (!ev.text.empty()) c = classify_request(ev);
    if (c.statements.empty())
        c.statements.push_back({ev.kind == KS_DB_MONGODB || ev.kind == KS_DB_REDIS
                                    ? std::string()
                                    : ev.text,
                                kernel_objects ? db::Class::Unparseable : db::Class::Harmless,
                                kernel_objects ? db_reason_text(ev.reason) : ""});
    bool binary = ev.kind == KS_DB_MONGODB;
    std::string address = ev.endpoint_id < db_endpoints_.size()
                              ? db_endpoints_[ev.endpoint_id].address
                              : std::string();
    // The statement the refusal is about: the first the parser objects to.
    size_t culprit = 0;
    for (size_t i = 0; i < c.statements.size(); ++i)
        if (c.statements[i].cls != db::Class::Harmless) {
            culprit = i;
            break;
        }
    for (size_t i = 0; i < c.statements.size(); ++i) {
        const auto& st = c.statements[i];
        json rec = process_record("db", h);
        rec["db"] = db_kind_name(ev.kind);
        rec["address"] = address;
        rec["connection"] = ev.cookie;
        rec["op"] = "request";
        std::string text = binary ? std::string() : st.text;
        rec["statement"] = printable(text, static_cast<size_t>(policy_.db_statement_max));
        if (binary) rec["request_bytes"] = ev.msg_len;
        rec["class"] = db::class_name(st.cls);
        if (!st.detail.empty()) rec["detail"] = st.detail;
        rec["kernel_reason"] = db_reason_name(ev.reason);
        if (kernel_objects) rec["reason"] = db_reason_text(ev.reason);
        rec["rule"] = "db:" + std::string(kernel_objects ? db_reason_name(ev.reason)
                                                         : db::class_name(st.cls));
        rec["layer"] = layer_name(ev.layer);
        // The kernel decides for the whole request: a harmless statement sent
        // together with a destructive one is refused with it.
        if (refused) {
            rec["verdict"] = "refused";
            rec["prevented"] = true;
        } else if (ev.verdict == KS_DBV_WOULD_REFUSE) {
            rec["verdict"] = "would-refuse";
            rec["prevented"] = false;
        } else if (ev.verdict == KS_DBV_WINDOW) {
            rec["verdict"] = "allowed";
            rec["prevented"] = false;
            rec["window"] = window_of(h.session_id);
        } else {
            rec["verdict"] = "allowed";
            rec["prevented"] = false;
        }
        if (!kernel_objects && (db::is_destructive(st.cls) || st.cls == db::Class::Unparseable)) {
            // The kernel's tokenizer let through what the parser objects to:
            // it was sent. Say so loudly; the test corpus exists to keep this
            // from happening.
            rec["disagreement"] = "the kernel passed a statement the parser classifies as " +
                                  std::string(db::class_name(st.cls));
            spdlog::warn("db: kernel passed {} statement from pid {}: {}",
                         db::class_name(st.cls), h.pid, printable(st.text, 200));
        }
        if (refused && i == culprit) {
            // The client would otherwise wait for an answer that never comes
            // (libpq keeps reading after a failed send): close the connection.
            TcpEndpoints conn{ev.family,     ev.local_addr,  ev.remote_addr,
                              ev.local_port, ev.remote_port, ev.cookie};
            if (auto st = destroy_tcp_socket(conn); !st)
                rec["connection_close_error"] = st.error().str();
            else
                rec["connection_closed"] = true;
            apply_db_action(h, rec);
        } else if (refused) {
            rec["refused_with"] = "a statement sent in the same request";
        }
        audit_->append(std::move(rec));
    }
}

// A guarded process tried to connect to a watched unix socket (and was not
// inside libpq, whose statements the uprobes read).
void Daemon::on_db_unix_connect(const DbWireEvent& ev) {
    json rec = process_record("db", ev.hdr);
    rec["db"] = db_kind_name(ev.kind);
    rec["address"] = ev.endpoint_id < db_endpoints_.size() ? db_endpoints_[ev.endpoint_id].address
                                                           : std::string();
    rec["op"] = "connect";
    rec["socket"] = printable(ev.text, 108);
    rec["statement"] = "";
    rec["class"] = db::class_name(db::Class::Unparseable);
    rec["kernel_reason"] = db_reason_name(ev.reason);
    rec["reason"] = db_reason_text(ev.reason);
    rec["rule"] = "db:" + std::string(db_reason_name(ev.reason));
    rec["layer"] = layer_name(ev.layer);
    bool refused = ev.verdict == KS_DBV_REFUSE;
    rec["verdict"] = refused ? "refused" : ev.verdict == KS_DBV_WINDOW ? "allowed" : "would-refuse";
    rec["prevented"] = refused;
    if (ev.verdict == KS_DBV_WINDOW) rec["window"] = window_of(ev.hdr.session_id);
    audit_->append(std::move(rec));
}

void Daemon::apply_db_action(const EventHeader& h, json& rec) {
    rec["action"] = policy::action_name(policy_.db_action);
    const Session* s = sessions_->find(h.session_id);
    switch (policy_.db_action) {
        case policy::Action::Audit:
        case policy::Action::Block:
        case policy::Action::Hold:
            break;
        case policy::Action::Kill:
            ::kill(static_cast<pid_t>(h.pid), SIGKILL);
            break;
        case policy::Action::Freeze:
            if (s) {
                if (auto st = cgroup_freeze(s->cgroup_path, true); st)
                    rec["session_frozen_latency_ns"] = boottime_ns() - h.ts_boot_ns;
                else
                    rec["session_action_error"] = st.error().str();
            }
            return;
        case policy::Action::KillSession:
            if (s)
                if (auto st = cgroup_kill(s->cgroup_path); !st)
                    rec["session_action_error"] = st.error().str();
            return;
    }
    if (!s || policy_.db_session_action == policy::SessionAction::None) return;
    if (policy_.db_session_action == policy::SessionAction::Freeze) {
        rec["session_action"] = "freeze";
        if (auto st = cgroup_freeze(s->cgroup_path, true); st)
            rec["session_frozen_latency_ns"] = boottime_ns() - h.ts_boot_ns;
        else
            rec["session_action_error"] = st.error().str();
    } else {
        rec["session_action"] = "kill-session";
        if (auto st = cgroup_kill(s->cgroup_path); !st) rec["session_action_error"] = st.error().str();
    }
}

}  // namespace ks::daemon_detail
