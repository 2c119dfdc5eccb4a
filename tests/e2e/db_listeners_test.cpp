// databases.discover: a database server on ports and sockets the policy does
// not name (a private port, a private unix socket directory) is watched all
// the same, found from the server's own process: one running when the daemon
// starts, and one started after it. Real PostgreSQL and Redis servers of the
// test's own (db_servers.h); the daemon with its built-in policy, no --db.
#include "db_servers.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;

// What the daemon says it found (status databases_discovered).
std::vector<std::string> discovered(const Daemon& d) {
    std::vector<std::string> out;
    auto st = d.cli({"status", "--json"});
    auto j = json::parse(st.out, nullptr, false);
    if (j.is_discarded()) return out;
    for (const auto& e : j.value("databases_discovered", json::array()))
        out.push_back(e.value("endpoint", ""));
    return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(DbListeners, AServerOnPortsThePolicyDoesNotNameIsWatchedFromItsOwnProcess) {
    KS_REQUIRE_ROOT();
    PgServer pg;
    if (!pg.ok()) GTEST_SKIP() << pg.why();
    ASSERT_EQ(pg.query("CREATE TABLE kept (id int); INSERT INTO kept VALUES (1), (2); "
                       "CREATE TABLE gone (id int); INSERT INTO gone VALUES (1)"),
              "");
    // Unguarded, over the private port: the table is dropped.
    auto plain = run_command(pg.psql("127.0.0.1", "DROP TABLE gone"));
    ASSERT_EQ(plain.status, 0) << plain.err;
    ASSERT_EQ(pg.query("SELECT count(*) FROM pg_tables WHERE tablename = 'gone'"), "0");

    // The built-in policy names port 5432 and the standard sockets only.
    Daemon d(Daemon::Options{});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto found = discovered(d);
    EXPECT_TRUE(has(found, "postgres=127.0.0.1:" + pg.port())) << json(found).dump();
    std::string sock = pg.socket_dir() + "/.s.PGSQL." + pg.port();
    EXPECT_TRUE(has(found, "postgres=" + sock)) << json(found).dump();

    // Guarded, over TCP and over the private socket: refused, in the
    // protocol's error, and the table keeps its rows.
    auto tcp = run_guarded(d, "listeners-tcp", pg.psql("127.0.0.1", "DROP TABLE kept"));
    EXPECT_NE(tcp.err.find("killswitch: refused DROP TABLE kept"), std::string::npos) << tcp.err;
    auto unix_socket = run_guarded(d, "listeners-unix", pg.psql(pg.socket_dir(), "TRUNCATE kept"));
    EXPECT_NE(unix_socket.err.find("killswitch: refused TRUNCATE kept"), std::string::npos)
        << unix_socket.err;
    EXPECT_EQ(pg.query("SELECT count(*) FROM kept"), "2");
    auto recs = db_records_of(d, "listeners-tcp", 1);
    ASSERT_FALSE(recs.empty());
    EXPECT_EQ(recs[0].value("rule", ""), "db:drop") << recs[0].dump();

    // A server started after the daemon: watched within the discovery's
    // period (5 s), and said so in the record.
    RedisServer redis;
    if (!redis.ok()) GTEST_SKIP() << redis.why();
    ASSERT_EQ(redis.command({"SET", "k1", "v"}), "OK");
    ASSERT_TRUE(wait_until([&] { return has(discovered(d), "redis=127.0.0.1:" + redis.port()); },
                           std::chrono::seconds(15)))
        << json(discovered(d)).dump();
    auto flush = run_guarded(d, "listeners-redis", redis.cli({"FLUSHALL"}));
    EXPECT_NE(flush.out.find("ERR killswitch: refused FLUSHALL"), std::string::npos)
        << flush.out << flush.err;
    EXPECT_EQ(redis.command({"GET", "k1"}), "v");
    bool recorded = false;
    for (const auto& r : d.records())
        if (r.value("event", "") == "db_listeners")
            for (const auto& e : r.value("discovered", json::array()))
                recorded = recorded || e.value("endpoint", "") == "redis=127.0.0.1:" + redis.port();
    EXPECT_TRUE(recorded) << "no db_listeners record names the Redis server";
}

// --db names exactly what to watch: nothing is discovered beside it.
TEST(DbListeners, AnExplicitListTurnsDiscoveryOff) {
    KS_REQUIRE_ROOT();
    PgServer pg;
    if (!pg.ok()) GTEST_SKIP() << pg.why();
    ASSERT_EQ(pg.query("CREATE TABLE t (id int); INSERT INTO t VALUES (1)"), "");
    Daemon d({.extra_args = {"--db", "postgres=127.0.0.1:1"}});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    EXPECT_TRUE(discovered(d).empty()) << json(discovered(d)).dump();
    auto r = run_guarded(d, "listeners-off", pg.psql("127.0.0.1", "DROP TABLE t"));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(pg.query("SELECT count(*) FROM pg_tables WHERE tablename = 't'"), "0")
        << "an endpoint nobody named was watched";
}

}  // namespace
}  // namespace ks::test
