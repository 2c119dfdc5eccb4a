// Destructive statements from a guarded agent never reach a real PostgreSQL
// server: psql over the unix socket and over TCP, and Python's psycopg2. The
// server is the test's own (private port, data and socket directories in a
// temporary folder), started as the postgres user and stopped afterwards.
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "db_servers.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class DbGuardE2E : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0) return;
        server_ = new PgServer();
        if (!server_->ok()) return;
        std::string created =
            server_->query("CREATE TABLE accounts (id int primary key, note text)");
        std::string filled = server_->query(
            "INSERT INTO accounts SELECT g, 'row ' || g FROM generate_series(1, 100) g");
        if (created.rfind("ERROR", 0) == 0 || filled.rfind("ERROR", 0) == 0)
            setup_error_ = created + filled;
        // The test server's unix socket is watched: guarded processes may
        // reach it only through libpq (whose statements the uprobes read).
        // The relay is off: it would read the socket itself (Linux 6.7+), and
        // the uprobe layer is what is tested here (the layer of kernels
        // without cgroup/connect_unix).
        policy_dir_ = new TempDir();
        std::string policy = policy_dir_->path() + "/policy.yaml";
        std::ofstream(policy) << "version: 1\ndatabases:\n  relay: false\n";
        daemon_ =
            new Daemon(Daemon::Options{.policy_file = policy,
                                       .extra_args = {"--db", "postgres=" + server_->socket_dir() +
                                                                  "/.s.PGSQL." + server_->port()}});
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete policy_dir_;
        delete server_;
        daemon_ = nullptr;
        server_ = nullptr;
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        if (!server_->ok()) GTEST_SKIP() << server_->why();
        ASSERT_TRUE(setup_error_.empty()) << setup_error_;
        ASSERT_TRUE(daemon_->ready()) << daemon_->stderr_text();
        ASSERT_EQ(server_->query("SELECT count(*) FROM accounts"), "100");
    }

    CommandResult guarded(const std::string& session, const std::vector<std::string>& argv) {
        std::vector<std::string> cmd = {"run", "--session", session, "--"};
        cmd.insert(cmd.end(), argv.begin(), argv.end());
        return daemon_->cli(cmd, std::chrono::seconds(60));
    }

    json record_of(const std::string& session) {
        json out;
        wait_until([&] {
            for (const auto& r : daemon_->records())
                if (r.value("event", "") == "db" && r.value("session", "") == session) {
                    out = r;
                    return true;
                }
            return false;
        });
        return out;
    }

    static PgServer* server_;
    static Daemon* daemon_;
    static TempDir* policy_dir_;
    static std::string setup_error_;
};

PgServer* DbGuardE2E::server_ = nullptr;
Daemon* DbGuardE2E::daemon_ = nullptr;
TempDir* DbGuardE2E::policy_dir_ = nullptr;
std::string DbGuardE2E::setup_error_;

TEST_F(DbGuardE2E, DropTableOverTheUnixSocketNeverReachesTheServer) {
    auto r = guarded("psql-unix", server_->psql(server_->socket_dir(), "DROP TABLE accounts"));
    EXPECT_EQ(r.status, kRefusedExitStatus) << r.out << r.err;
    EXPECT_EQ(server_->query("SELECT count(*) FROM accounts"), "100");
    json rec = record_of("psql-unix");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec["db"], "postgres");
    EXPECT_EQ(rec["statement"], "DROP TABLE accounts");
    EXPECT_EQ(rec["class"], "drop");
    EXPECT_EQ(rec["verdict"], "block");
    EXPECT_EQ(rec["layer"], "uprobe");
    // psql was stopped in libpq: it reads why on its stderr before it dies.
    EXPECT_NE(r.err.find("killswitch: refused DROP TABLE accounts"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("(rule db:drop)"), std::string::npos) << r.err;
    EXPECT_NE(rec.value("explained_to", "").find("stderr (pipe)"), std::string::npos) << rec.dump();
}

TEST_F(DbGuardE2E, DeleteWithoutWhereOverTcpNeverReachesTheServer) {
    auto r = guarded("psql-tcp", server_->psql("127.0.0.1", "DELETE FROM accounts"));
    EXPECT_EQ(r.status, kRefusedExitStatus) << r.out << r.err;
    EXPECT_EQ(server_->query("SELECT count(*) FROM accounts"), "100");
    EXPECT_EQ(record_of("psql-tcp")["class"], "delete-all");
}

TEST_F(DbGuardE2E, DropAfterAHarmlessStatementInOneMessage) {
    auto r = guarded("psql-multi", server_->psql(server_->socket_dir(),
                                                 "SELECT 1; /* cleanup */ DrOp/**/TABLE accounts"));
    EXPECT_EQ(r.status, kRefusedExitStatus) << r.out << r.err;
    EXPECT_EQ(server_->query("SELECT count(*) FROM accounts"), "100");
}

TEST_F(DbGuardE2E, HarmlessLookalikesRunNormally) {
    auto r =
        guarded("psql-harmless",
                server_->psql(server_->socket_dir(),
                              "SELECT count(*) FROM accounts WHERE note <> 'drop table accounts'"));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "100\n");
    auto u = guarded("psql-update", server_->psql(server_->socket_dir(),
                                                  "UPDATE accounts SET note = 'x' WHERE id = 1"));
    EXPECT_EQ(u.status, 0) << u.err;
    EXPECT_EQ(server_->query("SELECT note FROM accounts WHERE id = 1"), "x");
    EXPECT_EQ(record_of("psql-update")["verdict"], "allow");
}

TEST_F(DbGuardE2E, Psycopg2TruncateNeverReachesTheServer) {
    if (run_command({"/usr/bin/python3", "-c", "import psycopg2"}).status != 0)
        GTEST_SKIP() << "python3-psycopg2 is not installed";
    std::string py =
        "import psycopg2\n"
        "c = psycopg2.connect(host='" +
        server_->socket_dir() + "', port=" + server_->port() +
        ", user='postgres', dbname='postgres')\n"
        "c.cursor().execute('TRUNCATE accounts')\nc.commit()\nprint('truncated')\n";
    auto r = guarded("psycopg2", {"/usr/bin/python3", "-c", py});
    EXPECT_EQ(r.status, kRefusedExitStatus) << r.out << r.err;
    EXPECT_EQ(r.out.find("truncated"), std::string::npos);
    EXPECT_EQ(server_->query("SELECT count(*) FROM accounts"), "100");
    EXPECT_EQ(record_of("psycopg2")["class"], "truncate");
}

TEST_F(DbGuardE2E, ARawClientOnTheUnixSocketIsRefusedAtConnect) {
    auto status = daemon_->cli({"status", "--json"});
    if (!json::parse(status.out)["layers"].value("db_unix_connect_rule", false))
        GTEST_SKIP() << "this kernel has no cgroup/connect_unix (Linux 6.7+)";
    std::string sock = server_->socket_dir() + "/.s.PGSQL." + server_->port();
    std::string py =
        "import socket\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n    s.connect('" +
        sock +
        "')\n    print('connected')\n"
        "except OSError as e:\n    print('refused', e.errno)\n";
    auto r = guarded("raw-unix", {"/usr/bin/python3", "-c", py});
    EXPECT_EQ(r.out, "refused 1\n") << r.out << r.err;  // EPERM
    json rec = record_of("raw-unix");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec["op"], "connect");
    EXPECT_EQ(rec["socket"], sock);
    EXPECT_EQ(rec["layer"], "connect");
    EXPECT_EQ(rec["kernel_reason"], "unix-socket");
    EXPECT_EQ(rec["verdict"], "refused");
    // psql (libpq) on the same socket is let through, and its statements are
    // read by the uprobes (HarmlessLookalikesRunNormally, DropTableOver...).
    auto ok = guarded("psql-unix-ok", server_->psql(server_->socket_dir(), "SELECT 41 + 1"));
    EXPECT_EQ(ok.status, 0) << ok.err;
    EXPECT_EQ(ok.out, "42\n");
}

TEST_F(DbGuardE2E, UnguardedClientsAreNotInspected) {
    // The test's own psql is not guarded: nothing is recorded for it, and
    // what it does happens.
    size_t before = daemon_->records().size();
    EXPECT_EQ(server_->query("CREATE TABLE scratch (id int); DROP TABLE scratch; SELECT 'ok'"),
              "ok");
    auto recs = daemon_->records();
    for (size_t i = before; i < recs.size(); ++i)
        EXPECT_NE(recs[i].value("event", ""), "db") << recs[i].dump();
}

}  // namespace
}  // namespace ks::test
