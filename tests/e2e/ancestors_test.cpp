// A directory above protected data is part of it: moving it away, or
// mounting over it, takes the data along (the database's path leads nowhere,
// or to something else). Each case is first shown to work unguarded on a
// tree that is not protected; guarded, the protected tree stays where it was.
//
// On this kernel (no LSM, no fentry) the libc layer stops the caller before
// the call; the vm tier's LSM and fentry guests refuse the call itself
// (tests/vm/guest_attack_suite.sh).
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class AncestorsE2E : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0) return;
        dir_ = new TempDir();
        fs::create_directories(*dir_ / "srv/pg/db");
        std::ofstream(*dir_ / "srv/pg/db/PG_VERSION") << "15\n";
        fs::create_directories(*dir_ / "srv/other");
        std::string policy = *dir_ / "policy.yaml";
        std::ofstream(policy) << "version: 1\nprotect:\n  paths: [" << (*dir_ / "srv/pg/db")
                              << "]\n";
        daemon_ = new Daemon(Daemon::Options{.policy_file = policy});
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete dir_;
        daemon_ = nullptr;
        dir_ = nullptr;
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        ASSERT_TRUE(daemon_->ready()) << daemon_->stderr_text();
        ASSERT_TRUE(data_in_place());
    }
    static bool data_in_place() { return fs::exists(*dir_ / "srv/pg/db/PG_VERSION"); }
    static json file_record(const std::string& session,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return session_record(*daemon_, "file", session, timeout);
    }
    static CommandResult guarded(const std::string& session, const std::string& script) {
        return daemon_->cli({"run", "--session", session, "--", "sh", "-c", script});
    }
    static std::string python_rename(const std::string& from, const std::string& to) {
        return "python3 -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' " + from + " " +
               to;
    }

    static TempDir* dir_;
    static Daemon* daemon_;
};
TempDir* AncestorsE2E::dir_ = nullptr;
Daemon* AncestorsE2E::daemon_ = nullptr;

TEST_F(AncestorsE2E, MovingADirectoryAboveTheDataAwayIsRefused) {
    // Unguarded, an os.rename of a parent takes the tree along.
    fs::create_directories(*dir_ / "shown/pg/db");
    ASSERT_EQ(run_command({"sh", "-c", python_rename(*dir_ / "shown", *dir_ / "shown.old")}).status,
              0);
    ASSERT_TRUE(fs::exists(*dir_ / "shown.old/pg/db"));

    // os.rename is not a watched tool: the call itself is judged.
    for (const auto& [session, from] :
         {std::pair<std::string, std::string>{"parent", *dir_ / "srv/pg"},
          {"grandparent", *dir_ / "srv"}}) {
        auto r = guarded(session, python_rename(from, from + ".old"));
        EXPECT_NE(r.status, 0) << session << ": the rename succeeded";
        EXPECT_TRUE(data_in_place()) << session << ": the data moved";
        EXPECT_FALSE(fs::exists(from + ".old")) << session;
        json rec = file_record(session);
        ASSERT_FALSE(rec.is_null()) << session << ": no record";
        EXPECT_EQ(rec["rule"], "protect:" + (*dir_ / "srv/pg/db")) << session;
        EXPECT_EQ(rec["op"], "rename-from") << session;
        EXPECT_EQ(rec["match"], "ancestor-of-protected") << session;
    }
    // Relative to the working directory, and through "..": the same.
    auto r = guarded("relative",
                     "cd " + (*dir_ / "srv/other") + " && " + python_rename("../pg", "../pg.old"));
    EXPECT_NE(r.status, 0);
    EXPECT_TRUE(data_in_place());
    EXPECT_FALSE(file_record("relative").is_null());
}

TEST_F(AncestorsE2E, ASiblingMovesFreely) {
    auto r = guarded("sibling", python_rename(*dir_ / "srv/other", *dir_ / "srv/other2") + " && " +
                                    python_rename(*dir_ / "srv/other2", *dir_ / "srv/other"));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(fs::exists(*dir_ / "srv/other"));
    EXPECT_TRUE(file_record("sibling", std::chrono::seconds(2)).is_null())
        << "moving a sibling was recorded";
}

TEST_F(AncestorsE2E, AMountOverADirectoryAboveTheDataIsRefusedButNotInAPrivateNamespace) {
    // Unguarded, a mount over a parent hides the data.
    fs::create_directories(*dir_ / "hide/pg/db");
    ASSERT_EQ(run_command({"mount", "-t", "tmpfs", "none", *dir_ / "hide"}).status, 0);
    bool hidden = !fs::exists(*dir_ / "hide/pg");
    ::umount2((*dir_ / "hide").c_str(), MNT_DETACH);
    ASSERT_TRUE(hidden) << "an unguarded mount did not hide the tree";

    auto r = guarded("mount", "mount -t tmpfs none " + (*dir_ / "srv/pg"));
    EXPECT_NE(r.status, 0) << "the guarded mount succeeded";
    if (r.status == 0) ::umount2((*dir_ / "srv/pg").c_str(), MNT_DETACH);
    EXPECT_TRUE(data_in_place()) << "the data is hidden";
    json rec = file_record("mount");
    ASSERT_FALSE(rec.is_null()) << "no record";
    EXPECT_EQ(rec["op"], "mount");
    EXPECT_EQ(rec["match"], "ancestor-of-protected");

    // In a mount namespace of its own the mount hides nothing from the
    // database server: it is not refused (unshare makes "/" private first).
    r = guarded("private", "unshare -m sh -c 'mount -t tmpfs none " + (*dir_ / "srv/pg") +
                               " && test ! -e " + (*dir_ / "srv/pg/db") + "'");
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(data_in_place());
    EXPECT_TRUE(file_record("private", std::chrono::seconds(2)).is_null())
        << "a mount in a private namespace was recorded";
}

}  // namespace
}  // namespace ks::test
