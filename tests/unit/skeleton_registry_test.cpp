// Every BPF object the daemon loads is registered once, so that the pinned
// state's build id covers all of them (a daemon of another build never
// adopts maps laid out for this one).
#include <gtest/gtest.h>

#include "common/skeleton.h"
#include "daemon/daemon.h"

namespace ks {
namespace {

TEST(SkeletonRegistry, EveryLoadedObjectIsInTheBuildId) {
    // What the daemon links is what it can load: take it in, as the
    // killswitch binary does.
    int (*volatile daemon)(const DaemonOptions&) = &run_daemon;
    ASSERT_NE(daemon, nullptr);
    std::vector<std::string> names;
    for (const auto& [name, bytes] : skeleton_registry()) {
        names.push_back(name);
        EXPECT_GT(bytes().size(), 1000u) << name << ": an ELF object";
        EXPECT_EQ(bytes().substr(0, 4), std::string_view("\x7f"
                                                         "ELF",
                                                         4))
            << name;
    }
    EXPECT_EQ(names, (std::vector<std::string>{"db_guard", "db_listen", "db_wire", "file_guard",
                                               "hook_guard_fentry", "hook_guard_lsm",
                                               "process_guard", "self_guard"}));
    EXPECT_EQ(all_skeleton_bytes().size(), names.size());
}

}  // namespace
}  // namespace ks
