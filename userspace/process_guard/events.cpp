#include "process_guard/events.h"

#include <killswitch/abi/events.h>

#include <algorithm>
#include <cstring>

namespace ks {
namespace {

std::string bounded(const char* s, size_t max) { return std::string(s, strnlen(s, max)); }

EventHeader decode_header(const ks_event_header& h) {
    EventHeader out;
    out.type = h.type;
    out.flags = h.flags;
    out.ts_boot_ns = h.ts_ns;
    out.cgroup_id = h.cgroup_id;
    out.pid = static_cast<int>(h.pid);
    out.tid = static_cast<int>(h.tid);
    out.ppid = static_cast<int>(h.ppid);
    out.uid = h.uid;
    out.session_id = h.session_id;
    out.comm = bounded(h.comm, sizeof(h.comm));
    return out;
}

}  // namespace

std::string join_path_components(const char* buf, size_t len, bool truncated) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i < len) {
        size_t n = strnlen(buf + i, len - i);
        if (n > 0) parts.emplace_back(buf + i, n);
        i += n + 1;
    }
    std::string out = truncated ? "..." : "";
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) out += "/" + *it;
    if (out.empty()) out = "/";
    return out;
}

std::vector<std::string> split_argv(const char* buf, size_t len) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < len) {
        size_t n = strnlen(buf + i, len - i);
        out.emplace_back(buf + i, n);
        i += n + 1;
    }
    return out;
}

Result<Event> decode_event(const void* data, size_t size) {
    if (size < sizeof(ks_event_header)) return make_error("record shorter than its header");
    ks_event_header h;
    std::memcpy(&h, data, sizeof(h));
    switch (h.type) {
        case KS_EVENT_EXEC: {
            if (size < sizeof(ks_exec_event)) return make_error("short exec record");
            const auto* e = static_cast<const ks_exec_event*>(data);
            ExecEvent ev;
            ev.hdr = decode_header(h);
            ev.seed = e->seed;
            ev.filename = bounded(e->filename, std::min<size_t>(e->filename_len, KS_FILENAME_MAX));
            ev.argv = split_argv(e->argv, std::min<size_t>(e->argv_len, KS_ARGV_MAX));
            ev.argv_truncated = h.flags & KS_EVF_ARGV_TRUNC;
            ev.cwd_truncated = h.flags & KS_EVF_CWD_TRUNC;
            ev.cwd_deleted = h.flags & KS_EVF_CWD_DELETED;
            ev.exe_truncated = h.flags & KS_EVF_EXE_TRUNC;
            ev.cwd = join_path_components(e->cwd, std::min<size_t>(e->cwd_len, KS_PATH_BUF),
                                          ev.cwd_truncated);
            ev.exe = join_path_components(e->exe, std::min<size_t>(e->exe_len, KS_PATH_BUF),
                                          ev.exe_truncated);
            return Event{std::move(ev)};
        }
        case KS_EVENT_FORK: {
            ForkEvent ev;
            ev.hdr = decode_header(h);
            return Event{std::move(ev)};
        }
        case KS_EVENT_EXIT: {
            if (size < sizeof(ks_exit_event)) return make_error("short exit record");
            const auto* e = static_cast<const ks_exit_event*>(data);
            ExitEvent ev;
            ev.hdr = decode_header(h);
            ev.exit_code = e->exit_code;
            return Event{std::move(ev)};
        }
        default:
            return make_error("unknown record type " + std::to_string(h.type));
    }
}

const char* event_type_name(uint32_t type) {
    switch (type) {
        case KS_EVENT_EXEC: return "exec";
        case KS_EVENT_FORK: return "fork";
        case KS_EVENT_EXIT: return "exit";
        default: return "unknown";
    }
}

const char* seed_name(uint32_t seed) {
    switch (seed) {
        case KS_SEED_INHERITED: return "inherited";
        case KS_SEED_CGROUP: return "cgroup";
        case KS_SEED_AGENT: return "agent";
        case KS_SEED_UID: return "uid";
        default: return "unknown";
    }
}

}  // namespace ks
