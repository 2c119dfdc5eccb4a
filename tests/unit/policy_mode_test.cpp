// Monitor mode per rule: protect.mode, a protected path's own mode, and
// databases.mode; the policy's mode: monitor wins over all of them.
#include <gtest/gtest.h>

#include "policy/policy.h"

namespace ks::policy {
namespace {

LoadResult parse(const std::string& text) { return parse_policy(text, "m.yaml"); }

std::vector<std::string> errors(const LoadResult& r) {
    std::vector<std::string> out;
    for (const auto& e : r.errors) out.push_back(e.str());
    return out;
}

TEST(PolicyMode, DefaultsEnforceEverywhere) {
    Policy p = default_policy();
    EXPECT_EQ(p.protect_mode, Mode::Enforce);
    EXPECT_EQ(p.db_mode, Mode::Enforce);
    EXPECT_TRUE(p.protect_path_modes.empty());
    EXPECT_EQ(protect_path_mode(p, "/var/lib/mysql"), Mode::Enforce);
}

TEST(PolicyMode, PerPathSectionAndDatabaseModesAreRead) {
    auto r = parse(
        "protect:\n"
        "  mode: monitor\n"
        "  paths:\n"
        "    - /srv/a\n"
        "    - {path: /srv/b, mode: enforce}\n"
        "    - {path: /srv/c, action: hold, mode: monitor}\n"
        "databases:\n"
        "  mode: monitor\n");
    ASSERT_TRUE(r.policy) << errors(r).at(0);
    const Policy& p = *r.policy;
    EXPECT_EQ(p.mode, Mode::Enforce);
    EXPECT_EQ(p.protect_mode, Mode::Monitor);
    EXPECT_EQ(p.db_mode, Mode::Monitor);
    EXPECT_EQ(protect_path_mode(p, "/srv/a"), Mode::Monitor) << "protect.mode applies";
    EXPECT_EQ(protect_path_mode(p, "/srv/b"), Mode::Enforce) << "the entry's own mode wins";
    EXPECT_EQ(protect_path_mode(p, "/srv/c"), Mode::Monitor);
    EXPECT_EQ(p.protect_path_actions.at("/srv/c"), Action::Hold);
}

TEST(PolicyMode, GlobalMonitorWinsOverAnEnforcedRule) {
    auto r = parse(
        "mode: monitor\n"
        "protect:\n"
        "  paths: [{path: /srv/b, mode: enforce}]\n"
        "databases:\n"
        "  mode: enforce\n");
    ASSERT_TRUE(r.policy);
    EXPECT_EQ(protect_path_mode(*r.policy, "/srv/b"), Mode::Monitor);
    EXPECT_EQ(effective_mode(*r.policy, r.policy->db_mode), Mode::Monitor);
}

TEST(PolicyMode, BadModesAreReportedAtTheirValue) {
    auto r = parse(
        "version: 1\n"
        "protect:\n"
        "  mode: monitr\n"
        "  paths:\n"
        "    - {path: /srv/a, mode: yes}\n"
        "    - {path: /srv/b, mod: monitor}\n"
        "    - {path: /srv/c, action: hold, mode: monitor}\n"
        "databases:\n"
        "  mode: [monitor]\n");
    EXPECT_FALSE(r.policy);
    EXPECT_EQ(errors(r),
              (std::vector<std::string>{
                  "m.yaml:3:9: error: protect.mode must be 'enforce' or 'monitor', got 'monitr'",
                  "m.yaml:5:28: error: protect.paths mode must be 'enforce' or 'monitor', got "
                  "'yes'",
                  "m.yaml:6:22: error: unknown key 'mod' in protect.paths entry (expected one of: "
                  "path, action, mode, session)",
                  "m.yaml:9:9: error: databases.mode must be 'enforce' or 'monitor', got a "
                  "list"}));
}

TEST(PolicyMode, QuotedModeIsAStringAndStillAMode) {
    auto r = parse("protect:\n  paths: [{path: /srv/a, mode: \"monitor\"}]\n");
    ASSERT_TRUE(r.policy) << errors(r).at(0);
    EXPECT_EQ(protect_path_mode(*r.policy, "/srv/a"), Mode::Monitor);
}

}  // namespace
}  // namespace ks::policy
