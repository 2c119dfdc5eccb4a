#include "db_corpus.h"

#include <killswitch/abi/events.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "abi/decode.h"

namespace ks::db::corpus {
namespace {

using Json = nlohmann::ordered_json;

void put_le32(std::string& out, uint32_t v) {
    for (int s = 0; s < 32; s += 8) out += static_cast<char>(v >> s);
}

// ---- JSON to BSON, for the MongoDB cases ----

std::string bson_document(const Json& doc);

void bson_element(std::string& out, const std::string& key, const Json& v) {
    auto head = [&](char type) { out += type + key + '\0'; };
    if (v.is_string()) {
        head('\x02');
        const auto& s = v.get_ref<const std::string&>();
        put_le32(out, static_cast<uint32_t>(s.size() + 1));
        out += s + '\0';
    } else if (v.is_boolean()) {
        head('\x08');
        out += v.get<bool>() ? '\x01' : '\x00';
    } else if (v.is_number_integer() && v.get<int64_t>() >= INT32_MIN &&
               v.get<int64_t>() <= INT32_MAX) {
        head('\x10');
        put_le32(out, static_cast<uint32_t>(v.get<int32_t>()));
    } else if (v.is_number_integer()) {
        head('\x12');
        auto n = static_cast<uint64_t>(v.get<int64_t>());
        put_le32(out, static_cast<uint32_t>(n));
        put_le32(out, static_cast<uint32_t>(n >> 32));
    } else if (v.is_number_float()) {
        head('\x01');
        double d = v.get<double>();
        char raw[8];
        std::memcpy(raw, &d, 8);
        out.append(raw, 8);
    } else if (v.is_null()) {
        head('\x0a');
    } else {
        head(v.is_array() ? '\x04' : '\x03');
        out += bson_document(v);
    }
}

// An object, or an array (keys "0", "1"...).
std::string bson_document(const Json& doc) {
    std::string body;
    size_t i = 0;
    for (auto it = doc.begin(); it != doc.end(); ++it, ++i)
        bson_element(body, doc.is_array() ? std::to_string(i) : it.key(), *it);
    std::string out;
    put_le32(out, static_cast<uint32_t>(body.size() + 5));
    return out + body + '\0';
}

// ---- reading a line of the corpus ----

struct Arg {
    enum { Str, Num, Word, Json } type;
    std::string s;  // Str: the bytes; Word, Json: the text
    long long n = 0;
};

class LineReader {
  public:
    LineReader(std::string_view line, std::string_view file, int number)
        : s_(line), file_(file), number_(number) {}

    [[noreturn]] void fail(const std::string& why) const {
        std::ostringstream msg;
        msg << file_ << ":" << number_ << ": " << why << " (at column " << pos_ + 1 << ")";
        throw std::runtime_error(msg.str());
    }
    void skip_space() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
    }
    bool at_end() {
        skip_space();
        return pos_ >= s_.size();
    }
    char peek() {
        skip_space();
        return pos_ < s_.size() ? s_[pos_] : '\0';
    }
    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++pos_;
    }
    std::string word() {
        skip_space();
        size_t start = pos_;
        while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) ||
                                    s_[pos_] == '_' || s_[pos_] == '-'))
            ++pos_;
        if (pos_ == start) fail("expected a word");
        return std::string(s_.substr(start, pos_ - start));
    }
    long long number() {
        std::string w = word();
        try {
            size_t used = 0;
            long long v = std::stoll(w, &used, 0);
            if (used != w.size()) fail("not a number: " + w);
            return v;
        } catch (const std::logic_error&) {
            fail("not a number: " + w);
        }
    }
    // "..." with \n \r \t \\ \" \0 \xNN
    std::string quoted() {
        expect('"');
        std::string out;
        while (true) {
            if (pos_ >= s_.size()) fail("string not closed");
            char c = s_[pos_++];
            if (c == '"') break;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= s_.size()) fail("string not closed");
            char e = s_[pos_++];
            switch (e) {
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case '0':
                    out += '\0';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '"':
                    out += '"';
                    break;
                case 'x': {
                    auto hex = pos_ + 2 <= s_.size() ? std::string(s_.substr(pos_, 2)) : "";
                    if (hex.size() != 2 || !std::isxdigit(static_cast<unsigned char>(hex[0])) ||
                        !std::isxdigit(static_cast<unsigned char>(hex[1])))
                        fail("\\x takes two hex digits");
                    out += static_cast<char>(std::stoi(hex, nullptr, 16));
                    pos_ += 2;
                    break;
                }
                default:
                    fail(std::string("unknown escape \\") + e);
            }
        }
        return out;
    }
    // Strings one after the other, each maybe repeated: "a" "b"*3
    std::string strings() {
        std::string out;
        while (peek() == '"') {
            std::string s = quoted();
            long long times = 1;
            if (peek() == '*') {
                expect('*');
                times = number();
            }
            for (long long i = 0; i < times; ++i) out += s;
        }
        return out;
    }
    // A JSON object or array: up to its closing bracket, strings skipped.
    std::string json() {
        skip_space();
        size_t start = pos_;
        int depth = 0;
        bool in_string = false;
        for (; pos_ < s_.size(); ++pos_) {
            char c = s_[pos_];
            if (in_string) {
                if (c == '\\')
                    ++pos_;
                else if (c == '"')
                    in_string = false;
            } else if (c == '"') {
                in_string = true;
            } else if (c == '{' || c == '[') {
                ++depth;
            } else if ((c == '}' || c == ']') && --depth == 0) {
                ++pos_;
                return std::string(s_.substr(start, pos_ - start));
            }
        }
        fail("JSON not closed");
    }
    Arg arg() {
        char c = peek();
        if (c == '"') return {Arg::Str, strings()};
        if (c == '{' || c == '[') return {Arg::Json, json()};
        if (std::isdigit(static_cast<unsigned char>(c))) {
            Arg a{Arg::Num, ""};
            a.n = number();
            return a;
        }
        return {Arg::Word, word()};
    }
    std::vector<Arg> args() {
        std::vector<Arg> out;
        expect('(');
        if (peek() != ')') {
            out.push_back(arg());
            while (peek() == ',') {
                ++pos_;
                out.push_back(arg());
            }
        }
        expect(')');
        return out;
    }
    // The rest of the line after a '#', trimmed.
    std::string note() {
        expect('#');
        skip_space();
        std::string n(s_.substr(pos_));
        pos_ = s_.size();
        while (!n.empty() && (n.back() == ' ' || n.back() == '\t')) n.pop_back();
        return n;
    }
    std::string_view rest_from(size_t start) const { return s_.substr(start); }
    size_t pos() const { return pos_; }

  private:
    std::string_view s_;
    std::string_view file_;
    int number_;
    size_t pos_ = 0;
};

std::optional<Class> class_of(std::string_view name) {
    for (int c = static_cast<int>(Class::Harmless); c <= static_cast<int>(Class::Unparseable); ++c)
        if (class_name(static_cast<Class>(c)) == name) return static_cast<Class>(c);
    return std::nullopt;
}

// A reason by its name (db_reason_name gives "unknown" for values it does not
// know as well as for KS_DBR_UNKNOWN).
std::optional<uint32_t> reason_of(std::string_view name) {
    for (uint32_t r = 1; r < 64; ++r)
        if (name == db_reason_name(r) && (name != "unknown" || r == KS_DBR_UNKNOWN)) return r;
    return std::nullopt;
}

// One builder of the input, applied to the bytes so far.
void build(LineReader& in, const std::string& name, const std::vector<Arg>& a, Case& c) {
    auto want = [&](std::initializer_list<decltype(Arg::type)> types) {
        bool ok = a.size() == types.size();
        size_t i = 0;
        for (auto t : types) ok = ok && a[i++].type == t;
        if (!ok) in.fail("wrong arguments to " + name + "()");
    };
    auto& w = c.wire;
    if (name == "bytes") {
        want({Arg::Str});
        w.insert(w.end(), a[0].s.begin(), a[0].s.end());
    } else if (name == "msg" && c.kind == Kind::Postgres) {
        want({Arg::Word, Arg::Str});
        if (a[0].s.size() != 1) in.fail("a message type is one letter");
        auto m = pg_message(a[0].s[0], a[1].s);
        w.insert(w.end(), m.begin(), m.end());
    } else if (name == "packet" && c.kind == Kind::Mysql) {
        want({Arg::Num, Arg::Str});
        auto p = mysql_packet(static_cast<uint8_t>(a[0].n), a[1].s);
        w.insert(w.end(), p.begin(), p.end());
    } else if (name == "op_msg" && c.kind == Kind::Mongodb) {
        if (a.size() == 1)
            want({Arg::Json});
        else
            want({Arg::Json, Arg::Str, Arg::Json});
        try {
            auto m = a.size() == 1 ? op_msg(a[0].s) : op_msg(a[0].s, a[1].s, a[2].s);
            w.insert(w.end(), m.begin(), m.end());
        } catch (const nlohmann::json::exception& e) {
            in.fail(std::string("JSON: ") + e.what());
        }
    } else if (name == "opcode") {
        want({Arg::Num});
        if (w.size() < 16) in.fail("opcode() needs a message before it");
        for (int i = 0; i < 4; ++i) w[12 + i] = static_cast<uint8_t>(a[0].n >> (8 * i));
    } else if (name == "poke") {
        want({Arg::Num, Arg::Num});
        if (a[0].n < 0 || static_cast<size_t>(a[0].n) >= w.size()) in.fail("poke() past the end");
        w[a[0].n] = static_cast<uint8_t>(a[1].n);
    } else if (name == "cut") {
        want({Arg::Num});
        if (a[0].n < 0 || static_cast<size_t>(a[0].n) > w.size()) in.fail("cut() past the start");
        w.resize(w.size() - a[0].n);
    } else {
        in.fail("no " + name + "() for " + std::string(kind_name(c.kind)));
    }
}

Case parse_case(LineReader& in, int line) {
    Case c;
    c.line = line;
    auto kind = parse_kind(in.word());
    if (!kind) in.fail("unknown kind");
    c.kind = *kind;
    c.cls = in.word();
    if (!class_of(c.cls)) in.fail("unknown class " + c.cls);
    c.kernel = in.word();
    if (c.kernel != "pass" && c.kernel != "wait" && !reason_of(c.kernel))
        in.fail("unknown kernel verdict " + c.kernel);

    in.skip_space();
    size_t input_start = in.pos();
    std::string strings;
    bool only_strings = true;
    while (!in.at_end() && in.peek() != '#') {
        if (in.peek() == '"') {
            strings += in.strings();
            continue;
        }
        only_strings = false;
        std::string name = in.word();
        build(in, name, in.args(), c);
    }
    c.input = std::string(in.rest_from(input_start).substr(0, in.pos() - input_start));
    while (!c.input.empty() && c.input.back() == ' ') c.input.pop_back();
    if (!in.at_end()) c.note = in.note();

    if (c.input.empty()) in.fail("no input");
    if (!only_strings && !strings.empty()) in.fail("bare strings among builders: use bytes()");
    if (only_strings) {
        c.sql = c.kind == Kind::Postgres || c.kind == Kind::Mysql;
        if (c.kind == Kind::Postgres) {
            c.text = strings;
            c.wire = pg_message('Q', strings + '\0');
        } else if (c.kind == Kind::Mysql) {
            c.text = strings;
            c.wire = mysql_packet(0x03, strings);
        } else {
            c.wire.assign(strings.begin(), strings.end());
        }
    }
    return c;
}

}  // namespace

std::string Case::where() const { return "db_requests.txt:" + std::to_string(line) + ": " + input; }

std::vector<Case> parse(std::string_view content, std::string_view file) {
    std::vector<Case> out;
    int number = 0;
    size_t start = 0;
    while (start < content.size()) {
        size_t end = content.find('\n', start);
        if (end == std::string_view::npos) end = content.size();
        std::string_view line = content.substr(start, end - start);
        start = end + 1;
        ++number;
        LineReader in(line, file, number);
        if (in.at_end() || in.peek() == '#') continue;
        out.push_back(parse_case(in, number));
    }
    return out;
}

const std::vector<Case>& cases() {
    static const std::vector<Case> all = [] {
        std::ifstream f(KS_DB_CORPUS);
        if (!f) throw std::runtime_error("cannot read " KS_DB_CORPUS);
        std::stringstream content;
        content << f.rdbuf();
        return parse(content.str(), KS_DB_CORPUS);
    }();
    return all;
}

Classification classify(const Case& c) {
    switch (c.kind) {
        case Kind::Postgres:
            return c.sql ? classify_postgres_sql(c.text) : classify_postgres_messages(c.wire);
        case Kind::Mysql:
            return c.sql ? classify_mysql_sql(c.text) : classify_mysql_packets(c.wire);
        case Kind::Redis:
            return classify_redis(c.wire);
        case Kind::Mongodb:
            return classify_mongodb(c.wire);
        case Kind::Deputy:
            break;  // not a database: no requests to classify
    }
    return {};
}

Relation relation(std::string_view cls, std::string_view kernel) {
    bool pass = kernel == "pass";
    auto reason = reason_of(kernel);
    bool destructive = reason && *reason < KS_DBR_FIRST_UNPARSEABLE;
    // passed under the default policy (databases.refuse leaves them out)
    bool passed = cls == "harmless" || cls == "schema-change" || cls == "bookkeeping";
    if (passed) return pass ? Relation::Agree : Relation::Stricter;
    if (pass) return Relation::Weaker;
    if (cls == "unparseable") return destructive ? Relation::Stricter : Relation::Agree;
    return kernel == cls ? Relation::Agree : Relation::Stricter;
}

std::string_view relation_name(Relation r) {
    switch (r) {
        case Relation::Agree:
            return "agree";
        case Relation::Stricter:
            return "stricter";
        case Relation::Weaker:
            return "weaker";
    }
    return "?";
}

std::vector<uint8_t> pg_message(char type, std::string_view body) {
    std::vector<uint8_t> out{static_cast<uint8_t>(type)};
    auto len = static_cast<uint32_t>(body.size() + 4);
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(len >> s));
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

std::vector<uint8_t> mysql_packet(uint8_t command, std::string_view text) {
    size_t len = text.size() + 1;
    std::vector<uint8_t> p{static_cast<uint8_t>(len), static_cast<uint8_t>(len >> 8),
                           static_cast<uint8_t>(len >> 16), 0, command};
    p.insert(p.end(), text.begin(), text.end());
    return p;
}

std::vector<uint8_t> op_msg(std::string_view body_json, std::string_view seq_ident,
                            std::string_view seq_json) {
    std::string sections = std::string(1, '\0') + bson_document(Json::parse(body_json));
    if (!seq_ident.empty()) {
        std::string docs;
        for (const auto& d : Json::parse(seq_json)) docs += bson_document(d);
        sections += '\x01';
        put_le32(sections, static_cast<uint32_t>(4 + seq_ident.size() + 1 + docs.size()));
        sections += std::string(seq_ident) + '\0' + docs;
    }
    std::string m;
    put_le32(m, static_cast<uint32_t>(16 + 4 + sections.size()));
    put_le32(m, 7);     // requestID
    put_le32(m, 0);     // responseTo
    put_le32(m, 2013);  // OP_MSG
    put_le32(m, 0);     // flagBits
    m += sections;
    return {m.begin(), m.end()};
}

}  // namespace ks::db::corpus
