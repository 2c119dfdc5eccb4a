// Argv rules applied to a watched tool while its exec is held: the program
// never runs a single instruction when a rule matches.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "file_guard/protected_set.h"

namespace ks {

struct ExecMatch {
    std::string rule;                 // "exec:rm-recursive", "exec:dd-of", ...
    std::string reason;               // one sentence for the audit record
    std::string path;                 // the operand concerned (resolved), if any
    std::optional<uint32_t> rule_id;  // the protected root's rule, when a path is concerned
};

// Classifies an absolute path (follow_last: follow a final symlink).
using PathClassifier = std::function<PathVerdict(const std::string& abs, bool follow_last)>;

// The basenames whose execs the kernel holds for these rules.
const std::vector<std::string>& watched_tools();

// argv[0] may be a path; `tool` is the basename of the executed file.
// Relative operands are taken from cwd.
std::optional<ExecMatch> evaluate_exec_rules(const std::string& tool,
                                             const std::vector<std::string>& argv,
                                             const std::string& cwd,
                                             const PathClassifier& classify);

}  // namespace ks
