// The policy lifecycle on the database layer: a maintenance window lets a
// guarded session's destructive statement through the socket send path (and
// records it with the window's reason) and, once ended, the same kind of
// statement is refused again; `databases.mode: monitor` records what would
// have been refused and refuses nothing. Real PostgreSQL server of the
// test's own (db_servers.h), TCP, no libpq uprobes.
#include <fstream>
#include <future>

#include "db_servers.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;

std::string psql_line(const PgServer& pg, const std::string& sql) {
    std::string line;
    for (const auto& a : pg.psql("127.0.0.1", sql)) line += "'" + a + "' ";
    return line;
}

TEST(DbPolicyLifecycle, AWindowLetsADropThroughAndItsEndRefusesTheNext) {
    KS_REQUIRE_ROOT();
    PgServer pg;
    if (!pg.ok()) GTEST_SKIP() << pg.why();
    ASSERT_EQ(pg.query("CREATE TABLE t1 (id int); CREATE TABLE t2 (id int); "
                       "INSERT INTO t2 VALUES (1)"),
              "");
    Daemon d({.extra_args = {"--no-db-client-probes", "--db", "postgres=127.0.0.1:" + pg.port()}});
    ASSERT_TRUE(d.ready()) << d.stderr_text();

    TempDir tmp;
    std::string go1 = tmp / "go1", go2 = tmp / "go2";
    std::string script = "until [ -e " + go1 + " ]; do sleep 0.05; done; " +
                         psql_line(pg, "DROP TABLE t1") + "; echo first=$?; until [ -e " + go2 +
                         " ]; do sleep 0.05; done; " + psql_line(pg, "DROP TABLE t2") +
                         "; echo second=$?";
    auto agent = std::async(std::launch::async, [&d, script] {
        return d.cli({"run", "--session", "migr", "--", "/bin/sh", "-c", script},
                     std::chrono::seconds(60));
    });
    ASSERT_TRUE(wait_until([&] {
        auto s = d.cli({"status", "--json"});
        return s.out.find("\"migr\"") != std::string::npos;
    }));
    auto open = d.cli(
        {"allow", "--session", "migr", "--for", "60s", "--reason", "planned migration: drop t1"});
    ASSERT_EQ(open.status, 0) << open.err;

    std::ofstream(go1) << "";
    auto first = db_records_of(d, "migr", 1);
    ASSERT_FALSE(first.empty());
    EXPECT_EQ(first[0]["statement"], "DROP TABLE t1");
    EXPECT_EQ(first[0]["verdict"], "allowed");
    ASSERT_TRUE(first[0].contains("window")) << first[0].dump();
    EXPECT_EQ(first[0]["window"]["reason"], "planned migration: drop t1");
    EXPECT_TRUE(wait_until([&] {
        return pg.query("SELECT count(*) FROM pg_tables WHERE tablename = 't1'") == "0";
    })) << "the window did not let the drop through";

    auto end = d.cli({"allow", "--end", "--session", "migr"});
    ASSERT_EQ(end.status, 0) << end.err;
    std::ofstream(go2) << "";
    auto r = agent.get();
    EXPECT_NE(r.out.find("first=0"), std::string::npos) << r.out << r.err;
    EXPECT_EQ(r.out.find("second=0"), std::string::npos) << r.out;
    EXPECT_EQ(pg.query("SELECT count(*) FROM t2"), "1") << "the drop after the window went through";
    auto both = db_records_of(d, "migr", 2);
    ASSERT_GE(both.size(), 2u);
    EXPECT_EQ(both[1]["statement"], "DROP TABLE t2");
    EXPECT_EQ(both[1]["verdict"], "refused");
    EXPECT_TRUE(both[1]["prevented"].get<bool>());
}

TEST(DbPolicyLifecycle, DatabasesInMonitorModeRecordAndRefuseNothing) {
    KS_REQUIRE_ROOT();
    PgServer pg;
    if (!pg.ok()) GTEST_SKIP() << pg.why();
    ASSERT_EQ(pg.query("CREATE TABLE t3 (id int)"), "");
    TempDir tmp;
    std::string policy = tmp / "policy.yaml";
    std::ofstream(policy) << "version: 1\ndatabases:\n  mode: monitor\n";
    Daemon d({.policy_file = policy,
              .extra_args = {"--no-db-client-probes", "--db", "postgres=127.0.0.1:" + pg.port()}});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto r =
        d.cli({"run", "--session", "watch", "--", "/bin/sh", "-c", psql_line(pg, "DROP TABLE t3")},
              std::chrono::seconds(60));
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_EQ(pg.query("SELECT count(*) FROM pg_tables WHERE tablename = 't3'"), "0");
    auto recs = db_records_of(d, "watch", 1);
    ASSERT_FALSE(recs.empty());
    EXPECT_EQ(recs[0]["statement"], "DROP TABLE t3");
    EXPECT_EQ(recs[0]["verdict"], "would-refuse");
    EXPECT_FALSE(recs[0]["prevented"].get<bool>());
}

}  // namespace
}  // namespace ks::test
