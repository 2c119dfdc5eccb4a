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
        case KS_EVENT_FILE: {
            if (size < sizeof(ks_file_event)) return make_error("short file record");
            const auto* e = static_cast<const ks_file_event*>(data);
            FileEvent ev;
            ev.hdr = decode_header(h);
            ev.op = e->op;
            ev.layer = e->layer;
            ev.match = e->match;
            ev.action = e->action;
            ev.rule_id = e->rule_id;
            ev.flags = e->flags;
            ev.dfd = e->dfd;
            ev.open_flags = e->open_flags;
            ev.dev = e->dev;
            ev.ino = e->ino;
            ev.stop_boot_ns = e->stop_ns;
            ev.path = bounded(e->path, std::min<size_t>(e->path_len, KS_FILE_PATH_MAX));
            ev.start_dir = join_path_components(e->cwd, std::min<size_t>(e->cwd_len, KS_PATH_BUF),
                                                e->flags & KS_FF_PATH_TRUNC);
            return Event{std::move(ev)};
        }
        case KS_EVENT_EXEC_CHECK: {
            if (size < sizeof(ks_exec_check_event)) return make_error("short exec-check record");
            const auto* e = static_cast<const ks_exec_check_event*>(data);
            ExecCheckEvent ev;
            ev.hdr = decode_header(h);
            ev.filename = bounded(e->filename, KS_FILENAME_MAX);
            ev.argv = split_argv(e->argv, std::min<size_t>(e->argv_len, KS_EXEC_ARGV_BUF));
            ev.argv_truncated = e->flags & KS_EVF_ARGV_TRUNC;
            return Event{std::move(ev)};
        }
        case KS_EVENT_DB_CHECK: {
            if (size < sizeof(ks_db_check_event)) return make_error("short db-check record");
            const auto* e = static_cast<const ks_db_check_event*>(data);
            DbCheckEvent ev;
            ev.hdr = decode_header(h);
            ev.kind = e->kind;
            ev.query = bounded(e->query, std::min<size_t>(e->query_len + 1, KS_DB_QUERY_MAX));
            ev.truncated = e->flags & KS_DBF_TRUNC;
            ev.monitor = e->flags & KS_DBF_MONITOR;
            return Event{std::move(ev)};
        }
        default:
            return make_error("unknown record type " + std::to_string(h.type));
    }
}

const char* event_type_name(uint32_t type) {
    switch (type) {
        case KS_EVENT_EXEC:
            return "exec";
        case KS_EVENT_FORK:
            return "fork";
        case KS_EVENT_EXIT:
            return "exit";
        case KS_EVENT_FILE:
            return "file";
        case KS_EVENT_EXEC_CHECK:
            return "exec_check";
        default:
            return "unknown";
    }
}

const char* op_name(uint32_t op) {
    switch (op) {
        case KS_OP_UNLINK:
            return "unlink";
        case KS_OP_RMDIR:
            return "rmdir";
        case KS_OP_RENAME_FROM:
            return "rename-from";
        case KS_OP_RENAME_ONTO:
            return "rename-onto";
        case KS_OP_TRUNCATE:
            return "truncate";
        case KS_OP_OPEN_TRUNC:
            return "open-truncate";
        case KS_OP_OPEN_WRITE:
            return "open-write";
        case KS_OP_MOUNT:
            return "mount";
        case KS_OP_UMOUNT:
            return "umount";
        case KS_OP_LINK:
            return "link";
        case KS_OP_IO_URING:
            return "io_uring";
        default:
            return "unknown";
    }
}

const char* layer_name(uint32_t layer) {
    switch (layer) {
        case KS_LAYER_EXEC:
            return "exec";
        case KS_LAYER_UPROBE:
            return "uprobe";
        case KS_LAYER_TRACEPOINT:
            return "tracepoint";
        case KS_LAYER_LSM:
            return "lsm";
        default:
            return "unknown";
    }
}

const char* match_name(uint32_t match) {
    switch (match) {
        case KS_MATCH_INSIDE:
            return "inside-protected-directory";
        case KS_MATCH_PATH:
            return "path-into-protected-tree";
        case KS_MATCH_INODE:
            return "protected-inode";
        case KS_MATCH_UNRESOLVED:
            return "unresolved-path";
        case KS_MATCH_ALWAYS:
            return "always";
        default:
            return "none";
    }
}

const char* action_name(uint32_t action) {
    switch (action) {
        case KS_ACT_AUDIT:
            return "audit";
        case KS_ACT_BLOCK:
            return "block";
        case KS_ACT_KILL:
            return "kill";
        case KS_ACT_FREEZE:
            return "freeze";
        case KS_ACT_KILL_SESSION:
            return "kill-session";
        case KS_ACT_HOLD:
            return "hold";
        default:
            return "unknown";
    }
}

const char* seed_name(uint32_t seed) {
    switch (seed) {
        case KS_SEED_INHERITED:
            return "inherited";
        case KS_SEED_CGROUP:
            return "cgroup";
        case KS_SEED_AGENT:
            return "agent";
        case KS_SEED_UID:
            return "uid";
        default:
            return "unknown";
    }
}

}  // namespace ks
