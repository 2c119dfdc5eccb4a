#include "audit/audit.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/identity.h"

namespace ks {
namespace {

TEST(FormatRealtime, IsUtcWithNanoseconds) {
    EXPECT_EQ(format_realtime_ns(0), "1970-01-01T00:00:00.000000000Z");
    EXPECT_EQ(format_realtime_ns(1795000000123456789ull), "2026-11-18T11:06:40.123456789Z");
}

TEST(AuditWriter, AppendsNumberedLinesAndKeepsOldOnes) {
    char tmpl[] = "/tmp/ks-audit-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    std::string path = dir + "/sub/audit.jsonl";
    {
        auto w = AuditWriter::open(path);
        ASSERT_TRUE(w.ok()) << w.error().str();
        w->append({{"event", "exec"}, {"session", "a"}});
        w->append({{"event", "exit"}, {"session", "b"}});
        ASSERT_TRUE(w->sync().ok());
        EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
                  std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    {
        auto w = AuditWriter::open(path);
        ASSERT_TRUE(w.ok());
        w->append({{"event", "exec"}, {"session", "a"}, {"statement", "DROP TABLE \"x\"\n"}});
        w->append({{"event", "daemon_stop"}, {"session", nullptr}});
        ASSERT_TRUE(w->sync().ok());
    }
    std::vector<nlohmann::json> recs;
    ASSERT_TRUE(
        read_audit(path, {}, false, [&](const auto& r, const auto&) { recs.push_back(r); }).ok());
    ASSERT_EQ(recs.size(), 4u);
    EXPECT_EQ(recs[0]["seq"], 1);
    EXPECT_TRUE(recs[0].contains("ts"));
    EXPECT_EQ(recs[2]["statement"], "DROP TABLE \"x\"\n");

    std::vector<nlohmann::json> only_a;
    AuditFilter f;
    f.session = "a";
    ASSERT_TRUE(
        read_audit(path, f, false, [&](const auto& r, const auto&) { only_a.push_back(r); }).ok());
    EXPECT_EQ(only_a.size(), 2u);
    std::filesystem::remove_all(dir);
}

TEST(AuditReader, MissingFileIsAnErrorWithThePath) {
    auto st = read_audit("/nonexistent/ks/audit.jsonl", {}, false, [](const auto&, const auto&) {});
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().str().find("/nonexistent/ks/audit.jsonl"), std::string::npos);
}

TEST(FormatAuditHuman, ShowsArgvAndDecisionFields) {
    nlohmann::json rec = {{"ts", "T"},
                          {"event", "exec"},
                          {"session", "s1"},
                          {"pid", 5},
                          {"argv", {"rm", "-rf", "/data"}},
                          {"verdict", "block"}};
    auto line = format_audit_human(rec);
    EXPECT_NE(line.find("session=s1"), std::string::npos);
    EXPECT_NE(line.find(": rm -rf /data"), std::string::npos);
    EXPECT_NE(line.find("verdict=block"), std::string::npos);
}

TEST(AuditWriter, RecordsNameTheirHostAndRunAndTheFileKeepsItsModeAndGroup) {
    char tmpl[] = "/tmp/ks-audit-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    std::string path = dir + "/audit.jsonl";
    namespace fs = std::filesystem;
    {
        auto w = AuditWriter::open(path, {0640, static_cast<int64_t>(::getgid())});
        ASSERT_TRUE(w.ok()) << w.error().str();
        w->set_identity("0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210");
        w->append({{"event", "exec"}});
        ASSERT_TRUE(w->sync().ok());
        EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
        // Rotated away: the new file gets the same mode.
        fs::rename(path, path + ".1");
        ASSERT_TRUE(w->reopen().ok());
        w->append({{"event", "exit"}});
        ASSERT_TRUE(w->sync().ok());
        EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
        // A reload that narrows it.
        ASSERT_TRUE(w->set_access({0600, -1}).ok());
        EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
                  fs::perms::owner_read | fs::perms::owner_write);
    }
    std::ifstream old(path + ".1"), cur(path);
    std::string a, b;
    std::getline(old, a);
    std::getline(cur, b);
    auto ra = nlohmann::json::parse(a), rb = nlohmann::json::parse(b);
    EXPECT_EQ(ra["host"], "0123456789abcdef0123456789abcdef");
    EXPECT_EQ(ra["run"], "fedcba9876543210fedcba9876543210");
    EXPECT_EQ(ra["seq"], 1);
    EXPECT_EQ(rb["run"], ra["run"]);
    EXPECT_EQ(rb["seq"], 2);  // rotation does not restart the run's numbering
    std::filesystem::remove_all(dir);
}

// An audit log that is not a regular file (/dev/null, a FIFO a shipper
// reads) is written to but never re-moded: a chmod of /dev/null to 0600
// once broke every unprivileged user of it on a test host.
TEST(AuditWriter, ATrailThatIsNotARegularFileKeepsItsModeAndGroup) {
    char tmpl[] = "/tmp/ks-audit-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    std::string fifo = dir + "/trail.fifo";
    namespace fs = std::filesystem;
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
    ::chmod(fifo.c_str(), 0644);  // whatever the umask made of it
    // A reader, as a shipper would be: the writer's open does not block.
    int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
    ASSERT_GE(reader, 0);
    {
        auto w = AuditWriter::open(fifo, {0600, static_cast<int64_t>(::getgid())});
        ASSERT_TRUE(w.ok()) << w.error().str();
        w->append({{"event", "exec"}});
        ASSERT_TRUE(w->sync().ok());
        ASSERT_TRUE(w->set_access({0600, -1}).ok());
        EXPECT_EQ(fs::status(fifo).permissions() & fs::perms::all,
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                      fs::perms::others_read);
    }
    char buf[512];
    ssize_t n = ::read(reader, buf, sizeof buf);
    ASSERT_GT(n, 0);
    EXPECT_NE(std::string(buf, static_cast<size_t>(n)).find("\"event\":\"exec\""),
              std::string::npos);
    ::close(reader);
    fs::remove_all(dir);
}

TEST(Identity, MachineIdIsReadFromTheRootGivenAndRunIdsDiffer) {
    char tmpl[] = "/tmp/ks-root-XXXXXX";
    std::string root = ::mkdtemp(tmpl);
    std::filesystem::create_directories(root + "/etc");
    EXPECT_EQ(machine_id(root), "");  // none there
    std::ofstream(root + "/etc/machine-id") << "uninitialized\n";
    EXPECT_EQ(machine_id(root), "");  // an image that has not booted yet
    std::ofstream(root + "/etc/machine-id") << "0123456789ABCDEF0123456789abcdef\n";
    EXPECT_EQ(machine_id(root), "0123456789abcdef0123456789abcdef");
    std::string a = new_run_id(), b = new_run_id();
    EXPECT_EQ(a.size(), 32u);
    EXPECT_NE(a, b);
    std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace ks
