// haproxy's and nginx's configuration as far as databases.discover needs
// it: which listener forwards, as plain TCP, to which addresses (haproxy
// "bind" in a frontend or listen section to the "server" lines of its
// backends; nginx "listen" in a stream server to its "proxy_pass", an
// address or an upstream's "server" lines). Read to find the forwarders
// in front of a watched database, never to judge what they forward.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>

#include "db_guard/listeners.h"

namespace ks::db {

namespace {

std::string lower(std::string s) {
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

// A listener as the route names it: a unix path, or [HOST]:PORT.
std::string listen_spec(std::string a) {
    if (a.rfind("unix:", 0) == 0) return a.substr(5);
    if (!a.empty() && a[0] == '/') return a;
    if (std::all_of(a.begin(), a.end(), ::isdigit)) return ":" + a;
    return a;
}

// haproxy's address forms: [ipv4@|ipv6@|unix@]ADDR, a path; fd@, abns@,
// sockpair@ and the like name nothing a client here connects to by address.
std::optional<std::string> haproxy_address(const std::string& a) {
    auto at = a.find('@');
    if (at == std::string::npos) return a.empty() ? std::nullopt : std::optional(a);
    std::string family = lower(a.substr(0, at)), rest = a.substr(at + 1);
    if (family == "ipv4" || family == "ipv6" || family == "tcp" || family == "tcp4" ||
        family == "tcp6" || family == "unix")
        return rest;
    return std::nullopt;
}

}  // namespace

std::vector<ForwardRoute> haproxy_routes(const std::vector<std::string>& files) {
    struct Section {
        std::string kind, name, mode;  // mode: its own, else the defaults' before it
        std::vector<std::string> binds, servers, backends;
    };
    std::vector<Section> sections;
    std::string default_mode = "tcp";
    for (const auto& text : files) {
        std::istringstream in(text);
        std::string line;
        while (std::getline(in, line)) {
            if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
            std::istringstream words(line);
            std::vector<std::string> w;
            for (std::string x; words >> x;) w.push_back(x);
            if (w.empty()) continue;
            std::string key = lower(w[0]);
            if (key == "global" || key == "defaults" || key == "frontend" || key == "backend" ||
                key == "listen" || key == "userlist" || key == "peers" || key == "resolvers" ||
                key == "program" || key == "cache" || key == "mailers" || key == "ring" ||
                key == "http-errors") {
                sections.push_back({key, w.size() > 1 ? w[1] : "", default_mode, {}, {}, {}});
                continue;
            }
            if (sections.empty()) continue;
            Section& s = sections.back();
            if (key == "mode" && w.size() > 1) {
                s.mode = lower(w[1]);
                if (s.kind == "defaults") default_mode = s.mode;
            } else if (key == "bind" && w.size() > 1) {
                std::istringstream list(w[1]);
                for (std::string a; std::getline(list, a, ',');)
                    if (auto addr = haproxy_address(a)) s.binds.push_back(listen_spec(*addr));
            } else if (key == "server" && w.size() > 2) {
                if (auto addr = haproxy_address(w[2])) s.servers.push_back(*addr);
            } else if ((key == "default_backend" || key == "use_backend") && w.size() > 1) {
                s.backends.push_back(w[1]);
            }
        }
    }
    std::map<std::string, const Section*> backends;
    for (const auto& s : sections)
        if (s.kind == "backend" || s.kind == "listen") backends[s.name] = &s;
    std::vector<ForwardRoute> out;
    for (const auto& s : sections) {
        if ((s.kind != "frontend" && s.kind != "listen") || s.binds.empty()) continue;
        if (s.mode != "tcp") continue;  // http: the client speaks HTTP to it
        ForwardRoute r;
        r.targets = s.servers;
        for (const auto& b : s.backends)
            if (auto it = backends.find(b); it != backends.end())
                r.targets.insert(r.targets.end(), it->second->servers.begin(),
                                 it->second->servers.end());
        if (r.targets.empty()) continue;
        for (const auto& bind : s.binds) {
            r.listen = bind;
            out.push_back(r);
        }
    }
    return out;
}

std::vector<ForwardRoute> nginx_stream_routes(
    const std::string& main, const std::function<std::vector<std::string>(const std::string&)>&
                                 include) {
    // Tokens: words, ';', '{', '}'; '#' to the end of the line; quotes.
    std::vector<std::string> tokens;
    std::set<std::string> included;
    std::function<void(const std::string&, int)> lex = [&](const std::string& text, int depth) {
        std::vector<std::string> mine;
        for (size_t i = 0; i < text.size();) {
            char c = text[i];
            if (std::isspace(static_cast<unsigned char>(c))) {
                ++i;
            } else if (c == '#') {
                while (i < text.size() && text[i] != '\n') ++i;
            } else if (c == ';' || c == '{' || c == '}') {
                mine.emplace_back(1, c);
                ++i;
            } else if (c == '"' || c == '\'') {
                size_t end = text.find(c, i + 1);
                if (end == std::string::npos) end = text.size();
                mine.push_back(text.substr(i + 1, end - i - 1));
                i = end + 1;
            } else {
                size_t j = i;
                while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j])) &&
                       text[j] != ';' && text[j] != '{' && text[j] != '}')
                    ++j;
                mine.push_back(text.substr(i, j - i));
                i = j;
            }
        }
        // include PATTERN; is replaced by the files it names (nginx's own
        // order: glob order), to a depth that no sane configuration needs.
        for (size_t k = 0; k < mine.size(); ++k) {
            if (mine[k] == "include" && k + 2 < mine.size() && mine[k + 2] == ";" && depth < 8) {
                if (included.insert(mine[k + 1]).second)
                    for (const auto& t : include(mine[k + 1])) lex(t, depth + 1);
                k += 2;
                continue;
            }
            tokens.push_back(mine[k]);
        }
    };
    lex(main, 0);

    // Directives with their arguments and the block (if any) after them.
    std::vector<std::string> stack;  // the names of the open blocks
    std::map<std::string, std::vector<std::string>> upstreams;
    struct Server {
        std::vector<std::string> listens;
        std::string pass;
    };
    std::vector<Server> servers;
    std::string upstream;  // the upstream block open
    std::vector<std::string> args;
    for (const auto& t : tokens) {
        if (t == "{") {
            std::string name = args.empty() ? "" : args[0];
            bool in_stream = std::find(stack.begin(), stack.end(), "stream") != stack.end();
            if (in_stream && name == "upstream" && args.size() > 1) upstream = args[1];
            if (in_stream && name == "server" && stack.back() == "stream") servers.emplace_back();
            stack.push_back(name);
            args.clear();
        } else if (t == "}") {
            if (!stack.empty()) {
                if (stack.back() == "upstream") upstream.clear();
                stack.pop_back();
            }
            args.clear();
        } else if (t == ";") {
            bool in_stream = std::find(stack.begin(), stack.end(), "stream") != stack.end();
            if (in_stream && args.size() > 1) {
                if (!upstream.empty() && args[0] == "server")
                    upstreams[upstream].push_back(args[1]);
                else if (!stack.empty() && stack.back() == "server" && !servers.empty()) {
                    if (args[0] == "listen" &&
                        std::none_of(args.begin() + 1, args.end(),
                                     [](const std::string& a) { return a == "udp"; }))
                        servers.back().listens.push_back(listen_spec(args[1]));
                    if (args[0] == "proxy_pass") servers.back().pass = args[1];
                }
            }
            args.clear();
        } else {
            args.push_back(t);
        }
    }
    std::vector<ForwardRoute> out;
    auto address = [](const std::string& a) { return a.rfind("unix:", 0) == 0 ? a.substr(5) : a; };
    for (const auto& s : servers) {
        if (s.pass.empty() || s.pass[0] == '$') continue;  // a variable: known when it runs
        ForwardRoute r;
        if (auto it = upstreams.find(s.pass); it != upstreams.end()) {
            for (const auto& a : it->second) r.targets.push_back(address(a));
        } else {
            r.targets.push_back(address(s.pass));
        }
        for (const auto& l : s.listens) {
            r.listen = l;
            out.push_back(r);
        }
    }
    return out;
}

}  // namespace ks::db
