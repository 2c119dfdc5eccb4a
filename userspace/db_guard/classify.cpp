#include "db_guard/classify.h"

#include <killswitch/abi/events.h>

#include <algorithm>
#include <cctype>

#include "abi/decode.h"
#include "common/fnv.h"

namespace ks::db {

static_assert(static_cast<uint32_t>(Class::Drop) == KS_DBR_DROP &&
              static_cast<uint32_t>(Class::Truncate) == KS_DBR_TRUNCATE &&
              static_cast<uint32_t>(Class::DeleteAll) == KS_DBR_DELETE_ALL &&
              static_cast<uint32_t>(Class::UpdateAll) == KS_DBR_UPDATE_ALL &&
              static_cast<uint32_t>(Class::AlterDrop) == KS_DBR_ALTER_DROP &&
              static_cast<uint32_t>(Class::OpaqueCode) == KS_DBR_OPAQUE_CODE &&
              static_cast<uint32_t>(Class::FlushAll) == KS_DBR_FLUSH &&
              static_cast<uint32_t>(Class::ShutdownNoSave) == KS_DBR_SHUTDOWN &&
              static_cast<uint32_t>(Class::SwapDb) == KS_DBR_SWAPDB &&
              static_cast<uint32_t>(Class::ConfigSetPath) == KS_DBR_CONFIG_PATH &&
              static_cast<uint32_t>(Class::SchemaChange) == KS_DBR_SCHEMA_CHANGE &&
              static_cast<uint32_t>(Class::Bookkeeping) == KS_DBR_BOOKKEEPING &&
              static_cast<uint32_t>(Class::HostAccess) == KS_DBR_HOST_ACCESS &&
              static_cast<uint32_t>(Class::Unparseable) < KS_DBR_FIRST_UNPARSEABLE);

std::string_view class_name(Class c) {
    if (c == Class::Harmless) return "harmless";
    if (class_bit(c) == 0) return "unparseable";
    return db_reason_name(static_cast<uint32_t>(c));
}

bool is_destructive(Class c) { return (class_bit(c) & KS_DB_CLASSES_DESTRUCTIVE) != 0; }

uint32_t class_bit(Class c) {
    auto r = static_cast<uint32_t>(c);
    return r < 32 ? KS_DB_CLASS_BIT(r) & KS_DB_CLASSES_ALL : 0;
}

const std::vector<std::string>& builtin_bookkeeping_tables() {
    static const std::vector<std::string> kTables = {
        "django_migrations",      // Django
        "alembic_version",        // Alembic (SQLAlchemy)
        "knex_migrations",        // knex
        "knex_migrations_lock",   // knex
        "flyway_schema_history",  // Flyway
        "databasechangelog",      // Liquibase
        "databasechangeloglock",  // Liquibase
        "schema_migrations",      // Rails, golang-migrate, dbmate, Ecto
        "ar_internal_metadata",   // Rails
        "_prisma_migrations",     // Prisma
        "sequelizemeta",          // Sequelize ("SequelizeMeta")
    };
    return kTables;
}

bool is_bookkeeping_table(std::string_view name, const Options& options) {
    auto same = [&](const std::string& t) {
        return t.size() == name.size() &&
               std::equal(t.begin(), t.end(), name.begin(), [](char a, char b) {
                   return std::tolower(static_cast<unsigned char>(a)) ==
                          std::tolower(static_cast<unsigned char>(b));
               });
    };
    const auto& builtin = builtin_bookkeeping_tables();
    return std::any_of(builtin.begin(), builtin.end(), same) ||
           std::any_of(options.bookkeeping_tables.begin(), options.bookkeeping_tables.end(), same);
}

std::string ascii_upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

std::string first_word(std::string_view sql) {
    size_t i = 0;
    while (i < sql.size()) {
        char c = sql[i];
        if (std::isspace(static_cast<unsigned char>(c)) || c == '(' || c == ';') {
            ++i;
        } else if (sql.substr(i, 2) == "--" || c == '#') {
            size_t nl = sql.find('\n', i);
            i = nl == std::string_view::npos ? sql.size() : nl + 1;
        } else if (sql.substr(i, 2) == "/*") {
            size_t end = sql.find("*/", i + 2);
            i = end == std::string_view::npos ? sql.size() : end + 2;
        } else {
            break;
        }
    }
    size_t j = i;
    while (j < sql.size() && std::isalpha(static_cast<unsigned char>(sql[j]))) ++j;
    return ascii_upper(sql.substr(i, j - i));
}

std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

uint64_t bookkeeping_key(std::string_view name) { return fnv1a(ascii_lower(name)); }

std::vector<uint64_t> bookkeeping_keys(const Options& options) {
    std::vector<uint64_t> keys;
    for (const auto& t : builtin_bookkeeping_tables()) keys.push_back(bookkeeping_key(t));
    for (const auto& t : options.bookkeeping_tables) keys.push_back(bookkeeping_key(t));
    return keys;
}

Class Classification::verdict() const {
    Class out = Class::Harmless;
    for (const auto& s : statements) {
        if (is_destructive(s.cls)) return s.cls;
        if (s.cls == Class::Unparseable)
            out = Class::Unparseable;
        else if (s.cls != Class::Harmless && out == Class::Harmless)
            out = s.cls;
    }
    return out;
}

const Statement* Classification::first_of(Class c) const {
    for (const auto& s : statements)
        if (s.cls == c) return &s;
    return nullptr;
}

const Statement* Classification::first_in(uint32_t classes) const {
    for (const auto& s : statements)
        if (class_bit(s.cls) & classes) return &s;
    return nullptr;
}

}  // namespace ks::db
