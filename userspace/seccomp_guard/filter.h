// The seccomp filter of a `killswitch run` session (x86-64): the system calls
// that can destroy protected data, stop another process or change the kernel
// go to the daemon (SECCOMP_RET_USER_NOTIF), which answers before the call
// runs: refused (EPERM) or let through. Inherited by everything the session
// starts; every other process on the host pays nothing, and the calls it
// does not name cost the session's processes one filter run.
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

#include "common/fd.h"
#include "common/result.h"

namespace ks::seccomp {

// A system call the filter sends to the daemon, and when.
struct WatchedCall {
    int nr = 0;
    const char* name = "";
    // Only some calls: open/openat with write access, O_TRUNC or O_CREAT;
    // ioctl of the inode-flag commands (chattr).
    enum class When { kAlways, kOpenFlags, kIoctlFlags } when = When::kAlways;
    int arg = 0;  // the argument When looks at
};
const std::vector<WatchedCall>& watched_calls();

// The classic BPF program. Calls of another ABI (i386 through int 0x80,
// x32) are refused with EPERM: their numbers are not these.
std::vector<sock_filter> session_filter();

// Why this host cannot use the filter ("" when it can): the architecture,
// or the kernel's seccomp (user notification needs 5.0, continuing a call
// 5.5).
std::string unavailable_reason();

// Installs the filter in the calling process (and its future threads'
// descendants: every process it starts). Returns the listener the daemon
// reads. Needs CAP_SYS_ADMIN, or sets no_new_privs first when the caller
// lacks it (setuid programs then no longer gain privileges).
Result<Fd> install_session_filter();

// Measured on the running kernel (doctor): a child under the filter unlinks
// a file of its own in dir, the answer EPERM must reach it and the file stay.
// "" when it did, else what went wrong.
std::string trial(const std::string& dir);

}  // namespace ks::seccomp
