// What the daemon reads from a call the session filter sent it: the
// operation on each path, the directory it is relative to, whether a final
// symbolic link is followed, and the calls that turn out to need no look.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/syscall.h>

#include "seccomp_guard/filter.h"
#include "seccomp_guard/notice.h"

using namespace ks;
using namespace ks::seccomp;

namespace {

Call decode(int nr, std::initializer_list<uint64_t> args) {
    uint64_t a[6] = {};
    size_t i = 0;
    for (uint64_t v : args) a[i++] = v;
    return decode_call(nr, a);
}

constexpr uint64_t kCwd = static_cast<uint64_t>(AT_FDCWD);

TEST(SeccompDecode, RemovalsAreJudgedOnTheLinkNotWhereItLeads) {
    Call c = decode(SYS_unlinkat, {7, 0x1000, AT_REMOVEDIR});
    ASSERT_EQ(c.kind, Call::Kind::kFiles);
    ASSERT_EQ(c.paths.size(), 1u);
    EXPECT_EQ(c.paths[0].op, KS_OP_RMDIR);
    EXPECT_EQ(c.paths[0].dfd, 7);
    EXPECT_EQ(c.paths[0].address, 0x1000u);
    EXPECT_FALSE(c.paths[0].follow);
    c = decode(SYS_unlink, {0x2000});
    EXPECT_EQ(c.paths[0].op, KS_OP_UNLINK);
    EXPECT_EQ(c.paths[0].dfd, AT_FDCWD);
}

TEST(SeccompDecode, ARenameIsBothAMoveAwayAndAReplacement) {
    Call c = decode(SYS_renameat2, {3, 0x10, 4, 0x20, 0});
    ASSERT_EQ(c.paths.size(), 2u);
    EXPECT_EQ(c.paths[0].op, KS_OP_RENAME_FROM);
    EXPECT_EQ(c.paths[0].dfd, 3);
    EXPECT_EQ(c.paths[1].op, KS_OP_RENAME_ONTO);
    EXPECT_EQ(c.paths[1].dfd, 4);
    EXPECT_EQ(c.paths[1].address, 0x20u);
}

TEST(SeccompDecode, OpensAreJudgedByWhatTheyAskFor) {
    EXPECT_EQ(decode(SYS_openat, {kCwd, 0x10, O_RDONLY}).kind, Call::Kind::kNone);
    EXPECT_EQ(decode(SYS_openat, {kCwd, 0x10, O_WRONLY}).paths.at(0).op, KS_OP_OPEN_WRITE);
    EXPECT_EQ(decode(SYS_openat, {kCwd, 0x10, O_RDWR | O_TRUNC}).paths.at(0).op, KS_OP_OPEN_TRUNC);
    EXPECT_EQ(decode(SYS_open, {0x10, O_RDONLY | O_CREAT}).paths.at(0).op, KS_OP_CREATE_IN);
    Call nofollow = decode(SYS_openat, {kCwd, 0x10, O_WRONLY | O_NOFOLLOW});
    EXPECT_FALSE(nofollow.paths.at(0).follow);
    EXPECT_EQ(nofollow.paths.at(0).open_flags, static_cast<uint32_t>(O_WRONLY | O_NOFOLLOW));
    // openat2's flags are in the caller's memory: read with the paths.
    Call o2 = decode(SYS_openat2, {kCwd, 0x10, 0x30, 24});
    EXPECT_EQ(o2.kind, Call::Kind::kFiles);
    EXPECT_EQ(o2.openat2_how, 0x30u);
}

TEST(SeccompDecode, MetadataCarriesWhatItAsksForAndDescriptorsNameTheirObject) {
    Call c = decode(SYS_fchownat, {kCwd, 0x10, 0, 0, AT_SYMLINK_NOFOLLOW});
    EXPECT_EQ(c.paths.at(0).op, KS_OP_CHOWN);
    EXPECT_FALSE(c.paths.at(0).follow);
    EXPECT_EQ(c.meta.uid, 0u);
    EXPECT_EQ(c.meta.at_flags, static_cast<uint32_t>(AT_SYMLINK_NOFOLLOW));
    c = decode(SYS_fchmod, {5, 0700});
    EXPECT_EQ(c.paths.at(0).op, KS_OP_CHMOD);
    EXPECT_EQ(c.paths.at(0).dfd, 5);
    EXPECT_EQ(c.paths.at(0).address, 0u);  // the descriptor itself
    EXPECT_EQ(c.meta.mode, 0700u);
    EXPECT_EQ(decode(SYS_ftruncate, {9, 0}).paths.at(0).op, KS_OP_TRUNCATE);
}

TEST(SeccompDecode, MountsThatOnlyChangePropagationNeedNoLook) {
    EXPECT_EQ(decode(SYS_mount, {0, 0x10, 0, MS_PRIVATE | MS_REC, 0}).kind, Call::Kind::kNone);
    Call bind = decode(SYS_mount, {0x20, 0x10, 0, MS_BIND, 0});
    ASSERT_EQ(bind.paths.size(), 2u);
    EXPECT_EQ(bind.paths[0].op, KS_OP_MOUNT);
    EXPECT_EQ(bind.paths[1].op, KS_OP_MOUNT_SOURCE);
    EXPECT_EQ(decode(SYS_move_mount, {3, 0x10, kCwd, 0x20, 0}).paths.at(0).address, 0x20u);
}

TEST(SeccompDecode, ASymbolicLinkIsItsNewNameThenWhereItLeads) {
    // symlinkat(target, newdfd, linkpath): the name first (the daemon reads
    // the target from the link's own directory), relative to newdfd both.
    Call c = decode(SYS_symlinkat, {0x10, 6, 0x20});
    ASSERT_EQ(c.paths.size(), 2u);
    EXPECT_EQ(c.paths[0].op, KS_OP_CREATE_IN);
    EXPECT_EQ(c.paths[0].address, 0x20u);
    EXPECT_FALSE(c.paths[0].follow);
    EXPECT_EQ(c.paths[1].op, KS_OP_SYMLINK_TO);
    EXPECT_EQ(c.paths[1].address, 0x10u);
    EXPECT_EQ(c.paths[1].dfd, 6);
    Call old = decode(SYS_symlink, {0x10, 0x20});
    ASSERT_EQ(old.paths.size(), 2u);
    EXPECT_EQ(old.paths[1].op, KS_OP_SYMLINK_TO);
    EXPECT_EQ(old.paths[1].dfd, AT_FDCWD);
}

TEST(SeccompDecode, TheNewMountApiIsJudgedAsTheMountsItMakes) {
    // move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH): where it
    // lands, and what it brings (the descriptor's object).
    Call move = decode(SYS_move_mount, {3, 0x10, kCwd, 0x20, 0x04});
    ASSERT_EQ(move.paths.size(), 2u);
    EXPECT_EQ(move.paths[0].op, KS_OP_MOUNT);
    EXPECT_EQ(move.paths[0].dfd, AT_FDCWD);
    EXPECT_EQ(move.paths[1].op, KS_OP_MOUNT_SOURCE);
    EXPECT_EQ(move.paths[1].dfd, 3);
    EXPECT_EQ(move.paths[1].address, 0x10u);
    // open_tree(dfd, path, OPEN_TREE_CLONE): a bind mount's source; without
    // the flag it only names a mount (judged if it is moved).
    Call clone = decode(SYS_open_tree, {kCwd, 0x30, 1 /* OPEN_TREE_CLONE */});
    ASSERT_EQ(clone.paths.size(), 1u);
    EXPECT_EQ(clone.paths[0].op, KS_OP_MOUNT_SOURCE);
    EXPECT_EQ(clone.paths[0].address, 0x30u);
    EXPECT_EQ(decode(SYS_open_tree, {kCwd, 0x30, 0}).kind, Call::Kind::kNone);
    // mount_setattr(dfd, path, flags, attr, size): as a remount there.
    Call attr = decode(SYS_mount_setattr, {5, 0x40, 0, 0x50, 32});
    ASSERT_EQ(attr.paths.size(), 1u);
    EXPECT_EQ(attr.paths[0].op, KS_OP_MOUNT);
    EXPECT_EQ(attr.paths[0].dfd, 5);
    // fspick(dfd, path, flags): the file system there picked to be
    // reconfigured (fsconfig's FSCONFIG_CMD_RECONFIGURE): a remount there.
    Call pick = decode(SYS_fspick, {kCwd, 0x60, 0});
    ASSERT_EQ(pick.paths.size(), 1u);
    EXPECT_EQ(pick.paths[0].op, KS_OP_REMOUNT);
    EXPECT_EQ(pick.paths[0].dfd, AT_FDCWD);
    EXPECT_EQ(pick.paths[0].address, 0x60u);
}

TEST(SeccompDecode, SignalsAndTracingNameTheirTarget) {
    Call k = decode(SYS_kill, {static_cast<uint64_t>(-42), 9});
    EXPECT_EQ(k.kind, Call::Kind::kProcess);
    EXPECT_EQ(k.target, -42);
    EXPECT_EQ(k.arg, 9u);
    EXPECT_EQ(decode(SYS_tgkill, {100, 101, 15}).arg, 15u);
    // Reading a tracee's registers is not an attach.
    EXPECT_EQ(decode(SYS_ptrace, {12 /* PTRACE_GETREGS */, 100}).kind, Call::Kind::kNone);
    EXPECT_EQ(decode(SYS_ptrace, {16 /* PTRACE_ATTACH */, 100}).tamper,
              static_cast<uint32_t>(KS_TAMPER_REACH_PTRACE));
    EXPECT_EQ(decode(SYS_bpf, {5}).kind, Call::Kind::kKernel);
    EXPECT_EQ(decode(SYS_io_uring_setup, {8, 0}).kind, Call::Kind::kIoUring);
}

TEST(SeccompFilterProgram, EveryWatchedCallIsDecodedAndTheProgramFitsItsJumps) {
    for (const auto& w : watched_calls()) {
        // Each call the filter sends has a reading (the argument-dependent
        // ones may turn out to need none).
        uint64_t a[6] = {static_cast<uint64_t>(AT_FDCWD), 0x10, O_WRONLY, 0, 0, 0};
        if (w.when == WatchedCall::When::kIoctlFlags) a[1] = 0x40086602u;
        if (w.nr == SYS_open) a[1] = O_WRONLY;
        if (w.nr == SYS_ptrace) a[0] = 16;  // PTRACE_ATTACH
        Call c = decode_call(w.nr, a);
        EXPECT_NE(std::string(c.name), "") << w.name;
    }
    auto prog = session_filter();
    EXPECT_LT(prog.size(), 256u);
    EXPECT_EQ(prog.back().code, BPF_RET | BPF_K);
}

TEST(SeccompProcMem, AnotherProcessMemoryIsNamedByItsPid) {
    EXPECT_EQ(proc_mem_target("/proc/123/mem"), 123);
    EXPECT_EQ(proc_mem_target("/proc/123/task/124/mem"), 123);
    EXPECT_FALSE(proc_mem_target("/proc/123/maps"));
    EXPECT_FALSE(proc_mem_target("/proc/123/task/124/memx"));
    EXPECT_FALSE(proc_mem_target("/proc/sys/vm/mem"));
    EXPECT_FALSE(proc_mem_target("/srv/proc/123/mem"));
    // The caller's own names: resolved for it, not for the daemon.
    EXPECT_EQ(caller_proc_path("/proc/self/mem", 40, 41), "/proc/40/mem");
    EXPECT_EQ(caller_proc_path("/proc/thread-self/mem", 40, 41), "/proc/40/task/41/mem");
    EXPECT_EQ(caller_proc_path("/proc/self/../7/mem", 40, 41), "/proc/40/../7/mem");
    EXPECT_EQ(caller_proc_path("/proc/selfish", 40, 41), "/proc/selfish");
}

}  // namespace
