#include "db_guard/db_relay_decide.h"

#include <killswitch/abi/events.h>

#include <algorithm>

#include "abi/decode.h"
#include "db_guard/db_guard_decide.h"
#include "db_guard/db_wire_decide.h"

namespace ks {

namespace {

bool monitoring(const policy::Policy& p) {
    return p.mode == policy::Mode::Monitor || p.db_mode == policy::Mode::Monitor;
}

std::string told_by_hold(uint32_t kind) {
    return kind == KS_DB_POSTGRES
               ? "the client, in a PostgreSQL NoticeResponse, while it waits"
               : "nobody until a person decides: the client waits for its answer";
}

}  // namespace

db::Classification classify_relayed(const RelayedRequest& r, const db::Options& options) {
    switch (r.kind) {
        case KS_DB_POSTGRES:
            return db::classify_postgres_sql(r.text, options);
        case KS_DB_MYSQL:
            return db::classify_mysql_sql(r.text, options);
        case KS_DB_REDIS:
            return db::classify_redis(std::span<const uint8_t>(
                reinterpret_cast<const uint8_t*>(r.text.data()), r.text.size()));
        case KS_DB_MONGODB:
            return db::classify_mongodb(std::span<const uint8_t>(
                reinterpret_cast<const uint8_t*>(r.text.data()), r.text.size()));
        default:
            return {};
    }
}

std::string relay_told_by(uint32_t kind) {
    switch (kind) {
        case KS_DB_POSTGRES:
            return "the client, in a PostgreSQL ErrorResponse (42501)";
        case KS_DB_MYSQL:
            return "the client, in a MySQL ERR packet (1227)";
        case KS_DB_REDIS:
            return "the client, in a Redis -ERR reply";
        case KS_DB_MONGODB:
            return "the client, in a MongoDB error reply (code 13, Unauthorized)";
        default:
            return "the client, in the protocol's error";
    }
}

bool relay_passes_unasked(const RelayedRequest& r) {
    db::Classification c = classify_relayed(r, {});
    return c.verdict() == db::Class::Harmless && db::volume_of(c, r.kind == KS_DB_REDIS).empty();
}

std::vector<std::string> rows_to_check(const RelayedRequest& r, const db::Classification& c,
                                       const policy::CompiledPolicy& policy) {
    if (r.kind != KS_DB_POSTGRES || r.type != 'Q' || !policy.policy.db_check_rows) return {};
    std::vector<std::string> tables;
    for (const auto& st : c.statements) {
        // Only drops in the request: a statement before one (SET search_path,
        // CREATE, INSERT...) could make the table it names another than the
        // one the server is asked about, or give it rows.
        if (st.tables.empty()) return {};
        for (const auto& t : st.tables)
            if (std::find(tables.begin(), tables.end(), t) == tables.end()) tables.push_back(t);
    }
    return tables;
}

void apply_row_checks(db::Classification& c, const std::vector<relay::RowCheck>& checks) {
    using Outcome = relay::RowCheck::Outcome;
    for (auto& st : c.statements) {
        if (st.tables.empty()) continue;
        bool nothing = true;
        std::string said;
        for (const auto& t : st.tables) {
            auto it = std::find_if(checks.begin(), checks.end(),
                                   [&](const relay::RowCheck& k) { return k.table == t; });
            Outcome o = it == checks.end() ? Outcome::Failed : it->outcome;
            if (o == Outcome::Empty || o == Outcome::Missing) continue;
            nothing = false;
            if (o == Outcome::Rows)
                said += "; the server says " + t + " has rows";
            else
                said += "; could not ask the server whether " + t + " has rows" +
                        (it != checks.end() && !it->detail.empty() ? ": " + it->detail : "");
        }
        if (nothing) {
            st.cls = db::Class::SchemaChange;
            st.detail +=
                " of a table with no rows (the server said so, in the client's "
                "transaction)";
        } else {
            st.detail += said;
        }
    }
}

nlohmann::json row_checks_json(const std::vector<relay::RowCheck>& checks) {
    static const char* const kNames[] = {"rows", "empty", "missing", "unknown"};
    nlohmann::json out = nlohmann::json::array();
    for (const auto& k : checks) {
        nlohmann::json j = {{"table", k.table}, {"rows", kNames[static_cast<int>(k.outcome)]}};
        if (!k.detail.empty()) j["detail"] = k.detail;
        out.push_back(std::move(j));
    }
    return out;
}

RelayRuling rule_relayed(const db::Classification& c, const std::string& over_volume,
                         const policy::CompiledPolicy& policy) {
    const db::Statement* st = db_refused_statement(c, policy);
    if (st && (st->cls != db::Class::Unparseable || policy.policy.db_refuse_unparseable))
        return {true, static_cast<size_t>(st - c.statements.data()),
                "db:" + std::string(db::class_name(st->cls)), st->detail};
    if (!over_volume.empty()) return {true, 0, "db:volume", over_volume};
    return {};
}

bool relay_lets_through(bool window, const policy::Policy& p) {
    return window || monitoring(p) || p.db_action == Action::Audit;
}

Decision decide_relayed(const RelayedRequest& r, const db::Statement& st, size_t index,
                        const RelayRuling& ruling, bool window, const policy::Policy& p) {
    Decision d;
    d.what = st.text.empty() ? std::string("a ") + db_kind_name(r.kind) + " request"
                             : printable(st.text, 200);
    bool culprit = ruling.refuse && index == ruling.culprit;
    d.rule = culprit ? ruling.rule : "db:" + std::string(db::class_name(st.cls));
    d.reason = culprit ? ruling.reason : st.detail;
    if (!ruling.refuse) {
        // A destructive class the policy leaves out of databases.refuse.
        d.verdict = db::is_destructive(st.cls) ? Verdict::WouldRefuse : Verdict::Allow;
        return d;
    }
    d.action = p.db_action;
    if (monitoring(p)) {
        d.verdict = Verdict::WouldRefuse;
        d.monitor = true;
    } else if (window) {
        d.verdict = Verdict::Allowed;
        d.window = true;
    } else if (p.db_action == Action::Audit) {
        d.verdict = Verdict::WouldRefuse;
    } else if (p.db_action == Action::Hold) {
        // Kept, unread, until a person approves (it goes on) or denies (it
        // is refused in the protocol's error); nothing reached the server.
        d.prevented = true;
        d.quiet = !culprit;
        d.verdict = Verdict::Hold;
        if (culprit) {
            d.hold = HoldSpec{"relay", "request", d.what, "", ruling.rule};
            d.told_by = told_by_hold(r.kind);
        }
    } else {
        // Refused before the server saw it; one message for the request,
        // with the statement it is about.
        d.prevented = true;
        d.quiet = !culprit;
        d.verdict = p.db_action == Action::Block ? Verdict::Refused : verdict_for(p.db_action);
        if (culprit) {
            db_session_part(d, p);
            d.told_by = relay_told_by(r.kind);
        }
    }
    return d;
}

nlohmann::json relayed_facts(const RelayedRequest& r, const db::Statement& st, size_t index,
                             const RelayRuling& ruling, const policy::Policy& p) {
    nlohmann::json f;
    f["db"] = db_kind_name(r.kind);
    f["address"] = r.address;
    f["connection"] = r.connection;
    f["op"] = "request";
    f["statement"] = printable(st.text, static_cast<size_t>(p.db_statement_max));
    f["class"] = db::class_name(st.cls);
    if (!st.detail.empty()) f["detail"] = st.detail;
    f["layer"] = "relay";
    if (r.unix_socket) f["unix_socket"] = true;
    if (ruling.refuse && index != ruling.culprit)
        f["refused_with"] = "a statement sent in the same request";
    return f;
}

}  // namespace ks
