// The protect section's actions and switches.
#include <gtest/gtest.h>

#include "policy/policy.h"

namespace ks::policy {
namespace {

LoadResult parse(const std::string& text) { return parse_policy(text, "p.yaml"); }

std::string first_error(const LoadResult& r) { return r.errors.empty() ? "" : r.errors[0].str(); }

TEST(PolicyProtect, DefaultsBlockLetTheSessionGoOnAndRefuseIoUring) {
    Policy p = default_policy();
    EXPECT_EQ(p.protect_action, Action::Block);
    EXPECT_EQ(p.violation_session_action, SessionAction::None);
    EXPECT_EQ(p.unresolved_action, Action::Block);
    EXPECT_FALSE(p.io_uring_allowed);
    EXPECT_TRUE(p.libc_uprobes);
    EXPECT_EQ(p.hold_timeout_s, 120);
    EXPECT_TRUE(p.protect_path_actions.empty());
}

TEST(PolicyProtect, EveryKeyIsRead) {
    auto r = parse(
        "protect:\n"
        "  paths:\n"
        "    - /srv/a\n"
        "    - {path: /srv/b, action: hold}\n"
        "  action: kill-session\n"
        "  session: none\n"
        "  unresolved: audit\n"
        "  io_uring: allow\n"
        "  hold_timeout: 30\n"
        "  libc_uprobes: false\n");
    ASSERT_TRUE(r.policy) << first_error(r);
    const Policy& p = *r.policy;
    EXPECT_EQ(p.protect_paths, (std::vector<std::string>{"/srv/a", "/srv/b"}));
    ASSERT_EQ(p.protect_path_actions.count("/srv/b"), 1u);
    EXPECT_EQ(p.protect_path_actions.at("/srv/b"), Action::Hold);
    EXPECT_EQ(p.protect_path_actions.count("/srv/a"), 0u);
    EXPECT_EQ(p.protect_action, Action::KillSession);
    EXPECT_EQ(p.violation_session_action, SessionAction::None);
    EXPECT_EQ(p.unresolved_action, Action::Audit);
    EXPECT_TRUE(p.io_uring_allowed);
    EXPECT_EQ(p.hold_timeout_s, 30);
    EXPECT_FALSE(p.libc_uprobes);
}

TEST(PolicyProtect, BadValuesAreReportedWhereTheyAre) {
    EXPECT_EQ(first_error(parse("protect:\n  action: nuke\n")),
              "p.yaml:2:11: error: protect.action must be one of audit, block, kill, freeze, "
              "kill-session, hold; got 'nuke'");
    EXPECT_NE(first_error(parse("protect:\n  session: freeze-all\n")).find("p.yaml:2:12"),
              std::string::npos);
    EXPECT_NE(first_error(parse("protect:\n  io_uring: yes\n")).find("protect.io_uring"),
              std::string::npos);
    EXPECT_NE(first_error(parse("protect:\n  hold_timeout: 0\n")).find("from 1 to 86400"),
              std::string::npos);
    EXPECT_NE(first_error(parse("protect:\n  hold_timeout: 100000\n")).find("from 1 to 86400"),
              std::string::npos);
    EXPECT_NE(first_error(parse("protect:\n  libc_uprobes: maybe\n")).find("p.yaml:2:17"),
              std::string::npos);
}

TEST(PolicyProtect, PathEntryMappingsAreChecked) {
    EXPECT_NE(
        first_error(parse("protect:\n  paths:\n    - {action: hold}\n")).find("needs a 'path'"),
        std::string::npos);
    EXPECT_NE(first_error(parse("protect:\n  paths:\n    - {path: /x, action: maybe}\n"))
                  .find("protect.paths action"),
              std::string::npos);
    EXPECT_NE(first_error(parse("protect:\n  paths:\n    - {path: /x, colour: red}\n"))
                  .find("unknown key 'colour'"),
              std::string::npos);
    EXPECT_NE(first_error(parse("protect:\n  paths:\n    - {path: rel/x}\n")).find("p.yaml:3:14"),
              std::string::npos);
}

TEST(PolicyProtect, ActionNamesRoundTrip) {
    for (Action a : {Action::Audit, Action::Block, Action::Kill, Action::Freeze,
                     Action::KillSession, Action::Hold})
        EXPECT_EQ(parse_action(action_name(a)), a);
    EXPECT_FALSE(parse_action("Block"));
    for (SessionAction a : {SessionAction::None, SessionAction::Freeze, SessionAction::KillSession})
        EXPECT_EQ(parse_session_action(session_action_name(a)), a);
}

}  // namespace
}  // namespace ks::policy
