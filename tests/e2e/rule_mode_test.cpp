// Monitor mode per rule: in one policy, a path in monitor mode lets a guarded
// process delete under it (and records what would have been done) while an
// enforced path next to it is protected.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class RuleMode : public ::testing::Test {
  protected:
    void SetUp() override {
        KS_REQUIRE_ROOT();
        for (const char* d : {"watched", "guarded"}) {
            fs::create_directories(dir_ / d);
            for (int i = 0; i < 3; ++i)
                std::ofstream(dir_ / (std::string(d) + "/f" + std::to_string(i))) << "row " << i;
        }
    }

    static std::vector<json> file_records(const Daemon& d, const std::string& session) {
        std::vector<json> out;
        for (const auto& r : d.records())
            if (r.value("event", "") == "file" && r.value("session", "") == session)
                out.push_back(r);
        return out;
    }

    TempDir dir_;
};

TEST_F(RuleMode, MonitoredPathIsRecordedAndEnforcedPathIsProtected) {
    std::string policy = dir_ / "policy.yaml";
    std::ofstream(policy) << "version: 1\n"
                             "protect:\n"
                             "  session: none\n"
                             "  paths:\n"
                             "    - {path: "
                          << (dir_ / "watched")
                          << ", mode: monitor}\n"
                             "    - "
                          << (dir_ / "guarded") << "\n";
    Daemon d({.policy_file = policy});
    ASSERT_TRUE(d.ready()) << d.stderr_text();

    // Under the monitored path: the exec layer and the libc layer let it go.
    auto rm = d.cli({"run", "--session", "mon-rm", "--", "rm", dir_ / "watched/f0"});
    EXPECT_EQ(rm.status, 0) << rm.err;
    EXPECT_FALSE(fs::exists(dir_ / "watched/f0"));
    auto perl = d.cli({"run", "--session", "mon-perl", "--", "perl", "-e",
                       "unlink '" + (dir_ / "watched/f1") + "' or die"});
    EXPECT_EQ(perl.status, 0) << perl.err;
    EXPECT_FALSE(fs::exists(dir_ / "watched/f1"));

    // Under the enforced one, in the same policy: stopped, the file stays.
    auto blocked = d.cli({"run", "--session", "enf-perl", "--", "perl", "-e",
                          "unlink '" + (dir_ / "guarded/f1") + "' or die"});
    EXPECT_EQ(blocked.status, 128 + SIGKILL);
    EXPECT_TRUE(fs::exists(dir_ / "guarded/f1"));

    ASSERT_TRUE(wait_until([&] {
        return !file_records(d, "mon-rm").empty() && !file_records(d, "mon-perl").empty() &&
               !file_records(d, "enf-perl").empty();
    })) << d.stderr_text();
    json exec_rec = file_records(d, "mon-rm").at(0);
    EXPECT_EQ(exec_rec["layer"], "exec");
    EXPECT_EQ(exec_rec["verdict"], "would-block");
    EXPECT_EQ(exec_rec["prevented"], false);
    EXPECT_NE(exec_rec.value("rule", "").find("protect:" + (dir_ / "watched")), std::string::npos);
    json libc_rec = file_records(d, "mon-perl").at(0);
    EXPECT_EQ(libc_rec["layer"], "uprobe");
    EXPECT_EQ(libc_rec["op"], "unlink");
    EXPECT_EQ(libc_rec["verdict"], "would-block");
    EXPECT_EQ(libc_rec["prevented"], false);
    EXPECT_EQ(libc_rec["rule"], "protect:" + (dir_ / "watched"));
    json enf = file_records(d, "enf-perl").at(0);
    EXPECT_EQ(enf["verdict"], "block");
    EXPECT_EQ(enf["prevented"], true);
    EXPECT_EQ(enf["rule"], "protect:" + (dir_ / "guarded"));
}

TEST_F(RuleMode, ProtectModeMonitorCoversThePathsThatGiveNoMode) {
    std::string policy = dir_ / "policy.yaml";
    std::ofstream(policy) << "version: 1\nprotect:\n  mode: monitor\n  session: none\n  paths:\n"
                             "    - "
                          << (dir_ / "watched") << "\n    - {path: " << (dir_ / "guarded")
                          << ", mode: enforce}\n";
    Daemon d({.policy_file = policy});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    EXPECT_EQ(d.cli({"run", "--session", "a", "--", "truncate", "-s0", dir_ / "watched/f2"}).status,
              0);
    EXPECT_EQ(fs::file_size(dir_ / "watched/f2"), 0u);
    EXPECT_EQ(d.cli({"run", "--session", "b", "--", "truncate", "-s0", dir_ / "guarded/f2"}).status,
              kRefusedExitStatus);
    EXPECT_GT(fs::file_size(dir_ / "guarded/f2"), 0u);
}

}  // namespace
}  // namespace ks::test
