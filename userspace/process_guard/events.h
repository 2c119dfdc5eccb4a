// Kernel records decoded into plain C++ values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"

namespace ks {

struct EventHeader {
    uint32_t type = 0;
    uint32_t flags = 0;
    uint64_t ts_boot_ns = 0;
    uint64_t cgroup_id = 0;
    int pid = 0;
    int tid = 0;
    int ppid = 0;
    uint32_t uid = 0;
    uint32_t session_id = 0;
    std::string comm;
};

struct ExecEvent {
    EventHeader hdr;
    uint32_t seed = 0;
    std::string filename;
    std::vector<std::string> argv;
    std::string cwd;  // absolute; "" when unknown
    std::string exe;
    bool argv_truncated = false;
    bool cwd_truncated = false;
    bool cwd_deleted = false;
    bool exe_truncated = false;
};

struct ForkEvent {
    EventHeader hdr;  // hdr.pid is the child, hdr.ppid the parent
};

struct ExitEvent {
    EventHeader hdr;
    uint32_t exit_code = 0;  // wait(2) status
};

using Event = std::variant<ExecEvent, ForkEvent, ExitEvent>;

// Decodes one ring-buffer record; an error names what was malformed.
Result<Event> decode_event(const void* data, size_t size);

// Joins leaf-first NUL-separated components into "/a/b/c". With truncated,
// the missing top is shown as "...".
std::string join_path_components(const char* buf, size_t len, bool truncated);

// Splits NUL-separated argv bytes.
std::vector<std::string> split_argv(const char* buf, size_t len);

const char* event_type_name(uint32_t type);
const char* seed_name(uint32_t seed);

}  // namespace ks
