// `killswitch policy reload`: a new policy replaces the one in force without a
// restart, or is refused with every problem and changes nothing.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class PolicyReload : public ::testing::Test {
  protected:
    void SetUp() override {
        KS_REQUIRE_ROOT();
        for (const char* d : {"a", "b"}) {
            fs::create_directories(dir_ / d);
            for (int i = 0; i < 4; ++i)
                std::ofstream(dir_ / (std::string(d) + "/f" + std::to_string(i))) << "row " << i;
        }
    }

    std::string write_policy(const std::string& name, const std::string& text) {
        std::string path = dir_ / name;
        std::ofstream(path) << text;
        return path;
    }

    std::string protect_policy(const std::string& sub) {
        return "version: 1\nprotect:\n  paths: [" + (dir_ / sub) + "]\n  session: none\n";
    }

    std::unique_ptr<Daemon> start(const std::string& policy_file) {
        auto d = std::make_unique<Daemon>(Daemon::Options{.policy_file = policy_file});
        EXPECT_TRUE(d->ready()) << d->stderr_text();
        return d;
    }

    static CommandResult guarded(const Daemon& d, const std::string& session,
                                 const std::vector<std::string>& argv) {
        std::vector<std::string> args = {"run", "--session", session, "--"};
        args.insert(args.end(), argv.begin(), argv.end());
        return d.cli(args);
    }

    static std::vector<json> reloads(const Daemon& d) {
        std::vector<json> out;
        for (const auto& r : d.records())
            if (r.value("event", "") == "policy_reload") out.push_back(r);
        return out;
    }

    static std::string slurp(const std::string& path) {
        std::ifstream in(path);
        return std::string((std::istreambuf_iterator<char>(in)), {});
    }

    TempDir dir_;
};

TEST_F(PolicyReload, NewFileReplacesProtectedPathsAndSelfProtectionFollowsIt) {
    std::string first = write_policy("first.yaml", protect_policy("a"));
    auto d = start(first);
    ASSERT_EQ(guarded(*d, "before", {"rm", dir_ / "a/f0"}).status, kRefusedExitStatus);
    ASSERT_TRUE(fs::exists(dir_ / "a/f0"));

    std::string second = write_policy("second.yaml", protect_policy("b"));
    auto r = d->cli({"policy", "reload", second});
    ASSERT_EQ(r.status, 0) << r.err << d->stderr_text();
    EXPECT_NE(r.out.find("policy reloaded: " + second), std::string::npos) << r.out;

    // b is protected now, a no longer is.
    auto rm_b = guarded(*d, "after-b", {"rm", dir_ / "b/f0"});
    EXPECT_EQ(rm_b.status, kRefusedExitStatus) << rm_b.err << [&] {
        std::string recs;
        for (const auto& rec : d->records())
            if (rec.value("session", "") == "after-b" && rec.value("event", "") == "file")
                recs += rec.dump() + "\n";
        return recs;
    }();
    EXPECT_TRUE(fs::exists(dir_ / "b/f0"));
    auto rm_a = guarded(*d, "after-a", {"rm", dir_ / "a/f1"});
    EXPECT_EQ(rm_a.status, 0) << rm_a.err;
    EXPECT_FALSE(fs::exists(dir_ / "a/f1"));

    // The self rule protects the new policy file, not the old one.
    auto w2 = guarded(*d, "edit-new", {"sh", "-c", "echo 'mode: monitor' >> " + second});
    EXPECT_EQ(w2.status, 128 + SIGKILL);
    EXPECT_EQ(slurp(second), protect_policy("b"));
    auto w1 = guarded(*d, "edit-old", {"sh", "-c", "echo '# note' >> " + first});
    EXPECT_EQ(w1.status, 0) << w1.err;

    auto status = d->cli({"status", "--json"});
    ASSERT_EQ(status.status, 0);
    auto s = json::parse(status.out);
    EXPECT_EQ(s["policy"], second);
    EXPECT_FALSE(s.value("policy_loaded", "").empty());
    auto human = d->cli({"status"});
    EXPECT_NE(human.out.find("policy:       " + second + " (loaded "), std::string::npos)
        << human.out;

    auto recs = reloads(*d);
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0]["result"], "accepted");
    EXPECT_EQ(recs[0]["old_source"], first);
    EXPECT_EQ(recs[0]["new_source"], second);
    EXPECT_EQ(recs[0]["uid"], 0);
    EXPECT_GT(recs[0]["pid"].get<int>(), 0);
}

TEST_F(PolicyReload, WithoutFileTheDaemonReadsItsFileAgain) {
    std::string file = write_policy("policy.yaml", protect_policy("a"));
    auto d = start(file);
    std::ofstream(file) << "version: 1\nprotect:\n  paths: [" << (dir_ / "a") << ", "
                        << (dir_ / "b") << "]\n  session: none\n";
    auto r = d->cli({"policy", "reload"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(guarded(*d, "rm-b", {"rm", dir_ / "b/f2"}).status, kRefusedExitStatus);
    EXPECT_TRUE(fs::exists(dir_ / "b/f2"));
    EXPECT_EQ(guarded(*d, "rm-a", {"rm", dir_ / "a/f2"}).status, kRefusedExitStatus);
    EXPECT_TRUE(fs::exists(dir_ / "a/f2"));
}

TEST_F(PolicyReload, PolicyWithErrorsIsRefusedWithEveryDiagnosticAndChangesNothing) {
    std::string file = write_policy("policy.yaml", protect_policy("a"));
    auto d = start(file);
    std::string bad = write_policy("bad.yaml",
                                   "version: 1\n"
                                   "mode: enforcing\n"
                                   "protect:\n"
                                   "  paths: [relative/path]\n");
    auto r = d->cli({"policy", "reload", bad});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find(bad + ":2:7: error: mode must be 'enforce' or 'monitor'"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find(bad + ":4:11: error: protect path 'relative/path' must be an absolute"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("the policy in force is unchanged: " + file), std::string::npos) << r.err;

    // The old policy still protects a, and still says so.
    EXPECT_EQ(guarded(*d, "still", {"rm", dir_ / "a/f3"}).status, kRefusedExitStatus);
    EXPECT_TRUE(fs::exists(dir_ / "a/f3"));
    auto s = json::parse(d->cli({"status", "--json"}).out);
    EXPECT_EQ(s["policy"], file);
    EXPECT_EQ(s["mode"], "enforce");

    auto recs = reloads(*d);
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0]["result"], "refused");
    EXPECT_EQ(recs[0]["new_source"], bad);
    EXPECT_EQ(recs[0]["diagnostics"].size(), 2u);
}

TEST_F(PolicyReload, SettingReadOnlyAtStartIsRefusedNamingTheKey) {
    std::string file = write_policy("policy.yaml", protect_policy("a"));
    auto d = start(file);
    std::string next =
        write_policy("next.yaml", protect_policy("b") + "agents:\n  hold_at_exec: false\n");
    auto r = d->cli({"policy", "reload", next});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find(next + ": error: agents.hold_at_exec changes from true to false"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("restart the daemon"), std::string::npos) << r.err;
    // Nothing of next.yaml was applied: b is not protected.
    auto rm_b = guarded(*d, "rm-b", {"rm", dir_ / "b/f1"});
    EXPECT_EQ(rm_b.status, 0) << rm_b.err;
    EXPECT_EQ(reloads(*d).at(0)["result"], "refused");
}

// protect.min_free off at start loads no program on the write system calls:
// a reload that turns the budget on would count nothing, so it is refused;
// a reload that leaves it off, or turns it off, goes through.
TEST_F(PolicyReload, TurningTheSpaceBudgetOnTakesARestartWhenItStartedOff) {
    std::string file = write_policy("policy.yaml", protect_policy("a") + "  min_free: off\n");
    auto d = start(file);
    std::string on = write_policy("on.yaml", protect_policy("a") + "  min_free: 10%\n");
    auto r = d->cli({"policy", "reload", on});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("protect.min_free: the daemon started with it off"), std::string::npos)
        << r.err;
    EXPECT_EQ(reloads(*d).at(0)["result"], "refused");
    auto status = json::parse(d->cli({"status", "--json"}).out, nullptr, false);
    ASSERT_FALSE(status.is_discarded());
    EXPECT_EQ(status["space_budget"]["min_free"], "off");
    EXPECT_FALSE(status["space_budget"]["counted"].get<bool>());
    std::string still_off = write_policy("off.yaml", protect_policy("b") + "  min_free: off\n");
    EXPECT_EQ(d->cli({"policy", "reload", still_off}).status, 0);
}

TEST_F(PolicyReload, GuardedCallerCannotReload) {
    std::string file = write_policy("policy.yaml", protect_policy("a"));
    auto d = start(file);
    std::string open = write_policy("open.yaml", "version: 1\nmode: monitor\n");
    auto r = guarded(*d, "sneaky",
                     {binary(), "--runtime-dir", d->runtime_dir(), "policy", "reload", open});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("guarded"), std::string::npos) << r.err;
    EXPECT_EQ(json::parse(d->cli({"status", "--json"}).out)["mode"], "enforce");
    auto recs = reloads(*d);
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0]["result"], "refused");
    EXPECT_NE(recs[0].value("error", "").find("guarded"), std::string::npos);
}

}  // namespace
}  // namespace ks::test
