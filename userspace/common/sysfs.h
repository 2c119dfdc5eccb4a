// Kernel filesystems: where they are mounted, mounting what is missing, and
// small whole-file reads and writes for /proc, /sys and cgroupfs.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace ks {

struct MountEntry {
    std::string source;
    std::string target;
    std::string fstype;
    std::string options;
};

// Parses /proc/mounts format (octal escapes decoded). Exposed for tests.
std::vector<MountEntry> parse_mounts(const std::string& text);
std::vector<MountEntry> read_mounts(const std::string& path = "/proc/mounts");

// First mount point of the given filesystem type, if any.
std::optional<std::string> find_mount(const std::string& fstype,
                                      const std::string& mounts_path = "/proc/mounts");

// Mounts fstype at target unless a filesystem of that type is already mounted
// there (or, with any_target, anywhere). Returns the mount point in use.
Result<std::string> ensure_mounted(const std::string& fstype, const std::string& target,
                                   bool any_target = false);

// The cgroup v2 mount: /sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified
// on hybrid ones.
Result<std::string> cgroup2_mount();

Result<std::string> read_file(const std::string& path);
Status write_file(const std::string& path, const std::string& data);
// Creates or replaces a regular file whole: written to PATH.tmp with mode,
// then renamed over path (a reader sees the old content or the new).
Status write_file_atomic(const std::string& path, const std::string& data, mode_t mode);

// The kernel's active LSM list, comma-separated as securityfs gives it
// ("lockdown,capability,...,bpf"); mounts securityfs if needed.
Result<std::string> active_lsm_list();
// Whether a comma-separated list has this item.
bool list_has(const std::string& list, const std::string& item);

// The cgroup id the kernel reports for a cgroup2 directory (its inode number).
Result<unsigned long long> cgroup_id_of(const std::string& dir);

// Path of the cgroup v2 cgroup of a process, relative to the cgroup2 mount
// ("/killswitch/run-1"), from /proc/PID/cgroup.
Result<std::string> cgroup_of_pid(int pid);

}  // namespace ks
