// The one audit renderer: (event, subject, the event's own facts, decision,
// what was done) -> the record. Field meanings: docs/audit-schema.md.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "decision/decision.h"

namespace ks {

// The fields every process record has: ts, event, pid, ppid, tid, comm, exe,
// uid, session, session_id, cgroup (or cgroup_id) and lineage.
nlohmann::json render_subject(std::string_view event, const Subject& s);

// A decision record: the subject's fields, the facts, then verdict, action,
// prevented, rule, reason, note, window, session_action and what the
// Enforcer reported.
nlohmann::json render(std::string_view event, const Subject& s, const nlohmann::json& facts,
                      const Decision& d, const ActionResult& r);

}  // namespace ks
