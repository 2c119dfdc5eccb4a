#include "db_guard/db_relay_decide.h"

#include <killswitch/abi/events.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include "abi/decode.h"
#include "db_guard/db_guard_decide.h"
#include "db_guard/db_wire_decide.h"

namespace ks {

namespace {

constexpr uint8_t kMysqlComQuery = 0x03;
constexpr uint8_t kMysqlComStmtPrepare = 0x16;
constexpr uint8_t kMysqlComStmtExecute = 0x17;

bool monitoring(const policy::Policy& p) {
    return p.mode == policy::Mode::Monitor || p.db_mode == policy::Mode::Monitor;
}

std::string told_by_hold(uint32_t kind) {
    return kind == KS_DB_POSTGRES
               ? "the client, in a PostgreSQL NoticeResponse, while it waits"
               : "nobody until a person decides: the client waits for its answer";
}

}  // namespace

bool RelayedRequest::waits_for_binds() const {
    return kind == KS_DB_POSTGRES && type == 'P' && !bound;
}

db::Classification classify_relayed(const RelayedRequest& r, const db::Options& options) {
    switch (r.kind) {
        case KS_DB_POSTGRES: {
            auto c = db::classify_postgres_sql(r.text, options);
            // What a Parse's statement reaches is asked at each of its Binds.
            if (r.waits_for_binds())
                for (auto& st : c.statements) st.reaches.clear();
            return c;
        }
        case KS_DB_MYSQL: {
            // An execute of a prepared statement: with its values in place
            // of its ? marks, it reads as the statement the server runs.
            if (r.type == kMysqlComStmtExecute && r.bound) {
                std::vector<std::string> literals;
                for (const auto& v : r.params) literals.push_back(v.value_or("NULL"));
                if (auto text = db::bind_mysql_params(r.text, literals))
                    return db::classify_mysql_sql(*text, options);
            }
            auto c = db::classify_mysql_sql(r.text, options);
            // A prepared statement's WHERE holds placeholders: what it
            // reaches is asked at each execute, with its values (one whose
            // values cannot be read cannot be asked: effect_probe).
            if (r.type == kMysqlComStmtPrepare)
                for (auto& st : c.statements) st.reaches.clear();
            return c;
        }
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

db::Volume relayed_volume(const RelayedRequest& r, const db::Classification& c) {
    // A Parse without its Bind deletes nothing yet: its Binds count.
    if (r.waits_for_binds()) return {};
    return db::volume_of(c, r.kind == KS_DB_REDIS);
}

namespace {

// A statement of c has rows to ask the server about.
bool reaches_any(const db::Classification& c) {
    return std::any_of(c.statements.begin(), c.statements.end(),
                       [](const db::Statement& st) { return !st.reaches.empty(); });
}

}  // namespace

bool relay_passes_unasked(const RelayedRequest& r, const UniqueKeys& known, bool& forget) {
    db::Classification c = classify_relayed(r, {});
    forget = (r.kind == KS_DB_POSTGRES && !keeps_unique_keys(c)) ||
             (r.kind == KS_DB_MYSQL && !keeps_mysql_keys(c));
    if (c.verdict() != db::Class::Harmless || !relayed_volume(r, c).empty()) return false;
    // A request that changes what names mean (SET search_path; DELETE ...)
    // is pinned by nothing learned before it.
    if (!forget) drop_pinned(c, known);
    return !reaches_any(c);
}

namespace {

// What each statement of an effect probe is for.
struct ProbePart {
    enum Role { Pass, Analyze, Explain, Name, Total } role = Pass;
    std::string sql;
    size_t statement = 0, target = 0;
};

std::string sql_literal(const std::string& s) {
    std::string out = "'";
    for (char ch : s) out += ch == '\'' ? std::string("''") : std::string(1, ch);
    return out + "'";
}

// A statement that creates a function, procedure or rule: its targets are
// its body's DELETEs and UPDATEs (Statement::Target::body_of).
bool creates_body(const db::Statement& st) {
    return !st.reaches.empty() && !st.reaches[0].body_of.empty();
}

// The targets one EXPLAIN answers, [first, end): all of a statement's own;
// of a body, each statement's (a writable CTE's several), or one target
// that cannot be asked.
std::vector<std::pair<size_t, size_t>> plan_units(const db::Statement& st) {
    if (!creates_body(st)) return {{0, st.reaches.size()}};
    std::vector<std::pair<size_t, size_t>> out;
    for (size_t j = 0; j < st.reaches.size(); ++j) {
        const auto& t = st.reaches[j];
        if (j > 0 && t.unaskable.empty() && st.reaches[j - 1].unaskable.empty() &&
            st.reaches[j - 1].body == t.body)
            out.back().second = j + 1;
        else
            out.emplace_back(j, j + 1);
    }
    return out;
}

// What a statement's reach is said of: the statement, or a body's one.
std::string reach_subject(const db::Statement& st, size_t target = 0) {
    if (!creates_body(st)) return db::first_word(st.text);
    const auto& t = st.reaches[target];
    std::string what = t.body.empty() ? std::string("a DELETE or UPDATE") : db::first_word(t.body);
    return t.body_of + " whose body runs " + what + " of " + t.table;
}

// The probe's statements, or why there can be none.
std::vector<ProbePart> probe_parts(const db::Classification& c, int round, std::string& cannot) {
    std::vector<ProbePart> parts;
    size_t last = c.statements.size();
    for (size_t i = 0; i < c.statements.size(); ++i)
        if (!c.statements[i].reaches.empty()) last = i;
    if (last == c.statements.size()) return {};
    for (size_t i = 0; i <= last; ++i) {
        const db::Statement& st = c.statements[i];
        if (st.reaches.empty()) {
            if (st.tx == db::Statement::Tx::Begin) continue;  // the probe is in a block
            if (st.tx == db::Statement::Tx::Other) {
                cannot =
                    "it follows a statement that ends a transaction or changes a savepoint in "
                    "the same request, which a rolled-back probe cannot stand for";
                return {};
            }
            parts.push_back({ProbePart::Pass, st.text, i, 0});
            continue;
        }
        std::string w = db::first_word(st.text);
        bool body = creates_body(st);
        if (!body && (w == "EXPLAIN" || w == "PREPARE")) {
            cannot = w + " holds it: the server cannot be asked what it would reach";
            return {};
        }
        for (size_t j = 0; round >= kProbeAnalyze && j < st.reaches.size(); ++j)
            parts.push_back({ProbePart::Analyze, "ANALYZE " + st.reaches[j].table, i, j});
        // Whether the planner has statistics matters only for a statement
        // under the limits; asking costs a cold connection more than the
        // rest of the probe (the pg_stats view), so a statement that a
        // unique key may pin to one row asks in the first round without it.
        bool pinnable = std::all_of(st.reaches.begin(), st.reaches.end(), [](const auto& t) {
            return !t.eq_columns.empty() || !t.eq_variables.empty();
        });
        std::string statistics =
            round == kProbeFirst && pinnable
                ? std::string("'u'")
                : std::string(
                      "EXISTS (SELECT FROM pg_catalog.pg_stats s WHERE s.schemaname = "
                      "n.nspname AND s.tablename = c.relname)");
        // A body's statements, each as it would run now: nothing of the
        // CREATE runs before them.
        for (const auto& [first, end] : plan_units(st))
            if (st.reaches[first].unaskable.empty())
                parts.push_back(
                    {ProbePart::Explain,
                     "EXPLAIN (VERBOSE, FORMAT JSON) " + (body ? st.reaches[first].body : st.text),
                     i, first});
        for (size_t j = 0; j < st.reaches.size(); ++j) {
            const auto& t = st.reaches[j];
            // A column held equal to a variable pins nothing when the
            // variable's name is a column's: the table's columns, then.
            std::string columns =
                t.eq_variables.empty()
                    ? std::string()
                    : std::string(
                          ", (SELECT json_agg(a.attname) FROM pg_catalog.pg_attribute a WHERE "
                          "a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::text");
            // Its schema and name, its unique keys (not partial, not of
            // expressions; key columns only) as JSON: [["id"], ["a", "b"]],
            // and whether the planner has statistics of it.
            parts.push_back(
                {ProbePart::Name,
                 "SELECT n.nspname, c.relname, coalesce((SELECT json_agg((SELECT "
                 "json_agg(a.attname ORDER BY k.o) FROM unnest(i.indkey::int2[]) WITH "
                 "ORDINALITY k(attnum, o) JOIN pg_catalog.pg_attribute a ON a.attrelid = "
                 "i.indrelid AND a.attnum = k.attnum WHERE k.o <= i.indnkeyatts)) FROM "
                 "pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND "
                 "i.indpred IS NULL AND i.indexprs IS NULL), '[]')::text, " +
                     statistics + columns +
                     " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
                     "c.relnamespace WHERE c.oid = " +
                     sql_literal(t.table) + "::regclass",
                 i, j});
            parts.push_back({ProbePart::Total,
                             "EXPLAIN (FORMAT JSON) SELECT 1 FROM " +
                                 std::string(t.only ? "ONLY " : "") + t.table,
                             i, j});
        }
    }
    return parts;
}

// The rows a plan node of a JSON plan says it returns.
double plan_rows(const nlohmann::json& plan) {
    return plan.contains("Plan Rows") && plan["Plan Rows"].is_number()
               ? plan["Plan Rows"].get<double>()
               : -1;
}

// The top plan of one EXPLAIN (FORMAT JSON) answer.
std::optional<nlohmann::json> top_plan(const relay::ProbeAnswer::Result& r) {
    if (r.rows.empty() || r.rows[0].empty()) return std::nullopt;
    auto j = nlohmann::json::parse(r.rows[0][0], nullptr, false);
    if (j.is_discarded() || !j.is_array() || j.empty() || !j[0].contains("Plan"))
        return std::nullopt;
    return j[0]["Plan"];
}

// Every ModifyTable node of a plan (a writable CTE's too): what it deletes or
// updates, and the rows its input brings it.
void modify_nodes(const nlohmann::json& plan, std::vector<db::Statement::Reach>& out) {
    if (!plan.is_object()) return;
    if (plan.value("Node Type", "") == "ModifyTable") {
        std::string op = db::ascii_upper(plan.value("Operation", ""));
        double rows = -1;
        for (const auto& child : plan.value("Plans", nlohmann::json::array()))
            if (child.value("Parent Relationship", "") == "Outer" || rows < 0)
                rows = plan_rows(child);
        std::string table = plan.value("Schema", "") + "." + plan.value("Relation Name", "");
        if (op == "DELETE" || op == "UPDATE") out.push_back({table, op, std::max(rows, 0.0), -1});
    }
    for (const auto& child : plan.value("Plans", nlohmann::json::array())) modify_nodes(child, out);
}

// SQLSTATEs that the statement itself would meet: the request fails there
// when it runs, whatever it would have reached (class 22 data exception, 23
// integrity constraint violation, 42 syntax error or access rule violation:
// no such table or column, no privilege; 25006 a read-only transaction).
bool fails_alike(const std::string& code) {
    return code.rfind("22", 0) == 0 || code.rfind("23", 0) == 0 || code.rfind("42", 0) == 0 ||
           code == "25006";
}

std::string rows_text(double v) { return std::to_string(static_cast<long long>(v + 0.5)); }

// [["id"], ["a", "b"]] as the probe's query writes it.
std::vector<std::vector<std::string>> unique_keys(const std::string& text) {
    std::vector<std::vector<std::string>> out;
    auto keys = nlohmann::json::parse(text, nullptr, false);
    if (!keys.is_array()) return out;
    for (const auto& key : keys) {
        std::vector<std::string> cols;
        for (const auto& col : key)
            if (col.is_string()) cols.push_back(col.get<std::string>());
        if (!cols.empty() && cols.size() == key.size()) out.push_back(std::move(cols));
    }
    return out;
}

// Every column of key is held equal to a constant.
bool covers(const std::vector<std::string>& eq, const std::vector<std::string>& key) {
    return !key.empty() && std::all_of(key.begin(), key.end(), [&](const std::string& col) {
        return std::find(eq.begin(), eq.end(), col) != eq.end();
    });
}

// A body's target: its variables count as constants (one value per call)
// where the server said no column has their name.
bool pinned_in_body(const db::Statement::Target& t,
                    const std::vector<std::vector<std::string>>& keys,
                    const std::optional<std::vector<std::string>>& columns) {
    std::vector<std::string> eq = t.eq_columns;
    for (const auto& [col, var] : t.eq_variables)
        if (columns && std::find(columns->begin(), columns->end(), var) == columns->end())
            eq.push_back(col);
    return std::any_of(keys.begin(), keys.end(), [&](const auto& key) { return covers(eq, key); });
}

bool pinned(const db::Statement::Target& t, const UniqueKeys& known) {
    auto k = known.find(t.table);
    return k != known.end() &&
           std::any_of(k->second.begin(), k->second.end(),
                       [&](const auto& key) { return covers(t.eq_columns, key); });
}

// The limits of databases.effect: a share of the table's rows (and at
// least min_rows), or max_rows whatever the table.
bool over_limits(const db::Statement::Reach& n, const policy::Policy& p) {
    bool share = n.total > 0 && n.rows >= p.db_effect_min_rows &&
                 n.rows * 100 >= n.total * p.db_effect_percent;
    bool many = p.db_effect_max_rows > 0 && n.rows >= p.db_effect_max_rows;
    return share || many;
}

// MySQL: the probe counts rows up to this many (a count that reaches it
// says "at least": over max_rows by default)...
constexpr long long kMysqlCountCap = 1000000;
// ...and a table's rows, when the server's estimate is under this many;
// a larger table is taken at the estimate, which InnoDB keeps row by row
// (counting it would read it whole on every probe).
constexpr long long kMysqlExactTotal = 10000;

std::string mysql_literal(const std::string& s) {
    std::string out = "'";
    for (char ch : s) {
        if (ch == '\\' || ch == '\'') out += ch;
        out += ch;
    }
    return out + "'";
}

std::string mysql_ident(const std::string& s) {
    std::string out = "`";
    for (char ch : s) {
        if (ch == '`') out += ch;
        out += ch;
    }
    return out + "`";
}

// One query, one row, for a MySQL DELETE or UPDATE: the rows its WHERE
// reaches (counted by the server, up to the cap), the rows of its table
// (the server's estimate for a large table, else counted: a view or a
// temporary table has no estimate), its unique keys ("a,b;id", key columns
// in lower case; none of expressions), and the schema the name resolves
// in. Reads only: the client's transaction and data are as they were (the
// counts run in it and see what it sees). A body's statement whose WHERE
// reads a call's values is not counted (NULL, NULL); with_columns: the
// table's columns last ("id,v", lower case), for a body's variables.
std::string mysql_reach_query(const db::Statement::Target& t, bool with_columns) {
    std::string schema = t.schema.empty() ? "DATABASE()" : mysql_literal(t.schema);
    std::string where_table =
        " WHERE TABLE_SCHEMA = " + schema + " AND TABLE_NAME = " + mysql_literal(t.name);
    std::string cap = std::to_string(kMysqlCountCap);
    std::string qualified =
        (t.schema.empty() ? "" : mysql_ident(t.schema) + ".") + mysql_ident(t.name);
    std::string counts = !t.unaskable.empty()
                             ? std::string("NULL, NULL")
                             : "(SELECT COUNT(*) FROM (SELECT 1 FROM " + t.from_where + " LIMIT " +
                                   cap +
                                   ") AS killswitch_reach), COALESCE((SELECT IF(TABLE_ROWS >= " +
                                   std::to_string(kMysqlExactTotal) +
                                   ", TABLE_ROWS, NULL) FROM information_schema.TABLES" +
                                   where_table + "), (SELECT COUNT(*) FROM (SELECT 1 FROM " +
                                   qualified + " LIMIT " + cap + ") AS killswitch_all))";
    return "SELECT " + counts +
           ", (SELECT GROUP_CONCAT(k SEPARATOR ';') FROM (SELECT "
           "GROUP_CONCAT(LOWER(COLUMN_NAME) ORDER BY SEQ_IN_INDEX SEPARATOR ',') AS k FROM "
           "information_schema.STATISTICS" +
           where_table +
           " AND NON_UNIQUE = 0 GROUP BY INDEX_NAME HAVING COUNT(COLUMN_NAME) = COUNT(*)) AS "
           "killswitch_keys), " +
           schema +
           (with_columns ? ", (SELECT GROUP_CONCAT(LOWER(COLUMN_NAME) SEPARATOR ',') FROM "
                           "information_schema.COLUMNS" +
                               where_table + ")"
                         : std::string());
}

EffectProbe mysql_effect_probe(const db::Classification& c) {
    EffectProbe out;
    std::vector<const db::Statement::Target*> targets;
    for (const auto& s : c.statements) {
        for (const auto& t : s.reaches) targets.push_back(&t);
        if (!s.reaches.empty() && db::first_word(s.text) == "EXPLAIN") {
            out.cannot = "EXPLAIN holds it: the server cannot be asked what it would reach";
            return out;
        }
    }
    if (targets.empty()) return out;
    // Several statements: only a stored program's body (split at its ';'),
    // which runs nothing now; otherwise what comes before one could change
    // what it reaches.
    if (std::any_of(c.statements.begin() + 1, c.statements.end(),
                    [](const db::Statement& s) { return !s.body_part; })) {
        out.cannot =
            "it comes with other statements in one request, which a probe cannot "
            "stand for";
        return out;
    }
    bool with_columns = std::any_of(targets.begin(), targets.end(),
                                    [](const auto* t) { return !t->eq_variables.empty(); });
    // One row per table it reaches (a DELETE or UPDATE of several tables).
    for (const auto* t : targets)
        out.sql += (out.sql.empty() ? "" : " UNION ALL ") + mysql_reach_query(*t, with_columns);
    return out;
}

int apply_mysql_count(db::Statement& st, const db::Statement::Target& t,
                      const std::vector<std::string>& row, const policy::Policy& p,
                      UniqueKeys* learned);

int apply_mysql_effect(db::Classification& c, const relay::ProbeAnswer& a, const policy::Policy& p,
                       UniqueKeys* learned) {
    // The relay could not ask (it no longer follows the connection's
    // answers): unknown, not harmless.
    if (!a.not_asked.empty()) {
        effect_unknown(c, a.not_asked);
        return 0;
    }
    if (!a.code.empty()) {
        // A body's statement the server cannot count now (its table is made
        // later) does not make the CREATE fail.
        if (!fails_alike(a.code) ||
            std::any_of(c.statements.begin(), c.statements.end(), creates_body))
            effect_unknown(c, "the server said " + a.message + " (" + a.code + ")");
        return 0;
    }
    size_t at = 0;  // the probe's row of the statement's first table
    for (auto& st : c.statements) {
        if (st.reaches.empty()) continue;
        size_t n = st.reaches.size();
        if (a.results.empty() || a.results[0].rows.size() < at + n) {
            effect_unknown(c, "the server's count did not come back");
            return 0;
        }
        if (st.cls != db::Class::Harmless) {
            at += n;
            continue;
        }
        std::vector<db::Statement::Target> targets = std::move(st.reaches);
        st.reaches.clear();
        for (size_t i = 0; i < n; ++i) {
            int counted = apply_mysql_count(st, targets[i], a.results[0].rows[at + i], p, learned);
            if (counted < 0) {
                st.reaches = std::move(targets);
                effect_unknown(c, "the server's count did not come back");
                return 0;
            }
            if (counted > 0) st.reaches.push_back(targets[i]);  // not pinned to one row
        }
        at += n;
    }
    return 0;
}

// The names of a list "a,b" (MySQL's GROUP_CONCAT), in order.
std::vector<std::string> comma_list(const std::string& text) {
    std::vector<std::string> out;
    for (size_t at = 0; at <= text.size();) {
        size_t comma = std::min(text.find(',', at), text.size());
        if (comma > at) out.push_back(text.substr(at, comma - at));
        at = comma + 1;
    }
    return out;
}

// One table's row of the MySQL probe (mysql_reach_query): -1 when it is
// not a count, 0 when a unique key pins the statement to one row, 1 when
// counted (the statement refused when over the limits) or when it cannot
// be (a body's, refused).
int apply_mysql_count(db::Statement& st, const db::Statement::Target& t,
                      const std::vector<std::string>& row, const policy::Policy& p,
                      UniqueKeys* learned) {
    if (row.size() < 4) return -1;
    std::vector<std::vector<std::string>> keys;
    std::string rest = row[2];
    while (!rest.empty()) {
        size_t semi = rest.find(';');
        std::vector<std::string> cols = comma_list(rest.substr(0, semi));
        rest = semi == std::string::npos ? "" : rest.substr(semi + 1);
        if (!cols.empty()) keys.push_back(std::move(cols));
    }
    if (learned) (*learned)[t.table] = keys;
    UniqueKeys shown{{t.table, keys}};
    if (pinned(t, shown)) return 0;  // one row at most
    if (!t.eq_variables.empty() && row.size() >= 5 && pinned_in_body(t, keys, comma_list(row[4])))
        return 0;  // one row a call
    if (!t.unaskable.empty()) {
        if (st.cls == db::Class::Harmless) {
            st.cls = db::Class::Unparseable;
            st.detail = t.body_of + " whose body runs " + db::first_word(t.body) + " of " +
                        t.table + " whose reach could not be learned: " + t.unaskable;
        }
        return 1;
    }
    auto number = [](const std::string& v) {
        return !v.empty() && std::all_of(v.begin(), v.end(),
                                         [](char ch) { return ch >= '0' && ch <= '9'; })
                   ? std::stod(v)
                   : -1.0;
    };
    double reach = number(row[0]), all = number(row[1]);
    if (reach < 0 || all < 0) return -1;
    if (t.limit >= 0) reach = std::min(reach, static_cast<double>(t.limit));
    std::string op =
        db::first_word(t.body_of.empty() ? st.text : t.body) == "UPDATE" ? "UPDATE" : "DELETE";
    db::Statement::Reach n{row[3] + "." + t.name, op, reach, all};
    st.reached.push_back(n);
    if (!over_limits(n, p) || st.cls != db::Class::Harmless) return 1;
    st.cls = op == "DELETE" ? db::Class::DeleteAll : db::Class::UpdateAll;
    st.detail = (t.body_of.empty() ? std::string() : t.body_of + " whose body runs ") + op +
                " whose WHERE reaches " + (reach >= kMysqlCountCap ? "at least " : std::string()) +
                rows_text(reach) + " of " + rows_text(all) + " rows of " + n.table +
                " (counted by the server; policy databases.effect)";
    return 1;
}

}  // namespace

EffectProbe effect_probe(const RelayedRequest& r, const db::Classification& c,
                         const policy::Policy& p, int round) {
    if (!p.db_effect) return {};
    // A PostgreSQL Bind or a MySQL execute whose values could not be read:
    // what it reaches cannot be asked.
    bool mysql_execute = r.kind == KS_DB_MYSQL && r.type == kMysqlComStmtExecute;
    if (!r.bound && (mysql_execute || (r.kind == KS_DB_POSTGRES && r.type == 'B'))) {
        EffectProbe out;
        if (reaches_any(c))
            out.cannot = std::string("the values of its ") + (mysql_execute ? "execute" : "Bind") +
                         " could not be read: " + (r.unread.empty() ? "no values" : r.unread);
        return out;
    }
    if (r.kind == KS_DB_MYSQL && (r.type == kMysqlComQuery || mysql_execute))
        return mysql_effect_probe(c);
    if (r.kind != KS_DB_POSTGRES || r.waits_for_binds()) return {};
    EffectProbe out;
    // An extended-query Parse with its Bind, or a Bind: asked with the
    // Bind's values in place of its $n (PostgreSQL 15 cannot EXPLAIN a
    // statement without them).
    bool extended = r.type == 'P' || r.type == 'B';
    db::Classification with_values;
    if (extended) {
        with_values = c;
        for (auto& st : with_values.statements) {
            if (st.reaches.empty()) continue;
            auto text = db::bind_postgres_params(st.text, r.params);
            if (!text) {
                out.cannot = "the values of its Bind could not be put in place of its parameters";
                return out;
            }
            st.text = std::move(*text);
        }
    }
    auto parts = probe_parts(extended ? with_values : c, round, out.cannot);
    for (const auto& part : parts) {
        if (!out.sql.empty()) out.sql += "\n;\n";
        out.sql += part.sql;
    }
    return out;
}

void drop_pinned(db::Classification& c, const UniqueKeys& known) {
    for (auto& st : c.statements)
        if (std::all_of(st.reaches.begin(), st.reaches.end(),
                        [&](const auto& t) { return pinned(t, known); }))
            st.reaches.clear();
}

bool keeps_unique_keys(const db::Classification& c) {
    static const char* const kKeep[] = {"SELECT", "INSERT",   "UPDATE", "DELETE",    "WITH",
                                        "VALUES", "TABLE",    "BEGIN",  "START",     "COMMIT",
                                        "END",    "ROLLBACK", "ABORT",  "SAVEPOINT", "RELEASE",
                                        "SHOW",   "FETCH",    "MOVE",   "CLOSE"};
    // Settings that clients and ORMs set on each connection and that change
    // neither how names resolve nor who runs them (Django: SET TIME ZONE,
    // SET CONSTRAINTS in loaddata), as the parser names them. Any other SET
    // forgets (search_path, SET SCHEMA, SET ROLE, however spelled).
    static const char* const kSettings[] = {"timezone",
                                            "client_encoding",
                                            "datestyle",
                                            "intervalstyle",
                                            "extra_float_digits",
                                            "statement_timeout",
                                            "lock_timeout",
                                            "idle_in_transaction_session_timeout",
                                            "application_name",
                                            "standard_conforming_strings",
                                            "bytea_output",
                                            "client_min_messages",
                                            "constraints",
                                            "transaction",
                                            "transaction_isolation",
                                            "synchronous_commit",
                                            "work_mem",
                                            "jit"};
    // What changes how names resolve or who runs them, in any statement
    // (SELECT set_config('search_path', ...), DISCARD ALL, RESET ALL too). A
    // column named "role" only costs a probe more.
    static const char* const kResolution[] = {"search_path",   "set_config", "role",
                                              "authorization", "discard",    "reset"};
    for (const auto& st : c.statements) {
        std::string w = db::first_word(st.text);
        bool keeps = std::any_of(std::begin(kKeep), std::end(kKeep),
                                 [&](const char* k) { return w == k; }) ||
                     (w == "SET" && std::any_of(std::begin(kSettings), std::end(kSettings),
                                                [&](const char* k) { return st.setting == k; }));
        if (!keeps) return false;
        std::string lower = db::ascii_lower(st.text);
        if (std::any_of(std::begin(kResolution), std::end(kResolution),
                        [&](const char* k) { return lower.find(k) != std::string::npos; }))
            return false;
    }
    return true;
}

bool keeps_mysql_keys(const db::Classification& c) {
    // USE (and COM_INIT_DB, which the relay reads as USE) makes a name
    // another table; DDL may change a table's keys.
    static const char* const kKeep[] = {"SELECT", "INSERT",   "UPDATE",    "DELETE",  "REPLACE",
                                        "WITH",   "VALUES",   "TABLE",     "BEGIN",   "START",
                                        "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SHOW",
                                        "SET",    "EXPLAIN",  "DESCRIBE",  "DESC",    "DO"};
    return std::all_of(c.statements.begin(), c.statements.end(), [](const db::Statement& st) {
        std::string w = db::first_word(st.text);
        return std::any_of(std::begin(kKeep), std::end(kKeep),
                           [&](const char* k) { return w == k; });
    });
}

void effect_unknown(db::Classification& c, const std::string& why) {
    for (auto& st : c.statements) {
        if (st.reaches.empty() || st.cls != db::Class::Harmless) continue;
        st.cls = db::Class::Unparseable;
        st.detail =
            (creates_body(st) ? st.reaches[0].body_of + " whose body runs a DELETE or UPDATE"
                              : db::first_word(st.text)) +
            " whose reach could not be learned: " + why;
    }
}

int apply_effect_probe(db::Classification& c, const relay::ProbeAnswer& a, const policy::Policy& p,
                       UniqueKeys* learned) {
    // MySQL's probe counts (mysql_reach_query): one round.
    if (std::any_of(c.statements.begin(), c.statements.end(), [](const db::Statement& st) {
            return !st.reaches.empty() && !st.reaches[0].from_where.empty();
        }))
        return apply_mysql_effect(c, a, p, learned);
    if (!a.not_asked.empty()) {
        // A failed transaction: the request fails too. Otherwise (in the
        // middle of an extended-query batch) what it reaches is unknown.
        if (!a.fails_anyway) effect_unknown(c, a.not_asked);
        return 0;
    }
    if (!a.code.empty()) {
        // A body's statement the server cannot plan now (its table is
        // made later) does not make the CREATE fail.
        if (!fails_alike(a.code) ||
            std::any_of(c.statements.begin(), c.statements.end(), creates_body))
            effect_unknown(c, "the server said " + a.message + " (" + a.code + ")");
        return 0;
    }
    bool analyzed = a.round >= kProbeAnalyze;
    std::string cannot;
    auto parts = probe_parts(c, a.round, cannot);
    if (a.results.size() < parts.size()) {
        effect_unknown(c, "the server's answers do not match the question");
        return 0;
    }
    UniqueKeys keys;  // what this probe showed
    // A temporary table's name means another table on another connection:
    // its keys are not learned for them.
    std::set<std::string> temporary;
    int again = 0;
    bool refused = false;
    for (size_t i = 0; i < c.statements.size(); ++i) {
        db::Statement& st = c.statements[i];
        if (st.reaches.empty() || st.cls != db::Class::Harmless) continue;
        // Each EXPLAIN's ModifyTable nodes, by the first target it answers.
        std::map<size_t, std::vector<db::Statement::Reach>> planned;
        std::map<std::string, double> totals;  // schema.table -> rows
        std::vector<std::string> names(st.reaches.size());
        std::vector<std::optional<std::vector<std::string>>> columns(st.reaches.size());
        bool without_statistics = false, statistics_unknown = false;
        for (size_t k = 0; k < parts.size() && k < a.results.size(); ++k) {
            const ProbePart& part = parts[k];
            if (part.statement != i) continue;
            const auto& res = a.results[k];
            const auto* row = res.rows.empty() ? nullptr : &res.rows[0];
            if (part.role == ProbePart::Explain) {
                if (auto plan = top_plan(res)) modify_nodes(*plan, planned[part.target]);
            } else if (part.role == ProbePart::Name && row && row->size() >= 4) {
                names[part.target] = (*row)[0] + "." + (*row)[1];
                keys[st.reaches[part.target].table] = unique_keys((*row)[2]);
                if ((*row)[0].rfind("pg_temp", 0) == 0)
                    temporary.insert(st.reaches[part.target].table);
                statistics_unknown = statistics_unknown || (*row)[3] == "u";
                without_statistics = without_statistics || ((*row)[3] != "t" && (*row)[3] != "u");
                if (row->size() >= 5) {
                    auto cols = nlohmann::json::parse((*row)[4], nullptr, false);
                    columns[part.target].emplace();
                    for (const auto& col : cols.is_array() ? cols : nlohmann::json::array())
                        if (col.is_string())
                            columns[part.target]->push_back(col.get<std::string>());
                }
            } else if (part.role == ProbePart::Total) {
                if (auto plan = top_plan(res); plan && !names[part.target].empty())
                    totals[names[part.target]] = plan_rows(*plan);
            }
        }
        bool body = creates_body(st), all_pinned = true;
        std::vector<db::Statement::Reach> reached;
        for (const auto& [first, end] : plan_units(st)) {
            bool unit_pinned = true;
            for (size_t j = first; j < end; ++j) {
                const auto& t = st.reaches[j];
                auto shown = keys.find(t.table);
                unit_pinned =
                    unit_pinned &&
                    (body ? shown != keys.end() && pinned_in_body(t, shown->second, columns[j])
                          : pinned(t, keys));
            }
            if (unit_pinned) continue;  // one row at most, whatever the planner guessed
            all_pinned = false;
            const std::string& unaskable = st.reaches[first].unaskable;
            auto plan = planned.find(first);
            if (!unaskable.empty() || plan == planned.end()) {
                st.cls = db::Class::Unparseable;
                st.detail = reach_subject(st, first) + " whose reach could not be learned: " +
                            (unaskable.empty() ? "the server's plan did not come back" : unaskable);
                refused = true;
                break;
            }
            std::vector<db::Statement::Reach> nodes = plan->second;
            const db::Statement::Reach* over = nullptr;
            for (auto& n : nodes) {
                if (auto t = totals.find(n.table); t != totals.end())
                    n.total = t->second;
                else if (nodes.size() == 1 && totals.size() == 1)
                    // One table written, another deleted from: a view over it
                    // (its rows are the table's, as far as the view shows them).
                    n.total = totals.begin()->second;
                if (!over && over_limits(n, p)) over = &n;
            }
            reached.insert(reached.end(), nodes.begin(), nodes.end());
            if (!over) {
                // Under the limits: a guess of the planner's without statistics
                // (a third of the rows for any range) is asked again after
                // ANALYZE; whether it has any, first, when not asked yet.
                if (!analyzed && without_statistics)
                    again = kProbeAnalyze;
                else if (!analyzed && statistics_unknown)
                    again = std::max(again, int{kProbeStatistics});
                continue;
            }
            refused = true;
            st.cls = over->op == "DELETE" ? db::Class::DeleteAll : db::Class::UpdateAll;
            st.detail = (body ? st.reaches[first].body_of + " whose body runs " : std::string()) +
                        over->op + " whose WHERE reaches about " + rows_text(over->rows) +
                        (over->total >= 0 ? " of " + rows_text(over->total) : std::string()) +
                        " rows of " + over->table + " (the server's planner" +
                        (analyzed             ? ", after ANALYZE in a block rolled back"
                         : without_statistics ? ", from the table's size: it has no statistics yet"
                         : statistics_unknown ? ""
                                              : ", from the table's statistics") +
                        "; policy databases.effect)";
            break;
        }
        st.reached = std::move(reached);
        if (all_pinned) st.reaches.clear();
    }
    if (learned)
        for (auto& [table, k] : keys)
            if (!temporary.count(table)) (*learned)[table] = std::move(k);
    return refused ? 0 : again;
}

nlohmann::json reached_json(const db::Statement& st) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& n : st.reached) {
        nlohmann::json j = {{"table", n.table}, {"op", n.op}, {"rows", n.rows}};
        if (n.total >= 0) j["of"] = n.total;
        out.push_back(std::move(j));
    }
    return out;
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
