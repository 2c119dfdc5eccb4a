// Redis: RESP arrays of bulk strings and inline commands, each command
// classified by its name and arguments.
#include <algorithm>
#include <optional>

#include "db_guard/classify.h"

namespace ks::db {
namespace {

constexpr size_t kMaxArgs = 1 << 20;

struct Reader {
    std::string_view in;
    size_t pos = 0;

    std::optional<std::string_view> line() {
        size_t e = in.find("\r\n", pos);
        if (e == std::string_view::npos) return std::nullopt;
        auto l = in.substr(pos, e - pos);
        pos = e + 2;
        return l;
    }
    static std::optional<long long> number(std::string_view s) {
        if (s.empty() || s.size() > 18) return std::nullopt;
        long long v = 0;
        bool neg = s[0] == '-';
        for (size_t i = neg ? 1 : 0; i < s.size(); ++i) {
            if (s[i] < '0' || s[i] > '9') return std::nullopt;
            v = v * 10 + (s[i] - '0');
        }
        return neg ? -v : v;
    }
};

Statement classify_command(const std::vector<std::string>& args, std::string text) {
    Statement st{std::move(text), Class::Harmless, ""};
    if (args.empty()) return st;
    std::string cmd = ascii_upper(args[0]);
    auto has_arg = [&](const char* word) {
        for (size_t i = 1; i < args.size(); ++i)
            if (ascii_upper(args[i]) == word) return true;
        return false;
    };
    if (cmd == "FLUSHALL" || cmd == "FLUSHDB") {
        st.cls = Class::FlushAll;
        st.detail = cmd;
    } else if (cmd == "SHUTDOWN" && has_arg("NOSAVE")) {
        st.cls = Class::ShutdownNoSave;
        st.detail = "SHUTDOWN NOSAVE";
    } else if (cmd == "SWAPDB") {
        st.cls = Class::SwapDb;
        st.detail = "SWAPDB";
    } else if (cmd == "CONFIG" && args.size() >= 3 && ascii_upper(args[1]) == "SET") {
        // CONFIG SET takes parameter/value pairs: where or whether the data
        // is kept on disk, or a file the server writes.
        for (size_t i = 2; i < args.size(); i += 2) {
            std::string p = ascii_upper(args[i]);
            if (p == "DIR" || p == "DBFILENAME" || p == "APPENDFILENAME" || p == "APPENDDIRNAME" ||
                p == "SAVE" || p == "APPENDONLY") {
                st.cls = Class::ConfigSetPath;
                st.detail = "CONFIG SET " + p;
            } else if (p == "LOGFILE" && st.cls == Class::Harmless) {
                st.cls = Class::HostAccess;
                st.detail = "CONFIG SET LOGFILE: a file of the server's host";
            }
        }
    } else if (cmd == "MODULE" && args.size() >= 2 && ascii_upper(args[1]).rfind("LOAD", 0) == 0) {
        st.cls = Class::HostAccess;
        st.detail = "MODULE " + ascii_upper(args[1]) + ": code loaded into the server";
    } else if (cmd == "DEBUG") {
        st.cls = Class::HostAccess;
        st.detail = "DEBUG: the server's internals (reload, crash, change its data)";
    } else if (cmd == "MIGRATE") {
        st.cls = Class::HostAccess;
        st.detail = std::string("MIGRATE: keys sent to another server") +
                    (has_arg("COPY") ? "" : " and deleted here");
    } else if ((cmd == "REPLICAOF" || cmd == "SLAVEOF") &&
               !(args.size() == 3 && ascii_upper(args[1]) == "NO")) {
        // REPLICAOF NO ONE stops replicating (NO with anything else is an
        // error of the server's).
        st.cls = Class::FlushAll;
        st.detail = cmd + ": every key replaced by another server's";
    } else if (cmd == "EVAL" || cmd == "EVAL_RO") {
        // A script that names a destructive command can run it.
        std::string body = args.size() > 1 ? ascii_upper(args[1]) : "";
        for (const char* bad : {"FLUSHALL", "FLUSHDB", "SHUTDOWN", "SWAPDB", "CONFIG"})
            if (body.find(bad) != std::string::npos) {
                st.cls = Class::OpaqueCode;
                st.detail = std::string("EVAL script that calls ") + bad;
            }
    } else if (cmd == "EVALSHA" || cmd == "EVALSHA_RO" || cmd == "FCALL" || cmd == "FCALL_RO" ||
               cmd == "SCRIPT" || cmd == "FUNCTION") {
        st.cls = Class::OpaqueCode;
        st.detail = cmd + ": code whose commands cannot be seen";
    }
    return st;
}

}  // namespace

Classification classify_redis(std::span<const uint8_t> bytes) {
    Classification out;
    Reader r{std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())};
    while (r.pos < r.in.size()) {
        size_t start = r.pos;
        std::vector<std::string> args;
        if (r.in[r.pos] == '*') {
            auto l = r.line();
            auto n = l ? Reader::number(l->substr(1)) : std::nullopt;
            if (!n || *n < 0 || static_cast<size_t>(*n) > kMaxArgs) {
                out.statements.push_back({std::string(r.in.substr(start)), Class::Unparseable,
                                          "RESP array header cut short or malformed"});
                return out;
            }
            for (long long i = 0; i < *n; ++i) {
                auto h = r.line();
                auto len = h && !h->empty() && (*h)[0] == '$' ? Reader::number(h->substr(1))
                                                              : std::nullopt;
                if (!len || *len < 0 || r.in.size() - r.pos < static_cast<size_t>(*len) + 2 ||
                    r.in.substr(r.pos + *len, 2) != "\r\n") {
                    out.statements.push_back({std::string(r.in.substr(start)), Class::Unparseable,
                                              "RESP bulk string cut short or malformed"});
                    return out;
                }
                args.emplace_back(r.in.substr(r.pos, *len));
                r.pos += *len + 2;
            }
        } else {
            // Inline command: words separated by spaces, ended by CRLF (or LF).
            size_t e = r.in.find('\n', r.pos);
            if (e == std::string_view::npos) {
                out.statements.push_back({std::string(r.in.substr(start)), Class::Unparseable,
                                          "inline command cut short"});
                return out;
            }
            std::string_view l = r.in.substr(r.pos, e - r.pos);
            if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
            r.pos = e + 1;
            size_t i = 0;
            while (i < l.size()) {
                while (i < l.size() && (l[i] == ' ' || l[i] == '\t')) ++i;
                size_t j = i;
                while (j < l.size() && l[j] != ' ' && l[j] != '\t') ++j;
                if (j > i) args.emplace_back(l.substr(i, j - i));
                i = j;
            }
        }
        std::string text;
        for (const auto& a : args) text += (text.empty() ? "" : " ") + a;
        out.statements.push_back(classify_command(args, text));
    }
    return out;
}

}  // namespace ks::db
