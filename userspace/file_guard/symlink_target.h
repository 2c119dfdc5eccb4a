// Symbolic links to protected data (op symlink-to). The libc layer stops a
// guarded process that makes a symbolic link outside the protected trees
// (KS_FF_ASK) and the daemon works out where the link would lead, as the
// kernel will follow it: an absolute target from the caller's root, a
// relative one from the link's own directory (`ln -s ../../data /tmp/a/x`),
// through the caller's /proc. The syscall tracepoint stops a static maker
// only as its call returns: the link (or a hard link's new name, op link)
// is made by then, and removed here. The waits are bounded (a second).
#pragma once

#include <string>

#include "abi/decode.h"
#include "common/result.h"

namespace ks {

// The link's path argument, read from the stopped caller's memory at
// ev.upath.
Result<std::string> read_link_path(const FileEvent& ev);

// Where a link made at link_path (relative to ev.dfd or the caller's
// working directory) with target ev.path points, as a path the daemon can
// resolve: through the caller's /proc root, cwd or fd. "" for an empty
// target.
std::string symlink_target_path(const FileEvent& ev, const std::string& link_path);

// At the syscall tracepoint the caller stops only as the call returns, the
// link made: once the thread has stopped (it is waited for, up to a
// second), the link at link_path is removed if it is still a symbolic link
// with that target. True when it was removed.
Result<bool> remove_made_link(const FileEvent& ev, const std::string& link_path,
                              const std::string& target);

// The same for a hard link (op link at the syscall tracepoint): the new name
// at link_path (relative to ev.dfd) is removed if it is still the object of
// ev.path (resolved from ev.start_dir), and not that path itself.
Result<bool> remove_made_hard_link(const FileEvent& ev, const std::string& link_path);

}  // namespace ks
