#include "seccomp_guard/notice.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/fd.h"
#include "seccomp_guard/syscalls.h"

namespace ks::seccomp {
namespace {

constexpr int kAtFdcwd = AT_FDCWD;
constexpr uint64_t kAtRemoveDir = AT_REMOVEDIR;
constexpr uint64_t kAtSymlinkNofollow = AT_SYMLINK_NOFOLLOW;
// mount(2): flags that only change propagation, and the bind and move ones.
constexpr uint64_t kMsPropagation = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;
constexpr uint64_t kOpenTreeClone = 1;  // OPEN_TREE_CLONE
constexpr long kPtraceAttach = 16, kPtraceSeize = 0x4206;
// chmod's owner and group: unchanged (as the file guard's records say).
constexpr uint32_t kNoId = UINT32_MAX;

PathArg at(uint32_t op, uint64_t dfd, uint64_t address, bool follow = true) {
    return PathArg{op, static_cast<int>(dfd), address, follow, 0, {}};
}
PathArg cwd(uint32_t op, uint64_t address, bool follow = true) {
    return at(op, static_cast<uint64_t>(kAtFdcwd), address, follow);
}
PathArg fd(uint32_t op, uint64_t dfd) { return at(op, dfd, 0); }

// open(2) flags: what the tracepoint layer judges (ks_open_op).
uint32_t open_op(uint64_t flags) {
    if (flags & O_TRUNC) return KS_OP_OPEN_TRUNC;
    if (flags & O_ACCMODE) return KS_OP_OPEN_WRITE;
    if (flags & O_CREAT) return KS_OP_CREATE_IN;
    return 0;
}

Call files(const char* name, std::vector<PathArg> paths) {
    Call c;
    c.kind = Call::Kind::kFiles;
    c.name = name;
    c.paths = std::move(paths);
    return c;
}

Call process(const char* name, uint32_t what, uint64_t target, uint64_t arg) {
    Call c;
    c.kind = Call::Kind::kProcess;
    c.name = name;
    c.tamper = what;
    c.target = static_cast<int>(target);  // pid_t
    c.arg = arg;
    return c;
}

Call kernel(const char* name, uint32_t what, uint64_t arg) {
    Call c;
    c.kind = Call::Kind::kKernel;
    c.name = name;
    c.tamper = what;
    c.arg = arg;
    return c;
}

Call meta(Call c, uint32_t mode, uint32_t uid, uint32_t gid, uint32_t at_flags) {
    c.meta = MetaArgs{mode, uid, gid, at_flags};
    return c;
}

}  // namespace

Call decode_call(int nr, const uint64_t a[6]) {
    switch (nr) {
        case __NR_unlink:
            return files("unlink", {cwd(KS_OP_UNLINK, a[0], false)});
        case __NR_unlinkat:
            return files("unlinkat",
                         {at(a[2] & kAtRemoveDir ? KS_OP_RMDIR : KS_OP_UNLINK, a[0], a[1], false)});
        case __NR_rmdir:
            return files("rmdir", {cwd(KS_OP_RMDIR, a[0], false)});
        case __NR_rename:
            return files("rename", {cwd(KS_OP_RENAME_FROM, a[0], false),
                                    cwd(KS_OP_RENAME_ONTO, a[1], false)});
        case __NR_renameat:
        case __NR_renameat2:
            return files(nr == __NR_renameat ? "renameat" : "renameat2",
                         {at(KS_OP_RENAME_FROM, a[0], a[1], false),
                          at(KS_OP_RENAME_ONTO, a[2], a[3], false)});
        case __NR_truncate:
            return files("truncate", {cwd(KS_OP_TRUNCATE, a[0])});
        case __NR_ftruncate:
            return files("ftruncate", {fd(KS_OP_TRUNCATE, a[0])});
        case __NR_creat:
            return files("creat", {cwd(KS_OP_OPEN_TRUNC, a[0])});
        case __NR_open:
        case __NR_openat: {
            bool is_open = nr == __NR_open;
            uint64_t flags = is_open ? a[1] : a[2];
            uint32_t op = open_op(flags);
            if (!op) return Call{};
            PathArg p = is_open ? cwd(op, a[0], !(flags & O_NOFOLLOW))
                                : at(op, a[0], a[1], !(flags & O_NOFOLLOW));
            p.open_flags = static_cast<uint32_t>(flags);
            return files(is_open ? "open" : "openat", {p});
        }
        case __NR_openat2: {
            // Its flags are in memory: read_paths fills the op in.
            Call c = files("openat2", {at(0, a[0], a[1])});
            c.openat2_how = a[2];
            return c;
        }
        case __NR_link:
            return files("link", {cwd(KS_OP_LINK, a[0], false), cwd(KS_OP_CREATE_IN, a[1], false)});
        case __NR_linkat:
            return files("linkat", {at(KS_OP_LINK, a[0], a[1], a[4] & AT_SYMLINK_FOLLOW),
                                    at(KS_OP_CREATE_IN, a[2], a[3], false)});
        // The new name (inside a protected tree: create-in), then where the
        // link leads (symlink-to: its target, read from the link's own
        // directory; the daemon needs the name first).
        case __NR_symlink:
            return files("symlink",
                         {cwd(KS_OP_CREATE_IN, a[1], false), cwd(KS_OP_SYMLINK_TO, a[0])});
        case __NR_symlinkat:
            return files("symlinkat", {at(KS_OP_CREATE_IN, a[1], a[2], false),
                                       at(KS_OP_SYMLINK_TO, a[1], a[0])});
        case __NR_chmod:
            return meta(files("chmod", {cwd(KS_OP_CHMOD, a[0])}), a[1], kNoId, kNoId, 0);
        case __NR_fchmod:
            return meta(files("fchmod", {fd(KS_OP_CHMOD, a[0])}), a[1], kNoId, kNoId, 0);
        case __NR_fchmodat:
            return meta(files("fchmodat", {at(KS_OP_CHMOD, a[0], a[1])}), a[2], kNoId, kNoId, 0);
        case __NR_fchmodat2:
            return meta(
                files("fchmodat2", {at(KS_OP_CHMOD, a[0], a[1], !(a[3] & kAtSymlinkNofollow))}),
                a[2], kNoId, kNoId, a[3]);
        case __NR_chown:
            return meta(files("chown", {cwd(KS_OP_CHOWN, a[0])}), 0, a[1], a[2], 0);
        case __NR_lchown:
            return meta(files("lchown", {cwd(KS_OP_CHOWN, a[0], false)}), 0, a[1], a[2],
                        kAtSymlinkNofollow);
        case __NR_fchown:
            return meta(files("fchown", {fd(KS_OP_CHOWN, a[0])}), 0, a[1], a[2], 0);
        case __NR_fchownat: {
            Call c = files("fchownat", {at(KS_OP_CHOWN, a[0], a[1], !(a[4] & kAtSymlinkNofollow))});
            return meta(c, 0, a[2], a[3], a[4]);
        }
        case __NR_setxattr:
        case __NR_removexattr:
            return files("setxattr", {cwd(KS_OP_XATTR, a[0])});
        case __NR_lsetxattr:
        case __NR_lremovexattr:
            return files("lsetxattr", {cwd(KS_OP_XATTR, a[0], false)});
        case __NR_fsetxattr:
        case __NR_fremovexattr:
            return files("fsetxattr", {fd(KS_OP_XATTR, a[0])});
        case __NR_setxattrat:
        case __NR_removexattrat:
            return files("setxattrat", {at(KS_OP_XATTR, a[0], a[1], !(a[2] & kAtSymlinkNofollow))});
        case __NR_ioctl:
            return files("ioctl", {fd(KS_OP_FILE_FLAGS, a[0])});
        case __NR_mount: {
            if (a[3] & kMsPropagation) return Call{};
            // A remount without MS_BIND changes the file system itself.
            bool sb = (a[3] & (MS_REMOUNT | MS_BIND)) == MS_REMOUNT;
            Call c = files("mount", {cwd(sb ? KS_OP_REMOUNT : KS_OP_MOUNT, a[1])});
            if (a[3] & (MS_BIND | MS_MOVE)) c.paths.push_back(cwd(KS_OP_MOUNT_SOURCE, a[0]));
            return c;
        }
        case __NR_umount2:
            return files("umount2", {cwd(KS_OP_UMOUNT, a[0])});
        case __NR_move_mount:
            // (from_dfd, from_path, to_dfd, to_path, flags): where it lands,
            // and what it brings (an empty path: the fd's own object).
            return files("move_mount",
                         {at(KS_OP_MOUNT, a[2], a[3]), at(KS_OP_MOUNT_SOURCE, a[0], a[1])});
        case __NR_open_tree:
            // (dfd, path, flags): a copy of the tree there, a bind mount's
            // source; without OPEN_TREE_CLONE it only names a mount.
            if (!(a[2] & kOpenTreeClone)) return Call{};
            return files("open_tree", {at(KS_OP_MOUNT_SOURCE, a[0], a[1])});
        case __NR_mount_setattr:
            // (dfd, path, flags, attr, size): read-only, no-exec, idmapped,
            // as a remount. The attributes are not read: a change of
            // propagation alone is judged too.
            return files("mount_setattr", {at(KS_OP_MOUNT, a[0], a[1])});
        case __NR_fspick:
            // (dfd, path, flags): the file system there, picked for
            // fsconfig(FSCONFIG_CMD_RECONFIGURE): as a remount there.
            return files("fspick", {at(KS_OP_REMOUNT, a[0], a[1])});
        case __NR_fallocate: {
            // Punching a hole or collapsing a range frees space.
            constexpr uint64_t kFrees = 0x02 | 0x08;  // FALLOC_FL_PUNCH_HOLE, COLLAPSE_RANGE
            if (a[1] & kFrees) return Call{};
            Call c;
            c.kind = Call::Kind::kSpace;
            c.name = "fallocate";
            c.fd = static_cast<int>(a[0]);
            c.bytes = a[3];
            return c;
        }
        case __NR_io_uring_setup:
        case __NR_io_uring_enter:
        case __NR_io_uring_register: {
            Call c;
            c.kind = Call::Kind::kIoUring;
            c.name = "io_uring";
            return c;
        }
        case __NR_kill:
            return process("kill", KS_TAMPER_REACH_SIGNAL, a[0], a[1]);
        case __NR_tkill:
            return process("tkill", KS_TAMPER_REACH_SIGNAL, a[0], a[1]);
        case __NR_tgkill:
            return process("tgkill", KS_TAMPER_REACH_SIGNAL, a[0], a[2]);
        case __NR_rt_sigqueueinfo:
            return process("rt_sigqueueinfo", KS_TAMPER_REACH_SIGNAL, a[0], a[1]);
        case __NR_rt_tgsigqueueinfo:
            return process("rt_tgsigqueueinfo", KS_TAMPER_REACH_SIGNAL, a[0], a[2]);
        case __NR_pidfd_open:
            return process("pidfd_open", KS_TAMPER_REACH_PIDFD, a[0], 0);
        case __NR_pidfd_getfd: {
            // Another process's descriptor (the wrapper's copy of the
            // session's listener...): as ptrace (the kernel asks the same
            // access). Its process is the pidfd's, read by the daemon.
            Call c = process("pidfd_getfd", KS_TAMPER_REACH_PTRACE, 0, 0);
            c.fd = static_cast<int>(a[0]);
            return c;
        }
        case __NR_ptrace:
            if (a[0] != kPtraceAttach && a[0] != kPtraceSeize) return Call{};
            return process("ptrace", KS_TAMPER_REACH_PTRACE, a[1], a[0]);
        case __NR_process_vm_writev:
            return process("process_vm_writev", KS_TAMPER_REACH_VM_WRITE, a[0], 0);
        case __NR_bpf:
            return kernel("bpf", KS_TAMPER_BPF, a[0]);
        case __NR_reboot:
            return kernel("reboot", KS_TAMPER_REBOOT, a[2]);
        case __NR_init_module:
        case __NR_finit_module:
        case __NR_delete_module:
            return kernel("module", KS_TAMPER_MODULE, 0);
        case __NR_kexec_load:
        case __NR_kexec_file_load:
            return kernel("kexec", KS_TAMPER_KEXEC, 0);
        default:
            return Call{};
    }
}

bool wake_on_one_cpu(int listener) {
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
    constexpr uint64_t kSyncWakeUp = 1;  // SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
    return ::ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, kSyncWakeUp) == 0;
}

std::optional<int> proc_mem_target(const std::string& resolved) {
    // "/proc/" N ("/mem" | "/task/" T "/mem")
    auto digits = [](const std::string& s, size_t& i) {
        size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        return i > start && i - start < 10;
    };
    if (resolved.rfind("/proc/", 0) != 0) return std::nullopt;
    size_t i = 6;
    if (!digits(resolved, i)) return std::nullopt;
    int pid = std::atoi(resolved.c_str() + 6);
    std::string rest = resolved.substr(i);
    if (rest == "/mem") return pid;
    size_t j = 6;
    if (rest.rfind("/task/", 0) == 0 && digits(rest, j) && rest.substr(j) == "/mem") return pid;
    return std::nullopt;
}

std::string caller_proc_path(const std::string& path, int tgid, int tid) {
    auto swap = [&](const std::string& prefix,
                    const std::string& as) -> std::optional<std::string> {
        if (path == prefix) return as;
        if (path.rfind(prefix + "/", 0) == 0) return as + path.substr(prefix.size());
        return std::nullopt;
    };
    if (auto p = swap("/proc/self", "/proc/" + std::to_string(tgid))) return *p;
    if (auto p = swap("/proc/thread-self",
                      "/proc/" + std::to_string(tgid) + "/task/" + std::to_string(tid)))
        return *p;
    return path;
}

Result<Notice> receive(int listener) {
    seccomp_notif req{};
    if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) return sys_error("notification");
    Notice n;
    n.id = req.id;
    n.tid = static_cast<int>(req.pid);
    n.nr = req.data.nr;
    for (int i = 0; i < 6; ++i) n.args[i] = req.data.args[i];
    return n;
}

bool still_waiting(int listener, uint64_t id) {
    return ::ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

Status answer(int listener, uint64_t id, int error) {
    seccomp_notif_resp resp{};
    resp.id = id;
    if (error) {
        resp.error = -error;
    } else {
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    }
    if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0) {
        // The caller was killed while it waited: nothing left to answer.
        if (errno == ENOENT) return {};
        return sys_error("answer");
    }
    return {};
}

Status read_paths(int tid, Call& c) {
    Fd mem(::open(("/proc/" + std::to_string(tid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC));
    if (!mem.valid()) return sys_error("/proc/" + std::to_string(tid) + "/mem");
    if (c.openat2_how) {
        open_how how{};
        if (::pread(mem.get(), &how, sizeof(how), static_cast<off_t>(c.openat2_how)) !=
            static_cast<ssize_t>(sizeof(how)))
            return sys_error("openat2 how");
        uint32_t op = open_op(how.flags);
        if (!op) {
            c.kind = Call::Kind::kNone;
            return {};
        }
        c.paths[0].op = op;
        c.paths[0].open_flags = static_cast<uint32_t>(how.flags);
        c.paths[0].follow = !(how.flags & O_NOFOLLOW) && !(how.resolve & RESOLVE_NO_SYMLINKS);
    }
    for (auto& p : c.paths) {
        if (!p.address) continue;
        char buf[PATH_MAX];
        size_t got = 0;
        // Page by page: a short path near the end of a mapping must not fail
        // for the bytes after it.
        while (got < sizeof(buf)) {
            uint64_t addr = p.address + got;
            size_t page_left = 4096 - (addr & 4095);
            size_t want = std::min(page_left, sizeof(buf) - got);
            ssize_t n = ::pread(mem.get(), buf + got, want, static_cast<off_t>(addr));
            if (n <= 0) return sys_error("path argument");
            void* nul = std::memchr(buf + got, 0, static_cast<size_t>(n));
            got += static_cast<size_t>(n);
            if (nul) break;
        }
        size_t len = strnlen(buf, got);
        if (len == got) return make_error("path argument longer than PATH_MAX");
        p.path.assign(buf, len);
        // "" with AT_EMPTY_PATH names dfd itself.
        if (p.path.empty()) p.address = 0;
    }
    return {};
}

}  // namespace ks::seccomp
