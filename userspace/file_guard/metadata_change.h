// chmod and chown of protected data at the libc layer (KS_FF_ASK). The
// kernel stops the caller at the library's entry point; the daemon looks at
// the object as the caller reaches it and lets a change that changes
// nothing go on (`chown -R postgres:postgres` over a data directory
// postgres owns, `chmod 700` of one that is 700), with a ticket that lets
// that very system call pass the syscall tracepoint (events.h,
// ks_meta_ticket). Any other change is refused as before. The hook layers
// (LSM, fentry) see the object themselves and need none of this.
#pragma once

#include <sys/stat.h>

#include <killswitch/abi/events.h>

#include <string>

#include "abi/decode.h"
#include "common/result.h"

namespace ks {

// Whether applying m to an object with st changes nothing. chmod: the
// same permission bits. chown: the same owner and group ((uint32_t)-1
// keeps either), of a directory, or of a file with no set-user-ID or
// set-group-ID bit and no file capabilities (has_caps), which a chown
// clears whatever the owner.
bool meta_change_is_noop(uint32_t op, const MetaArgs& m, const struct stat& st, bool has_caps);

// The object of ev as the daemon reaches it through the caller's /proc:
// its root (an absolute path), its working directory, or the directory
// or file of the fd.
std::string meta_object_path(const FileEvent& ev);

// Looks at the object: true when ev's change changes nothing; an error
// when the object cannot be looked at (then the change is refused).
Result<bool> meta_unchanged(const FileEvent& ev);

// The ticket for the system call that follows the library call of ev.
ks_meta_ticket meta_ticket(const FileEvent& ev, uint64_t deadline_boot_ns);

}  // namespace ks
