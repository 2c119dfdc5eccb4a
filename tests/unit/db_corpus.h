// The corpus of database requests that both the user-space classifier and
// the kernel's judges are held to (tests/corpus/db_requests.txt, whose header
// describes the format): reading it, and building each case's bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "db_guard/classify.h"
#include "policy/db_endpoints.h"

namespace ks::db::corpus {

struct Case {
    int line = 0;
    Kind kind = Kind::Postgres;
    std::string cls;     // the user-space class expected (class_name)
    std::string kernel;  // the kernel's verdict expected: "pass", "wait" or a reason's name
    std::string input;   // as written in the corpus
    std::string note;    // after '#', without it
    // postgres and mysql: the input is SQL text (sent in a Query message or a
    // COM_QUERY packet) rather than messages built one by one.
    bool sql = false;
    std::string text;           // the SQL text, when sql
    std::vector<uint8_t> wire;  // what the client sends

    // "db_requests.txt:12: DROP TABLE accounts", for failure messages.
    [[nodiscard]] std::string where() const;
};

// The corpus (KS_DB_CORPUS); throws std::runtime_error naming the line of a
// case it cannot read.
const std::vector<Case>& cases();
std::vector<Case> parse(std::string_view content, std::string_view file);

// What the user-space classifier makes of the case: the daemon's parser for
// SQL text, or for the messages and packets of a wire case.
Classification classify(const Case& c);

// How the kernel's verdict under the default policy stands to the parser's
// class (see the corpus).
enum class Relation { Agree, Stricter, Weaker };
Relation relation(std::string_view cls, std::string_view kernel);
std::string_view relation_name(Relation r);

// The wire forms the corpus builds, byte for byte from the protocols' specs.
std::vector<uint8_t> pg_message(char type, std::string_view body);
std::vector<uint8_t> mysql_packet(uint8_t command, std::string_view text);
// An OP_MSG (requestID 7): flagBits 0, the body section (kind 0), then a
// document sequence (kind 1) when seq_ident is not empty. JSON in, BSON out.
std::vector<uint8_t> op_msg(std::string_view body_json, std::string_view seq_ident = {},
                            std::string_view seq_json = {});

}  // namespace ks::db::corpus
