// Which classes of database request are refused (databases.refuse) and which
// tables belong to migration tools (databases.bookkeeping_tables): the
// policy's keys and what compile() hands the kernel. How the decisions follow
// them: db_guard_decide_test.cpp.
#include <gtest/gtest.h>

#include "abi/decode.h"
#include "db_guard/classify.h"
#include "db_guard/db_guard_decide.h"
#include "policy/compile.h"
#include "policy/policy.h"

namespace ks {
namespace {

uint32_t bit(uint32_t reason) { return KS_DB_CLASS_BIT(reason); }

policy::LoadResult parse(const std::string& databases) {
    return policy::parse_policy("databases:\n" + databases, "p.yaml");
}

std::string first_error(const std::string& databases) {
    auto r = parse(databases);
    return r.errors.empty() ? std::string() : r.errors[0].str();
}

TEST(PolicyDbRefuse, TheDefaultRefusesEveryDestructiveClassAndPassesSchemaChangesAndBookkeeping) {
    policy::Policy p = policy::default_policy();
    EXPECT_EQ(p.db_refuse_classes, KS_DB_CLASSES_DESTRUCTIVE);
    for (const char* name :
         {"drop", "truncate", "delete-all", "update-all", "alter-drop", "opaque-code", "flush",
          "shutdown-nosave", "swapdb", "config-set-path"})
        EXPECT_TRUE(p.db_refuse_classes & bit(*db_class_reason(name))) << name;
    EXPECT_FALSE(p.db_refuse_classes & bit(KS_DBR_SCHEMA_CHANGE));
    EXPECT_FALSE(p.db_refuse_classes & bit(KS_DBR_BOOKKEEPING));
    EXPECT_TRUE(p.db_bookkeeping_tables.empty());
    // A policy that says nothing about databases gets the same.
    auto r = policy::parse_policy("mode: enforce\n", "p.yaml");
    ASSERT_TRUE(r.policy);
    EXPECT_EQ(r.policy->db_refuse_classes, KS_DB_CLASSES_DESTRUCTIVE);
}

TEST(PolicyDbRefuse, TheListIsTheWholeSetOfClassesRefused) {
    auto r = parse("  refuse: [drop, truncate, schema-change]\n");
    ASSERT_TRUE(r.policy) << r.errors[0].str();
    EXPECT_EQ(r.policy->db_refuse_classes,
              bit(KS_DBR_DROP) | bit(KS_DBR_TRUNCATE) | bit(KS_DBR_SCHEMA_CHANGE));
    r = parse("  refuse:\n    - bookkeeping\n    - update-all\n");
    ASSERT_TRUE(r.policy);
    EXPECT_EQ(r.policy->db_refuse_classes, bit(KS_DBR_BOOKKEEPING) | bit(KS_DBR_UPDATE_ALL));
    r = parse("  refuse: []\n");
    ASSERT_TRUE(r.policy);
    EXPECT_EQ(r.policy->db_refuse_classes, 0u) << "nothing refused, everything recorded";
}

TEST(PolicyDbRefuse, AnUnknownClassIsAnErrorAtItsLineAndColumn) {
    EXPECT_EQ(first_error("  refuse: [drop, dropp]\n"),
              "p.yaml:2:18: error: databases.refuse: unknown class 'dropp' (expected one of: "
              "drop, truncate, delete-all, update-all, alter-drop, opaque-code, flush, "
              "shutdown-nosave, swapdb, config-set-path, schema-change, bookkeeping, host-access)");
    EXPECT_NE(first_error("  refuse:\n    - drop\n    - unparseable\n")
                  .find("p.yaml:4:7: error: databases.refuse: unknown class 'unparseable'"),
              std::string::npos);
    EXPECT_NE(first_error("  refuse: [unparseable]\n").find("databases.unparseable"),
              std::string::npos);
    EXPECT_NE(first_error("  refuse: [harmless]\n").find("never refused"), std::string::npos);
    EXPECT_EQ(first_error("  refuse: drop\n"),
              "p.yaml:2:11: error: databases.refuse must be a list, got 'drop' (write [drop] "
              "for a list of one)");
    auto twice = parse("  refuse: [drop, drop]\n");
    ASSERT_TRUE(twice.policy);
    ASSERT_EQ(twice.warnings.size(), 1u);
    EXPECT_EQ(twice.warnings[0].warning_str(),
              "p.yaml:2:18: warning: class 'drop' is listed twice (first at line 2, column 12)");
}

TEST(PolicyDbRefuse, BookkeepingTablesAreNamesAloneInAnyCase) {
    auto r = parse("  bookkeeping_tables: [deploy_state, Goose_DB_Version, migrations$]\n");
    ASSERT_TRUE(r.policy) << r.errors[0].str();
    EXPECT_EQ(r.policy->db_bookkeeping_tables,
              (std::vector<std::string>{"deploy_state", "goose_db_version", "migrations$"}));
    EXPECT_EQ(first_error("  bookkeeping_tables:\n    - ok\n    - public.schema_versions\n")
                  .rfind("p.yaml:4:7: error: databases.bookkeeping_tables: "
                         "'public.schema_versions' must be a table's name alone",
                         0),
              0u);
    EXPECT_NE(first_error("  bookkeeping_tables: ['\"quoted\"']\n")
                  .find("p.yaml:2:24: error: databases.bookkeeping_tables: '\"quoted\"'"),
              std::string::npos);
    EXPECT_NE(first_error("  bookkeeping_tables: ['']\n").find("must not be empty"),
              std::string::npos);
    auto twice = parse("  bookkeeping_tables: [a, A]\n");
    ASSERT_TRUE(twice.policy);
    EXPECT_EQ(twice.policy->db_bookkeeping_tables, (std::vector<std::string>{"a"}));
    ASSERT_EQ(twice.warnings.size(), 1u);
    std::string many = "  bookkeeping_tables: [";
    for (int i = 0; i < 201; ++i) many += (i ? ", t" : "t") + std::to_string(i);
    EXPECT_NE(first_error(many + "]\n").find("at most 200 tables"), std::string::npos);
}

policy::CompiledPolicy compiled(const std::string& databases) {
    auto r = parse(databases);
    EXPECT_TRUE(r.policy) << (r.errors.empty() ? "" : r.errors[0].str());
    auto c = policy::compile(r.policy.value_or(policy::default_policy()), "",
                             {"", "/sys/fs/cgroup", ""}, nullptr);
    EXPECT_TRUE(c);
    return *c;
}

TEST(PolicyDbRefuse, CompileHandsTheKernelTheClassesAndTheTables) {
    auto c = compiled("  refuse: [drop]\n  bookkeeping_tables: [Deploy_State]\n");
    EXPECT_EQ(c.db_wire.refuse_classes, bit(KS_DBR_DROP));
    EXPECT_EQ(c.db_wire.bookkeeping_tables, (std::vector<std::string>{"deploy_state"}));
    // The keys the kernel looks up: the built-in tables and the policy's.
    auto keys = db::bookkeeping_keys(classify_options(c));
    EXPECT_EQ(keys.size(), db::builtin_bookkeeping_tables().size() + 1);
    EXPECT_NE(std::find(keys.begin(), keys.end(), db::bookkeeping_key("DEPLOY_STATE")), keys.end());
    EXPECT_EQ(db::bookkeeping_key("Knex_Migrations_Lock"),
              db::bookkeeping_key("knex_migrations_lock"));
    // A reload takes them without a restart.
    EXPECT_TRUE(policy::restart_required_changes(policy::default_policy(), c.policy).empty());
}

}  // namespace
}  // namespace ks
