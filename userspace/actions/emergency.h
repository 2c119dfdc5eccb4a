// The emergency commands: freeze, thaw or kill guarded sessions by writing
// their cgroup files. The same code runs in the daemon (which audits it) and
// in the CLI when no daemon answers, so the commands work either way.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace ks {

enum class EmergencyOp { Freeze, Thaw, Kill };
const char* emergency_op_name(EmergencyOp op);  // "freeze", "thaw", "kill"
std::optional<EmergencyOp> parse_emergency_op(const std::string& name);

// What to act on: every session (--all), one session by name, a cgroup by
// path (relative to the cgroup2 mount), or the session a process is in.
struct EmergencyTarget {
    enum class Kind { All, Session, Cgroup, Pid } kind = Kind::All;
    std::string value;

    [[nodiscard]] nlohmann::json to_json() const;
    static Result<EmergencyTarget> from_json(const nlohmann::json& j);
};

// The absolute cgroup directories a target names. cgroup2 is the mount,
// parent the directory of session cgroups (<cgroup2>/killswitch). A --pid
// must be inside a session: freezing whatever cgroup a process happens to be
// in (a system service's) is not what the command is for.
Result<std::vector<std::string>> resolve_emergency_target(const std::string& cgroup2,
                                                          const std::string& parent,
                                                          const EmergencyTarget& target);

struct EmergencyResult {
    std::string cgroup;    // relative to the cgroup2 mount
    size_t processes = 0;  // before the operation
    bool ok = false;
    bool confirmed = false;  // cgroup.events says frozen 1 / frozen 0 / populated 0
    double elapsed_ms = 0;   // write to confirmation
    std::string error;

    [[nodiscard]] nlohmann::json to_json() const;
};

// Acts on every directory; waits (up to 2 s each) until the kernel confirms.
std::vector<EmergencyResult> apply_emergency(EmergencyOp op, const std::string& cgroup2,
                                             const std::vector<std::string>& dirs);

}  // namespace ks
