// `killswitch daemon`: loads the programs, follows guarded processes, writes
// the audit trail and answers the control socket, until SIGINT or SIGTERM.
#pragma once

#include <string>
#include <vector>

namespace ks {

struct DaemonOptions {
    std::string policy_file;  // empty: the built-in default policy
    // Drop-in files (DIR/*.yaml) read after it, in name order; empty: none.
    std::string policy_dir;
    std::string audit_log;    // empty: the policy's
    std::vector<std::string> protect;
    std::string mode;  // empty: the policy's; else "enforce" or "monitor"
    std::string runtime_dir = "/run/killswitch";
    std::string cgroup_parent = "killswitch";
    bool libc_uprobes = true;      // the libc layer (see docs/performance.md for its cost)
    // Its uprobes in guarded processes alone where the kernel can (uprobe_multi
    // links with a pid, 6.6+); false: in every process, as on older kernels.
    bool scoped_uprobes = true;
    bool lsm = true;               // the LSM layer, where the kernel runs it
    bool fentry = true;            // else the fentry (fmod_ret) layer, where the kernel runs it
    // Where neither runs: `killswitch run` sessions under a seccomp filter
    // that asks the daemon (no syscall tracepoint for them). Off by default
    // (docs/guarantees.md, docs/performance.md: each filtered call of a
    // session waits for the daemon).
    bool seccomp_sessions = false;
    std::vector<std::string> db;   // KIND=ADDRESS; non-empty: replaces the policy's endpoints
    std::vector<std::string> outputs;  // KIND=TARGET, beside the policy's outputs
    bool db_client_probes = true;  // false: no libpq uprobes, whatever the policy says
    // bpffs directory of the pinned programs and state (common/pins.h);
    // empty: nothing pinned, the programs go with the daemon.
    std::string pin_dir = "/sys/fs/bpf/killswitch";
    bool uninstall = false;  // remove the pinned programs instead of running
    // In a container: the host's / as mounted there ("/host"); the daemon
    // joins the host's mount namespace first (common/host_root.h), and
    // every path it is given is the host's.
    std::string host_root;
};

// Returns the process exit code. Start-up errors are printed as one line each.
int run_daemon(const DaemonOptions& opts);

// `killswitch daemon --uninstall`: with no daemon running and a caller that
// is not guarded, removes the pinned programs (the kernel stops enforcing)
// and records it in the audit log. Returns the exit code.
int uninstall_daemon(const DaemonOptions& opts);

}  // namespace ks
