// What the relay's requests mean (userspace/db_relay): unlike the socket send
// path, where the kernel has already decided, the relay asks before the
// request goes on, and the answer is made here with the full parsers and the
// policy: the request is refused when one of its statements is destructive
// (or unreadable, by policy) or when it takes the session over its
// destructive volume. Pure; carried out by the daemon (daemon/db_relay.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "db_guard/classify.h"
#include "db_guard/volume.h"
#include "decision/decision.h"
#include "nlohmann/json.hpp"
#include "policy/compile.h"

namespace ks {

// A request as the relay read it.
struct RelayedRequest {
    uint32_t kind = 0;  // KS_DB_*
    std::string address;
    uint64_t connection = 0;
    bool unix_socket = false;
    uint8_t type = 0;       // 'Q', 'P'; the MySQL command; 0 (Redis)
    std::string_view text;  // SQL text, or the Redis command as sent
};

db::Classification classify_relayed(const RelayedRequest& r, const db::Options& options);

// Why the whole request is refused, if it is: the statement it is about and
// the rule. over_volume: the budget's words when it went over (rule db:volume).
struct RelayRuling {
    bool refuse = false;
    size_t culprit = 0;
    std::string rule;
    std::string reason;
};
RelayRuling rule_relayed(const db::Classification& c, const std::string& over_volume,
                         const policy::CompiledPolicy& policy);

// The decision for one statement of the request. window: the session's
// maintenance window is open. told_by: where the client reads a refusal
// ("postgres ErrorResponse"...).
Decision decide_relayed(const RelayedRequest& r, const db::Statement& st, size_t index,
                        const RelayRuling& ruling, bool window, const policy::Policy& p);

nlohmann::json relayed_facts(const RelayedRequest& r, const db::Statement& st, size_t index,
                             const RelayRuling& ruling, const policy::Policy& p);

// Whether the policy lets a request through that the ruling refuses: monitor
// mode, action audit, or the session's window.
bool relay_lets_through(bool window, const policy::Policy& p);

}  // namespace ks
