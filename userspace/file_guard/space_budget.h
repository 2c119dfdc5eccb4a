// The space budget (protect.min_free): guarded processes may not bring a file
// system that holds protected data under the policy's floor of free space.
// The kernel counts what they write there and refuses the write that would
// pass the limit (bpf/ks_space.bpf.h: at the write system calls' tracepoints
// or at the file_permission hook); this sets that limit, each second, from
// the space the file system reports free.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "policy/policy.h"

namespace ks {

class FileGuardBpf;
struct ProtectedRoot;

// One file system with protected data on it, at the last look.
struct SpaceFs {
    uint64_t dev = 0;                // the kernel's encoding
    std::vector<std::string> roots;  // the protected roots on it (canonical)
    uint64_t total = 0;              // bytes
    uint64_t avail = 0;              // bytes an unprivileged writer can still use
    uint64_t floor = 0;              // protect.min_free, in bytes, on this file system
    uint64_t limit = 0;              // the kernel's count at which the budget is spent
    std::optional<uint64_t> count_seen;  // the kernel's count at the last look
    // roots, total_bytes, free_bytes, floor_bytes, above_floor_bytes,
    // headroom_bytes: for
    // status and the records.
    [[nodiscard]] nlohmann::json to_json() const;
};

// The count of written bytes at which the budget is spent: the count read
// before statvfs() plus the free space above the floor. What guarded
// processes write between the two reads is counted twice (in the count and
// in the free space): the budget errs on the side of the data.
uint64_t space_limit(uint64_t written_before, uint64_t avail, uint64_t floor);

// The limit after a look. A call is counted when it starts and its bytes
// leave the free space as they land: a long call (a 16 MiB sendfile, a large
// O_DIRECT write) counted before the count was read and still landing after
// statvfs() would be granted twice by space_limit() alone. So while guarded
// writes go on (the count moved since the last look) the limit only comes
// down (other writers, the database itself, use space too); it goes up (space
// freed) at a look whose count has not moved since the one before, when
// nothing counted a second ago or less is still landing.
uint64_t next_space_limit(std::optional<uint64_t> limit, bool count_moved, uint64_t written_before,
                          uint64_t avail, uint64_t floor);

class SpaceBudget {
  public:
    explicit SpaceBudget(FileGuardBpf& bpf) : bpf_(bpf) {}

    // The file systems of the policy's protected paths (not the system
    // paths, not killswitch's own files, not procfs or sysfs) and the floor.
    // A file system no longer among them loses its budget. Then refresh().
    void set(const std::vector<ProtectedRoot>& roots, const policy::MinFree& min_free);
    // statvfs() of each file system and its new limit: each tick.
    void refresh();

    [[nodiscard]] const SpaceFs* fs(uint64_t dev) const;
    [[nodiscard]] nlohmann::json describe() const;

  private:
    FileGuardBpf& bpf_;
    policy::MinFree min_free_;
    std::map<uint64_t, SpaceFs> fs_;
};

}  // namespace ks
