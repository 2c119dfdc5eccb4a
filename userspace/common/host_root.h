// A daemon in a container (a Kubernetes DaemonSet, podman) that guards the
// host: `killswitch daemon --host-root /host`, where the host's / is mounted
// at /host and the container shares the host's PID namespace. The daemon
// joins the host's mount namespace (PID 1's) before it reads anything,
// so that from then on every path it uses (the policy, the audit log, the
// protected data, libc and libpq for the uprobes, /etc/machine-id, bpffs,
// tracefs, cgroups) is the host's, as the host's processes see it; and the
// mounts above protected data are judged in the host's namespace.
// The image brings the binary; the host brings the policy (put there by a
// configuration-management tool) and keeps the audit trail.
#pragma once

#include <string>

#include "common/result.h"

namespace ks {

// Finds a process of the host's, one whose / is `dir` (the same device and
// inode as /proc/PID/root: PID 1, or where the kernel hides PID 1 the
// lowest other), then setns(2) into its mount namespace (chdir("/")) and
// its cgroup namespace.
// Must run before the process has a second thread. The errors say what the
// container lacks (hostPID, the / mount, privileges).
Status enter_host_root(const std::string& dir);

// Whether enter_host_root() succeeded in this process.
bool in_host_root();

}  // namespace ks
