// The pipeline's first step: kernel records (include/killswitch/abi/events.h)
// decoded into plain C++ values, and the names of the ABI's enums. Actions
// have theirs in decision/decision.h (the policy's words, the same values).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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

// What a chmod or chown asks for (events.h, ks_meta_args).
struct MetaArgs {
    uint32_t mode = 0;
    uint32_t uid = 0, gid = 0;  // (uint32_t)-1: unchanged
    uint32_t at_flags = 0;
};

// A guarded process touched a protected object (file_guard.bpf.c).
struct FileEvent {
    EventHeader hdr;  // hdr.ts_boot_ns: entry of the call
    uint32_t op = 0, layer = 0, match = 0, action = 0, rule_id = 0, flags = 0;
    int dfd = 0;
    uint32_t open_flags = 0;
    uint64_t dev = 0, ino = 0;
    uint64_t stop_boot_ns = 0;  // when the kernel sent its signal
    uint64_t bytes = 0;         // KS_OP_SPACE_WRITE: what the call would have written
    MetaArgs meta;              // KS_FF_ASK: the mode or owner the call asks for
    uint64_t upath = 0;         // KS_FF_ASK: the path argument's address (0: an fd)
    std::string path;           // as the process passed it
    std::string start_dir;      // the directory it was resolved from
};

// A guarded process execs a watched tool; it is stopped until the daemon
// has applied the argv rules.
struct ExecCheckEvent {
    EventHeader hdr;
    std::string filename;
    std::vector<std::string> argv;
    bool argv_truncated = false;
    bool windowed = false;  // an allow window was open: the task was not held
};

// A guarded process is about to send a database statement that may be
// destructive; unless in monitor mode, it is stopped until the daemon decides.
struct DbCheckEvent {
    EventHeader hdr;
    uint32_t kind = 0;  // enum ks_db_kind
    std::string query;
    bool truncated = false;
    bool monitor = false;
    bool windowed = false;  // an allow window was open: the task was not held
};

// A guarded process sent a request on a connection to a watched database; the
// kernel's verdict on the socket send path (or at connect) came with it.
struct DbWireEvent {
    EventHeader hdr;
    uint32_t kind = 0;         // enum ks_db_kind
    uint32_t endpoint_id = 0;  // index into the daemon's endpoint list
    uint32_t verdict = 0;      // enum ks_db_verdict
    uint32_t reason = 0;       // enum ks_db_reason
    uint32_t layer = 0;        // enum ks_layer
    uint32_t msg_type = 0;
    uint32_t msg_len = 0;
    uint64_t cookie = 0;
    int family = 0;
    std::array<uint8_t, 16> local_addr{}, remote_addr{};
    uint16_t local_port = 0, remote_port = 0;
    std::string text;  // the request's text (SQL, RESP bytes, OP_MSG bytes), up to KS_DB_WINDOW
};

// A guarded process went for killswitch itself or the kernel under it
// (self-protection), or for a process outside its session (reach). The kernel
// has already sent it SIGKILL, or SIGSTOP (held), or refused the call.
struct TamperEvent {
    EventHeader hdr;
    uint32_t what = 0;   // enum ks_tamper
    uint32_t layer = 0;  // KS_LAYER_UPROBE (prevented) or KS_LAYER_TRACEPOINT (contained)
    int64_t target = 0;  // pid, -pgid or -1; 0 when none
    uint64_t arg = 0;    // signal, ptrace request, bpf command, reboot command
    uint32_t syscall_nr = 0;
    uint32_t flags = 0;  // KS_TF_*: held for the daemon's judgement, refused by a hook
};

using Event = std::variant<ExecEvent, ForkEvent, ExitEvent, FileEvent, ExecCheckEvent, DbCheckEvent,
                           DbWireEvent, TamperEvent>;

// Decodes one ring-buffer record; an error names what was malformed.
Result<Event> decode_event(const void* data, size_t size);

// Whether the kernel submitted the record to wake the daemon at once
// (BPF_RB_FORCE_WAKEUP, ks_submit_now in bpf/ks_helpers.bpf.h): a task is
// stopped until the daemon decides, or the daemon must act on it.
bool wakes_daemon(const Event& ev);

// Joins leaf-first NUL-separated components into "/a/b/c". With truncated,
// the missing top is shown as "...".
std::string join_path_components(const char* buf, size_t len, bool truncated);

// Splits NUL-separated argv bytes.
std::vector<std::string> split_argv(const char* buf, size_t len);

const char* event_type_name(uint32_t type);
const char* tamper_name(uint32_t what);  // "signal", "ptrace", "bpf"...
const char* op_name(uint32_t op);
const char* layer_name(uint32_t layer);
// The layers that refuse a call before it runs (EPERM): the LSM hooks, the
// fmod_ret programs on security_* functions, and a run session's seccomp
// filter (the daemon answers for the kernel).
bool layer_refuses(uint32_t layer);
const char* match_name(uint32_t match);
const char* seed_name(uint32_t seed);
const char* db_kind_name(uint32_t kind);      // "postgres", "mysql", "redis", "mongodb"
const char* db_reason_name(uint32_t reason);  // "drop", "too-long", "tls"...
const char* db_reason_text(uint32_t reason);  // a sentence for the audit record
// The class of request of that name ("drop", "schema-change"...): a reason
// below KS_DBR_FIRST_UNPARSEABLE, one bit of ks_db_config.refuse_classes.
std::optional<uint32_t> db_class_reason(std::string_view name);

}  // namespace ks
