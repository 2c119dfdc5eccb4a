// Sessions: one cgroup v2 directory per guarded agent (or per cgroup the
// policy names), registered in the kernel so that everything started inside
// is guarded.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "process_guard/process_guard_bpf.h"

namespace ks {

enum class SessionOrigin { Run, Agent, Uid, Cgroup, Adopted };
const char* origin_name(SessionOrigin o);

struct Session {
    uint32_t id = 0;
    std::string name;
    SessionOrigin origin = SessionOrigin::Run;
    std::string cgroup;       // relative to the cgroup2 mount, "/killswitch/NAME"
    std::string cgroup_path;  // absolute directory
    uint64_t cgroup_id = 0;
    int root_pid = 0;
    std::vector<std::string> command;
    uint64_t created_realtime_ns = 0;
    bool owned = true;  // killswitch made the cgroup and removes it when empty
    bool ever_populated = false;
};

// Where session cgroups live (`--cgroup-parent`), relative to the cgroup v2
// mount: SPEC itself ("killswitch", beside systemd's slices), or, when SPEC
// starts with "./", under the daemon's own cgroup: a systemd unit with
// Delegate=yes owns that subtree, and "./sessions" keeps sessions there.
Result<std::string> session_parent_cgroup(const std::string& spec);

// The daemon writes its sessions' parent to RUNTIME_DIR/sessions-cgroup, for
// the commands that act with no daemon (emergency, daemon --uninstall).
inline constexpr const char* kSessionsCgroupFile = "sessions-cgroup";
// That file's path, else fallback.
std::string recorded_session_parent(const std::string& runtime_dir, const std::string& fallback);

class SessionManager {
  public:
    SessionManager(ProcessGuardBpf& bpf, std::string cgroup2_mount, std::string parent_name);

    // Creates <parent> if needed, registers policy-named cgroups and adopts the
    // session cgroups a previous daemon left behind (with their processes).
    Status start(const std::vector<std::string>& named_cgroups);

    // `killswitch run`: a new cgroup whose processes are guarded from their exec.
    Result<Session> create(const std::string& name, const std::vector<std::string>& command);

    // The kernel opened a session for pid (agent or uid seed): make its cgroup,
    // move pid there and let it go if it was held.
    Result<Session> open_for_seed(uint32_t session_id, SessionOrigin origin, int pid,
                                  const std::string& comm, const std::vector<std::string>& argv,
                                  bool held);

    // A guarded process seen outside its session's cgroup is moved in.
    // Returns true when it moved.
    bool ensure_member(uint32_t session_id, int pid, uint64_t cgroup_id);

    // Sessions that emptied since the last call, removed from the kernel and
    // from the cgroup tree.
    std::vector<Session> sweep();

    [[nodiscard]] const Session* find(uint32_t id) const;
    // A session sweep() removed, among the last kEndedKept: the records its
    // processes submitted before they exited may be read after it ended, and
    // still name it.
    [[nodiscard]] const Session* find_ended(uint32_t id) const;
    [[nodiscard]] const Session* find_by_name(const std::string& name) const;
    [[nodiscard]] std::vector<Session> list() const;
    [[nodiscard]] size_t count() const { return sessions_.size(); }
    void set_root_pid(uint32_t id, int pid);
    [[nodiscard]] const std::string& parent_path() const { return parent_path_; }
    // Pids currently in a session's cgroup (from cgroup.procs).
    [[nodiscard]] std::vector<int> cgroup_pids(const Session& s) const;

    static bool valid_name(const std::string& name);

  private:
    Result<Session> make_cgroup_session(const std::string& name, SessionOrigin origin, uint32_t id);
    uint32_t next_user_id();

    ProcessGuardBpf& bpf_;
    std::string mount_;
    std::string parent_name_;
    std::string parent_path_;
    std::map<uint32_t, Session> sessions_;
    static constexpr size_t kEndedKept = 256;
    std::map<uint32_t, Session> ended_;
    std::vector<uint32_t> ended_order_;  // oldest first
    uint32_t next_id_ = 1;
};

}  // namespace ks
