// Escalation: a refused operation fails and the agent goes on; repeated
// refusals by one session within the policy's window turn into a session
// action. Pure bookkeeping, checked without a kernel.
#include "decision/escalation.h"

#include <gtest/gtest.h>

#include "policy/policy.h"

namespace ks {
namespace {

constexpr uint64_t kSec = 1'000'000'000ull;

Decision refusal() {
    Decision d;
    d.verdict = Verdict::Block;
    d.action = Action::Block;
    d.prevented = true;
    d.rule = "protect:/srv/data";
    return d;
}

TEST(Escalation, TheThirdRefusalWithinTheWindowFreezesTheSession) {
    Escalation e;
    EscalationRule rule{3, 600, SessionAction::Freeze};
    Decision a = refusal(), b = refusal(), c = refusal();
    e.consider(a, 7, 10 * kSec, rule);
    e.consider(b, 7, 20 * kSec, rule);
    EXPECT_EQ(a.follow_up, SessionAction::None);
    EXPECT_EQ(b.follow_up, SessionAction::None);
    EXPECT_EQ(e.count(7, 20 * kSec, rule), 2u);
    e.consider(c, 7, 30 * kSec, rule);
    EXPECT_EQ(c.follow_up, SessionAction::Freeze);
    ASSERT_TRUE(c.escalation);
    EXPECT_EQ(c.escalation->refusals, 3);
    EXPECT_EQ(c.escalation->within_s, 600);
    EXPECT_EQ(e.count(7, 30 * kSec, rule), 0u) << "the count starts again after it escalated";
}

TEST(Escalation, RefusalsOutsideTheWindowOrOfAnotherSessionDoNotAddUp) {
    Escalation e;
    EscalationRule rule{2, 60, SessionAction::KillSession};
    Decision a = refusal(), b = refusal(), c = refusal();
    e.consider(a, 1, 0, rule);
    e.consider(b, 2, 10 * kSec, rule);  // another session
    EXPECT_EQ(b.follow_up, SessionAction::None);
    e.consider(c, 1, 61 * kSec, rule);  // the first fell out of the window
    EXPECT_EQ(c.follow_up, SessionAction::None);
    Decision d = refusal();
    e.consider(d, 1, 62 * kSec, rule);
    EXPECT_EQ(d.follow_up, SessionAction::KillSession);
}

TEST(Escalation, OnlyEnforcedRefusalsCount) {
    Escalation e;
    EscalationRule rule{1, 60, SessionAction::Freeze};
    Decision monitor = refusal();
    monitor.monitor = true;
    monitor.verdict = Verdict::WouldBlock;
    Decision window = refusal();
    window.window = true;
    window.verdict = Verdict::Allowed;
    Decision quiet = refusal();
    quiet.quiet = true;  // another statement of a request already counted
    Decision audit = refusal();
    audit.verdict = Verdict::Audit;
    Decision hold = refusal();
    hold.verdict = Verdict::Hold;  // a person decides; a denial counts
    for (Decision* d : {&monitor, &window, &quiet, &audit, &hold}) {
        e.consider(*d, 5, kSec, rule);
        EXPECT_EQ(d->follow_up, SessionAction::None) << verdict_name(d->verdict);
    }
    Decision refused = refusal();
    refused.verdict = Verdict::Refused;  // a database request
    e.consider(refused, 5, kSec, rule);
    EXPECT_EQ(refused.follow_up, SessionAction::Freeze);
}

TEST(Escalation, NeverWeakensWhatTheRuleAlreadyDoes) {
    Escalation e;
    EscalationRule rule{1, 60, SessionAction::Freeze};
    Decision kill = refusal();
    kill.follow_up = SessionAction::KillSession;
    e.consider(kill, 3, kSec, rule);
    EXPECT_EQ(kill.follow_up, SessionAction::KillSession);
    EXPECT_FALSE(kill.escalation);
    Decision own = refusal();
    own.verdict = Verdict::Freeze;
    own.session = SessionAction::Freeze;
    e.consider(own, 3, 2 * kSec, rule);
    EXPECT_EQ(own.follow_up, SessionAction::None) << "a decision has a session part or a follow-up";
}

TEST(Escalation, AnOperationThatRanBeforeTheStopActsOnTheSessionAtOnce) {
    Escalation e;
    EscalationRule rule{3, 60, SessionAction::Freeze, SessionAction::Freeze};
    Decision after = refusal();
    after.prevented = false;  // a syscall tracepoint: the call completed, then the kill
    e.consider(after, 8, kSec, rule);
    EXPECT_EQ(after.follow_up, SessionAction::Freeze);
    ASSERT_TRUE(after.escalation);
    EXPECT_TRUE(after.escalation->contained);
    Subject s;
    s.session = "run-9";
    EXPECT_NE(refusal_message(after, s).find("could only stop it after the call"),
              std::string::npos)
        << refusal_message(after, s);
    Decision prevented = refusal();
    e.consider(prevented, 8, 2 * kSec, rule);
    EXPECT_EQ(prevented.follow_up, SessionAction::None) << "a prevented refusal only counts";
    EscalationRule lenient{3, 60, SessionAction::Freeze, SessionAction::None};
    Decision again = refusal();
    again.prevented = false;
    e.consider(again, 10, kSec, lenient);
    EXPECT_EQ(again.follow_up, SessionAction::None) << "sessions.on_contained: none";
}

TEST(Escalation, OneRefusalIsSaidInTheSingular) {
    Escalation e;
    Decision d = refusal();
    e.consider(d, 11, kSec, EscalationRule{1, 60, SessionAction::Freeze});
    ASSERT_TRUE(d.escalation);
    Subject s;
    s.session = "solo";
    EXPECT_NE(refusal_message(d, s).find("that is 1 refused operation in session solo within 60s"),
              std::string::npos)
        << refusal_message(d, s);
}

TEST(Escalation, ZeroNeverEscalates) {
    Escalation e;
    EscalationRule rule{0, 60, SessionAction::Freeze};
    for (int i = 0; i < 10; ++i) {
        Decision d = refusal();
        e.consider(d, 9, i * kSec, rule);
        EXPECT_EQ(d.follow_up, SessionAction::None);
    }
}

TEST(Escalation, TheMessageSaysWhyTheSessionFroze) {
    Escalation e;
    EscalationRule rule{2, 300, SessionAction::Freeze};
    Decision a = refusal(), b = refusal();
    a.what = b.what = "rm -rf /srv/data";
    e.consider(a, 4, kSec, rule);
    e.consider(b, 4, 2 * kSec, rule);
    b.freeze_terms = FreezeTerms{900, "kill-session"};
    Subject s;
    s.session = "agent-claude-12";
    std::string msg = refusal_message(b, s);
    EXPECT_NE(msg.find("2 refused operations in session agent-claude-12 within 300s"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("killswitch thaw --session agent-claude-12"), std::string::npos) << msg;
    EXPECT_NE(msg.find("after 900s it is killed"), std::string::npos) << msg;
    std::string first = refusal_message(a, s);
    EXPECT_EQ(first.find("frozen"), std::string::npos) << "the first refusal only refuses:\n"
                                                       << first;
}

TEST(PolicySessions, DefaultsLetAnAgentWorkAndNeverWaitUnseen) {
    policy::Policy p = policy::default_policy();
    EXPECT_EQ(p.violation_session_action, SessionAction::None);
    EXPECT_EQ(p.escalate_after, 3);
    EXPECT_EQ(p.escalate_within_s, 600);
    EXPECT_EQ(p.escalate_to, SessionAction::Freeze);
    EXPECT_EQ(p.contained_session, SessionAction::Freeze);
    EXPECT_EQ(p.self_protection_session, SessionAction::Freeze);
    EXPECT_EQ(p.frozen_timeout_s, 900);
    EXPECT_EQ(p.frozen_end, policy::FrozenEnd::KillSession);
    EXPECT_EQ(p.wrapper_exit, policy::WrapperExit::KillSession);
}

TEST(PolicySessions, EveryKeyIsRead) {
    auto r = policy::parse_policy(
        "sessions:\n"
        "  escalate_after: 5\n"
        "  escalate_within: 60\n"
        "  escalate_to: kill-session\n"
        "  on_contained: kill-session\n"
        "  self_protection: none\n"
        "  frozen_timeout: 0\n"
        "  frozen_end: thaw\n"
        "  wrapper_exit: keep\n",
        "s.yaml");
    ASSERT_TRUE(r.policy) << r.errors[0].str();
    EXPECT_EQ(r.policy->escalate_after, 5);
    EXPECT_EQ(r.policy->escalate_within_s, 60);
    EXPECT_EQ(r.policy->escalate_to, SessionAction::KillSession);
    EXPECT_EQ(r.policy->contained_session, SessionAction::KillSession);
    EXPECT_EQ(r.policy->self_protection_session, SessionAction::None);
    EXPECT_EQ(r.policy->frozen_timeout_s, 0);
    EXPECT_EQ(r.policy->frozen_end, policy::FrozenEnd::Thaw);
    EXPECT_EQ(r.policy->wrapper_exit, policy::WrapperExit::Keep);
}

TEST(PolicySessions, BadValuesAreReportedWhereTheyAre) {
    auto errors = [](const std::string& text) {
        std::vector<std::string> out;
        for (const auto& d : policy::parse_policy(text, "s.yaml").errors) out.push_back(d.str());
        return out;
    };
    EXPECT_EQ(errors("sessions:\n  escalate_to: none\n"),
              std::vector<std::string>{
                  "s.yaml:2:16: error: sessions.escalate_to must be 'freeze' or 'kill-session' "
                  "(to never escalate, set escalate_after: 0), got 'none'"});
    EXPECT_EQ(errors("sessions:\n  frozen_end: freeze\n"),
              std::vector<std::string>{"s.yaml:2:15: error: sessions.frozen_end must be "
                                       "'kill-session' or 'thaw', got 'freeze'"});
    EXPECT_EQ(errors("sessions:\n  wrapper_exit: ignore\n"),
              std::vector<std::string>{"s.yaml:2:17: error: sessions.wrapper_exit must be "
                                       "'kill-session' or 'keep', got 'ignore'"});
    EXPECT_EQ(errors("sessions:\n  frozen_timeout: -1\n"),
              std::vector<std::string>{"s.yaml:2:19: error: sessions.frozen_timeout must be a "
                                       "number of seconds from 0 to 604800, got '-1'"});
    EXPECT_EQ(errors("sessions:\n  escalate_within: 0\n"),
              std::vector<std::string>{"s.yaml:2:20: error: sessions.escalate_within must be a "
                                       "number of seconds from 1 to 604800, got '0'"});
    EXPECT_EQ(errors("sessions:\n  escalate_afer: 2\n"),
              std::vector<std::string>{
                  "s.yaml:2:3: error: unknown key 'escalate_afer' in sessions (expected one of: "
                  "escalate_after, escalate_within, escalate_to, on_contained, "
                  "self_protection, frozen_timeout, frozen_end, wrapper_exit)"});
    EXPECT_EQ(errors("protect:\n  paths:\n    - {path: /srv/x, session: stop}\n"),
              std::vector<std::string>{"s.yaml:3:31: error: protect.paths session must be 'none', "
                                       "'freeze' or 'kill-session', got 'stop'"});
}

}  // namespace
}  // namespace ks
