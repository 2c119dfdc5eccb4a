// Effect-based SQL over MySQL/MariaDB (databases.effect): which statements
// are judged by the rows they would reach (db_guard/mysql.cpp), the probe
// the relay sends for them on the client's connection (wire_mysql.cpp: it
// follows the server's answers to know when it may ask), and how the
// server's counts change the verdict (db_relay_decide.cpp). End to end,
// with a real MariaDB: tests/e2e/db_relay_test.cpp (MysqlAWhereThat...).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "db_guard/classify.h"
#include "db_guard/db_relay_decide.h"
#include "db_relay/wire.h"
#include "mysql_relay_bytes.h"
#include "pg_relay_bytes.h"

namespace ks {
namespace {

constexpr uint8_t kComQuery = 0x03, kComStmtPrepare = 0x16;

RelayedRequest my(std::string_view sql, uint8_t type = kComQuery) {
    return {KS_DB_MYSQL, "127.0.0.1:3306", 1, false, type, sql};
}

const db::Statement::Target* target_of(const db::Classification& c) {
    return c.statements.empty() || c.statements[0].reaches.empty() ? nullptr
                                                                   : &c.statements[0].reaches[0];
}

TEST(MysqlEffectStatements, ASingleTableWhereThatMayLimitTheRowsIsAskedAbout) {
    auto c = db::classify_mysql_sql("DELETE FROM t WHERE id > 0");
    ASSERT_NE(target_of(c), nullptr);
    EXPECT_EQ(target_of(c)->table, "t");
    EXPECT_EQ(target_of(c)->schema, "");
    EXPECT_EQ(target_of(c)->from_where, "t WHERE id > 0");
    EXPECT_EQ(target_of(c)->limit, -1);
    EXPECT_EQ(c.verdict(), db::Class::Harmless) << "until the server has said";

    // The statement's own text: names keep their case and quotes, an alias
    // and a partition stay, ORDER BY and LIMIT do not (LIMIT bounds the count).
    c = db::classify_mysql_sql(
        "update low_priority `Shop`.`Orders` AS o set o.note = 'x' where o.note is not null "
        "order by o.id limit 50");
    ASSERT_NE(target_of(c), nullptr);
    EXPECT_EQ(target_of(c)->schema, "Shop");
    EXPECT_EQ(target_of(c)->name, "Orders");
    EXPECT_EQ(target_of(c)->table, "Shop.Orders");
    EXPECT_EQ(target_of(c)->from_where, "`Shop`.`Orders` AS o WHERE o.note is not null");
    EXPECT_EQ(target_of(c)->limit, 50);
    c = db::classify_mysql_sql("DELETE QUICK FROM t PARTITION (p1) WHERE created < now()");
    ASSERT_NE(target_of(c), nullptr);
    EXPECT_EQ(target_of(c)->from_where, "t PARTITION (p1) WHERE created < now()");
    // An executable comment is code: it stays in the count as written.
    c = db::classify_mysql_sql("DELETE FROM t WHERE /*!50000 id > 0 */");
    ASSERT_NE(target_of(c), nullptr);
    EXPECT_EQ(target_of(c)->from_where, "t WHERE id > 0");
}

TEST(MysqlEffectStatements, ColumnsHeldEqualToAConstantAreNamedInLowerCase) {
    auto eq = [](const std::string& sql) {
        auto c = db::classify_mysql_sql(sql);
        return target_of(c) ? target_of(c)->eq_columns : std::vector<std::string>{"?"};
    };
    EXPECT_EQ(eq("UPDATE t SET v = 1 WHERE ID = 5"), (std::vector<std::string>{"id"}));
    EXPECT_EQ(eq("DELETE FROM t WHERE t.a = 'x' AND `B` = -2 && c > 3"),
              (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(eq("DELETE FROM t WHERE 7 = id"), (std::vector<std::string>{"id"}));
    EXPECT_EQ(eq("DELETE FROM t WHERE id = ?"), (std::vector<std::string>{"id"}));
    EXPECT_TRUE(eq("DELETE FROM t WHERE id = 5 OR v > 0").empty()) << "an OR at the top";
    EXPECT_TRUE(eq("DELETE FROM t WHERE id = v").empty()) << "a column, not a constant";
    EXPECT_TRUE(eq("DELETE FROM t WHERE id = 5 + v").empty());
    EXPECT_EQ(eq("DELETE FROM t WHERE (id = 5 OR id = 6) AND a = 1"),
              (std::vector<std::string>{"a"}));
}

TEST(MysqlEffectStatements, WhatTheTextAlreadyDecidesOrCannotTellIsNotAsked) {
    for (const char* sql : {"DELETE FROM t", "DELETE FROM t WHERE 1 = 1", "UPDATE t SET a = 1",
                            "DELETE FROM t WHERE TRUE", "SELECT * FROM t WHERE id > 0",
                            "DELETE FROM django_migrations", "INSERT INTO t VALUES (1)",
                            // no WHERE of its own: the subquery's does not limit the rows
                            "UPDATE t SET a = (SELECT max(b) FROM u WHERE u.id = 1)"})
        EXPECT_EQ(target_of(db::classify_mysql_sql(sql)), nullptr) << sql;
    // A prepared statement's WHERE holds placeholders: nothing to count.
    auto r = my("DELETE FROM t WHERE id > ?", kComStmtPrepare);
    EXPECT_EQ(target_of(classify_relayed(r, {})), nullptr);
    EXPECT_NE(target_of(classify_relayed(my("DELETE FROM t WHERE id > 0"), {})), nullptr);
}

// DELETE and UPDATE of several tables: each table it deletes from or
// updates, counted against the rows of the join the WHERE holds.
TEST(MysqlEffectStatements, SeveralTablesAreReadTableByTable) {
    auto tables = [](const std::string& sql) {
        auto c = db::classify_mysql_sql(sql);
        std::vector<std::string> out;
        if (c.statements.empty()) return out;
        for (const auto& t : c.statements[0].reaches) {
            out.push_back(t.table + " <- " + t.from_where);
            EXPECT_TRUE(t.eq_columns.empty()) << "no key pins a join: " << sql;
        }
        return out;
    };
    using V = std::vector<std::string>;
    EXPECT_EQ(tables("DELETE t FROM t WHERE id > 0"), (V{"t <- t WHERE id > 0"}));
    EXPECT_EQ(tables("DELETE a FROM shop.t AS a JOIN u ON a.id = u.id WHERE u.v > 0"),
              (V{"shop.t <- shop.t AS a JOIN u ON a.id = u.id WHERE u.v > 0"}));
    EXPECT_EQ(tables("DELETE FROM a.* USING t a, u WHERE a.id = u.id"),
              (V{"t <- t a, u WHERE a.id = u.id"}));
    EXPECT_EQ(tables("DELETE t1, t2 FROM t1 INNER JOIN t2 ON t1.id = t2.id WHERE t1.n > 3"),
              (V{"t1 <- t1 INNER JOIN t2 ON t1.id = t2.id WHERE t1.n > 3",
                 "t2 <- t1 INNER JOIN t2 ON t1.id = t2.id WHERE t1.n > 3"}));
    EXPECT_EQ(tables("UPDATE t, u SET t.a = u.a WHERE t.id > 0"), (V{"t <- t, u WHERE t.id > 0"}));
    EXPECT_EQ(tables("UPDATE t JOIN u ON t.id = u.id SET a = 1 WHERE u.v > 0"),
              (V{"t <- t JOIN u ON t.id = u.id WHERE u.v > 0",
                 "u <- t JOIN u ON t.id = u.id WHERE u.v > 0"}))
        << "a column set without its table's name may be either table's";
    // A target refs does not name: not read, and not passed for its WHERE.
    auto c = db::classify_mysql_sql("DELETE x FROM t WHERE id > 0");
    EXPECT_EQ(c.verdict(), db::Class::Unparseable);
}

TEST(MysqlEffectProbe, OneQueryCountsTheRowsItReachesAndTheTable) {
    auto p = compiled();
    auto probe = [&](std::string_view sql) {
        auto r = my(sql);
        return effect_probe(r, classify_relayed(r, {}), p.policy);
    };
    auto e = probe("DELETE FROM t AS x WHERE x.id > 0");
    EXPECT_TRUE(e.cannot.empty());
    EXPECT_EQ(e.sql.rfind("SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM t AS x WHERE x.id > 0 "
                          "LIMIT 1000000) AS killswitch_reach), COALESCE((SELECT "
                          "IF(TABLE_ROWS >= 10000, TABLE_ROWS, NULL) FROM "
                          "information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND "
                          "TABLE_NAME = 't'), (SELECT COUNT(*) FROM (SELECT 1 FROM `t` LIMIT "
                          "1000000) AS killswitch_all)), ",
                          0),
              0u)
        << e.sql;
    EXPECT_EQ(e.sql.find("\n;\n"), std::string::npos) << "one query: one round trip";
    // Names are quoted for the server, whatever they hold.
    auto q = probe("DELETE FROM `we'ird\\`.`x``y` WHERE a > 1");
    EXPECT_NE(q.sql.find("FROM `we'ird\\`.`x``y` LIMIT"), std::string::npos) << q.sql;
    EXPECT_NE(q.sql.find("TABLE_SCHEMA = 'we''ird\\\\' AND TABLE_NAME = 'x`y'"), std::string::npos)
        << q.sql;
    EXPECT_NE(probe("SET @a = 1; DELETE FROM t WHERE id > 0").cannot.find("other statements"),
              std::string::npos);
    EXPECT_TRUE(probe("DELETE FROM t WHERE id > 0 AND 1 = 1 OR 1 = 1").sql.empty())
        << "always true: refused by its text";
    auto off = compiled("  effect:\n    check: false\n");
    auto r = my("DELETE FROM t WHERE id > 0");
    EXPECT_TRUE(effect_probe(r, classify_relayed(r, {}), off.policy).sql.empty());
}

// The one row of the probe's answer: reached, the table's rows, keys, schema.
relay::ProbeAnswer counted(const std::string& reach, const std::string& all,
                           const std::string& keys = "") {
    relay::ProbeAnswer a;
    a.round = kProbeFirst;
    a.results.push_back({"", {{reach, all, keys, "shop"}}});
    return a;
}

TEST(MysqlEffectDecide, EachTableOfSeveralIsCountedAndAnyOverTheLimitsRefuses) {
    auto p = compiled();
    auto r = my("DELETE t1, t2 FROM t1 JOIN t2 ON t1.id = t2.id WHERE t1.n > 3");
    auto c = classify_relayed(r, {});
    auto e = effect_probe(r, c, p.policy);
    EXPECT_NE(e.sql.find(" UNION ALL SELECT"), std::string::npos) << e.sql;
    relay::ProbeAnswer a = counted("5", "1000");
    a.results[0].rows.push_back({"200", "200", "", "shop"});
    apply_effect_probe(c, a, p.policy);
    auto ruling = rule_relayed(c, "", p);
    EXPECT_TRUE(ruling.refuse);
    EXPECT_EQ(ruling.rule, "db:delete-all");
    EXPECT_NE(ruling.reason.find("200 of 200 rows of shop.t2"), std::string::npos) << ruling.reason;
    ASSERT_EQ(c.statements[0].reached.size(), 2u);
    // Both under the limits: it goes on.
    c = classify_relayed(r, {});
    a.results[0].rows[1] = {"5", "200", "", "shop"};
    apply_effect_probe(c, a, p.policy);
    EXPECT_FALSE(rule_relayed(c, "", p).refuse);
    // One row missing from the answer: unknown.
    c = classify_relayed(r, {});
    apply_effect_probe(c, counted("5", "1000"), p.policy);
    EXPECT_TRUE(rule_relayed(c, "", p).refuse);
}

TEST(MysqlEffectDecide, TheServersCountDecides) {
    auto p = compiled();
    auto judged = [&](std::string_view sql, const relay::ProbeAnswer& a,
                      const policy::CompiledPolicy& pol) {
        auto c = classify_relayed(my(sql), {});
        EXPECT_EQ(apply_effect_probe(c, a, pol.policy), 0) << "one round";
        return std::pair{c, rule_relayed(c, "", pol)};
    };
    auto [c1, r1] = judged("DELETE FROM t WHERE id > 0", counted("200", "200"), p);
    EXPECT_TRUE(r1.refuse);
    EXPECT_EQ(r1.rule, "db:delete-all");
    EXPECT_NE(r1.reason.find("reaches 200 of 200 rows of shop.t (counted by the server"),
              std::string::npos)
        << r1.reason;
    EXPECT_EQ(reached_json(c1.statements[0])[0].value("table", ""), "shop.t");
    auto [c2, r2] = judged("UPDATE t SET v = 'x' WHERE v IS NOT NULL", counted("190", "200"), p);
    EXPECT_EQ(r2.rule, "db:update-all");
    EXPECT_FALSE(judged("DELETE FROM t WHERE n > 190", counted("10", "200"), p).second.refuse);
    EXPECT_FALSE(judged("DELETE FROM t WHERE id = 1", counted("1", "1"), p).second.refuse)
        << "a table's one row: min_rows";
    // LIMIT bounds what it reaches.
    EXPECT_FALSE(
        judged("DELETE FROM t WHERE id > 0 LIMIT 3", counted("200", "200"), p).second.refuse);
    // max_rows whatever the table; a count at the cap is "at least".
    EXPECT_TRUE(
        judged("DELETE FROM t WHERE ts < now()", counted("150000", "9000000"), p).second.refuse);
    auto [c3, r3] = judged("DELETE FROM t WHERE ts < now()", counted("1000000", "9000000"), p);
    EXPECT_NE(r3.reason.find("reaches at least 1000000 of 9000000 rows"), std::string::npos)
        << r3.reason;
    auto lax = compiled("  effect:\n    percent: 100\n    max_rows: 0\n");
    EXPECT_FALSE(
        judged("DELETE FROM t WHERE ts < now()", counted("1000000", "9000000"), lax).second.refuse)
        << "9,000,000 rows by the server's estimate: not all of them";
}

TEST(MysqlEffectDecide, AUniqueKeyTheServerShowedPinsTheConnectionsLaterStatements) {
    auto p = compiled();
    auto c = classify_relayed(my("UPDATE t SET v = 1 WHERE id = 9"), {});
    UniqueKeys learned;
    apply_effect_probe(c, counted("1", "200", "id;a,b"), p.policy, &learned);
    EXPECT_TRUE(c.statements[0].reaches.empty()) << "pinned: one row at most";
    ASSERT_EQ(learned.count("t"), 1u);
    EXPECT_EQ(learned["t"], (std::vector<std::vector<std::string>>{{"id"}, {"a", "b"}}));
    bool forget = true;
    EXPECT_TRUE(relay_passes_unasked(my("UPDATE t SET v = 2 WHERE ID = 10"), learned, forget));
    EXPECT_FALSE(forget);
    EXPECT_FALSE(relay_passes_unasked(my("UPDATE t SET v = 1 WHERE a = 1"), learned, forget))
        << "half a key";
    EXPECT_FALSE(relay_passes_unasked(my("UPDATE t SET v = 1 WHERE id > 1"), learned, forget));
    // A DELETE goes to the daemon all the same (the destructive volume
    // counts it), which asks the server nothing when a key pins it.
    auto probe_of = [&](const std::string& sql) {
        auto r = my(sql);
        auto cl = classify_relayed(r, {});
        drop_pinned(cl, learned);
        return effect_probe(r, cl, p.policy).sql;
    };
    EXPECT_TRUE(probe_of("DELETE FROM t WHERE a = 1 AND b = 2").empty());
    EXPECT_FALSE(probe_of("DELETE FROM t WHERE a = 1").empty());
    EXPECT_FALSE(probe_of("DELETE FROM u WHERE id = 1").empty()) << "another table";
    // A name that may mean another table, or a key that may be gone.
    for (const char* sql : {"USE other", "ALTER TABLE t DROP PRIMARY KEY", "RENAME TABLE t TO x",
                            "CREATE TEMPORARY TABLE t (id int)", "DROP INDEX a ON t"}) {
        forget = false;
        relay_passes_unasked(my(sql), learned, forget);
        EXPECT_TRUE(forget) << sql;
    }
    forget = true;
    relay_passes_unasked(my("SET NAMES utf8mb4"), learned, forget);
    EXPECT_FALSE(forget);
}

TEST(MysqlEffectDecide, AnAnswerThatCannotBeHadIsRefusedUnlessTheStatementWouldFailToo) {
    auto p = compiled();
    auto judged = [&](const relay::ProbeAnswer& a) {
        auto c = classify_relayed(my("DELETE FROM t WHERE id > 0"), {});
        apply_effect_probe(c, a, p.policy);
        return rule_relayed(c, "", p);
    };
    relay::ProbeAnswer a;
    a.code = "42S02";
    a.message = "Table 'shop.t' doesn't exist";
    EXPECT_FALSE(judged(a).refuse) << "the DELETE fails alike";
    a.code = "HY000";
    a.message = "Lock wait timeout exceeded";
    auto r = judged(a);
    EXPECT_TRUE(r.refuse);
    EXPECT_EQ(r.rule, "db:unparseable");
    relay::ProbeAnswer never;
    never.not_asked = "the connection became a replication stream";
    r = judged(never);
    EXPECT_TRUE(r.refuse) << "a connection the relay no longer follows is not asked: unknown";
    EXPECT_NE(r.reason.find("replication stream"), std::string::npos) << r.reason;
    EXPECT_TRUE(judged(relay::ProbeAnswer{}).refuse) << "no count came back";
    EXPECT_TRUE(judged(counted("", "200")).refuse) << "a NULL count";
}

// A stored program's DELETEs and UPDATEs are asked about when it is
// created: counted now where the WHERE reads no value a call gives; else
// only a unique key held equal to constants or variables pins them.
TEST(MysqlEffectStatements, AStoredProgramsDeletesAndUpdatesAreAskedAboutWhenItIsCreated) {
    // A BEGIN ... END body comes split at its ';': each statement after the
    // CREATE is its body's.
    auto c = db::classify_mysql_sql(
        "CREATE DEFINER=`root`@`localhost` PROCEDURE shop.p(IN cutoff INT, p_id INT) BEGIN "
        "DECLARE n, m INT DEFAULT 0; DELETE FROM t WHERE id > 0; "
        "UPDATE t SET v = 'x' WHERE id > cutoff; DELETE FROM t WHERE id = p_id; "
        "DELETE FROM t WHERE k = @x AND n = m; END");
    ASSERT_EQ(c.statements.size(), 6u);
    EXPECT_FALSE(c.statements[0].body_part);
    for (size_t i = 1; i < 6; ++i) EXPECT_TRUE(c.statements[i].body_part) << i;
    // What they reach is the CREATE's: the statement the client wrote.
    const auto& reaches = c.statements[0].reaches;
    ASSERT_EQ(reaches.size(), 4u);
    for (size_t i = 1; i < 6; ++i) EXPECT_TRUE(c.statements[i].reaches.empty()) << i;
    const auto& wipe = reaches[0];
    EXPECT_EQ(wipe.body_of, "CREATE PROCEDURE");
    EXPECT_EQ(wipe.from_where, "t WHERE id > 0");
    EXPECT_TRUE(wipe.unaskable.empty());
    EXPECT_NE(reaches[1].unaskable.find("reads values each call gives (cutoff)"),
              std::string::npos);
    EXPECT_EQ(reaches[2].eq_variables,
              (std::vector<std::pair<std::string, std::string>>{{"id", "p_id"}}));
    EXPECT_NE(reaches[3].unaskable.find("(@x, m, n)"), std::string::npos) << reaches[3].unaskable;
    // So is what they destroy.
    auto drops = db::classify_mysql_sql("CREATE PROCEDURE p() BEGIN SELECT 1; DROP TABLE t; END");
    EXPECT_EQ(drops.statements[0].cls, db::Class::Drop);
    EXPECT_NE(drops.statements[0].detail.find("a stored program whose body runs DROP"),
              std::string::npos);
    // One statement: after BEGIN, ROW, DO, or a routine's ')' and
    // characteristics.
    auto one = [](const std::string& sql) { return target_of(db::classify_mysql_sql(sql)); };
    const auto* trig =
        one("CREATE TRIGGER tr AFTER INSERT ON a FOR EACH ROW DELETE FROM t WHERE id = NEW.id");
    ASSERT_NE(trig, nullptr);
    EXPECT_EQ(trig->body_of, "CREATE TRIGGER");
    EXPECT_EQ(trig->eq_variables,
              (std::vector<std::pair<std::string, std::string>>{{"id", "new"}}));
    for (const char* sql :
         {"CREATE PROCEDURE p() DELETE FROM t WHERE id > 0",
          "CREATE PROCEDURE p() COMMENT 'x' MODIFIES SQL DATA DELETE FROM t "
          "WHERE id > 0",
          "CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO DELETE FROM t WHERE id > 0"}) {
        const auto* tg = one(sql);
        ASSERT_NE(tg, nullptr) << sql;
        EXPECT_FALSE(tg->body_of.empty()) << sql;
        EXPECT_TRUE(tg->unaskable.empty()) << sql;
    }
    // A program with a loop: any statement may run in it, nothing but
    // constants pins one.
    auto looped = db::classify_mysql_sql(
        "CREATE PROCEDURE p() BEGIN DECLARE v INT; DECLARE c CURSOR FOR SELECT id FROM t; "
        "OPEN c; l: LOOP FETCH c INTO v; DELETE FROM t WHERE id = v; END LOOP; END");
    const db::Statement::Target* in_loop = nullptr;
    for (const auto& st : looped.statements)
        if (!st.reaches.empty()) in_loop = &st.reaches[0];
    ASSERT_NE(in_loop, nullptr);
    EXPECT_TRUE(in_loop->eq_variables.empty());
    EXPECT_NE(in_loop->unaskable.find("has a loop"), std::string::npos) << in_loop->unaskable;
    // Whatever the header holds before PROCEDURE.
    const auto* definer = one(
        "CREATE OR REPLACE DEFINER = CURRENT_USER() PROCEDURE p(cutoff INT) DELETE FROM t WHERE "
        "id > cutoff");
    ASSERT_NE(definer, nullptr);
    EXPECT_NE(definer->unaskable.find("(cutoff)"), std::string::npos) << definer->unaskable;
    // Outside a stored program a name is a column's.
    const auto* plain = one("DELETE FROM t WHERE id = p_id");
    ASSERT_NE(plain, nullptr);
    EXPECT_TRUE(plain->body_of.empty());
    EXPECT_TRUE(plain->eq_variables.empty());
}

TEST(MysqlEffectDecide, AStoredProgramIsJudgedWhenCreatedByWhatItWouldReachNowOrByItsKey) {
    auto p = compiled();
    const std::string create =
        "CREATE PROCEDURE p(p_id INT, cutoff INT) BEGIN DELETE FROM t WHERE id > 0; "
        "DELETE FROM t WHERE id = p_id; END";
    auto r = my(create);
    auto c = classify_relayed(r, {});
    // One probe for the body's statements: the CREATE runs nothing now.
    auto e = effect_probe(r, c, p.policy);
    EXPECT_TRUE(e.cannot.empty()) << e.cannot;
    EXPECT_NE(e.sql.find("FROM t WHERE id > 0 LIMIT"), std::string::npos) << e.sql;
    EXPECT_NE(e.sql.find("SELECT NULL, NULL, "), std::string::npos) << "id = p_id is not counted";
    EXPECT_NE(e.sql.find("information_schema.COLUMNS"), std::string::npos) << e.sql;
    relay::ProbeAnswer a;
    a.results.push_back(
        {"", {{"200", "200", "id", "shop", "id,v"}, {"", "", "id", "shop", "id,v"}}});
    apply_effect_probe(c, a, p.policy);
    auto ruling = rule_relayed(c, "", p);
    EXPECT_TRUE(ruling.refuse);
    EXPECT_EQ(ruling.rule, "db:delete-all");
    EXPECT_NE(ruling.reason.find("CREATE PROCEDURE whose body runs DELETE whose WHERE reaches 200 "
                                 "of 200 rows of shop.t"),
              std::string::npos)
        << ruling.reason;
    // Only the key held equal to a variable: one row a call...
    const std::string keyed = "CREATE PROCEDURE q(p_id INT) DELETE FROM t WHERE id = p_id";
    auto judged = [&](const std::string& columns, const std::string& keys) {
        auto cl = classify_relayed(my(keyed), {});
        relay::ProbeAnswer k;
        k.results.push_back({"", {{"", "", keys, "shop", columns}}});
        apply_effect_probe(cl, k, p.policy);
        return rule_relayed(cl, "", p);
    };
    EXPECT_FALSE(judged("id,v", "id").refuse);
    // ... unless p_id is a column of t too, or id is no key.
    auto shadow = judged("id,p_id", "id");
    EXPECT_TRUE(shadow.refuse);
    EXPECT_EQ(shadow.rule, "db:unparseable");
    EXPECT_NE(shadow.reason.find("CREATE PROCEDURE whose body runs DELETE of t whose reach could "
                                 "not be learned: its WHERE reads values each call gives (p_id)"),
              std::string::npos)
        << shadow.reason;
    EXPECT_TRUE(judged("id,v", "").refuse);
    // A table the server cannot count now: the CREATE would not fail.
    auto cl = classify_relayed(my("CREATE PROCEDURE w() DELETE FROM later WHERE id > 0"), {});
    relay::ProbeAnswer missing;
    missing.code = "42S02";
    missing.message = "Table 'shop.later' doesn't exist";
    apply_effect_probe(cl, missing, p.policy);
    EXPECT_TRUE(rule_relayed(cl, "", p).refuse);
    // Other statements before the CREATE: no probe stands for them.
    auto before = my("USE other; CREATE PROCEDURE w() DELETE FROM t WHERE id > 0");
    EXPECT_FALSE(effect_probe(before, classify_relayed(before, {}), p.policy).cannot.empty());
}

// ---------------------------------------------------------------- the wire

std::string lenstr(const std::string& s) { return static_cast<char>(s.size()) + s; }

constexpr uint32_t kDeprecateEof = 1u << 24;

// A wire past the handshake and the server's OK to it; caps: the client's.
std::unique_ptr<relay::Wire> authed(uint32_t caps) {
    auto w = relay::make_wire(relay::Protocol::Mysql, "tok");
    // CLIENT_MYSQL set: no extended capabilities.
    std::string in = mysql_greeting(0x81fff7ff), down, up;
    EXPECT_TRUE(w->from_server(in, down));
    std::string hs;
    for (int s = 0; s < 32; s += 8) hs += static_cast<char>((caps >> s) & 0xff);
    hs += std::string(28, 'r');
    in = mysql_packet(1, hs);
    relay::Judge pass = [](const relay::Request&) { return relay::Verdict{}; };
    EXPECT_TRUE(w->from_client(in, up, down, pass));
    std::string why;
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::NotYet) << "authentication under way";
    in = mysql_packet(2, std::string("\x00\x00\x00\x02\x00\x00\x00", 7));
    down.clear();
    EXPECT_TRUE(w->from_server(in, down));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now);
    return w;
}

// A text result set of one column, as the server sends it.
std::string result_set(const std::vector<std::string>& rows, bool deprecate_eof,
                       uint16_t status = 0x0002) {
    std::string eof = std::string("\xfe\x00\x00", 3) + static_cast<char>(status & 0xff) +
                      static_cast<char>(status >> 8);
    std::string ok_eof = std::string("\xfe\x00\x00", 3) + static_cast<char>(status & 0xff) +
                         static_cast<char>(status >> 8) + std::string("\x00\x00", 2);
    uint8_t seq = 1;
    std::string out = mysql_packet(seq++, "\x01");
    out += mysql_packet(seq++, lenstr("def") + lenstr("") + lenstr("") + lenstr("") + lenstr("c") +
                                   lenstr("c") + std::string(13, '\0'));
    if (!deprecate_eof) out += mysql_packet(seq++, eof);
    for (const auto& r : rows)
        out += mysql_packet(seq++, r == "NULL" ? std::string("\xfb") : lenstr(r));
    out += mysql_packet(seq++, deprecate_eof ? ok_eof : eof);
    return out;
}

TEST(MysqlEffectWire, TheProbeWaitsUntilTheServerOwesNothingAndTheClientSeesNoneOfIt) {
    for (bool deprecate : {false, true}) {
        SCOPED_TRACE(deprecate ? "CLIENT_DEPRECATE_EOF" : "EOF packets");
        auto w = authed(0x000fa685 | (deprecate ? kDeprecateEof : 0));
        std::string why, up, down;
        relay::Judge pass = [](const relay::Request&) { return relay::Verdict{}; };
        std::string in = mysql_packet(0, "\x03SELECT c FROM t");
        ASSERT_TRUE(w->from_client(in, up, down, pass));
        EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::NotYet) << "its answer is owed";
        std::string answer = result_set({"1", "2"}, deprecate);
        // Split anywhere: the client reads it all, the answer ends once.
        std::string part = answer.substr(0, 20), rest = answer.substr(20);
        ASSERT_TRUE(w->from_server(part, down));
        EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::NotYet);
        part += rest;
        ASSERT_TRUE(w->from_server(part, down));
        EXPECT_EQ(down, answer);
        EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now);

        // The probe: asked as a command of its own; its answer is kept.
        up.clear();
        down.clear();
        w->start_probe("SELECT 1", up);
        EXPECT_EQ(up, mysql_packet(0, "\x03SELECT 1"));
        EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::NotYet);
        EXPECT_FALSE(w->take_probe());
        std::string server = result_set({"200", "NULL"}, deprecate);
        ASSERT_TRUE(w->from_server(server, down));
        EXPECT_EQ(down, "") << "the probe's answer is the relay's";
        auto a = w->take_probe();
        ASSERT_TRUE(a);
        ASSERT_EQ(a->results.size(), 1u);
        EXPECT_EQ(a->results[0].rows, (std::vector<std::vector<std::string>>{{"200"}, {""}}));
        EXPECT_TRUE(a->code.empty());
        EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now);

        // An error stops the probe there and says why.
        up.clear();
        w->start_probe("SELECT nope", up);
        server = mysql_packet(1, std::string("\xff\x1e\x04#42S22Unknown column 'nope'", 30));
        ASSERT_TRUE(w->from_server(server, down));
        a = w->take_probe();
        ASSERT_TRUE(a);
        EXPECT_EQ(a->code, "42S22");
        EXPECT_EQ(a->message, "Unknown column 'nope'");
        EXPECT_EQ(down, "");
    }
}

TEST(MysqlEffectWire, APreparedStatementsDefinitionsAndMoreResultsAreFollowed) {
    auto w = authed(0x000fa685);
    std::string why, up, down;
    relay::Judge pass = [](const relay::Request&) { return relay::Verdict{}; };
    std::string in = mysql_packet(0, "\x16SELECT a, b FROM t WHERE id = ?");
    ASSERT_TRUE(w->from_client(in, up, down, pass));
    // OK: statement 1, 2 columns, 1 parameter; its definitions, each with an EOF.
    std::string eof("\xfe\x00\x00\x02\x00", 5);
    std::string server =
        mysql_packet(1, std::string("\x00\x01\x00\x00\x00\x02\x00\x01\x00\x00\x00", 12)) +
        mysql_packet(2, "param") + mysql_packet(3, eof) + mysql_packet(4, "col a") +
        mysql_packet(5, "col b");
    ASSERT_TRUE(w->from_server(server, down));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::NotYet) << "one definition to come";
    server = mysql_packet(6, eof);
    ASSERT_TRUE(w->from_server(server, down));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now);
    // Closing a statement is answered by nothing.
    in = mysql_packet(0, std::string("\x19\x01\x00\x00\x00", 5));
    ASSERT_TRUE(w->from_client(in, up, down, pass));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now);
    // A CALL's results, then its OK: the answer ends at the last.
    in = mysql_packet(0,
                      "\x03"
                      "CALL p()");
    ASSERT_TRUE(w->from_client(in, up, down, pass));
    server = result_set({"1"}, false, 0x000a);  // SERVER_MORE_RESULTS_EXISTS
    ASSERT_TRUE(w->from_server(server, down));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::NotYet);
    server = mysql_packet(1, std::string("\x00\x00\x00\x02\x00\x00\x00", 7));
    ASSERT_TRUE(w->from_server(server, down));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now);
    // An execute that opens a cursor: its column definitions end the
    // answer; a fetch brings rows and an EOF.
    in = mysql_packet(0, std::string("\x17\x01\x00\x00\x00\x01\x01\x00\x00\x00", 10));
    ASSERT_TRUE(w->from_client(in, up, down, pass));
    server = mysql_packet(1, "\x01") + mysql_packet(2, "col") +
             mysql_packet(3, std::string("\xfe\x00\x00\x42\x00", 5));
    ASSERT_TRUE(w->from_server(server, down));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now) << "no rows follow";
    in = mysql_packet(0, std::string("\x1c\x01\x00\x00\x00\x0a\x00\x00\x00", 9));
    ASSERT_TRUE(w->from_client(in, up, down, pass));
    server = mysql_packet(1,
                          "\x01"
                          "a") +
             mysql_packet(2, std::string("\xfe\x00\x00\x82\x00", 5));
    ASSERT_TRUE(w->from_server(server, down));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now);
    // A replication stream cannot be followed: no probe on it.
    in = mysql_packet(0, "\x12" + std::string(10, '\0'));
    ASSERT_TRUE(w->from_client(in, up, down, pass));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Never);
    EXPECT_NE(why.find("replication"), std::string::npos) << why;
}

TEST(MysqlEffectWire, ChangingUserIsFollowedAndAskingForResultsWithoutDefinitionsCloses) {
    auto w = authed(0x000fa685);
    std::string why, up, down;
    relay::Judge pass = [](const relay::Request&) { return relay::Verdict{}; };
    std::string in = mysql_packet(0, "\x11other\0");
    ASSERT_TRUE(w->from_client(in, up, down, pass));
    std::string server = mysql_packet(1, "\xfemysql_native_password\0scramble");
    ASSERT_TRUE(w->from_server(server, down));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::NotYet) << "authenticating again";
    in = mysql_packet(2, std::string(20, 'p'));
    ASSERT_TRUE(w->from_client(in, up, down, pass));
    server = mysql_packet(3, std::string("\x00\x00\x00\x02\x00\x00\x00", 7));
    ASSERT_TRUE(w->from_server(server, down));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now);

    // A client that asks for what the relay struck from the greeting.
    for (uint32_t caps : {0x000fa685u | (1u << 25)}) {
        auto w2 = relay::make_wire(relay::Protocol::Mysql, "tok");
        std::string g = std::string("\x0a") + "10.11.6-MariaDB" + '\0' + std::string(13, 'a') +
                        std::string("\xff\xf7\x21\x02\x00\xff\x83", 7) + std::string(21, 'b');
        std::string sin = mysql_packet(0, g), d, u;
        ASSERT_TRUE(w2->from_server(sin, d));
        std::string hs;
        for (int s = 0; s < 32; s += 8) hs += static_cast<char>((caps >> s) & 0xff);
        hs += std::string(28, 'r');
        std::string cin = mysql_packet(1, hs);
        EXPECT_FALSE(w2->from_client(cin, u, d, pass));
        EXPECT_NE(w2->error().find("without their column definitions"), std::string::npos);
        EXPECT_EQ(u, "");
    }
}

TEST(MysqlEffectWire, MariadbsCachedMetadataIsStruckFromTheGreeting) {
    // CLIENT_MYSQL clear: the last 4 of the 10 reserved bytes are MariaDB's
    // extended capabilities, MARIADB_CLIENT_CACHE_METADATA among them.
    std::string g = std::string("\x0a") + "10.11.6-MariaDB" + '\0' + std::string(13, 'a') +
                    std::string("\xfe\xf7\x21\x02\x00\xff\x81\x15", 8) + std::string(6, '\0') +
                    std::string("\xff\x00\x00\x00", 4) + std::string(13, 'b');
    auto w = relay::make_wire(relay::Protocol::Mysql, "tok");
    std::string in = mysql_packet(0, g), down;
    ASSERT_TRUE(w->from_server(in, down));
    ASSERT_EQ(down.size(), g.size() + 4);
    size_t ext = 4 + 1 + 16 + 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 6;
    EXPECT_EQ(static_cast<uint8_t>(down[ext]), 0xef);
    EXPECT_EQ(static_cast<uint8_t>(down[ext - 5]) & 0x02, 0) << "nor MySQL's optional metadata";
}

TEST(MysqlEffectWire, UseOfADatabaseIsJudgedAsTheStatementItStandsFor) {
    auto w = authed(0x000fa685);
    std::string up, down, seen;
    relay::Judge judge = [&](const relay::Request& r) {
        seen = std::string(r.text);
        return relay::Verdict{};
    };
    std::string in = mysql_packet(0, "\x02shop`x");
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_EQ(seen, "USE `shop``x`");
    EXPECT_EQ(up, mysql_packet(0, "\x02shop`x")) << "sent as it came";
}

// ---------------------------------------------------------------- prepared
// statements: an execute judged with its values

TEST(MysqlEffectPrepared, TheExecutesValuesTakeThePlaceOfTheMarks) {
    EXPECT_EQ(db::bind_mysql_params("DELETE FROM t WHERE id > ? AND v = ? /* ? */ OR w = '?'",
                                    {"0", "'it''s'"}),
              "DELETE FROM t WHERE id > 0 AND v = 'it''s' /* ? */ OR w = '?'");
    EXPECT_EQ(db::bind_mysql_params("DELETE FROM t WHERE id > ?", {}), std::nullopt);
    EXPECT_EQ(db::bind_mysql_params("DELETE FROM t WHERE id > ?; SELECT 1", {"0"}), std::nullopt);
    RelayedRequest r = my("DELETE FROM t WHERE id > ?", 0x17);
    r.bound = true;
    r.params = {"0"};
    auto c = classify_relayed(r, {});
    ASSERT_NE(target_of(c), nullptr);
    EXPECT_EQ(target_of(c)->from_where, "t WHERE id > 0");
    auto p = compiled();
    EXPECT_FALSE(effect_probe(r, c, p.policy).sql.empty());
    // Values it could not read: not passed for its marks, refused unless a
    // key the connection knows pins it.
    r.bound = false;
    r.params.clear();
    r.unread = "a value of its execute was sent apart, as long data";
    auto unbound = classify_relayed(r, {});
    ASSERT_NE(target_of(unbound), nullptr);
    auto e = effect_probe(r, unbound, p.policy);
    EXPECT_TRUE(e.sql.empty());
    EXPECT_NE(e.cannot.find("could not be read: a value of its execute was sent apart"),
              std::string::npos)
        << e.cannot;
    effect_unknown(unbound, e.cannot);
    EXPECT_TRUE(rule_relayed(unbound, "", p).refuse);
    RelayedRequest by_key = my("DELETE FROM t WHERE id = ?", 0x17);
    auto keyed = classify_relayed(by_key, {});
    drop_pinned(keyed, {{"t", {{"id"}}}});
    EXPECT_TRUE(effect_probe(by_key, keyed, p.policy).cannot.empty());
    // A prepare is asked about at its executes.
    EXPECT_EQ(target_of(classify_relayed(my("DELETE FROM t WHERE id > ?", kComStmtPrepare), {})),
              nullptr);
}

TEST(MysqlEffectPrepared, TheWireJudgesExecutesOfPreparedDeletesAndUpdatesWithTheirValues) {
    auto w = authed(0x000fa685);
    std::vector<relay::Request> seen;
    std::vector<std::string> texts, unread;
    relay::Judge judge = [&](const relay::Request& r) {
        seen.push_back({r.type, {}, r.bound, r.params});
        texts.emplace_back(r.text);
        unread.push_back(r.unread);
        return relay::Verdict{};
    };
    std::string up, down;
    auto prepare = [&](uint32_t id, const std::string& sql, uint16_t params) {
        std::string in = mysql_packet(0, "\x16" + sql);
        EXPECT_TRUE(w->from_client(in, up, down, judge));
        std::string ok("\x00", 1);
        for (int s = 0; s < 32; s += 8) ok += static_cast<char>((id >> s) & 0xff);
        ok += std::string("\x00\x00", 2);  // columns
        ok += static_cast<char>(params & 0xff);
        ok += static_cast<char>(params >> 8);
        ok += std::string(3, '\0');
        std::string server = mysql_packet(1, ok);
        uint8_t seq = 2;
        for (uint16_t k = 0; k < params; ++k) server += mysql_packet(seq++, "param");
        if (params) server += mysql_packet(seq++, std::string("\xfe\x00\x00\x02\x00", 5));
        EXPECT_TRUE(w->from_server(server, down));
    };
    // An execute: statement id, flags, iteration count, NULL bitmap, types
    // bound anew, values.
    auto execute = [&](uint32_t id, const std::string& nulls, const std::string& types,
                       const std::string& values) {
        std::string p = "\x17";
        for (int s = 0; s < 32; s += 8) p += static_cast<char>((id >> s) & 0xff);
        p += std::string("\x00\x01\x00\x00\x00", 5) + nulls + "\x01" + types + values;
        std::string in = mysql_packet(0, p);
        EXPECT_TRUE(w->from_client(in, up, down, judge));
        std::string ok = mysql_packet(1, std::string("\x00\x00\x00\x02\x00\x00\x00", 7));
        EXPECT_TRUE(w->from_server(ok, down));
    };
    prepare(7, "DELETE FROM t WHERE id > ? AND v = ? OR w = ?", 3);
    prepare(8, "SELECT * FROM t WHERE id = ?", 1);
    seen.clear();
    texts.clear();
    unread.clear();
    // LONG 0, VAR_STRING "x'y", NULL.
    execute(7, "\x04", std::string("\x03\x00\xfd\x00\x06\x00", 6),
            std::string("\x00\x00\x00\x00", 4) + "\x03x'y");
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].type, 0x17);
    EXPECT_EQ(texts[0], "DELETE FROM t WHERE id > ? AND v = ? OR w = ?");
    EXPECT_TRUE(seen[0].bound);
    EXPECT_EQ(seen[0].params, (std::vector<std::optional<std::string>>{"0", "'x''y'", "NULL"}));
    // A negative TINY; a string with a backslash, whose meaning as a quoted
    // literal would depend on the server's sql_mode, as hexadecimal text.
    execute(7, std::string(1, '\0'), std::string("\x01\x00\xfd\x00\xfd\x00", 6),
            "\xff" +
                std::string("\x01"
                            "a",
                            2) +
                std::string("\x02"
                            "\\n",
                            3));
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_TRUE(seen[1].bound);
    EXPECT_EQ(seen[1].params,
              (std::vector<std::optional<std::string>>{"-1", "'a'", "_utf8mb4 X'5C6E'"}));
    // The types of the last execute hold when none are bound anew.
    std::string p = "\x17";
    p += std::string("\x07\x00\x00\x00", 4) + std::string("\x00\x01\x00\x00\x00", 5) +
         std::string(1, '\0') + std::string(1, '\0') + "\xfe" +
         std::string(
             "\x01"
             "b",
             2) +
         std::string(
             "\x01"
             "c",
             2);
    std::string in = mysql_packet(0, p);
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_TRUE(seen[2].bound);
    EXPECT_EQ(seen[2].params, (std::vector<std::optional<std::string>>{"-2", "'b'", "'c'"}));
    std::string ok = mysql_packet(1, std::string("\x00\x00\x00\x02\x00\x00\x00", 7));
    ASSERT_TRUE(w->from_server(ok, down));
    // A value sent apart (long data) is not in the execute, whose bytes
    // would then be read against the wrong parameters: not read.
    in = mysql_packet(0, std::string("\x18\x07\x00\x00\x00\x01\x00", 7) + "zz");
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    execute(7, "\x04", std::string("\x03\x00\xfd\x00\x06\x00", 6),
            std::string("\x00\x00\x00\x00", 4) + "\x01z");
    ASSERT_EQ(seen.size(), 4u);
    EXPECT_FALSE(seen[3].bound);
    EXPECT_NE(unread[3].find("long data"), std::string::npos) << unread[3];
    // An execute over 64 KiB is read whole and judged as well.
    prepare(9, "DELETE FROM t WHERE note <> ?", 1);
    std::string big(70000, 'x');
    execute(9, std::string(1, '\0'), std::string("\xfd\x00", 2),
            std::string("\xfd\x70\x11\x01", 4) + big);
    ASSERT_EQ(seen.size(), 6u) << "the prepare, then the execute";
    EXPECT_TRUE(seen[5].bound);
    ASSERT_EQ(seen[5].params.size(), 1u);
    EXPECT_EQ(seen[5].params[0]->size(), big.size() + 2);
    seen.resize(4);  // the two above, for the count below
    // A SELECT's execute is not judged; a closed statement is forgotten.
    execute(8, std::string(1, '\0'), std::string("\x03\x00", 2), std::string(4, '\0'));
    EXPECT_EQ(seen.size(), 4u);
    in = mysql_packet(0, std::string("\x19\x07\x00\x00\x00", 5));
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    execute(7, "\x04", std::string("\x03\x00\xfd\x00\x06\x00", 6),
            std::string("\x00\x00\x00\x00", 4) + "\x01z");
    EXPECT_EQ(seen.size(), 4u) << "statement 7 was closed";
}

}  // namespace
}  // namespace ks
