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

TamperEvent reach(uint32_t what, uint32_t layer, uint32_t flags) {
    TamperEvent ev;
    ev.what = what;
    ev.layer = layer;
    ev.target = 4242;
    ev.arg = 19;
    ev.flags = flags;
    return ev;
}

TEST(SelfGuardDecide, AHeldSignalOutsideTheSessionExitsWhereItStopped) {
    TamperEvent ev = reach(KS_TAMPER_REACH_SIGNAL, KS_LAYER_UPROBE, KS_TF_HELD);
    ASSERT_TRUE(is_reach(ev));
    Decision d = decide_reach(ev, {4242, "postgres", ""});
    EXPECT_EQ(d.rule, "process:signal");
    EXPECT_EQ(d.task, TaskStep::Refuse);
    EXPECT_TRUE(d.prevented);
    EXPECT_EQ(d.what, "SIGSTOP to postgres");
    EXPECT_NE(d.reason.find("pid 4242 (postgres), a process outside the session"),
              std::string::npos)
        << d.reason;
    auto f = reach_facts(ev, {4242, "postgres", ""});
    EXPECT_EQ(f["target_comm"], "postgres");
    EXPECT_EQ(f["held"], true);
    EXPECT_EQ(f["contained"], false);
}

TEST(SelfGuardDecide, ReachByLayer) {
    // The LSM hook refused it: nothing for the daemon to do to the caller.
    Decision lsm = decide_reach(reach(KS_TAMPER_REACH_PTRACE, KS_LAYER_LSM, KS_TF_REFUSED),
                                {4242, "postgres", ""});
    EXPECT_EQ(lsm.rule, "process:ptrace");
    EXPECT_EQ(lsm.action, Action::Block);
    EXPECT_EQ(lsm.task, TaskStep::None);
    EXPECT_TRUE(lsm.prevented);
    // Another session's process, killed as the raw call returned: contained.
    TamperEvent raw = reach(KS_TAMPER_REACH_VM_WRITE, KS_LAYER_TRACEPOINT, 0);
    Decision tp = decide_reach(raw, {4242, "node", "other-agent"});
    EXPECT_FALSE(tp.prevented);
    EXPECT_NE(tp.reason.find("a process of another session (other-agent)"), std::string::npos);
    EXPECT_EQ(reach_facts(raw, {4242, "node", "other-agent"})["contained"], true);
    EXPECT_FALSE(is_reach(reach(KS_TAMPER_SIGNAL, KS_LAYER_UPROBE, 0)));
}

TEST(Reach, ProgramNamesCompareOnTheKernelsFifteenBytes) {
    EXPECT_TRUE(names_program({"nginx"}, "nginx"));
    EXPECT_TRUE(names_program({"a-very-long-program-name"}, "a-very-long-pro"));
    EXPECT_FALSE(names_program({"nginx"}, "nginx-debug"));
    EXPECT_FALSE(names_program({}, "postgres"));
}

}  // namespace
}  // namespace ks
