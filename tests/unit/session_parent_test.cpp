// --cgroup-parent: a path under the cgroup v2 mount, or ./NAME under the
// daemon's own cgroup (a systemd unit with Delegate=yes owns that subtree).
#include <gtest/gtest.h>

#include <fstream>

#include "common/sysfs.h"
#include "process_guard/sessions.h"

namespace ks {
namespace {

// This process's cgroup v2 path, as /proc/self/cgroup says it ("0::/...").
std::string own_cgroup() {
    std::ifstream in("/proc/self/cgroup");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("0::", 0) == 0) return line.substr(3);
    return {};
}

TEST(SessionParent, ANameIsUnderTheMountAndBadSpellingsAreRefused) {
    EXPECT_EQ(session_parent_cgroup("killswitch").value(), "killswitch");
    EXPECT_EQ(session_parent_cgroup("ci.slice/agents").value(), "ci.slice/agents");
    for (const char* bad : {"", "/killswitch", "../up", "a/../b", "./", "./a/b", "./.."}) {
        auto r = session_parent_cgroup(bad);
        EXPECT_FALSE(r.ok()) << bad;
    }
    EXPECT_EQ(session_parent_cgroup("/killswitch").error().message,
              "--cgroup-parent must be a path under the cgroup v2 mount such as 'killswitch', or "
              "'./NAME' under the daemon's own cgroup; not '/killswitch'");
}

TEST(SessionParent, DotSlashIsUnderTheProcesssOwnCgroup) {
    std::string own = own_cgroup();
    if (own.empty()) GTEST_SKIP() << "no cgroup v2 line in /proc/self/cgroup";
    auto r = session_parent_cgroup("./sessions");
    if (own == "/") {
        ASSERT_FALSE(r.ok());
        EXPECT_NE(r.error().message.find("runs in the root cgroup, which is not delegated"),
                  std::string::npos)
            << r.error().message;
        return;
    }
    ASSERT_TRUE(r.ok()) << r.error().str();
    EXPECT_EQ("/" + r.value(), own + "/sessions");
}

TEST(SessionParent, TheRecordedParentIsReadBackOrTheFallbackGiven) {
    char tmpl[] = "/tmp/ks-run-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    EXPECT_EQ(recorded_session_parent(dir, "killswitch"), "killswitch");
    std::ofstream(dir + "/" + kSessionsCgroupFile) << "system.slice/killswitch.service/sessions\n";
    EXPECT_EQ(recorded_session_parent(dir, "killswitch"), "system.slice/killswitch.service/sessions");
    std::remove((dir + "/" + kSessionsCgroupFile).c_str());
    ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace ks
