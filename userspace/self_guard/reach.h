// Reach: the processes a guarded process's signal, ptrace attach, pidfd or
// memory write aims at, read from /proc. The kernel judges what it can (a
// process of a session, the LSM layer's target task); a pid in no session
// (an unguarded process, one that is gone, a thread, a process group) holds
// the caller at its libc entry, and the daemon looks here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ks {

// The thread groups a call from `caller` aimed at `target` reaches: a pid's
// process (a thread id resolves to its process), or the members of a process
// group (0: the caller's own; -PGID). Empty when nothing is there: the call
// fails with ESRCH and reaches nobody.
std::vector<int> reached_processes(int caller, int64_t target);

// The process a thread belongs to (/proc/TID/status Tgid); 0 when gone.
int tgid_of(int tid);

// A process reached outside the caller's session.
struct ReachedProcess {
    int pid = 0;
    std::string comm;
    std::string session;  // the other session's name; "" outside every session
};

// Whether a program name of the policy (processes.reachable) names comm: the
// kernel keeps the first 15 bytes of a name.
bool names_program(const std::vector<std::string>& names, const std::string& comm);

}  // namespace ks
