// MySQL/MariaDB: COM_QUERY and COM_STMT_PREPARE text, tokenized the way the
// server reads it. There is no MySQL grammar in Debian, so statements are
// classified from their tokens, erring towards "destructive".
#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include "db_guard/classify.h"

namespace ks::db {
namespace {

struct Token {
    enum Kind { Word, Number, String, Ident, Punct } kind;
    std::string text;  // words upper-cased
    size_t begin = 0, end = 0;  // where it is in its statement's text
};

struct Tokenized {
    std::vector<std::vector<Token>> statements;
    std::vector<std::string> texts;
    std::string error;  // non-empty: the text cannot be read
};

Tokenized tokenize(std::string_view s) {
    Tokenized out;
    std::vector<Token> cur;
    size_t stmt_start = 0;
    auto end_statement = [&](size_t at) {
        if (!cur.empty()) {
            for (auto& t : cur) t.begin -= stmt_start, t.end -= stmt_start;
            out.statements.push_back(std::move(cur));
            out.texts.emplace_back(s.substr(stmt_start, at - stmt_start));
        }
        cur.clear();
        stmt_start = at + 1;
    };
    size_t i = 0;
    int exec_comment = 0;  // inside /*! ... */: the content is code
    while (i < s.size()) {
        char c = s[i];
        if (std::isspace(static_cast<unsigned char>(c))) {
            ++i;
        } else if (c == '#' ||
                   (s.substr(i, 2) == "--" &&
                    (i + 2 == s.size() || std::isspace(static_cast<unsigned char>(s[i + 2])) ||
                     std::iscntrl(static_cast<unsigned char>(s[i + 2]))))) {
            size_t e = s.find('\n', i);
            i = e == std::string_view::npos ? s.size() : e + 1;
        } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
            bool maria = i + 3 < s.size() && s[i + 2] == 'M' && s[i + 3] == '!';
            if ((i + 2 < s.size() && s[i + 2] == '!') || maria) {
                // Executable comment: /*!NNNNN code */ runs on the server,
                // /*M!NNNNN code */ on MariaDB.
                i += maria ? 4 : 3;
                while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
                ++exec_comment;
            } else {
                size_t e = s.find("*/", i + 2);
                if (e == std::string_view::npos) {
                    out.error = "comment not closed";
                    return out;
                }
                i = e + 2;
            }
        } else if (c == '*' && exec_comment > 0 && i + 1 < s.size() && s[i + 1] == '/') {
            --exec_comment;
            i += 2;
        } else if (c == '\'' || c == '"' || c == '`') {
            char q = c;
            std::string val;
            size_t j = i + 1;
            bool closed = false;
            while (j < s.size()) {
                if (s[j] == '\\' && q != '`' && j + 1 < s.size()) {
                    val += s[j + 1];
                    j += 2;
                } else if (s[j] == q) {
                    if (j + 1 < s.size() && s[j + 1] == q) {  // doubled quote
                        val += q;
                        j += 2;
                    } else {
                        closed = true;
                        ++j;
                        break;
                    }
                } else {
                    val += s[j++];
                }
            }
            if (!closed) {
                out.error = "quoted text not closed";
                return out;
            }
            cur.push_back({q == '`' ? Token::Ident : Token::String, val, i, j});
            i = j;
        } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$') {
            size_t j = i;
            while (j < s.size() &&
                   (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_' || s[j] == '$'))
                ++j;
            std::string w(s.substr(i, j - i));
            bool num = std::all_of(w.begin(), w.end(), [](char ch) {
                return std::isdigit(static_cast<unsigned char>(ch));
            });
            std::transform(w.begin(), w.end(), w.begin(),
                           [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
            cur.push_back({num ? Token::Number : Token::Word, w, i, j});
            i = j;
        } else if (c == ';') {
            end_statement(i);
            ++i;
        } else {
            cur.push_back({Token::Punct, std::string(1, c), i, i + 1});
            ++i;
        }
    }
    if (exec_comment > 0) {
        out.error = "executable comment not closed";
        return out;
    }
    end_statement(s.size());
    return out;
}

bool is_word(const Token& t, const char* w) { return t.kind == Token::Word && t.text == w; }

// Conservative: true only for conditions that hold for every row: TRUE, a
// non-zero number, literal = same literal, alone or as an operand of OR (AND
// binds tighter, so "OR 1=1 AND x" is not enough).
bool where_always_true(const std::vector<Token>& t, size_t from) {
    auto punct = [&](size_t k, const char* p) {
        return k < t.size() && t[k].kind == Token::Punct && t[k].text == p;
    };
    auto literal = [&](size_t k) {
        return k < t.size() &&
               (t[k].kind == Token::Number || t[k].kind == Token::String || is_word(t[k], "TRUE"));
    };
    auto comparison = [&](size_t k) {
        return punct(k, "=") || punct(k, "<") || punct(k, ">") || punct(k, "!");
    };
    // An always-true atom at k (parentheses allowed); the index after it.
    auto atom = [&](size_t k) -> std::optional<size_t> {
        size_t open = 0;
        while (punct(k, "(")) ++k, ++open;
        size_t next;
        if (literal(k) && punct(k + 1, "=") && literal(k + 2) && t[k].kind == t[k + 2].kind &&
            t[k].text == t[k + 2].text) {
            next = k + 3;
        } else if (literal(k) && !comparison(k + 1) &&
                   (is_word(t[k], "TRUE") || (t[k].kind == Token::Number && t[k].text != "0"))) {
            next = k + 1;
        } else {
            return std::nullopt;
        }
        for (; open > 0; --open) {
            if (!punct(next, ")")) return std::nullopt;
            ++next;
        }
        return next;
    };
    auto ends_operand = [&](size_t k) {
        return k >= t.size() || punct(k, ")") || is_word(t[k], "OR") || is_word(t[k], "LIMIT") ||
               is_word(t[k], "ORDER");
    };
    if (auto n = atom(from); n && ends_operand(*n)) return true;
    for (size_t k = from; k < t.size(); ++k)
        if (is_word(t[k], "OR"))
            if (auto n = atom(k + 1); n && ends_operand(*n)) return true;
    return false;
}

// The words a MySQL or MariaDB statement can start with. Anything else is not
// a statement the server would run, and is never taken as harmless.
bool known_statement(const std::string& w) {
    static const char* const kWords[] = {
        "SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE", "SHOW", "SET", "USE", "BEGIN", "START",
        "COMMIT", "ROLLBACK", "CREATE", "ALTER", "DROP", "TRUNCATE", "EXPLAIN", "DESCRIBE", "DESC",
        "WITH", "CALL", "LOCK", "UNLOCK", "GRANT", "REVOKE", "ANALYZE", "OPTIMIZE", "CHECK",
        "CHECKSUM", "REPAIR", "FLUSH", "KILL", "LOAD", "HANDLER", "DO", "PREPARE", "EXECUTE",
        "DEALLOCATE", "SAVEPOINT", "RELEASE", "XA", "RENAME", "VALUES", "TABLE", "HELP", "INSTALL",
        "UNINSTALL", "RESET", "PURGE", "CHANGE", "STOP", "SIGNAL", "RESIGNAL", "GET", "CACHE",
        "BINLOG", "SHUTDOWN", "CLONE", "IMPORT", "BACKUP",
        // the statements of a stored program's body, split at its ';'
        "END", "IF", "ELSE", "ELSEIF", "WHILE", "REPEAT", "LOOP", "DECLARE", "RETURN", "LEAVE",
        "ITERATE", "OPEN", "FETCH", "CLOSE", "UNTIL", "CASE", "WHEN", "FOR"};
    for (const char* k : kWords)
        if (w == k) return true;
    return false;
}

bool is_punct(const std::vector<Token>& t, size_t k, const char* p) {
    return k < t.size() && t[k].kind == Token::Punct && t[k].text == p;
}

bool is_name(const std::vector<Token>& t, size_t k) {
    return k < t.size() && (t[k].kind == Token::Word || t[k].kind == Token::Ident);
}

bool word_in(const std::vector<Token>& t, size_t k, std::initializer_list<const char*> words) {
    if (k >= t.size()) return false;
    for (const char* w : words)
        if (is_word(t[k], w)) return true;
    return false;
}

// Is the one table a DELETE or UPDATE (at k) writes to a migration tool's?
// Read as the kernel reads it (bpf/ks_sql.bpf.h, ks_sql_bk): modifiers, a
// name whose last part is on the list, [[AS] alias], then SET (UPDATE) or
// WHERE, USING, ORDER, LIMIT or the end (DELETE). A second table, a join or
// a '*' and it is not.
bool bookkeeping_target(const std::vector<Token>& t, size_t k, const Options& opt) {
    bool del = is_word(t[k], "DELETE");
    size_t j = k + 1;
    if (del) {
        while (word_in(t, j, {"LOW_PRIORITY", "QUICK", "IGNORE"})) ++j;
        if (j >= t.size() || !is_word(t[j], "FROM")) return false;
        ++j;
    }
    while (word_in(t, j, {"LOW_PRIORITY", "IGNORE"})) ++j;
    if (!is_name(t, j)) return false;
    while (is_punct(t, j + 1, ".") && is_name(t, j + 2)) j += 2;
    bool hit = is_bookkeeping_table(t[j].text, opt);
    ++j;
    // (the kernel also takes a ')' as the end of a DELETE)
    auto confirms = [&](size_t at) {
        return del ? at >= t.size() || is_punct(t, at, ")") ||
                         word_in(t, at, {"WHERE", "USING", "RETURNING", "ORDER", "LIMIT"})
                   : word_in(t, at, {"SET"});
    };
    if (!confirms(j) && j < t.size()) {
        if (is_word(t[j], "AS")) ++j;
        if (!is_name(t, j)) return false;
        ++j;  // the alias
    }
    return hit && confirms(j);
}

// The first of words at parenthesis depth 0 from `from` on (t.size(): none).
size_t top_level(const std::vector<Token>& t, size_t from,
                 std::initializer_list<const char*> words) {
    int depth = 0;
    for (size_t j = from; j < t.size(); ++j) {
        if (is_punct(t, j, "("))
            ++depth;
        else if (is_punct(t, j, ")"))
            --depth;
        else if (depth == 0 && word_in(t, j, words))
            return j;
    }
    return t.size();
}

// A name as written (a word keeps its case; a quoted name is unquoted).
std::string written(const std::vector<Token>& t, const std::string& text, size_t k) {
    return t[k].kind == Token::Ident ? t[k].text : text.substr(t[k].begin, t[k].end - t[k].begin);
}

// The text of tokens [from, to) as written.
std::string span_text(const std::vector<Token>& t, const std::string& text, size_t from,
                      size_t to) {
    return text.substr(t[from].begin, t[to - 1].end - t[from].begin);
}

// Inside a stored program the request creates (CREATE PROCEDURE, FUNCTION,
// TRIGGER, EVENT): what creates it, and the names of its variables in lower
// case (parameters, DECLAREs, NEW and OLD), which MySQL reads before a
// column of the same name.
struct BodyScope {
    std::string of;
    std::set<std::string> variables;
    // It has a loop (LOOP, WHILE, REPEAT, FOR): its statements come split at
    // each ';', so any of them may run in it, a variable naming another row
    // each round.
    bool loops = false;
};
thread_local const BodyScope* body_scope = nullptr;

// A variable at t[k] of a body: a name of its variables, unqualified and
// not a function's (NEW.col and OLD.col whole; another name before a '.'
// is a table's). The token after it.
std::optional<size_t> variable_at(const std::vector<Token>& t, size_t k, size_t end) {
    if (!body_scope || k >= end || !is_name(t, k) || (k > 0 && is_punct(t, k - 1, ".")) ||
        is_punct(t, k + 1, "(") || !body_scope->variables.count(ascii_lower(t[k].text)))
        return std::nullopt;
    if (!is_punct(t, k + 1, ".")) return k + 1;
    if (word_in(t, k, {"NEW", "OLD"}) && is_name(t, k + 2) && k + 2 < end) return k + 3;
    return std::nullopt;
}

// The columns a WHERE (tokens [from, to)) holds equal to a constant in a
// top-level AND: col = 5, t.col = 'a', ? = col. Nothing when an OR, XOR or
// || is at the top level. In a body (vars), those held equal to a variable
// too (col = p_id, col = NEW.id), with its name.
std::vector<std::string> eq_columns(
    const std::vector<Token>& t, size_t from, size_t to,
    std::vector<std::pair<std::string, std::string>>* vars = nullptr) {
    std::vector<std::string> out;
    auto constant = [&](size_t k, size_t end) -> std::optional<size_t> {
        if (k < end &&
            (t[k].kind == Token::Number || t[k].kind == Token::String || is_punct(t, k, "?")))
            return k + 1;
        if (k + 1 < end && is_punct(t, k, "-") && t[k + 1].kind == Token::Number) return k + 2;
        return std::nullopt;
    };
    auto column = [&](size_t k, size_t end, std::string& name) -> std::optional<size_t> {
        if (k >= end || !is_name(t, k) || variable_at(t, k, end)) return std::nullopt;
        while (k + 2 < end && is_punct(t, k + 1, ".") && is_name(t, k + 2)) k += 2;
        name = ascii_lower(t[k].text);
        return k + 1;
    };
    int depth = 0;
    size_t start = from;
    for (size_t j = from; j <= to; ++j) {
        bool cut = j == to;
        if (!cut && is_punct(t, j, "(")) ++depth;
        if (!cut && is_punct(t, j, ")")) --depth;
        if (!cut && depth == 0) {
            if (word_in(t, j, {"OR", "XOR"}) || is_punct(t, j, "|")) return {};
            cut = is_word(t[j], "AND") || (is_punct(t, j, "&") && is_punct(t, j + 1, "&"));
        }
        if (!cut) continue;
        std::string name;
        if (auto c = column(start, j, name); c && is_punct(t, *c, "=")) {
            if (auto e = constant(*c + 1, j); e && *e == j) out.push_back(name);
            if (auto v = variable_at(t, *c + 1, j); vars && v && *v == j)
                vars->emplace_back(name, ascii_lower(t[*c + 1].text));
        } else if (auto k = constant(start, j); k && is_punct(t, *k, "=")) {
            if (auto e = column(*k + 1, j, name); e && *e == j) out.push_back(name);
        } else if (auto v = variable_at(t, start, j); vars && v && is_punct(t, *v, "=")) {
            if (auto e = column(*v + 1, j, name); e && *e == j)
                vars->emplace_back(name, ascii_lower(t[start].text));
        }
        if (j < to && is_punct(t, j, "&")) ++j;
        start = j + 1;
    }
    return out;
}

// A DELETE or UPDATE (at k) of a body, whose WHERE is tokens [from, to):
// judged when the body is created, by what the probe counts now where the
// WHERE reads no value a call gives (a variable, a user variable @v); else
// only a unique key held equal to constants or variables can pin it.
void body_target(const std::vector<Token>& t, size_t k, size_t from, size_t to,
                 const std::string& text, Statement::Target& tg) {
    tg.body_of = body_scope->of;
    tg.body = span_text(t, text, k, t.size());
    if (body_scope->loops) {
        tg.eq_variables.clear();
        tg.unaskable =
            "the program has a loop it may run in: what all its rounds reach cannot be counted "
            "before they run";
        return;
    }
    std::set<std::string> names;
    for (size_t x = from; x < to; ++x) {
        if (is_punct(t, x, "@")) {
            while (is_punct(t, x + 1, "@")) ++x;
            names.insert("@" + (x + 1 < to ? ascii_lower(t[x + 1].text) : std::string()));
        } else if (variable_at(t, x, to)) {
            names.insert(ascii_lower(t[x].text));
        }
    }
    if (names.empty()) return;
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    tg.unaskable = "its WHERE reads values each call gives (" + list +
                   "): what a call reaches cannot be "
                   "counted before it";
}

// A single-table DELETE or UPDATE (at k) with a WHERE: the table, and what
// the relay's probe counts (databases.effect). Multi-table forms (DELETE t
// FROM ..., USING, a join or a list of tables) are not read: nullopt.
std::optional<Statement::Target> reach_target(const std::vector<Token>& t, size_t k,
                                              const std::string& text) {
    bool del = is_word(t[k], "DELETE");
    size_t j = k + 1;
    if (del) {
        while (word_in(t, j, {"LOW_PRIORITY", "QUICK", "IGNORE"})) ++j;
        if (j >= t.size() || !is_word(t[j], "FROM")) return std::nullopt;
        ++j;
    } else {
        while (word_in(t, j, {"LOW_PRIORITY", "IGNORE"})) ++j;
    }
    Statement::Target tg;
    size_t ref = j;
    if (!is_name(t, j)) return std::nullopt;
    tg.name = written(t, text, j);
    if (is_punct(t, j + 1, ".") && is_name(t, j + 2)) {
        tg.schema = tg.name;
        tg.name = written(t, text, j + 2);
        j += 2;
    }
    ++j;
    if (del && is_word(t[std::min(j, t.size() - 1)], "PARTITION") && is_punct(t, j + 1, "(")) {
        j += 2;
        while (j < t.size() && !is_punct(t, j, ")")) ++j;
        ++j;
    }
    const char* next = del ? "WHERE" : "SET";
    if (j < t.size() && !is_word(t[j], next)) {
        if (is_word(t[j], "AS")) ++j;
        if (!is_name(t, j) || is_word(t[j], next)) return std::nullopt;
        ++j;  // the alias
    }
    if (j >= t.size() || !is_word(t[j], next)) return std::nullopt;
    size_t ref_end = j;
    size_t where = del ? j : top_level(t, j + 1, {"WHERE"});
    if (where + 1 >= t.size()) return std::nullopt;
    size_t end = top_level(t, where + 1, {"ORDER", "LIMIT", "RETURNING"});
    if (end == where + 1) return std::nullopt;
    size_t limit = top_level(t, end, {"LIMIT"});
    if (limit + 1 < t.size() && t[limit + 1].kind == Token::Number &&
        !is_punct(t, limit + 2, ",") && t[limit + 1].text.size() < 18)
        tg.limit = std::stoll(t[limit + 1].text);
    tg.table = tg.schema.empty() ? tg.name : tg.schema + "." + tg.name;
    tg.from_where =
        span_text(t, text, ref, ref_end) + " WHERE " + span_text(t, text, where + 1, end);
    if (body_scope) {
        tg.eq_columns = eq_columns(t, where + 1, end, &tg.eq_variables);
        body_target(t, k, where + 1, end, text, tg);
    } else {
        tg.eq_columns = eq_columns(t, where + 1, end);
    }
    return tg;
}

// A DELETE or UPDATE of several tables (DELETE t1[, t2] FROM refs WHERE,
// DELETE FROM t1 USING refs WHERE, UPDATE refs SET ... WHERE): each table
// it deletes from or updates, read from refs by its name or alias, with
// what the probe counts: the rows of refs the WHERE holds, at least as
// many as any one table loses (a row joined twice is counted twice). No
// key pins such a statement. nullopt: a form not read here.
std::optional<std::vector<Statement::Target>> multi_table_targets(const std::vector<Token>& t,
                                                                  size_t k,
                                                                  const std::string& text) {
    bool del = is_word(t[k], "DELETE");
    size_t j = k + 1;
    while (word_in(t, j, {"LOW_PRIORITY", "QUICK", "IGNORE"})) ++j;
    size_t refs_from = 0, refs_to = 0;
    std::vector<std::string> names;  // the targets as written, lower case
    auto name_list = [&](size_t from, size_t to) {
        for (size_t x = from; x < to; ++x) {
            if (is_punct(t, x, ",") || is_punct(t, x, "*")) continue;
            if (is_punct(t, x, ".")) {
                if (is_punct(t, x + 1, "*")) continue;  // t.*: t
                if (!names.empty()) names.pop_back();   // db.t: the table's own name after
                continue;
            }
            if (!is_name(t, x)) return false;
            names.push_back(ascii_lower(written(t, text, x)));
        }
        return !names.empty();
    };
    size_t where = top_level(t, j, {"WHERE"});
    if (where + 1 >= t.size()) return std::nullopt;
    if (del) {
        if (is_word(t[std::min(j, t.size() - 1)], "FROM")) {
            size_t using_at = top_level(t, j + 1, {"USING"});
            if (using_at >= where || !name_list(j + 1, using_at)) return std::nullopt;
            refs_from = using_at + 1;
        } else {
            size_t from_at = top_level(t, j, {"FROM"});
            if (from_at >= where || !name_list(j, from_at)) return std::nullopt;
            refs_from = from_at + 1;
        }
        refs_to = where;
    } else {
        size_t set = top_level(t, j, {"SET"});
        if (set >= where) return std::nullopt;
        refs_from = j;
        refs_to = set;
        // The tables whose columns are set: t.col = ..., db.t.col = ...; an
        // unqualified column may be any table's.
        int depth = 0;
        bool unqualified = false;
        for (size_t x = set + 1; x < where; ++x) {
            if (is_punct(t, x, "(")) ++depth;
            if (is_punct(t, x, ")")) --depth;
            bool starts = x == set + 1 || (depth == 0 && is_punct(t, x - 1, ","));
            if (!starts || !is_name(t, x)) continue;
            if (is_punct(t, x + 1, ".") && is_name(t, x + 2) && is_punct(t, x + 3, "."))
                names.push_back(ascii_lower(written(t, text, x + 2)));
            else if (is_punct(t, x + 1, ".") && is_name(t, x + 2))
                names.push_back(ascii_lower(written(t, text, x)));
            else
                unqualified = true;
        }
        if (unqualified) names.push_back("*");
    }
    if (refs_from >= refs_to) return std::nullopt;
    // The tables of refs and their aliases: after its start, a comma or a
    // JOIN, at the top level: name[.name] [AS] [alias].
    static const std::initializer_list<const char*> kNotAlias = {
        "JOIN",  "INNER", "LEFT", "RIGHT", "CROSS",  "NATURAL",   "STRAIGHT_JOIN", "ON",  "USING",
        "WHERE", "SET",   "USE",  "FORCE", "IGNORE", "PARTITION", "OUTER",         "FULL"};
    struct Table {
        std::string schema, name;
    };
    std::map<std::string, Table> by_name;
    std::vector<Table> all;
    int depth = 0;
    for (size_t x = refs_from; x < refs_to; ++x) {
        if (is_punct(t, x, "(")) ++depth;
        if (is_punct(t, x, ")")) --depth;
        if (depth != 0) continue;
        bool starts = x == refs_from || is_punct(t, x - 1, ",") ||
                      word_in(t, x - 1, {"JOIN", "STRAIGHT_JOIN"});
        if (!starts || !is_name(t, x) || word_in(t, x, kNotAlias)) continue;
        Table tb{"", written(t, text, x)};
        size_t y = x + 1;
        if (is_punct(t, y, ".") && is_name(t, y + 1)) {
            tb.schema = tb.name;
            tb.name = written(t, text, y + 1);
            y += 2;
        }
        if (is_word(t[std::min(y, t.size() - 1)], "AS")) ++y;
        std::string alias;
        if (y < refs_to && is_name(t, y) && !word_in(t, y, kNotAlias))
            alias = ascii_lower(written(t, text, y));
        by_name[alias.empty() ? ascii_lower(tb.name) : alias] = tb;
        all.push_back(tb);
    }
    if (all.empty()) return std::nullopt;
    std::vector<Statement::Target> out;
    std::string from_where = span_text(t, text, refs_from, refs_to) + " WHERE " +
                             span_text(t, text, where + 1, t.size());
    std::set<std::string> seen;
    auto add = [&](const Table& tb) {
        std::string table = tb.schema.empty() ? tb.name : tb.schema + "." + tb.name;
        if (!seen.insert(ascii_lower(table)).second) return;
        Statement::Target tg;
        tg.schema = tb.schema;
        tg.name = tb.name;
        tg.table = table;
        tg.from_where = from_where;
        if (body_scope) body_target(t, k, where + 1, t.size(), text, tg);
        out.push_back(std::move(tg));
    };
    for (const auto& n : names) {
        if (n == "*") {
            for (const auto& tb : all) add(tb);
            continue;
        }
        auto it = by_name.find(n);
        if (it == by_name.end()) return std::nullopt;  // a name refs does not hold
        add(it->second);
    }
    if (out.empty() || out.size() > 8) return std::nullopt;
    return out;
}

// ALTER ...: each DROP, read as the kernel reads it (ks_alter_drop_reason):
// a constraint, an index or key, or a column's DEFAULT right after ALTER
// [COLUMN] name loses no row; anything else (a column, a partition) does.
void alter_drops(const std::vector<Token>& t, size_t k, Statement& st) {
    int col = 4;  // 1: after ALTER, 2: after COLUMN, 3: after its name; 4: DOMAIN may follow
    std::optional<size_t> pending;
    bool pending_col = false;
    for (size_t j = k + 1; j <= t.size(); ++j) {
        if (pending && !is_punct(t, j, "(")) {
            bool schema =
                word_in(t, j, {"CONSTRAINT", "INDEX", "KEY", "FOREIGN", "PRIMARY", "CHECK"}) ||
                (pending_col && word_in(t, j, {"DEFAULT"}));
            std::string what = j < t.size() ? " " + t[j].text : std::string();
            if (!schema) {
                st.cls = Class::AlterDrop;
                st.detail = "ALTER ... DROP" + what;
                return;
            }
            if (st.cls == Class::Harmless) {
                st.cls = Class::SchemaChange;
                st.detail = "ALTER ... DROP" + what;
            }
            pending.reset();
        }
        if (j == t.size()) break;
        int was = col;
        col = 0;
        if (is_word(t[j], "DROP")) {
            pending = j;
            pending_col = was == 3;
        } else if (is_word(t[j], "ALTER")) {
            col = 1;
        } else if ((was == 1 && is_word(t[j], "COLUMN")) || (was == 4 && is_word(t[j], "DOMAIN"))) {
            col = 2;
        } else if ((was == 1 || was == 2) && is_name(t, j)) {
            col = 3;
        }
    }
}

// The server reads, writes or runs something on its host, or loads code:
// SELECT ... INTO OUTFILE/DUMPFILE and LOAD_FILE() anywhere in a statement,
// LOAD DATA/XML INFILE of a server file (LOCAL reads the client's),
// INSTALL PLUGIN/SONAME, SET GLOBAL / PERSIST / @@global.
void host_access(const std::vector<Token>& t, size_t k, Statement& st) {
    auto found = [&](std::string why) {
        st.cls = Class::HostAccess;
        st.detail = std::move(why);
    };
    const std::string& first = t[k].text;
    for (size_t j = k; j < t.size(); ++j) {
        if (is_word(t[j], "INTO") && word_in(t, j + 1, {"OUTFILE", "DUMPFILE"}))
            return found("INTO " + t[j + 1].text + ": a file written on the server's host");
        if (is_name(t, j) && is_punct(t, j + 1, "(")) {
            if (ascii_upper(t[j].text) == "LOAD_FILE")
                return found("LOAD_FILE(): a file of the server's host");
        }
    }
    if (first == "LOAD" && word_in(t, k + 1, {"DATA", "XML"})) {
        for (size_t j = k + 2; j < t.size() && !is_word(t[j], "INFILE"); ++j)
            if (is_word(t[j], "LOCAL")) return;  // the client's file
        return found("LOAD " + t[k + 1].text + " INFILE: a file of the server's host");
    }
    if (first == "INSTALL") return found("INSTALL: code loaded into the server");
    if (first == "SET")
        for (size_t j = k + 1; j < t.size(); ++j)
            if (word_in(t, j, {"GLOBAL", "PERSIST", "PERSIST_ONLY"}))
                return found("SET " + t[j].text + ": the server's configuration");
}

// Statement i of a request, when it creates a stored program: what it
// creates and the names of its variables: its parameters, NEW and OLD of a
// trigger, and every name DECLAREd (or a FOR loop's) in the statements from
// it on.
std::optional<BodyScope> stored_program(const std::vector<std::vector<Token>>& statements,
                                        size_t i) {
    const auto& t = statements[i];
    if (t.empty() || !is_word(t[0], "CREATE")) return std::nullopt;
    // CREATE [OR REPLACE] [DEFINER = user | CURRENT_USER()] [AGGREGATE] ...
    size_t k = 1;
    for (int level = 0; k < t.size() && k < 24; ++k) {
        if (is_punct(t, k, "(")) ++level;
        if (is_punct(t, k, ")")) --level;
        if (level == 0 &&
            word_in(t, k,
                    {"PROCEDURE", "FUNCTION", "TRIGGER", "EVENT", "TABLE", "VIEW", "INDEX",
                     "DATABASE", "SCHEMA", "USER", "ROLE", "SERVER", "SEQUENCE"}))
            break;
    }
    if (!word_in(t, k, {"PROCEDURE", "FUNCTION", "TRIGGER", "EVENT"})) return std::nullopt;
    BodyScope scope{"CREATE " + t[k].text, {}};
    if (is_word(t[k], "TRIGGER")) scope.variables = {"new", "old"};
    size_t j = k + 1;
    while (is_name(t, j) && is_punct(t, j + 1, ".")) j += 2;  // db.name
    if (is_word(t[k], "PROCEDURE") || is_word(t[k], "FUNCTION")) {
        if (!is_punct(t, j + 1, "(")) return scope;
        int level = 0;
        for (size_t x = j + 1; x < t.size(); ++x) {
            if (is_punct(t, x, "(")) ++level;
            if (is_punct(t, x, ")") && --level == 0) break;
            bool starts = level == 1 && (is_punct(t, x, "(") || is_punct(t, x, ","));
            if (!starts) continue;
            size_t n = x + 1;
            if (word_in(t, n, {"IN", "OUT", "INOUT"}) && is_name(t, n + 1)) ++n;
            if (is_name(t, n)) scope.variables.insert(ascii_lower(t[n].text));
        }
    }
    for (size_t s = i; s < statements.size(); ++s) {
        const auto& b = statements[s];
        for (size_t x = 0; x + 1 < b.size(); ++x) {
            bool declare =
                is_word(b[x], "DECLARE") && !word_in(b, x + 1, {"CONTINUE", "EXIT", "UNDO"});
            bool loop = is_word(b[x], "FOR") && is_word(b[std::min(x + 2, b.size() - 1)], "IN");
            if (loop || word_in(b, x, {"LOOP", "WHILE", "REPEAT"})) scope.loops = true;
            if (!declare && !loop) continue;
            for (size_t n = x + 1; is_name(b, n); n += 2) {
                scope.variables.insert(ascii_lower(b[n].text));
                if (!declare || !is_punct(b, n + 1, ",")) break;
            }
        }
    }
    return scope;
}

Classification classify_mysql_sql_depth(std::string_view sql, int depth, const Options& opt);
Statement classify_statement(const std::vector<Token>& t, std::string text, int depth,
                             const Options& opt);

// A stored program's body (CREATE PROCEDURE ... BEGIN, CREATE TRIGGER ... FOR
// EACH ROW, CREATE EVENT ... DO, IF ... THEN, ELSE; in a CREATE, a routine's
// one statement after its ')' or its characteristics: COMMENT 'x',
// [NOT] DETERMINISTIC, MODIFIES SQL DATA, SQL SECURITY DEFINER): a
// statement starts after these, as the kernel reads it; what it does is the
// whole statement's finding, so a body that drops a table is refused when
// it is created, not when it runs (maybe by a trigger nobody guards).
void stored_program_body(const std::vector<Token>& t, size_t k, const std::string& text, int depth,
                         const Options& opt, Statement& st) {
    if (depth > 4) return;
    bool create = is_word(t[k], "CREATE");
    for (size_t j = k + 1; j < t.size(); ++j) {
        bool starts =
            word_in(t, j - 1, {"BEGIN", "ROW", "DO", "THEN", "ELSE"}) ||
            (create && (is_punct(t, j - 1, ")") || t[j - 1].kind == Token::String ||
                        word_in(t, j - 1, {"SQL", "DATA", "DEFINER", "INVOKER", "DETERMINISTIC"})));
        if (!starts || !word_in(t, j, {"DROP", "TRUNCATE", "DELETE", "UPDATE"})) continue;
        std::vector<Token> inner(t.begin() + static_cast<long>(j), t.end());
        Statement in = classify_statement(inner, text, depth + 1, opt);
        // What its DELETE or UPDATE would reach: asked when it is created
        // (a body's, whatever the CREATE's header hid from stored_program).
        if (in.cls == Class::Harmless)
            for (auto& tg : in.reaches) {
                if (tg.body_of.empty()) {
                    tg.body_of = "CREATE";
                    tg.body = span_text(t, text, j, t.size());
                }
                st.reaches.push_back(std::move(tg));
            }
        if (is_destructive(in.cls) || in.cls == Class::SchemaChange ||
            in.cls == Class::Bookkeeping) {
            st.cls = in.cls;
            st.detail = "a stored program whose body runs " + in.detail;
            if (is_destructive(in.cls)) return;
        }
    }
}

Statement classify_statement(const std::vector<Token>& t, std::string text, int depth,
                             const Options& opt) {
    Statement st{std::move(text), Class::Harmless, ""};
    size_t k = 0;
    while (k < t.size() && t[k].kind == Token::Punct && t[k].text == "(") ++k;
    // A stored program's label: name: BEGIN | LOOP | WHILE | REPEAT | FOR.
    if (is_name(t, k) && is_punct(t, k + 1, ":") &&
        word_in(t, k + 2, {"BEGIN", "LOOP", "WHILE", "REPEAT", "FOR"}))
        k += 2;
    if (k >= t.size()) return st;
    if (t[k].kind != Token::Word || !known_statement(t[k].text)) {
        st.cls = Class::Unparseable;
        st.detail = "not a statement MySQL knows: " + t[k].text;
        return st;
    }
    if (is_word(t[k], "WITH")) {
        // WITH cte AS (...) [, ...] then the statement itself
        int level = 0;
        for (size_t j = k + 1; j < t.size(); ++j) {
            if (is_punct(t, j, "(")) ++level;
            if (is_punct(t, j, ")")) --level;
            if (level == 0 &&
                word_in(t, j,
                        {"SELECT", "UPDATE", "DELETE", "INSERT", "REPLACE", "TABLE", "VALUES"})) {
                k = j;
                break;
            }
        }
    }
    const std::string& first = t[k].text;
    if (first == "PREPARE") {
        // PREPARE name FROM 'text': the text runs at EXECUTE.
        for (size_t j = k + 1; j + 1 < t.size(); ++j)
            if (is_word(t[j], "FROM") && t[j + 1].kind == Token::String) {
                if (depth > 4) {
                    st.cls = Class::Unparseable;
                    st.detail = "nested too deep";
                    return st;
                }
                auto inner = classify_mysql_sql_depth(t[j + 1].text, depth + 1, opt);
                st.cls = inner.verdict();
                if (st.cls != Class::Harmless)
                    st.detail = "PREPARE of: " + inner.statements[0].detail;
                return st;
            }
    }
    if (first == "DROP") {
        // DROP INDEX i ON t: an index holds no rows
        st.cls = word_in(t, k + 1, {"INDEX"}) ? Class::SchemaChange : Class::Drop;
        st.detail = "DROP" + (k + 1 < t.size() ? " " + t[k + 1].text : std::string());
    } else if (first == "TRUNCATE") {
        st.cls = Class::Truncate;
        st.detail = "TRUNCATE";
    } else if (first == "DELETE" || first == "UPDATE") {
        // The statement's own WHERE, not a subquery's (UPDATE t SET a =
        // (SELECT ... WHERE ...) reaches every row).
        size_t top = top_level(t, k + 1, {"WHERE"});
        auto where = top < t.size() ? std::optional<size_t>(top) : std::nullopt;
        std::string how;
        if (!where)
            how = " without WHERE";
        else if (where_always_true(t, *where + 1))
            how = " with an always-true WHERE";
        if (!how.empty() && bookkeeping_target(t, k, opt)) {
            st.cls = Class::Bookkeeping;
            st.detail = first + how + " of a migration tool's table";
        } else if (!how.empty()) {
            st.cls = first == "DELETE" ? Class::DeleteAll : Class::UpdateAll;
            st.detail = first + how;
        } else if (auto tg = reach_target(t, k, st.text)) {
            st.reaches.push_back(std::move(*tg));
        } else if (auto several = multi_table_targets(t, k, st.text)) {
            st.reaches = std::move(*several);
        } else {
            // A form neither read can say what it reaches: not passed
            // for its WHERE.
            st.cls = Class::Unparseable;
            st.detail = first + " of a form whose tables cannot be read";
        }
    } else if (first == "ALTER") {
        alter_drops(t, k, st);
    }
    if (st.cls == Class::Harmless) host_access(t, k, st);
    if (st.cls == Class::Harmless) stored_program_body(t, k, st.text, depth, opt, st);
    return st;
}

Classification classify_mysql_sql_depth(std::string_view sql, int depth, const Options& opt) {
    Classification out;
    Tokenized tk = tokenize(sql);
    if (!tk.error.empty()) {
        out.statements.push_back({std::string(sql), Class::Unparseable, tk.error});
        return out;
    }
    // A stored program's body, split at its ';': every statement from the
    // CREATE on is read in its scope (one after its END too: judged as a
    // body's, it is asked about the same way or refused).
    std::optional<BodyScope> scope;
    size_t created = 0;
    const BodyScope* outer = body_scope;
    for (size_t i = 0; i < tk.statements.size(); ++i) {
        if (!scope && depth == 0) {
            scope = stored_program(tk.statements, i);
            created = i;
            if (scope) body_scope = &*scope;
        }
        out.statements.push_back(classify_statement(tk.statements[i], tk.texts[i], depth, opt));
        out.statements.back().body_part = scope && i > created;
    }
    body_scope = outer;
    // What the body's statements do is the CREATE's: the statement refused,
    // and named, is the one the client wrote.
    for (size_t i = created + 1; scope && i < out.statements.size(); ++i) {
        Statement& part = out.statements[i];
        Statement& create = out.statements[created];
        for (auto& tg : part.reaches) create.reaches.push_back(std::move(tg));
        part.reaches.clear();
        if (part.cls != Class::Harmless &&
            (create.cls == Class::Harmless ||
             (is_destructive(part.cls) && !is_destructive(create.cls)))) {
            create.cls = part.cls;
            create.detail = "a stored program whose body runs " + part.detail;
        }
        part.cls = Class::Harmless;
        part.detail.clear();
    }
    return out;
}

}  // namespace

std::optional<std::string> bind_mysql_params(std::string_view sql,
                                             const std::vector<std::string>& literals) {
    Tokenized tk = tokenize(sql);
    if (!tk.error.empty() || tk.statements.size() != 1) return std::nullopt;
    std::vector<size_t> marks;
    for (const auto& t : tk.statements[0])
        if (t.kind == Token::Punct && t.text == "?") marks.push_back(t.begin);
    if (marks.size() != literals.size()) return std::nullopt;
    // Offsets are the statement's own, which starts where the text does.
    std::string text(tk.texts[0]);
    for (size_t i = marks.size(); i-- > 0;) text.replace(marks[i], 1, literals[i]);
    return text;
}

Classification classify_mysql_sql(std::string_view sql, const Options& options) {
    return classify_mysql_sql_depth(sql, 0, options);
}

Classification classify_mysql_packets(std::span<const uint8_t> bytes, const Options& options) {
    Classification out;
    size_t off = 0;
    while (off < bytes.size()) {
        if (bytes.size() - off < 4) {
            out.statements.push_back({"", Class::Unparseable, "packet header cut short"});
            break;
        }
        size_t len =
            size_t{bytes[off]} | (size_t{bytes[off + 1]} << 8) | (size_t{bytes[off + 2]} << 16);
        if (len > bytes.size() - off - 4 || len == 0xffffff) {
            // A statement of 16 MiB or more spans packets; unseen parts are unknown.
            out.statements.push_back({"", Class::Unparseable, "packet cut short or split"});
            break;
        }
        const uint8_t* p = bytes.data() + off + 4;
        if (len >= 1 && (p[0] == 0x03 || p[0] == 0x16)) {  // COM_QUERY, COM_STMT_PREPARE
            auto c = classify_mysql_sql(
                std::string_view(reinterpret_cast<const char*>(p + 1), len - 1), options);
            out.statements.insert(out.statements.end(), c.statements.begin(), c.statements.end());
        }
        off += 4 + len;
    }
    return out;
}

}  // namespace ks::db
