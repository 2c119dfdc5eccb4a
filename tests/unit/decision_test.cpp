// The pipeline's vocabulary: one name per verdict and action, the ABI's
// action values, and counters that count decisions.
#include "decision/decision.h"

#include <gtest/gtest.h>

#include <set>

namespace ks {
namespace {

TEST(Decision, EveryVerdictHasItsOwnName) {
    std::set<std::string_view> names;
    for (int v = static_cast<int>(Verdict::Allow); v <= static_cast<int>(Verdict::WouldRefuse);
         ++v) {
        auto n = verdict_name(static_cast<Verdict>(v));
        EXPECT_NE(n, "unknown") << v;
        EXPECT_TRUE(names.insert(n).second) << "two verdicts named " << n;
    }
    EXPECT_EQ(names.size(), 17u);
}

TEST(Decision, ActionsAreTheAbiValuesAndRoundTripByName) {
    EXPECT_EQ(action_from_abi(KS_ACT_AUDIT), Action::Audit);
    EXPECT_EQ(action_from_abi(KS_ACT_BLOCK), Action::Block);
    EXPECT_EQ(action_from_abi(KS_ACT_KILL), Action::Kill);
    EXPECT_EQ(action_from_abi(KS_ACT_FREEZE), Action::Freeze);
    EXPECT_EQ(action_from_abi(KS_ACT_KILL_SESSION), Action::KillSession);
    EXPECT_EQ(action_from_abi(KS_ACT_HOLD), Action::Hold);
    EXPECT_FALSE(action_from_abi(KS_ACT_HOLD + 1));
    for (Action a : {Action::Audit, Action::Block, Action::Kill, Action::Freeze,
                     Action::KillSession, Action::Hold}) {
        EXPECT_EQ(parse_action(action_name(a)), a);
        EXPECT_EQ(verdict_name(verdict_for(a)), action_name(a));
        EXPECT_EQ(verdict_name(would(a)), "would-" + std::string(action_name(a)));
        EXPECT_TRUE(is_monitor_verdict(would(a)));
        EXPECT_FALSE(is_monitor_verdict(verdict_for(a)));
    }
    EXPECT_FALSE(parse_action("drop"));
    EXPECT_EQ(parse_session_action("kill-session"), SessionAction::KillSession);
    EXPECT_EQ(session_action_name(SessionAction::None), "none");
}

TEST(Decision, CountersCountVerdictsAndFreezesThatHappened) {
    DecisionCounters c;
    Decision block{.verdict = Verdict::Block, .follow_up = SessionAction::Freeze};
    c.count(block, ActionResult{.session_acted = true});
    c.count(block, ActionResult{.session_acted = true, .session_error = "EACCES"});
    c.count(Decision{.verdict = Verdict::Refused}, {});
    c.count(Decision{.verdict = Verdict::KillSession}, {});
    c.count(Decision{.verdict = Verdict::Hold}, {});
    c.count(Decision{.verdict = Verdict::Allowed, .window = true}, {});
    c.count(Decision{.verdict = Verdict::Allowed}, {});  // harmless
    c.count(Decision{.verdict = Verdict::WouldKill, .monitor = true}, {});
    c.count(Decision{.verdict = Verdict::Allow, .record = false}, {});
    EXPECT_EQ(c.blocked, 3u);
    EXPECT_EQ(c.killed, 1u);
    EXPECT_EQ(c.held, 1u);
    EXPECT_EQ(c.window_allowed, 1u);
    EXPECT_EQ(c.monitored, 1u);
    EXPECT_EQ(c.frozen, 1u) << "a freeze that failed is not counted";
    EXPECT_EQ(c.to_json()["blocked"], 3);
}

}  // namespace
}  // namespace ks
