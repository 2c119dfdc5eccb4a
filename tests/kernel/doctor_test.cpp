// `killswitch doctor` run as a user would run it, checked against what was
// measured on the project's machines (docs/guarantees.md, KERNEL-NOTES): LSM
// and fentry programs cannot run here, everything else killswitch uses can.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "common/sysfs.h"
#include "harness.h"

namespace {

using ks::test::CommandResult;

constexpr auto kDoctorTimeout = std::chrono::seconds(30);

CommandResult run_doctor(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {ks::test::binary(), "doctor"};
    argv.insert(argv.end(), args.begin(), args.end());
    return ks::test::run_command(argv, kDoctorTimeout);
}

class DoctorTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    }

    // Run once for the tests that only read the report: each run loads a
    // dozen programs.
    static const nlohmann::json& report() {
        static const nlohmann::json j = [] {
            CommandResult r = run_doctor({"--json"});
            EXPECT_EQ(r.status, 0) << r.err;
            return nlohmann::json::parse(r.out, nullptr, false);
        }();
        return j;
    }
};

TEST_F(DoctorTest, JsonHasEveryFeatureAndRow) {
    const auto& j = report();
    ASSERT_FALSE(j.is_discarded()) << "doctor --json did not print JSON";
    EXPECT_FALSE(j.at("kernel").get<std::string>().empty());
    for (const char* name : {"btf",           "tracefs",     "bpffs",        "cgroup_v2",
                             "cgroup_freeze", "cgroup_kill", "tracepoint",   "raw_tracepoint",
                             "uprobe",        "sk_msg",      "cgroup_skb",   "sockops",
                             "lsm",           "fentry",      "ring_buffer",  "bpf_send_signal",
                             "bpf_loop",      "io_uring",    "connect_unix", "uprobe_multi",
                             "seccomp_notify"}) {
        EXPECT_TRUE(j.at("features").contains(name)) << name;
        EXPECT_TRUE(j.at("details").contains(name)) << name;
    }
    EXPECT_EQ(j.at("guarantees").size(), 26u);
    EXPECT_TRUE(j.at("deputies").is_array());
}

TEST_F(DoctorTest, FeaturesMatchThisMachine) {
    const auto& j = report();
    ASSERT_FALSE(j.is_discarded());
    const auto& f = j.at("features");
    const auto& d = j.at("details");
    // LSM and fentry programs fail to load with EPERM on these machines.
    EXPECT_FALSE(f.at("lsm").get<bool>()) << d.at("lsm");
    EXPECT_FALSE(f.at("fentry").get<bool>()) << d.at("fentry");
    for (const char* name : {"btf", "cgroup_v2", "tracepoint", "raw_tracepoint", "uprobe", "sk_msg",
                             "cgroup_skb", "cgroup_freeze", "cgroup_kill", "ring_buffer",
                             "bpf_send_signal", "connect_unix", "uprobe_multi", "seccomp_notify"})
        EXPECT_TRUE(f.at(name).get<bool>()) << name << ": " << d.at(name);
    EXPECT_NE(d.at("lsm").get<std::string>().find("active LSMs"), std::string::npos) << d.at("lsm");
    // Linux 6.18: guarded connections to watched unix sockets go to the relay.
    for (const auto& g : j.at("guarantees")) {
        if (g.at("operation") == "db-statement-unix-socket") {
            EXPECT_NE(g.at("mechanism").get<std::string>().find("relay"), std::string::npos) << g;
        }
    }
}

// The promise users rely on: a row only claims prevention when the mechanism
// acts before the operation. A kill from a syscall tracepoint lands after the
// call, except at exec where the new program has not started yet, and at the
// exit of a block device's open, which writes nothing itself: the process
// dies before the descriptor is used.
TEST_F(DoctorTest, OnlyExecIsPreventedFromATracepoint) {
    const auto& j = report();
    ASSERT_FALSE(j.is_discarded());
    bool saw_unlink_raw = false;
    for (const auto& g : j.at("guarantees")) {
        auto op = g.at("operation").get<std::string>();
        auto mech = g.at("mechanism").get<std::string>();
        if (g.at("preventive").get<bool>() && mech.find("tracepoint") != std::string::npos) {
            EXPECT_TRUE(
                op == "exec-destructive-command" ||
                (op == "block-device-write" && mech.find("sys_exit_open") != std::string::npos) ||
                // A buffered write stops at the kill before its first chunk.
                (op == "space-budget" && mech.find("sys_enter_write") != std::string::npos))
                << op << ": " << mech;
        }
        if (op == "unlink-raw-syscall") {
            saw_unlink_raw = true;
            EXPECT_FALSE(g.at("preventive").get<bool>()) << mech;
            EXPECT_TRUE(g.at("available").get<bool>()) << mech;
        }
    }
    EXPECT_TRUE(saw_unlink_raw);
}

TEST_F(DoctorTest, LeavesNoScratchCgroupBehind) {
    CommandResult r = run_doctor({"--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    // cgroup_freeze is only true when the scratch cgroup was really made.
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded());
    EXPECT_TRUE(j.at("features").at("cgroup_freeze").get<bool>());
    auto root = ks::cgroup2_mount();
    ASSERT_TRUE(root) << root.error().str();
    for (const auto& entry : std::filesystem::directory_iterator(*root)) {
        std::string name = entry.path().filename();
        EXPECT_NE(name.rfind("killswitch-doctor-", 0), 0u) << "left behind: " << entry.path();
    }
}

TEST_F(DoctorTest, TableNamesEveryRow) {
    CommandResult r = run_doctor({});
    EXPECT_EQ(r.status, 0) << r.err;
    for (const char* needle : {"raw_tracepoint", "unlink-raw-syscall", "guard-inheritance",
                               "stops the agent after the call", "prevents"})
        EXPECT_NE(r.out.find(needle), std::string::npos) << needle << "\n" << r.out;
}

}  // namespace
