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

// The basenames whose execs the kernel holds for these rules: the tools, the
// names they also go by (bfs, a find), and multi-call binaries (busybox,
// toybox) whose applet is argv[0] or argv[1].
const std::vector<std::string>& watched_tools();

// What a held exec runs, judged by every name it goes by, not only the one
// it gives itself: the name it was started by (the kernel's comm), the
// program file itself (`ln -s /usr/bin/rm ok; ./ok -rf /data` runs rm), and
// argv[0], by which a multi-call binary picks what it does (`exec -a bfs
// claude` runs claude's built-in find); `busybox rm ...` is judged as rm.
struct ExecIdentity {
    std::vector<std::string> tools;  // the watched tools it may be, in that order, canonical
    std::vector<std::string> argv;   // the argv the rules read (busybox: from the applet on)
};
// comm: the kernel's name for it; program: the file it runs (/proc/PID/exe).
ExecIdentity identify_exec(const std::string& comm, const std::string& program,
                           const std::vector<std::string>& argv);

// argv[0] may be a path; `tool` is the basename of the executed file.
// Relative operands are taken from cwd.
std::optional<ExecMatch> evaluate_exec_rules(const std::string& tool,
                                             const std::vector<std::string>& argv,
                                             const std::string& cwd,
                                             const PathClassifier& classify);

}  // namespace ks
