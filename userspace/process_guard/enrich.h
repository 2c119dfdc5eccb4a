// The pipeline's second step: a kernel record's header, enriched with what
// user space knows of the process (its executable and parent chain) and of
// its session (name, cgroup).
#pragma once

#include "abi/decode.h"
#include "decision/decision.h"
#include "process_guard/process_table.h"
#include "process_guard/sessions.h"

namespace ks {

Subject enrich(const EventHeader& h, const ProcessTable& table, const SessionManager& sessions);

// The name of a session, also of one that ended lately (its records may be
// read after its last process exited); "unknown-ID" for one long gone.
std::string session_name(const SessionManager& sessions, uint32_t id);

}  // namespace ks
