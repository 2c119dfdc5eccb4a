#include "abi/decode.h"

#define KS_STR2(x) #x
#define KS_STR(x) KS_STR2(x)

#include <killswitch/abi/events.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>

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
            ev.bytes = e->bytes;
            ev.meta = {e->meta.mode, e->meta.uid, e->meta.gid, e->meta.at_flags};
            ev.upath = e->upath;
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
            ev.windowed = e->flags & KS_EVF_WINDOW;
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
            ev.windowed = e->flags & KS_DBF_WINDOW;
            return Event{std::move(ev)};
        }
        case KS_EVENT_DB_WIRE: {
            // Written at its real size: the text is cut to text_len.
            if (size < offsetof(ks_db_wire_event, text)) return make_error("short db-wire record");
            const auto* e = static_cast<const ks_db_wire_event*>(data);
            if (e->text_len > KS_DB_WINDOW || offsetof(ks_db_wire_event, text) + e->text_len > size)
                return make_error("db-wire record shorter than its text");
            DbWireEvent ev;
            ev.hdr = decode_header(h);
            ev.kind = e->kind;
            ev.endpoint_id = e->endpoint_id;
            ev.verdict = e->verdict;
            ev.reason = e->reason;
            ev.layer = e->layer;
            ev.msg_type = e->msg_type;
            ev.msg_len = e->msg_len;
            ev.cookie = e->cookie;
            ev.family = static_cast<int>(e->family);
            std::memcpy(ev.local_addr.data(), e->local_addr, 16);
            std::memcpy(ev.remote_addr.data(), e->remote_addr, 16);
            ev.local_port = e->local_port;
            ev.remote_port = e->remote_port;
            ev.text.assign(e->text, e->text_len);
            return Event{std::move(ev)};
        }
        case KS_EVENT_TAMPER: {
            if (size < sizeof(ks_tamper_event)) return make_error("short tamper record");
            const auto* e = static_cast<const ks_tamper_event*>(data);
            TamperEvent ev;
            ev.hdr = decode_header(h);
            ev.what = e->what;
            ev.layer = e->layer;
            ev.target = e->target;
            ev.arg = e->arg;
            ev.syscall_nr = e->syscall_nr;
            ev.flags = e->flags;
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
        case KS_EVENT_DB_CHECK:
            return "db_check";
        case KS_EVENT_DB_WIRE:
            return "db_wire";
        case KS_EVENT_TAMPER:
            return "tamper";
        default:
            return "unknown";
    }
}

const char* tamper_name(uint32_t what) {
    switch (what) {
        case KS_TAMPER_SIGNAL:
            return "signal";
        case KS_TAMPER_PTRACE:
            return "ptrace";
        case KS_TAMPER_PIDFD:
            return "pidfd";
        case KS_TAMPER_VM_WRITE:
            return "process_vm_writev";
        case KS_TAMPER_BPF:
            return "bpf";
        case KS_TAMPER_MODULE:
            return "module";
        case KS_TAMPER_KEXEC:
            return "kexec";
        case KS_TAMPER_REBOOT:
            return "reboot";
        case KS_TAMPER_REACH_SIGNAL:
            return "signal";
        case KS_TAMPER_REACH_PTRACE:
            return "ptrace";
        case KS_TAMPER_REACH_VM_WRITE:
            return "vm-write";
        case KS_TAMPER_REACH_PIDFD:
            return "pidfd";
        default:
            return "unknown";
    }
}

bool wakes_daemon(const Event& ev) {
    return std::visit(
        [](const auto& e) -> bool {
            using T = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<T, ExecEvent>)
                return e.hdr.flags & KS_EVF_HELD;
            else if constexpr (std::is_same_v<T, FileEvent>)
                return e.flags & (KS_FF_STOPPED | KS_FF_KILLED | KS_FF_DENIED);
            else if constexpr (std::is_same_v<T, ExecCheckEvent>)
                return !e.windowed;
            else if constexpr (std::is_same_v<T, DbCheckEvent>)
                return !e.monitor && !e.windowed;
            else if constexpr (std::is_same_v<T, DbWireEvent>)
                return e.verdict == KS_DBV_REFUSE;
            else if constexpr (std::is_same_v<T, TamperEvent>)
                return true;
            else
                return false;  // fork, exit
        },
        ev);
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
        case KS_OP_CREATE_IN:
            return "create-in";
        case KS_OP_CHMOD:
            return "chmod";
        case KS_OP_CHOWN:
            return "chown";
        case KS_OP_XATTR:
            return "xattr";
        case KS_OP_FILE_FLAGS:
            return "file-flags";
        case KS_OP_DEVICE_WRITE:
            return "device-write";
        case KS_OP_MOUNT_SOURCE:
            return "mount-source";
        case KS_OP_SPACE_WRITE:
            return "write";
        case KS_OP_SYMLINK_TO:
            return "symlink-to";
        case KS_OP_REMOUNT:
            return "remount";
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
        case KS_LAYER_SK_MSG:
            return "sk_msg";
        case KS_LAYER_CONNECT:
            return "connect";
        case KS_LAYER_FENTRY:
            return "fentry";
        case KS_LAYER_SECCOMP:
            return "seccomp";
        default:
            return "unknown";
    }
}

const char* db_kind_name(uint32_t kind) {
    switch (kind) {
        case KS_DB_POSTGRES:
            return "postgres";
        case KS_DB_MYSQL:
            return "mysql";
        case KS_DB_REDIS:
            return "redis";
        case KS_DB_MONGODB:
            return "mongodb";
        case KS_DB_DEPUTY:
            return "deputy";
        default:
            return "unknown";
    }
}

namespace {
struct ReasonName {
    uint32_t reason;
    const char* name;
    const char* text;
};
constexpr ReasonName kReasons[] = {
    {KS_DBR_NONE, "none", ""},
    {KS_DBR_DROP, "drop", "DROP"},
    {KS_DBR_TRUNCATE, "truncate", "TRUNCATE"},
    {KS_DBR_DELETE_ALL, "delete-all", "DELETE without WHERE or with an always-true WHERE"},
    {KS_DBR_UPDATE_ALL, "update-all", "UPDATE without WHERE or with an always-true WHERE"},
    {KS_DBR_ALTER_DROP, "alter-drop", "ALTER ... DROP"},
    {KS_DBR_OPAQUE_CODE, "opaque-code",
     "code whose statements cannot be seen (DO, EVALSHA, PREPARE of text...)"},
    {KS_DBR_FLUSH, "flush", "FLUSHALL / FLUSHDB"},
    {KS_DBR_SHUTDOWN, "shutdown-nosave", "SHUTDOWN NOSAVE"},
    {KS_DBR_SWAPDB, "swapdb", "SWAPDB"},
    {KS_DBR_CONFIG_PATH, "config-set-path", "CONFIG SET of where or whether data is kept"},
    {KS_DBR_SCHEMA_CHANGE, "schema-change",
     "a schema change that loses no row (DROP INDEX, ALTER ... DROP NOT NULL...)"},
    {KS_DBR_BOOKKEEPING, "bookkeeping", "DELETE/UPDATE of every row of a migration tool's table"},
    {KS_DBR_HOST_ACCESS, "host-access",
     "the server reads, writes or runs something on its host, or loads code"},
    {KS_DBR_TOO_LONG, "too-long", "longer than the kernel reads (" KS_STR(KS_DB_WINDOW) " bytes)"},
    {KS_DBR_MALFORMED, "malformed", "lengths or framing that make no sense"},
    {KS_DBR_TLS, "tls", "TLS requested: the requests cannot be read"},
    {KS_DBR_COMPRESSED, "compressed", "protocol compression: the requests cannot be read"},
    {KS_DBR_UNKNOWN, "unknown", "a message or opcode the kernel does not know"},
    {KS_DBR_UNTERMINATED, "unterminated", "a string, comment or quote left open"},
    {KS_DBR_UNIX_SOCKET, "unix-socket", "a watched unix socket: its requests cannot be inspected"},
};
}  // namespace

const char* db_reason_name(uint32_t reason) {
    for (const auto& r : kReasons)
        if (r.reason == reason) return r.name;
    return "unknown";
}

std::optional<uint32_t> db_class_reason(std::string_view name) {
    for (const auto& r : kReasons)
        if (r.reason != KS_DBR_NONE && r.reason < KS_DBR_FIRST_UNPARSEABLE && name == r.name)
            return r.reason;
    return std::nullopt;
}

const char* db_reason_text(uint32_t reason) {
    for (const auto& r : kReasons)
        if (r.reason == reason) return r.text;
    return "";
}

bool layer_refuses(uint32_t layer) {
    return layer == KS_LAYER_LSM || layer == KS_LAYER_FENTRY || layer == KS_LAYER_SECCOMP;
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
        case KS_MATCH_ANCESTOR:
            return "ancestor-of-protected";
        case KS_MATCH_BLOCK_DEVICE:
            return "block-device";
        case KS_MATCH_LOW_SPACE:
            return "low-space";
        case KS_MATCH_DATA_FS:
            return "filesystem-of-protected";
        default:
            return "none";
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
