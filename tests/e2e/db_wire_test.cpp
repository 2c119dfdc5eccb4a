// Database requests judged on the socket send path (bpf/db_wire.bpf.c): a
// destructive request from a guarded process over TCP never reaches the
// server, whatever client sent it (psql, psycopg2, the mysql client,
// redis-cli, or a program writing the protocol bytes by hand). The servers
// are the test's own (db_servers.h). The daemon runs without the libpq
// uprobes, so that the socket path alone is what is tested.
//
// The evasion corpus is sent through the kernel by a hand-written client and
// classified by the user-space parsers: both must agree with the expectation,
// statement by statement.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <set>
#include <span>
#include <sstream>
#include <thread>

#include "db_guard/classify.h"
#include "db_servers.h"

namespace ks::test {
namespace {

using nlohmann::json;

// A stand-in MongoDB server (there is none in Debian): reads whole messages
// (their length is the first field) and answers each with one byte.
class MongoSink {
  public:
    MongoSink() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd_, 16) != 0)
            return;
        socklen_t len = sizeof(a);
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = std::to_string(ntohs(a.sin_port));
        thread_ = std::thread([this] { serve(); });
    }
    ~MongoSink() {
        stop_ = true;
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        if (thread_.joinable()) thread_.join();
    }
    [[nodiscard]] const std::string& port() const { return port_; }
    [[nodiscard]] std::vector<std::string> received() {
        std::lock_guard lock(mu_);
        return messages_;
    }

  private:
    static bool read_all(int c, char* p, size_t n) {
        while (n > 0) {
            ssize_t got = ::recv(c, p, n, 0);
            if (got <= 0) return false;
            p += got;
            n -= static_cast<size_t>(got);
        }
        return true;
    }
    void serve() {
        while (!stop_) {
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) return;
            timeval tv{5, 0};
            ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            for (;;) {
                char head[4];
                if (!read_all(c, head, 4)) break;
                uint32_t len = static_cast<uint8_t>(head[0]) | static_cast<uint8_t>(head[1]) << 8 |
                               static_cast<uint8_t>(head[2]) << 16 |
                               static_cast<uint32_t>(static_cast<uint8_t>(head[3])) << 24;
                if (len < 4 || len > (1u << 20)) break;
                std::string msg(head, 4);
                msg.resize(len);
                if (!read_all(c, msg.data() + 4, len - 4)) break;
                {
                    std::lock_guard lock(mu_);
                    messages_.push_back(msg);
                }
                char one = 1;
                ::send(c, &one, 1, MSG_NOSIGNAL);
            }
            ::close(c);
        }
    }
    int fd_ = -1;
    std::string port_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<std::string> messages_;
};

// Just enough BSON to build MongoDB commands.
struct Bson {
    std::string body;
    Bson& i32(const std::string& k, int32_t v) {
        body += '\x10';
        body += k + '\0';
        body.append(reinterpret_cast<const char*>(&v), 4);
        return *this;
    }
    Bson& str(const std::string& k, const std::string& v) {
        body += '\x02';
        body += k + '\0';
        int32_t n = static_cast<int32_t>(v.size() + 1);
        body.append(reinterpret_cast<const char*>(&n), 4);
        body += v + '\0';
        return *this;
    }
    Bson& doc(const std::string& k, const Bson& d, char type = '\x03') {
        body += type;
        body += k + '\0';
        body += d.bytes();
        return *this;
    }
    [[nodiscard]] std::string bytes() const {
        int32_t n = static_cast<int32_t>(body.size() + 5);
        std::string out(reinterpret_cast<const char*>(&n), 4);
        return out + body + '\0';
    }
};

std::string op_msg(const Bson& body) {
    std::string sections = std::string(4, '\0') + '\0' + body.bytes();  // flags, kind 0
    int32_t len = static_cast<int32_t>(16 + sections.size());
    int32_t id = 7, to = 0, op = 2013;
    std::string out;
    for (int32_t v : {len, id, to, op}) out.append(reinterpret_cast<const char*>(&v), 4);
    return out + sections;
}

std::string to_hex(const std::string& b) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : b) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

struct Case {
    std::string sql;
    bool destructive;
    std::string mode = "simple";  // wire_client.py modes
};

class DbWireE2E : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0) return;
        pg_ = new PgServer();
        my_ = new MariaDbServer();
        redis_ = new RedisServer();
        mongo_ = new MongoSink();
        std::vector<std::string> args = {"--no-db-client-probes", "--db",
                                         "mongodb=127.0.0.1:" + mongo_->port()};
        setup_error_ = watch_and_seed(*pg_, *my_, *redis_, args,
                                      "CREATE TABLE keep (id int); INSERT INTO keep VALUES (1)");
        // Statements are cut in the records at 100 bytes (the default is 1024).
        // A corpus sends one refused request after another from one client:
        // each is judged on its own here, so refusals do not escalate to the
        // session (escalation has its own tests: SessionEnds).
        policy_dir_ = new TempDir();
        std::string policy = policy_dir_->path() + "/policy.yaml";
        std::ofstream(policy)
            << "version: 1\ndatabases:\n  statement_max: 100\n  relay: false\nsessions:\n"
               "  escalate_after: 0\n";
        daemon_ = new Daemon(Daemon::Options{.policy_file = policy, .extra_args = args});
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete policy_dir_;
        delete mongo_;
        delete redis_;
        delete my_;
        delete pg_;
        daemon_ = nullptr;
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        ASSERT_TRUE(setup_error_.empty()) << setup_error_;
        ASSERT_TRUE(daemon_->ready()) << daemon_->stderr_text();
    }

    CommandResult guarded(const std::string& session, const std::vector<std::string>& argv) {
        return run_guarded(*daemon_, session, argv, std::chrono::seconds(60));
    }
    std::vector<json> records_of(const std::string& session, size_t n = 1) {
        return db_records_of(*daemon_, session, n);
    }

    // Runs the hand-written client as a guarded process; one result per request.
    std::vector<json> wire_client(const std::string& session, const std::string& kind,
                                  const std::string& port, const json& requests) {
        TempDir tmp;
        std::string path = tmp.path() + "/requests.json";
        std::ofstream(path) << requests.dump();
        auto r = guarded(
            session, {"/usr/bin/python3", std::string(KS_SOURCE_HELPERS_DIR) + "/wire_client.py",
                      kind, "127.0.0.1", port, path});
        EXPECT_EQ(r.status, 0) << r.err;
        std::vector<json> out;
        std::istringstream lines(r.out);
        for (std::string line; std::getline(lines, line);)
            if (!line.empty()) out.push_back(json::parse(line));
        return out;
    }

    static PgServer* pg_;
    static MariaDbServer* my_;
    static RedisServer* redis_;
    static MongoSink* mongo_;
    static Daemon* daemon_;
    static TempDir* policy_dir_;
    static std::string setup_error_;
};

PgServer* DbWireE2E::pg_ = nullptr;
MariaDbServer* DbWireE2E::my_ = nullptr;
RedisServer* DbWireE2E::redis_ = nullptr;
MongoSink* DbWireE2E::mongo_ = nullptr;
Daemon* DbWireE2E::daemon_ = nullptr;
TempDir* DbWireE2E::policy_dir_ = nullptr;
std::string DbWireE2E::setup_error_;

#define KS_REQUIRE_SERVER(s) \
    if (!(s)->ok()) GTEST_SKIP() << (s)->why()

TEST_F(DbWireE2E, PsqlOverTcpDropIsRefusedBeforeTheServerSeesIt) {
    KS_REQUIRE_SERVER(pg_);
    auto t0 = std::chrono::steady_clock::now();
    auto r = guarded("psql-drop", pg_->psql("127.0.0.1", "DROP TABLE accounts"));
    auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_NE(r.status, 0) << r.out << r.err;
    // The connection is closed at once: the client does not wait for an
    // answer that will never come.
    EXPECT_LT(took, std::chrono::seconds(10));
    EXPECT_EQ(pg_->query("SELECT count(*) FROM accounts"), "100");
    auto recs = records_of("psql-drop");
    ASSERT_FALSE(recs.empty());
    const json& rec = recs.back();
    EXPECT_EQ(rec["db"], "postgres");
    EXPECT_EQ(rec["address"], "127.0.0.1:" + pg_->port());
    EXPECT_EQ(rec["statement"], "DROP TABLE accounts");
    EXPECT_EQ(rec["class"], "drop");
    EXPECT_EQ(rec["kernel_reason"], "drop");
    EXPECT_EQ(rec["verdict"], "refused");
    EXPECT_EQ(rec["layer"], "sk_msg");
    EXPECT_EQ(rec["rule"], "db:drop");
    EXPECT_EQ(rec["prevented"], true);
    EXPECT_EQ(rec["connection_closed"], true) << rec.dump();
}

TEST_F(DbWireE2E, PsqlOverTcpHarmlessStatementsRunAndAreRecorded) {
    KS_REQUIRE_SERVER(pg_);
    auto r = guarded("psql-ok", pg_->psql("127.0.0.1",
                                          "SELECT count(*) FROM accounts WHERE note <> 'drop table "
                                          "accounts'"));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "100\n");
    auto recs = records_of("psql-ok");
    ASSERT_FALSE(recs.empty());
    EXPECT_EQ(recs.back()["verdict"], "allowed");
    EXPECT_EQ(recs.back()["class"], "harmless");
    EXPECT_EQ(recs.back()["statement"],
              "SELECT count(*) FROM accounts WHERE note <> 'drop table accounts'");
}

TEST_F(DbWireE2E, LongStatementsAreCutInTheRecord) {
    KS_REQUIRE_SERVER(pg_);
    std::string sql = "SELECT '" + std::string(300, 'y') + "' AS long_one";
    auto r = guarded("psql-long", pg_->psql("127.0.0.1", sql));
    EXPECT_EQ(r.status, 0) << r.err;
    auto recs = records_of("psql-long");
    ASSERT_FALSE(recs.empty());
    EXPECT_EQ(recs.back()["statement"], sql.substr(0, 100) + "...");
    EXPECT_EQ(recs.back()["verdict"], "allowed");
}

TEST_F(DbWireE2E, Psycopg2OverTcpTruncateIsRefused) {
    KS_REQUIRE_SERVER(pg_);
    std::string py =
        "import psycopg2\n"
        "c = psycopg2.connect(host='127.0.0.1', port=" +
        pg_->port() +
        ", user='postgres', dbname='postgres')\n"
        "cur = c.cursor()\ncur.execute('SELECT count(*) FROM accounts')\n"
        "print('before', cur.fetchone()[0])\n"
        "try:\n    cur.execute('TRUNCATE accounts')\n    c.commit()\n    print('truncated')\n"
        "except Exception as e:\n    print('refused', type(e).__name__)\n";
    auto r = guarded("psycopg2-tcp", {"/usr/bin/python3", "-c", py});
    EXPECT_NE(r.out.find("before 100"), std::string::npos) << r.out << r.err;
    EXPECT_NE(r.out.find("refused"), std::string::npos) << r.out << r.err;
    EXPECT_EQ(r.out.find("truncated"), std::string::npos);
    EXPECT_EQ(pg_->query("SELECT count(*) FROM accounts"), "100");
    bool found = false;
    for (const auto& rec : records_of("psycopg2-tcp", 2))
        if (rec["class"] == "truncate") {
            found = true;
            EXPECT_EQ(rec["verdict"], "refused");
        }
    EXPECT_TRUE(found);
}

// The evasion corpus: what the kernel did (refused or sent) and what the
// parser says must both match the expectation.
TEST_F(DbWireE2E, PostgresEvasionCorpusOverARawSocket) {
    KS_REQUIRE_SERVER(pg_);
    const std::vector<Case> corpus = {
        // destructive
        {"DROP TABLE accounts", true},
        {"drop table accounts", true},
        {"DrOp/**/TABLE accounts", true},
        {"SELECT 1; DROP TABLE accounts", true},
        {"SELECT 'a;b'; DELETE FROM accounts", true},
        {"/* harmless */ TRUNCATE accounts", true},
        {"  \n\tTRUNCATE\n accounts", true},
        {"-- comment\nDELETE FROM accounts", true},
        {"DELETE FROM accounts WHERE 1=1", true},
        {"DELETE FROM accounts WHERE true", true},
        {"DELETE FROM accounts WHERE (1 = 1)", true},
        {"DELETE FROM accounts WHERE 't'::boolean", true},
        {"UPDATE accounts SET note = 'x'", true},
        {"UPDATE accounts SET note = 'x' WHERE id = 1 OR 1 = 1", true},
        {"WITH gone AS (DELETE FROM accounts RETURNING *) SELECT count(*) FROM gone", true},
        {"EXPLAIN ANALYZE DELETE FROM accounts", true},
        {"PREPARE p AS DELETE FROM accounts", true},
        {"ALTER TABLE accounts DROP COLUMN note", true},
        {"DROP SCHEMA public CASCADE", true},
        {"DROP OWNED BY postgres", true},
        {"DO $$ BEGIN EXECUTE 'DROP TABLE accounts'; END $$", true},
        {"DELETE FROM accounts", true, "split"},
        {"DELETE FROM accounts", true, "extended"},
        {"TRUNCATE keep", true, "extended"},
        // harmless lookalikes
        {"SELECT 'drop table accounts'", false},
        {"SELECT count(*) FROM accounts", false},
        {"SELECT 1 AS drop_date", false},
        {"SELECT note FROM accounts WHERE note = 'truncate'", false},
        {"-- DROP TABLE accounts\nSELECT 1", false},
        {"/* DELETE FROM accounts */ SELECT 2", false},
        {"/* nested /* DROP TABLE accounts */ still a comment */ SELECT 3", false},
        {"SELECT $$DROP TABLE accounts$$", false},
        {"SELECT $tag$ TRUNCATE accounts $tag$", false},
        {"SELECT E'it''s \\' DROP TABLE accounts'", false},
        {"SELECT \"drop\" FROM (SELECT 1 AS \"drop\") s", false},
        {"DELETE FROM accounts WHERE id = -1", false},
        {"UPDATE accounts SET note = note WHERE id = 1", false},
        {"UPDATE accounts SET note = 'y' WHERE id = 2 AND true", false},
        {"SELECT * FROM accounts WHERE id IN (1, 2)", false},
        {"SELECT 1 FROM accounts WHERE id = 3 FOR UPDATE", false},
        {"WITH x AS (SELECT 1) SELECT * FROM x", false},
        {"EXPLAIN SELECT * FROM accounts", false},
        {"CREATE TABLE IF NOT EXISTS scratch (id int)", false},
        {"SELECT count(*) FROM accounts", false, "split"},
        {"SELECT 1", false, "extended"},
    };
    json requests = json::array();
    for (const auto& c : corpus) requests.push_back({{"sql", c.sql}, {"mode", c.mode}});
    auto results = wire_client("pg-corpus", "postgres", pg_->port(), requests);
    ASSERT_EQ(results.size(), corpus.size());
    int destructive = 0;
    for (size_t i = 0; i < corpus.size(); ++i) {
        const auto& c = corpus[i];
        destructive += c.destructive;
        bool refused = results[i]["outcome"] == "refused";
        EXPECT_EQ(refused, c.destructive) << "kernel " << (refused ? "refused" : "sent") << " ["
                                          << c.mode << "] " << c.sql << " " << results[i].dump();
        db::Class parsed = db::classify_postgres_sql(c.sql).verdict();
        EXPECT_EQ(parsed != db::Class::Harmless, c.destructive)
            << "parser says " << db::class_name(parsed) << ": " << c.sql;
        if (!c.destructive) {
            // answered by the server: sent, and not refused by it either
            // (these lookalikes are valid statements)
            EXPECT_TRUE(results[i]["server_error"].is_null()) << c.sql << results[i].dump();
        }
    }
    EXPECT_GE(corpus.size(), 40u);
    EXPECT_GE(destructive * 2, static_cast<int>(corpus.size()) - 2);
    // The data is all there (one harmless lookalike updated row 2's note).
    EXPECT_EQ(pg_->query("SELECT count(*) FROM accounts WHERE note IS NOT NULL"), "100");
    EXPECT_EQ(pg_->query("SELECT count(*) FROM keep"), "1");
    EXPECT_EQ(pg_->query("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'"), "1");
}

TEST_F(DbWireE2E, PostgresRequestsTheKernelCannotReadAreRefused) {
    KS_REQUIRE_SERVER(pg_);
    // 'Q' with a length of 2: less than the length field itself.
    std::string malformed = "5100000002";
    // A query longer than the kernel reads: refused, whatever it says.
    std::string long_sql = "SELECT '" + std::string(5000, 'x') + "'";
    // A TLS handshake after SSLRequest (the SSLRequest itself passes: the
    // server, which has no TLS, answers 'N'): encrypted, cannot be read.
    std::string client_hello =
        "160301002e0100002a0303" + std::string(64, '0') + "000002130101000000";
    json requests = json::array({{{"mode", "raw"}, {"hex", malformed}},
                                 {{"sql", long_sql}},
                                 {{"mode", "tls"}, {"hex", client_hello}}});
    auto results = wire_client("pg-unreadable", "postgres", pg_->port(), requests);
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(results[0]["outcome"], "refused") << results[0].dump();
    EXPECT_EQ(results[1]["outcome"], "refused") << results[1].dump();
    EXPECT_EQ(results[2]["outcome"], "refused") << results[2].dump();
    std::set<std::string> reasons;
    for (const auto& rec : records_of("pg-unreadable", 3)) {
        reasons.insert(rec.value("kernel_reason", ""));
        EXPECT_EQ(rec["verdict"], "refused");
    }
    EXPECT_TRUE(reasons.count("malformed")) << json(reasons).dump();
    EXPECT_TRUE(reasons.count("too-long")) << json(reasons).dump();
    EXPECT_TRUE(reasons.count("tls")) << json(reasons).dump();
}

TEST_F(DbWireE2E, MysqlClientEvasionCorpus) {
    KS_REQUIRE_SERVER(my_);
    const std::vector<Case> corpus = {
        {"DROP TABLE d.t", true},
        {"DrOp DATABASE d", true},
        {"/*!40000 DROP TABLE d.t */", true},
        {"/*!DROP*/ TABLE d.t", true},
        {"SELECT 1; DROP TABLE d.t", true},
        {"DELETE FROM d.t", true},
        {"DELETE FROM d.t WHERE 1", true},
        {"DELETE FROM d.t WHERE 'a' = 'a'", true},
        {"UPDATE d.t SET note = 'x'", true},
        {"TRUNCATE d.t", true},
        {"ALTER TABLE d.t DROP COLUMN note", true},
        {"# note\nDELETE FROM d.t", true},
        {"SELECT 'DROP TABLE d.t'", false},
        {"SELECT count(*) FROM d.t", false},
        {"SELECT 1 AS drop_date", false},
        {"# DROP TABLE d.t\nSELECT 1", false},
        {"/* DELETE FROM d.t */ SELECT 2", false},
        {"DELETE FROM d.t WHERE id = 99", false},
        {"UPDATE d.t SET note = note WHERE id = 1", false},
        {"SELECT `drop` FROM (SELECT 1 AS `drop`) s", false},
        {"SELECT \"truncate\"", false},
        {"SELECT 1 /*! + 1 */", false},
    };
    int n = 0;
    for (const auto& c : corpus) {
        auto r = guarded("mysql-corpus-" + std::to_string(n++), my_->mysql(c.sql));
        // The client reports a refused request as a lost connection (2006,
        // 2013): client-side errors, never the server's. The daemon writes
        // its explanation into the same stderr while the client writes its
        // error in pieces ("ERROR", then " 2006 (HY000) ..."): its lines may
        // land between them, so they are taken out before the client's text
        // is read.
        std::string client_err = r.err;
        for (size_t at; (at = client_err.find("killswitch: ")) != std::string::npos;) {
            size_t nl = client_err.find('\n', at);
            client_err.erase(at, nl == std::string::npos ? std::string::npos : nl + 1 - at);
        }
        bool refused = r.status != 0 && (client_err.find("ERROR 2006") != std::string::npos ||
                                         client_err.find("ERROR 2013") != std::string::npos);
        EXPECT_EQ(refused, c.destructive) << c.sql << "\n" << r.out << r.err;
        if (!c.destructive) {
            EXPECT_EQ(r.status, 0) << c.sql << r.err;
        }
        db::Class parsed = db::classify_mysql_sql(c.sql).verdict();
        EXPECT_EQ(parsed != db::Class::Harmless, c.destructive)
            << "parser says " << db::class_name(parsed) << ": " << c.sql;
    }
    EXPECT_EQ(my_->query("SELECT count(*) FROM d.t WHERE note IS NOT NULL"), "3");
}

TEST_F(DbWireE2E, RedisCliDestructiveCommandsAreRefused) {
    KS_REQUIRE_SERVER(redis_);
    std::string dir = redis_->command({"CONFIG", "GET", "dir"});
    const std::vector<std::pair<std::vector<std::string>, bool>> cases = {
        {{"FLUSHALL"}, true},
        {{"flushdb"}, true},
        {{"FLUSHALL", "ASYNC"}, true},
        {{"CONFIG", "SET", "dir", "/tmp"}, true},
        {{"SWAPDB", "0", "1"}, true},
        {{"EVAL", "return redis.call('flushall')", "0"}, true},
        {{"GET", "k1"}, false},
        {{"ECHO", "FLUSHALL"}, false},
        {{"SET", "flushall", "1"}, false},
        {{"CONFIG", "GET", "dir"}, false},
    };
    int n = 0;
    for (const auto& [args, destructive] : cases) {
        auto r = guarded("redis-cli-" + std::to_string(n++), redis_->cli(args));
        std::string joined;
        for (const auto& a : args) joined += a + " ";
        if (destructive)
            EXPECT_NE(r.status, 0) << joined << r.out << r.err;
        else
            EXPECT_EQ(r.status, 0) << joined << r.out << r.err;
    }
    EXPECT_EQ(redis_->command({"GET", "k1"}), "v");
    EXPECT_EQ(redis_->command({"EXISTS", "k1", "k2", "k3", "k4", "k5"}), "5");
    EXPECT_EQ(redis_->command({"CONFIG", "GET", "dir"}), dir);
    auto recs = records_of("redis-cli-0");
    ASSERT_FALSE(recs.empty());
    EXPECT_EQ(recs.back()["class"], "flush");
    EXPECT_EQ(recs.back()["verdict"], "refused");
    EXPECT_EQ(recs.back()["statement"], "FLUSHALL");
}

TEST_F(DbWireE2E, MongoDbOpMsgDestructiveCommandsNeverArrive) {
    struct MongoCase {
        std::string what;
        std::string msg;
        bool destructive;
    };
    Bson empty;
    const std::vector<MongoCase> cases = {
        {"dropDatabase", op_msg(Bson().i32("dropDatabase", 1).str("$db", "shop")), true},
        {"drop", op_msg(Bson().str("drop", "orders").str("$db", "shop")), true},
        {"delete {}",
         op_msg(Bson()
                    .str("delete", "orders")
                    .doc("deletes", Bson().doc("0", Bson().doc("q", empty).i32("limit", 0)), '\x04')
                    .str("$db", "shop")),
         true},
        {"find", op_msg(Bson().str("find", "orders").str("$db", "shop")), false},
        {"delete {a: 1}",
         op_msg(Bson()
                    .str("delete", "orders")
                    .doc("deletes",
                         Bson().doc("0", Bson().doc("q", Bson().i32("a", 1)).i32("limit", 1)),
                         '\x04')
                    .str("$db", "shop")),
         false},
        {"insert", op_msg(Bson().str("insert", "orders").str("$db", "shop")), false},
    };
    json requests = json::array();
    for (const auto& c : cases) requests.push_back({{"hex", to_hex(c.msg)}});
    auto results = wire_client("mongo", "mongodb", mongo_->port(), requests);
    ASSERT_EQ(results.size(), cases.size());
    size_t harmless = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
        EXPECT_EQ(results[i]["outcome"] == "refused", cases[i].destructive)
            << cases[i].what << " " << results[i].dump();
        auto bytes =
            std::span(reinterpret_cast<const uint8_t*>(cases[i].msg.data()), cases[i].msg.size());
        EXPECT_EQ(db::is_destructive(db::classify_mongodb(bytes).verdict()), cases[i].destructive)
            << "parser disagrees on " << cases[i].what;
        harmless += !cases[i].destructive;
    }
    // What arrived is exactly the harmless messages.
    auto got = mongo_->received();
    EXPECT_EQ(got.size(), harmless);
    for (const auto& c : cases) {
        if (!c.destructive) continue;
        for (const auto& m : got) EXPECT_NE(m, c.msg) << c.what << " reached the server";
    }
}

// On a unix socket the requests cannot be read on the send path: guarded
// processes are refused the connection (the libpq uprobes, which would let
// libpq through, are off in this fixture).
TEST_F(DbWireE2E, WatchedUnixSocketsAreRefusedToGuardedProcesses) {
    auto status = daemon_->cli({"status", "--json"});
    if (!json::parse(status.out)["layers"].value("db_unix_connect_rule", false))
        GTEST_SKIP() << "this kernel has no cgroup/connect_unix (Linux 6.7+)";
    int n = 0;
    auto refused = [&](const std::vector<std::string>& argv, const std::string& sock) {
        std::string session = "unix-" + std::to_string(n++);
        auto r = guarded(session, argv);
        EXPECT_NE(r.status, 0) << r.out << r.err;
        auto recs = records_of(session);
        ASSERT_FALSE(recs.empty()) << session;
        EXPECT_EQ(recs.back()["op"], "connect");
        EXPECT_EQ(recs.back()["socket"], sock);
        EXPECT_EQ(recs.back()["verdict"], "refused");
        EXPECT_EQ(recs.back()["layer"], "connect");
    };
    if (my_->ok()) {
        refused({"mysql", "-S", my_->socket(), "-u", "root", "-e", "DROP TABLE d.t"},
                my_->socket());
        EXPECT_EQ(my_->query("SELECT count(*) FROM d.t"), "3");
    }
    if (redis_->ok()) {
        refused({"redis-cli", "-s", redis_->socket(), "FLUSHALL"}, redis_->socket());
        EXPECT_EQ(redis_->command({"EXISTS", "k1", "k2", "k3", "k4", "k5"}), "5");
    }
    if (pg_->ok()) {
        std::string sock = pg_->socket_dir() + "/.s.PGSQL." + pg_->port();
        refused(pg_->psql(pg_->socket_dir(), "DROP TABLE accounts"), sock);
        EXPECT_EQ(pg_->query("SELECT count(*) FROM accounts"), "100");
    }
    // The server's own side and unguarded clients are untouched.
    if (redis_->ok()) {
        EXPECT_EQ(run_command({"redis-cli", "-s", redis_->socket(), "PING"}).out, "PONG\n");
    }
}

TEST_F(DbWireE2E, UnguardedClientsOverTcpAreNotInspected) {
    KS_REQUIRE_SERVER(pg_);
    size_t before = daemon_->records().size();
    auto r = run_command(
        pg_->psql("127.0.0.1", "CREATE TABLE scratch2 (id int); DROP TABLE scratch2; SELECT 'ok'"));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "ok\n");
    auto recs = daemon_->records();
    for (size_t i = before; i < recs.size(); ++i)
        EXPECT_NE(recs[i].value("event", ""), "db") << recs[i].dump();
}


// A request let through is recorded without waking the daemon (the kernel
// submits it with BPF_RB_NO_WAKEUP); the hold right after it, `rm` stopped at
// its first instruction until the daemon has read its argv, must still wake
// the daemon at once and not wait for its one-second tick.
TEST_F(DbWireE2E, ARequestLetThroughDoesNotDelayTheHoldAfterIt) {
    KS_REQUIRE_SERVER(redis_);
    auto counters = [&] {
        auto st = json::parse(daemon_->cli({"status", "--json"}).out, nullptr, false);
        return st.is_discarded() ? json::object() : st["counters"];
    };
    json before = counters();
    ASSERT_TRUE(before.contains("wakeups_missed")) << before.dump();
    TempDir tmp;
    std::string script;
    for (const auto& a : redis_->cli({"GET", "k1"})) script += a + " ";
    script += "&& rm -f " + tmp.path() + "/none";
    for (int i = 0; i < 5; ++i) {
        auto r = guarded("wake-after-pass-" + std::to_string(i), {"/bin/sh", "-c", script});
        EXPECT_EQ(r.status, 0) << r.out << r.err;
    }
    json after = counters();
    EXPECT_GE(after["db_requests"].get<uint64_t>(), before["db_requests"].get<uint64_t>() + 5);
    EXPECT_GE(after["exec_checks"].get<uint64_t>(), before["exec_checks"].get<uint64_t>() + 5);
    EXPECT_EQ(after["wakeups_missed"], before["wakeups_missed"])
        << "holds waited for the daemon's tick: " << after.dump();
}

}  // namespace
}  // namespace ks::test
