// The databases killswitch watches: a kind (the protocol) and an address, a
// TCP host:port (or every address on a port) or a unix socket path.
//
// Written as KIND=ADDRESS on the command line (`--db postgres=10.0.0.5:5432`)
// and as {kind: K, address: A} in the policy:
//   postgres=127.0.0.1:5432   one IPv4 address
//   mysql=[::1]:3306          one IPv6 address
//   redis=*:6379  redis=:6379 every address, IPv4 and IPv6
//   redis=localhost:6379      127.0.0.1 and ::1
//   postgres=/run/postgresql/.s.PGSQL.5432   a unix socket
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ks::db {

// Deputy: not a database, the unix socket of a service that acts for whoever
// asks (policy processes.deputies); a guarded process may not connect to it.
enum class Kind : uint32_t { Postgres = 1, Mysql = 2, Redis = 3, Mongodb = 4, Deputy = 5 };

std::string_view kind_name(Kind k);
std::optional<Kind> parse_kind(std::string_view name);

struct Endpoint {
    Kind kind = Kind::Postgres;
    std::string address;  // as written
    // TCP: the addresses (IPv4 as IPv4-mapped IPv6); empty: every address.
    std::vector<std::array<uint8_t, 16>> addrs;
    uint16_t port = 0;
    std::string unix_path;  // set for a unix socket

    [[nodiscard]] bool is_unix() const { return !unix_path.empty(); }
    [[nodiscard]] std::string str() const;  // "postgres=127.0.0.1:5432"
    bool operator==(const Endpoint&) const = default;
};

// "ADDRESS" for a kind; the error says what is wrong with it.
Result<Endpoint> parse_address(Kind kind, std::string_view address);
// "KIND=ADDRESS".
Result<Endpoint> parse_endpoint(std::string_view spec);

// Ports 5432, 3306, 6379 and 27017 on every address, and the standard unix
// sockets of PostgreSQL, MySQL/MariaDB and Redis.
std::vector<Endpoint> default_endpoints();

// The unix socket paths of the defaults, with shell patterns
// (/var/run/postgresql/.s.PGSQL.*): the paths that exist now.
std::vector<std::string> expand_unix_pattern(const std::string& pattern);

}  // namespace ks::db
