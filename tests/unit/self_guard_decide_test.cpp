// Self-protection's decisions: the words of the reason, and whether the call
// was prevented or only contained, by layer.
#include "self_guard/self_guard_decide.h"

#include <gtest/gtest.h>

#include "policy/policy.h"

namespace ks {
namespace {

TamperEvent signal_to(int64_t target, uint32_t layer) {
    TamperEvent ev;
    ev.what = KS_TAMPER_SIGNAL;
    ev.layer = layer;
    ev.target = target;
    ev.arg = 9;
    return ev;
}

TEST(SelfGuardDecide, ASignalToTheDaemonAtLibcIsPreventedAndNamed) {
    Decision d = decide_tamper(signal_to(1234, KS_LAYER_UPROBE), 1234, policy::default_policy());
    EXPECT_EQ(d.verdict, Verdict::Block);
    EXPECT_EQ(d.action, Action::Kill);
    EXPECT_TRUE(d.prevented);
    EXPECT_EQ(d.rule, "self:signal");
    EXPECT_EQ(d.reason, "SIGKILL to the killswitch daemon (pid 1234)");
    EXPECT_EQ(d.follow_up, SessionAction::Freeze);
}

TEST(SelfGuardDecide, ARawSyscallIsOnlyContained) {
    auto ev = signal_to(-1, KS_LAYER_TRACEPOINT);
    Decision d = decide_tamper(ev, 1234, policy::default_policy());
    EXPECT_FALSE(d.prevented);
    EXPECT_EQ(d.reason, "SIGKILL to every process (kill -1)");
    auto f = tamper_facts(ev);
    EXPECT_EQ(f["contained"], true);
    EXPECT_EQ(f["signal"], 9);
    EXPECT_EQ(f["layer"], "tracepoint");
}

TEST(SelfGuardDecide, TheLsmLayerRefusesWithEperm) {
    TamperEvent ev;
    ev.what = KS_TAMPER_BPF;
    ev.layer = KS_LAYER_LSM;
    ev.arg = 5;
    Decision d = decide_tamper(ev, 1, policy::default_policy());
    EXPECT_TRUE(d.prevented);
    EXPECT_NE(d.reason.find("bpf() system call (command 5)"), std::string::npos);
    auto f = tamper_facts(ev);
    EXPECT_EQ(f["refused"], "EPERM");
    EXPECT_EQ(f["bpf_cmd"], 5);
    EXPECT_FALSE(f.contains("target"));
}

TEST(SelfGuardDecide, AProcessGroupOfTheDaemon) {
    Decision d = decide_tamper(signal_to(-77, KS_LAYER_UPROBE), 77, policy::default_policy());
    EXPECT_EQ(d.reason, "SIGKILL to the process group of the killswitch daemon");
}

}  // namespace
}  // namespace ks
