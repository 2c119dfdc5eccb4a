// PostgreSQL: statements parsed by PostgreSQL's own grammar (libpg_query),
// then the parse tree searched for what destroys data, wherever it sits
// (writable CTEs, EXPLAIN ANALYZE, PREPARE, CREATE RULE bodies), and for
// what changes the schema or a migration tool's bookkeeping without losing
// a row.
#include <pg_query.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "db_guard/classify.h"

namespace ks::db {
namespace {

using nlohmann::json;

const json* only_child(const json& node, std::string* key) {
    if (!node.is_object() || node.size() != 1) return nullptr;
    *key = node.begin().key();
    return &node.begin().value();
}

std::string const_repr(const json& c) {
    // {"A_Const": {"ival": {"ival": 1}}} or {"sval": {"sval": "a"}}, {"boolval": ...}
    for (const char* k : {"ival", "sval", "fval", "boolval", "bsval"}) {
        if (c.contains(k)) return std::string(k) + ":" + c[k].dump();
    }
    if (c.contains("isnull")) return "null";
    return c.dump();
}

// Conservative: true only when the condition holds for every row.
bool always_true(const json& node) {
    std::string kind;
    const json* v = only_child(node, &kind);
    if (!v) return false;
    if (kind == "A_Const") {
        if (v->contains("boolval")) {
            const json& b = (*v)["boolval"];
            return b.is_object() ? b.value("boolval", false) : false;
        }
        // WHERE 1 is not valid PostgreSQL; a non-zero integer would be.
        if (v->contains("ival")) return (*v)["ival"].value("ival", 0) != 0;
        return false;
    }
    if (kind == "TypeCast") {
        // 't'::boolean, 'true'::bool, 1::boolean
        if (!v->contains("arg")) return false;
        const json& arg = (*v)["arg"];
        std::string ak;
        const json* a = only_child(arg, &ak);
        if (!a || ak != "A_Const") return false;
        if (a->contains("sval")) {
            std::string s = (*a)["sval"].value("sval", "");
            for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            return s == "t" || s == "true" || s == "y" || s == "yes" || s == "on" || s == "1";
        }
        return always_true(arg);
    }
    if (kind == "A_Expr") {
        if (v->value("kind", "") != "AEXPR_OP" || !v->contains("name")) return false;
        std::string op;
        for (const auto& n : (*v)["name"])
            if (n.contains("String")) op = n["String"].value("sval", "");
        if (!v->contains("lexpr") || !v->contains("rexpr")) return false;
        const json& l = (*v)["lexpr"];
        const json& r = (*v)["rexpr"];
        std::string lk, rk;
        const json* lv = only_child(l, &lk);
        const json* rv = only_child(r, &rk);
        if (!lv || !rv) return false;
        if (lk == "A_Const" && rk == "A_Const") {
            std::string a = const_repr(*lv), b = const_repr(*rv);
            if (op == "=") return a == b;
            if (op == "<>" || op == "!=") return a != b;
            return false;
        }
        // col = col (same column reference) is true for every non-null row.
        if (op == "=" && lk == "ColumnRef" && rk == "ColumnRef")
            return (*lv)["fields"] == (*rv)["fields"];
        return false;
    }
    if (kind == "BoolExpr") {
        std::string b = v->value("boolop", "");
        const json& args = (*v)["args"];
        if (b == "OR_EXPR") {
            for (const auto& a : args)
                if (always_true(a)) return true;
            return false;
        }
        if (b == "AND_EXPR") {
            for (const auto& a : args)
                if (!always_true(a)) return false;
            return !args.empty();
        }
        return false;
    }
    if (kind == "NullTest") {
        // x IS NULL OR ... is not provably true; IS NOT NULL on a constant is.
        return false;
    }
    return false;
}

struct Finding {
    Class cls = Class::Harmless;
    std::string detail;
    std::string text;  // the statement's own text (a PL/pgSQL body is parsed from it)
    size_t at = 0;     // where text starts in what was parsed (the tree's locations)
    // DELETEs and UPDATEs with a WHERE that may limit them (Statement::reaches).
    std::vector<Statement::Target> reaches;

    // A destructive finding wins over the others, the first of each kind
    // over later ones.
    void note(Class c, std::string why) {
        if (is_destructive(cls) || (cls != Class::Harmless && !is_destructive(c))) return;
        cls = c;
        detail = std::move(why);
    }
};

std::string quote_ident(const std::string& name) {
    std::string out = "\"";
    for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

// A RangeVar as an identifier: "catalog"."schema"."table", as written.
std::string relation_name(const json& rel) {
    std::string name;
    if (rel.contains("catalogname")) name = quote_ident(rel.value("catalogname", "")) + '.';
    if (rel.contains("schemaname")) name += quote_ident(rel.value("schemaname", "")) + '.';
    return name + quote_ident(rel.value("relname", ""));
}

// Inside the body of a function, procedure or rule being created (judged
// now, run later): the names that are its variables, not columns (its
// parameters, what it DECLAREs, NEW and OLD, the function's own name, which
// may qualify its parameters), and what creates it. own_text: each body
// statement is a text of its own (an AS body), not only a part of the
// CREATE's (BEGIN ATOMIC, a rule's actions).
struct BodyScope {
    std::string of;  // "CREATE FUNCTION", "CREATE PROCEDURE", "CREATE RULE", "DO block"
    std::set<std::string> variables;
    bool own_text = true;
};
thread_local const BodyScope* body_scope = nullptr;
// PL/pgSQL loops (LOOP, WHILE, FOR, FOREACH) around the statement judged:
// what one round reaches says nothing of all of them.
thread_local int body_loops = 0;

class InBody {
  public:
    explicit InBody(const BodyScope& s) : outer_(body_scope) { body_scope = &s; }
    ~InBody() { body_scope = outer_; }
    InBody(const InBody&) = delete;
    InBody& operator=(const InBody&) = delete;

  private:
    const BodyScope* outer_;
};

// The variable (or $n) an operand names in a body: a ColumnRef whose first
// name is one of the body's variables and not the table's alias.
std::optional<std::string> variable_ref(const json& n, const std::string& alias) {
    if (!body_scope) return std::nullopt;
    if (n.contains("TypeCast")) return variable_ref(n["TypeCast"].value("arg", json()), alias);
    if (n.contains("ParamRef")) return "$" + std::to_string(n["ParamRef"].value("number", 0));
    if (!n.contains("ColumnRef")) return std::nullopt;
    const json& fields = n["ColumnRef"].value("fields", json::array());
    if (fields.empty() || !fields[0].contains("String")) return std::nullopt;
    std::string first = fields[0]["String"].value("sval", "");
    if ((fields.size() > 1 && first == alias) || !body_scope->variables.count(first))
        return std::nullopt;
    return first;
}

// Every variable (or $n) an expression of a body reads, by name, and where
// each reference is written (its location and the text it should have).
void variables_read(const json& node, std::set<std::string>& names,
                    std::vector<std::pair<size_t, std::string>>* refs = nullptr) {
    if (node.is_array()) {
        for (const auto& n : node) variables_read(n, names, refs);
        return;
    }
    if (!node.is_object() || !body_scope) return;
    if (auto v = variable_ref(node, "")) {
        names.insert(*v);
        if (refs) {
            const json& ref = node.contains("ParamRef") ? node["ParamRef"] : node["ColumnRef"];
            std::string written = *v;
            if (node.contains("ColumnRef"))
                for (size_t i = 1; i < ref["fields"].size(); ++i)
                    written += "." + (ref["fields"][i].contains("String")
                                          ? ref["fields"][i]["String"].value("sval", "")
                                          : std::string("*"));
            if (!node.contains("TypeCast")) refs->emplace_back(ref.value("location", 0), written);
        }
        if (!node.contains("TypeCast")) return;
    }
    for (auto it = node.begin(); it != node.end(); ++it) variables_read(it.value(), names, refs);
}

std::string names_text(const std::set<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

// A body's DELETE or UPDATE as the probe may EXPLAIN it now: the variables
// it reads outside its WHERE (in SET, RETURNING) as NULL, which changes no
// row it reaches. nullopt: one is written otherwise than the tree names it
// (quoted): the text is not rewritten by guess.
std::optional<std::string> with_variables_null(const Finding& f, const json& stmt) {
    std::set<std::string> names;
    std::vector<std::pair<size_t, std::string>> refs;
    variables_read(stmt, names, &refs);
    std::sort(refs.begin(), refs.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string text = f.text;
    for (const auto& [loc, written] : refs) {
        if (loc < f.at || loc - f.at + written.size() > text.size()) return std::nullopt;
        size_t at = loc - f.at;
        if (ascii_lower(text.substr(at, written.size())) != written) return std::nullopt;
        text.replace(at, written.size(), "NULL");
    }
    return text;
}

// True when an expression reads no column of its row: a constant, a
// function of none (now(), random()), a subquery of other tables.
bool reads_no_column(const json& node) {
    if (node.is_object()) {
        for (auto it = node.begin(); it != node.end(); ++it)
            if (it.key() == "ColumnRef" || !reads_no_column(it.value())) return false;
    } else if (node.is_array()) {
        for (const auto& n : node)
            if (!reads_no_column(n)) return false;
    }
    return true;
}

bool explain_analyze(const json& v) {
    for (const auto& o : v.value("options", json::array()))
        if (o.contains("DefElem") && ascii_lower(o["DefElem"].value("defname", "")) == "analyze")
            return !o["DefElem"].contains("arg") ||
                   o["DefElem"]["arg"].dump().find("false") == std::string::npos;
    return false;
}

// A constant, a parameter, or a cast of one.
bool constant_operand(const json& n) {
    if (n.contains("TypeCast")) return constant_operand(n["TypeCast"].value("arg", json()));
    return n.contains("A_Const") || n.contains("ParamRef");
}

// The column a ColumnRef names, when it is of the statement's own table
// (unqualified, or qualified by its name or alias).
std::optional<std::string> own_column(const json& n, const std::string& alias) {
    if (!n.contains("ColumnRef")) return std::nullopt;
    const json& fields = n["ColumnRef"].value("fields", json::array());
    if (fields.empty() || fields.size() > 2 || !fields.back().contains("String"))
        return std::nullopt;
    if (fields.size() == 2 &&
        (!fields[0].contains("String") || fields[0]["String"].value("sval", "") != alias))
        return std::nullopt;
    return fields.back()["String"].value("sval", "");
}

// The columns a WHERE holds equal to a constant, in its top-level AND; in
// a body (vars), and those held equal to a variable, with its name.
void equal_columns(const json& where, const std::string& alias, std::vector<std::string>& out,
                   std::vector<std::pair<std::string, std::string>>* vars = nullptr) {
    if (where.contains("BoolExpr")) {
        const json& b = where["BoolExpr"];
        if (b.value("boolop", "") != "AND_EXPR") return;
        for (const auto& a : b.value("args", json::array())) equal_columns(a, alias, out, vars);
        return;
    }
    if (!where.contains("A_Expr")) return;
    const json& e = where["A_Expr"];
    const json& name = e.value("name", json::array());
    if (e.value("kind", "") != "AEXPR_OP" || name.size() != 1 || !name[0].contains("String") ||
        name[0]["String"].value("sval", "") != "=")
        return;
    const json l = e.value("lexpr", json()), r = e.value("rexpr", json());
    auto col = constant_operand(r) ? own_column(l, alias)
                                   : (constant_operand(l) ? own_column(r, alias) : std::nullopt);
    if (col) {
        out.push_back(*col);
        return;
    }
    if (!vars) return;
    auto lv = variable_ref(l, alias), rv = variable_ref(r, alias);
    if (rv && !lv) col = own_column(l, alias);
    if (lv && !rv) col = own_column(r, alias);
    if (col) vars->emplace_back(*col, rv ? *rv : *lv);
}

// A DELETE or UPDATE in a body (t its target): judged now by what it would
// reach now, where its WHERE reads no value of a call's; else only a key
// held equal to constants or variables can pin it.
void body_target(const json& v, const std::string& alias, const Finding& f, Statement::Target& t) {
    t.body_of = body_scope->of;
    const char* joined = v.contains("usingClause") ? "usingClause" : "fromClause";
    // In a loop, only constants pin it: a variable may name another row
    // each round.
    if (!v.contains(joined))
        equal_columns(v["whereClause"], alias, t.eq_columns,
                      body_loops > 0 ? nullptr : &t.eq_variables);
    std::set<std::string> names;
    variables_read(v["whereClause"], names);
    if (v.contains(joined)) variables_read(v[joined], names);
    if (body_loops > 0) {
        t.body = f.text;
        t.unaskable =
            "it runs in a loop: what all its rounds reach cannot be asked before they run";
    } else if (!body_scope->own_text) {
        t.unaskable = "its text is a part of the " + body_scope->of +
                      "'s (BEGIN ATOMIC, a rule's action), not a statement the server can be "
                      "asked about";
    } else if (!names.empty()) {
        t.body = f.text;
        t.unaskable = body_scope->of == "DO block"
                          ? "its WHERE reads variables (" + names_text(names) +
                                "), known only as the block runs: what it reaches cannot be "
                                "asked before"
                          : "its WHERE reads values each call gives (" + names_text(names) +
                                "): what a call reaches cannot be asked before it";
    } else if (auto text = with_variables_null(f, v)) {
        t.body = std::move(*text);
    } else {
        t.unaskable = "it reads a variable written in a way the probe does not rewrite";
    }
}

// A DELETE or UPDATE with no WHERE, or an always-true one: every row of its
// table, which is a migration tool's own (Bookkeeping) or any other.
void every_row(const json& v, Class all, const std::string& verb, const Options& opt, Finding& f) {
    std::string how;
    std::string table;
    if (v.contains("relation")) table = v["relation"].value("relname", "");
    if (!v.contains("whereClause"))
        how = " without WHERE";
    else if (always_true(v["whereClause"]))
        how = " with an always-true WHERE";
    if (how.empty()) {
        // WHERE CURRENT OF a cursor: its one row.
        if (v["whereClause"].contains("CurrentOfExpr") || !v.contains("relation") ||
            table.empty() || is_bookkeeping_table(table, opt))
            return;
        const json& rel = v["relation"];
        // libpg_query writes inh only when true (no ONLY).
        Statement::Target t{relation_name(rel), !rel.value("inh", false), {}};
        std::string alias = rel.contains("alias") ? rel["alias"].value("aliasname", "") : table;
        if (body_scope)
            body_target(v, alias, f, t);
        else
            equal_columns(v["whereClause"], alias, t.eq_columns);
        f.reaches.push_back(std::move(t));
        return;
    }
    if (!table.empty() && is_bookkeeping_table(table, opt))
        f.note(Class::Bookkeeping, verb + how + " of " + table + ", a migration tool's table");
    else
        f.note(all, verb + how);
}

// ALTER TABLE ... DROP: a column (or a composite type's attribute) takes its
// values with it; a constraint, or a column's NOT NULL, default, identity or
// generation expression, holds none. (NO INHERIT, SET WITHOUT CLUSTER, NOT
// OF are AT_Drop* too, but drop nothing: harmless, as the kernel reads them.)
void alter_table_cmd(const json& v, Finding& f) {
    static const std::pair<const char*, const char*> kSchemaOnly[] = {
        {"AT_DropConstraint", "DROP CONSTRAINT"},
        {"AT_DropNotNull", "ALTER COLUMN ... DROP NOT NULL"},
        {"AT_DropIdentity", "ALTER COLUMN ... DROP IDENTITY"},
        {"AT_DropExpression", "ALTER COLUMN ... DROP EXPRESSION"},
    };
    std::string sub = v.value("subtype", "");
    if (sub == "AT_DropColumn") f.note(Class::AlterDrop, "ALTER TABLE ... DROP COLUMN");
    if (sub == "AT_AlterColumnType" && v.contains("def")) {
        // USING an expression of no column: every value of the column is
        // replaced by the same one (or by what it computes without them).
        const json& def = v["def"].contains("ColumnDef") ? v["def"]["ColumnDef"] : v["def"];
        if (def.contains("raw_default") && reads_no_column(def["raw_default"]))
            f.note(Class::AlterDrop,
                   "ALTER COLUMN ... TYPE ... USING an expression that reads no column: the "
                   "column's values are lost");
    }
    for (const auto& [subtype, what] : kSchemaOnly)
        if (sub == subtype) f.note(Class::SchemaChange, std::string("ALTER TABLE ... ") + what);
    if (sub == "AT_ColumnDefault" && !v.contains("def"))
        f.note(Class::SchemaChange, "ALTER TABLE ... ALTER COLUMN ... DROP DEFAULT");
}

// ALTER DOMAIN: DROP NOT NULL ('N'), DROP CONSTRAINT ('X'), DROP DEFAULT
// ('T' without a default).
void alter_domain(const json& v, Finding& f) {
    std::string sub = v.value("subtype", "");
    if (sub == "N" || sub == "X" || (sub == "T" && !v.contains("def")))
        f.note(Class::SchemaChange, "ALTER DOMAIN ... DROP");
}

bool one_of(const std::string& name, std::initializer_list<std::string_view> names) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

// Procedural languages and extensions that reach outside the database: code
// that runs with the server's rights on its host (untrusted languages, C),
// files of the host (adminpack, file_fdw), jobs run later by the server
// (pg_cron).
bool untrusted_language(const std::string& lang) {
    return one_of(ascii_lower(lang), {"c", "internal", "plpython3u", "plpythonu", "plpython2u",
                                      "plperlu", "pltclu", "plsh", "plr", "pljavau"});
}
bool host_extension(const std::string& ext) {
    return untrusted_language(ext) ||
           one_of(ascii_lower(ext), {"adminpack", "file_fdw", "pg_cron"});
}

// Server-side functions that read, write or list files of the server's host.
bool host_function(const json& funcname) {
    if (!funcname.is_array() || funcname.empty()) return false;
    const json& last = funcname.back();
    if (!last.contains("String")) return false;
    return one_of(ascii_lower(last["String"].value("sval", "")),
                  {"lo_export", "lo_import", "pg_read_file", "pg_read_binary_file", "pg_ls_dir",
                   "pg_stat_file", "pg_file_write", "pg_file_unlink", "pg_file_rename",
                   "pg_file_sync", "pg_logdir_ls"});
}

// The server reads, writes or runs something on its host, or loads code.
void host_access(const std::string& k, const json& v, Finding& f) {
    if (k == "CopyStmt") {
        if (v.value("is_program", false))
            f.note(Class::HostAccess, "COPY ... PROGRAM: the server runs a command on its host");
        else if (v.contains("filename"))
            f.note(Class::HostAccess, std::string("COPY ... ") +
                                          (v.value("is_from", false) ? "FROM" : "TO") +
                                          " a file of the server's host");
    } else if (k == "AlterSystemStmt") {
        f.note(Class::HostAccess, "ALTER SYSTEM: the server's configuration file");
    } else if (k == "LoadStmt") {
        f.note(Class::HostAccess, "LOAD: a shared library into the server");
    } else if (k == "CreatePLangStmt") {
        f.note(Class::HostAccess, "CREATE LANGUAGE");
    } else if (k == "CreateExtensionStmt" && host_extension(v.value("extname", ""))) {
        f.note(Class::HostAccess, "CREATE EXTENSION " + v.value("extname", "") +
                                      ": code or files on the server's host");
    } else if (k == "FuncCall" && host_function(v.value("funcname", json::array()))) {
        f.note(Class::HostAccess, v["funcname"].back()["String"].value("sval", "") +
                                      "(): a file of the server's host");
    }
}

// A function's language (sql when none is named) and its AS text, if any.
std::pair<std::string, std::string> function_language_and_body(const json& v) {
    std::string lang = "sql", body;
    for (const auto& o : v.value("options", json::array())) {
        const json& d = o.contains("DefElem") ? o["DefElem"] : json::object();
        if (!d.contains("arg")) continue;
        const json& arg = d["arg"];
        if (d.value("defname", "") == "language" && arg.contains("String"))
            lang = ascii_lower(arg["String"].value("sval", ""));
        if (d.value("defname", "") == "as" && arg.contains("List")) {
            const json& items = arg["List"].value("items", json::array());
            if (!items.empty() && items[0].contains("String"))
                body = items[0]["String"].value("sval", "");
        }
    }
    return {lang, body};
}

thread_local int body_depth = 0;  // function bodies inside function bodies

// What a statement inside a function's body does, as the function's own
// finding: a body that drops a table is refused when it is created, not
// when it is called (maybe by a trigger, or by a process nobody guards).
void judge_body_statement(const std::string& sql, const Options& opt, Finding& f) {
    if (body_depth >= 4) {
        f.note(Class::Unparseable, "function bodies nested too deep");
        return;
    }
    ++body_depth;
    Classification c = classify_postgres_sql(sql, opt);
    // A PL/pgSQL expression is no statement: read as a SELECT (after the
    // variable an assignment names).
    if (c.verdict() == Class::Unparseable) {
        size_t assign = sql.find(":=");
        c = classify_postgres_sql(
            "SELECT " + (assign == std::string::npos ? sql : sql.substr(assign + 2)), opt);
    }
    --body_depth;
    for (auto& st : c.statements) {
        if (st.cls != Class::Harmless && st.cls != Class::Unparseable)
            f.note(st.cls, body_scope->of + " whose body runs " + st.detail);
        // What its DELETEs and UPDATEs would reach: asked when it is created.
        if (st.cls == Class::Harmless)
            for (auto& t : st.reaches) f.reaches.push_back(std::move(t));
    }
}

// PL/pgSQL's tree (pg_query_parse_plpgsql): every SQL it runs is a
// PLpgSQL_expr; EXECUTE of a string runs what cannot be seen.
void search_plpgsql(const json& node, const Options& opt, Finding& f) {
    if (node.is_array()) {
        for (const auto& n : node) search_plpgsql(n, opt, f);
        return;
    }
    if (!node.is_object()) return;
    static const char* const kLoops[] = {
        "PLpgSQL_stmt_loop", "PLpgSQL_stmt_while",     "PLpgSQL_stmt_fori",   "PLpgSQL_stmt_fors",
        "PLpgSQL_stmt_forc", "PLpgSQL_stmt_foreach_a", "PLpgSQL_stmt_dynfors"};
    for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string& k = it.key();
        if (k == "PLpgSQL_stmt_dynexecute" || k == "PLpgSQL_stmt_dynfors" || k == "dynquery")
            f.note(Class::OpaqueCode, body_scope->of +
                                          " whose body runs EXECUTE of a string: its statements "
                                          "cannot be checked");
        if (k == "PLpgSQL_expr" && it.value().contains("query"))
            judge_body_statement(it.value().value("query", ""), opt, f);
        bool loop = std::any_of(std::begin(kLoops), std::end(kLoops),
                                [&](const char* l) { return k == l; });
        body_loops += loop;
        search_plpgsql(it.value(), opt, f);
        body_loops -= loop;
    }
}

void search(const json& node, const Options& opt, Finding& f);

// Every variable PL/pgSQL's tree declares (parameters, DECLAREs, loop
// variables, NEW and OLD): its datums' names.
void plpgsql_variables(const json& node, std::set<std::string>& out) {
    if (node.is_array()) {
        for (const auto& n : node) plpgsql_variables(n, out);
        return;
    }
    if (!node.is_object()) return;
    for (auto it = node.begin(); it != node.end(); ++it) {
        if (it.key() == "datums" && it.value().is_array())
            for (const auto& d : it.value())
                for (auto di = d.begin(); d.is_object() && di != d.end(); ++di)
                    if (std::string name = di.value().value("refname", "");
                        !name.empty() && name[0] != '(')
                        out.insert(name);
        plpgsql_variables(it.value(), out);
    }
}

// A PL/pgSQL body, read by PL/pgSQL's own parser from the text of a
// CREATE FUNCTION: its variables join the scope's, and each statement it
// runs is judged in it.
void plpgsql_body(const std::string& create_text, BodyScope& scope, const Options& opt,
                  Finding& f) {
    PgQueryPlpgsqlParseResult r = pg_query_parse_plpgsql(create_text.c_str());
    if (r.error) {
        f.note(Class::Unparseable, std::string("PL/pgSQL body not readable: ") + r.error->message);
    } else {
        json funcs = json::parse(r.plpgsql_funcs, nullptr, false);
        if (funcs.is_discarded()) {
            f.note(Class::Unparseable, "PL/pgSQL body not readable");
        } else {
            plpgsql_variables(funcs, scope.variables);
            InBody in(scope);
            search_plpgsql(funcs, opt, f);
        }
    }
    pg_query_free_plpgsql_parse_result(r);
}

// CREATE FUNCTION / PROCEDURE: an untrusted language runs on the host;
// SQL and PL/pgSQL bodies are judged statement by statement, their DELETEs
// and UPDATEs by what they would reach (BEGIN ATOMIC bodies are in the
// tree, searched with the rest).
void create_function(const json& v, const Options& opt, Finding& f) {
    auto [lang, body] = function_language_and_body(v);
    BodyScope scope{
        v.value("is_procedure", false) ? "CREATE PROCEDURE" : "CREATE FUNCTION", {}, true};
    const json& name = v.value("funcname", json::array());
    if (!name.empty() && name.back().contains("String"))
        scope.variables.insert(name.back()["String"].value("sval", ""));
    for (const auto& p : v.value("parameters", json::array()))
        if (p.contains("FunctionParameter") && p["FunctionParameter"].contains("name"))
            scope.variables.insert(p["FunctionParameter"].value("name", ""));
    if (untrusted_language(lang)) {
        f.note(Class::HostAccess,
               "CREATE FUNCTION ... LANGUAGE " + lang + ": code run on the server's host");
    } else if (lang == "sql" && !body.empty()) {
        InBody in(scope);
        judge_body_statement(body, opt, f);
    } else if (lang == "plpgsql") {
        plpgsql_body(f.text, scope, opt, f);
    }
    scope.own_text = false;
    InBody in(scope);
    search(v, opt, f);
}

// DO: a PL/pgSQL block that runs now, judged as a function's body would be
// (migrations make their DDL idempotent with DO ... EXCEPTION WHEN
// duplicate_object); code in another language cannot be seen.
void do_block(const json& v, const Options& opt, Finding& f) {
    std::string lang = "plpgsql", body;
    for (const auto& a : v.value("args", json::array())) {
        const json& d = a.contains("DefElem") ? a["DefElem"] : json::object();
        if (!d.contains("arg") || !d["arg"].contains("String")) continue;
        std::string value = d["arg"]["String"].value("sval", "");
        if (d.value("defname", "") == "as") body = value;
        if (d.value("defname", "") == "language") lang = ascii_lower(value);
    }
    if (untrusted_language(lang)) {
        f.note(Class::HostAccess, "DO ... LANGUAGE " + lang + ": code run on the server's host");
        return;
    }
    if (lang != "plpgsql") {
        f.note(Class::OpaqueCode, "DO block in " + lang + ": its statements cannot be checked");
        return;
    }
    // PL/pgSQL's parser reads a function: the block as one's body, quoted
    // with a tag it does not hold.
    std::string tag = "$killswitch$";
    for (int n = 0; body.find(tag) != std::string::npos; ++n)
        tag = "$killswitch" + std::to_string(n) + "$";
    BodyScope scope{"DO block", {}, true};
    plpgsql_body(
        "CREATE FUNCTION killswitch_do() RETURNS void LANGUAGE plpgsql AS " + tag + body + tag,
        scope, opt, f);
}

// CREATE RULE: its actions run with each row the event touches, NEW and
// OLD standing for it.
void create_rule(const json& v, const Options& opt, Finding& f) {
    BodyScope scope{"CREATE RULE", {"new", "old"}, false};
    InBody in(scope);
    search(v, opt, f);
}

std::string drop_what(const json& v) {
    std::string t = v.value("removeType", "");
    if (t.rfind("OBJECT_", 0) == 0) t = t.substr(7);
    for (auto& ch : t) ch = ch == '_' ? ' ' : ch;
    return "DROP " + (t.empty() ? std::string("OBJECT") : t);
}

// Depth-first, until a destructive node is found.
void search(const json& node, const Options& opt, Finding& f) {
    if (is_destructive(f.cls)) return;
    if (node.is_array()) {
        for (const auto& n : node) search(n, opt, f);
        return;
    }
    if (!node.is_object()) return;
    for (auto it = node.begin(); it != node.end() && !is_destructive(f.cls); ++it) {
        const std::string& k = it.key();
        const json& v = it.value();
        if (k == "DropStmt") {
            // An index holds no rows: only constraints can depend on it.
            bool index = v.value("removeType", "") == "OBJECT_INDEX";
            f.note(index ? Class::SchemaChange : Class::Drop, drop_what(v));
        } else if (k == "DropdbStmt") {
            f.note(Class::Drop, "DROP DATABASE");
        } else if (k == "DropOwnedStmt") {
            f.note(Class::Drop, "DROP OWNED");
        } else if (k.rfind("Drop", 0) == 0 && k.size() > 8 &&
                   k.compare(k.size() - 4, 4, "Stmt") == 0) {
            f.note(Class::Drop, "DROP (" + k.substr(4, k.size() - 8) + ")");
        } else if (k == "TruncateStmt") {
            f.note(Class::Truncate, "TRUNCATE");
        } else if (k == "DeleteStmt") {
            every_row(v, Class::DeleteAll, "DELETE", opt, f);
        } else if (k == "UpdateStmt") {
            every_row(v, Class::UpdateAll, "UPDATE", opt, f);
        } else if (k == "AlterTableCmd") {
            alter_table_cmd(v, f);
        } else if (k == "AlterDomainStmt") {
            alter_domain(v, f);
        } else if (k == "DoStmt") {
            do_block(v, opt, f);
        } else if (k == "CreateFunctionStmt") {
            create_function(v, opt, f);  // its tree searched in its body's scope
            continue;
        } else if (k == "RuleStmt") {
            create_rule(v, opt, f);
            continue;
        } else {
            host_access(k, v, f);
        }
        search(v, opt, f);
    }
}

// The tables a top-level DROP TABLE or ALTER TABLE ... DROP COLUMN takes rows
// from, when that is all it destroys (CASCADE takes views and foreign keys
// with it, which hold no rows); empty when it is anything else.
std::vector<std::string> tables_losing_rows(const json& stmt) {
    std::vector<std::string> out;
    if (stmt.contains("DropStmt")) {
        const json& d = stmt["DropStmt"];
        if (d.value("removeType", "") != "OBJECT_TABLE" || !d.contains("objects")) return {};
        for (const auto& obj : d["objects"]) {
            const json& items =
                obj.contains("List") ? obj["List"].value("items", json::array()) : obj;
            std::string name;
            for (const auto& part : items) {
                if (!part.contains("String")) return {};
                if (!name.empty()) name += '.';
                name += quote_ident(part["String"].value("sval", ""));
            }
            if (name.empty()) return {};
            out.push_back(name);
        }
    } else if (stmt.contains("AlterTableStmt")) {
        const json& a = stmt["AlterTableStmt"];
        if (a.value("objtype", "") != "OBJECT_TABLE" || !a.contains("relation")) return {};
        for (const auto& cmd : a.value("cmds", json::array())) {
            // Any other destructive command makes it more than rows.
            std::string sub =
                cmd.contains("AlterTableCmd") ? cmd["AlterTableCmd"].value("subtype", "") : "";
            Finding f;
            if (cmd.contains("AlterTableCmd")) alter_table_cmd(cmd["AlterTableCmd"], f);
            if (is_destructive(f.cls) && sub != "AT_DropColumn" && sub != "AT_AlterColumnType")
                return {};
        }
        out.push_back(relation_name(a["relation"]));
    }
    return out;
}

// Every node search() reports is written with one of these keywords, and
// a keyword is never quoted, escaped or split (DROP, TRUNCATE, DELETE,
// UPDATE, ALTER ... and DO; COPY, LOAD, CREATE). A function's name may be quoted, never split: lo_
// and pg_ start every one host_function() knows; U& is how a name is escaped. Text without any of
// them, in any case and even inside a longer word, has nothing to report once it parses: its tree
// need not be read (most of a client's requests; reading the tree is most of the cost of
// classifying one).
bool may_report(std::string_view sql) {
    static constexpr std::string_view kWords[] = {"drop",   "truncate", "delete", "update",
                                                  "alter",  "do",       "copy",   "load",
                                                  "create", "lo_",      "pg_",    "u&"};
    for (size_t i = 0; i + 1 < sql.size(); ++i) {
        char c = static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i])));
        if (c != 'd' && c != 't' && c != 'u' && c != 'a' && c != 'c' && c != 'l' && c != 'p')
            continue;
        for (std::string_view w : kWords) {
            if (w[0] != c || sql.size() - i < w.size()) continue;
            size_t j = 1;
            while (j < w.size() && std::tolower(static_cast<unsigned char>(sql[i + j])) == w[j])
                ++j;
            if (j == w.size()) return true;
        }
    }
    return false;
}

}  // namespace

Classification classify_postgres_sql(std::string_view sql, const Options& options) {
    Classification out;
    std::string text(sql);
    PgQueryParseResult r = pg_query_parse(text.c_str());
    if (r.error) {
        out.statements.push_back(
            {text, Class::Unparseable, std::string("PostgreSQL parse error: ") + r.error->message});
        pg_query_free_parse_result(r);
        return out;
    }
    // Parsed, and nothing in it to report: one harmless entry for the whole
    // text (empty for comments only). Not for several statements (each is
    // its own entry) or a SET (the entry says which setting).
    // (Only a statement after the first has a stmt_location: the first's is
    // 0, which the tree leaves out.)
    bool empty = std::strstr(r.parse_tree, "\"stmts\"") == nullptr;
    bool several = std::strstr(r.parse_tree, "\"stmt_location\"") != nullptr;
    if (!may_report(text) && !several && first_word(text) != "SET") {
        pg_query_free_parse_result(r);
        if (!empty) out.statements.push_back({text, Class::Harmless, ""});
        return out;
    }
    json tree = json::parse(r.parse_tree, nullptr, false);
    pg_query_free_parse_result(r);
    if (tree.is_discarded() || !tree.contains("stmts")) {
        if (tree.is_object() && !tree.contains("stmts")) return out;  // empty query, comments only
        out.statements.push_back({text, Class::Unparseable, "parse tree not readable"});
        return out;
    }
    for (const auto& s : tree["stmts"]) {
        size_t loc = s.value("stmt_location", 0);
        size_t len = s.value("stmt_len", 0);
        std::string stmt_text =
            loc < text.size() ? text.substr(loc, len ? len : std::string::npos) : "";
        // What follows the previous statement's semicolon, spaces included.
        stmt_text.erase(0, std::min(stmt_text.size(), stmt_text.find_first_not_of(" \t\r\n")));
        Finding f;
        size_t lead = text.find_first_not_of(" \t\r\n", std::min(loc, text.size()));
        f.at = lead == std::string::npos ? text.size() : lead;
        f.text = stmt_text;
        if (s.contains("stmt")) search(s["stmt"], options, f);
        std::vector<std::string> tables;
        if (f.cls == Class::Drop || f.cls == Class::AlterDrop)
            tables = tables_losing_rows(s["stmt"]);
        Statement st{stmt_text, f.cls, f.detail, std::move(tables)};
        if (s.contains("stmt")) {
            const json& stmt = s["stmt"];
            // What runs now: the statement itself, or the one EXPLAIN ANALYZE
            // or PREPARE holds (the daemon cannot ask the server about those
            // and says so). Not a function's body: nothing runs it here.
            bool runs = stmt.contains("DeleteStmt") || stmt.contains("UpdateStmt") ||
                        stmt.contains("SelectStmt") || stmt.contains("InsertStmt") ||
                        stmt.contains("PrepareStmt") ||
                        (stmt.contains("ExplainStmt") && explain_analyze(stmt["ExplainStmt"]));
            // What a function, procedure or rule created now would reach
            // when it runs: asked now, as nothing else will be.
            bool creates_body = stmt.contains("CreateFunctionStmt") || stmt.contains("RuleStmt") ||
                                stmt.contains("DoStmt");
            if (f.cls == Class::Harmless && (runs || creates_body))
                st.reaches = std::move(f.reaches);
            if (stmt.contains("TransactionStmt")) {
                std::string kind = stmt["TransactionStmt"].value("kind", "");
                st.tx = kind == "TRANS_STMT_BEGIN" || kind == "TRANS_STMT_START"
                            ? Statement::Tx::Begin
                            : Statement::Tx::Other;
            }
            if (stmt.contains("VariableSetStmt"))
                // As the parser reads it: SET TIME ZONE is "timezone", SET
                // NAMES "client_encoding", a quoted or escaped name unquoted.
                st.setting = db::ascii_lower(stmt["VariableSetStmt"].value("name", ""));
            else if (stmt.contains("ConstraintsSetStmt"))
                st.setting = "constraints";
        }
        out.statements.push_back(std::move(st));
    }
    return out;
}

Classification classify_postgres_messages(std::span<const uint8_t> bytes, const Options& options) {
    Classification out;
    size_t off = 0;
    while (off < bytes.size()) {
        if (bytes.size() - off < 5) {
            out.statements.push_back({"", Class::Unparseable, "message header cut short"});
            break;
        }
        char type = static_cast<char>(bytes[off]);
        uint32_t len = (uint32_t{bytes[off + 1]} << 24) | (uint32_t{bytes[off + 2]} << 16) |
                       (uint32_t{bytes[off + 3]} << 8) | uint32_t{bytes[off + 4]};
        if (len < 4 || len > bytes.size() - off - 1) {
            out.statements.push_back(
                {"", Class::Unparseable,
                 std::string("message '") + type + "' cut short or malformed"});
            break;
        }
        const uint8_t* body = bytes.data() + off + 5;
        size_t body_len = len - 4;
        auto cstr = [&](size_t from, size_t* end) -> std::optional<std::string> {
            const void* nul =
                from <= body_len ? std::memchr(body + from, 0, body_len - from) : nullptr;
            if (!nul) return std::nullopt;
            *end = static_cast<size_t>(static_cast<const uint8_t*>(nul) - body) + 1;
            return std::string(reinterpret_cast<const char*>(body + from), *end - from - 1);
        };
        if (type == 'Q' || type == 'P') {
            size_t end = 0;
            std::optional<std::string> sql;
            if (type == 'Q') {
                sql = cstr(0, &end);
            } else if (auto name = cstr(0, &end)) {
                sql = cstr(end, &end);  // statement name, then the query
            }
            if (!sql) {
                out.statements.push_back(
                    {"", Class::Unparseable,
                     std::string("message '") + type + "' has no terminated query"});
            } else {
                auto c = classify_postgres_sql(*sql, options);
                out.statements.insert(out.statements.end(), c.statements.begin(),
                                      c.statements.end());
            }
        }
        off += 1 + len;
    }
    return out;
}

std::optional<std::string> bind_postgres_params(
    std::string_view sql, const std::vector<std::optional<std::string>>& values) {
    std::string text(sql);
    PgQueryParseResult r = pg_query_parse(text.c_str());
    if (r.error) {
        pg_query_free_parse_result(r);
        return std::nullopt;
    }
    auto tree = nlohmann::json::parse(r.parse_tree, nullptr, false);
    pg_query_free_parse_result(r);
    if (tree.is_discarded()) return std::nullopt;
    // Every $n of the statement, where it is.
    std::vector<std::pair<size_t, int>> refs;
    std::vector<const nlohmann::json*> todo{&tree};
    while (!todo.empty()) {
        const nlohmann::json* n = todo.back();
        todo.pop_back();
        if (n->is_object()) {
            if (auto it = n->find("ParamRef"); it != n->end() && it->is_object())
                refs.emplace_back(it->value("location", size_t{0}), it->value("number", 0));
            for (const auto& [k, v] : n->items()) todo.push_back(&v);
        } else if (n->is_array()) {
            for (const auto& v : *n) todo.push_back(&v);
        }
    }
    std::sort(refs.begin(), refs.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [at, number] : refs) {
        if (number < 1 || static_cast<size_t>(number) > values.size() || at >= text.size() ||
            text[at] != '$')
            return std::nullopt;
        size_t end = at + 1;
        while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
        if (text.substr(at + 1, end - at - 1) != std::to_string(number)) return std::nullopt;
        const auto& v = values[static_cast<size_t>(number) - 1];
        std::string literal = "NULL";
        if (v) {
            // An escape string constant: the same whatever
            // standard_conforming_strings says; untyped like the parameter.
            literal = "E'";
            for (char ch : *v) {
                if (ch == '\\' || ch == '\'') literal += ch;
                literal += ch;
            }
            literal += "'";
        }
        text.replace(at, end - at, literal);
    }
    return text;
}

}  // namespace ks::db
