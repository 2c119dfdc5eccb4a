// `killswitch allow`: a maintenance window lets one session's destructive
// operations through, with a reason, until the kernel closes it; it never
// covers killswitch's own protection, and a guarded process cannot open one.
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

class AllowWindow : public ::testing::Test {
  protected:
    void SetUp() override {
        KS_REQUIRE_ROOT();
        data_ = dir_ / "data";
        fs::create_directories(data_);
        for (int i = 0; i < 4; ++i) std::ofstream(data_ + "/f" + std::to_string(i)) << "row " << i;
        policy_ = dir_ / "policy.yaml";
        // The agent goes on after a self-protection refusal too: the steps
        // after one are what these tests look at.
        std::ofstream(policy_) << "version: 1\nprotect:\n  session: none\n  paths: [" << data_
                               << "]\nsessions:\n  self_protection: none\n";
        d_ = std::make_unique<Daemon>(Daemon::Options{.policy_file = policy_});
        ASSERT_TRUE(d_->ready()) << d_->stderr_text();
    }

    // A guarded shell in session `name` that waits for `go` files and then
    // runs each step, printing "LABEL:STATUS" for each.
    std::future<CommandResult> session(const std::string& name, const std::string& script) {
        std::vector<std::string> cmd = {
            binary(), "--runtime-dir", d_->runtime_dir(), "run", "--session", name, "--", "sh",
            "-c",     script};
        auto fut = std::async(std::launch::async,
                              [cmd] { return run_command(cmd, std::chrono::seconds(60)); });
        EXPECT_TRUE(wait_until([&] {
            auto s = json::parse(d_->cli({"status", "--json"}).out, nullptr, false);
            if (s.is_discarded()) return false;
            for (const auto& x : s["sessions"])
                if (x.value("name", "") == name) return true;
            return false;
        })) << "session "
            << name << " never appeared";
        return fut;
    }

    std::string wait_for(const std::string& go) {
        return "while [ ! -e " + go + " ]; do sleep 0.05; done; ";
    }

    void release(const std::string& go) { std::ofstream(go) << "go"; }

    std::vector<json> records(const std::string& event, const std::string& session) const {
        std::vector<json> out;
        for (const auto& r : d_->records())
            if (r.value("event", "") == event && r.value("session", "") == session)
                out.push_back(r);
        return out;
    }

    CommandResult allow(const std::string& name, const std::string& dur,
                        const std::string& reason) const {
        return d_->cli({"allow", "--session", name, "--for", dur, "--reason", reason});
    }

    TempDir dir_;
    std::string data_, policy_;
    std::unique_ptr<Daemon> d_;
};

TEST_F(AllowWindow, GuardedRmOfAProtectedFileRunsInAWindowAndTheRecordSaysWhy) {
    std::string go = dir_ / "go";
    auto fut =
        session("maint", wait_for(go) + "rm " + data_ + "/f0; echo rm:$?; perl -e 'unlink \"" +
                             data_ + "/f1\" or die'; echo perl:$?");
    auto a = allow("maint", "60s", "reindex after the migration");
    ASSERT_EQ(a.status, 0) << a.err;
    EXPECT_NE(a.out.find("allow window open for session maint until "), std::string::npos) << a.out;
    auto list = d_->cli({"allow", "--list", "--json"});
    ASSERT_EQ(list.status, 0) << list.err;
    auto windows = json::parse(list.out);
    ASSERT_EQ(windows.size(), 1u);
    EXPECT_EQ(windows[0]["session"], "maint");
    EXPECT_EQ(windows[0]["reason"], "reindex after the migration");

    release(go);
    auto r = fut.get();
    EXPECT_NE(r.out.find("rm:0"), std::string::npos) << r.out << r.err;
    EXPECT_NE(r.out.find("perl:0"), std::string::npos) << r.out << r.err;
    EXPECT_FALSE(fs::exists(data_ + "/f0"));
    EXPECT_FALSE(fs::exists(data_ + "/f1"));
    EXPECT_TRUE(fs::exists(data_ + "/f2"));

    std::vector<json> allowed;
    ASSERT_TRUE(wait_until([&] {
        allowed.clear();
        for (const auto& rec : records("file", "maint"))
            if (rec.value("verdict", "") == "allowed") allowed.push_back(rec);
        return allowed.size() >= 3;  // rm at exec, rm's unlink, perl's unlink
    })) << d_->stderr_text();
    for (const auto& rec : allowed) {
        EXPECT_EQ(rec["prevented"], false);
        EXPECT_NE(rec.value("rule", "").find("protect:" + data_), std::string::npos) << rec.dump();
        ASSERT_TRUE(rec["window"].is_object()) << rec.dump();
        EXPECT_EQ(rec["window"]["reason"], "reindex after the migration");
        EXPECT_EQ(rec["window"]["opened_by"]["uid"], 0);
        EXPECT_FALSE(rec["window"].value("until", "").empty());
    }
    auto starts = records("allow_start", "maint");
    ASSERT_EQ(starts.size(), 1u);
    EXPECT_EQ(starts[0]["reason"], "reindex after the migration");
    EXPECT_EQ(starts[0]["seconds"], 60);
}

TEST_F(AllowWindow, AfterTheWindowExpiresTheSameOperationIsBlocked) {
    std::string go1 = dir_ / "go1", go2 = dir_ / "go2";
    auto fut = session("short", wait_for(go1) + "rm " + data_ + "/f0; echo first:$?; " +
                                    wait_for(go2) + "rm " + data_ + "/f1; echo second:$?");
    ASSERT_EQ(allow("short", "2s", "quick fix").status, 0);
    release(go1);
    ASSERT_TRUE(wait_until([&] { return !fs::exists(data_ + "/f0"); }))
        << "the window let the first rm through";
    // The kernel compares the expiry itself; wait past it, then try again.
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    release(go2);
    auto r = fut.get();
    EXPECT_NE(r.out.find("first:0"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("second:126"), std::string::npos) << r.out << r.err;
    EXPECT_TRUE(fs::exists(data_ + "/f1")) << "after the window the file is protected again";

    json blocked;
    ASSERT_TRUE(wait_until([&] {
        for (const auto& rec : records("file", "short"))
            if (rec.value("path", "") == data_ + "/f1") blocked = rec;
        return !blocked.is_null();
    }));
    EXPECT_EQ(blocked["verdict"], "block");
    EXPECT_EQ(blocked["prevented"], true);
    EXPECT_FALSE(blocked.contains("window"));
    json end;
    ASSERT_TRUE(wait_until([&] {
        auto ends = records("allow_end", "short");
        if (!ends.empty()) end = ends[0];
        return !end.is_null();
    }));
    EXPECT_EQ(end["ended"], "expired");
    EXPECT_EQ(end["reason"], "quick fix");
}

TEST_F(AllowWindow, EndedEarlyTheWindowNoLongerApplies) {
    std::string go = dir_ / "go";
    auto fut = session("early", wait_for(go) + "rm " + data_ + "/f2; echo rm:$?");
    ASSERT_EQ(allow("early", "30m", "backup restore").status, 0);
    auto end = d_->cli({"allow", "--end", "--session", "early"});
    ASSERT_EQ(end.status, 0) << end.err;
    release(go);
    auto r = fut.get();
    EXPECT_NE(r.out.find("rm:126"), std::string::npos) << r.out;
    EXPECT_TRUE(fs::exists(data_ + "/f2"));
    auto ends = records("allow_end", "early");
    ASSERT_EQ(ends.size(), 1u);
    EXPECT_EQ(ends[0]["ended"], "ended early");
    EXPECT_EQ(ends[0]["ended_by"]["uid"], 0);
    EXPECT_EQ(d_->cli({"allow", "--end", "--session", "early"}).status, 1);
}

TEST_F(AllowWindow, GuardedCallerCannotOpenAWindowAndBadRequestsAreRefused) {
    std::string go = dir_ / "go";
    auto fut = session("agent", wait_for(go) + binary() + " --runtime-dir " + d_->runtime_dir() +
                                    " allow --session agent --for 1h --reason 'I need it'; "
                                    "echo allow:$?; rm " +
                                    data_ + "/f3; echo rm:$?");
    auto unknown = allow("nosuch", "60s", "x");
    EXPECT_EQ(unknown.status, 1);
    EXPECT_EQ(unknown.err, "killswitch allow: no session named 'nosuch' (see killswitch status)\n");
    auto no_reason = allow("agent", "60s", "  ");
    EXPECT_EQ(no_reason.status, 2);
    EXPECT_EQ(no_reason.err, "killswitch allow: --reason TEXT is required and must not be empty\n");
    auto missing = d_->cli({"allow", "--session", "agent", "--for", "60s"});
    EXPECT_EQ(missing.status, 2);
    for (const char* bad : {"90", "1.5h", "25h", "0s", "-5m", "10d"}) {
        auto r = allow("agent", bad, "x");
        EXPECT_EQ(r.status, 2) << bad;
        EXPECT_NE(r.err.find("--for must be"), std::string::npos) << r.err;
    }
    release(go);
    auto r = fut.get();
    EXPECT_NE(r.out.find("allow:1"), std::string::npos) << r.out << r.err;
    EXPECT_NE(r.err.find("guarded"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("rm:126"), std::string::npos) << r.out;
    EXPECT_TRUE(fs::exists(data_ + "/f3"));
    EXPECT_TRUE(records("allow_start", "agent").empty());
    EXPECT_EQ(json::parse(d_->cli({"allow", "--list", "--json"}).out).size(), 0u);
}

TEST_F(AllowWindow, SelfRulesStillBlockInsideAWindow) {
    std::string go = dir_ / "go";
    std::string before = [&] {
        std::ifstream in(policy_);
        return std::string((std::istreambuf_iterator<char>(in)), {});
    }();
    // The root of the cgroup v2 hierarchy (hybrid hosts mount it at .../unified).
    std::string root = fs::exists("/sys/fs/cgroup/unified/cgroup.procs") ? "/sys/fs/cgroup/unified"
                                                                         : "/sys/fs/cgroup";
    ASSERT_TRUE(fs::exists(root + "/cgroup.procs"));
    auto fut = session("inside", wait_for(go) + "sh -c 'echo \"mode: monitor\" >> " + policy_ +
                                     "'; echo policy:$?; sh -c 'echo $$ > " + root +
                                     "/cgroup.procs'; echo leave:$?; rm " + data_ +
                                     "/f0; echo rm:$?; cat /proc/self/cgroup");
    ASSERT_EQ(allow("inside", "60s", "maintenance").status, 0);
    release(go);
    auto r = fut.get();
    EXPECT_NE(r.out.find("policy:137"), std::string::npos) << r.out << r.err;
    EXPECT_NE(r.out.find("leave:137"), std::string::npos) << r.out << r.err;
    EXPECT_NE(r.out.find("rm:0"), std::string::npos) << "the window itself works: " << r.out;
    EXPECT_NE(r.out.find("0::/" + d_->cgroup_parent() + "/inside"), std::string::npos)
        << "still in its session: " << r.out;
    std::ifstream in(policy_);
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), before);

    std::vector<json> self_blocks;
    ASSERT_TRUE(wait_until([&] {
        self_blocks.clear();
        for (const auto& rec : records("file", "inside"))
            if (rec.value("rule", "").rfind("self:", 0) == 0 && rec.value("verdict", "") == "block")
                self_blocks.push_back(rec);
        return self_blocks.size() >= 2;
    })) << d_->stderr_text();
    for (const auto& rec : self_blocks) EXPECT_FALSE(rec.contains("window")) << rec.dump();
}

}  // namespace
}  // namespace ks::test
