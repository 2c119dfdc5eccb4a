// The relay's protocol handling (userspace/db_relay/wire_*.cpp), byte for
// byte: what reaches the server, what the client reads, for harmless and
// refused requests, whole or split across reads.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "db_guard/volume.h"
#include "db_relay/wire.h"
#include "mysql_relay_bytes.h"

namespace ks::relay {
namespace {

std::string be32(uint32_t v) {
    std::string s;
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
    return s;
}
std::string pg_msg(char type, const std::string& body) {
    return std::string(1, type) + be32(static_cast<uint32_t>(body.size() + 4)) + body;
}
std::string pg_query(const std::string& sql) { return pg_msg('Q', sql + std::string(1, '\0')); }
std::string pg_startup() {
    std::string body =
        be32(196608) + "user" + std::string(1, '\0') + "postgres" + std::string(2, '\0');
    return be32(static_cast<uint32_t>(body.size() + 4)) + body;
}

// Refuses what contains DROP, FLUSHALL or DEL.
Verdict judge(const Request& r) {
    std::string t(r.text);
    for (const char* w : {"DROP", "FLUSHALL", "DEL"})
        if (t.find(w) != std::string::npos) return {true, "killswitch: refused " + t + "\nhint"};
    return {};
}

TEST(RelayWirePostgres, SslRequestIsDeclinedAndTheStartupPassed) {
    auto w = make_wire(Protocol::Postgres, "tok");
    std::string in = be32(8) + be32(80877103), up, down;
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_EQ(down, "N");
    EXPECT_EQ(up, "");
    in = pg_startup();
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_EQ(up, pg_startup());
    EXPECT_TRUE(in.empty());
}

TEST(RelayWirePostgres, ARefusedQueryBecomesTheServersErrorRewritten) {
    auto w = make_wire(Protocol::Postgres, "tok");
    std::string in = pg_startup() + pg_query("SELECT 1") + pg_query("DROP TABLE t") +
                     pg_query("SELECT 2"),
                up, down;
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_EQ(up, pg_startup() + pg_query("SELECT 1") + pg_query("killswitch_refused_tok") +
                      pg_query("SELECT 2"));
    EXPECT_EQ(down, "");
    EXPECT_EQ(w->pending(), 1u);

    // The server: an answer to SELECT 1, its syntax error for the stand-in,
    // ReadyForQuery, split anywhere.
    std::string z = pg_msg('Z', "I");
    std::string err =
        pg_msg('E', std::string("SERROR") + '\0' + "C42601" + '\0' +
                        "Msyntax error at or near \"killswitch_refused_tok\"" + '\0' + '\0');
    std::string row = pg_msg('D', std::string("\0\x01\0\0\0\x01"
                                              "1",
                                              7));
    std::string server = row + z + err + z;
    std::string out, carry;
    for (size_t i = 0; i < server.size(); i += 3) {
        carry += server.substr(i, 3);
        ASSERT_TRUE(w->from_server(carry, out));
    }
    EXPECT_EQ(out, row + z + pg_error_response("killswitch: refused DROP TABLE t\nhint") + z);
    EXPECT_EQ(w->pending(), 0u);
    std::string mine = pg_error_response("killswitch: refused DROP TABLE t\nhint");
    EXPECT_NE(mine.find(std::string("C42501") + '\0'), std::string::npos);
    EXPECT_NE(mine.find(std::string("Mkillswitch: refused DROP TABLE t") + '\0'),
              std::string::npos);
    EXPECT_NE(mine.find(std::string("Hhint") + '\0'), std::string::npos);
}

TEST(RelayWirePostgres, ARefusedParseKeepsItsStatementName) {
    auto w = make_wire(Protocol::Postgres, "tok");
    std::string in = pg_startup(), up, down;
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    up.clear();
    std::string parse =
        pg_msg('P', std::string("s1") + '\0' + "DROP TABLE t" + '\0' + std::string(2, '\0'));
    std::string bind = pg_msg('B', std::string(10, '\0'));
    std::string sync = pg_msg('S', "");
    in = parse + bind + sync;
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_EQ(up, pg_msg('P', std::string("s1") + '\0' + "killswitch_refused_tok" + '\0' +
                                  std::string(2, '\0')) +
                      bind + sync);
}

TEST(RelayWirePostgres, MessagesWithoutStatementsStreamUnjudgedAndStatementsWaitWhole) {
    auto w = make_wire(Protocol::Postgres, "tok");
    std::string in = pg_startup(), up, down;
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    up.clear();
    int judged = 0;
    Judge counting = [&](const Request& r) {
        ++judged;
        return judge(r);
    };
    // CopyData of 1 MB arrives in pieces and goes on as it comes.
    std::string copy = pg_msg('d', std::string(1 << 20, 'x'));
    in = copy.substr(0, 1000);
    ASSERT_TRUE(w->from_client(in, up, down, counting));
    EXPECT_EQ(up.size(), 1000u);
    in = copy.substr(1000);
    ASSERT_TRUE(w->from_client(in, up, down, counting));
    EXPECT_EQ(up, copy);
    EXPECT_EQ(judged, 0);
    // A query in two halves is judged once, whole.
    up.clear();
    std::string q = pg_query("SELECT '" + std::string(10000, 'y') + "' /* DROP */");
    in = q.substr(0, 5000);
    ASSERT_TRUE(w->from_client(in, up, down, counting));
    EXPECT_EQ(up, "");
    in += q.substr(5000);
    ASSERT_TRUE(w->from_client(in, up, down, counting));
    EXPECT_EQ(judged, 1);
    EXPECT_EQ(w->pending(), 1u);
}

TEST(RelayWirePostgres, NonsenseLengthsCloseTheConnection) {
    auto w = make_wire(Protocol::Postgres, "tok");
    std::string in = pg_startup() + "Q" + be32(2), up, down;
    EXPECT_FALSE(w->from_client(in, up, down, judge));
    EXPECT_NE(w->error().find("length 2"), std::string::npos);
}

TEST(RelayWireMysql, TlsAndCompressionAreStruckFromTheGreeting) {
    auto w = make_wire(Protocol::Mysql, "tok");
    uint32_t caps = 0xffffffff;
    std::string in = mysql_greeting(caps), down;
    ASSERT_TRUE(w->from_server(in, down));
    std::string want =
        mysql_greeting(caps & ~(0x800u | 0x20u | (1u << 25) | (1u << 26) | (1u << 27)));
    EXPECT_EQ(down, want);
}

TEST(RelayWireMysql, ARefusedQueryIsAnsweredWithErr1227AndNeverSent) {
    auto w = make_wire(Protocol::Mysql, "tok");
    std::string sin = mysql_greeting(0x000fa685), down;
    ASSERT_TRUE(w->from_server(sin, down));
    down.clear();
    std::string response =
        mysql_packet(1, std::string("\x85\xa6\x0f\x00", 4) + std::string(28, 'r'));
    std::string ok = mysql_packet(3, "\x03SELECT 1");
    std::string in = response, up;
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_EQ(up, response);
    up.clear();
    in = mysql_packet(0,
                      "\x03"
                      "DROP DATABASE d");
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_EQ(up, "");
    EXPECT_EQ(down, mysql_err_packet(1, "killswitch: refused DROP DATABASE d\nhint"));
    EXPECT_EQ(down.substr(4, 9), std::string("\xff\xcb\x04#42000", 9));
    down.clear();
    in = mysql_packet(0,
                      "\x03"
                      "SELECT 1");
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_EQ(up, mysql_packet(0,
                               "\x03"
                               "SELECT 1"));
}

TEST(RelayWireMysql, AClientThatAsksForTlsAnywayIsClosed) {
    auto w = make_wire(Protocol::Mysql, "tok");
    std::string sin = mysql_greeting(0xffffffff), down, up;
    ASSERT_TRUE(w->from_server(sin, down));
    std::string in = mysql_packet(1, std::string("\x00\x08\x00\x00", 4) + std::string(28, 'r'));
    EXPECT_FALSE(w->from_client(in, up, down, judge));
    EXPECT_EQ(up, "");
}

TEST(RelayWireRedis, ARefusedCommandIsAnsweredInItsPlaceInThePipeline) {
    auto w = make_wire(Protocol::Redis, "tok");
    std::string
        in = "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\nFLUSHALL\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n",
        up, down;
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_EQ(up,
              "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*1\r\n$22\r\nKILLSWITCH_REFUSED_tok\r\n"
              "*2\r\n$3\r\nGET\r\n$1\r\na\r\n");
    std::string server =
        "+OK\r\n-ERR unknown command 'KILLSWITCH_REFUSED_tok', with args beginning with: \r\n"
        "$1\r\n1\r\n";
    std::string out, carry;
    for (char c : server) {
        carry += c;
        ASSERT_TRUE(w->from_server(carry, out));
    }
    ASSERT_TRUE(w->from_server(carry, out));
    EXPECT_EQ(out, "+OK\r\n-ERR killswitch: refused FLUSHALL hint\r\n$1\r\n1\r\n");
    EXPECT_EQ(w->pending(), 0u);
}

TEST(RelayWireRedis, ACommandCutShortWaitsAndNonsenseCloses) {
    auto w = make_wire(Protocol::Redis, "tok");
    std::string in = "*2\r\n$3\r\nGET\r\n$5\r\nab", up, down;
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_EQ(up, "");
    in += "cde\r\n";
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_EQ(up, "*2\r\n$3\r\nGET\r\n$5\r\nabcde\r\n");
    std::string bad = "*1\r\n$x\r\n";
    EXPECT_FALSE(w->from_client(bad, up, down, judge));
}

std::string le32(uint32_t v) {
    std::string s;
    for (int shift = 0; shift < 32; shift += 8) s += static_cast<char>((v >> shift) & 0xff);
    return s;
}
// An OP_MSG with one body document {<command>: 1} (BSON by hand).
std::string mongo_msg(uint32_t id, const std::string& command, uint32_t flags = 0) {
    std::string e = std::string("\x10") + command + '\0' + le32(1);
    std::string doc = le32(static_cast<uint32_t>(e.size() + 5)) + e + '\0';
    std::string body = le32(flags) + '\0' + doc;
    return le32(static_cast<uint32_t>(16 + body.size())) + le32(id) + le32(0) + le32(2013) + body;
}

TEST(RelayWireMongo, ARefusedCommandIsAnsweredWithAnErrorDocumentForItsRequest) {
    auto w = make_wire(Protocol::Mongodb, "tok");
    Judge refuse_drops = [](const Request& r) {
        return r.text.find("dropDatabase") != std::string_view::npos
                   ? Verdict{true, "killswitch: refused dropDatabase\nhint"}
                   : Verdict{};
    };
    std::string in = mongo_msg(7, "ping") + mongo_msg(8, "dropDatabase") + mongo_msg(9, "ping"), up,
                down;
    ASSERT_TRUE(w->from_client(in, up, down, refuse_drops));
    EXPECT_EQ(up, mongo_msg(7, "ping") + mongo_msg(9, "ping"));
    ASSERT_GE(down.size(), 21u);
    EXPECT_EQ(down.substr(8, 8), le32(8) + le32(2013)) << "addressed to request 8, as OP_MSG";
    EXPECT_EQ(static_cast<uint32_t>(down.size()),
              static_cast<uint8_t>(down[0]) | static_cast<uint8_t>(down[1]) << 8);
    EXPECT_EQ(down.substr(21), mongodb_error_document("killswitch: refused dropDatabase\nhint"));
    EXPECT_NE(down.find("errmsg"), std::string::npos);
    EXPECT_NE(down.find("Unauthorized"), std::string::npos);

    // moreToCome: the client expects no answer, and gets none.
    up.clear();
    down.clear();
    in = mongo_msg(10, "dropDatabase", 2);
    ASSERT_TRUE(w->from_client(in, up, down, refuse_drops));
    EXPECT_EQ(up, "");
    EXPECT_EQ(down, "");
}

TEST(RelayWireMongo, TheRelaysAnswerNeverLandsInsideAServerMessage) {
    auto w = make_wire(Protocol::Mongodb, "tok");
    Judge refuse_all = [](const Request&) { return Verdict{true, "no"}; };
    std::string reply = mongo_msg(100, "okay");
    std::string server = reply.substr(0, 10), down;
    ASSERT_TRUE(w->from_server(server, down));
    EXPECT_EQ(down, reply.substr(0, 10));
    std::string in = mongo_msg(11, "dropDatabase"), up, mine;
    ASSERT_TRUE(w->from_client(in, up, mine, refuse_all));
    EXPECT_EQ(mine, "") << "held back until the server's message is through";
    server = reply.substr(10);
    ASSERT_TRUE(w->from_server(server, down));
    EXPECT_EQ(down.substr(0, reply.size()), reply);
    EXPECT_EQ(down.substr(reply.size() + 8, 4), le32(11));
}

// A judge that answers later, as the daemon does for what the relay's
// thread cannot pass by itself: asked, it says "later" until told.
struct LaterJudge {
    std::vector<std::string> asked;
    std::optional<Verdict> told;
    Verdict operator()(const Request& r) {
        asked.emplace_back(r.text);
        if (!told) return {.later = true};
        Verdict v = *told;
        told.reset();
        return v;
    }
};

// The request waits unread, with everything behind it, until the verdict
// comes; then it and what follows go on in order.
void expect_waits_in_order(Protocol p, const std::string& first, const std::string& held,
                           const std::string& after, const std::string& setup = "") {
    auto w = make_wire(p, "tok");
    std::string up, down;
    if (p == Protocol::Mysql) {
        std::string g = mysql_greeting(0x000fa685);
        ASSERT_TRUE(w->from_server(g, down));
        down.clear();
    }
    LaterJudge lj;
    Judge judge_later = [&](const Request& r) {
        if (r.text.find("DEL") == std::string_view::npos &&
            r.text.find("DELETE") == std::string_view::npos)
            return Verdict{};
        return lj(r);
    };
    std::string in = setup + first + held + after;
    ASSERT_TRUE(w->from_client(in, up, down, judge_later));
    EXPECT_EQ(up, setup + first);
    EXPECT_EQ(in, held + after);
    ASSERT_EQ(lj.asked.size(), 1u);
    // Asked again before the verdict (more bytes came): still waiting.
    ASSERT_TRUE(w->from_client(in, up, down, judge_later));
    EXPECT_EQ(up, setup + first);
    lj.told = Verdict{};
    ASSERT_TRUE(w->from_client(in, up, down, judge_later));
    EXPECT_EQ(up, setup + first + held + after);
    EXPECT_TRUE(in.empty());
    EXPECT_EQ(down, "");
}

TEST(RelayWire, ARequestJudgedLaterWaitsWithWhatFollowsIt) {
    expect_waits_in_order(Protocol::Postgres, pg_query("SELECT 1"),
                          pg_query("DELETE FROM t WHERE id = 1"), pg_query("SELECT 2"),
                          pg_startup());
    expect_waits_in_order(
        Protocol::Mysql, mysql_packet(0, "\x03SELECT 1"),
        mysql_packet(0,
                     "\x03"
                     "DELETE FROM t WHERE id = 1"),
        mysql_packet(0, "\x03SELECT 2"),
        mysql_packet(1, std::string("\x85\xa6\x0f\x00", 4) + std::string(28, 'r')));
    expect_waits_in_order(Protocol::Redis, "*2\r\n$3\r\nGET\r\n$1\r\na\r\n",
                          "*2\r\n$3\r\nDEL\r\n$1\r\na\r\n", "*2\r\n$3\r\nGET\r\n$1\r\nb\r\n");
}

TEST(VolumeBudget, KeysAddUpPerSessionWithinTheWindow) {
    db::VolumeBudget b;
    db::VolumeLimits l{10, 2, 60'000'000'000ull};
    db::Volume three{3, 0};
    EXPECT_EQ(b.charge(1, three, 0, l), "");
    EXPECT_EQ(b.charge(1, three, 1, l), "");
    EXPECT_EQ(b.charge(1, three, 2, l), "");
    EXPECT_NE(b.charge(1, three, 3, l).find("more than 10 Redis keys"), std::string::npos);
    EXPECT_EQ(b.used(1, 3, l.within_ns).keys, 9u) << "a refused request counts nothing";
    EXPECT_EQ(b.charge(2, three, 3, l), "") << "another session has its own";
    EXPECT_EQ(b.charge(1, three, 60'000'000'001ull, l), "") << "the window slides";
    EXPECT_EQ(b.charge(1, {0, 1}, 0, l), "");
    EXPECT_EQ(b.charge(1, {0, 1}, 0, l), "");
    EXPECT_NE(b.charge(1, {0, 1}, 0, l).find("DELETE statements"), std::string::npos);
    db::VolumeLimits none{0, 0, 1};
    EXPECT_EQ(b.charge(3, {1'000'000, 1'000'000}, 0, none), "");
}

TEST(VolumeBudget, WhatARequestDeletes) {
    std::string_view req = "DEL a b c\r\nUNLINK d\r\nGET e\r\nHDEL h f1 f2\r\nEXPIRE k 1\r\n";
    auto redis = db::classify_redis(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(req.data()), req.size()));
    EXPECT_EQ(db::volume_of(redis, true).keys, 3u + 1 + 2 + 1);
    auto sql = db::classify_postgres_sql(
        "DELETE FROM t WHERE id = 1; /* c */ delete from t where id = 2; SELECT 1");
    EXPECT_EQ(db::volume_of(sql, false).deletes, 2u);
    // A stored program's body deletes nothing when it is created.
    auto body = db::classify_mysql_sql(
        "CREATE PROCEDURE p(i INT) BEGIN DELETE FROM t WHERE id = i; DELETE FROM u WHERE id = i; "
        "END");
    EXPECT_EQ(db::volume_of(body, false).deletes, 0u);
}

}  // namespace
}  // namespace ks::relay
