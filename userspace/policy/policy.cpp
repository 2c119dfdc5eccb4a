#include "policy/policy.h"

#include <dirent.h>
#include <grp.h>
#include <killswitch/abi/events.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <span>
#include <sstream>
#include <type_traits>
#include <utility>

#include "abi/decode.h"
#include "common/digest.h"
#include "common/sysfs.h"
#include "outputs/outputs.h"
#include "policy/db_endpoints.h"

namespace ks::policy {
namespace {

constexpr std::string_view kBuiltinSource = "<built-in>";

constexpr std::array<std::string_view, 10> kTopKeys = {
    "version",   "mode",     "agents", "guard",     "protect",
    "processes", "sessions", "audit",  "databases", "outputs"};
constexpr std::array<std::string_view, 3> kProcessesKeys = {"reachable", "deputies",
                                                            "multiplexers"};
constexpr std::array<std::string_view, 8> kSessionsKeys = {
    "escalate_after",  "escalate_within", "escalate_to", "on_contained",
    "self_protection", "frozen_timeout",  "frozen_end",  "wrapper_exit"};
constexpr int kMaxEscalateAfter = 1000;
constexpr int kMaxFrozenTimeout = 7 * 86400;
constexpr std::array<std::string_view, 16> kDatabasesKeys = {
    "endpoints",     "action", "session",  "unparseable",  "encrypted", "statement_max",
    "client_probes", "mode",   "relay",    "volume",       "refuse",    "bookkeeping_tables",
    "check_rows",    "effect", "discover", "relay_poll_us"};
constexpr int kMaxRelayPollUs = 10'000;
constexpr std::array<std::string_view, 3> kVolumeKeys = {"keys", "deletes", "within"};
constexpr std::array<std::string_view, 4> kEffectKeys = {"check", "percent", "min_rows",
                                                         "max_rows"};
constexpr int kMaxVolume = 100'000'000;
constexpr size_t kMaxBookkeepingTables = 200;  // the kernel's map holds KS_DB_BOOKKEEPING_MAX
constexpr int kMaxStatementMax = KS_DB_WINDOW;
constexpr std::array<std::string_view, 2> kAgentsKeys = {"names", "hold_at_exec"};
constexpr std::array<std::string_view, 2> kGuardKeys = {"uids", "cgroups"};
constexpr std::array<std::string_view, 11> kProtectKeys = {
    "paths",        "action",       "session", "unresolved", "io_uring", "block_devices",
    "hold_timeout", "libc_uprobes", "mode",    "system",     "min_free"};
constexpr std::array<std::string_view, 4> kProtectEntryKeys = {"path", "action", "mode", "session"};
constexpr int kMaxHoldTimeout = 86400;
constexpr std::array<std::string_view, 3> kAuditKeys = {"log", "mode", "group"};

constexpr std::string_view kNullTag = "tag:yaml.org,2002:null";
constexpr std::string_view kBoolTag = "tag:yaml.org,2002:bool";
constexpr std::string_view kIntTag = "tag:yaml.org,2002:int";
constexpr std::string_view kStrTag = "tag:yaml.org,2002:str";

// (uid_t)-1 means "no user" to the kernel; every real uid is below it.
constexpr uint64_t kUidLimit = 4294967295ULL;

// Where cgroup v2 is usually mounted; paths under it are a likely mistake.
constexpr std::string_view kCgroupMount = "/sys/fs/cgroup";

struct Pos {
    int line = 1;
    int column = 1;
};

std::string format_diagnostic(const Diagnostic& d, std::string_view severity) {
    std::string out = d.file;
    if (d.line > 0) out += ":" + std::to_string(d.line) + ":" + std::to_string(d.column);
    out += ": ";
    out += severity;
    out += ": ";
    out += d.message;
    return out;
}

std::string join(std::span<const std::string_view> items, std::string_view sep) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += sep;
        out += item;
    }
    return out;
}

// 'text' with control characters escaped, for messages.
std::string quote(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\0') {
            out += "\\0";
        } else if (u < 0x20 || u == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\x%02x", u);
            out += buf;
        } else {
            out += c;
        }
    }
    out += "'";
    return out;
}

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Collapses runs of '/' and drops a trailing '/' (but keeps "/").
std::string normalize_slashes(std::string_view path) {
    std::string out;
    out.reserve(path.size());
    for (char c : path) {
        if (c == '/' && !out.empty() && out.back() == '/') continue;
        out += c;
    }
    if (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
}

// True when a component of the path is "." or "..".
bool has_dot_component(std::string_view path) {
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        auto comp = path.substr(start, end - start);
        if (comp == "." || comp == "..") return true;
        start = end + 1;
    }
    return false;
}

// Scalars are told apart by how they were written: plain (`1`, `true`) can be
// numbers and booleans, quoted (`"1"`) are always strings.
enum class Kind { Null, Plain, Quoted, Mapping, Sequence };

Kind kind_of(const YAML::Node& n) {
    if (n.IsMap()) return Kind::Mapping;
    if (n.IsSequence()) return Kind::Sequence;
    if (!n.IsScalar() || n.Tag() == kNullTag) return Kind::Null;
    if (n.Tag() == "!" || n.Tag() == kStrTag) return Kind::Quoted;
    return Kind::Plain;
}

// A scalar's text; empty for anything else (a list, a mapping, null).
std::string text_of(const YAML::Node& n) {
    Kind k = kind_of(n);
    return k == Kind::Plain || k == Kind::Quoted ? n.Scalar() : std::string();
}

std::string describe(const YAML::Node& n) {
    switch (kind_of(n)) {
        case Kind::Null:
            return "no value";
        case Kind::Mapping:
            return "a mapping";
        case Kind::Sequence:
            return "a list";
        case Kind::Quoted:
            return "the string " + quote(n.Scalar());
        case Kind::Plain:
            break;
    }
    return quote(n.Scalar());
}

// Records where each document starts; the rest of the events are ignored.
class DocumentStarts : public YAML::EventHandler {
  public:
    void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}

    std::vector<YAML::Mark> marks;
};

class Parser {
  public:
    // extend: a drop-in file (policy.d): its lists add to the ones before
    // it instead of replacing them.
    Parser(const std::string& text, std::string source, bool extend = false)
        : text_(text), source_(std::move(source)), extend_(extend) {}

    LoadResult run(Policy base);

  private:
    struct Entry {
        std::string key;
        Pos key_pos;
        YAML::Node value;
        Pos value_pos;
    };

    struct Item {
        YAML::Node node;
        Pos pos;
    };

    void error(Pos pos, std::string message) {
        result_.errors.push_back({source_, pos.line, pos.column, std::move(message)});
    }
    void warning(Pos pos, std::string message) {
        result_.warnings.push_back({source_, pos.line, pos.column, std::move(message)});
    }

    Pos pos_of_mark(const YAML::Mark& m) const {
        if (m.is_null()) return {};
        return {std::max(m.line, 0) + 1, std::max(m.column, 0) + 1};
    }

    // Where an earlier occurrence was, seen from a later one.
    static std::string where(const Pos& first, const Pos& here) {
        std::string out = "line " + std::to_string(first.line);
        if (first.line == here.line) out += ", column " + std::to_string(first.column);
        return out;
    }

    bool explicit_null_at(const YAML::Mark& m) const;
    Pos pos_of(const YAML::Node& n) const;
    std::string syntax_message(const YAML::Exception& e) const;
    std::optional<YAML::Node> load_single_document();

    std::optional<std::vector<Entry>> entries(const YAML::Node& node, Pos pos,
                                              std::string_view section,
                                              std::span<const std::string_view> allowed);
    std::optional<std::vector<Item>> list(const Entry& e, std::string_view name);
    std::optional<bool> boolean(const Entry& e, std::string_view name);
    std::optional<std::string> item_string(const Item& item, std::string_view name);
    std::optional<std::string> absolute_path(const YAML::Node& n, Pos pos, std::string_view name,
                                             std::string_view what);

    void parse_version(const Entry& e, Policy& p);
    void parse_mode_key(const Entry& e, Policy& p);
    std::optional<Mode> mode_value(const Entry& e, std::string_view name);
    void parse_agents(const Entry& e, Policy& p);
    // A list of program names (basenames, compared on their first 15 bytes).
    std::optional<std::vector<std::string>> program_names(const Entry& e, const std::string& key,
                                                          const std::string& what);
    void parse_processes(const Entry& e, Policy& p);
    void parse_deputies(const Entry& e, Policy& p);
    void parse_guard(const Entry& e, Policy& p);
    void parse_uids(const Entry& e, Policy& p);
    void parse_cgroups(const Entry& e, Policy& p);
    void parse_protect(const Entry& e, Policy& p);
    void parse_protect_paths(const Entry& e, Policy& p);
    void parse_protect_system(const Entry& e, Policy& p);
    std::optional<Action> action_value(const Entry& e, std::string_view name);
    void parse_audit(const Entry& e, Policy& p);
    void parse_outputs(const Entry& e, Policy& p);
    void parse_audit_mode(const Entry& e, Policy& p);
    void parse_audit_group(const Entry& e, Policy& p);
    void parse_sessions(const Entry& e, Policy& p);
    void parse_databases(const Entry& e, Policy& p);
    void parse_db_refuse(const Entry& e, Policy& p);
    void parse_db_bookkeeping(const Entry& e, Policy& p);
    std::optional<bool> refuse_or_allow(const Entry& e, std::string_view name);
    std::optional<int> bounded_int(const Entry& e, std::string_view name, std::string_view unit,
                                   int lo, int hi);
    std::optional<SessionAction> session_value(const Entry& e, std::string_view name);

    // A list key: replaces the list before it, or in a drop-in file adds the
    // entries it does not have yet.
    template <class T>
    void set_list(std::vector<T>& dst, std::vector<T> src) const {
        if (!extend_) {
            dst = std::move(src);
            return;
        }
        for (auto& v : src)
            if (std::find(dst.begin(), dst.end(), v) == dst.end()) dst.push_back(std::move(v));
    }
    template <class K, class V>
    void set_map(std::map<K, V>& dst, std::map<K, V> src) const {
        if (!extend_) {
            dst = std::move(src);
            return;
        }
        for (auto& [k, v] : src) dst.insert_or_assign(k, std::move(v));
    }

    const std::string& text_;
    std::string source_;
    bool extend_ = false;
    LoadResult result_;
};

bool Parser::explicit_null_at(const YAML::Mark& m) const {
    if (m.is_null() || m.pos < 0 || static_cast<size_t>(m.pos) >= text_.size()) return false;
    std::string_view rest(text_);
    rest.remove_prefix(static_cast<size_t>(m.pos));
    for (std::string_view word : {"~", "null", "Null", "NULL", "!!null"}) {
        if (!rest.starts_with(word)) continue;
        // The whole token, not the start of a key such as `nullable:`.
        if (rest.size() == word.size() ||
            std::string_view(" \t\r\n,]}#").find(rest[word.size()]) != std::string_view::npos)
            return true;
    }
    return false;
}

// yaml-cpp marks an empty value (`- ` with nothing after it) at the token that
// follows it, often on a later line. For those, walk back to the '-' that
// introduced the entry.
Pos Parser::pos_of(const YAML::Node& n) const {
    YAML::Mark m = n.Mark();
    if (kind_of(n) != Kind::Null || explicit_null_at(m) || m.is_null() || m.pos < 0)
        return pos_of_mark(m);
    size_t end = std::min(static_cast<size_t>(m.pos), text_.size());
    while (end > 0) {
        size_t line_start = text_.rfind('\n', end - 1);
        line_start = line_start == std::string::npos ? 0 : line_start + 1;
        std::string_view line(text_.data() + line_start, end - line_start);
        // Drop a comment: '#' at the start or after a blank.
        for (size_t i = 0; i < line.size(); ++i) {
            if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
                line = line.substr(0, i);
                break;
            }
        }
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
            line.remove_suffix(1);
        if (!line.empty()) {
            if (line.back() != '-') break;
            int line_no = static_cast<int>(std::count(
                              text_.begin(), text_.begin() + static_cast<long>(line_start), '\n')) +
                          1;
            return {line_no, static_cast<int>(line.size())};
        }
        if (line_start == 0) break;
        end = line_start - 1;  // the '\n' that ends the previous line
    }
    return pos_of_mark(m);
}

std::string Parser::syntax_message(const YAML::Exception& e) const {
    std::string msg = "YAML syntax error: " + e.msg;
    if (e.mark.is_null() || e.mark.line < 0) return msg;
    // The text of the line the error is on: yaml-cpp's messages about tabs are
    // obscure, so say it plainly.
    size_t start = 0;
    for (int i = 0; i < e.mark.line && start != std::string::npos; ++i) {
        start = text_.find('\n', start);
        if (start != std::string::npos) ++start;
    }
    if (start == std::string::npos || start >= text_.size()) return msg;
    size_t indent_end = text_.find_first_not_of(" \t", start);
    if (indent_end == std::string::npos) indent_end = text_.size();
    if (text_.find('\t', start) < indent_end)
        msg += " (this line is indented with a tab; YAML indentation must use spaces)";
    return msg;
}

// The key/value pairs of a mapping, after reporting keys that are unknown,
// repeated or not strings. A section written with no value (`guard:`) is an
// empty mapping.
std::optional<std::vector<Parser::Entry>> Parser::entries(
    const YAML::Node& node, Pos pos, std::string_view section,
    std::span<const std::string_view> allowed) {
    std::vector<Entry> out;
    if (kind_of(node) == Kind::Null) return out;
    if (!node.IsMap()) {
        std::string name = section.empty() ? "the policy" : std::string(section);
        error(pos, name + " must be a mapping of keys (" + join(allowed, ", ") + "), got " +
                       describe(node));
        return std::nullopt;
    }
    std::string in = section.empty() ? "" : " in " + std::string(section);
    std::map<std::string, Pos, std::less<>> seen;
    for (const auto& pair : node) {  // by iteration: a repeated key shows up again
        YAML::Node key = pair.first;
        Pos key_pos = pos_of(key);
        Kind key_kind = kind_of(key);
        if (key_kind != Kind::Plain && key_kind != Kind::Quoted) {
            error(key_pos, "keys must be strings, got " + describe(key) + in);
            continue;
        }
        const std::string& name = key.Scalar();
        if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
            error(key_pos, "unknown key " + quote(name) + in +
                               " (expected one of: " + join(allowed, ", ") + ")");
            continue;
        }
        if (auto prev = seen.find(name); prev != seen.end()) {
            error(key_pos, "duplicate key " + quote(name) + in + " (first given at " +
                               where(prev->second, key_pos) + ")");
            continue;
        }
        seen.emplace(name, key_pos);
        YAML::Node value = pair.second;
        // An empty value is marked where the next token is; point at its key.
        Pos value_pos = kind_of(value) == Kind::Null && !explicit_null_at(value.Mark())
                            ? key_pos
                            : pos_of(value);
        out.push_back({name, key_pos, value, value_pos});
    }
    return out;
}

std::optional<std::vector<Parser::Item>> Parser::list(const Entry& e, std::string_view name) {
    const YAML::Node& n = e.value;
    if (!n.IsSequence()) {
        std::string hint;
        Kind k = kind_of(n);
        if (k == Kind::Null) hint = " (write [] for an empty list)";
        if (k == Kind::Plain || k == Kind::Quoted)
            hint = " (write [" + n.Scalar() + "] for a list of one)";
        error(e.value_pos, std::string(name) + " must be a list, got " + describe(n) + hint);
        return std::nullopt;
    }
    std::vector<Item> out;
    for (const auto& item : n) out.push_back({item, pos_of(item)});
    return out;
}

std::optional<bool> Parser::boolean(const Entry& e, std::string_view name) {
    const YAML::Node& n = e.value;
    if (kind_of(n) == Kind::Plain && (n.Tag() == "?" || n.Tag() == kBoolTag)) {
        const std::string& s = n.Scalar();
        if (s == "true" || s == "True" || s == "TRUE") return true;
        if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    error(e.value_pos, std::string(name) + " must be true or false, got " + describe(n));
    return std::nullopt;
}

// A list entry that must be a non-empty string without NUL bytes.
std::optional<std::string> Parser::item_string(const Item& item, std::string_view name) {
    Kind k = kind_of(item.node);
    if (k == Kind::Mapping || k == Kind::Sequence) {
        error(item.pos, std::string(name) + " entries must be strings, got " + describe(item.node));
        return std::nullopt;
    }
    std::string s = k == Kind::Null ? std::string() : item.node.Scalar();
    if (s.empty()) {
        error(item.pos, std::string(name) + " entries must not be empty");
        return std::nullopt;
    }
    if (s.find('\0') != std::string::npos) {
        error(item.pos, std::string(name) + " entry " + quote(s) + " must not contain a NUL byte");
        return std::nullopt;
    }
    return s;
}

// An absolute path, normalised (no repeated or trailing '/'); '.' and '..'
// are refused because paths are compared as written, without resolving them.
std::optional<std::string> Parser::absolute_path(const YAML::Node& n, Pos pos,
                                                 std::string_view name, std::string_view what) {
    Kind k = kind_of(n);
    if (k == Kind::Mapping || k == Kind::Sequence || k == Kind::Null) {
        error(pos, std::string(name) + " must be an absolute path, got " + describe(n));
        return std::nullopt;
    }
    const std::string& s = n.Scalar();
    if (s.empty()) {
        error(pos, std::string(name) + " must not be empty");
        return std::nullopt;
    }
    if (s.find('\0') != std::string::npos) {
        error(pos, std::string(what) + " " + quote(s) + " must not contain a NUL byte");
        return std::nullopt;
    }
    if (s.front() != '/') {
        error(pos,
              std::string(what) + " " + quote(s) + " must be an absolute path (start with '/')");
        return std::nullopt;
    }
    if (has_dot_component(s)) {
        error(pos, std::string(what) + " " + quote(s) +
                       " must not contain '.' or '..' components (paths are compared as written)");
        return std::nullopt;
    }
    return normalize_slashes(s);
}

void Parser::parse_version(const Entry& e, Policy& p) {
    const YAML::Node& n = e.value;
    if (kind_of(n) == Kind::Plain && (n.Tag() == "?" || n.Tag() == kIntTag) &&
        all_digits(n.Scalar())) {
        const std::string& s = n.Scalar();
        int v = 0;
        auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec == std::errc() && ptr == s.data() + s.size() && v == 1) {
            p.version = 1;
            return;
        }
        error(e.value_pos,
              "unsupported policy version " + s + " (this killswitch reads version 1)");
        return;
    }
    error(e.value_pos, "version must be the integer 1, got " + describe(n));
}

void Parser::parse_mode_key(const Entry& e, Policy& p) {
    if (auto m = mode_value(e, "mode")) p.mode = *m;
}

std::optional<Mode> Parser::mode_value(const Entry& e, std::string_view name) {
    const YAML::Node& n = e.value;
    Kind k = kind_of(n);
    if (k == Kind::Plain || k == Kind::Quoted)
        if (auto m = parse_mode(n.Scalar())) return m;
    error(e.value_pos, std::string(name) + " must be 'enforce' or 'monitor', got " + describe(n));
    return std::nullopt;
}

void Parser::parse_agents(const Entry& e, Policy& p) {
    auto es = entries(e.value, e.value_pos, "agents", kAgentsKeys);
    if (!es) return;
    for (const auto& sub : *es) {
        if (sub.key == "names") {
            if (auto names = program_names(sub, "agents.names", "agent name"))
                set_list(p.agent_names, std::move(*names));
        } else if (sub.key == "hold_at_exec") {
            if (auto b = boolean(sub, "agents.hold_at_exec")) p.hold_agents_at_exec = *b;
        }
    }
}

std::optional<std::vector<std::string>> Parser::program_names(const Entry& e,
                                                              const std::string& key,
                                                              const std::string& what) {
    auto items = list(e, key);
    if (!items) return std::nullopt;
    std::vector<std::string> names;
    std::map<std::string, Pos, std::less<>> seen;
    for (const auto& item : *items) {
        auto name = item_string(item, key);
        if (!name) continue;
        if (name->find('/') != std::string::npos) {
            error(item.pos, what + " " + quote(*name) +
                                " must not contain '/' (names are matched against the "
                                "executable's basename)");
            continue;
        }
        if (auto prev = seen.find(*name); prev != seen.end()) {
            warning(item.pos, what + " " + quote(*name) + " is listed twice (first at " +
                                  where(prev->second, item.pos) + ")");
            continue;
        }
        seen.emplace(*name, item.pos);
        if (name->size() > kCommMaxLen) {
            warning(item.pos, what + " " + quote(*name) + " is " + std::to_string(name->size()) +
                                  " bytes long; the kernel keeps only the first " +
                                  std::to_string(kCommMaxLen) + " characters of a program name (" +
                                  quote(name->substr(0, kCommMaxLen)) +
                                  "), so only those are compared");
        }
        names.push_back(std::move(*name));
    }
    return names;
}

void Parser::parse_processes(const Entry& e, Policy& p) {
    auto es = entries(e.value, e.value_pos, "processes", kProcessesKeys);
    if (!es) return;
    for (const auto& sub : *es) {
        if (sub.key == "reachable") {
            if (auto names = program_names(sub, "processes.reachable", "program name"))
                set_list(p.reachable_names, std::move(*names));
        } else if (sub.key == "deputies") {
            parse_deputies(sub, p);
        } else if (sub.key == "multiplexers") {
            if (auto b = boolean(sub, "processes.multiplexers")) p.deputy_multiplexers = *b;
        }
    }
}

void Parser::parse_deputies(const Entry& e, Policy& p) {
    auto items = list(e, "processes.deputies");
    if (!items) return;
    std::vector<std::string> paths;
    for (const auto& item : *items) {
        auto path = item_string(item, "processes.deputies");
        if (!path) continue;
        if (path->empty() || (*path)[0] != '/') {
            error(item.pos,
                  "deputy socket " + quote(*path) + " must be an absolute path (start with '/')");
            continue;
        }
        if (path->size() > 107) {
            error(item.pos, "deputy socket " + quote(*path) +
                                " is longer than a unix socket path can be (107 bytes)");
            continue;
        }
        paths.push_back(std::move(*path));
    }
    set_list(p.deputy_sockets, std::move(paths));
}

void Parser::parse_guard(const Entry& e, Policy& p) {
    auto es = entries(e.value, e.value_pos, "guard", kGuardKeys);
    if (!es) return;
    for (const auto& sub : *es) {
        if (sub.key == "uids") {
            parse_uids(sub, p);
        } else if (sub.key == "cgroups") {
            parse_cgroups(sub, p);
        }
    }
}

void Parser::parse_uids(const Entry& e, Policy& p) {
    auto items = list(e, "guard.uids");
    if (!items) return;
    std::vector<uint32_t> uids;
    std::map<uint32_t, Pos> seen;
    for (const auto& item : *items) {
        const YAML::Node& n = item.node;
        Kind k = kind_of(n);
        bool plain_number =
            k == Kind::Plain && (n.Tag() == "?" || n.Tag() == kIntTag) && all_digits(n.Scalar());
        if (!plain_number) {
            std::string hint;
            if (k == Kind::Quoted && all_digits(n.Scalar())) hint = " (write it without quotes)";
            error(item.pos,
                  "guard.uids entries must be unsigned integers, got " + describe(n) + hint);
            continue;
        }
        const std::string& s = n.Scalar();
        uint64_t v = 0;
        auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || ptr != s.data() + s.size() || v >= kUidLimit) {
            error(item.pos, "uid " + s + " is out of range (uids are below " +
                                std::to_string(kUidLimit) + ")");
            continue;
        }
        auto uid = static_cast<uint32_t>(v);
        if (auto prev = seen.find(uid); prev != seen.end()) {
            warning(item.pos, "uid " + std::to_string(uid) + " is listed twice (first at " +
                                  where(prev->second, item.pos) + ")");
            continue;
        }
        seen.emplace(uid, item.pos);
        uids.push_back(uid);
    }
    set_list(p.guard_uids, std::move(uids));
}

void Parser::parse_cgroups(const Entry& e, Policy& p) {
    auto items = list(e, "guard.cgroups");
    if (!items) return;
    std::vector<std::string> cgroups;
    std::map<std::string, Pos, std::less<>> seen;
    for (const auto& item : *items) {
        auto raw = item_string(item, "guard.cgroups");
        if (!raw) continue;
        if (has_dot_component(*raw)) {
            error(item.pos,
                  "cgroup path " + quote(*raw) + " must not contain '.' or '..' components");
            continue;
        }
        std::string path = normalize_slashes("/" + *raw);
        if (path == kCgroupMount || path.starts_with(std::string(kCgroupMount) + "/")) {
            std::string rel = path == kCgroupMount ? "/" : path.substr(kCgroupMount.size());
            warning(item.pos, "cgroup path " + quote(*raw) +
                                  " starts with the cgroup2 mount point; cgroup paths are "
                                  "relative to it (did you mean " +
                                  quote(rel) + "?)");
        }
        if (auto prev = seen.find(path); prev != seen.end()) {
            warning(item.pos, "cgroup " + quote(path) + " is listed twice (first at " +
                                  where(prev->second, item.pos) + ")");
            continue;
        }
        seen.emplace(path, item.pos);
        cgroups.push_back(std::move(path));
    }
    set_list(p.guard_cgroups, std::move(cgroups));
}

void Parser::parse_protect(const Entry& e, Policy& p) {
    auto es = entries(e.value, e.value_pos, "protect", kProtectKeys);
    if (!es) return;
    for (const auto& sub : *es) {
        if (sub.key == "paths") {
            parse_protect_paths(sub, p);
        } else if (sub.key == "system") {
            parse_protect_system(sub, p);
        } else if (sub.key == "action") {
            if (auto a = action_value(sub, "protect.action")) p.protect_action = *a;
        } else if (sub.key == "unresolved") {
            if (auto a = action_value(sub, "protect.unresolved")) p.unresolved_action = *a;
        } else if (sub.key == "session") {
            if (auto a = session_value(sub, "protect.session")) p.violation_session_action = *a;
        } else if (sub.key == "io_uring") {
            if (auto r = refuse_or_allow(sub, "protect.io_uring")) p.io_uring_allowed = !*r;
        } else if (sub.key == "block_devices") {
            if (auto r = refuse_or_allow(sub, "protect.block_devices"))
                p.block_devices_allowed = !*r;
        } else if (sub.key == "min_free") {
            if (auto m = parse_min_free(text_of(sub.value)))
                p.min_free = *m;
            else
                error(sub.value_pos,
                      "protect.min_free must be a share of the file system from 1% to 90% "
                      "(5%), a size (2GiB, 512MiB, a number of bytes) or off, got " +
                          describe(sub.value));
        } else if (sub.key == "libc_uprobes") {
            if (auto b = boolean(sub, "protect.libc_uprobes")) p.libc_uprobes = *b;
        } else if (sub.key == "hold_timeout") {
            if (auto v = bounded_int(sub, "protect.hold_timeout", "seconds", 1, kMaxHoldTimeout))
                p.hold_timeout_s = *v;
        } else if (sub.key == "mode") {
            if (auto m = mode_value(sub, "protect.mode")) p.protect_mode = *m;
        }
    }
}

std::optional<SessionAction> Parser::session_value(const Entry& e, std::string_view name) {
    Kind k = kind_of(e.value);
    if (k == Kind::Plain || k == Kind::Quoted)
        if (auto a = parse_session_action(e.value.Scalar())) return a;
    error(e.value_pos,
          std::string(name) + " must be " + session_action_names() + ", got " + describe(e.value));
    return std::nullopt;
}

// A whole number from lo to hi ("a number of UNIT from LO to HI").
std::optional<int> Parser::bounded_int(const Entry& e, std::string_view name, std::string_view unit,
                                       int lo, int hi) {
    const YAML::Node& n = e.value;
    int v = 0;
    bool ok = kind_of(n) == Kind::Plain && all_digits(n.Scalar()) && n.Scalar().size() <= 6;
    if (ok) {
        auto [ptr, ec] =
            std::from_chars(n.Scalar().data(), n.Scalar().data() + n.Scalar().size(), v);
        ok = ec == std::errc() && v >= lo && v <= hi;
    }
    if (ok) return v;
    error(e.value_pos, std::string(name) + " must be a number of " + std::string(unit) + " from " +
                           std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
                           describe(n));
    return std::nullopt;
}

// true for "refuse", false for "allow".
std::optional<bool> Parser::refuse_or_allow(const Entry& e, std::string_view name) {
    Kind k = kind_of(e.value);
    std::string v = k == Kind::Plain || k == Kind::Quoted ? e.value.Scalar() : "";
    if (v == "refuse") return true;
    if (v == "allow") return false;
    error(e.value_pos,
          std::string(name) + " must be 'refuse' or 'allow', got " + describe(e.value));
    return std::nullopt;
}

void Parser::parse_databases(const Entry& e, Policy& p) {
    auto es = entries(e.value, e.value_pos, "databases", kDatabasesKeys);
    if (!es) return;
    for (const auto& sub : *es) {
        if (sub.key == "endpoints") {
            auto items = list(sub, "databases.endpoints");
            if (!items) continue;
            std::vector<std::string> eps;
            for (const auto& item : *items) {
                auto spec = item_string(item, "databases.endpoints entries");
                if (!spec) continue;
                auto ep = db::parse_endpoint(*spec);
                if (!ep) {
                    error(item.pos, "databases.endpoints: " + ep.error().str());
                    continue;
                }
                eps.push_back(*spec);
            }
            set_list(p.db_endpoints, std::move(eps));
        } else if (sub.key == "action") {
            // hold: over the relay the request waits for a person; where
            // no relay carries the connection it is refused as with block.
            if (auto a = action_value(sub, "databases.action")) p.db_action = *a;
        } else if (sub.key == "session") {
            if (auto a = session_value(sub, "databases.session")) p.db_session_action = *a;
        } else if (sub.key == "unparseable") {
            if (auto r = refuse_or_allow(sub, "databases.unparseable"))
                p.db_refuse_unparseable = *r;
        } else if (sub.key == "encrypted") {
            if (auto r = refuse_or_allow(sub, "databases.encrypted")) p.db_refuse_encrypted = *r;
        } else if (sub.key == "client_probes") {
            if (auto b = boolean(sub, "databases.client_probes")) p.db_client_probes = *b;
        } else if (sub.key == "relay") {
            if (auto b = boolean(sub, "databases.relay")) p.db_relay = *b;
        } else if (sub.key == "relay_poll_us") {
            if (auto n =
                    bounded_int(sub, "databases.relay_poll_us", "microseconds", 0, kMaxRelayPollUs))
                p.db_relay_poll_us = *n;
        } else if (sub.key == "discover") {
            if (auto b = boolean(sub, "databases.discover")) p.db_discover = *b;
        } else if (sub.key == "check_rows") {
            if (auto b = boolean(sub, "databases.check_rows")) p.db_check_rows = *b;
        } else if (sub.key == "effect") {
            auto es = entries(sub.value, sub.value_pos, "databases.effect", kEffectKeys);
            if (!es) continue;
            for (const auto& v : *es) {
                if (v.key == "check") {
                    if (auto b = boolean(v, "databases.effect.check")) p.db_effect = *b;
                } else if (v.key == "percent") {
                    if (auto n = bounded_int(v, "databases.effect.percent", "percent", 1, 100))
                        p.db_effect_percent = *n;
                } else if (v.key == "min_rows") {
                    if (auto n = bounded_int(v, "databases.effect.min_rows", "rows", 1, kMaxVolume))
                        p.db_effect_min_rows = *n;
                } else if (v.key == "max_rows") {
                    if (auto n = bounded_int(v, "databases.effect.max_rows", "rows", 0, kMaxVolume))
                        p.db_effect_max_rows = *n;
                }
            }
        } else if (sub.key == "volume") {
            auto vs = entries(sub.value, sub.value_pos, "databases.volume", kVolumeKeys);
            if (!vs) continue;
            for (const auto& v : *vs) {
                if (v.key == "keys") {
                    if (auto n = bounded_int(v, "databases.volume.keys", "keys", 0, kMaxVolume))
                        p.db_volume_keys = *n;
                } else if (v.key == "deletes") {
                    if (auto n =
                            bounded_int(v, "databases.volume.deletes", "statements", 0, kMaxVolume))
                        p.db_volume_deletes = *n;
                } else if (v.key == "within") {
                    if (auto n = bounded_int(v, "databases.volume.within", "seconds", 1,
                                             kMaxFrozenTimeout))
                        p.db_volume_within_s = *n;
                }
            }
        } else if (sub.key == "mode") {
            if (auto m = mode_value(sub, "databases.mode")) p.db_mode = *m;
        } else if (sub.key == "statement_max") {
            if (auto v = bounded_int(sub, "databases.statement_max", "bytes", 16, kMaxStatementMax))
                p.db_statement_max = *v;
        } else if (sub.key == "refuse") {
            parse_db_refuse(sub, p);
        } else if (sub.key == "bookkeeping_tables") {
            parse_db_bookkeeping(sub, p);
        }
    }
}

// databases.refuse: class names (db_class_reason), as a set of bits.
void Parser::parse_db_refuse(const Entry& e, Policy& p) {
    auto items = list(e, "databases.refuse");
    if (!items) return;
    std::vector<std::string_view> names;
    for (uint32_t r = 1; r < KS_DBR_FIRST_UNPARSEABLE; ++r)
        if (KS_DB_CLASSES_ALL & KS_DB_CLASS_BIT(r)) names.push_back(db_reason_name(r));
    uint32_t classes = 0;
    std::map<std::string, Pos, std::less<>> seen;
    for (const auto& item : *items) {
        auto name = item_string(item, "databases.refuse");
        if (!name) continue;
        auto reason = db_class_reason(*name);
        if (!reason) {
            std::string hint = *name == "unparseable" ? " (requests that cannot be read: "
                                                        "databases.unparseable)"
                               : *name == "harmless"  ? " (harmless requests are never refused)"
                                                      : "";
            error(item.pos, "databases.refuse: unknown class " + quote(*name) +
                                " (expected one of: " + join(names, ", ") + ")" + hint);
            continue;
        }
        if (auto prev = seen.find(*name); prev != seen.end()) {
            warning(item.pos, "class " + quote(*name) + " is listed twice (first at " +
                                  where(prev->second, item.pos) + ")");
            continue;
        }
        seen.emplace(*name, item.pos);
        classes |= KS_DB_CLASS_BIT(*reason);
    }
    p.db_refuse_classes = classes;
}

// databases.bookkeeping_tables: bare table names, compared in any case.
void Parser::parse_db_bookkeeping(const Entry& e, Policy& p) {
    auto items = list(e, "databases.bookkeeping_tables");
    if (!items) return;
    std::vector<std::string> tables;
    std::map<std::string, Pos, std::less<>> seen;
    for (const auto& item : *items) {
        auto name = item_string(item, "databases.bookkeeping_tables");
        if (!name) continue;
        bool plain = std::all_of(name->begin(), name->end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
        });
        if (!plain) {
            error(item.pos, "databases.bookkeeping_tables: " + quote(*name) +
                                " must be a table's name alone: letters, digits, '_' and '$', "
                                "without schema or quotes (it matches in every schema, in any "
                                "case, quoted or not)");
            continue;
        }
        std::string lower = *name;
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (auto prev = seen.find(lower); prev != seen.end()) {
            warning(item.pos, "table " + quote(*name) + " is listed twice (first at " +
                                  where(prev->second, item.pos) + ")");
            continue;
        }
        if (tables.size() == kMaxBookkeepingTables) {
            error(item.pos, "databases.bookkeeping_tables: at most " +
                                std::to_string(kMaxBookkeepingTables) + " tables");
            break;
        }
        seen.emplace(lower, item.pos);
        tables.push_back(std::move(lower));
    }
    set_list(p.db_bookkeeping_tables, std::move(tables));
}

std::optional<Action> Parser::action_value(const Entry& e, std::string_view name) {
    Kind k = kind_of(e.value);
    if (k == Kind::Plain || k == Kind::Quoted)
        if (auto a = parse_action(e.value.Scalar())) return a;
    error(e.value_pos,
          std::string(name) + " must be one of " + action_names() + "; got " + describe(e.value));
    return std::nullopt;
}

// protect.system: absolute paths, each a rule of its own (system:PATH).
void Parser::parse_protect_system(const Entry& e, Policy& p) {
    auto items = list(e, "protect.system");
    if (!items) return;
    std::vector<std::string> paths;
    std::map<std::string, Pos, std::less<>> seen;
    for (const auto& item : *items) {
        auto path = absolute_path(item.node, item.pos, "protect.system entries", "system path");
        if (!path) continue;
        if (auto prev = seen.find(*path); prev != seen.end()) {
            warning(item.pos, "system path " + quote(*path) + " is listed twice (first at " +
                                  where(prev->second, item.pos) + ")");
            continue;
        }
        seen.emplace(*path, item.pos);
        paths.push_back(std::move(*path));
    }
    set_list(p.protect_system, std::move(paths));
}

void Parser::parse_protect_paths(const Entry& sub, Policy& p) {
    auto items = list(sub, "protect.paths");
    if (!items) return;
    std::vector<std::string> paths;
    std::map<std::string, Action> actions;
    std::map<std::string, Mode> modes;
    std::map<std::string, SessionAction> sessions;
    std::map<std::string, Pos, std::less<>> seen;
    for (const auto& item : *items) {
        Kind k = kind_of(item.node);
        YAML::Node path_node = item.node;
        Pos path_pos = item.pos;
        std::optional<Action> action;
        std::optional<Mode> mode;
        std::optional<SessionAction> session;
        if (k == Kind::Mapping) {
            // {path: /srv/data, action: hold, mode: monitor}
            auto es = entries(item.node, item.pos, "protect.paths entry", kProtectEntryKeys);
            if (!es) continue;
            bool has_path = false, bad = false;
            for (const auto& f : *es) {
                if (f.key == "path") {
                    path_node = f.value;
                    path_pos = f.value_pos;
                    has_path = true;
                } else if (f.key == "action") {
                    action = action_value(f, "protect.paths action");
                    if (!action) bad = true;
                } else if (f.key == "mode") {
                    mode = mode_value(f, "protect.paths mode");
                    if (!mode) bad = true;
                } else if (f.key == "session") {
                    session = session_value(f, "protect.paths session");
                    if (!session) bad = true;
                }
            }
            if (!has_path) {
                error(item.pos, "protect.paths entry needs a 'path'");
                continue;
            }
            if (bad) continue;
            k = kind_of(path_node);
        }
        if (k == Kind::Mapping || k == Kind::Sequence) {
            error(path_pos,
                  "protect.paths entries must be paths or {path, action, mode, session} "
                  "mappings, got " +
                      describe(path_node));
            continue;
        }
        if (k == Kind::Null) {
            error(path_pos, "protect.paths entries must not be empty");
            continue;
        }
        auto path = absolute_path(path_node, path_pos, "protect.paths entries", "protect path");
        if (!path) continue;
        if (auto prev = seen.find(*path); prev != seen.end()) {
            warning(item.pos, "protect path " + quote(*path) + " is listed twice (first at " +
                                  where(prev->second, item.pos) + ")");
            continue;
        }
        seen.emplace(*path, item.pos);
        if (action) actions[*path] = *action;
        if (mode) modes[*path] = *mode;
        if (session) sessions[*path] = *session;
        paths.push_back(std::move(*path));
    }
    set_list(p.protect_paths, std::move(paths));
    set_map(p.protect_path_actions, std::move(actions));
    set_map(p.protect_path_modes, std::move(modes));
    set_map(p.protect_path_sessions, std::move(sessions));
}

void Parser::parse_sessions(const Entry& e, Policy& p) {
    auto es = entries(e.value, e.value_pos, "sessions", kSessionsKeys);
    if (!es) return;
    for (const auto& sub : *es) {
        if (sub.key == "escalate_after") {
            if (auto v =
                    bounded_int(sub, "sessions.escalate_after", "refusals", 0, kMaxEscalateAfter))
                p.escalate_after = *v;
        } else if (sub.key == "escalate_within") {
            if (auto v =
                    bounded_int(sub, "sessions.escalate_within", "seconds", 1, kMaxFrozenTimeout))
                p.escalate_within_s = *v;
        } else if (sub.key == "escalate_to") {
            auto a = parse_session_action(text_of(sub.value));
            if (a && *a != SessionAction::None)
                p.escalate_to = *a;
            else
                error(sub.value_pos,
                      "sessions.escalate_to must be 'freeze' or 'kill-session' (to never "
                      "escalate, set escalate_after: 0), got " +
                          describe(sub.value));
        } else if (sub.key == "on_contained") {
            if (auto a = session_value(sub, "sessions.on_contained")) p.contained_session = *a;
        } else if (sub.key == "self_protection") {
            if (auto a = session_value(sub, "sessions.self_protection"))
                p.self_protection_session = *a;
        } else if (sub.key == "frozen_timeout") {
            if (auto v =
                    bounded_int(sub, "sessions.frozen_timeout", "seconds", 0, kMaxFrozenTimeout))
                p.frozen_timeout_s = *v;
        } else if (sub.key == "frozen_end") {
            if (auto v = parse_frozen_end(text_of(sub.value)))
                p.frozen_end = *v;
            else
                error(sub.value_pos, "sessions.frozen_end must be 'kill-session' or 'thaw', got " +
                                         describe(sub.value));
        } else if (sub.key == "wrapper_exit") {
            if (auto v = parse_wrapper_exit(text_of(sub.value)))
                p.wrapper_exit = *v;
            else
                error(sub.value_pos,
                      "sessions.wrapper_exit must be 'kill-session' or 'keep', got " +
                          describe(sub.value));
        }
    }
}

void Parser::parse_audit(const Entry& e, Policy& p) {
    auto es = entries(e.value, e.value_pos, "audit", kAuditKeys);
    if (!es) return;
    for (const auto& sub : *es) {
        if (sub.key == "mode") {
            parse_audit_mode(sub, p);
            continue;
        }
        if (sub.key == "group") {
            parse_audit_group(sub, p);
            continue;
        }
        auto path = absolute_path(sub.value, sub.value_pos, "audit.log", "audit.log");
        if (!path) continue;
        if (*path == "/") {
            error(sub.value_pos, "audit.log must name a file, not '/'");
            continue;
        }
        p.audit_log = std::move(*path);
    }
}

void Parser::parse_outputs(const Entry& e, Policy& p) {
    auto items = list(e, "outputs");
    if (!items) return;
    std::vector<std::string> specs;
    for (const auto& item : *items) {
        auto spec = item_string(item, "outputs");
        if (!spec) continue;
        if (auto o = outputs::parse_output(*spec); !o) {
            error(item.pos, o.error().message);
            continue;
        }
        specs.push_back(std::move(*spec));
    }
    set_list(p.outputs, std::move(specs));
}

// audit.mode: octal, e.g. 0640. Nobody but root may write the trail, and it
// is not a program.
void Parser::parse_audit_mode(const Entry& e, Policy& p) {
    Kind k = kind_of(e.value);
    std::string v = k == Kind::Plain || k == Kind::Quoted ? e.value.Scalar() : "";
    uint32_t mode = 0;
    bool ok = !v.empty() && v.size() <= 4;
    for (char c : v) {
        if (c < '0' || c > '7') ok = false;
        mode = mode * 8 + static_cast<uint32_t>(c - '0');
    }
    if (!ok) {
        error(e.value_pos,
              "audit.mode must be an octal file mode such as 0640, got " + describe(e.value));
        return;
    }
    if (mode & ~0644u) {
        error(e.value_pos, "audit.mode " + v +
                               " gives write or execute permission beyond the owner's "
                               "(or a special bit): at most 0644, such as 0600 or 0640");
        return;
    }
    if ((mode & 0600u) != 0600u) {
        error(e.value_pos, "audit.mode " + v + " must let its owner (root) read and write: 06xx");
        return;
    }
    p.audit_file_mode = mode;
}

// audit.group: a group name or number of this host ("" or null: the
// daemon's own group).
void Parser::parse_audit_group(const Entry& e, Policy& p) {
    Kind k = kind_of(e.value);
    if (k == Kind::Null) {
        p.audit_group.clear();
        p.audit_gid = -1;
        return;
    }
    if (k != Kind::Plain && k != Kind::Quoted) {
        error(e.value_pos, "audit.group must be a group name or number, got " + describe(e.value));
        return;
    }
    const std::string& name = e.value.Scalar();
    if (name.empty()) {
        p.audit_group.clear();
        p.audit_gid = -1;
        return;
    }
    auto gid = group_id(name);
    if (!gid) {
        error(e.value_pos, "audit.group " + quote(name) + " is not a group of this host (" +
                               gid.error().message + ")");
        return;
    }
    p.audit_group = name;
    p.audit_gid = *gid;
}

// Only the first document is loaded with YAML::Load(): yaml-cpp 0.7's
// LoadAll() never returns, allocating until the OOM killer comes, when a
// document starts with a token that no node can start with, such as a stray
// ',' (jbeder/yaml-cpp#1040, fixed upstream after 0.8.0). Whether there is a
// second document is found by asking the event parser for two documents at
// most and checking that it moved between them.
std::optional<YAML::Node> Parser::load_single_document() {
    try {
        std::istringstream in(text_);
        YAML::Parser events(in);
        DocumentStarts starts;
        for (int i = 0; i < 2 && events.HandleNextDocument(starts); ++i) {
        }
        if (starts.marks.size() >= 2) {
            const YAML::Mark& m = starts.marks[1];
            if (m.pos == starts.marks[0].pos) {
                size_t at = static_cast<size_t>(std::max(m.pos, 0));
                std::string token = at < text_.size() ? quote(text_.substr(at, 1)) : "end of input";
                error(pos_of_mark(m), "YAML syntax error: unexpected " + token);
                return std::nullopt;
            }
            error(pos_of_mark(m),
                  "a second YAML document starts here; a policy file holds exactly one");
        }
        return YAML::Load(text_);
    } catch (const YAML::Exception& e) {
        error(pos_of_mark(e.mark), syntax_message(e));
        return std::nullopt;
    }
}

LoadResult Parser::run(Policy base) {
    Policy p = std::move(base);
    if (!extend_) p.source = source_;

    auto root = load_single_document();
    if (!root) return std::move(result_);
    if (kind_of(*root) == Kind::Null) {
        warning({}, "the policy is empty; every setting takes its default");
    } else if (auto es = entries(*root, pos_of(*root), "", kTopKeys)) {
        for (const auto& e : *es) {
            if (e.key == "version") {
                parse_version(e, p);
            } else if (e.key == "mode") {
                parse_mode_key(e, p);
            } else if (e.key == "agents") {
                parse_agents(e, p);
            } else if (e.key == "guard") {
                parse_guard(e, p);
            } else if (e.key == "protect") {
                parse_protect(e, p);
            } else if (e.key == "processes") {
                parse_processes(e, p);
            } else if (e.key == "sessions") {
                parse_sessions(e, p);
            } else if (e.key == "audit") {
                parse_audit(e, p);
            } else if (e.key == "databases") {
                parse_databases(e, p);
            } else if (e.key == "outputs") {
                parse_outputs(e, p);
            }
        }
    }

    auto by_position = [](const Diagnostic& a, const Diagnostic& b) {
        return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    };
    std::stable_sort(result_.errors.begin(), result_.errors.end(), by_position);
    std::stable_sort(result_.warnings.begin(), result_.warnings.end(), by_position);
    if (result_.errors.empty()) result_.policy = std::move(p);
    return std::move(result_);
}

}  // namespace

std::string Diagnostic::str() const { return format_diagnostic(*this, "error"); }

std::string Diagnostic::warning_str() const { return format_diagnostic(*this, "warning"); }

std::string_view mode_name(Mode mode) {
    switch (mode) {
        case Mode::Enforce:
            return "enforce";
        case Mode::Monitor:
            return "monitor";
    }
    return "enforce";
}

std::string_view frozen_end_name(FrozenEnd e) {
    return e == FrozenEnd::Thaw ? "thaw" : "kill-session";
}

std::optional<FrozenEnd> parse_frozen_end(std::string_view name) {
    if (name == "kill-session") return FrozenEnd::KillSession;
    if (name == "thaw") return FrozenEnd::Thaw;
    return std::nullopt;
}

std::string_view wrapper_exit_name(WrapperExit e) {
    return e == WrapperExit::Keep ? "keep" : "kill-session";
}

std::optional<WrapperExit> parse_wrapper_exit(std::string_view name) {
    if (name == "kill-session") return WrapperExit::KillSession;
    if (name == "keep") return WrapperExit::Keep;
    return std::nullopt;
}

std::optional<Mode> parse_mode(std::string_view name) {
    if (name == "enforce") return Mode::Enforce;
    if (name == "monitor") return Mode::Monitor;
    return std::nullopt;
}

Policy default_policy() {
    // The built-in text sets every key, so parsing it over an empty Policy
    // gives the complete defaults.
    static const Policy policy = [] {
        LoadResult r = Parser(default_policy_text(), std::string(kBuiltinSource)).run(Policy{});
        if (!r.policy) {
            for (const auto& d : r.errors) std::fprintf(stderr, "%s\n", d.str().c_str());
            std::fprintf(stderr, "killswitch: the built-in policy does not parse\n");
            std::abort();
        }
        return *r.policy;
    }();
    return policy;
}

LoadResult parse_policy(const std::string& text, const std::string& source_name) {
    return Parser(text, source_name).run(default_policy());
}

Mode protect_path_mode(const Policy& p, const std::string& path) {
    auto it = p.protect_path_modes.find(path);
    return effective_mode(p, it != p.protect_path_modes.end() ? it->second : p.protect_mode);
}

std::vector<std::string> restart_required_changes(const Policy& running, const Policy& next) {
    std::vector<std::string> out;
    auto changed = [&](std::string_view key, const std::string& from, const std::string& to,
                       std::string_view why) {
        out.push_back(std::string(key) + " changes from " + from + " to " + to + ": " +
                      std::string(why) + "; restart the daemon to change it");
    };
    auto yes_no = [](bool b) { return std::string(b ? "true" : "false"); };
    auto list = [](const auto& items) {
        std::string s = "[";
        for (const auto& i : items) {
            if (s.size() > 1) s += ", ";
            if constexpr (std::is_same_v<std::decay_t<decltype(i)>, std::string>)
                s += i;
            else
                s += std::to_string(i);
        }
        return s + "]";
    };
    if (running.audit_log != next.audit_log)
        changed("audit.log", quote(running.audit_log), quote(next.audit_log),
                "the audit log is opened once, when the daemon starts (SIGHUP reopens the same "
                "path)");
    if (running.outputs != next.outputs)
        changed("outputs", list(running.outputs), list(next.outputs),
                "outputs are started with the daemon");
    if (running.hold_agents_at_exec != next.hold_agents_at_exec)
        changed("agents.hold_at_exec", yes_no(running.hold_agents_at_exec),
                yes_no(next.hold_agents_at_exec),
                "it is read-only data of the process guard's BPF programs, set when they load");
    if (running.libc_uprobes != next.libc_uprobes)
        changed("protect.libc_uprobes", yes_no(running.libc_uprobes), yes_no(next.libc_uprobes),
                "the libc layer is set up when the daemon starts");
    if (running.db_relay != next.db_relay)
        changed("databases.relay", yes_no(running.db_relay), yes_no(next.db_relay),
                "the relay is set up when the daemon starts");
    if (running.db_client_probes != next.db_client_probes)
        changed("databases.client_probes", yes_no(running.db_client_probes),
                yes_no(next.db_client_probes), "the libpq layer is set up when the daemon starts");
    if (running.guard_cgroups != next.guard_cgroups)
        changed("guard.cgroups", list(running.guard_cgroups), list(next.guard_cgroups),
                "the processes in them were marked guarded when the daemon started, and a "
                "guarded process stays guarded");
    return out;
}

Result<int64_t> group_id(const std::string& name) {
    if (all_digits(name) && name.size() <= 10) {
        uint64_t v = 0;
        std::from_chars(name.data(), name.data() + name.size(), v);
        if (v < kUidLimit) return static_cast<int64_t>(v);
        return make_error("out of range");
    }
    std::vector<char> buf(16384);
    group g{};
    group* out = nullptr;
    int rc = ::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &out);
    if (rc != 0) return Error{rc, std::strerror(rc)};
    if (!out) return make_error("no such group");
    return static_cast<int64_t>(out->gr_gid);
}

namespace {

Diagnostic unreadable(const std::string& path, const Error& err) {
    return {path, 0, 0,
            "cannot read policy file: " +
                (err.code != 0 ? std::string(std::strerror(err.code)) : err.message)};
}

}  // namespace

LoadResult load_policy_set(const std::string& file, const std::string& dir) {
    LoadResult r;
    std::string texts;  // what the digest covers
    std::vector<std::string> files;
    if (file.empty()) {
        r.policy = default_policy();
        texts = default_policy_text();
    } else {
        auto text = read_file(file);
        if (!text) {
            r.errors.push_back(unreadable(file, text.error()));
        } else {
            r = Parser(*text, file).run(default_policy());
            texts += *text;
        }
        files.push_back(file);
    }
    if (!dir.empty()) {
        std::vector<std::string> names;
        if (DIR* d = ::opendir(dir.c_str())) {
            while (dirent* e = ::readdir(d)) {
                std::string n = e->d_name;
                if (n.empty() || n[0] == '.' || !n.ends_with(".yaml")) continue;
                names.push_back(std::move(n));
            }
            ::closedir(d);
        } else {
            r.errors.push_back(
                {dir, 0, 0, std::string("cannot read policy directory: ") + std::strerror(errno)});
        }
        std::sort(names.begin(), names.end());  // bytes, as LC_ALL=C sorts
        for (const auto& n : names) {
            std::string path = dir + (dir.ends_with("/") ? "" : "/") + n;
            files.push_back(path);
            auto text = read_file(path);
            if (!text) {
                r.errors.push_back(unreadable(path, text.error()));
                continue;
            }
            texts += *text;
            // After an error the rest is still checked, over the defaults,
            // so that every file's problems are listed at once.
            Policy base = r.policy ? *r.policy : default_policy();
            LoadResult part = Parser(*text, path, true).run(std::move(base));
            r.errors.insert(r.errors.end(), part.errors.begin(), part.errors.end());
            r.warnings.insert(r.warnings.end(), part.warnings.begin(), part.warnings.end());
            if (r.policy && part.policy) r.policy = std::move(part.policy);
        }
    }
    if (!r.errors.empty()) {
        r.policy.reset();
        return r;
    }
    r.policy->drop_in_dir = dir;
    r.policy->files = std::move(files);
    r.policy->sha256 = sha256_hex(texts);
    return r;
}

LoadResult load_policy_file(const std::string& path) {
    auto text = read_file(path);
    if (!text) {
        LoadResult r;
        r.errors.push_back(unreadable(path, text.error()));
        return r;
    }
    return parse_policy(*text, path);
}

// Binary units, largest first; a size may give the first letter alone (2G).
constexpr std::pair<std::string_view, int> kSizeUnits[] = {
    {"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}};

std::optional<MinFree> parse_min_free(std::string_view t) {
    if (t == "off") return MinFree{};
    size_t digits = 0;
    while (digits < t.size() && t[digits] >= '0' && t[digits] <= '9') ++digits;
    if (digits == 0 || digits > 15) return std::nullopt;
    uint64_t n = 0;
    std::from_chars(t.data(), t.data() + digits, n);
    std::string_view unit = t.substr(digits);
    if (unit == "%") {
        if (n < 1 || n > 90) return std::nullopt;
        return MinFree{.percent = static_cast<uint32_t>(n)};
    }
    if (n == 0) return std::nullopt;
    if (unit.empty() || unit == "B") return MinFree{.bytes = n};
    for (const auto& [name, shift] : kSizeUnits) {
        if (unit != name && unit != name.substr(0, 1)) continue;
        if (n > (UINT64_MAX >> shift)) return std::nullopt;
        return MinFree{.bytes = n << shift};
    }
    return std::nullopt;
}

std::string MinFree::text() const {
    if (percent) return std::to_string(percent) + "%";
    if (!bytes) return "off";
    for (const auto& [name, shift] : kSizeUnits)
        if (bytes % (uint64_t{1} << shift) == 0)
            return std::to_string(bytes >> shift) + std::string(name);
    return std::to_string(bytes);
}

}  // namespace ks::policy
