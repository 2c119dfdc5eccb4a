// The metadata of protected data: its mode, owner, ACLs, extended attributes
// and inode flags. A database server that can no longer open its own files
// fails as surely as one whose files were deleted. Against a real
// PostgreSQL 15 (running as postgres, so permissions bind it): an unguarded
// `chmod 000` of a table's file is first shown to break the database; then
// each guarded attempt leaves the file as it was and the table readable.
//
// On this kernel (no LSM, no fentry) the libc layer stops chmod, chown,
// setfacl and setfattr before the call; chattr's ioctl is seen at the syscall
// tracepoint only, which stops the agent after the call (the flag is set: the
// test says so and clears it). The vm tier's LSM and fentry guests refuse
// every one of them before it changes anything (tests/vm/guest_attack_suite.sh).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "db_servers.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class MetadataE2E : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0) return;
        server_ = new PgServer();
        if (!server_->ok()) return;
        setup_ = server_->query("CREATE TABLE accounts (id int primary key)");
        setup_ += server_->query("INSERT INTO accounts SELECT generate_series(1, 100)");
        table_file_ =
            server_->data_dir() + "/" + server_->query("SELECT pg_relation_filepath('accounts')");
        policy_dir_ = new TempDir();
        std::string policy = policy_dir_->path() + "/policy.yaml";
        std::ofstream(policy) << "version: 1\nprotect:\n  paths: [" << server_->data_dir() << "]\n";
        daemon_ = new Daemon(Daemon::Options{.policy_file = policy});
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete policy_dir_;
        delete server_;
        daemon_ = nullptr;
        policy_dir_ = nullptr;
        server_ = nullptr;
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        if (!server_->ok()) GTEST_SKIP() << server_->why();
        ASSERT_EQ(setup_.find("ERROR"), std::string::npos) << setup_;
        ASSERT_TRUE(daemon_->ready()) << daemon_->stderr_text();
        ASSERT_EQ(::stat(table_file_.c_str(), &before_), 0) << table_file_;
        ASSERT_EQ(server_->query("SELECT count(*) FROM accounts"), "100");
    }
    static CommandResult guarded(const std::string& session, const std::string& script) {
        return daemon_->cli({"run", "--session", session, "--", "sh", "-c", script});
    }
    static json file_record(const std::string& session,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return session_record(*daemon_, "file", session, timeout);
    }
    // The table's file has the mode and owner it had, and a new backend
    // reads every row of it.
    void expect_unharmed(const std::string& what) const {
        struct stat now {};
        ASSERT_EQ(::stat(table_file_.c_str(), &now), 0) << what;
        EXPECT_EQ(now.st_mode, before_.st_mode) << what << ": the mode changed";
        EXPECT_EQ(now.st_uid, before_.st_uid) << what << ": the owner changed";
        EXPECT_EQ(now.st_gid, before_.st_gid) << what << ": the group changed";
        EXPECT_EQ(server_->query("SELECT count(*) FROM accounts"), "100") << what;
    }

    static PgServer* server_;
    static TempDir* policy_dir_;
    static Daemon* daemon_;
    static std::string setup_, table_file_;
    struct stat before_ {};
};
PgServer* MetadataE2E::server_ = nullptr;
TempDir* MetadataE2E::policy_dir_ = nullptr;
Daemon* MetadataE2E::daemon_ = nullptr;
std::string MetadataE2E::setup_;
std::string MetadataE2E::table_file_;

TEST_F(MetadataE2E, UnguardedAModeChangeBreaksTheDatabase) {
    ASSERT_EQ(run_command({"chmod", "000", table_file_}).status, 0);
    std::string broken = server_->query("SELECT count(*) FROM accounts");
    ASSERT_EQ(run_command({"chmod", "600", table_file_}).status, 0);
    EXPECT_NE(broken.find("Permission denied"), std::string::npos)
        << "chmod 000 of the table's file did not break the database: " << broken;
    expect_unharmed("restored");
}

TEST_F(MetadataE2E, ModeOwnerAndAclChangesAreRefusedBeforeTheCall) {
    const std::string data = server_->data_dir();
    struct Case {
        std::string session, op, script;
    };
    const Case cases[] = {
        {"chmod", "chmod", "chmod 000 " + table_file_},
        {"chmod-recursive", "chmod", "chmod -R go+rwx " + data},
        {"chown-recursive", "chown", "chown -R nobody:nogroup " + data},
        {"python-chown", "chown",
         "python3 -c 'import os, sys; os.chown(sys.argv[1], 65534, -1)' " + table_file_},
        {"setfacl", "xattr", "setfacl -m u::--- " + table_file_},
        {"setfattr", "xattr", "setfattr -n user.note -v x " + table_file_},
    };
    for (const auto& c : cases) {
        auto r = guarded(c.session, c.script);
        EXPECT_NE(r.status, 0) << c.session << ": the change succeeded";
        json rec = file_record(c.session);
        ASSERT_FALSE(rec.is_null()) << c.session << ": no record";
        EXPECT_EQ(rec["op"], c.op) << c.session;
        EXPECT_EQ(rec["rule"], "protect:" + data) << c.session;
        EXPECT_EQ(rec["layer"], "uprobe") << c.session;
        EXPECT_EQ(rec["prevented"], true) << c.session;
        expect_unharmed(c.session);
    }
    // No ACL entry was added either.
    auto acl = run_command({"getfacl", "-c", table_file_});
    EXPECT_EQ(acl.out.find("user:nobody"), std::string::npos) << acl.out;
    auto attrs = run_command({"getfattr", "-d", table_file_});
    EXPECT_EQ(attrs.out.find("user.note"), std::string::npos) << attrs.out;
}

TEST_F(MetadataE2E, ChattrIsStoppedAfterTheCallOnTheTracepointLayer) {
    // chattr reaches the flags through ioctl, which has no libc probe: at the
    // syscall tracepoint the agent is stopped, the one call completes, and
    // its session does not go on (sessions.on_contained: freeze).
    auto fut = std::async(std::launch::async, [&] {
        return guarded("chattr", "chattr +i " + table_file_ + " && sleep 5 && echo survived");
    });
    json rec = file_record("chattr", std::chrono::seconds(20));
    auto lsattr = run_command({"lsattr", table_file_});
    run_command({"chattr", "-i", table_file_});  // what this layer cannot prevent
    daemon_->cli({"kill", "--session", "chattr"});
    auto r = fut.get();
    EXPECT_NE(r.status, 0);
    EXPECT_EQ(r.out.find("survived"), std::string::npos) << "the agent went on";
    ASSERT_FALSE(rec.is_null()) << "no record";
    EXPECT_EQ(rec["op"], "file-flags");
    EXPECT_EQ(rec["layer"], "tracepoint");
    EXPECT_EQ(rec["prevented"], false) << "the record claims what this layer cannot do";
    EXPECT_EQ(rec.value("session_action", ""), "freeze") << rec.dump();
    EXPECT_NE(lsattr.out.substr(0, lsattr.out.find(' ')).find('i'), std::string::npos)
        << "the flag was not set: if this layer now prevents chattr, say so here and in "
           "docs/guarantees.md: "
        << lsattr.out;
    expect_unharmed("after chattr -i");
}

// What an operator runs to repair permissions (`chown -R postgres:postgres`
// over a data directory postgres owns, a chmod to the mode a file has)
// changes nothing: it goes on, unrecorded. The libc layer stops each call,
// the daemon looks at the object and lets it go with a ticket for that one
// system call; a real change in the same session is refused as before.
TEST_F(MetadataE2E, ChangesThatChangeNothingGoOn) {
    const std::string data = server_->data_dir();
    const std::string owner = std::to_string(before_.st_uid) + ":" + std::to_string(before_.st_gid);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%o", before_.st_mode & 07777);
    auto counted = [&] {
        auto st = json::parse(daemon_->cli({"status", "--json"}).out, nullptr, false);
        return st.is_object() ? st["counters"].value("metadata_unchanged", 0) : -1;
    };
    int before = counted();
    struct Case {
        std::string session, script;
    };
    const Case cases[] = {
        {"chown-same", "chown -R " + owner + " " + data},
        {"chmod-same", std::string("chmod ") + mode + " " + table_file_},
        {"python-chown-same", "python3 -c 'import os, sys; os.chown(sys.argv[1], " +
                                  std::to_string(before_.st_uid) + ", -1)' " + table_file_},
    };
    for (const auto& c : cases) {
        auto r = guarded(c.session, c.script);
        EXPECT_EQ(r.status, 0) << c.session << ": " << r.err;
        EXPECT_EQ(r.err.find("killswitch"), std::string::npos) << c.session << ": " << r.err;
        EXPECT_TRUE(file_record(c.session, std::chrono::seconds(2)).is_null())
            << c.session << ": a change that changes nothing was recorded";
        expect_unharmed(c.session);
    }
    size_t entries = 0;
    for (auto it = fs::recursive_directory_iterator(data); it != fs::end(it); ++it) ++entries;
    EXPECT_GT(counted() - before, static_cast<int>(entries))
        << "the daemon did not look at each object (" << entries << " in the data directory)";

    // After such calls, a real change is refused: no ticket carries over.
    auto r = guarded("same-then-real", "chown -R " + owner + " " + data + " && chmod 000 " +
                                           table_file_ + " && echo changed");
    EXPECT_NE(r.status, 0);
    EXPECT_EQ(r.out.find("changed"), std::string::npos);
    json rec = file_record("same-then-real");
    ASSERT_FALSE(rec.is_null()) << "no record of the refused chmod";
    EXPECT_EQ(rec["op"], "chmod");
    EXPECT_EQ(rec["layer"], "uprobe");
    EXPECT_EQ(rec["prevented"], true);
    EXPECT_NE(r.err.find("killswitch: refused chmod"), std::string::npos) << r.err;
    expect_unharmed("same-then-real");

    // A static program has no libc layer: the syscall tracepoint cannot look
    // at the object, so even a change that changes nothing stops the agent
    // there (docs/guarantees.md says so), and its session freezes as after
    // any call that ran (sessions.on_contained).
    auto fut = std::async(std::launch::async, [&] {
        return guarded("static-chown-same", "busybox chown " + owner + " " + table_file_);
    });
    json srec = file_record("static-chown-same");
    daemon_->cli({"kill", "--session", "static-chown-same"});
    EXPECT_NE(fut.get().status, 0);
    ASSERT_FALSE(srec.is_null());
    EXPECT_EQ(srec["op"], "chown");
    EXPECT_EQ(srec["layer"], "tracepoint");
    expect_unharmed("static-chown-same");
}

TEST_F(MetadataE2E, ReadingMetadataIsFree) {
    auto r = guarded("reads", "stat " + table_file_ + " && ls -l " + server_->data_dir() +
                                  " && getfacl -c " + table_file_ + " && lsattr " + table_file_ +
                                  " && getfattr -d " + table_file_);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(file_record("reads", std::chrono::seconds(2)).is_null())
        << "reading metadata was recorded";
    expect_unharmed("reads");
}

}  // namespace
}  // namespace ks::test
