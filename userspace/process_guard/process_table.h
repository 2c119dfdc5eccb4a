// What user space knows about guarded processes, built from the event
// stream: enough to give every record its parent chain up to the session root.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "abi/decode.h"

namespace ks {

struct ProcessInfo {
    int pid = 0;
    int ppid = 0;
    uint32_t session_id = 0;
    uint32_t uid = 0;
    std::string comm;
    std::string exe;
    bool exited = false;
};

struct LineageEntry {
    int pid = 0;
    std::string comm;
    std::string exe;
};

class ProcessTable {
  public:
    // Exited processes stay known for this many later exits, so that events
    // of their children that arrive afterwards still get a full chain.
    explicit ProcessTable(size_t exited_kept = 16384) : exited_kept_(exited_kept) {}

    void on_exec(const ExecEvent& ev);
    void on_fork(const ForkEvent& ev);
    void on_exit(const ExitEvent& ev);
    // A process known from /proc rather than from an event (daemon start).
    void add(ProcessInfo info);

    [[nodiscard]] const ProcessInfo* find(int pid) const;
    // Ancestors of pid, parent first, while they belong to the same session;
    // at most max_depth entries.
    [[nodiscard]] std::vector<LineageEntry> lineage(int pid, size_t max_depth = 64) const;
    // Live processes of a session.
    [[nodiscard]] std::vector<int> members(uint32_t session_id) const;
    [[nodiscard]] size_t size() const { return procs_.size(); }

  private:
    void retire(int pid);

    std::unordered_map<int, ProcessInfo> procs_;
    std::deque<int> exited_;
    size_t exited_kept_;
};

}  // namespace ks
