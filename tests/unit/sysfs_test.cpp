#include "common/sysfs.h"

#include <gtest/gtest.h>

namespace ks {
namespace {

TEST(ParseMounts, FindsCgroup2OnHybridAndUnifiedLayouts) {
    const char* hybrid =
        "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
        "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
    auto m = parse_mounts(hybrid);
    ASSERT_EQ(m.size(), 3u);
    EXPECT_EQ(m[2].fstype, "cgroup2");
    EXPECT_EQ(m[2].target, "/sys/fs/cgroup/unified");
}

TEST(ParseMounts, DecodesOctalEscapes) {
    auto m = parse_mounts("/dev/sda1 /mnt/with\\040space ext4 rw 0 0\n");
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].target, "/mnt/with space");
}

TEST(ParseMounts, SkipsMalformedLines) {
    auto m = parse_mounts("garbage\n\nproc /proc proc rw 0 0\n");
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].fstype, "proc");
}

// The LSM list decides whether the LSM layer is tried: "bpf" must be a whole
// item, wherever it stands.
TEST(Sysfs, ListHasFindsWholeItemsOnly) {
    EXPECT_TRUE(list_has("lockdown,capability,landlock,yama,apparmor,bpf", "bpf"));
    EXPECT_TRUE(list_has("bpf,capability", "bpf"));
    EXPECT_TRUE(list_has("bpf", "bpf"));
    EXPECT_FALSE(list_has("lockdown,capability,landlock,yama,apparmor", "bpf"));
    EXPECT_FALSE(list_has("lockdown,bpfx,xbpf", "bpf"));
    EXPECT_FALSE(list_has("", "bpf"));
}

}  // namespace
}  // namespace ks
