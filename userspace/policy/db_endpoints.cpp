#include "policy/db_endpoints.h"

#include <arpa/inet.h>
#include <glob.h>

#include <charconv>
#include <cstring>

namespace ks::db {

std::string_view kind_name(Kind k) {
    switch (k) {
        case Kind::Postgres:
            return "postgres";
        case Kind::Mysql:
            return "mysql";
        case Kind::Redis:
            return "redis";
        case Kind::Mongodb:
            return "mongodb";
        case Kind::Deputy:
            return "deputy";
    }
    return "unknown";
}

std::optional<Kind> parse_kind(std::string_view name) {
    if (name == "postgres" || name == "postgresql") return Kind::Postgres;
    if (name == "mysql" || name == "mariadb") return Kind::Mysql;
    if (name == "redis") return Kind::Redis;
    if (name == "mongodb" || name == "mongo") return Kind::Mongodb;
    return std::nullopt;
}

std::string Endpoint::str() const { return std::string(kind_name(kind)) + "=" + address; }

namespace {

std::array<uint8_t, 16> mapped_v4(const in_addr& a) {
    std::array<uint8_t, 16> out{};
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, &a, 4);
    return out;
}

}  // namespace

Result<Endpoint> parse_address(Kind kind, std::string_view address) {
    Endpoint ep;
    ep.kind = kind;
    ep.address = std::string(address);
    if (address.empty()) return make_error("empty address");
    if (address.front() == '/') {
        if (address.size() >= 108) return make_error("unix socket path longer than 107 bytes");
        ep.unix_path = std::string(address);
        return ep;
    }
    std::string_view host, port;
    if (address.front() == '[') {
        auto close = address.find(']');
        if (close == std::string_view::npos || close + 1 >= address.size() ||
            address[close + 1] != ':')
            return make_error("an IPv6 address is written [ADDR]:PORT");
        host = address.substr(1, close - 1);
        port = address.substr(close + 2);
    } else {
        auto colon = address.rfind(':');
        if (colon == std::string_view::npos)
            return make_error("expected HOST:PORT, [IPV6]:PORT, *:PORT or a unix socket path");
        host = address.substr(0, colon);
        port = address.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return make_error("an IPv6 address is written [ADDR]:PORT");
    }
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
        return make_error("port '" + std::string(port) + "' is not a number from 1 to 65535");
    ep.port = static_cast<uint16_t>(p);
    std::string h(host);
    if (h.empty() || h == "*") return ep;  // every address
    if (h == "localhost") {
        in_addr v4{};
        inet_pton(AF_INET, "127.0.0.1", &v4);
        ep.addrs.push_back(mapped_v4(v4));
        std::array<uint8_t, 16> v6{};
        inet_pton(AF_INET6, "::1", v6.data());
        ep.addrs.push_back(v6);
        return ep;
    }
    in_addr v4{};
    std::array<uint8_t, 16> v6{};
    if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
        ep.addrs.push_back(mapped_v4(v4));
    } else if (inet_pton(AF_INET6, h.c_str(), v6.data()) == 1) {
        ep.addrs.push_back(v6);
    } else {
        return make_error("'" + h +
                          "' is not an IP address (host names are not resolved: write the "
                          "address, localhost, or * for every address)");
    }
    return ep;
}

Result<Endpoint> parse_endpoint(std::string_view spec) {
    auto eq = spec.find('=');
    if (eq == std::string_view::npos)
        return make_error("'" + std::string(spec) +
                          "': expected KIND=ADDRESS (KIND: postgres, mysql, redis, mongodb)");
    auto kind = parse_kind(spec.substr(0, eq));
    if (!kind)
        return make_error("'" + std::string(spec.substr(0, eq)) +
                          "' is not a database kind (postgres, mysql, redis, mongodb)");
    auto ep = parse_address(*kind, spec.substr(eq + 1));
    if (!ep) return ep.error().wrap("'" + std::string(spec) + "'");
    return ep;
}

std::vector<Endpoint> default_endpoints() {
    std::vector<Endpoint> out;
    for (const char* spec :
         {"postgres=*:5432", "mysql=*:3306", "redis=*:6379", "mongodb=*:27017",
          "postgres=/var/run/postgresql/.s.PGSQL.*", "postgres=/run/postgresql/.s.PGSQL.*",
          "mysql=/var/run/mysqld/mysqld.sock", "mysql=/run/mysqld/mysqld.sock",
          "redis=/var/run/redis/*.sock", "redis=/run/redis/*.sock"})
        out.push_back(parse_endpoint(spec).value());
    return out;
}

std::vector<std::string> expand_unix_pattern(const std::string& pattern) {
    std::vector<std::string> out;
    glob_t g{};
    if (::glob(pattern.c_str(), 0, nullptr, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
    ::globfree(&g);
    return out;
}

}  // namespace ks::db
