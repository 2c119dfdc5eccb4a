// Row checks (databases.check_rows): a PostgreSQL DROP TABLE or DROP COLUMN
// that loses nothing but its tables' rows, the relay's question to the server
// on the client's connection (wire_postgres.cpp), and how the answers change
// the verdict (db_relay_decide.cpp). End to end, with a real server:
// tests/e2e/db_relay_test.cpp (ADropThatLosesNoRow...) and Django's first
// migrate in tests/e2e/db_clients_test.cpp.
#include <gtest/gtest.h>
#include <killswitch/abi/events.h>

#include <string>
#include <vector>

#include "db_guard/classify.h"
#include "db_guard/db_relay_decide.h"
#include "db_relay/wire.h"
#include "pg_relay_bytes.h"
#include "policy/compile.h"
#include "policy/policy.h"

namespace ks {
namespace {

using relay::RowCheck;
using Outcome = RowCheck::Outcome;

std::vector<std::string> tables_of(const std::string& sql, size_t i = 0) {
    auto c = db::classify_postgres_sql(sql);
    return i < c.statements.size() ? c.statements[i].tables : std::vector<std::string>{"?"};
}

TEST(RowCheckTables, DropTableAndDropColumnNameTheirTablesAsWritten) {
    EXPECT_EQ(tables_of("DROP TABLE a"), (std::vector<std::string>{"\"a\""}));
    EXPECT_EQ(tables_of("DROP TABLE IF EXISTS public.a, \"B\"\"x\" CASCADE"),
              (std::vector<std::string>{"\"public\".\"a\"", "\"B\"\"x\""}));
    EXPECT_EQ(tables_of("ALTER TABLE ONLY s.t DROP COLUMN c, DROP COLUMN d"),
              (std::vector<std::string>{"\"s\".\"t\""}));
    EXPECT_EQ(tables_of("SELECT 1; DROP TABLE x", 1), (std::vector<std::string>{"\"x\""}));
}

TEST(RowCheckTables, WhatLosesMoreThanRowsHasNone) {
    for (const char* sql :
         {"DROP SCHEMA s CASCADE", "DROP DATABASE d", "DROP VIEW v", "TRUNCATE t", "DELETE FROM t",
          "DROP OWNED BY bob", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
          "CREATE RULE r AS ON INSERT TO a DO INSTEAD DROP TABLE b", "ALTER VIEW v RENAME TO w",
          "DO $$ BEGIN END $$"})
        EXPECT_TRUE(db::classify_postgres_sql(sql).statements.at(0).tables.empty()) << sql;
}

TEST(RowCheckDecide, AskedOnlyWhenEveryRefusedStatementIsADropOfRows) {
    auto p = compiled();
    auto ask = [&](std::string_view sql, uint8_t type = 'Q') {
        auto r = pg(sql, type);
        return rows_to_check(r, classify_relayed(r, {}), p);
    };
    EXPECT_EQ(ask("DROP TABLE a; DROP TABLE a, b"), (std::vector<std::string>{"\"a\"", "\"b\""}));
    EXPECT_TRUE(ask("DROP TABLE a; TRUNCATE b").empty()) << "TRUNCATE is refused whatever";
    // What comes before a drop in the same request could change which table
    // it names, or fill it, after the server was asked.
    EXPECT_TRUE(ask("SET search_path TO prod; DROP TABLE t").empty());
    EXPECT_TRUE(ask("INSERT INTO t VALUES (1); DROP TABLE t").empty());
    EXPECT_TRUE(ask("DROP TABLE a", 'P').empty()) << "no check inside an extended-query batch";
    EXPECT_TRUE(ask("SELECT 1").empty());
    auto off = compiled("  check_rows: false\n");
    auto r = pg("DROP TABLE a");
    EXPECT_TRUE(rows_to_check(r, classify_relayed(r, {}), off).empty());
}

TEST(RowCheckDecide, NoRowAnywhereMakesItASchemaChangeAnyRowOrDoubtKeepsItRefused) {
    auto p = compiled();
    auto judged = [&](std::string_view sql, const std::vector<RowCheck>& checks) {
        auto c = classify_relayed(pg(sql), {});
        apply_row_checks(c, checks);
        return std::pair{c, rule_relayed(c, "", p)};
    };
    auto [c1, r1] = judged("DROP TABLE a, b", {{"\"a\"", Outcome::Empty, ""},
                                               {"\"b\"", Outcome::Missing, "does not exist"}});
    EXPECT_FALSE(r1.refuse);
    EXPECT_EQ(c1.verdict(), db::Class::SchemaChange);
    EXPECT_NE(c1.statements[0].detail.find("no rows"), std::string::npos);

    auto [c2, r2] =
        judged("DROP TABLE a, b", {{"\"a\"", Outcome::Empty, ""}, {"\"b\"", Outcome::Rows, ""}});
    EXPECT_TRUE(r2.refuse);
    EXPECT_EQ(r2.rule, "db:drop");
    EXPECT_NE(r2.reason.find("the server says \"b\" has rows"), std::string::npos) << r2.reason;

    auto [c3, r3] =
        judged("ALTER TABLE a DROP COLUMN x",
               {{"\"a\"", Outcome::Failed, "the client's transaction has already failed"}});
    EXPECT_TRUE(r3.refuse);
    EXPECT_NE(r3.reason.find("already failed"), std::string::npos) << r3.reason;
    // A check that never came back is no answer.
    auto [c4, r4] = judged("DROP TABLE a", {});
    EXPECT_TRUE(r4.refuse);
}

TEST(RowCheckWire, AskedOnlyOnceTheServerOwesTheClientNothing) {
    auto w = relay::make_wire(relay::Protocol::Postgres, "tok");
    std::string why;
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::NotYet) << "before the startup";
    w = connected('I');
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now);
    // A query on its way: its answer first.
    std::string in = query("SELECT 1"), up, down;
    relay::Judge pass = [](const relay::Request&) { return relay::Verdict{}; };
    ASSERT_TRUE(w->from_client(in, up, down, pass));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::NotYet);
    std::string answer = kRowDesc + kRow + kDone + ready('E');
    ASSERT_TRUE(w->from_server(answer, down));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Failing)
        << "a failed transaction: not asked, and the request fails at the server anyway";
    EXPECT_NE(why.find("already failed"), std::string::npos);
    // An extended-query batch open (a Bind without its Sync): the request
    // the check is for waits unread before that Sync, so the server will
    // not owe nothing before it; not asked (rather than waited for).
    w = connected('I');
    in = msg('B', std::string(8, '\0'));
    ASSERT_TRUE(w->from_client(in, up, down, pass));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Never);
    in = msg('S', "");
    ASSERT_TRUE(w->from_client(in, up, down, pass));
    std::string z = ready('I');
    ASSERT_TRUE(w->from_server(z, down));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now);
}

TEST(RowCheckWire, OutsideABlockOneSelectPerTableAndTheClientSeesNone) {
    auto w = connected('I');
    std::string up, down;
    w->start_check({"\"a\"", "\"b\""}, up);
    EXPECT_EQ(up, query("SELECT 1 FROM \"a\" LIMIT 1"));
    up.clear();
    std::string answer = kRowDesc + kDone + ready('I');
    ASSERT_TRUE(w->from_server(answer, down));
    w->more_up(up);
    EXPECT_EQ(up, query("SELECT 1 FROM \"b\" LIMIT 1"));
    EXPECT_FALSE(w->take_checks());
    answer = msg('N', "SNOTICE" + std::string(2, '\0')) + kRowDesc + kRow + kDone + ready('I');
    ASSERT_TRUE(w->from_server(answer, down));
    EXPECT_EQ(down, msg('N', "SNOTICE" + std::string(2, '\0'))) << "a notice is the client's";
    auto checks = w->take_checks();
    ASSERT_TRUE(checks);
    ASSERT_EQ(checks->size(), 2u);
    EXPECT_EQ((*checks)[0].outcome, Outcome::Empty);
    EXPECT_EQ((*checks)[1].outcome, Outcome::Rows);
    // The next answer is the client's again.
    std::string later = kRowDesc + ready('I');
    ASSERT_TRUE(w->from_server(later, down));
    EXPECT_EQ(down, msg('N', "SNOTICE" + std::string(2, '\0')) + kRowDesc + ready('I'));
}

TEST(RowCheckWire, InsideABlockASavepointKeepsAnErrorFromTheClientsTransaction) {
    auto w = connected('T');
    std::string up, down;
    w->start_check({"\"gone\""}, up);
    EXPECT_EQ(up, query("SAVEPOINT killswitch_check_tok; SELECT 1 FROM \"gone\" LIMIT 1; "
                        "RELEASE SAVEPOINT killswitch_check_tok"));
    up.clear();
    std::string answer = msg('C', std::string("SAVEPOINT") + '\0') +
                         error("42P01", "relation \"gone\" does not exist") + ready('E');
    ASSERT_TRUE(w->from_server(answer, down));
    w->more_up(up);
    EXPECT_EQ(up, query("ROLLBACK TO SAVEPOINT killswitch_check_tok; RELEASE SAVEPOINT "
                        "killswitch_check_tok"));
    EXPECT_FALSE(w->take_checks()) << "not before the transaction is back";
    answer = msg('C', std::string("ROLLBACK") + '\0') + msg('C', std::string("RELEASE") + '\0') +
             ready('T');
    ASSERT_TRUE(w->from_server(answer, down));
    EXPECT_EQ(down, "");
    auto checks = w->take_checks();
    ASSERT_TRUE(checks);
    EXPECT_EQ((*checks)[0].outcome, Outcome::Missing);
    std::string why;
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now) << "still in its block, unharmed";
}

TEST(RowCheckWire, OtherProtocolsCannotAsk) {
    std::string why;
    // MySQL asks the server only effect probes (db_effect_mysql_test.cpp),
    // once authenticated; the daemon never asks it for row checks.
    EXPECT_EQ(relay::make_wire(relay::Protocol::Mysql, "t")->can_check(why),
              relay::Wire::CheckReady::NotYet);
    EXPECT_EQ(relay::make_wire(relay::Protocol::Redis, "t")->can_check(why),
              relay::Wire::CheckReady::Never);
}

}  // namespace
}  // namespace ks
