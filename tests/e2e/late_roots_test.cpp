// Protected paths the daemon did not find at start, or that were made anew
// since, and bind mounts made since (issue 18 item 5): the daemon watches its
// protected paths (every tick) and the mount table (the kernel flags
// /proc/self/mountinfo), builds the protected set again when one changes,
// and records the change (protect_root). Against a real PostgreSQL 15 whose
// cluster initdb makes after the daemon started.
//
// On this kernel the libc uprobes and syscall tracepoints judge a path by
// walking the protected set's edges: before this, a root that appeared later
// had no edge and a path through a later bind mount left the graph, so both
// were taken as unprotected. The LSM and fentry layers walk up from the real
// object and never depended on the set's paths for that.
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "db_servers.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class LateRootsE2E : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0) return;
        dir_ = new TempDir();
        ::chmod(dir_->path().c_str(), 0755);  // postgres goes through it
        std::string policy = *dir_ / "policy.yaml";
        std::ofstream(policy) << "version: 1\nprotect:\n  paths: [" << pgdata() << ", " << remade()
                              << "]\n";
        daemon_ = new Daemon(Daemon::Options{.policy_file = policy});
    }
    static void TearDownTestSuite() {
        delete server_;
        delete daemon_;
        delete dir_;
        server_ = nullptr;
        daemon_ = nullptr;
        dir_ = nullptr;
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        ASSERT_TRUE(daemon_->ready()) << daemon_->stderr_text();
    }
    static std::string pgdata() { return *dir_ / "pgdata"; }
    static std::string remade() { return *dir_ / "remade"; }
    // The cluster, made once by the first test that needs it.
    static PgServer& server() {
        if (!server_) {
            server_ = new PgServer(pgdata());
            if (server_->ok()) {
                setup_ = server_->query("CREATE TABLE accounts (id int primary key)");
                setup_ += server_->query("INSERT INTO accounts SELECT generate_series(1, 100)");
            }
        }
        return *server_;
    }
    static CommandResult guarded(const std::string& session, const std::string& script) {
        return daemon_->cli({"run", "--session", session, "--", "sh", "-c", script});
    }
    // The protect_root record of path with this change, once written.
    static json change_record(const std::string& path, const std::string& change,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return first_record(
            *daemon_,
            [&](const json& r) {
                return r.value("event", "") == "protect_root" && r.value("path", "") == path &&
                       r.value("change", "") == change;
            },
            timeout);
    }
    static std::string python_unlink(const std::string& path) {
        return "python3 -c 'import os, sys; os.unlink(sys.argv[1])' " + path;
    }

    static TempDir* dir_;
    static Daemon* daemon_;
    static PgServer* server_;
    static std::string setup_;
};
TempDir* LateRootsE2E::dir_ = nullptr;
Daemon* LateRootsE2E::daemon_ = nullptr;
PgServer* LateRootsE2E::server_ = nullptr;
std::string LateRootsE2E::setup_;

TEST_F(LateRootsE2E, AClusterMadeAfterStartIsProtectedOnceItAppears) {
    // The daemon started with nothing there, and said so.
    EXPECT_NE(daemon_->stderr_text().find(pgdata() + " does not exist"), std::string::npos)
        << daemon_->stderr_text();
    PgServer& pg = server();
    if (!pg.ok()) GTEST_SKIP() << pg.why();
    ASSERT_EQ(setup_.find("ERROR"), std::string::npos) << setup_;
    json rec = change_record(pgdata(), "appeared");
    ASSERT_FALSE(rec.is_null()) << "no protect_root record for " << pgdata();
    EXPECT_EQ(rec["rule"], "protect:" + pgdata());
    EXPECT_EQ(rec["real_path"], pgdata());
    // libc (Python's unlink), then a whole-tree removal at exec.
    auto r = guarded("late-python", python_unlink(pgdata() + "/PG_VERSION"));
    EXPECT_NE(r.status, 0) << "the unlink went through";
    EXPECT_TRUE(fs::exists(pgdata() + "/PG_VERSION"));
    json file = session_record(*daemon_, "file", "late-python");
    ASSERT_FALSE(file.is_null()) << "no file record";
    EXPECT_EQ(file["rule"], "protect:" + pgdata());
    EXPECT_EQ(file["prevented"], true);
    r = guarded("late-rm", "rm -rf " + pgdata());
    EXPECT_NE(r.status, 0);
    EXPECT_TRUE(fs::exists(pgdata() + "/PG_VERSION"));
    EXPECT_EQ(pg.query("SELECT count(*) FROM accounts"), "100");
}

TEST_F(LateRootsE2E, ADirectoryMadeAnewIsProtectedAgain) {
    fs::create_directories(remade());
    std::ofstream(remade() + "/rows") << "rows\n";
    ASSERT_FALSE(change_record(remade(), "appeared").is_null());
    // Removed and made again by someone outside every session (a restore):
    // another inode, the same path.
    fs::remove_all(remade());
    ASSERT_FALSE(change_record(remade(), "gone").is_null()) << "the removal was not seen";
    fs::create_directories(remade());
    std::ofstream(remade() + "/rows") << "rows\n";
    auto appeared = [&] {
        size_t n = 0;
        for (const auto& x : daemon_->records())
            n += x.value("event", "") == "protect_root" && x.value("path", "") == remade() &&
                 x.value("change", "") == "appeared";
        return n;
    };
    ASSERT_TRUE(wait_until([&] { return appeared() == 2; })) << "the new directory was not seen";
    auto r = guarded("remade", python_unlink(remade() + "/rows"));
    EXPECT_NE(r.status, 0) << "the unlink went through";
    EXPECT_TRUE(fs::exists(remade() + "/rows"));
}

TEST_F(LateRootsE2E, ABindMountMadeAfterStartLeadsToProtectedData) {
    PgServer& pg = server();
    if (!pg.ok()) GTEST_SKIP() << pg.why();
    ASSERT_FALSE(change_record(pgdata(), "appeared").is_null());
    // A view of the directory above the cluster, made by a process outside
    // every session after the daemon built its set.
    std::string view = *dir_ / "view";
    fs::create_directories(view);
    ASSERT_EQ(::mount(dir_->path().c_str(), view.c_str(), nullptr, MS_BIND, nullptr), 0)
        << std::strerror(errno);
    std::ofstream(*dir_ / "scratch") << "not protected\n";
    // Through the view, an unprotected file goes: the path itself works.
    auto free = guarded("view-scratch", python_unlink(view + "/scratch"));
    // The daemon builds its set again once the kernel flags the mount table.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    auto r = guarded("view-pg", python_unlink(view + "/pgdata/PG_VERSION"));
    ::umount2(view.c_str(), MNT_DETACH);
    EXPECT_EQ(free.status, 0) << free.err;
    EXPECT_FALSE(fs::exists(*dir_ / "scratch"));
    EXPECT_NE(r.status, 0) << "the unlink through the bind mount went through";
    EXPECT_TRUE(fs::exists(pgdata() + "/PG_VERSION"));
    json file = session_record(*daemon_, "file", "view-pg");
    ASSERT_FALSE(file.is_null()) << "no file record";
    EXPECT_EQ(file["rule"], "protect:" + pgdata());
    EXPECT_EQ(file["layer"], "uprobe");
    EXPECT_EQ(pg.query("SELECT count(*) FROM accounts"), "100");
}

// In a mount namespace of its own the agent's mounts are not the daemon's:
// a bind of protected data (or of a directory above it) there would give it
// a name no edge leads through. On the libc and tracepoint layers the bind's
// source is judged as a mount; a bind of anything else goes on.
TEST_F(LateRootsE2E, AnAgentsBindMountOfProtectedDataIsRefused) {
    PgServer& pg = server();
    if (!pg.ok()) GTEST_SKIP() << pg.why();
    ASSERT_FALSE(change_record(pgdata(), "appeared").is_null());
    std::string view = *dir_ / "agent-view";
    std::string other = *dir_ / "agent-scratch";
    fs::create_directories(view);
    fs::create_directories(other);
    auto bind = [&](const std::string& session, const std::string& source) {
        return guarded(session, "unshare -m sh -c 'mount --make-rprivate / && mount --bind " +
                                    source + " " + view + " && ls " + view + "'");
    };
    auto free = bind("bind-scratch", other);
    EXPECT_EQ(free.status, 0) << free.err;
    for (const auto& [session, source] :
         {std::pair<std::string, std::string>{"bind-data", pgdata()},
          {"bind-above", dir_->path()}}) {
        auto r = bind(session, source);
        EXPECT_NE(r.status, 0) << session << ": the bind mount was made";
        json rec = session_record(*daemon_, "file", session);
        ASSERT_FALSE(rec.is_null()) << session << ": no record";
        EXPECT_EQ(rec["op"], "mount-source") << session;
        EXPECT_EQ(rec["path"], source) << session;
        EXPECT_EQ(rec["rule"], "protect:" + pgdata()) << session;
        EXPECT_EQ(rec["layer"], "uprobe") << session;
    }
    EXPECT_EQ(pg.query("SELECT count(*) FROM accounts"), "100");
}

}  // namespace
}  // namespace ks::test
