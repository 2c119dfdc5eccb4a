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

namespace ks {
namespace {

Subject in_session(const std::string& name) {
    Subject s;
    s.pid = 42;
    s.session = name;
    return s;
}

TEST(RefusalMessage, NamesWhatTheRuleWhoAndHowToAllowIt) {
    Decision d{.verdict = Verdict::Block,
               .action = Action::Block,
               .follow_up = SessionAction::Freeze,
               .prevented = true,
               .rule = "exec:rm-recursive (protect:/srv/data)",
               .reason = "rm -r reaches a protected directory",
               .what = "rm -rf /srv/data",
               .task = TaskStep::Kill};
    ASSERT_TRUE(tells_offender(d));
    std::string m = refusal_message(d, in_session("fix-migrations"));
    EXPECT_NE(m.find("killswitch: refused rm -rf /srv/data: rm -r reaches a protected directory "
                     "(rule exec:rm-recursive (protect:/srv/data))"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("killed before it could do it"), std::string::npos) << m;
    EXPECT_NE(m.find("session fix-migrations is frozen"), std::string::npos) << m;
    EXPECT_NE(m.find("killswitch thaw --session fix-migrations"), std::string::npos) << m;
    EXPECT_NE(m.find("killswitch allow --session fix-migrations --for 30m"), std::string::npos)
        << m;
    EXPECT_EQ(m.back(), '\n');
}

TEST(RefusalMessage, AHoldSaysHowAPersonDecides) {
    Decision d{.verdict = Verdict::Hold,
               .prevented = true,
               .rule = "protect:/srv/data",
               .what = "unlink /srv/data/x"};
    std::string m = refusal_message(d, in_session("s"), 7, 120);
    EXPECT_NE(m.find("killswitch: held unlink /srv/data/x"), std::string::npos) << m;
    EXPECT_NE(m.find("killswitch approve 7 (or deny 7); denied after 120s"), std::string::npos)
        << m;
    EXPECT_EQ(m.find("killswitch allow"), std::string::npos) << "a hold is decided, not allowed";
}

TEST(RefusalMessage, SelfProtectionOffersNoWindowAndStoppedAfterSaysSo) {
    Decision tamper{.verdict = Verdict::Block,
                    .no_window = true,
                    .rule = "self:signal",
                    .reason = "SIGKILL to pid 1",
                    .what = "a signal call aimed at killswitch or the kernel"};
    std::string m = refusal_message(tamper, in_session("s"));
    EXPECT_NE(m.find("killswitch: stopped a signal call"), std::string::npos) << m;
    EXPECT_NE(m.find("the process was killed as it returned"), std::string::npos) << m;
    EXPECT_EQ(m.find("killswitch allow"), std::string::npos) << "no window covers self rules";
}

TEST(RefusalMessage, NobodyIsToldOfWhatWasLetThroughOrOnlyRecorded) {
    EXPECT_FALSE(tells_offender(Decision{.verdict = Verdict::Allow}));
    EXPECT_FALSE(tells_offender(Decision{.verdict = Verdict::Allowed, .window = true}));
    EXPECT_FALSE(tells_offender(Decision{.verdict = Verdict::Audit}));
    EXPECT_FALSE(tells_offender(Decision{.verdict = Verdict::WouldBlock, .monitor = true}));
    EXPECT_FALSE(tells_offender(Decision{.verdict = Verdict::Deferred}));
    EXPECT_FALSE(tells_offender(Decision{.verdict = Verdict::Refused, .quiet = true}));
    EXPECT_TRUE(tells_offender(Decision{.verdict = Verdict::Refused}));
}

}  // namespace
}  // namespace ks
