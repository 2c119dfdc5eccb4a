// What a database request does, decided from the bytes a client sends.
//
// PostgreSQL statements are parsed with PostgreSQL's own grammar (libpg_query);
// Redis requests with a RESP reader. A request that cannot be parsed is never
// taken as harmless: it is classified Unparseable, and the policy decides.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ks::db {

enum class Class {
    Harmless,
    Drop,  // DROP TABLE/DATABASE/SCHEMA/INDEX/VIEW/..., DROP OWNED
    Truncate,
    DeleteAll,   // DELETE with no WHERE, or one that is always true
    UpdateAll,   // UPDATE likewise
    AlterDrop,   // ALTER TABLE ... DROP COLUMN/CONSTRAINT
    OpaqueCode,  // DO blocks, EVALSHA...: code whose statements cannot be seen
    FlushAll,    // Redis FLUSHALL / FLUSHDB
    ShutdownNoSave,
    SwapDb,
    ConfigSetPath,  // Redis CONFIG SET dir/dbfilename
    Unparseable,
};

std::string_view class_name(Class c);
bool is_destructive(Class c);  // everything but Harmless and Unparseable

struct Statement {
    std::string text;  // the statement (or command) as sent
    Class cls = Class::Harmless;
    std::string detail;  // "DROP TABLE", "DELETE without WHERE", the parse error...
};

struct Classification {
    std::vector<Statement> statements;

    // The most severe: any destructive statement, else Unparseable, else Harmless.
    [[nodiscard]] Class verdict() const;
    [[nodiscard]] const Statement* first_of(Class c) const;
};

// SQL text, possibly several statements.
Classification classify_postgres_sql(std::string_view sql);

// Frontend protocol messages after startup: the simple Query ('Q') and the
// extended protocol's Parse ('P') carry SQL; other messages carry none. A
// buffer may hold several messages; a message cut short is Unparseable.
Classification classify_postgres_messages(std::span<const uint8_t> bytes);

// MySQL/MariaDB text, possibly several statements; executable comments
// (/*! ... */, /*!50000 ... */) are read as the code they are.
Classification classify_mysql_sql(std::string_view sql);

// Client packets: COM_QUERY and COM_STMT_PREPARE carry SQL; others none.
Classification classify_mysql_packets(std::span<const uint8_t> bytes);

// MongoDB OP_MSG (opcode 2013): the command is the first key of the body
// section; delete's filters may come in a document-sequence section.
// Compressed (OP_COMPRESSED) and other opcodes are Unparseable.
Classification classify_mongodb(std::span<const uint8_t> bytes);

// RESP arrays ("*2\r\n$7\r\nFLUSHDB\r\n...") and inline commands ("FLUSHALL\r\n");
// several commands may follow each other (pipelining, MULTI/EXEC).
Classification classify_redis(std::span<const uint8_t> bytes);

}  // namespace ks::db
