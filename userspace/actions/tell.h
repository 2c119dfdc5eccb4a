// Telling a process why killswitch stopped it: a message written where its
// caller reads, the process's standard error when that is a pipe or a
// terminal (an agent's tool captures the pipe; a person sees the terminal).
// Never a regular file or another device: the daemon does not write into
// files a guarded process chose.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace ks {

// Writes msg to pid's standard error; when pid is gone (killed in the
// kernel), to that of fallback_pid (its parent: usually the same pipe or
// terminal). Never blocks: a full pipe or a FIFO with no reader is an
// error. Returns where it went: "pid 42 stderr (pipe)".
Result<std::string> tell_process(int pid, int fallback_pid, std::string_view msg);

}  // namespace ks
