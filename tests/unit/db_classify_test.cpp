// Statement classification: an evasion corpus of destructive statements and
// harmless lookalikes, PostgreSQL messages as sent on the wire, Redis RESP.
#include <gtest/gtest.h>

#include "db_guard/classify.h"

namespace ks::db {
namespace {

struct Case {
    const char* sql;
    Class expected;
};

// Destructive statements, written to slip past a naive matcher.
const Case kDestructive[] = {
    {"DROP TABLE accounts", Class::Drop},
    {"drop table accounts", Class::Drop},
    {"DrOp TaBlE accounts", Class::Drop},
    {"DROP/* hidden */TABLE accounts", Class::Drop},
    {"DROP -- line comment\n TABLE accounts", Class::Drop},
    {"DROP /* nested /* comments */ here */ TABLE accounts", Class::Drop},
    {"  \n\tDROP\n\tTABLE\n\taccounts  ", Class::Drop},
    {"DROP DATABASE production", Class::Drop},
    {"DROP SCHEMA public CASCADE", Class::Drop},
    {"DROP INDEX idx_accounts_email", Class::Drop},
    {"DROP VIEW monthly_totals", Class::Drop},
    {"DROP OWNED BY app_user", Class::Drop},
    {"SELECT 1; DROP TABLE accounts", Class::Drop},
    {"SELECT 'harmless'; DROP TABLE \"Accounts\"", Class::Drop},
    {"TRUNCATE accounts", Class::Truncate},
    {"truncate table accounts restart identity cascade", Class::Truncate},
    {"DELETE FROM accounts", Class::DeleteAll},
    {"DELETE FROM accounts WHERE 1=1", Class::DeleteAll},
    {"DELETE FROM accounts WHERE true", Class::DeleteAll},
    {"DELETE FROM accounts WHERE id = 5 OR 1 = 1", Class::DeleteAll},
    {"DELETE FROM accounts WHERE 'a' = 'a'", Class::DeleteAll},
    {"UPDATE accounts SET balance = 0", Class::UpdateAll},
    {"UPDATE accounts SET balance = 0 WHERE 't'::boolean", Class::UpdateAll},
    {"WITH gone AS (DELETE FROM accounts RETURNING *) SELECT count(*) FROM gone", Class::DeleteAll},
    {"ALTER TABLE accounts DROP COLUMN email", Class::AlterDrop},
    {"ALTER TABLE accounts DROP CONSTRAINT accounts_pkey", Class::AlterDrop},
    {"EXPLAIN ANALYZE DELETE FROM accounts", Class::DeleteAll},
    {"PREPARE wipe AS DELETE FROM accounts", Class::DeleteAll},
    {"DO $$ BEGIN EXECUTE 'DROP TABLE accounts'; END $$", Class::OpaqueCode},
};

// Harmless statements that look like destructive ones.
const Case kHarmless[] = {
    {"SELECT 'drop table accounts'", Class::Harmless},
    {"SELECT $$DROP TABLE accounts$$", Class::Harmless},
    {"SELECT $tag$ TRUNCATE accounts $tag$", Class::Harmless},
    {"SELECT drop_date FROM accounts", Class::Harmless},
    {"SELECT * FROM \"DROP TABLE accounts\"", Class::Harmless},
    {"SELECT 1 -- DROP TABLE accounts", Class::Harmless},
    {"SELECT /* DROP TABLE accounts */ 1", Class::Harmless},
    {"DELETE FROM accounts WHERE id = 5", Class::Harmless},
    {"DELETE FROM accounts WHERE 1 = 2", Class::Harmless},
    {"DELETE FROM sessions WHERE expires < now()", Class::Harmless},
    {"UPDATE accounts SET balance = 0 WHERE id = 5", Class::Harmless},
    {"UPDATE accounts SET truncated = true WHERE id IN (1, 2)", Class::Harmless},
    {"INSERT INTO audit (action) VALUES ('DROP TABLE accounts')", Class::Harmless},
    {"CREATE TABLE drops (id int)", Class::Harmless},
    {"ALTER TABLE accounts ADD COLUMN dropped_at timestamptz", Class::Harmless},
    {"ALTER TABLE accounts RENAME COLUMN drop_me TO kept", Class::Harmless},
    {"WITH recent AS (SELECT * FROM accounts WHERE id > 10) SELECT * FROM recent", Class::Harmless},
    {"SELECT truncate_log()", Class::Harmless},
    {"CREATE INDEX idx_delete_flag ON accounts (deleted)", Class::Harmless},
    {"COMMENT ON TABLE accounts IS 'never DROP or TRUNCATE this'", Class::Harmless},
    {"BEGIN; SELECT 1; COMMIT", Class::Harmless},
};

TEST(PostgresCorpus, EveryDestructiveStatementIsCaught) {
    for (const auto& c : kDestructive) {
        auto r = classify_postgres_sql(c.sql);
        EXPECT_EQ(class_name(r.verdict()), class_name(c.expected)) << c.sql;
    }
}

TEST(PostgresCorpus, NoHarmlessLookalikeIsRefused) {
    for (const auto& c : kHarmless) {
        auto r = classify_postgres_sql(c.sql);
        EXPECT_EQ(class_name(r.verdict()), "harmless") << c.sql;
    }
}

TEST(PostgresCorpus, IsLargeEnoughToMeanSomething) {
    EXPECT_GE(std::size(kDestructive) + std::size(kHarmless), 40u);
    EXPECT_GE(std::size(kDestructive), 20u);
    EXPECT_GE(std::size(kHarmless), 20u);
}

TEST(PostgresSql, SplitsStatementsAndSaysWhich) {
    auto r = classify_postgres_sql("SELECT 1; DELETE FROM t; SELECT 2");
    ASSERT_EQ(r.statements.size(), 3u);
    EXPECT_EQ(r.statements[0].cls, Class::Harmless);
    EXPECT_EQ(r.statements[1].cls, Class::DeleteAll);
    EXPECT_EQ(r.statements[1].detail, "DELETE without WHERE");
    EXPECT_NE(r.statements[1].text.find("DELETE FROM t"), std::string::npos);
}

TEST(PostgresSql, GarbageIsUnparseableNeverHarmless) {
    auto r = classify_postgres_sql("DROP TABLE (");
    EXPECT_EQ(r.verdict(), Class::Unparseable);
    EXPECT_NE(r.statements[0].detail.find("parse error"), std::string::npos);
    EXPECT_EQ(classify_postgres_sql("\x01\x02 garbage").verdict(), Class::Unparseable);
}

TEST(PostgresSql, DropDetailNamesTheObject) {
    EXPECT_EQ(classify_postgres_sql("DROP TABLE t").statements[0].detail, "DROP TABLE");
    EXPECT_EQ(classify_postgres_sql("DROP DATABASE d").statements[0].detail, "DROP DATABASE");
}

std::vector<uint8_t> pg_message(char type, const std::string& body) {
    std::vector<uint8_t> out{static_cast<uint8_t>(type)};
    uint32_t len = static_cast<uint32_t>(body.size() + 4);
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(len >> s));
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

TEST(PostgresWire, SimpleQueryMessage) {
    auto q = pg_message('Q', std::string("DROP TABLE accounts") + '\0');
    EXPECT_EQ(classify_postgres_messages(q).verdict(), Class::Drop);
}

TEST(PostgresWire, ParseMessageOfTheExtendedProtocolAmongOthers) {
    auto p = pg_message(
        'P', std::string("stmt1") + '\0' + "TRUNCATE accounts" + '\0' + std::string(2, '\0'));
    auto b = pg_message('B', std::string("\0stmt1\0\0\0\0\0\0\0", 13));
    auto s = pg_message('S', "");
    std::vector<uint8_t> all = p;
    all.insert(all.end(), b.begin(), b.end());
    all.insert(all.end(), s.begin(), s.end());
    EXPECT_EQ(classify_postgres_messages(all).verdict(), Class::Truncate);
}

TEST(PostgresWire, HarmlessQueryAndOtherMessages) {
    auto q = pg_message('Q', std::string("SELECT 'DROP TABLE x'") + '\0');
    auto x = pg_message('X', "");
    q.insert(q.end(), x.begin(), x.end());
    EXPECT_EQ(classify_postgres_messages(q).verdict(), Class::Harmless);
}

TEST(PostgresWire, CutShortOrMalformedIsUnparseable) {
    auto q = pg_message('Q', std::string("DROP TABLE accounts") + '\0');
    q.resize(q.size() - 5);  // the rest would come in the next write
    EXPECT_EQ(classify_postgres_messages(q).verdict(), Class::Unparseable);
    auto no_nul = pg_message('Q', "SELECT 1");
    EXPECT_EQ(classify_postgres_messages(no_nul).verdict(), Class::Unparseable);
    std::vector<uint8_t> bad_len = {'Q', 0xff, 0xff, 0xff, 0xff, 'x'};
    EXPECT_EQ(classify_postgres_messages(bad_len).verdict(), Class::Unparseable);
}

std::span<const uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(Redis, DestructiveCommandsInRespAndInline) {
    EXPECT_EQ(classify_redis(bytes("*1\r\n$8\r\nFLUSHALL\r\n")).verdict(), Class::FlushAll);
    EXPECT_EQ(classify_redis(bytes("*2\r\n$7\r\nflushdb\r\n$5\r\nASYNC\r\n")).verdict(),
              Class::FlushAll);
    EXPECT_EQ(classify_redis(bytes("FLUSHALL\r\n")).verdict(), Class::FlushAll);
    EXPECT_EQ(classify_redis(bytes("  shutdown   nosave\n")).verdict(), Class::ShutdownNoSave);
    EXPECT_EQ(classify_redis(bytes("*3\r\n$6\r\nSWAPDB\r\n$1\r\n0\r\n$1\r\n1\r\n")).verdict(),
              Class::SwapDb);
    EXPECT_EQ(
        classify_redis(bytes("*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$3\r\ndir\r\n$4\r\n/tmp\r\n"))
            .verdict(),
        Class::ConfigSetPath);
    EXPECT_EQ(classify_redis(
                  bytes("*3\r\n$4\r\nEVAL\r\n$29\r\nreturn redis.call('flushall')\r\n$1\r\n0\r\n"))
                  .verdict(),
              Class::OpaqueCode);
}

TEST(Redis, PipelinedCommandsAreEachClassified) {
    auto r =
        classify_redis(bytes("*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
                             "*1\r\n$7\r\nFLUSHDB\r\n*1\r\n$4\r\nEXEC\r\n"));
    ASSERT_EQ(r.statements.size(), 4u);
    EXPECT_EQ(r.verdict(), Class::FlushAll);
    EXPECT_EQ(r.statements[2].text, "FLUSHDB");
}

TEST(Redis, HarmlessLookalikes) {
    EXPECT_EQ(
        classify_redis(bytes("*3\r\n$3\r\nSET\r\n$8\r\nflushall\r\n$8\r\nFLUSHALL\r\n")).verdict(),
        Class::Harmless);
    EXPECT_EQ(classify_redis(bytes("*2\r\n$3\r\nGET\r\n$8\r\nshutdown\r\n")).verdict(),
              Class::Harmless);
    EXPECT_EQ(classify_redis(bytes("*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$3\r\ndir\r\n")).verdict(),
              Class::Harmless);
    EXPECT_EQ(classify_redis(bytes("SHUTDOWN SAVE\r\n")).verdict(), Class::Harmless);
}

TEST(Redis, CutShortIsUnparseable) {
    EXPECT_EQ(classify_redis(bytes("*2\r\n$8\r\nFLUSHALL\r\n")).verdict(), Class::Unparseable);
    EXPECT_EQ(classify_redis(bytes("*1\r\n$8\r\nFLUSH")).verdict(), Class::Unparseable);
    EXPECT_EQ(classify_redis(bytes("*x\r\n")).verdict(), Class::Unparseable);
    EXPECT_EQ(classify_redis(bytes("FLUSHALL")).verdict(), Class::Unparseable);
}

}  // namespace
}  // namespace ks::db
