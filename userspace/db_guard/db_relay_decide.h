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
#include <vector>

#include "db_guard/classify.h"
#include "db_guard/volume.h"
#include "db_relay/wire.h"
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

// True when the request can go on without the daemon: every statement in it
// harmless and nothing in it that counts against the destructive volume, so
// there is nothing to refuse, count or record, under any policy (the
// policy's lists only ever make a statement less harmless). Pure and
// thread-safe: the relay's thread asks it of each request.
bool relay_passes_unasked(const RelayedRequest& r);

// The tables to ask the server about before refusing (databases.check_rows):
// a PostgreSQL simple query of nothing but DROP TABLE or DROP COLUMN
// statements that lose nothing but those tables' rows. Empty: nothing to
// ask (refuse, or pass, as ruled).
std::vector<std::string> rows_to_check(const RelayedRequest& r, const db::Classification& c,
                                       const policy::CompiledPolicy& policy);

// The server's answers applied: a statement whose every table has no row
// (or does not exist) loses nothing and becomes a schema change; the
// others keep their class, their detail saying what the server said.
void apply_row_checks(db::Classification& c, const std::vector<relay::RowCheck>& checks);
nlohmann::json row_checks_json(const std::vector<relay::RowCheck>& checks);

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

// Who reads a refusal of the relay, for the record ("the client, in a
// PostgreSQL ErrorResponse (42501)"...).
std::string relay_told_by(uint32_t kind);

// Whether the policy lets a request through that the ruling refuses: monitor
// mode, action audit, or the session's window.
bool relay_lets_through(bool window, const policy::Policy& p);

}  // namespace ks
