// Where a symbolic link a guarded process makes would lead
// (file_guard/symlink_target.h): its target resolved as the kernel will
// follow it, from the caller's root or the link's own directory, and the
// link's path read from the caller's memory (this test's own).
#include "file_guard/symlink_target.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <killswitch/abi/events.h>
#include <unistd.h>

namespace ks {
namespace {

FileEvent link_event(const std::string& target, int dfd = AT_FDCWD) {
    FileEvent ev;
    ev.hdr.pid = 4242;
    ev.op = KS_OP_SYMLINK_TO;
    ev.flags = KS_FF_ASK | KS_FF_STOPPED;
    ev.dfd = dfd;
    ev.path = target;
    return ev;
}

TEST(SymlinkTarget, TheTargetIsResolvedFromTheLinksDirectory) {
    EXPECT_EQ(symlink_target_path(link_event("/srv/data"), "/tmp/x"), "/proc/4242/root/srv/data");
    EXPECT_EQ(symlink_target_path(link_event("../data"), "x"), "/proc/4242/cwd/../data");
    EXPECT_EQ(symlink_target_path(link_event("../../data"), "/tmp/a/x"),
              "/proc/4242/root/tmp/a/../../data");
    EXPECT_EQ(symlink_target_path(link_event("../data"), "a/b/x"), "/proc/4242/cwd/a/b/../data");
    EXPECT_EQ(symlink_target_path(link_event("data", 7), "sub/x"), "/proc/4242/fd/7/sub/data");
    EXPECT_EQ(symlink_target_path(link_event(""), "x"), "");
}

TEST(SymlinkTarget, TheLinksPathIsReadFromTheCallersMemory) {
    std::string link = "/tmp/a/b/there";
    FileEvent ev = link_event("../data");
    ev.hdr.pid = ::getpid();
    ev.upath = reinterpret_cast<uint64_t>(link.c_str());
    auto got = read_link_path(ev);
    ASSERT_TRUE(got) << got.error().str();
    EXPECT_EQ(*got, link);
    ev.upath = 0;
    EXPECT_FALSE(read_link_path(ev));
    ev.upath = 8;  // not mapped
    EXPECT_FALSE(read_link_path(ev));
}

}  // namespace
}  // namespace ks
