// The database relay (userspace/db_relay): guarded connections, over TCP and
// over unix sockets, go through the daemon, which judges every request with
// the full parsers. A refused request never reaches the server; the client
// reads why in its protocol's own error (psql's ERROR with SQLSTATE 42501,
// the mysql client's ERROR 1227, redis-cli's ERR), and the same connection
// goes on with the next request. The servers are the test's own
// (db_servers.h); an unguarded client checks what is left afterwards.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>

#include "db_servers.h"

namespace ks::test {
namespace {

using nlohmann::json;

// The servers and a daemon that watches them, one set per test program
// (each test runs in a program of its own under ctest).
class RelayFixture : public ::testing::Test {
  protected:
    // databases: the policy's databases section, beside no escalation (each
    // test's refusals are its own; escalation has its own tests).
    static void start(const std::string& databases) {
        if (::geteuid() != 0) return;
        pg_ = new PgServer();
        my_ = new MariaDbServer();
        redis_ = new RedisServer();
        std::vector<std::string> args = {"--no-db-client-probes"};
        setup_error_ = watch_and_seed(*pg_, *my_, *redis_, args);
        policy_dir_ = new TempDir();
        std::string policy = policy_dir_->path() + "/policy.yaml";
        std::ofstream(policy) << "version: 1\nsessions:\n  escalate_after: 0\n" << databases;
        daemon_ = new Daemon(Daemon::Options{.policy_file = policy, .extra_args = args});
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete policy_dir_;
        delete redis_;
        delete my_;
        delete pg_;
        daemon_ = nullptr;
        policy_dir_ = nullptr;
        redis_ = nullptr;
        my_ = nullptr;
        pg_ = nullptr;
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        ASSERT_TRUE(setup_error_.empty()) << setup_error_;
        ASSERT_TRUE(daemon_->ready()) << daemon_->stderr_text();
    }

    static inline PgServer* pg_ = nullptr;
    static inline MariaDbServer* my_ = nullptr;
    static inline RedisServer* redis_ = nullptr;
    static inline Daemon* daemon_ = nullptr;
    static inline TempDir* policy_dir_ = nullptr;
    static inline std::string setup_error_;
};

class DbRelayE2E : public RelayFixture {
  protected:
    static void SetUpTestSuite() { start(""); }

    static json relay_status() {
        auto st = daemon_->cli({"status", "--json"});
        return json::parse(st.out)["layers"].value("db_relay", json::object());
    }
    // The relay reads unix sockets where the kernel can send them there.
    static bool unix_relayed() {
        auto st = daemon_->cli({"status", "--json"});
        return json::parse(st.out)["layers"].value("db_unix_connect_rule", false);
    }

    // psql over TCP reading a file, each statement its own Query, going on
    // after an error.
    static std::vector<std::string> psql_file(const std::string& file) {
        auto argv = pg_->psql("127.0.0.1", "");
        argv.resize(argv.size() - 2);
        argv.erase(std::find(argv.begin(), argv.end(), "ON_ERROR_STOP=1") - 1,
                   std::find(argv.begin(), argv.end(), "ON_ERROR_STOP=1") + 1);
        argv.insert(argv.end(), {"-f", file});
        return argv;
    }
    CommandResult guarded(const std::string& session, const std::vector<std::string>& argv) {
        return run_guarded(*daemon_, session, argv);
    }
    // A PostgreSQL table of rows 'row 1' to 'row N', keyed by a serial id,
    // each made now; "" when made.
    static std::string rows_table(const std::string& name, int rows) {
        return pg_->query("CREATE TABLE " + name +
                          " (id serial PRIMARY KEY, v text NOT NULL, made timestamptz NOT NULL "
                          "DEFAULT now()); INSERT INTO " +
                          name + " (v) SELECT 'row ' || g FROM generate_series(1, " +
                          std::to_string(rows) + ") g");
    }
    CommandResult guarded_sh(const std::string& session, const std::string& script) {
        return guarded(session, {"/bin/sh", "-c", script});
    }
    // The mysql client over TCP reading a file into database db, each
    // statement in turn, going on after an error; rows tab-separated.
    CommandResult guarded_mysql_file(const std::string& session, const std::string& db,
                                     const std::string& file) {
        return guarded_sh(session, "mysql --force -N -B -u root -h 127.0.0.1 -P " + my_->port() +
                                       " " + db + " < " + file);
    }
    std::vector<json> records_of(const std::string& session, size_t n = 1) {
        return db_records_of(*daemon_, session, n);
    }
    json refusal_of(const std::string& session) {
        for (const auto& r : records_of(session))
            if (r.value("verdict", "") == "refused" && r.contains("explained_to")) return r;
        return nullptr;
    }

    void expect_pg_refusal_then_more(const std::string& host, const std::string& session) {
        auto argv = pg_->psql(host, "DROP TABLE accounts");
        // psql runs each -c in turn on one connection and goes on after an
        // error; VERBOSITY shows the SQLSTATE.
        argv.insert(argv.end(), {"-c", "SELECT count(*) FROM accounts", "-v", "VERBOSITY=verbose"});
        argv.erase(std::find(argv.begin(), argv.end(), "ON_ERROR_STOP=1") - 1,
                   std::find(argv.begin(), argv.end(), "ON_ERROR_STOP=1") + 1);
        auto r = guarded(session, argv);
        EXPECT_NE(r.err.find("ERROR:  42501: killswitch: refused DROP TABLE accounts"),
                  std::string::npos)
            << r.err;
        EXPECT_NE(r.err.find("rule db:drop"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("killswitch allow --session " + session), std::string::npos) << r.err;
        EXPECT_EQ(r.out, "100\n") << "the connection goes on after the refusal\n" << r.err;
        EXPECT_EQ(pg_->query("SELECT count(*) FROM accounts"), "100");
        json rec = refusal_of(session);
        ASSERT_FALSE(rec.is_null()) << session;
        EXPECT_EQ(rec["layer"], "relay");
        EXPECT_EQ(rec["rule"], "db:drop");
        EXPECT_EQ(rec["statement"], "DROP TABLE accounts");
        EXPECT_EQ(rec["prevented"], true);
        EXPECT_NE(rec.value("explained_to", "").find("ErrorResponse"), std::string::npos) << rec;
    }
};

#define KS_REQUIRE_SERVER(s) \
    if (!(s)->ok()) GTEST_SKIP() << (s)->why()

TEST_F(DbRelayE2E, RelayListensAndSaysSo) {
    json st = relay_status();
    EXPECT_EQ(st.value("active", false), true) << st;
    EXPECT_GT(st.value("port4", 0), 0) << st;
}

// After traffic the relay's thread looks for the next bytes for
// databases.relay_poll_us (100 by default) before it sleeps: over 300
// round trips, some answers and requests are found that way. (What it saves
// is measured by bench/db_overhead.sh and bench/db_clients.sh.)
TEST_F(DbRelayE2E, AfterTrafficTheRelayLooksForTheNextBytesBeforeItSleeps) {
    KS_REQUIRE_SERVER(pg_);
    TempDir tmp;
    {
        std::ofstream f(tmp.path() + "/selects.sql");
        for (int i = 1; i <= 300; ++i) f << "SELECT " << i << ";\n";
    }
    json before = relay_status();
    EXPECT_EQ(before.value("poll_us", -1), 100) << before;
    auto r = guarded("relay-pg-poll", psql_file(tmp.path() + "/selects.sql"));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("300\n"), std::string::npos) << r.out;
    json after = relay_status();
    EXPECT_GT(after.value("waits_polled", 0), before.value("waits_polled", 0)) << after;
}

TEST_F(DbRelayE2E, PsqlOverTcpReadsA42501ErrorAndItsConnectionGoesOn) {
    KS_REQUIRE_SERVER(pg_);
    expect_pg_refusal_then_more("127.0.0.1", "relay-pg-tcp");
}

TEST_F(DbRelayE2E, PsqlOverTheUnixSocketIsJudgedPerStatement) {
    KS_REQUIRE_SERVER(pg_);
    if (!unix_relayed()) GTEST_SKIP() << "this kernel has no cgroup/connect_unix (Linux 6.7+)";
    auto ok =
        guarded("relay-pg-unix-ok", pg_->psql(pg_->socket_dir(), "SELECT count(*) FROM accounts"));
    EXPECT_EQ(ok.status, 0) << ok.err;
    EXPECT_EQ(ok.out, "100\n");
    expect_pg_refusal_then_more(pg_->socket_dir(), "relay-pg-unix");
}

TEST_F(DbRelayE2E, ALargeHarmlessStatementIsJudgedWholeAndRuns) {
    KS_REQUIRE_SERVER(pg_);
    // Far over the kernel's 4,096-byte window.
    std::string big(200'000, 'x');
    TempDir tmp;
    std::ofstream(tmp.path() + "/big.sql")
        << "CREATE TABLE big (note text); INSERT INTO big VALUES ('" + big +
               "'); SELECT length(note) FROM big;\n";
    auto argv = pg_->psql("127.0.0.1", "");
    argv.resize(argv.size() - 2);  // no -c: the file instead
    argv.insert(argv.end(), {"-f", tmp.path() + "/big.sql"});
    auto r = guarded("relay-pg-big", argv);
    EXPECT_EQ(r.status, 0) << r.err.substr(0, 500);
    EXPECT_EQ(r.out, "200000\n");
    // One statement larger than what the relay buffers ahead of the server
    // (4 MiB): read whole all the same, judged, run.
    std::string huge(6'000'000, 'y');
    std::ofstream(tmp.path() + "/huge.sql")
        << "INSERT INTO big VALUES ('" + huge + "'); SELECT max(length(note)) FROM big;\n";
    argv.back() = tmp.path() + "/huge.sql";
    auto h = guarded("relay-pg-huge", argv);
    EXPECT_EQ(h.status, 0) << h.err.substr(0, 500);
    EXPECT_EQ(h.out, "6000000\n");
    EXPECT_EQ(pg_->query("DROP TABLE big"), "");
}

TEST_F(DbRelayE2E, ADropThatLosesNoRowPassesAfterTheServerIsAskedOneWithRowsIsRefused) {
    KS_REQUIRE_SERVER(pg_);
    ASSERT_EQ(pg_->query("CREATE TABLE empty_t (id int, note text); "
                         "CREATE TABLE full_t (id int, note text); "
                         "INSERT INTO full_t VALUES (1, 'kept')"),
              "");
    TempDir tmp;
    // Each line its own Query; psql goes on after an error.
    std::ofstream(tmp.path() + "/drops.sql") << "BEGIN;\n"
                                                "ALTER TABLE empty_t DROP COLUMN note;\n"
                                                "SELECT 'still in the transaction';\n"
                                                "COMMIT;\n"
                                                "DROP TABLE IF EXISTS no_such_table;\n"
                                                "ALTER TABLE full_t DROP COLUMN note;\n"
                                                "DROP TABLE empty_t;\n"
                                                "BEGIN;\n"
                                                "DROP TABLE full_t;\n"
                                                "ROLLBACK;\n"
                                                "SELECT count(*) FROM full_t;\n";
    auto r = guarded("relay-pg-rows", psql_file(tmp.path() + "/drops.sql"));
    // The DROP COLUMN of the empty table ran inside the client's transaction
    // and left it usable (the check's savepoint is gone, nothing aborted).
    EXPECT_NE(r.out.find("still in the transaction"), std::string::npos) << r.out << r.err;
    EXPECT_EQ(pg_->query("SELECT count(*) FROM information_schema.columns WHERE "
                         "table_name = 'empty_t' AND column_name = 'note'"),
              "0");
    EXPECT_EQ(pg_->query("SELECT to_regclass('empty_t') IS NULL"), "t") << "DROP TABLE empty_t";
    // The table with a row keeps its column and its row, in and out of a
    // transaction block; the client reads why.
    EXPECT_EQ(pg_->query("SELECT count(*) FROM full_t WHERE note = 'kept'"), "1");
    EXPECT_NE(r.err.find("killswitch: refused ALTER TABLE full_t DROP COLUMN note"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("the server says \"full_t\" has rows"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("killswitch: refused DROP TABLE full_t"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("1\n"), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find("refused DROP TABLE IF EXISTS"), std::string::npos)
        << "a missing table passes: " << r.err;

    auto recs = records_of("relay-pg-rows", 5);
    int passed = 0, refused = 0;
    for (const auto& rec : recs) {
        if (!rec.contains("rows_checked")) continue;
        std::string rows = rec["rows_checked"][0].value("rows", "");
        if (rec.value("verdict", "") == "allow") {
            ++passed;
            EXPECT_EQ(rec["class"], "schema-change") << rec;
            EXPECT_TRUE(rows == "empty" || rows == "missing") << rec;
        } else {
            ++refused;
            EXPECT_EQ(rec["verdict"], "refused") << rec;
            EXPECT_EQ(rows, "rows") << rec;
        }
    }
    EXPECT_EQ(passed, 3) << "DROP COLUMN and DROP TABLE of empty_t, DROP TABLE IF EXISTS";
    EXPECT_EQ(refused, 2) << "DROP COLUMN and DROP TABLE of full_t";
    EXPECT_EQ(pg_->query("DROP TABLE full_t"), "");
}

// databases.effect: a WHERE that reaches every row in a spelling the text
// cannot show (id > 0, IS NOT NULL) is judged by what the server's planner
// says it reaches; one that names a row goes on. A column rewritten to a
// constant is the column's destruction.
TEST_F(DbRelayE2E, AWhereThatReachesEveryRowIsJudgedByWhatTheServerSaysItReaches) {
    KS_REQUIRE_SERVER(pg_);
    auto made = [&](const std::string& t) { return rows_table(t, 200); };
    // Unguarded, each statement destroys what it reaches.
    ASSERT_EQ(made("effect_ctl"), "");
    auto plain = run_command(pg_->psql("127.0.0.1",
                                       "ALTER TABLE effect_ctl ALTER COLUMN v TYPE text "
                                       "USING 'gone'; "
                                       "SELECT count(DISTINCT v) || ' ' || min(v) FROM effect_ctl; "
                                       "UPDATE effect_ctl SET v = 'x' WHERE v IS NOT NULL; "
                                       "DELETE FROM effect_ctl WHERE id > 0; "
                                       "SELECT count(*) FROM effect_ctl"));
    EXPECT_EQ(plain.out, "1 gone\n0\n") << plain.err;
    ASSERT_EQ(pg_->query("DROP TABLE effect_ctl"), "");

    ASSERT_EQ(made("effect_t"), "");
    TempDir tmp;
    std::ofstream(tmp.path() + "/effect.sql")
        << "DELETE FROM effect_t WHERE id > 0;\n"
           "UPDATE effect_t SET v = 'x' WHERE v IS NOT NULL;\n"
           "DELETE FROM effect_t WHERE id = 7;\n"
           "UPDATE effect_t SET v = 'changed' WHERE id = 8;\n"
           "BEGIN;\n"
           "SELECT 'in the block';\n"
           "DELETE FROM effect_t WHERE id >= 1;\n"
           "ROLLBACK;\n"
           "ALTER TABLE effect_t ALTER COLUMN v TYPE text USING 'gone';\n"
           // With statistics, the first probe decides; through a view, the
           // view's rows count.
           "ANALYZE effect_t;\n"
           "DELETE FROM effect_t WHERE v LIKE 'row %';\n"
           "CREATE VIEW effect_v AS SELECT * FROM effect_t;\n"
           "DELETE FROM effect_v WHERE id > 0;\n"
           "SELECT count(*) || ' rows, ' || count(*) FILTER (WHERE v = 'changed') || "
           "' changed' FROM effect_t;\n";
    auto r = guarded("relay-pg-effect", psql_file(tmp.path() + "/effect.sql"));
    // What the server keeps: 200 rows less the one the WHERE named, their
    // values but the one it named.
    EXPECT_EQ(pg_->query("SELECT count(*) FROM effect_t"), "199") << r.err;
    EXPECT_EQ(pg_->query("SELECT count(*) FROM effect_t WHERE v LIKE 'row %'"), "198");
    EXPECT_EQ(pg_->query("SELECT v FROM effect_t WHERE id = 8"), "changed");
    EXPECT_NE(r.out.find("199 rows, 1 changed"), std::string::npos) << r.out << r.err;
    EXPECT_NE(r.out.find("in the block"), std::string::npos) << r.out;
    // The client reads why, statement by statement.
    for (const char* what :
         {"refused DELETE FROM effect_t WHERE id > 0", "refused UPDATE effect_t SET v = 'x'",
          "refused DELETE FROM effect_t WHERE id >= 1",
          "refused ALTER TABLE effect_t ALTER COLUMN v TYPE text USING 'gone'",
          "refused DELETE FROM effect_t WHERE v LIKE 'row %'",
          "refused DELETE FROM effect_v WHERE id > 0"})
        EXPECT_NE(r.err.find(std::string("killswitch: ") + what), std::string::npos) << what << "\n"
                                                                                     << r.err;
    EXPECT_NE(r.err.find("reaches about 200 of 200 rows of public.effect_t"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("from the table's statistics"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("WHERE id = 7"), std::string::npos) << r.err;

    int deletes = 0, updates = 0;
    for (const auto& rec : records_of("relay-pg-effect", 6)) {
        if (rec.value("verdict", "") != "refused" || !rec.contains("reached")) continue;
        const json& n = rec["reached"][0];
        EXPECT_EQ(n.value("table", ""), "public.effect_t") << rec;
        EXPECT_GE(n.value("rows", 0.0), 190.0) << rec;
        EXPECT_GE(n.value("of", 0.0), 190.0) << rec;
        if (rec["rule"] == "db:delete-all") ++deletes;
        if (rec["rule"] == "db:update-all") ++updates;
        EXPECT_EQ(rec["layer"], "relay");
    }
    EXPECT_EQ(deletes, 4) << "id > 0, id >= 1 in a block, LIKE, through the view";
    EXPECT_EQ(updates, 1);

    // One request of several statements (psql -c sends them as one Query):
    // the probe stands for what comes before the DELETE in it.
    auto one = guarded(
        "relay-pg-effect-one",
        pg_->psql("127.0.0.1", "BEGIN; SELECT 1; DELETE FROM effect_t WHERE id < 1000000; COMMIT"));
    EXPECT_NE(one.err.find("killswitch: refused DELETE FROM effect_t WHERE id < 1000000"),
              std::string::npos)
        << one.err;
    EXPECT_EQ(pg_->query("SELECT count(*) FROM effect_t"), "199");

    // A key the connection learned stops counting once a column is renamed
    // into its place: "id = 1" then names every row.
    ASSERT_EQ(pg_->query("CREATE TABLE effect_k (id serial PRIMARY KEY, n int NOT NULL DEFAULT 1); "
                         "INSERT INTO effect_k SELECT FROM generate_series(1, 50)"),
              "");
    std::ofstream(tmp.path() + "/rename.sql") << "UPDATE effect_k SET n = 1 WHERE id = 3;\n"
                                                 "ALTER TABLE effect_k RENAME COLUMN id TO k;\n"
                                                 "ALTER TABLE effect_k RENAME COLUMN n TO id;\n"
                                                 "DELETE FROM effect_k WHERE id = 1;\n";
    auto renamed = guarded("relay-pg-effect-rename", psql_file(tmp.path() + "/rename.sql"));
    EXPECT_EQ(pg_->query("SELECT count(*) FROM effect_k"), "50") << renamed.err;
    EXPECT_NE(renamed.err.find("killswitch: refused DELETE FROM effect_k WHERE id = 1"),
              std::string::npos)
        << renamed.err;
    EXPECT_EQ(pg_->query("DROP TABLE effect_k"), "");
    EXPECT_EQ(pg_->query("DROP VIEW effect_v; DROP TABLE effect_t"), "");
}

// The unique keys one connection's probe showed spare the next process's
// connection (same server, user and database) its probe; a request that
// changes what the table's name means is pinned by none of them.
TEST_F(DbRelayE2E, AKeyLearnedOnOneConnectionServesTheNextUntilANameMayMeanAnotherTable) {
    KS_REQUIRE_SERVER(pg_);
    // public.effect_s has a key on id; shadow.effect_s, the same name in
    // another schema, has fifty rows with id 1 and no key.
    ASSERT_EQ(pg_->query("CREATE TABLE effect_s (id serial PRIMARY KEY, v text); "
                         "INSERT INTO effect_s (v) SELECT 'row' FROM generate_series(1, 50); "
                         "CREATE SCHEMA shadow; CREATE TABLE shadow.effect_s (id int, v text); "
                         "INSERT INTO shadow.effect_s SELECT 1, 'row' FROM generate_series(1, 50); "
                         "ANALYZE effect_s; ANALYZE shadow.effect_s"),
              "");
    auto asked = [] { return relay_status().value("asked_daemon", 0); };
    auto first = guarded("relay-pg-keys-1",
                         pg_->psql("127.0.0.1", "UPDATE effect_s SET v = 'one' WHERE id = 3"));
    EXPECT_EQ(first.status, 0) << first.err;
    int before = asked();
    auto second = guarded("relay-pg-keys-2",
                          pg_->psql("127.0.0.1", "UPDATE effect_s SET v = 'two' WHERE id = 4"));
    EXPECT_EQ(second.status, 0) << second.err;
    EXPECT_EQ(pg_->query("SELECT string_agg(v, ',' ORDER BY id) FROM effect_s WHERE id IN (3, 4)"),
              "one,two");
    EXPECT_EQ(asked(), before) << "the second process's UPDATE ... WHERE id = 4 waited for a probe";

    // SET search_path in the same request: "effect_s" is shadow.effect_s,
    // where id = 1 is every row. Asked, and refused. (An UPDATE: the relay's
    // thread passes it by itself when a learned key pins it; every DELETE
    // goes to the daemon to be counted, databases.volume.)
    auto shadowed =
        guarded("relay-pg-keys-3", pg_->psql("127.0.0.1",
                                             "SET search_path TO shadow, public; "
                                             "UPDATE effect_s SET v = 'gone' WHERE id = 1"));
    EXPECT_EQ(pg_->query("SELECT count(*) FROM shadow.effect_s WHERE v = 'row'"), "50")
        << shadowed.err;
    EXPECT_NE(shadowed.err.find("killswitch: refused UPDATE effect_s SET v = 'gone' WHERE id = 1"),
              std::string::npos)
        << shadowed.err;
    EXPECT_NE(shadowed.err.find("50 of 50 rows of shadow.effect_s"), std::string::npos)
        << shadowed.err;
    // And every connection forgot: the next one's UPDATE is asked again.
    before = asked();
    auto again = guarded("relay-pg-keys-4",
                         pg_->psql("127.0.0.1", "UPDATE effect_s SET v = 'four' WHERE id = 5"));
    EXPECT_EQ(again.status, 0) << again.err;
    EXPECT_GT(asked(), before) << "asked again after the SET";
    EXPECT_EQ(pg_->query("SELECT v FROM effect_s WHERE id = 5"), "four");
    EXPECT_EQ(pg_->query("DROP SCHEMA shadow CASCADE; DROP TABLE effect_s"), "");
}

// databases.effect over MySQL/MariaDB: the server counts, on the client's
// own connection once it owes the client nothing, the rows a DELETE's or an
// UPDATE's WHERE reaches and the rows of its table.
TEST_F(DbRelayE2E, MysqlAWhereThatReachesEveryRowIsJudgedByWhatTheServerCounts) {
    KS_REQUIRE_SERVER(my_);
    auto made = [&](const std::string& t) {
        return my_->query("CREATE DATABASE IF NOT EXISTS eff; CREATE TABLE eff." + t +
                          " (id int PRIMARY KEY, v text NOT NULL, n int NOT NULL); USE eff; "
                          "INSERT INTO " +
                          t + " SELECT seq, concat('row ', seq), seq FROM seq_1_to_200");
    };
    // Unguarded, each of these destroys every row it reaches.
    ASSERT_EQ(made("ctl"), "");
    auto plain = run_command(
        my_->mysql("UPDATE eff.ctl SET v = 'x' WHERE v IS NOT NULL; "
                   "SELECT count(DISTINCT v) FROM eff.ctl; DELETE FROM eff.ctl WHERE id > 0; "
                   "SELECT count(*) FROM eff.ctl"));
    EXPECT_EQ(plain.out, "1\n0\n") << plain.err;
    ASSERT_EQ(my_->query("DROP TABLE eff.ctl"), "");

    ASSERT_EQ(made("t"), "");
    TempDir tmp;
    std::ofstream(tmp.path() + "/effect.sql") << "DELETE FROM t WHERE id > 0;\n"
                                                 "UPDATE t SET v = 'x' WHERE v IS NOT NULL;\n"
                                                 "DELETE FROM t WHERE n >= 0;\n"
                                                 "DELETE FROM t WHERE id = 7;\n"
                                                 "UPDATE t SET v = 'changed' WHERE id = 8;\n"
                                                 "DELETE FROM t WHERE n > 190;\n"
                                                 "DELETE FROM t WHERE id > 0 ORDER BY id LIMIT 3;\n"
                                                 "BEGIN;\n"
                                                 "INSERT INTO t VALUES (1000, 'new', 1000);\n"
                                                 "DELETE FROM t WHERE id >= 1;\n"
                                                 "DELETE FROM t WHERE id = 1000;\n"
                                                 "COMMIT;\n"
                                                 "SELECT count(*) FROM t;\n";
    std::vector<std::pair<std::string, std::string>> ways = {
        {"relay-my-effect-tcp", "-h 127.0.0.1 -P " + my_->port()}};
    if (unix_relayed()) ways.push_back({"relay-my-effect-unix", "-S " + my_->socket()});
    for (const auto& [session, how] : ways) {
        SCOPED_TRACE(session);
        ASSERT_EQ(my_->query("USE eff; DELETE FROM t; INSERT INTO t SELECT seq, concat('row ', "
                             "seq), seq FROM seq_1_to_200"),
                  "");
        auto r = guarded_sh(
            session, "mysql --force -N -B -u root " + how + " eff < " + tmp.path() + "/effect.sql");
        // 200 - id 7 - n 191..200 - 3 by the LIMIT; the transaction's row
        // came and went.
        EXPECT_EQ(r.out, "186\n") << r.err;
        EXPECT_EQ(my_->query("SELECT count(*) FROM eff.t"), "186");
        EXPECT_EQ(my_->query("SELECT v FROM eff.t WHERE id = 8"), "changed");
        EXPECT_EQ(my_->query("SELECT count(*) FROM eff.t WHERE v LIKE 'row %'"), "185");
        for (const char* refused :
             {"killswitch: refused DELETE FROM t WHERE id > 0: DELETE whose WHERE reaches 200 of "
              "200 rows of eff.t (counted by the server",
              "killswitch: refused UPDATE t SET v = 'x' WHERE v IS NOT NULL",
              "killswitch: refused DELETE FROM t WHERE n >= 0",
              "killswitch: refused DELETE FROM t WHERE id >= 1: DELETE whose WHERE reaches 187 "
              "of 187 rows"})
            EXPECT_NE(r.err.find(refused), std::string::npos) << refused << "\n" << r.err;
        EXPECT_NE(r.err.find("ERROR 1227 (42000)"), std::string::npos) << r.err;
        EXPECT_EQ(r.err.find("WHERE id = 7"), std::string::npos) << r.err;
        EXPECT_EQ(r.err.find("n > 190"), std::string::npos) << r.err;
        EXPECT_EQ(r.err.find("LIMIT 3"), std::string::npos) << r.err;

        int deletes = 0, updates = 0;
        for (const auto& rec : records_of(session, 4)) {
            if (rec.value("verdict", "") != "refused" || !rec.contains("reached")) continue;
            const json& n = rec["reached"][0];
            EXPECT_EQ(n.value("table", ""), "eff.t") << rec;
            EXPECT_GE(n.value("rows", 0.0), 187.0) << rec;
            EXPECT_EQ(n.value("rows", 0.0), n.value("of", -1.0)) << rec;
            EXPECT_EQ(rec["layer"], "relay");
            EXPECT_EQ(rec["prevented"], true);
            if (rec["rule"] == "db:delete-all") ++deletes;
            if (rec["rule"] == "db:update-all") ++updates;
        }
        EXPECT_EQ(deletes, 3) << "id > 0, n >= 0, id >= 1 in the transaction";
        EXPECT_EQ(updates, 1);
    }
    // A name that means another table after USE is asked about again: the
    // key of eff.t pins nothing in eff2, whose t has none.
    ASSERT_EQ(my_->query("CREATE DATABASE eff2; USE eff2; CREATE TABLE t (id int, v text); "
                         "INSERT INTO t SELECT 1, 'same id' FROM seq_1_to_50"),
              "");
    auto use = guarded_sh("relay-my-effect-use",
                          "printf 'UPDATE t SET v = \"seen\" WHERE id = 9;\\nUSE eff2;\\n"
                          "DELETE FROM t WHERE id = 1;\\nSELECT count(*) FROM t;\\n' | "
                          "mysql --force -N -B -u root -h 127.0.0.1 -P " +
                              my_->port() + " eff");
    EXPECT_EQ(use.out, "50\n") << use.err;
    EXPECT_NE(use.err.find("killswitch: refused DELETE FROM t WHERE id = 1: DELETE whose WHERE "
                           "reaches 50 of 50 rows of eff2.t"),
              std::string::npos)
        << use.err;
    EXPECT_EQ(my_->query("SELECT v FROM eff.t WHERE id = 9"), "seen");
    EXPECT_EQ(my_->query("DROP DATABASE eff; DROP DATABASE eff2"), "");
}

// DELETE and UPDATE of several tables (a join, USING, the multi-table
// form with one table): each table they delete from or update is counted.
TEST_F(DbRelayE2E, MysqlADeleteOrUpdateOfSeveralTablesIsCountedTableByTable) {
    KS_REQUIRE_SERVER(my_);
    auto seed = [&] {
        return my_->query(
            "DROP DATABASE IF EXISTS multi; CREATE DATABASE multi; USE multi; "
            "CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL); "
            "CREATE TABLE u (id int PRIMARY KEY, n int NOT NULL); "
            "INSERT INTO t SELECT seq, concat('row ', seq) FROM seq_1_to_200; "
            "INSERT INTO u SELECT seq, seq FROM seq_1_to_200");
    };
    // Unguarded, the multi-table form of a single table loses every row.
    ASSERT_EQ(seed(), "");
    auto plain =
        run_command(my_->mysql("USE multi; DELETE t FROM t WHERE id > 0; SELECT count(*) FROM t"));
    EXPECT_EQ(plain.out, "0\n") << plain.err;

    ASSERT_EQ(seed(), "");
    TempDir tmp;
    std::ofstream(tmp.path() + "/multi.sql")
        << "DELETE t FROM t WHERE id > 0;\n"
           "DELETE a FROM t AS a JOIN u ON u.id = a.id WHERE u.n > 0;\n"
           "DELETE FROM t USING t JOIN u ON u.id = t.id WHERE u.n >= 0;\n"
           "UPDATE t JOIN u ON u.id = t.id SET t.v = 'x' WHERE u.n > 0;\n"
           "DELETE t FROM t JOIN u ON u.id = t.id WHERE u.n > 195;\n"
           "UPDATE t JOIN u ON u.id = t.id SET t.v = 'changed' WHERE u.id = 8;\n"
           "SELECT count(*) FROM t;\n";
    auto r = guarded_mysql_file("relay-my-multi", "multi", tmp.path() + "/multi.sql");
    EXPECT_EQ(r.out, "195\n") << r.err;
    EXPECT_EQ(my_->query("SELECT count(*) FROM multi.t WHERE v LIKE 'row %'"), "194");
    EXPECT_EQ(my_->query("SELECT v FROM multi.t WHERE id = 8"), "changed");
    EXPECT_EQ(my_->query("SELECT count(*) FROM multi.u"), "200");
    for (const char* refused :
         {"killswitch: refused DELETE t FROM t WHERE id > 0: DELETE whose WHERE reaches 200 of "
          "200 rows of multi.t",
          "killswitch: refused DELETE a FROM t AS a JOIN u",
          "killswitch: refused DELETE FROM t USING t JOIN u",
          "killswitch: refused UPDATE t JOIN u ON u.id = t.id SET t.v = 'x'"})
        EXPECT_NE(r.err.find(refused), std::string::npos) << refused << "\n" << r.err;
    EXPECT_EQ(r.err.find("u.n > 195"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("'changed'"), std::string::npos) << r.err;
    EXPECT_EQ(my_->query("DROP DATABASE multi"), "");
}

// MySQL's stored programs alike: a procedure's or trigger's DELETE or
// UPDATE is counted when it is created, or pinned by a key held equal to
// a parameter or NEW's column.
TEST_F(DbRelayE2E, MysqlAStoredProgramThatWouldReachEveryRowIsRefusedWhenCreated) {
    KS_REQUIRE_SERVER(my_);
    auto seed = [&] {
        return my_->query(
            "DROP DATABASE IF EXISTS progs; CREATE DATABASE progs; USE progs; "
            "CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL); CREATE TABLE log (id int); "
            "INSERT INTO t SELECT seq, concat('row ', seq) FROM seq_1_to_200");
    };
    // A cursor loop deleting one row a round by its key.
    const std::string sweep =
        "DELIMITER //\n"
        "CREATE PROCEDURE sweep() BEGIN DECLARE done INT DEFAULT 0; DECLARE v INT; "
        "DECLARE c CURSOR FOR SELECT id FROM t; DECLARE CONTINUE HANDLER FOR NOT FOUND SET "
        "done = 1; OPEN c; l: LOOP FETCH c INTO v; IF done THEN LEAVE l; END IF; "
        "DELETE FROM t WHERE id = v; END LOOP; CLOSE c; END//\n"
        "DELIMITER ;\n"
        "CALL sweep();\n";
    // Unguarded, a procedure created in one request empties the table in
    // the next, and so does the loop.
    ASSERT_EQ(seed(), "");
    auto plain = run_command(my_->mysql(
        "USE progs; CREATE PROCEDURE wipe_ctl() DELETE FROM t WHERE id > 0; CALL wipe_ctl(); "
        "SELECT count(*) FROM t"));
    EXPECT_EQ(plain.out, "0\n") << plain.err;
    ASSERT_EQ(seed(), "");
    TempDir tmp;
    std::ofstream(tmp.path() + "/sweep.sql") << sweep << "SELECT count(*) FROM t;\n";
    auto swept = run_command({"/bin/sh", "-c",
                              "mysql -N -B -u root -h 127.0.0.1 -P " + my_->port() + " progs < " +
                                  tmp.path() + "/sweep.sql"});
    EXPECT_EQ(swept.out, "0\n") << swept.err;

    ASSERT_EQ(seed(), "");
    std::ofstream(tmp.path() + "/progs.sql")
        << "CREATE PROCEDURE wipe() DELETE FROM t WHERE id > 0;\n"
           "CALL wipe();\n"
        << sweep
        << "DELIMITER //\n"
           "CREATE PROCEDURE purge(IN cutoff INT) BEGIN DELETE FROM t WHERE id > cutoff; END//\n"
           "DELIMITER ;\n"
           "CREATE TRIGGER blank AFTER INSERT ON log FOR EACH ROW "
           "UPDATE t SET v = 'x' WHERE v IS NOT NULL;\n"
           // What applications make every day: one row a call, a few rows.
           "CREATE PROCEDURE drop_one(IN p_id INT) DELETE FROM t WHERE id = p_id;\n"
           "CALL drop_one(5);\n"
           "CREATE TRIGGER touch AFTER INSERT ON log FOR EACH ROW "
           "UPDATE t SET v = 'seen' WHERE id = NEW.id;\n"
           "INSERT INTO log VALUES (7);\n"
           "DELIMITER //\n"
           "CREATE PROCEDURE tail() BEGIN DECLARE n INT DEFAULT 0; "
           "DELETE FROM t WHERE id > 195; END//\n"
           "DELIMITER ;\n"
           "CALL tail();\n"
           "SELECT count(*) FROM t;\n";
    auto r = guarded_mysql_file("relay-my-progs", "progs", tmp.path() + "/progs.sql");
    EXPECT_EQ(r.out, "194\n") << r.err;
    EXPECT_EQ(my_->query("SELECT count(*) FROM progs.t WHERE v LIKE 'row %'"), "193");
    EXPECT_EQ(my_->query("SELECT v FROM progs.t WHERE id = 7"), "seen");
    EXPECT_EQ(my_->query("SELECT group_concat(ROUTINE_NAME ORDER BY ROUTINE_NAME) FROM "
                         "information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'progs'"),
              "drop_one,tail");
    EXPECT_EQ(my_->query("SELECT group_concat(TRIGGER_NAME) FROM information_schema.TRIGGERS "
                         "WHERE TRIGGER_SCHEMA = 'progs'"),
              "touch");
    for (const char* refused :
         {"killswitch: refused CREATE PROCEDURE wipe() DELETE FROM t WHERE id > 0: CREATE "
          "PROCEDURE whose body runs DELETE whose WHERE reaches 200 of 200 rows of progs.t",
          "whose reach could not be learned: its WHERE reads values each call gives (cutoff)",
          "killswitch: refused CREATE TRIGGER blank"})
        EXPECT_NE(r.err.find(refused), std::string::npos) << refused << "\n" << r.err;
    EXPECT_NE(r.err.find("killswitch: refused CREATE PROCEDURE sweep()"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("the program has a loop it may run in"), std::string::npos) << r.err;
    std::map<std::string, int> rules;
    for (const auto& rec : records_of("relay-my-progs", 4))
        if (rec.value("verdict", "") == "refused") ++rules[rec.value("rule", "")];
    EXPECT_EQ(rules["db:delete-all"], 1);
    EXPECT_EQ(rules["db:unparseable"], 2) << "purge's call value, sweep's loop";
    EXPECT_EQ(rules["db:update-all"], 1);
    EXPECT_EQ(my_->query("DROP DATABASE progs"), "");
}

TEST_F(DbRelayE2E, MysqlClientReadsAnErr1227AndGoesOn) {
    KS_REQUIRE_SERVER(my_);
    std::vector<std::pair<std::string, std::string>> ways = {
        {"relay-my-tcp", "-h 127.0.0.1 -P " + my_->port()}};
    if (unix_relayed()) ways.push_back({"relay-my-unix", "-S " + my_->socket()});
    for (const auto& [session, how] : ways) {
        // Statements from stdin: --force goes on after an error there (not
        // with -e, whatever the server).
        auto r = guarded_sh(session,
                            "printf 'DROP DATABASE d;\\nSELECT count(*) FROM d.t;\\n' | "
                            "mysql --force -N -B -u root " +
                                how);
        EXPECT_NE(r.err.find("ERROR 1227 (42000)"), std::string::npos) << session << r.err;
        EXPECT_NE(r.err.find("killswitch: refused DROP DATABASE d"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("rule db:drop"), std::string::npos) << r.err;
        EXPECT_EQ(r.out, "3\n") << session << ": the connection goes on\n" << r.err;
        EXPECT_EQ(my_->query("SELECT count(*) FROM d.t"), "3");
        json rec = refusal_of(session);
        ASSERT_FALSE(rec.is_null()) << session;
        EXPECT_EQ(rec["layer"], "relay");
        EXPECT_NE(rec.value("explained_to", "").find("ERR packet"), std::string::npos) << rec;
    }
}

TEST_F(DbRelayE2E, RedisCliReadsAnErrInPlaceOfTheRefusedCommand) {
    KS_REQUIRE_SERVER(redis_);
    std::vector<std::pair<std::string, std::string>> ways = {
        {"relay-redis-tcp", "-h 127.0.0.1 -p " + redis_->port()}};
    if (unix_relayed()) ways.push_back({"relay-redis-unix", "-s " + redis_->socket()});
    for (const auto& [session, how] : ways) {
        // Three commands on one connection: the refused one is answered in
        // its place, the ones after it run.
        auto r = guarded_sh(session,
                            "printf 'SET relay_a 1\\nFLUSHALL\\nGET relay_a\\n' | "
                            "redis-cli " +
                                how);
        EXPECT_EQ(r.status, 0) << r.err;
        auto refused = r.out.find("ERR killswitch: refused FLUSHALL");
        EXPECT_NE(refused, std::string::npos) << session << ": " << r.out;
        EXPECT_NE(r.out.find("rule db:flush"), std::string::npos) << r.out;
        EXPECT_EQ(r.out.rfind("OK\n", 0), 0u) << r.out;
        EXPECT_GE(r.out.size(), 2u);
        EXPECT_EQ(r.out.substr(r.out.size() - 2), "1\n") << r.out;
        EXPECT_EQ(redis_->command({"EXISTS", "k1", "k2", "k3", "k4", "k5"}), "5");
        json rec = refusal_of(session);
        ASSERT_FALSE(rec.is_null()) << session;
        EXPECT_NE(rec.value("explained_to", "").find("-ERR"), std::string::npos) << rec;
    }
}

// The server runs a command on its host for the client (host-access): shown
// to delete a file unguarded, refused guarded with the file still there.
TEST_F(DbRelayE2E, CopyToProgramDeletesAHostFileUnguardedAndIsRefusedGuarded) {
    KS_REQUIRE_SERVER(pg_);
    TempDir tmp;
    ASSERT_EQ(::chmod(tmp.path().c_str(), 0777), 0);  // the server's user may delete in it
    std::string victim = tmp.path() + "/victim";
    // The program reads what the server writes to it first: a program that
    // exits before the server has written makes the COPY fail with EPIPE.
    std::string sql = "COPY (SELECT 1) TO PROGRAM 'cat > /dev/null; rm -f " + victim + "'";
    std::ofstream(victim) << "rows\n";
    auto plain = run_command(pg_->psql("127.0.0.1", sql));
    EXPECT_EQ(plain.status, 0) << plain.err;
    ASSERT_FALSE(std::filesystem::exists(victim)) << "unguarded, the server deleted it";

    std::ofstream(victim) << "rows\n";
    auto r = guarded("relay-pg-copy-program", pg_->psql("127.0.0.1", sql));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("killswitch: refused COPY (SELECT 1) TO PROGRAM"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("rule db:host-access"), std::string::npos) << r.err;
    EXPECT_TRUE(std::filesystem::exists(victim));
    json rec = refusal_of("relay-pg-copy-program");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec["class"], "host-access");
    EXPECT_EQ(rec["rule"], "db:host-access");
    EXPECT_NE(rec.value("reason", "").find("PROGRAM"), std::string::npos) << rec;

    // A file of the host read through the server, in a harmless-looking query.
    auto read =
        guarded("relay-pg-read-file",
                pg_->psql("127.0.0.1", "SELECT length(pg_catalog.pg_read_file('" + victim + "'))"));
    EXPECT_NE(read.err.find("rule db:host-access"), std::string::npos) << read.out << read.err;
    EXPECT_EQ(read.out, "") << "nothing of the file reached the client";
}

// A destructive body created in one request and called in the next (or by a
// trigger, or by a process nobody guards): refused when it is created.
TEST_F(DbRelayE2E, AFunctionWhoseBodyDropsATableIsRefusedWhenCreated) {
    KS_REQUIRE_SERVER(pg_);
    auto body = [](const std::string& name, const std::string& table) {
        return "CREATE FUNCTION " + name +
               "() RETURNS void LANGUAGE plpgsql AS $$BEGIN DROP TABLE " + table + "; END$$";
    };
    // Unguarded, such a function takes its table with it when called.
    ASSERT_EQ(pg_->query("CREATE TABLE fn_scratch (id int); INSERT INTO fn_scratch VALUES (1)"),
              "");
    auto plain = run_command(pg_->psql(
        "127.0.0.1", body("fn_wipe_scratch", "fn_scratch") + "; SELECT fn_wipe_scratch()"));
    EXPECT_EQ(plain.status, 0) << plain.err;
    EXPECT_EQ(pg_->query("SELECT count(*) FROM pg_class WHERE relname = 'fn_scratch'"), "0");

    auto r = guarded("relay-pg-function-body", pg_->psql("127.0.0.1", body("fn_wipe", "accounts")));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("rule db:drop"), std::string::npos) << r.err;
    EXPECT_EQ(pg_->query("SELECT count(*) FROM pg_proc WHERE proname = 'fn_wipe'"), "0");
    EXPECT_EQ(pg_->query("SELECT count(*) FROM accounts"), "100");
    json rec = refusal_of("relay-pg-function-body");
    ASSERT_FALSE(rec.is_null());
    EXPECT_NE(rec.value("reason", "").find("CREATE FUNCTION whose body runs DROP TABLE"),
              std::string::npos)
        << rec;

    // A body that only sets a column runs, and its trigger with it.
    auto ok = guarded("relay-pg-function-ok",
                      pg_->psql("127.0.0.1",
                                "CREATE FUNCTION fn_touch() RETURNS trigger LANGUAGE plpgsql AS "
                                "$$BEGIN NEW.note := NEW.note; RETURN NEW; END$$; SELECT 'made'"));
    EXPECT_EQ(ok.status, 0) << ok.err;
    EXPECT_EQ(ok.out, "made\n") << ok.err;
}

// A DELETE or UPDATE in a function's body is judged when the function is
// created, by what it would reach now (the server's planner), or, when its
// WHERE reads a value each call gives, by a unique key held equal to it.
TEST_F(DbRelayE2E, ABodyThatWouldReachEveryRowIsRefusedWhenCreatedOneByKeyIsNot) {
    KS_REQUIRE_SERVER(pg_);
    auto made = [&](const std::string& t) { return rows_table(t, 100); };
    // Unguarded, a body created in one request empties the table in the
    // next, whether its WHERE is written out or comes with the call.
    ASSERT_EQ(made("body_ctl"), "");
    auto plain = run_command(
        pg_->psql("127.0.0.1",
                  "CREATE FUNCTION body_ctl_wipe() RETURNS void LANGUAGE plpgsql AS "
                  "$$BEGIN DELETE FROM body_ctl WHERE id > 50; END$$; SELECT body_ctl_wipe(); "
                  "CREATE FUNCTION body_ctl_purge(cutoff timestamptz) RETURNS void LANGUAGE sql AS "
                  "'DELETE FROM body_ctl WHERE made < cutoff'; SELECT body_ctl_purge('infinity'); "
                  "SELECT count(*) FROM body_ctl"));
    EXPECT_EQ(plain.status, 0) << plain.err;
    EXPECT_NE(plain.out.find("\n0\n"), std::string::npos) << plain.out << plain.err;
    ASSERT_EQ(pg_->query("DROP TABLE body_ctl CASCADE; DROP FUNCTION body_ctl_wipe(); "
                         "DROP FUNCTION body_ctl_purge(timestamptz)"),
              "");

    ASSERT_EQ(made("body_t"), "");
    TempDir tmp;
    std::ofstream(tmp.path() + "/bodies.sql")
        << "CREATE FUNCTION body_wipe() RETURNS void LANGUAGE plpgsql AS "
           "$$BEGIN DELETE FROM body_t WHERE id > 0; END$$;\n"
           "SELECT body_wipe();\n"
           "CREATE FUNCTION body_blank() RETURNS void LANGUAGE sql AS "
           "'UPDATE body_t SET v = ''x'' WHERE v IS NOT NULL';\n"
           "CREATE PROCEDURE body_purge(cutoff timestamptz) LANGUAGE plpgsql AS "
           "$$BEGIN DELETE FROM body_t WHERE made < cutoff; END$$;\n"
           "CREATE TABLE body_log (id int);\n"
           "CREATE RULE body_rule AS ON INSERT TO body_log DO ALSO "
           "DELETE FROM body_t WHERE id > 0;\n"
           "INSERT INTO body_log VALUES (1);\n"
           // What migrations make every day: one row a call, a few rows.
           "CREATE FUNCTION body_drop_one(p_id int) RETURNS void LANGUAGE plpgsql AS "
           "$$BEGIN DELETE FROM body_t WHERE id = p_id; END$$;\n"
           "SELECT body_drop_one(5);\n"
           "CREATE FUNCTION body_touch() RETURNS trigger LANGUAGE plpgsql AS "
           "$$BEGIN UPDATE body_t SET v = 'seen' WHERE id = NEW.id; RETURN NEW; END$$;\n"
           "CREATE TRIGGER body_touch AFTER INSERT ON body_log FOR EACH ROW "
           "EXECUTE FUNCTION body_touch();\n"
           "INSERT INTO body_log VALUES (7);\n"
           "CREATE FUNCTION body_tail() RETURNS void LANGUAGE sql AS "
           "'DELETE FROM body_t WHERE id > 95';\n"
           "SELECT body_tail();\n"
           "SELECT 'left ' || count(*) FROM body_t;\n";
    auto r = guarded("relay-pg-bodies", psql_file(tmp.path() + "/bodies.sql"));
    // 100 rows less the one by key and the five of the tail; one touched.
    EXPECT_EQ(pg_->query("SELECT count(*) FROM body_t"), "94") << r.out << r.err;
    EXPECT_EQ(pg_->query("SELECT count(*) FROM body_t WHERE v LIKE 'row %'"), "93");
    EXPECT_EQ(pg_->query("SELECT v FROM body_t WHERE id = 7"), "seen");
    EXPECT_NE(r.out.find("left 94"), std::string::npos) << r.out << r.err;
    EXPECT_EQ(pg_->query("SELECT string_agg(proname, ',' ORDER BY proname) FROM pg_proc WHERE "
                         "proname LIKE 'body\\_%'"),
              "body_drop_one,body_tail,body_touch");
    EXPECT_EQ(pg_->query("SELECT count(*) FROM pg_rewrite WHERE rulename = 'body_rule'"), "0");
    // The client reads why, statement by statement.
    for (const char* what :
         {"refused CREATE FUNCTION body_wipe()", "refused CREATE FUNCTION body_blank()",
          "refused CREATE PROCEDURE body_purge(", "refused CREATE RULE body_rule"})
        EXPECT_NE(r.err.find(std::string("killswitch: ") + what), std::string::npos) << what << "\n"
                                                                                     << r.err;
    EXPECT_NE(r.err.find("CREATE FUNCTION whose body runs DELETE whose WHERE reaches about 100 of "
                         "100 rows of public.body_t"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("its WHERE reads values each call gives (cutoff)"), std::string::npos)
        << r.err;

    std::map<std::string, std::string> rules;  // the statement's first 30 bytes -> rule
    for (const auto& rec : records_of("relay-pg-bodies", 4))
        if (rec.value("verdict", "") == "refused")
            rules[rec.value("statement", "").substr(0, 30)] = rec.value("rule", "");
    EXPECT_EQ(rules["CREATE FUNCTION body_wipe() RE"], "db:delete-all");
    EXPECT_EQ(rules["CREATE FUNCTION body_blank() R"], "db:update-all");
    EXPECT_EQ(rules["CREATE PROCEDURE body_purge(cu"], "db:unparseable");
    EXPECT_EQ(rules["CREATE RULE body_rule AS ON IN"], "db:unparseable");
    EXPECT_EQ(rules.size(), 4u);
    EXPECT_EQ(
        pg_->query("DROP TABLE body_log; DROP TABLE body_t CASCADE; DROP FUNCTION "
                   "body_drop_one(int); DROP FUNCTION body_touch(); DROP FUNCTION body_tail()"),
        "");
}

// A DO block runs what PL/pgSQL's parser reads in it: migrations' idempotent
// DDL passes; what destroys is refused; a DELETE in a loop is pinned by no
// variable (each round may name another row), in a block or in a body.
TEST_F(DbRelayE2E, ADoBlockIsJudgedByWhatItRunsAndADeleteInALoopByNoRound) {
    KS_REQUIRE_SERVER(pg_);
    const std::string loop =
        "DO $$ DECLARE r record; BEGIN FOR r IN SELECT id FROM %s LOOP DELETE FROM %s WHERE id "
        "= r.id; END LOOP; END $$";
    auto looping = [&](const std::string& t) {
        std::string sql = loop;
        for (size_t at; (at = sql.find("%s")) != std::string::npos;) sql.replace(at, 2, t);
        return sql;
    };
    // Unguarded, a loop deleting one row a round by its key empties the table.
    ASSERT_EQ(rows_table("do_ctl", 100), "");
    auto plain =
        run_command(pg_->psql("127.0.0.1", looping("do_ctl") + "; SELECT count(*) FROM do_ctl"));
    EXPECT_EQ(plain.out, "0\n") << plain.err;
    ASSERT_EQ(pg_->query("DROP TABLE do_ctl"), "");

    ASSERT_EQ(rows_table("do_t", 100), "");
    ASSERT_EQ(pg_->query("CREATE TABLE do_child (id int, parent_id int)"), "");
    // drizzle-kit writes each foreign key so, to run again harmlessly.
    const std::string fk =
        "DO $$ BEGIN ALTER TABLE \"do_child\" ADD CONSTRAINT \"do_child_parent_fk\" FOREIGN KEY "
        "(\"parent_id\") REFERENCES \"public\".\"do_t\"(\"id\") ON DELETE cascade ON UPDATE no "
        "action; EXCEPTION WHEN duplicate_object THEN null; END $$;\n";
    TempDir tmp;
    std::ofstream(tmp.path() + "/blocks.sql")
        << fk << fk << looping("do_t") << ";\n"
        << "DO $$ BEGIN DELETE FROM do_t WHERE id > 0; END $$;\n"
           "DO $$ BEGIN DROP TABLE do_t CASCADE; END $$;\n"
           "CREATE FUNCTION do_wipe() RETURNS void LANGUAGE plpgsql AS $$DECLARE r record; BEGIN "
           "FOR r IN SELECT id FROM do_t LOOP DELETE FROM do_t WHERE id = r.id; END LOOP; END$$;\n"
           "DO $$ BEGIN DELETE FROM do_t WHERE id = 3; END $$;\n"
           "SELECT 'left ' || count(*) FROM do_t;\n";
    auto r = guarded("relay-pg-do", psql_file(tmp.path() + "/blocks.sql"));
    EXPECT_EQ(pg_->query("SELECT count(*) FROM do_t"), "99") << r.out << r.err;
    EXPECT_NE(r.out.find("left 99"), std::string::npos) << r.out << r.err;
    EXPECT_EQ(pg_->query("SELECT count(*) FROM pg_constraint WHERE conname = 'do_child_parent_fk'"),
              "1");
    EXPECT_EQ(pg_->query("SELECT count(*) FROM pg_proc WHERE proname = 'do_wipe'"), "0");
    EXPECT_NE(r.err.find("DO block whose body runs DELETE of \"do_t\" whose reach could not be "
                         "learned: it runs in a loop"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("DO block whose body runs DELETE whose WHERE reaches about 100 of 100 "
                         "rows of public.do_t"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("DO block whose body runs DROP TABLE"), std::string::npos) << r.err;
    std::map<std::string, int> rules;
    for (const auto& rec : records_of("relay-pg-do", 4))
        if (rec.value("verdict", "") == "refused") ++rules[rec.value("rule", "")];
    EXPECT_EQ(rules["db:unparseable"], 2) << "the loops, in a block and in a function";
    EXPECT_EQ(rules["db:delete-all"], 1);
    EXPECT_EQ(rules["db:drop"], 1);
    EXPECT_EQ(pg_->query("DROP TABLE do_child; DROP TABLE do_t"), "");
}

TEST_F(DbRelayE2E, MysqlLoadFileAndRedisModuleLoadAreRefusedAndTheConnectionGoesOn) {
    if (my_->ok()) {
        auto r = guarded_sh("relay-my-load-file",
                            "printf \"SELECT LOAD_FILE('/etc/hostname');\\nSELECT count(*) FROM "
                            "d.t;\\n\" | mysql --force -N -B -u root -h 127.0.0.1 -P " +
                                my_->port());
        EXPECT_NE(r.err.find("killswitch: refused SELECT LOAD_FILE"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("rule db:host-access"), std::string::npos) << r.err;
        EXPECT_EQ(r.out, "3\n") << r.err;
    }
    if (redis_->ok()) {
        auto r = guarded_sh("relay-redis-module",
                            "printf 'MODULE LOAD /tmp/ks-no-such-module.so\\nDEBUG RELOAD\\nGET "
                            "k1\\n' | redis-cli -h 127.0.0.1 -p " +
                                redis_->port());
        EXPECT_EQ(r.status, 0) << r.err;
        EXPECT_NE(r.out.find("ERR killswitch: refused MODULE LOAD"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("ERR killswitch: refused DEBUG RELOAD"), std::string::npos) << r.out;
        EXPECT_NE(r.out.find("rule db:host-access"), std::string::npos) << r.out;
        EXPECT_EQ(r.out.substr(r.out.size() - 2), "v\n") << r.out;
    }
}

TEST_F(DbRelayE2E, RedisDeletesPastTheSessionsVolumeAreRefused) {
    KS_REQUIRE_SERVER(redis_);
    // 1,500 keys, deleted one DEL at a time in one pipeline: each is
    // harmless, the sum is not. The default budget is 1,000 keys a minute.
    auto seed = run_command({"/bin/sh", "-c",
                             "seq 1 1500 | sed 's/^/SET vol:/; s/$/ x/' | redis-cli -p " +
                                 redis_->port() + " >/dev/null"});
    ASSERT_EQ(seed.status, 0) << seed.err;
    ASSERT_EQ(redis_->command({"EVAL", "return #redis.call('KEYS','vol:*')", "0"}), "1500");
    auto r = guarded_sh("relay-volume",
                        "seq 1 1500 | sed 's/^/DEL vol:/' | redis-cli -p " + redis_->port());
    EXPECT_EQ(redis_->command({"EVAL", "return #redis.call('KEYS','vol:*')", "0"}), "500")
        << r.out.substr(0, 300);
    EXPECT_NE(r.out.find("ERR killswitch: refused DEL vol:1001"), std::string::npos)
        << r.out.substr(0, 300);
    EXPECT_NE(r.out.find("rule db:volume"), std::string::npos);
    EXPECT_NE(r.out.find("more than 1000 Redis keys"), std::string::npos);
    // Other sessions have their own budget.
    auto other = guarded("relay-volume-other", redis_->cli({"DEL", "vol:1001"}));
    EXPECT_EQ(other.out, "1\n") << other.out << other.err;
    run_command(
        {"/bin/sh", "-c",
         "seq 1 1500 | sed 's/^/DEL vol:/' | redis-cli -p " + redis_->port() + " >/dev/null"});
}

TEST_F(DbRelayE2E, NobodyElseCanUseTheRelayAsAWayIn) {
    KS_REQUIRE_SERVER(pg_);
    int port = relay_status().value("port4", 0);
    ASSERT_GT(port, 0);
    // An unguarded process that connects to the relay itself: the kernel did
    // not send it, so the relay knows nothing of it and closes it.
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const char startup[] = "\0\0\0\x08\x04\xd2\x16\x2f";  // SSLRequest
    ::send(fd, startup, 8, MSG_NOSIGNAL);
    char c;
    // Closed: an end of stream, or a reset when the request was still unread.
    ssize_t n = ::recv(fd, &c, 1, 0);
    int err = errno;
    EXPECT_TRUE(n == 0 || (n < 0 && err == ECONNRESET))
        << "the relay answered a connection it did not expect: " << n << " " << strerror(err);
    ::close(fd);
    EXPECT_GE(relay_status().value("unknown_connections", 0), 1);
}

// databases.action: hold. Over the relay a destructive request waits,
// unread, until a person approves (it runs) or denies (the client reads the
// refusal in its protocol's error); PostgreSQL clients are told at once, in a
// NOTICE, that they wait and for whom.
class DbRelayHoldE2E : public RelayFixture {
  protected:
    static void SetUpTestSuite() {
        start("protect:\n  hold_timeout: 60\ndatabases:\n  action: hold\n");
    }
    // The one relay hold of the session, once it is there.
    static json hold_of(const std::string& session) {
        json found;
        wait_until([&] {
            auto r = daemon_->cli({"holds", "--json"});
            if (r.status != 0) return false;
            for (const auto& h : json::parse(r.out))
                if (h.value("session", "") == session) found = h;
            return !found.is_null();
        });
        return found;
    }
    std::future<CommandResult> guarded_async(const std::string& session,
                                             const std::vector<std::string>& argv) {
        return std::async(std::launch::async, [=] { return run_guarded(*daemon_, session, argv); });
    }
};

TEST_F(DbRelayHoldE2E, PsqlWaitsForAPersonDeniedItReadsTheRefusalApprovedItRuns) {
    KS_REQUIRE_SERVER(pg_);
    ASSERT_EQ(pg_->query("CREATE TABLE scratch (id int); INSERT INTO scratch VALUES (1)"), "");
    auto psql = [&](const std::string& sql) {
        auto argv = pg_->psql("127.0.0.1", sql);
        argv.insert(argv.end(), {"-c", "SELECT 'after'"});
        argv.erase(std::find(argv.begin(), argv.end(), "ON_ERROR_STOP=1") - 1,
                   std::find(argv.begin(), argv.end(), "ON_ERROR_STOP=1") + 1);
        return argv;
    };
    // Denied: nothing reached the server; the client reads why, and goes on.
    auto denied = guarded_async("hold-pg-deny", psql("DROP TABLE accounts"));
    json h = hold_of("hold-pg-deny");
    ASSERT_FALSE(h.is_null()) << daemon_->stderr_text();
    EXPECT_EQ(h["layer"], "relay");
    EXPECT_NE(h.value("path", "").find("DROP TABLE accounts"), std::string::npos) << h;
    EXPECT_EQ(pg_->query("SELECT count(*) FROM accounts"), "100") << "held, not run";
    uint64_t id = h["id"];
    ASSERT_EQ(daemon_->cli({"deny", std::to_string(id)}).status, 0);
    auto r = denied.get();
    EXPECT_NE(r.err.find("NOTICE:  killswitch: held DROP TABLE accounts"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("killswitch approve " + std::to_string(id)), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("ERROR:  killswitch: refused DROP TABLE accounts: held, then denied"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(r.out, "after\n") << "the connection goes on";
    EXPECT_EQ(pg_->query("SELECT count(*) FROM accounts"), "100");
    bool recorded = false;
    for (const auto& rec : daemon_->records())
        if (rec.value("event", "") == "hold_denied" && rec.value("hold_id", 0ull) == id) {
            recorded = true;
            EXPECT_EQ(rec["verdict"], "refused") << rec;
            EXPECT_NE(rec.value("explained_to", "").find("ErrorResponse"), std::string::npos);
        }
    EXPECT_TRUE(recorded);

    // Approved: it runs.
    auto approved = guarded_async("hold-pg-approve", psql("DROP TABLE scratch"));
    h = hold_of("hold-pg-approve");
    ASSERT_FALSE(h.is_null());
    ASSERT_EQ(daemon_->cli({"approve", std::to_string(h["id"].get<uint64_t>())}).status, 0);
    r = approved.get();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "after\n") << r.err;
    EXPECT_EQ(pg_->query("SELECT to_regclass('scratch') IS NULL"), "t") << "the approved DROP ran";
}

TEST_F(DbRelayHoldE2E, RedisCliWaitsAndReadsTheDenialInItsPlace) {
    KS_REQUIRE_SERVER(redis_);
    auto fut = std::async(std::launch::async, [&] {
        return run_guarded(
            *daemon_, "hold-redis",
            {"/bin/sh", "-c",
             "printf 'SET held_a 1\\nFLUSHALL\\nGET held_a\\n' | redis-cli -p " + redis_->port()});
    });
    json h = hold_of("hold-redis");
    ASSERT_FALSE(h.is_null()) << daemon_->stderr_text();
    EXPECT_EQ(redis_->command({"EXISTS", "k1"}), "1") << "held, not run";
    ASSERT_EQ(daemon_->cli({"deny", std::to_string(h["id"].get<uint64_t>())}).status, 0);
    auto r = fut.get();
    EXPECT_NE(r.out.find("ERR killswitch: refused FLUSHALL: held, then denied"), std::string::npos)
        << r.out;
    EXPECT_EQ(r.out.substr(r.out.size() - 2), "1\n") << "the command after it ran: " << r.out;
    EXPECT_EQ(redis_->command({"EXISTS", "k1", "k2", "k3", "k4", "k5"}), "5");
}

}  // namespace
}  // namespace ks::test
