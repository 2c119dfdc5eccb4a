// A call a session's filter sent to the daemon: received from the listener,
// read in the caller's terms (the paths and descriptors of the file guard,
// the targets of the self guard), and answered.
#pragma once

#include <killswitch/abi/events.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "abi/decode.h"
#include "common/result.h"

namespace ks::seccomp {

struct Notice {
    uint64_t id = 0;  // the kernel's cookie for the answer
    int tid = 0;      // the calling thread (the daemon's pid namespace)
    int nr = 0;
    uint64_t args[6] = {};
};

// Asks the kernel to switch between the caller and the daemon on one CPU
// (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6+): measured here, a call's
// round trip falls from about 17 us to 2.4 us. False where the kernel lacks it.
bool wake_on_one_cpu(int listener);

// Reads one notification; the listener was readable.
Result<Notice> receive(int listener);
// The caller still waits on this notification (it was not killed and its
// pid not reused): checked after reading its memory.
bool still_waiting(int listener, uint64_t id);
// Refused with -error, or (error 0) the call goes on as made.
Status answer(int listener, uint64_t id, int error);

// A path (or descriptor) argument and what the call does to its object.
struct PathArg {
    uint32_t op = 0;       // KS_OP_*
    int dfd = -100;        // AT_FDCWD, or the directory (the object itself when path is "")
    uint64_t address = 0;  // the path's address in the caller (0: dfd alone)
    bool follow = true;    // whether a final symbolic link is followed
    uint32_t open_flags = 0;
    std::string path;  // read from the caller's memory
};

// What a notified call asks, before its memory is read.
struct Call {
    enum class Kind {
        kNone,     // nothing to judge (a flag the filter could not see)
        kFiles,    // paths: the file guard's operations
        kIoUring,  // protect.io_uring
        kSpace,    // fallocate: bytes on a file system (protect.min_free)
        kProcess,  // a signal, trace or memory write at another process
        kKernel,   // bpf(), modules, kexec, reboot
    } kind = Kind::kNone;
    const char* name = "";
    std::vector<PathArg> paths;
    MetaArgs meta;             // chmod, chown: what the call asks for
    uint32_t tamper = 0;       // KS_TAMPER_REACH_* (kProcess) or KS_TAMPER_* (kKernel)
    int64_t target = 0;        // the process (pid, -pgid, -1)
    uint64_t arg = 0;          // signal, ptrace request, bpf command, reboot command
    uint64_t openat2_how = 0;  // openat2: its open_how, read with the paths
    int fd = -1;               // kSpace: the file; pidfd_getfd: the pidfd
    uint64_t bytes = 0;        // kSpace: what it would allocate
};

// The call as the filter sent it (x86-64 numbers).
Call decode_call(int nr, const uint64_t args[6]);

// The process whose memory a resolved path names (/proc/N/mem,
// /proc/N/task/T/mem: N), for an open for writing; nullopt for any other.
std::optional<int> proc_mem_target(const std::string& resolved);
// A path as the daemon can resolve it for the caller tgid (thread tid):
// /proc/self and /proc/thread-self name the caller, not the daemon.
std::string caller_proc_path(const std::string& path, int tgid, int tid);

// Reads the paths of c (and openat2's flags) from the caller's memory
// through /proc/TID/mem (up to PATH_MAX each).
Status read_paths(int tid, Call& c);

}  // namespace ks::seccomp
