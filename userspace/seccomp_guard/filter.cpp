// The session filter, assembled as classic BPF (linux/filter.h): a check of
// the architecture and of the x32 bit, then one comparison per watched call.
#include "seccomp_guard/filter.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <optional>

#include "control/control.h"
#include "seccomp_guard/notice.h"
#include "seccomp_guard/syscalls.h"

namespace ks::seccomp {
namespace {

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

constexpr uint32_t kX32Bit = 0x40000000u;
// chattr: FS_IOC_SETFLAGS (and its 32-bit number), FS_IOC_FSSETXATTR.
constexpr uint32_t kIoctlFlags[] = {0x40086602u, 0x40046602u, 0x401c5820u};
constexpr uint32_t kOpenWrites = O_ACCMODE | O_TRUNC | O_CREAT;

uint32_t arg_low(int i) { return offsetof(seccomp_data, args) + 8 * i; }

// A program with forward jumps to labels, resolved at the end.
class Assembler {
  public:
    using Label = size_t;
    Label label() {
        at_.push_back(0);
        return at_.size() - 1;
    }
    void place(Label l) { at_[l] = prog_.size(); }
    void load(uint32_t offset) { prog_.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset)); }
    void ret(uint32_t k) { prog_.push_back(BPF_STMT(BPF_RET | BPF_K, k)); }
    // if (A <op> k) goto yes; else goto no (a label, or the next instruction)
    void jump(uint16_t op, uint32_t k, std::optional<Label> yes, std::optional<Label> no) {
        if (yes) fixups_.push_back({prog_.size(), *yes, Fixup::kTrue});
        if (no) fixups_.push_back({prog_.size(), *no, Fixup::kFalse});
        prog_.push_back(BPF_JUMP(BPF_JMP | op | BPF_K, k, 0, 0));
    }
    void always(Label to) {
        fixups_.push_back({prog_.size(), to, Fixup::kAlways});
        prog_.push_back(BPF_STMT(BPF_JMP | BPF_JA, 0));
    }
    std::vector<sock_filter> finish() {
        for (const auto& f : fixups_) {
            size_t off = at_[f.to] - f.at - 1;  // every jump goes forward
            if (f.kind == Fixup::kAlways)
                prog_[f.at].k = static_cast<uint32_t>(off);
            else
                (f.kind == Fixup::kTrue ? prog_[f.at].jt : prog_[f.at].jf) =
                    static_cast<uint8_t>(off);
        }
        return std::move(prog_);
    }

  private:
    struct Fixup {
        size_t at;
        Label to;
        enum { kTrue, kFalse, kAlways } kind;
    };
    std::vector<sock_filter> prog_;
    std::vector<Fixup> fixups_;
    std::vector<size_t> at_;
};

}  // namespace

const std::vector<WatchedCall>& watched_calls() {
    using W = WatchedCall::When;
    static const std::vector<WatchedCall> calls = {
#if defined(__x86_64__)
        // files: removal, moves, truncation, writes, new names, metadata
        {__NR_unlink, "unlink"},
        {__NR_unlinkat, "unlinkat"},
        {__NR_rmdir, "rmdir"},
        {__NR_rename, "rename"},
        {__NR_renameat, "renameat"},
        {__NR_renameat2, "renameat2"},
        {__NR_truncate, "truncate"},
        {__NR_ftruncate, "ftruncate"},
        {__NR_open, "open", W::kOpenFlags, 1},
        {__NR_openat, "openat", W::kOpenFlags, 2},
        {__NR_openat2, "openat2"},
        {__NR_creat, "creat"},
        {__NR_link, "link"},
        {__NR_linkat, "linkat"},
        {__NR_symlink, "symlink"},
        {__NR_symlinkat, "symlinkat"},
        {__NR_chmod, "chmod"},
        {__NR_fchmod, "fchmod"},
        {__NR_fchmodat, "fchmodat"},
        {__NR_fchmodat2, "fchmodat2"},
        {__NR_chown, "chown"},
        {__NR_lchown, "lchown"},
        {__NR_fchown, "fchown"},
        {__NR_fchownat, "fchownat"},
        {__NR_setxattr, "setxattr"},
        {__NR_lsetxattr, "lsetxattr"},
        {__NR_fsetxattr, "fsetxattr"},
        {__NR_removexattr, "removexattr"},
        {__NR_lremovexattr, "lremovexattr"},
        {__NR_fremovexattr, "fremovexattr"},
        {__NR_setxattrat, "setxattrat"},
        {__NR_removexattrat, "removexattrat"},
        {__NR_ioctl, "ioctl", W::kIoctlFlags, 1},
        {__NR_mount, "mount"},
        {__NR_umount2, "umount2"},
        {__NR_move_mount, "move_mount"},
        {__NR_open_tree, "open_tree"},
        {__NR_mount_setattr, "mount_setattr"},
        {__NR_fspick, "fspick"},
        // space: an allocation says its size (protect.min_free)
        {__NR_fallocate, "fallocate"},
        {__NR_io_uring_setup, "io_uring_setup"},
        {__NR_io_uring_enter, "io_uring_enter"},
        {__NR_io_uring_register, "io_uring_register"},
        // other processes: signals, tracing, memory
        {__NR_kill, "kill"},
        {__NR_tkill, "tkill"},
        {__NR_tgkill, "tgkill"},
        {__NR_rt_sigqueueinfo, "rt_sigqueueinfo"},
        {__NR_rt_tgsigqueueinfo, "rt_tgsigqueueinfo"},
        {__NR_pidfd_open, "pidfd_open"},
        {__NR_pidfd_getfd, "pidfd_getfd"},
        {__NR_ptrace, "ptrace"},
        {__NR_process_vm_writev, "process_vm_writev"},
        // the kernel itself
        {__NR_bpf, "bpf"},
        {__NR_reboot, "reboot"},
        {__NR_init_module, "init_module"},
        {__NR_finit_module, "finit_module"},
        {__NR_delete_module, "delete_module"},
        {__NR_kexec_load, "kexec_load"},
        {__NR_kexec_file_load, "kexec_file_load"},
#endif
    };
    return calls;
}

std::vector<sock_filter> session_filter() {
    Assembler a;
    auto allow = a.label(), notify = a.label(), refuse = a.label();
#if defined(__x86_64__)
    a.load(offsetof(seccomp_data, arch));
    a.jump(BPF_JEQ, AUDIT_ARCH_X86_64, std::nullopt, refuse);
    a.load(offsetof(seccomp_data, nr));
    a.jump(BPF_JGE, kX32Bit, refuse, std::nullopt);
    for (const auto& c : watched_calls())
        if (c.when == WatchedCall::When::kAlways)
            a.jump(BPF_JEQ, static_cast<uint32_t>(c.nr), notify, std::nullopt);
    // The calls that depend on an argument: a block each, entered with the
    // number in A and left for allow or notify (A is the argument then).
    for (const auto& c : watched_calls()) {
        if (c.when == WatchedCall::When::kAlways) continue;
        auto next = a.label();
        a.jump(BPF_JEQ, static_cast<uint32_t>(c.nr), std::nullopt, next);
        a.load(arg_low(c.arg));
        if (c.when == WatchedCall::When::kOpenFlags) {
            a.jump(BPF_JSET, kOpenWrites, notify, allow);
        } else {
            for (uint32_t cmd : kIoctlFlags) a.jump(BPF_JEQ, cmd, notify, std::nullopt);
            a.always(allow);
        }
        a.place(next);
    }
#endif
    a.place(allow);
    a.ret(SECCOMP_RET_ALLOW);
    a.place(notify);
    a.ret(SECCOMP_RET_USER_NOTIF);
    a.place(refuse);
    a.ret(SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA));
    return a.finish();
}

std::string unavailable_reason() {
#if !defined(__x86_64__)
    return "the session filter is built for x86-64 only";
#else
    // Both actions the daemon answers with must be known to the kernel.
    uint32_t action = SECCOMP_RET_USER_NOTIF;
    if (::syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) != 0)
        return std::string("seccomp user notification: ") + std::strerror(errno);
    seccomp_notif_sizes sizes{};
    if (::syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0)
        return std::string("seccomp notification sizes: ") + std::strerror(errno);
    if (sizes.seccomp_notif < sizeof(seccomp_notif) ||
        sizes.seccomp_notif_resp < sizeof(seccomp_notif_resp))
        return "the kernel's seccomp notification is smaller than this build's";
    return "";
#endif
}

Result<Fd> install_session_filter() {
    if (std::string why = unavailable_reason(); !why.empty()) return make_error(why);
    std::vector<sock_filter> prog = session_filter();
    sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
    unsigned long flags = SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    auto load = [&] { return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog); };
    long fd = load();
    if (fd < 0 && errno == EINVAL) {
        // Before 5.19: a signal may make the call start again, and be asked
        // about once more.
        flags &= ~SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
        fd = load();
    }
    if (fd < 0 && errno == EACCES) {
        // Without CAP_SYS_ADMIN the kernel takes a filter only from a process
        // that can gain no privileges (root keeps setuid programs working).
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return sys_error("no_new_privs");
        fd = load();
    }
    if (fd < 0) return sys_error("seccomp filter");
    return Fd(static_cast<int>(fd));
}

std::string trial(const std::string& dir) {
    if (std::string why = unavailable_reason(); !why.empty()) return why;
    std::string file = dir + "/killswitch-seccomp-trial-" + std::to_string(::getpid());
    std::ofstream(file) << "kept\n";
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return std::string("socketpair: ") + std::strerror(errno);
    Fd mine(sv[0]), theirs(sv[1]);
    pid_t child = ::fork();
    if (child < 0) return std::string("fork: ") + std::strerror(errno);
    if (child == 0) {
        mine.reset();
        auto listener = install_session_filter();
        if (!listener || !send_with_fd(theirs.get(), "x", listener->get())) _exit(100);
        listener->reset();
        char go;
        if (::read(theirs.get(), &go, 1) != 1) _exit(101);
        long rc = ::syscall(SYS_unlinkat, AT_FDCWD, file.c_str(), 0);
        _exit(rc == -1 && errno == EPERM ? 0 : 102);
    }
    theirs.reset();
    std::string why;
    Fd listener;
    char buf[4];
    pollfd p{mine.get(), POLLIN, 0};
    if (::poll(&p, 1, 2000) != 1 || receive_with_fd(mine.get(), buf, sizeof(buf), listener) != 1 ||
        !listener.valid()) {
        why = "the child could not install the filter";
    } else if (::write(mine.get(), "g", 1) != 1) {
        why = "the child went away";
    } else {
        pollfd l{listener.get(), POLLIN, 0};
        auto n =
            ::poll(&l, 1, 2000) == 1 ? receive(listener.get()) : Result<Notice>(make_error("none"));
        if (!n || n->nr != SYS_unlinkat)
            why = "the filtered unlinkat did not reach the listener";
        else if (!answer(listener.get(), n->id, EPERM))
            why = "the answer was not taken";
    }
    if (why.empty()) {
        listener.reset();
        int status = 0;
        ::waitpid(child, &status, 0);
        child = -1;
        struct stat st {};
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            why = "the child's unlinkat did not fail with EPERM";
        else if (::stat(file.c_str(), &st) != 0)
            why = "the file is gone";
    }
    if (child > 0) {
        ::kill(child, SIGKILL);
        ::waitpid(child, nullptr, 0);
    }
    ::unlink(file.c_str());
    return why;
}

}  // namespace ks::seccomp
