// Shared by the relay's PostgreSQL unit tests (row checks, effect probes):
// a compiled policy, a relayed request, and protocol messages byte for byte.
#pragma once

#include <gtest/gtest.h>
#include <killswitch/abi/events.h>

#include <memory>
#include <string>
#include <string_view>

#include "db_guard/db_relay_decide.h"
#include "db_relay/wire.h"
#include "policy/compile.h"
#include "policy/policy.h"

namespace ks {

inline policy::CompiledPolicy compiled(const std::string& databases = "") {
    auto r = policy::parse_policy("databases:\n  mode: enforce\n" + databases, "p.yaml");
    EXPECT_TRUE(r.policy) << (r.errors.empty() ? "" : r.errors[0].str());
    auto c = policy::compile(r.policy.value_or(policy::default_policy()), "",
                             {"", "/sys/fs/cgroup", ""}, nullptr);
    EXPECT_TRUE(c);
    return *c;
}

inline RelayedRequest pg(std::string_view sql, uint8_t type = 'Q') {
    return {KS_DB_POSTGRES, "127.0.0.1:5432", 1, false, type, sql};
}

// The relay's side, byte for byte.
inline std::string be32(uint32_t v) {
    std::string s;
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
    return s;
}
inline std::string msg(char type, const std::string& body) {
    return std::string(1, type) + be32(static_cast<uint32_t>(body.size() + 4)) + body;
}
inline std::string query(const std::string& sql) { return msg('Q', sql + std::string(1, '\0')); }
inline std::string ready(char status) { return msg('Z', std::string(1, status)); }
inline std::string error(const std::string& code, const std::string& text) {
    return msg('E', "SERROR" + std::string(1, '\0') + "C" + code + std::string(1, '\0') + "M" +
                        text + std::string(2, '\0'));
}
inline const std::string kRowDesc = msg('T', std::string(2, '\0'));
inline const std::string kRow = msg('D', std::string("\0\1\0\0\0\1"
                                                     "1",
                                                     7));
inline const std::string kDone = msg('C', std::string("SELECT 1") + '\0');

// A connection past its startup, idle with the given transaction status.
inline std::unique_ptr<relay::Wire> connected(char status) {
    auto w = relay::make_wire(relay::Protocol::Postgres, "tok");
    std::string body = be32(196608) + "user" + std::string(1, '\0') + "u" + std::string(2, '\0');
    std::string in = be32(static_cast<uint32_t>(body.size() + 4)) + body, up, down;
    relay::Judge pass = [](const relay::Request&) { return relay::Verdict{}; };
    EXPECT_TRUE(w->from_client(in, up, down, pass));
    std::string server = msg('R', be32(0)) + ready(status);
    EXPECT_TRUE(w->from_server(server, down));
    return w;
}

}  // namespace ks
