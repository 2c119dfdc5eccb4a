#include "audit/audit.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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

}  // namespace
}  // namespace ks
