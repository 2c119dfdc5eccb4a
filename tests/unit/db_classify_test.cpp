// Statement classification in user space: every case of the corpus
// (tests/corpus/db_requests.txt: destructive statements written to slip past
// a naive matcher, harmless lookalikes, PostgreSQL and MySQL messages as sent
// on the wire, Redis RESP, MongoDB OP_MSG), and how a request's statements
// are split and described.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

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

// OP_QUERY: drivers' first handshake, and legacy commands on "<db>.$cmd".
std::vector<uint8_t> op_query(const std::string& collection, const std::string& command) {
    auto le32 = [](std::string& s, uint32_t v) {
        for (int shift = 0; shift < 32; shift += 8) s += static_cast<char>((v >> shift) & 0xff);
    };
    std::string e = std::string("\x10") + command + '\0';
    le32(e, 1);
    std::string doc;
    le32(doc, static_cast<uint32_t>(e.size() + 5));
    doc += e + '\0';
    std::string body;
    le32(body, 0);  // flags
    body += collection + '\0';
    le32(body, 0);  // skip
    le32(body, 1);  // return
    body += doc;
    std::string m;
    le32(m, static_cast<uint32_t>(16 + body.size()));
    le32(m, 1);
    le32(m, 0);
    le32(m, 2004);
    m += body;
    return {m.begin(), m.end()};
}

TEST(MongoDb, OpQueryCommandsAreReadLikeOpMsgBodies) {
    EXPECT_EQ(classify_mongodb(op_query("admin.$cmd", "isMaster")).verdict(), Class::Harmless);
    auto drop = classify_mongodb(op_query("shop.$cmd", "dropDatabase"));
    EXPECT_EQ(drop.verdict(), Class::Drop);
    EXPECT_EQ(drop.statements[0].text, "dropDatabase");
    EXPECT_EQ(classify_mongodb(op_query("shop.orders", "status")).verdict(), Class::Harmless)
        << "a legacy find";
    auto cut = op_query("shop.$cmd", "drop");
    cut.resize(cut.size() - 3);
    cut[0] = static_cast<uint8_t>(cut.size());
    EXPECT_EQ(classify_mongodb(cut).verdict(), Class::Unparseable);
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
