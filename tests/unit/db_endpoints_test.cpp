// Database endpoints (--db KIND=ADDRESS, databases.endpoints) and the
// policy's databases section.
#include "policy/db_endpoints.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "policy/policy.h"

namespace ks {
namespace {

std::array<uint8_t, 16> v6(const char* text) {
    std::array<uint8_t, 16> a{};
    inet_pton(AF_INET6, text, a.data());
    return a;
}

TEST(DbEndpoints, TcpAddressesAndPorts) {
    auto ep = db::parse_endpoint("postgres=127.0.0.1:5432");
    ASSERT_TRUE(ep) << ep.error().str();
    EXPECT_EQ(ep->kind, db::Kind::Postgres);
    EXPECT_EQ(ep->port, 5432);
    ASSERT_EQ(ep->addrs.size(), 1u);
    EXPECT_EQ(ep->addrs[0], v6("::ffff:127.0.0.1"));  // IPv4 as IPv4-mapped
    EXPECT_FALSE(ep->is_unix());
    EXPECT_EQ(ep->str(), "postgres=127.0.0.1:5432");

    auto six = db::parse_endpoint("mysql=[::1]:3306");
    ASSERT_TRUE(six) << six.error().str();
    EXPECT_EQ(six->kind, db::Kind::Mysql);
    ASSERT_EQ(six->addrs.size(), 1u);
    EXPECT_EQ(six->addrs[0], v6("::1"));

    for (const char* any : {"redis=*:6379", "redis=:6379"}) {
        auto a = db::parse_endpoint(any);
        ASSERT_TRUE(a) << any;
        EXPECT_TRUE(a->addrs.empty()) << any;  // every address
        EXPECT_EQ(a->port, 6379);
    }
    auto lh = db::parse_endpoint("mongodb=localhost:27017");
    ASSERT_TRUE(lh);
    EXPECT_EQ(lh->addrs.size(), 2u);  // 127.0.0.1 and ::1
    EXPECT_EQ(db::parse_endpoint("mariadb=10.0.0.5:3306")->kind, db::Kind::Mysql);
}

TEST(DbEndpoints, UnixSockets) {
    auto ep = db::parse_endpoint("postgres=/run/postgresql/.s.PGSQL.5432");
    ASSERT_TRUE(ep);
    EXPECT_TRUE(ep->is_unix());
    EXPECT_EQ(ep->unix_path, "/run/postgresql/.s.PGSQL.5432");
}

TEST(DbEndpoints, BadSpecsSayWhatIsWrong) {
    auto msg = [](const char* spec) {
        auto r = db::parse_endpoint(spec);
        return r ? std::string() : r.error().str();
    };
    EXPECT_NE(msg("postgres").find("expected KIND=ADDRESS"), std::string::npos);
    EXPECT_NE(msg("oracle=1.2.3.4:1521").find("'oracle' is not a database kind"),
              std::string::npos);
    EXPECT_NE(msg("redis=127.0.0.1").find("expected HOST:PORT"), std::string::npos);
    EXPECT_NE(msg("redis=127.0.0.1:0").find("from 1 to 65535"), std::string::npos);
    EXPECT_NE(msg("redis=127.0.0.1:70000").find("from 1 to 65535"), std::string::npos);
    EXPECT_NE(msg("redis=127.0.0.1:63x").find("'63x'"), std::string::npos);
    EXPECT_NE(msg("redis=::1:6379").find("[ADDR]:PORT"), std::string::npos);
    EXPECT_NE(msg("redis=db.example.com:6379").find("not an IP address"), std::string::npos);
    EXPECT_NE(msg("redis=").find("empty address"), std::string::npos);
}

TEST(DbEndpoints, DefaultsWatchTheStandardPortsAndSockets) {
    std::vector<std::string> got;
    for (const auto& e : db::default_endpoints()) got.push_back(e.str());
    for (const char* want : {"postgres=*:5432", "mysql=*:3306", "redis=*:6379", "mongodb=*:27017",
                             "postgres=/var/run/postgresql/.s.PGSQL.*",
                             "mysql=/var/run/mysqld/mysqld.sock", "redis=/var/run/redis/*.sock"})
        EXPECT_NE(std::find(got.begin(), got.end(), want), got.end()) << want;
    // The built-in policy lists the same.
    std::vector<std::string> policy_eps = policy::default_policy().db_endpoints;
    std::sort(got.begin(), got.end());
    std::sort(policy_eps.begin(), policy_eps.end());
    EXPECT_EQ(got, policy_eps);
}

TEST(PolicyDatabases, DefaultsRefuseWhatCannotBeRead) {
    policy::Policy p = policy::default_policy();
    EXPECT_EQ(p.db_action, policy::Action::Block);
    EXPECT_EQ(p.db_session_action, policy::SessionAction::None);
    EXPECT_TRUE(p.db_refuse_unparseable);
    EXPECT_TRUE(p.db_refuse_encrypted);
    EXPECT_EQ(p.db_statement_max, 1024);
    EXPECT_TRUE(p.db_client_probes);
    EXPECT_EQ(p.db_relay_poll_us, 100);
}

TEST(PolicyDatabases, EveryKeyIsRead) {
    auto r = policy::parse_policy(
        "databases:\n"
        "  endpoints: [postgres=10.0.0.5:5432, 'redis=[::1]:6380']\n"
        "  action: freeze\n"
        "  session: kill-session\n"
        "  unparseable: allow\n"
        "  encrypted: allow\n"
        "  statement_max: 200\n"
        "  client_probes: false\n"
        "  relay_poll_us: 0\n",
        "p.yaml");
    ASSERT_TRUE(r.policy) << (r.errors.empty() ? "" : r.errors[0].str());
    const auto& p = *r.policy;
    EXPECT_EQ(p.db_endpoints,
              (std::vector<std::string>{"postgres=10.0.0.5:5432", "redis=[::1]:6380"}));
    EXPECT_EQ(p.db_action, policy::Action::Freeze);
    EXPECT_EQ(p.db_session_action, policy::SessionAction::KillSession);
    EXPECT_FALSE(p.db_refuse_unparseable);
    EXPECT_FALSE(p.db_refuse_encrypted);
    EXPECT_EQ(p.db_statement_max, 200);
    EXPECT_FALSE(p.db_client_probes);
    EXPECT_EQ(p.db_relay_poll_us, 0);
}

TEST(PolicyDatabases, BadValuesAreReportedWhereTheyAre) {
    auto err = [](const std::string& text) {
        auto r = policy::parse_policy(text, "p.yaml");
        return r.errors.empty() ? std::string() : r.errors[0].str();
    };
    EXPECT_EQ(err("databases:\n  endpoints:\n    - postgres=1.2.3.4\n"),
              "p.yaml:3:7: error: databases.endpoints: 'postgres=1.2.3.4': expected HOST:PORT, "
              "[IPV6]:PORT, *:PORT or a unix socket path");
    // hold is the relay's (db_guard_decide_test: elsewhere it refuses).
    EXPECT_EQ(err("databases:\n  action: hold\n"), "");
    EXPECT_NE(err("databases:\n  action: wait\n").find("p.yaml:2:11: error: databases.action"),
              std::string::npos);
    EXPECT_NE(err("databases:\n  unparseable: maybe\n").find("p.yaml:2:16"), std::string::npos);
    EXPECT_NE(err("databases:\n  statement_max: 99999\n").find("from 16 to 4096"),
              std::string::npos);
    EXPECT_NE(err("databases:\n  relay_poll_us: 20000\n").find("p.yaml:2:18"), std::string::npos);
    EXPECT_NE(err("databases:\n  relay_poll_us: -1\n").find("from 0 to 10000"), std::string::npos);
    EXPECT_NE(err("databases:\n  colour: red\n").find("unknown key 'colour'"), std::string::npos);
}

}  // namespace
}  // namespace ks
