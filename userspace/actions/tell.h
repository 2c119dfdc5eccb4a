// Telling a process why killswitch stopped it: a message written where its
// caller reads, the process's standard error. Agents collect their shell
// tool's output in different ways, and each is reached:
//   a pipe or a FIFO    (Codex)           reopened through /proc, O_NONBLOCK
//   a terminal          (a person)        the same
//   a socket            (Gemini CLI, opencode)  the process's own socket
//                       (pidfd_getfd), sent with MSG_DONTWAIT
//   a regular file      (Claude Code)     the process's own open file, at its
//                       offset, as if it had written the line itself; only
//                       when it was opened for writing and the caller's
//                       check accepts the path (never a protected file, never
//                       killswitch's own)
// Nothing else (another device, a file the check refuses) is written.
#pragma once

#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace ks {

// Whether the daemon may append a line to this regular file (resolved
// path): false for protected data and killswitch's own files.
using FileWriteCheck = std::function<bool(const std::string& path)>;

// Writes msg to the standard error of the first of pids that can still be
// written: the offender first; when it is gone (killed in the kernel, its
// fds closed), whoever is next: its parent, its other ancestors, the
// session's `killswitch run` wrapper, usually holding the same pipe or
// terminal. Pids <= 0 are skipped. Never blocks: a full pipe or socket,
// or a FIFO with no reader, is an error. Regular files only with file_ok
// (none: never). Returns where it went, "pid 42 stderr (pipe)", or each
// pid's error.
Result<std::string> tell_process(std::span<const int> pids, std::string_view msg,
                                 const FileWriteCheck& file_ok = nullptr);
inline Result<std::string> tell_process(std::initializer_list<int> pids, std::string_view msg,
                                        const FileWriteCheck& file_ok = nullptr) {
    return tell_process(std::span<const int>(pids.begin(), pids.size()), msg, file_ok);
}

}  // namespace ks
