// What the records of the socket send path (bpf/db_wire.bpf.c) mean: the
// kernel already passed or refused the request; the full parser reads each
// statement for the record, and the statement a refusal is about gets the
// policy's action (the connection is reset, the session follows
// databases.session). Pure; carried out by the Enforcer.
#pragma once

#include <string>

#include "abi/decode.h"
#include "db_guard/classify.h"
#include "decision/decision.h"
#include "nlohmann/json.hpp"
#include "policy/compile.h"

namespace ks {

// The statements of a request, as the full parser sees them; never empty
// (a request the kernel judged by its framing alone is one statement).
db::Classification classify_db_request(const DbWireEvent& ev, const db::Options& options);

// The statement a refusal is about: the first the policy objects to, else
// the first that is not harmless.
size_t db_culprit(const db::Classification& c, const policy::CompiledPolicy& policy);

// One statement of a request; culprit: the one the refusal is about.
Decision decide_db_request(const DbWireEvent& ev, const db::Statement& st, bool culprit,
                           const policy::CompiledPolicy& policy);

// A guarded process connected to a watched unix socket.
Decision decide_db_unix_connect(const DbWireEvent& ev);

// The kernel passed a statement the parser objects to under the policy
// ("" when it did not): the corpus exists to keep this from happening.
std::string db_disagreement(const DbWireEvent& ev, const db::Statement& st,
                            const policy::CompiledPolicy& policy);

nlohmann::json db_request_facts(const DbWireEvent& ev, const db::Statement& st, bool culprit,
                                const policy::CompiledPolicy& policy);
nlohmann::json db_unix_connect_facts(const DbWireEvent& ev, const policy::CompiledPolicy& policy);

// Bytes that are not printable as \xNN, cut at max ("..." marks the cut).
std::string printable(std::string_view s, size_t max);

// The service behind a deputy socket (processes.deputies), from its path:
// "systemd", "D-Bus", "Docker"...; "a service" when it cannot tell.
std::string deputy_service(const std::string& path);

}  // namespace ks
