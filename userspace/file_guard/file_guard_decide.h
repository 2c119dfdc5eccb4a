// What happens to a guarded process's destructive operation on protected
// data: the decisions for the file layers' records (libc uprobes, syscall
// tracepoints, the LSM and fentry hooks) and for destructive tools held at
// exec. Pure functions of the record and the compiled policy; the Enforcer
// (actions/enforcer.h) carries them out and audit/render.h writes them.
#pragma once

#include <optional>
#include <string>

#include "abi/decode.h"
#include "decision/decision.h"
#include "file_guard/exec_rules.h"
#include "nlohmann/json.hpp"
#include "policy/compile.h"

namespace ks {

// The object of a file record: the path resolved against its start
// directory (the LSM and fentry layers send the object's own path).
std::string file_event_path(const FileEvent& ev);
// A path argument of pid's call (relative to dfd, or to its working
// directory for AT_FDCWD; "" for dfd itself) as the daemon reaches it,
// through the caller's /proc: its root, cwd or fd.
std::string caller_path(int pid, int dfd, const std::string& path);

// The kernel already acted (refused with EPERM, killed or stopped the task):
// this says what that was, and what the session gets on top of it.
Decision decide_file(const FileEvent& ev, const policy::CompiledPolicy& policy);

// The record's own fields (op, path, match, layer, object...).
nlohmann::json file_event_facts(const FileEvent& ev);

// A watched tool held at exec. match: what the argv rules found (nullopt:
// nothing destructive); self: the operand is one of killswitch's own objects.
Decision decide_exec(const ExecCheckEvent& ev, const std::optional<ExecMatch>& match, bool self,
                     const policy::CompiledPolicy& policy);

}  // namespace ks
