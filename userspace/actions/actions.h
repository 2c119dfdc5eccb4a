// What killswitch does to agents: freeze, thaw or kill a session cgroup, and
// operations held until a person decides.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace ks {

// cgroup v2 core files; no controller needed (5.2+ for freeze, 5.14+ for kill).
Status cgroup_freeze(const std::string& dir, bool frozen);
Status cgroup_kill(const std::string& dir);
bool cgroup_is_frozen(const std::string& dir);

struct Hold {
    uint64_t id = 0;
    int pid = 0;
    int tid = 0;
    uint32_t session_id = 0;
    std::string session;
    std::string layer;  // "exec" or "uprobe": where the task is stopped
    std::string op;
    std::string path;
    std::string rule;
    std::string command;  // what it runs (exec holds: the argv)
    uint64_t created_realtime_ns = 0;
    uint64_t start_time = 0;  // the task's start (/proc/TID/stat field 22): pid reuse check
    // Layer seccomp: the kernel's id of the held call, which the answer names
    // (a later daemon answers it through the listener the wrapper kept).
    uint64_t cookie = 0;
    std::chrono::steady_clock::time_point deadline;

    [[nodiscard]] nlohmann::json to_json() const;
};

class HoldRegistry {
  public:
    // Registers a held task; a second stop of the same thread joins its hold.
    const Hold& add(Hold h, std::chrono::seconds timeout);
    std::optional<Hold> take(uint64_t id);
    // Holds whose deadline passed, removed from the registry.
    std::vector<Hold> expired(std::chrono::steady_clock::time_point now);
    [[nodiscard]] std::vector<Hold> list() const;
    [[nodiscard]] const Hold* find_by_tid(int tid) const;
    void set_cookie(uint64_t id, uint64_t cookie);

    // Held tasks outlive the daemon (they stay stopped): the registry is
    // written to path after every change, and a daemon that starts takes
    // back the holds whose task is still there and still stopped (or, layer
    // seccomp, still waiting in its call: the task is not stopped), with the
    // time they had left (at least a second). Returns those holds.
    std::vector<Hold> persist_to(const std::string& path);

  private:
    void save() const;
    std::map<uint64_t, Hold> holds_;
    uint64_t next_id_ = 1;
    std::string path_;
};

// Makes a task the kernel stopped (right after its exec, before its first
// instruction; or at a uprobe, before the call) exit with `status` when it
// is let go: an exit_group call is written where it stopped
// (/proc/PID/syscall's pc), in its private copy of the page (/proc/PID/mem).
// x86-64 only; an error elsewhere, for a task stopped inside another system
// call, or when the kernel refuses the write: then kill it.
// `frozen_cgroup`: the task's session cgroup when it was just frozen. The
// freeze can land before the task has taken its SIGSTOP: it then waits in
// the freezer, not stopped, and the exit is written all the same (it runs
// once the session is thawed; the SIGCONT that follows clears the pending
// stop).
Status exit_where_stopped(int pid, int status, const std::string& frozen_cgroup = "");

// The start time of a task (/proc/TID/stat field 22), 0 when it is gone; and
// whether it is stopped (state T or t).
uint64_t task_start_time(int tid);
bool task_stopped(int tid);
// The task's state letter (/proc/TID/stat field 3: 'R', 'S', 'T', 'Z'...),
// 0 when it is gone; and its parent's pid (field 4), 0 when it is gone.
char task_state(int tid);
int task_ppid(int tid);

}  // namespace ks
