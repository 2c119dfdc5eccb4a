// What the relay's requests mean (userspace/db_relay): unlike the socket send
// path, where the kernel has already decided, the relay asks before the
// request goes on, and the answer is made here with the full parsers and the
// policy: the request is refused when one of its statements is destructive
// (or unreadable, by policy) or when it takes the session over its
// destructive volume. Pure; carried out by the daemon (daemon/db_relay.cpp).
#pragma once

#include <cstdint>
#include <map>
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
    uint8_t type = 0;       // 'Q', 'P', 'B'; the MySQL command; 0 (Redis)
    std::string_view text;  // SQL text (a Bind's statement), or the Redis command as sent
    // A PostgreSQL Parse or Bind with the values the Bind gives its $n (as
    // text; nullopt: NULL): what it reaches can be asked. Not bound: a
    // Parse whose Binds are judged each (nothing is asked of the Parse), or
    // a Bind whose values could not be read (unread says why).
    bool bound = false;
    std::vector<std::optional<std::string>> params;
    std::string unread;

    // A Parse without its Bind: nothing runs yet; each Bind is judged.
    [[nodiscard]] bool waits_for_binds() const;
};

db::Classification classify_relayed(const RelayedRequest& r, const db::Options& options);

// What the request counts against the session's volume budget.
db::Volume relayed_volume(const RelayedRequest& r, const db::Classification& c);

// True when the request can go on without the daemon: every statement in it
// harmless, nothing in it that counts against the destructive volume and no
// DELETE or UPDATE to ask the server about (unless known pins it to a row),
// so there is nothing to refuse, count or record, under any policy (the
// policy's lists only ever make a statement less harmless). forget: set
// when the request may change what a table's name or keys mean
// (keeps_unique_keys). Pure and thread-safe: the relay's thread asks it of
// each request.
using UniqueKeys = relay::UniqueKeys;
bool relay_passes_unasked(const RelayedRequest& r, const UniqueKeys& known, bool& forget);

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

// databases.effect: the probe that asks the server what the request's
// DELETEs and UPDATEs with a limiting-looking WHERE would reach (a
// PostgreSQL simple query; Statement::reaches). sql: its statements, for
// Wire::start_probe (the request's own statements before the last such one,
// BEGIN left out, then per statement (in the ANALYZE round ANALYZE of each
// table,) EXPLAIN of the statement, and each table's name, unique keys,
// whether it has statistics, and size as the server knows them).
// cannot: why no probe can stand for the request (it ends a transaction or
// a savepoint first; EXPLAIN ANALYZE or PREPARE holds the statement). Both
// empty: nothing to ask.
struct EffectProbe {
    std::string sql;
    std::string cannot;
};
// The rounds of a probe (ProbeAnswer::round). First: a statement that a
// unique key may pin to one row (an equality on every table it reaches)
// does not ask whether the tables have statistics: asking is the dearest
// part on a connection's first probe. Statistics: that, for a statement the
// first round found under the limits and not pinned. Analyze: ANALYZE of
// each table first, for a table without statistics.
inline constexpr int kProbeFirst = 1, kProbeStatistics = 2, kProbeAnalyze = 3;
EffectProbe effect_probe(const RelayedRequest& r, const db::Classification& c,
                         const policy::Policy& p, int round = kProbeFirst);

// A WHERE that holds every column of a unique key equal to a constant
// reaches one row at most and needs no probe (an ORM's UPDATE ... WHERE
// id = 5, row after row): such statements are taken out of the probe's
// reach (Statement::reaches cleared) when every table they reach is known
// (what the connection's earlier probes learned) and pinned so.
void drop_pinned(db::Classification& c, const UniqueKeys& known);
// False when the request may change what a table name or a unique key
// means (DDL, SET...: anything but reads, writes and transaction control,
// and any statement that names search_path, set_config, a role or an
// authorization): what every connection learned is forgotten.
bool keeps_unique_keys(const db::Classification& c);
// The same for MySQL, whose learned keys are the connection's own: false
// for USE (COM_INIT_DB) and anything but reads, writes, SET and
// transaction control.
bool keeps_mysql_keys(const db::Classification& c);

// The probe's answer applied (Statement::reached): a statement whose rows
// reach the policy's limits becomes delete-all or update-all; one whose
// reach could not be learned (the probe could not stand for it, or the
// server failed it for a reason the statement itself would not meet)
// becomes unparseable, which the policy refuses by default; one the server
// would fail alike (no such table, no right to it, a failed transaction)
// stays as it was.
// learned: the unique keys the probe said each table has. A statement
// pinned to a row by a unique key passes; one whose rows reach the limits
// is refused, whatever round; one under them passes when its tables have
// statistics. Returns the round to ask next (0: decided): Statistics when
// the first round did not ask, Analyze when a table has none (its answer,
// applied the same way, decides).
int apply_effect_probe(db::Classification& c, const relay::ProbeAnswer& a, const policy::Policy& p,
                       UniqueKeys* learned = nullptr);
void effect_unknown(db::Classification& c, const std::string& why);
nlohmann::json reached_json(const db::Statement& st);

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
