// MySQL statements and packets; MongoDB OP_MSG messages built byte by byte
// from the specification (header, flagBits, kind 0 body, kind 1 sequences).
#include <gtest/gtest.h>

#include <cstring>

#include "db_guard/classify.h"

namespace ks::db {
namespace {

struct Case {
    const char* sql;
    Class expected;
};

const Case kMysql[] = {
    {"DROP TABLE accounts", Class::Drop},
    {"drop database if exists shop", Class::Drop},
    {"/*!40101 DROP TABLE accounts */", Class::Drop},
    {"SELECT 1 /*!50000 ; DROP TABLE accounts */", Class::Drop},
    {"DR/**/OP TABLE accounts", Class::Unparseable},  // not SQL: never harmless
    {"TRUNCATE TABLE `accounts`", Class::Truncate},
    {"DELETE FROM accounts", Class::DeleteAll},
    {"DELETE FROM accounts WHERE 1=1", Class::DeleteAll},
    {"delete from accounts where id = 3 or 1 = 1", Class::DeleteAll},
    {"DELETE FROM accounts WHERE TRUE LIMIT 100", Class::DeleteAll},
    {"UPDATE accounts SET balance = 0", Class::UpdateAll},
    {"UPDATE accounts SET balance = 0 WHERE ('x' = 'x')", Class::UpdateAll},
    {"ALTER TABLE accounts DROP COLUMN email", Class::AlterDrop},
    {"SELECT 1; DROP TABLE accounts", Class::Drop},
    {"PREPARE s FROM 'DROP TABLE accounts'", Class::Drop},
    // Lookalikes
    {"SELECT 'DROP TABLE accounts'", Class::Harmless},
    {"SELECT \"DROP TABLE accounts\"", Class::Harmless},
    {"SELECT 1 -- DROP TABLE accounts", Class::Harmless},
    {"SELECT 1 # DROP TABLE accounts", Class::Harmless},
    {"SELECT /* DROP TABLE accounts */ 1", Class::Harmless},
    {"SELECT drop_date FROM `drop`", Class::Harmless},
    {"SELECT 'it\\'s; DROP TABLE x'", Class::Harmless},
    {"DELETE FROM accounts WHERE id = 5", Class::Harmless},
    {"DELETE FROM accounts WHERE 1 = 1 AND id = 5", Class::Harmless},
    {"UPDATE accounts SET n = 1 WHERE id = 1", Class::Harmless},
    {"ALTER TABLE accounts ALTER COLUMN n DROP DEFAULT", Class::Harmless},
    {"SHOW TABLES", Class::Harmless},
    {"PREPARE s FROM 'SELECT * FROM accounts WHERE id = ?'", Class::Harmless},
};

TEST(Mysql, CorpusOfDestructiveStatementsAndLookalikes) {
    for (const auto& c : kMysql)
        EXPECT_EQ(class_name(classify_mysql_sql(c.sql).verdict()), class_name(c.expected)) << c.sql;
}

TEST(Mysql, UnclosedQuotesAndCommentsAreUnparseable) {
    EXPECT_EQ(classify_mysql_sql("SELECT 'abc").verdict(), Class::Unparseable);
    EXPECT_EQ(classify_mysql_sql("SELECT 1 /* open").verdict(), Class::Unparseable);
    EXPECT_EQ(classify_mysql_sql("/*!50000 DROP TABLE t").verdict(), Class::Unparseable);
}

std::vector<uint8_t> mysql_packet(uint8_t command, const std::string& text, uint8_t seq = 0) {
    size_t len = text.size() + 1;
    std::vector<uint8_t> p(4 + len);
    p[0] = static_cast<uint8_t>(len);
    p[1] = static_cast<uint8_t>(len >> 8);
    p[2] = static_cast<uint8_t>(len >> 16);
    p[3] = seq;
    p[4] = command;
    std::copy(text.begin(), text.end(), p.begin() + 5);
    return p;
}

TEST(Mysql, ComQueryAndComStmtPreparePackets) {
    EXPECT_EQ(classify_mysql_packets(mysql_packet(0x03, "DROP TABLE t")).verdict(), Class::Drop);
    EXPECT_EQ(classify_mysql_packets(mysql_packet(0x16, "DELETE FROM t")).verdict(),
              Class::DeleteAll);
    EXPECT_EQ(classify_mysql_packets(mysql_packet(0x03, "SELECT 1")).verdict(), Class::Harmless);
    EXPECT_EQ(classify_mysql_packets(mysql_packet(0x0e, "")).verdict(),
              Class::Harmless);  // COM_PING
    auto cut = mysql_packet(0x03, "DROP TABLE accounts");
    cut.resize(10);
    EXPECT_EQ(classify_mysql_packets(cut).verdict(), Class::Unparseable);
}

// ---- a minimal BSON writer for the tests ----

struct Bson {
    std::string body;
    Bson& str(const std::string& k, const std::string& v) {
        body += '\x02' + k + '\0';
        uint32_t n = static_cast<uint32_t>(v.size() + 1);
        body.append(reinterpret_cast<const char*>(&n), 4);
        body += v + '\0';
        return *this;
    }
    Bson& i32(const std::string& k, int32_t v) {
        body += '\x10' + k + '\0';
        body.append(reinterpret_cast<const char*>(&v), 4);
        return *this;
    }
    Bson& boolean(const std::string& k, bool v) {
        body += '\x08' + k + '\0';
        body += v ? '\x01' : '\x00';
        return *this;
    }
    Bson& doc(const std::string& k, const Bson& d, char type = '\x03') {
        body += type + k + '\0' + d.bytes();
        return *this;
    }
    Bson& array(const std::string& k, const std::vector<Bson>& items) {
        Bson a;
        for (size_t i = 0; i < items.size(); ++i) a.doc(std::to_string(i), items[i]);
        return doc(k, a, '\x04');
    }
    [[nodiscard]] std::string bytes() const {
        uint32_t n = static_cast<uint32_t>(body.size() + 5);
        std::string out(reinterpret_cast<const char*>(&n), 4);
        return out + body + '\0';
    }
};

std::vector<uint8_t> op_msg(const Bson& body, const std::string& seq_ident = "",
                            const std::vector<Bson>& seq = {}, int32_t opcode = 2013) {
    std::string sections = std::string(1, '\0') + body.bytes();
    if (!seq_ident.empty()) {
        std::string docs;
        for (const auto& d : seq) docs += d.bytes();
        uint32_t size = static_cast<uint32_t>(4 + seq_ident.size() + 1 + docs.size());
        sections += '\x01';
        sections.append(reinterpret_cast<const char*>(&size), 4);
        sections += seq_ident + '\0' + docs;
    }
    uint32_t flags = 0;
    int32_t req = 7, resp = 0;
    uint32_t len = static_cast<uint32_t>(16 + 4 + sections.size());
    std::string m(reinterpret_cast<const char*>(&len), 4);
    m.append(reinterpret_cast<const char*>(&req), 4);
    m.append(reinterpret_cast<const char*>(&resp), 4);
    m.append(reinterpret_cast<const char*>(&opcode), 4);
    m.append(reinterpret_cast<const char*>(&flags), 4);
    m += sections;
    return {m.begin(), m.end()};
}

TEST(MongoDb, DropDatabaseAndDrop) {
    EXPECT_EQ(classify_mongodb(op_msg(Bson().i32("dropDatabase", 1).str("$db", "shop"))).verdict(),
              Class::Drop);
    auto r = classify_mongodb(op_msg(Bson().str("drop", "orders").str("$db", "shop")));
    EXPECT_EQ(r.verdict(), Class::Drop);
    EXPECT_EQ(r.statements[0].text, "drop orders");
}

TEST(MongoDb, DeleteWithAnEmptyFilterInTheBodyOrInASequence) {
    Bson all = Bson().doc("q", Bson()).i32("limit", 0);
    Bson one = Bson().doc("q", Bson().i32("_id", 5)).i32("limit", 1);
    EXPECT_EQ(classify_mongodb(
                  op_msg(Bson().str("delete", "orders").array("deletes", {all}).str("$db", "shop")))
                  .verdict(),
              Class::DeleteAll);
    EXPECT_EQ(classify_mongodb(
                  op_msg(Bson().str("delete", "orders").str("$db", "shop"), "deletes", {one, all}))
                  .verdict(),
              Class::DeleteAll);
    EXPECT_EQ(classify_mongodb(
                  op_msg(Bson().str("delete", "orders").str("$db", "shop"), "deletes", {one}))
                  .verdict(),
              Class::Harmless);
}

TEST(MongoDb, UpdateEveryDocument) {
    Bson every = Bson()
                     .doc("q", Bson())
                     .doc("u", Bson().doc("$set", Bson().i32("x", 0)))
                     .boolean("multi", true);
    Bson single = Bson().doc("q", Bson()).doc("u", Bson().doc("$set", Bson().i32("x", 0)));
    EXPECT_EQ(
        classify_mongodb(op_msg(Bson().str("update", "o").str("$db", "s"), "updates", {every}))
            .verdict(),
        Class::UpdateAll);
    EXPECT_EQ(
        classify_mongodb(op_msg(Bson().str("update", "o").str("$db", "s"), "updates", {single}))
            .verdict(),
        Class::Harmless);
}

TEST(MongoDb, HarmlessCommands) {
    EXPECT_EQ(classify_mongodb(op_msg(Bson().str("find", "drop").str("$db", "shop"))).verdict(),
              Class::Harmless);
    EXPECT_EQ(classify_mongodb(op_msg(Bson().i32("ping", 1).str("$db", "admin"))).verdict(),
              Class::Harmless);
}

TEST(MongoDb, CompressedCutShortOrMalformedIsUnparseable) {
    EXPECT_EQ(classify_mongodb(op_msg(Bson().i32("dropDatabase", 1), "", {}, 2012)).verdict(),
              Class::Unparseable);
    auto m = op_msg(Bson().i32("dropDatabase", 1));
    m.resize(m.size() - 3);
    EXPECT_EQ(classify_mongodb(m).verdict(), Class::Unparseable);
    auto bad = op_msg(Bson().i32("ping", 1));
    bad[20] = 9;  // unknown section kind
    EXPECT_EQ(classify_mongodb(bad).verdict(), Class::Unparseable);
}

}  // namespace
}  // namespace ks::db
