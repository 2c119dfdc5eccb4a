// The space budget (protect.min_free): a database whose file system is full
// cannot write, as surely as one whose files were deleted. Against a real
// PostgreSQL 15 whose data directory lies on a file system of the test's own
// (a 160 MiB tmpfs mounted under its temporary directory, unmounted after):
// an unguarded fill is first shown to make the server's INSERT fail with "No
// space left on device"; then each guarded way of filling it (dd, writev,
// fallocate, cp's copy_file_range, a static shell's cat) is stopped at the
// policy's floor of 40% free, the record names the rule, and the server
// still writes. Writing within the budget, or on another file system, is
// free.
//
// On this kernel the write system calls' tracepoints count and refuse
// (buffered writes stop at the pending kill before they copy anything);
// libc's fallocate is stopped by its uprobe before the call.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "db_servers.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr uint64_t kMiB = 1024 * 1024;

class SpaceE2E : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0) return;
        dir_ = new TempDir();
        ::chmod(dir_->path().c_str(), 0755);  // the server (postgres) goes through it
        mnt_ = *dir_ / "fs";
        fs::create_directories(mnt_);
        if (::mount("ks-test-space", mnt_.c_str(), "tmpfs", 0, "size=160m,mode=0755") != 0) {
            why_ = std::string("cannot mount a tmpfs: ") + std::strerror(errno);
            mnt_.clear();
            return;
        }
        scratch_ = mnt_ + "/scratch";
        fs::create_directories(scratch_);
        server_ = new PgServer(mnt_ + "/data");
        if (!server_->ok()) return;
        setup_ = server_->query("CREATE TABLE accounts (id int primary key)");
        setup_ += server_->query("INSERT INTO accounts SELECT generate_series(1, 100)");
        // The server's own writes are outside any budget (it is not
        // guarded): no autovacuum writing at its own time, so that the
        // free space a test reads is the guarded processes' doing.
        setup_ += server_->query("ALTER SYSTEM SET autovacuum = off");
        setup_ += server_->query("SELECT pg_reload_conf()");
        // A source on another file system, for the copies.
        big_ = *dir_ / "big";
        run_command({"dd", "if=/dev/zero", "of=" + big_, "bs=1M", "count=120", "status=none"});
        std::string policy = *dir_ / "policy.yaml";
        std::ofstream(policy) << "version: 1\nprotect:\n  paths: [" << server_->data_dir()
                              << "]\n  min_free: 40%\n";
        daemon_ = new Daemon(Daemon::Options{.policy_file = policy});
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete server_;
        if (!mnt_.empty()) ::umount2(mnt_.c_str(), MNT_DETACH);
        delete dir_;
        daemon_ = nullptr;
        server_ = nullptr;
        dir_ = nullptr;
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        if (mnt_.empty()) GTEST_SKIP() << why_;
        if (!server_->ok()) GTEST_SKIP() << server_->why();
        ASSERT_EQ(setup_.find("ERROR"), std::string::npos) << setup_;
        ASSERT_TRUE(daemon_->ready()) << daemon_->stderr_text();
        ASSERT_EQ(server_->query("SELECT count(*) FROM accounts"), "100");
    }
    void TearDown() override {
        if (!scratch_.empty())
            for (const auto& e : fs::directory_iterator(scratch_)) fs::remove(e.path());
    }

    static CommandResult guarded(const std::string& session, const std::string& script) {
        return daemon_->cli({"run", "--session", session, "--", "sh", "-c", script});
    }
    struct Space {
        uint64_t total = 0, avail = 0;
    };
    static Space space() {
        struct statvfs sv {};
        if (::statvfs(mnt_.c_str(), &sv) != 0) return {};
        return {uint64_t{sv.f_blocks} * sv.f_frsize, uint64_t{sv.f_bavail} * sv.f_frsize};
    }
    static uint64_t floor_bytes() { return space().total / 100 * 40; }
    // The daemon's own view of the file system (killswitch status).
    static json budget() {
        auto r = daemon_->cli({"status", "--json"});
        json s = json::parse(r.out, nullptr, false);
        if (s.is_discarded()) return json::object();
        for (const auto& f : s["space_budget"]["filesystems"])
            for (const auto& root : f["roots"])
                if (root == fs::canonical(server_->data_dir()).string()) return f;
        return json::object();
    }
    // The server has written what it had to write (a checkpoint makes and
    // recycles its WAL segments, 16 MiB each, at once), and the daemon's
    // last look at the free space came after it, with no guarded write
    // counted since the look before (the limit then rises to what is free):
    // the budget it returns is the one guarded processes meet next.
    static json settled_budget() {
        (void)server_->query("CHECKPOINT");
        json f;
        wait_until(
            [&] {
                f = budget();
                return f.value("free_bytes", uint64_t{0}) == space().avail &&
                       f.value("headroom_bytes", uint64_t{1}) ==
                           f.value("above_floor_bytes", uint64_t{0});
            },
            std::chrono::seconds(10));
        return f;
    }
    // What the files under the scratch directory take on the file system.
    static uint64_t scratch_bytes() {
        uint64_t n = 0;
        struct stat st {};
        for (const auto& e : fs::directory_iterator(scratch_))
            if (::stat(e.path().c_str(), &st) == 0) n += uint64_t(st.st_blocks) * 512;
        return n;
    }
    // A write the server must make now: a table of its own, 30,000 rows
    // (about a megabyte of new heap pages).
    static std::string server_writes(const std::string& table) {
        return server_->query("CREATE TABLE " + table +
                              " AS SELECT generate_series(1, 30000) AS n");
    }

    static TempDir* dir_;
    static PgServer* server_;
    static Daemon* daemon_;
    static std::string mnt_, scratch_, big_, setup_, why_;
};
TempDir* SpaceE2E::dir_ = nullptr;
PgServer* SpaceE2E::server_ = nullptr;
Daemon* SpaceE2E::daemon_ = nullptr;
std::string SpaceE2E::mnt_;
std::string SpaceE2E::scratch_;
std::string SpaceE2E::big_;
std::string SpaceE2E::setup_;
std::string SpaceE2E::why_;

TEST_F(SpaceE2E, AnUnguardedFillLeavesTheDatabaseUnableToWrite) {
    auto fill = run_command({"dd", "if=/dev/zero", "of=" + scratch_ + "/unguarded", "bs=1M"});
    EXPECT_NE(fill.status, 0) << "dd filled a 160 MiB file system without running out";
    EXPECT_LT(space().avail, kMiB) << "the file system is not full";
    std::string r = server_writes("while_full");
    EXPECT_NE(r.find("No space left on device"), std::string::npos)
        << "the server wrote on a full file system: " << r;
    fs::remove(scratch_ + "/unguarded");
    // The server writes again once the space is back.
    EXPECT_EQ(server_writes("after_full").find("ERROR"), std::string::npos);
    EXPECT_EQ(server_->query("SELECT count(*) FROM after_full"), "30000");
}

TEST_F(SpaceE2E, GuardedFillsStopAtTheFloorAndTheDatabaseStillWrites) {
    struct Case {
        std::string session, script, layer;
    };
    const std::string py_writev =
        "/usr/bin/python3 -c 'import os, sys\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)\n"
        "b = bytes(4 << 20)\n"
        "while True: os.writev(fd, [b, b])' ";
    const Case cases[] = {
        {"dd", "dd if=/dev/zero of=" + scratch_ + "/dd bs=1M", "tracepoint"},
        {"writev", py_writev + scratch_ + "/writev", "tracepoint"},
        {"fallocate", "fallocate -l 80M " + scratch_ + "/fallocate", "uprobe"},
        {"cp", "cp " + big_ + " " + scratch_ + "/cp", "tracepoint"},
        // A static shell: no libc to probe.
        {"static-cat", "busybox sh -c 'cat " + big_ + " > " + scratch_ + "/cat'", "tracepoint"},
    };
    for (const auto& c : cases) {
        json before = settled_budget();
        ASSERT_GE(before.value("headroom_bytes", uint64_t{0}), 8 * kMiB)
            << c.session << ": " << before.dump();
        auto r = guarded(c.session, c.script);
        EXPECT_NE(r.status, 0) << c.session << ": it ran to its end";
        EXPECT_LE(scratch_bytes(), before["headroom_bytes"].get<uint64_t>())
            << c.session << ": it wrote more than the budget had";
        EXPECT_GE(space().avail, floor_bytes())
            << c.session << ": the free space fell under the floor";
        EXPECT_NE(r.err.find("killswitch: refused write " + scratch_), std::string::npos)
            << c.session << ": " << r.err
            << "\nrecord: " << session_record(*daemon_, "file", c.session).dump();
        EXPECT_NE(r.err.find("protect.min_free (40%) (rule low-space)"), std::string::npos)
            << c.session << ": " << r.err;
        json rec = session_record(*daemon_, "file", c.session);
        ASSERT_FALSE(rec.is_null()) << c.session << ": no record";
        EXPECT_EQ(rec["op"], "write") << c.session;
        EXPECT_EQ(rec["match"], "low-space") << c.session;
        EXPECT_EQ(rec["rule"], "low-space") << c.session;
        EXPECT_EQ(rec["layer"], c.layer) << c.session;
        EXPECT_EQ(rec["prevented"], true) << c.session;
        EXPECT_GT(rec["bytes"].get<uint64_t>(), 0u) << c.session;
        EXPECT_EQ(rec["path"].get<std::string>().rfind(scratch_, 0), 0u) << rec["path"];
        EXPECT_EQ(rec["filesystem"]["min_free"], "40%") << c.session;
        // The database is not starved.
        std::string table = "after_" + c.session;
        std::replace(table.begin(), table.end(), '-', '_');
        EXPECT_EQ(server_writes(table).find("ERROR"), std::string::npos) << c.session;
        EXPECT_EQ(server_->query("SELECT count(*) FROM " + table), "30000") << c.session;
        for (const auto& e : fs::directory_iterator(scratch_)) fs::remove(e.path());
    }
}

TEST_F(SpaceE2E, WritingWithinTheBudgetOrOnAnotherFileSystemIsFree) {
    json f = settled_budget();
    ASSERT_GE(f.value("headroom_bytes", uint64_t{0}), 16 * kMiB) << f.dump();
    EXPECT_EQ(f["floor_bytes"].get<uint64_t>(), floor_bytes());
    auto small = guarded(
        "small", "dd if=/dev/zero of=" + scratch_ + "/small bs=1M count=8 status=none && sync");
    EXPECT_EQ(small.status, 0) << small.err << "\nthe budget before: " << f.dump()
                               << "\nafter: " << budget().dump();
    EXPECT_EQ(fs::file_size(scratch_ + "/small"), 8 * kMiB);
    // 200 MiB on the temporary directory's file system: not one that holds
    // protected data.
    std::string other = *dir_ / "other";
    auto big =
        guarded("other-fs", "dd if=/dev/zero of=" + other + " bs=1M count=200 status=none && sync");
    EXPECT_EQ(big.status, 0) << big.err;
    EXPECT_EQ(fs::file_size(other), 200 * kMiB);
    fs::remove(other);
    for (const char* s : {"small", "other-fs"})
        EXPECT_TRUE(session_record(*daemon_, "file", s, std::chrono::seconds(2)).is_null())
            << s << ": a harmless write was recorded";
}

}  // namespace
}  // namespace ks::test
