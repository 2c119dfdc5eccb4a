// The wire forms the corpus builds (tests/unit/db_corpus.h), checked byte by
// byte against the protocols' specifications: every case on both sides reads
// these bytes, so they must be what a client sends. And what the classifier
// says about a MongoDB command besides its class.
#include <gtest/gtest.h>

#include "db_corpus.h"
#include "db_guard/classify.h"

namespace ks::db {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes b(std::string_view s) { return {s.begin(), s.end()}; }

TEST(CorpusWire, PostgresMessageIsTypeLengthBody) {
    // Int32 length counts itself, not the type byte
    EXPECT_EQ(corpus::pg_message('Q', std::string_view("SELECT 1\0", 9)),
              b(std::string_view("Q\0\0\0\x0dSELECT 1\0", 14)));
}

TEST(CorpusWire, MysqlPacketIsLengthSequenceCommandText) {
    // int<3> payload length, int<1> sequence id 0, the command byte, the text
    EXPECT_EQ(corpus::mysql_packet(0x03, "SELECT 1"),
              b(std::string_view("\x09\0\0\0\x03SELECT 1", 13)));
}

TEST(CorpusWire, OpMsgHeaderBodyAndSequence) {
    auto m = corpus::op_msg(R"({"ping": 1})");
    // {ping: int32 1}: length 15, type 0x10, "ping\0", 1, the document's NUL
    std::string_view ping("\x0f\0\0\0\x10ping\0\x01\0\0\0\0", 15);
    Bytes want = b(std::string_view("\x24\0\0\0\x07\0\0\0\0\0\0\0\xdd\x07\0\0\0\0\0\0\0", 21));
    want.insert(want.end(), ping.begin(), ping.end());
    EXPECT_EQ(m, want);

    auto s = corpus::op_msg(R"({"ping": 1})", "docs", R"([{}])");
    // kind 1, int32 size (itself, "docs\0", the empty document), "docs\0", {}
    Bytes tail = b(std::string_view("\x01\x0e\0\0\0docs\0\x05\0\0\0\0", 15));
    ASSERT_EQ(s.size(), want.size() + tail.size());
    EXPECT_EQ(static_cast<size_t>(s[0]), want.size() + tail.size());  // the length, low byte
    EXPECT_TRUE(std::equal(tail.begin(), tail.end(), s.end() - tail.size()));
}

TEST(CorpusWire, BsonTypesFromJson) {
    // string 0x02, bool 0x08, document 0x03, array 0x04 with keys "0", "1"
    auto m = corpus::op_msg(R"({"a": "x", "b": true, "c": {}, "d": [1]})");
    std::string_view body(reinterpret_cast<const char*>(m.data()) + 21, m.size() - 21);
    std::string_view want(
        "\x29\0\0\0"
        "\x02"
        "a\0\x02\0\0\0x\0"
        "\x08"
        "b\0\x01"
        "\x03"
        "c\0\x05\0\0\0\0"
        "\x04"
        "d\0\x0c\0\0\0\x10"
        "0\0\x01\0\0\0\0"
        "\0",
        41);
    EXPECT_EQ(body, want);
}

TEST(MongoDb, DropNamesTheCollection) {
    auto r = classify_mongodb(corpus::op_msg(R"({"drop": "orders", "$db": "shop"})"));
    EXPECT_EQ(r.verdict(), Class::Drop);
    EXPECT_EQ(r.statements[0].text, "drop orders");
}

}  // namespace
}  // namespace ks::db
