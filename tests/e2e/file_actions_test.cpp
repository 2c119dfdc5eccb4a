// The actions other than the default: hold (approve, deny, timeout),
// monitor mode, and paths the kernel cannot resolve in full.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class FileActions : public ::testing::Test {
  protected:
    void SetUp() override {
        KS_REQUIRE_ROOT();
        data_ = dir_ / "data";
        fs::create_directories(data_);
        for (int i = 0; i < 10; ++i) std::ofstream(data_ + "/f" + std::to_string(i)) << "row " << i;
    }

    std::unique_ptr<Daemon> start(const std::string& policy_text,
                                  std::vector<std::string> extra = {}) {
        std::string policy = dir_ / "policy.yaml";
        std::ofstream(policy) << policy_text;
        auto d =
            std::make_unique<Daemon>(Daemon::Options{.policy_file = policy, .extra_args = extra});
        EXPECT_TRUE(d->ready()) << d->stderr_text();
        return d;
    }

    std::future<CommandResult> run_async(const Daemon& d, const std::string& session,
                                         const std::vector<std::string>& argv) {
        std::vector<std::string> cmd = {
            binary(), "--runtime-dir", d.runtime_dir(), "run", "--session", session, "--"};
        cmd.insert(cmd.end(), argv.begin(), argv.end());
        return std::async(std::launch::async,
                          [cmd] { return run_command(cmd, std::chrono::seconds(60)); });
    }

    static json first(const Daemon& d, const std::string& event, const std::string& session,
                      std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
        return session_record(d, event, session, timeout);
    }

    static char proc_state(int pid) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
        std::string all((std::istreambuf_iterator<char>(in)), {});
        auto close = all.rfind(')');
        return close == std::string::npos || close + 2 >= all.size() ? '?' : all[close + 2];
    }

    std::string hold_policy(int timeout_s) {
        return "version: 1\nprotect:\n  paths:\n    - {path: " + data_ +
               ", action: hold}\n  session: none\n  hold_timeout: " + std::to_string(timeout_s) +
               "\n";
    }

    TempDir dir_;
    std::string data_;
};

TEST_F(FileActions, HoldDeniedKillsTheAgentAndKeepsTheData) {
    auto d = start(hold_policy(60));
    auto fut = run_async(*d, "held",
                         {"perl", "-e", "unlink '" + data_ + "/f1' or die; print qq(done\\n)"});
    json rec = first(*d, "file", "held");
    ASSERT_FALSE(rec.is_null()) << d->stderr_text();
    EXPECT_EQ(rec["verdict"], "hold");
    EXPECT_EQ(rec["layer"], "uprobe");
    int pid = rec["pid"];
    EXPECT_TRUE(wait_until([&] { return proc_state(pid) == 'T'; })) << "the task must be stopped";

    auto holds = d->cli({"holds", "--json"});
    ASSERT_EQ(holds.status, 0) << holds.err;
    auto list = json::parse(holds.out);
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0]["pid"], pid);
    EXPECT_EQ(list[0]["op"], "unlink");
    uint64_t id = list[0]["id"];

    auto deny = d->cli({"deny", std::to_string(id)});
    EXPECT_EQ(deny.status, 0) << deny.err;
    auto r = fut.get();
    EXPECT_EQ(r.status, 128 + SIGKILL);
    EXPECT_TRUE(fs::exists(data_ + "/f1"));
    EXPECT_EQ(first(*d, "hold_denied", "held")["hold_id"], id);
    EXPECT_EQ(d->cli({"deny", std::to_string(id)}).status, 1) << "a hold is decided once";
}

TEST_F(FileActions, HoldApprovedRunsTheOperation) {
    auto d = start(hold_policy(60));
    auto fut = run_async(*d, "approved",
                         {"perl", "-e", "unlink '" + data_ + "/f2' or die; print qq(done\\n)"});
    json rec = first(*d, "file", "approved");
    ASSERT_FALSE(rec.is_null()) << d->stderr_text();
    uint64_t id = rec["hold_id"];
    auto ok = d->cli({"approve", std::to_string(id)});
    EXPECT_EQ(ok.status, 0) << ok.err;
    auto r = fut.get();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "done\n");
    EXPECT_FALSE(fs::exists(data_ + "/f2")) << "the approved unlink ran";
    EXPECT_TRUE(fs::exists(data_ + "/f3"));
    EXPECT_FALSE(first(*d, "hold_approved", "approved").is_null());
}

TEST_F(FileActions, ApprovedExecCoversWhatTheProgramDoes) {
    auto d = start(hold_policy(60));
    auto fut = run_async(*d, "approved-rm", {"rm", data_ + "/f4", data_ + "/f5"});
    json rec = first(*d, "file", "approved-rm");
    ASSERT_FALSE(rec.is_null()) << d->stderr_text();
    EXPECT_EQ(rec["layer"], "exec");
    ASSERT_EQ(d->cli({"approve", std::to_string(rec["hold_id"].get<uint64_t>())}).status, 0);
    auto r = fut.get();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_FALSE(fs::exists(data_ + "/f4"));
    EXPECT_FALSE(fs::exists(data_ + "/f5"));
}

TEST_F(FileActions, HoldNobodyDecidesIsDeniedAtItsTimeout) {
    auto d = start(hold_policy(2));
    auto start_t = std::chrono::steady_clock::now();
    auto fut = run_async(*d, "timeout", {"perl", "-e", "unlink '" + data_ + "/f6' or die"});
    auto r = fut.get();
    auto waited = std::chrono::steady_clock::now() - start_t;
    EXPECT_EQ(r.status, 128 + SIGKILL);
    EXPECT_GE(waited, std::chrono::seconds(2));
    EXPECT_LT(waited, std::chrono::seconds(8));
    EXPECT_TRUE(fs::exists(data_ + "/f6"));
    json denied = first(*d, "hold_denied", "timeout");
    ASSERT_FALSE(denied.is_null());
    EXPECT_NE(denied.value("reason", "").find("nobody decided"), std::string::npos);
}

TEST_F(FileActions, GuardedProcessCannotApproveItsOwnHold) {
    auto d = start(hold_policy(60));
    auto fut = run_async(*d, "self", {"perl", "-e", "unlink '" + data_ + "/f7' or die"});
    json rec = first(*d, "file", "self");
    ASSERT_FALSE(rec.is_null());
    std::string id = std::to_string(rec["hold_id"].get<uint64_t>());
    // Another process of a guarded session, as root, tries to approve it.
    auto r = d->cli({"run", "--session", "accomplice", "--", binary(), "--runtime-dir",
                     d->runtime_dir(), "approve", id});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("guarded"), std::string::npos) << r.err;
    ASSERT_EQ(d->cli({"deny", id}).status, 0);
    fut.get();
    EXPECT_TRUE(fs::exists(data_ + "/f7"));
}

TEST_F(FileActions, MonitorModeEnforcesNothingAndSaysWhatItWouldHaveDone) {
    auto d = start("version: 1\nmode: monitor\n", {"--protect", data_});
    auto r = d->cli({"run", "--session", "mon", "--", "truncate", "-s0", data_ + "/f8"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(fs::file_size(data_ + "/f8"), 0u) << "monitor mode must not interfere";
    json rec = first(*d, "file", "mon");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec["verdict"], "would-block");
    EXPECT_EQ(rec["prevented"], false);
    EXPECT_EQ(rec["layer"], "exec");
    EXPECT_FALSE(rec.contains("session_action"));
}

TEST_F(FileActions, PathTooLongToResolveIsRefusedAndSaysWhy) {
    auto d = start("version: 1\nprotect:\n  session: none\n", {"--protect", data_});
    // A real file outside the protected tree, behind a path longer than the
    // kernel side reads.
    std::string deep = dir_ / "deep";
    for (int i = 0; i < 12; ++i) deep += "/" + std::string(50, 'd');
    fs::create_directories(deep);
    std::string victim = deep + "/file";
    std::ofstream(victim) << "x";
    auto r = d->cli({"run", "--session", "long", "--", "/usr/bin/python3", "-c",
                     "import os; os.unlink('" + victim + "')"});
    EXPECT_EQ(r.status, 128 + SIGKILL);
    EXPECT_TRUE(fs::exists(victim));
    json rec = first(*d, "file", "long");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec["rule"], "unresolved-path");
    EXPECT_EQ(rec["match"], "unresolved-path");
    EXPECT_EQ(rec["verdict"], "block");
}

std::string action_policy(const std::string& data, const std::string& action) {
    return "version: 1\nprotect:\n  paths: [" + data + "]\n  action: " + action +
           "\n  session: none\n";
}

TEST_F(FileActions, AuditActionRecordsAndLetsItHappen) {
    auto d = start(action_policy(data_, "audit"));
    auto r =
        d->cli({"run", "--session", "aud", "--", "perl", "-e", "unlink '" + data_ + "/f1' or die"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_FALSE(fs::exists(data_ + "/f1"));
    json rec = first(*d, "file", "aud");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec["verdict"], "audit");
    EXPECT_EQ(rec["prevented"], false);
}

TEST_F(FileActions, FreezeActionStopsTheTaskAndFreezesTheSession) {
    auto d = start(action_policy(data_, "freeze"));
    auto fut = run_async(*d, "frz", {"perl", "-e", "unlink '" + data_ + "/f2' or die"});
    json rec = first(*d, "file", "frz");
    ASSERT_FALSE(rec.is_null()) << d->stderr_text();
    EXPECT_EQ(rec["verdict"], "freeze");
    std::string cg = "/sys/fs/cgroup/unified/" + d->cgroup_parent() + "/frz";
    if (!fs::exists(cg)) cg = "/sys/fs/cgroup/" + d->cgroup_parent() + "/frz";
    EXPECT_TRUE(wait_until([&] {
        std::ifstream ev(cg + "/cgroup.events");
        std::string all((std::istreambuf_iterator<char>(ev)), {});
        return all.find("frozen 1") != std::string::npos;
    }));
    EXPECT_TRUE(fs::exists(data_ + "/f2"));
    std::ofstream(cg + "/cgroup.kill") << "1";
    EXPECT_EQ(fut.get().status, 128 + SIGKILL);
    EXPECT_TRUE(fs::exists(data_ + "/f2"));
}

TEST_F(FileActions, KillSessionActionEndsEveryProcessOfTheSession) {
    auto d = start(action_policy(data_, "kill-session"));
    std::string marker = dir_ / "survivor";
    // A background process of the same session must die too.
    auto r =
        d->cli({"run", "--session", "ks", "--", "bash", "-c",
                "(sleep 5; touch " + marker + ") & perl -e \"unlink '" + data_ + "/f3'\"; wait"});
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.err;
    EXPECT_TRUE(fs::exists(data_ + "/f3"));
    std::this_thread::sleep_for(std::chrono::seconds(6));
    EXPECT_FALSE(fs::exists(marker)) << "the session's background process survived";
    EXPECT_EQ(first(*d, "file", "ks")["verdict"], "kill-session");
}

TEST_F(FileActions, BindMountOfTheDataIsTheSameData) {
    std::string bind = dir_ / "bind";
    fs::create_directories(bind);
    ASSERT_EQ(run_command({"mount", "--bind", data_, bind}).status, 0);
    {
        auto d = start("version: 1\nprotect:\n  session: none\n", {"--protect", data_});
        auto r = d->cli(
            {"run", "--session", "bind", "--", "perl", "-e", "unlink '" + bind + "/f4' or die"});
        EXPECT_EQ(r.status, 128 + SIGKILL) << r.err;
        auto r2 =
            d->cli({"run", "--session", "bind-cd", "--", "sh", "-c", "cd " + bind + " && rm f5"});
        EXPECT_EQ(r2.status, kRefusedExitStatus) << r2.err;
        EXPECT_EQ(first(*d, "file", "bind")["layer"], "uprobe");
        EXPECT_EQ(first(*d, "file", "bind-cd")["layer"], "exec");
    }
    run_command({"umount", bind});
    EXPECT_TRUE(fs::exists(data_ + "/f4"));
    EXPECT_TRUE(fs::exists(data_ + "/f5"));
}

TEST_F(FileActions, MountOverAProtectedDirectoryStopsTheAgent) {
    fs::create_directories(data_ + "/sub");
    std::ofstream(data_ + "/sub/kept") << "x";
    auto d = start("version: 1\nprotect:\n  session: none\n", {"--protect", data_});
    auto r =
        d->cli({"run", "--session", "mnt", "--", "mount", "-t", "tmpfs", "none", data_ + "/sub"});
    // The mount command calls libc's mount(): stopped there, before the call,
    // so the data is never hidden.
    bool hidden = !fs::exists(data_ + "/sub/kept");
    if (hidden) run_command({"umount", data_ + "/sub"});
    EXPECT_FALSE(hidden) << "the tmpfs was mounted over the data";
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.out << r.err;
    json rec = first(*d, "file", "mnt");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec["op"], "mount");
    EXPECT_EQ(rec["layer"], "uprobe");
    EXPECT_EQ(rec["prevented"], true);
    EXPECT_TRUE(fs::exists(data_ + "/sub/kept"));
}

TEST_F(FileActions, TheAuditLogProtectsItself) {
    auto d = start("version: 1\nprotect:\n  session: none\n");
    auto r = d->cli({"run", "--session", "wipe-log", "--", "bash", "-c", ": > " + d->audit_log()});
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.err;
    json rec = first(*d, "file", "wipe-log");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec["rule"], "self:" + d->audit_log());
    auto recs = d->records();
    ASSERT_FALSE(recs.empty());
    EXPECT_EQ(recs.front()["event"], "daemon_start") << "the log was truncated";
}

TEST_F(FileActions, WithoutTheLibcLayerTheFirstCallCompletesAndTheAgentStops) {
    auto d = start("version: 1\nprotect:\n  libc_uprobes: false\n  session: none\n",
                   {"--protect", data_});
    auto status = json::parse(d->cli({"status", "--json"}).out);
    EXPECT_TRUE(status["layers"]["uprobes"].empty());
    auto r = d->cli({"run", "--session", "nolibc", "--", "perl", "-e",
                     "for (0..9) { unlink '" + data_ + "/f' . $_ } print qq(done\\n)"});
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.out << r.err;
    int left = 0;
    for (int i = 0; i < 10; ++i) left += fs::exists(data_ + "/f" + std::to_string(i));
    EXPECT_EQ(left, 9) << "exactly the one call in flight completes";
    json rec = first(*d, "file", "nolibc");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec["layer"], "tracepoint");
    EXPECT_EQ(rec["prevented"], false);
    EXPECT_EQ(rec["verdict"], "block");
}

}  // namespace
}  // namespace ks::test
