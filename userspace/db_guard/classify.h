// What a database request does, decided from the bytes a client sends.
//
// PostgreSQL statements are parsed with PostgreSQL's own grammar (libpg_query);
// Redis requests with a RESP reader. A request that cannot be parsed is never
// taken as harmless: it is classified Unparseable, and the policy decides.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ks::db {

// The values of the classes between Harmless and Unparseable are the
// kernel's reasons (enum ks_db_reason) and share their names.
enum class Class {
    Harmless,
    Drop,  // DROP TABLE/DATABASE/SCHEMA/VIEW/..., DROP OWNED
    Truncate,
    DeleteAll,   // DELETE with no WHERE, or one that is always true
    UpdateAll,   // UPDATE likewise
    AlterDrop,   // ALTER TABLE ... DROP COLUMN (or a MySQL partition)
    OpaqueCode,  // EXECUTE of a string, EVALSHA...: code whose statements cannot be seen
    FlushAll,    // Redis FLUSHALL / FLUSHDB
    ShutdownNoSave,
    SwapDb,
    ConfigSetPath,  // Redis CONFIG SET of where or whether data is kept
    // Not destructive: passed unless the policy refuses them, and recorded.
    SchemaChange,  // DROP INDEX; ALTER TABLE ... DROP NOT NULL/DEFAULT/CONSTRAINT/INDEX...
    Bookkeeping,   // DELETE/UPDATE of every row of a migration tool's table
    // Destructive: the server reads, writes or runs something on its host, or
    // loads code (COPY ... PROGRAM / a server file, lo_export, ALTER SYSTEM,
    // untrusted languages; INTO OUTFILE, LOAD_FILE, INSTALL PLUGIN, SET
    // GLOBAL; MODULE LOAD, DEBUG, MIGRATE).
    HostAccess,
    Unparseable,
};

std::string_view class_name(Class c);

// ASCII case folding of SQL words, Redis commands and names.
std::string ascii_upper(std::string_view s);
std::string ascii_lower(std::string_view s);
// A statement's first word in upper case, past comments, spaces and
// parentheses ("" when it starts with none).
std::string first_word(std::string_view sql);
bool is_destructive(Class c);  // Drop to ConfigSetPath, HostAccess
// The class's bit in a set of classes (ks_db_config.refuse_classes); 0 for
// Harmless and Unparseable.
uint32_t class_bit(Class c);

// The tables migration tools keep their own state in (django_migrations,
// alembic_version, knex_migrations_lock...): a DELETE or UPDATE that reaches
// every row of one is Bookkeeping. Lower case.
const std::vector<std::string>& builtin_bookkeeping_tables();

// What the policy tells the classifiers.
struct Options {
    // databases.bookkeeping_tables, beside the built-in ones.
    std::vector<std::string> bookkeeping_tables;
};

// name: a table name without schema, unquoted, in any case.
bool is_bookkeeping_table(std::string_view name, const Options& options);

// The kernel's key for a bookkeeping table (map db_bookkeeping): FNV-1a of
// the name in lower case; and the keys of the whole list.
uint64_t bookkeeping_key(std::string_view name);
std::vector<uint64_t> bookkeeping_keys(const Options& options);

struct Statement {
    std::string text;  // the statement (or command) as sent
    Class cls = Class::Harmless;
    std::string detail;  // "DROP TABLE", "DELETE without WHERE", the parse error...
    // A PostgreSQL DROP TABLE or ALTER TABLE ... DROP COLUMN that loses
    // nothing but the rows of these tables (SQL identifiers, quoted and
    // qualified as written): nothing at all when they have none. Empty for
    // everything else.
    std::vector<std::string> tables;

    // A PostgreSQL DELETE or UPDATE (a writable CTE's too), or a MySQL
    // single-table one, whose WHERE may limit the rows it reaches, but which
    // the text alone cannot show does: its tables (identifiers quoted as
    // above; only: ONLY was written). The relay asks the server how many
    // rows that is (databases.effect).
    struct Target {
        std::string table;
        bool only = false;
        // Columns the WHERE holds equal to a constant in a top-level AND
        // (id = 5, "email" = 'a' AND ...): a unique key among them pins the
        // statement to one row at most.
        std::vector<std::string> eq_columns;
        // MySQL: the table as the probe names it (schema: "" for the
        // connection's database; name as written), what the statement
        // reads its rows from ("t [AS a] WHERE cond", the statement's own
        // text) and the LIMIT it writes (-1: none). eq_columns in lower case.
        std::string schema, name, from_where;
        long long limit = -1;
        // A DELETE or UPDATE in the body of a function, procedure, rule
        // (PostgreSQL), trigger or event (MySQL) the statement creates
        // ("CREATE FUNCTION", ...;
        // empty: the statement's own), judged when it is created. body:
        // that statement, as the probe may EXPLAIN it now (the function's
        // variables outside its WHERE read as NULL) unless unaskable says
        // why it cannot be asked (its WHERE reads a value each call gives;
        // its text is no statement of its own, BEGIN ATOMIC or a rule's
        // action: body empty; MySQL's body is its text, what the probe counts
        // is from_where). eq_variables: columns its WHERE holds equal to a
        // variable (one value per call), with the variable's name, which
        // pins it only when no column of the table has that name.
        std::string body_of, body, unaskable;
        std::vector<std::pair<std::string, std::string>> eq_variables;
    };
    std::vector<Target> reaches;
    // What the server said a statement of reaches would reach: the
    // planner's rows, of about total in the table (-1: not known).
    struct Reach {
        std::string table;  // schema.table, as the server names it
        std::string op;     // "DELETE", "UPDATE"
        double rows = 0;
        double total = -1;
    };
    std::vector<Reach> reached;
    // Transaction control (PostgreSQL): BEGIN or START TRANSACTION, or one
    // that ends a transaction or a savepoint (COMMIT, ROLLBACK, SAVEPOINT...).
    enum class Tx : uint8_t { None, Begin, Other };
    Tx tx = Tx::None;
    // MySQL: a statement of the body of a stored program that an earlier
    // statement of the request creates (the text is split at every ';',
    // a BEGIN ... END body's too).
    bool body_part = false;
    // A PostgreSQL SET (or RESET): the setting, lowercase, as the parser
    // names it ("timezone" for SET TIME ZONE, "constraints" for SET
    // CONSTRAINTS, "" for RESET ALL).
    std::string setting;
};

struct Classification {
    std::vector<Statement> statements;

    // The most severe: any destructive statement, else Unparseable, else a
    // schema change or bookkeeping, else Harmless.
    [[nodiscard]] Class verdict() const;
    [[nodiscard]] const Statement* first_of(Class c) const;
    // The first statement of a class in the set (class_bit), or null.
    [[nodiscard]] const Statement* first_in(uint32_t classes) const;
};

// SQL text, possibly several statements.
Classification classify_postgres_sql(std::string_view sql, const Options& options = {});

// A statement of the extended protocol with the values of its Bind (text
// format; nullopt: NULL) in place of its $n, as escape string constants,
// untyped like the parameters: what the server would run, for EXPLAIN.
// nullopt: it does not parse, or a $n has no value.
std::optional<std::string> bind_postgres_params(
    std::string_view sql, const std::vector<std::optional<std::string>>& values);

// Frontend protocol messages after startup: the simple Query ('Q') and the
// extended protocol's Parse ('P') carry SQL; other messages carry none. A
// buffer may hold several messages; a message cut short is Unparseable.
Classification classify_postgres_messages(std::span<const uint8_t> bytes,
                                          const Options& options = {});

// MySQL/MariaDB text, possibly several statements; executable comments
// (/*! ... */, /*!50000 ... */, MariaDB's /*M! ... */) are read as the code they are.
Classification classify_mysql_sql(std::string_view sql, const Options& options = {});

// A prepared statement with the values of its COM_STMT_EXECUTE (each an SQL
// literal: 5, 'text', NULL) in place of its ? marks, in order: what the
// server runs, for the relay's probe. nullopt: not one statement, or not as
// many values as marks.
std::optional<std::string> bind_mysql_params(std::string_view sql,
                                             const std::vector<std::string>& literals);

// Client packets: COM_QUERY and COM_STMT_PREPARE carry SQL; others none.
Classification classify_mysql_packets(std::span<const uint8_t> bytes, const Options& options = {});

// MongoDB OP_MSG (opcode 2013): the command is the first key of the body
// section; delete's filters may come in a document-sequence section.
// Compressed (OP_COMPRESSED) and other opcodes are Unparseable.
Classification classify_mongodb(std::span<const uint8_t> bytes);

// RESP arrays ("*2\r\n$7\r\nFLUSHDB\r\n...") and inline commands ("FLUSHALL\r\n");
// several commands may follow each other (pipelining, MULTI/EXEC).
Classification classify_redis(std::span<const uint8_t> bytes);

}  // namespace ks::db
