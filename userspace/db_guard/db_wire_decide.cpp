#include "db_guard/db_wire_decide.h"

#include <fmt/format.h>

#include "db_guard/db_guard_decide.h"

namespace ks {

namespace {

db::Classification parse_request(const DbWireEvent& ev, const db::Options& options) {
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
            return db::classify_postgres_sql(sql, options);
        }
        case KS_DB_MYSQL:
            return db::classify_mysql_sql(ev.text, options);
        case KS_DB_REDIS:
            return db::classify_redis(bytes);
        case KS_DB_MONGODB:
            return db::classify_mongodb(bytes);
        default:
            return {};
    }
}

bool kernel_objects(const DbWireEvent& ev) { return ev.reason != KS_DBR_NONE; }

std::string endpoint_address(const DbWireEvent& ev, const policy::CompiledPolicy& policy) {
    return ev.endpoint_id < policy.db_endpoints.size() ? policy.db_endpoints[ev.endpoint_id].address
                                                       : std::string();
}

}  // namespace

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

db::Classification classify_db_request(const DbWireEvent& ev, const db::Options& options) {
    db::Classification c;
    if (!ev.text.empty()) c = parse_request(ev, options);
    if (c.statements.empty())
        c.statements.push_back(
            {ev.kind == KS_DB_MONGODB || ev.kind == KS_DB_REDIS ? std::string() : ev.text,
             kernel_objects(ev) ? db::Class::Unparseable : db::Class::Harmless,
             kernel_objects(ev) ? db_reason_text(ev.reason) : ""});
    return c;
}

size_t db_culprit(const db::Classification& c, const policy::CompiledPolicy& policy) {
    if (const db::Statement* st = db_refused_statement(c, policy))
        return static_cast<size_t>(st - c.statements.data());
    for (size_t i = 0; i < c.statements.size(); ++i)
        if (c.statements[i].cls != db::Class::Harmless) return i;
    return 0;
}

Decision decide_db_request(const DbWireEvent& ev, const db::Statement& st, bool culprit,
                           const policy::CompiledPolicy& policy) {
    Decision d;
    bool objects = kernel_objects(ev);
    d.what = ev.kind == KS_DB_MONGODB ? std::string("a MongoDB request")
             : st.text.empty()        ? std::string("a ") + db_kind_name(ev.kind) + " request"
                                      : printable(st.text, 200);
    d.rule = "db:" + std::string(objects ? db_reason_name(ev.reason) : db::class_name(st.cls));
    if (objects) d.reason = db_reason_text(ev.reason);
    // The kernel decides for the whole request: a harmless statement sent
    // together with a destructive one is refused with it.
    switch (ev.verdict) {
        case KS_DBV_REFUSE:
            d.verdict = Verdict::Refused;
            d.prevented = true;
            break;
        case KS_DBV_WOULD_REFUSE:
            d.verdict = Verdict::WouldRefuse;
            d.monitor = true;
            break;
        case KS_DBV_WINDOW:
            d.verdict = Verdict::Allowed;
            d.window = true;
            break;
        default:
            d.verdict = Verdict::Allowed;
    }
    // One message for the whole request: the statement it is about.
    d.quiet = !culprit;
    if (ev.verdict == KS_DBV_REFUSE && culprit) {
        // The client would otherwise wait for an answer that never comes
        // (libpq keeps reading after a failed send): close the connection.
        d.close_connection = TcpEndpoints{ev.family,     ev.local_addr,  ev.remote_addr,
                                          ev.local_port, ev.remote_port, ev.cookie};
        d.action = policy.policy.db_action;
        db_session_part(d, policy.policy);
    }
    return d;
}

std::string deputy_service(const std::string& path) {
    if (path.find("systemd") != std::string::npos) return "systemd";
    if (path.find("dbus") != std::string::npos || path.ends_with("/bus")) return "D-Bus";
    if (path.find("docker") != std::string::npos) return "Docker";
    if (path.find("containerd") != std::string::npos) return "containerd";
    if (path.find("podman") != std::string::npos) return "Podman";
    if (path.find("crio") != std::string::npos) return "CRI-O";
    if (path.find("/tmux-") != std::string::npos) return "a tmux server";
    if (path.find("/screen/") != std::string::npos) return "a screen session";
    return "a service";
}

Decision decide_db_unix_connect(const DbWireEvent& ev) {
    Decision d;
    std::string path = printable(ev.text, 108);
    if (ev.kind == KS_DB_DEPUTY) {
        d.rule = "process:deputy";
        d.reason = "a connection to " + deputy_service(path) + " (" + path +
                   "), a service outside the session that acts for whoever asks: what it ran "
                   "would not be guarded (policy processes.deputies, processes.multiplexers)";
    } else {
        d.rule = "db:" + std::string(db_reason_name(ev.reason));
        d.reason = db_reason_text(ev.reason);
    }
    d.what = "connect to " + path;
    d.prevented = ev.verdict == KS_DBV_REFUSE;
    if (ev.verdict == KS_DBV_REFUSE) {
        d.verdict = Verdict::Refused;
    } else if (ev.verdict == KS_DBV_WINDOW) {
        d.verdict = Verdict::Allowed;
        d.window = true;
    } else {
        d.verdict = Verdict::WouldRefuse;
        d.monitor = true;
    }
    return d;
}

std::string db_disagreement(const DbWireEvent& ev, const db::Statement& st,
                            const policy::CompiledPolicy& policy) {
    uint32_t refuse = policy.db_wire.refuse_classes;
    bool kernel = ev.reason >= KS_DBR_FIRST_UNPARSEABLE ||
                  (ev.reason != KS_DBR_NONE && (refuse & KS_DB_CLASS_BIT(ev.reason)));
    bool parser = (refuse & db::class_bit(st.cls)) || st.cls == db::Class::Unparseable;
    if (kernel || !parser) return "";
    return "the kernel passed a statement the parser classifies as " +
           std::string(db::class_name(st.cls));
}

nlohmann::json db_request_facts(const DbWireEvent& ev, const db::Statement& st, bool culprit,
                                const policy::CompiledPolicy& policy) {
    bool binary = ev.kind == KS_DB_MONGODB;
    nlohmann::json f;
    f["db"] = db_kind_name(ev.kind);
    f["address"] = endpoint_address(ev, policy);
    f["connection"] = ev.cookie;
    f["op"] = "request";
    f["statement"] = printable(binary ? std::string() : st.text,
                               static_cast<size_t>(policy.policy.db_statement_max));
    if (binary) f["request_bytes"] = ev.msg_len;
    f["class"] = db::class_name(st.cls);
    if (!st.detail.empty()) f["detail"] = st.detail;
    f["kernel_reason"] = db_reason_name(ev.reason);
    f["layer"] = layer_name(ev.layer);
    if (auto why = db_disagreement(ev, st, policy); !why.empty()) f["disagreement"] = why;
    if (ev.verdict == KS_DBV_REFUSE && !culprit)
        f["refused_with"] = "a statement sent in the same request";
    return f;
}

nlohmann::json db_unix_connect_facts(const DbWireEvent& ev, const policy::CompiledPolicy& policy) {
    nlohmann::json f;
    if (ev.kind == KS_DB_DEPUTY) {
        std::string path = printable(ev.text, 108);
        f["what"] = "deputy";
        f["socket"] = path;
        f["service"] = deputy_service(path);
        f["layer"] = layer_name(ev.layer);
        return f;
    }
    f["db"] = db_kind_name(ev.kind);
    f["address"] = endpoint_address(ev, policy);
    f["op"] = "connect";
    f["socket"] = printable(ev.text, 108);
    f["statement"] = "";
    f["class"] = db::class_name(db::Class::Unparseable);
    f["kernel_reason"] = db_reason_name(ev.reason);
    f["layer"] = layer_name(ev.layer);
    return f;
}

}  // namespace ks
