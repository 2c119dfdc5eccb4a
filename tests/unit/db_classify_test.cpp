// Statement classification in user space: every case of the corpus
// (tests/corpus/db_requests.txt: destructive statements written to slip past
// a naive matcher, harmless lookalikes, PostgreSQL and MySQL messages as sent
// on the wire, Redis RESP, MongoDB OP_MSG), and how a request's statements
// are split and described.
#include <gtest/gtest.h>

#include <map>

#include "db_corpus.h"
#include "db_guard/classify.h"

namespace ks::db {
namespace {

TEST(DbCorpus, TheUserSpaceClassifierGivesEveryCaseItsClass) {
    for (const auto& c : corpus::cases())
        EXPECT_EQ(class_name(corpus::classify(c).verdict()), c.cls) << c.where();
}

TEST(DbCorpus, IsLargeEnoughToMeanSomething) {
    std::map<std::pair<Kind, bool>, size_t> count;  // (kind, harmless) -> cases
    for (const auto& c : corpus::cases()) ++count[{c.kind, c.cls == "harmless"}];
    auto n = [&](Kind kind, bool harmless) { return count[{kind, harmless}]; };
    EXPECT_GE(n(Kind::Postgres, false), 30u);
    EXPECT_GE(n(Kind::Postgres, true), 20u);
    EXPECT_GE(n(Kind::Mysql, false), 15u);
    EXPECT_GE(n(Kind::Mysql, true), 10u);
    EXPECT_GE(n(Kind::Redis, false), 10u);
    EXPECT_GE(n(Kind::Redis, true), 4u);
    EXPECT_GE(n(Kind::Mongodb, false), 6u);
    EXPECT_GE(n(Kind::Mongodb, true), 4u);
}

TEST(DbCorpus, ASyntaxErrorNamesItsLine) {
    auto bad = [](std::string_view text) {
        try {
            corpus::parse(text, "t.txt");
        } catch (const std::runtime_error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_EQ(corpus::parse("# comment\n\npostgres drop drop \"DROP TABLE t\"\n", "t.txt").size(),
              1u);
    EXPECT_NE(bad("\npostgres drop drop \"DROP TABLE t\n").find("t.txt:2:"), std::string::npos);
    EXPECT_NE(bad("postgres drop never \"DROP TABLE t\"").find("unknown kernel verdict"),
              std::string::npos);
    EXPECT_NE(bad("postgres dropped drop \"DROP TABLE t\"").find("unknown class"),
              std::string::npos);
    EXPECT_NE(bad("redis flush flush packet(0x03, \"x\")").find("no packet() for redis"),
              std::string::npos);
}

TEST(PostgresSql, SplitsStatementsAndSaysWhich) {
    auto r = classify_postgres_sql("SELECT 1; DELETE FROM t; SELECT 2");
    ASSERT_EQ(r.statements.size(), 3u);
    EXPECT_EQ(r.statements[0].cls, Class::Harmless);
    EXPECT_EQ(r.statements[1].cls, Class::DeleteAll);
    EXPECT_EQ(r.statements[1].detail, "DELETE without WHERE");
    EXPECT_NE(r.statements[1].text.find("DELETE FROM t"), std::string::npos);
}

TEST(PostgresSql, GarbageIsUnparseableAndSaysWhy) {
    auto r = classify_postgres_sql("DROP TABLE (");
    EXPECT_EQ(r.verdict(), Class::Unparseable);
    EXPECT_NE(r.statements[0].detail.find("parse error"), std::string::npos);
}

TEST(PostgresSql, DropDetailNamesTheObject) {
    EXPECT_EQ(classify_postgres_sql("DROP TABLE t").statements[0].detail, "DROP TABLE");
    EXPECT_EQ(classify_postgres_sql("DROP DATABASE d").statements[0].detail, "DROP DATABASE");
}

TEST(PostgresSql, ASchemaChangeSaysWhatItDrops) {
    auto d = [](const char* sql) { return classify_postgres_sql(sql).statements[0].detail; };
    EXPECT_EQ(d("ALTER TABLE t ALTER c DROP NOT NULL"),
              "ALTER TABLE ... ALTER COLUMN ... DROP NOT NULL");
    EXPECT_EQ(d("ALTER TABLE t ALTER c DROP DEFAULT"),
              "ALTER TABLE ... ALTER COLUMN ... DROP DEFAULT");
    EXPECT_EQ(d("ALTER TABLE t DROP CONSTRAINT k"), "ALTER TABLE ... DROP CONSTRAINT");
    EXPECT_EQ(d("DROP INDEX i"), "DROP INDEX");
    // the column drop after it is what the statement is about
    auto r = classify_postgres_sql("ALTER TABLE t ALTER c DROP NOT NULL, DROP COLUMN d");
    EXPECT_EQ(r.verdict(), Class::AlterDrop);
    EXPECT_EQ(r.statements[0].detail, "ALTER TABLE ... DROP COLUMN");
}

TEST(PostgresSql, BookkeepingNamesTheTableAndTheListCanGrow) {
    auto r = classify_postgres_sql("UPDATE public.\"Knex_Migrations_Lock\" SET is_locked = 0");
    EXPECT_EQ(r.verdict(), Class::Bookkeeping);
    EXPECT_EQ(r.statements[0].detail,
              "UPDATE without WHERE of Knex_Migrations_Lock, a migration tool's table");
    EXPECT_EQ(classify_postgres_sql("DELETE FROM deploy_state").verdict(), Class::DeleteAll);
    EXPECT_EQ(classify_postgres_sql("DELETE FROM deploy_state", {{"Deploy_State"}}).verdict(),
              Class::Bookkeeping);
    EXPECT_EQ(classify_mysql_sql("DELETE FROM `ops`.`DEPLOY_STATE`", {{"deploy_state"}}).verdict(),
              Class::Bookkeeping);
    EXPECT_TRUE(is_bookkeeping_table("sequelizemeta", {}));
    EXPECT_TRUE(is_bookkeeping_table("SequelizeMeta", {}));
    EXPECT_FALSE(is_bookkeeping_table("sequelizemeta2", {}));
}

TEST(Classes, ShareTheKernelsNamesAndOrder) {
    EXPECT_EQ(class_name(Class::SchemaChange), "schema-change");
    EXPECT_EQ(class_name(Class::Bookkeeping), "bookkeeping");
    EXPECT_EQ(class_name(Class::Unparseable), "unparseable");
    EXPECT_EQ(class_name(Class::Harmless), "harmless");
    EXPECT_TRUE(is_destructive(Class::ConfigSetPath));
    EXPECT_FALSE(is_destructive(Class::SchemaChange));
    EXPECT_FALSE(is_destructive(Class::Bookkeeping));
    EXPECT_EQ(class_bit(Class::Unparseable), 0u);
    // a request's verdict: destructive, then unreadable, then the rest
    auto r = classify_postgres_sql("DROP INDEX i; DELETE FROM django_migrations; SELECT (");
    EXPECT_EQ(r.verdict(), Class::Unparseable);
    r = classify_postgres_sql("DROP INDEX i; DELETE FROM django_migrations; TRUNCATE t");
    EXPECT_EQ(r.verdict(), Class::Truncate);
    r = classify_postgres_sql("DROP INDEX i; DELETE FROM django_migrations");
    EXPECT_EQ(r.verdict(), Class::SchemaChange);
}

std::span<const uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(Redis, PipelinedCommandsAreEachClassified) {
    auto r =
        classify_redis(bytes("*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
                             "*1\r\n$7\r\nFLUSHDB\r\n*1\r\n$4\r\nEXEC\r\n"));
    ASSERT_EQ(r.statements.size(), 4u);
    EXPECT_EQ(r.verdict(), Class::FlushAll);
    EXPECT_EQ(r.statements[2].text, "FLUSHDB");
}

}  // namespace
}  // namespace ks::db
