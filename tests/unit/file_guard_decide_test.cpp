// What happens to a guarded process's destructive file operation, decided
// without a kernel: the record the kernel would send, the compiled policy,
// and the decision (verdict, prevented, session follow-up, hold, note).
#include "file_guard/file_guard_decide.h"

#include <gtest/gtest.h>

#include "policy/compile.h"

namespace ks {
namespace {

policy::CompiledPolicy compiled(const std::string& yaml = "") {
    auto res = yaml.empty() ? policy::LoadResult{policy::default_policy(), {}, {}}
                            : policy::parse_policy(yaml, "test.yaml");
    EXPECT_TRUE(res.policy) << (res.errors.empty() ? "" : res.errors[0].str());
    auto p = res.policy.value_or(policy::default_policy());
    p.protect_paths = {"/srv/data"};
    auto c = policy::compile(p, "", {"/usr/sbin/killswitch", "/sys/fs/cgroup", ""}, nullptr);
    EXPECT_TRUE(c) << c.error().str();
    return *c;
}

FileEvent unlink_event(uint32_t layer, Action action, uint32_t flags = 0) {
    FileEvent ev;
    ev.hdr.pid = 4242;
    ev.hdr.ts_boot_ns = 1000;
    ev.stop_boot_ns = 1500;
    ev.op = KS_OP_UNLINK;
    ev.layer = layer;
    ev.match = KS_MATCH_PATH;
    ev.action = to_abi(action);
    ev.rule_id = policy::kRuleFirstPath;  // protect:/srv/data
    ev.flags = flags;
    ev.path = "base/1/1259";
    ev.start_dir = "/srv/data";
    return ev;
}

TEST(FileGuardDecide, RefusedByTheLsmLayerIsPreventedAndTheSessionGoesOn) {
    auto p = compiled();
    Decision d = decide_file(unlink_event(KS_LAYER_LSM, Action::Block, KS_FF_DENIED), p);
    EXPECT_EQ(d.verdict, Verdict::Block);
    EXPECT_EQ(d.action, Action::Block);
    EXPECT_TRUE(d.prevented);
    EXPECT_EQ(d.rule, "protect:/srv/data");
    EXPECT_EQ(d.follow_up, SessionAction::None)
        << "the default policy refuses the operation and lets the agent go on";
    EXPECT_EQ(d.session, SessionAction::None);
    EXPECT_EQ(d.task, TaskStep::None) << "the kernel already acted";
    EXPECT_TRUE(d.note.empty());
}

TEST(FileGuardDecide, AtASyscallTracepointTheCallCompletesAndTheRecordSaysSo) {
    auto p = compiled();
    Decision d = decide_file(unlink_event(KS_LAYER_TRACEPOINT, Action::Kill), p);
    EXPECT_EQ(d.verdict, Verdict::Kill);
    EXPECT_FALSE(d.prevented);
    EXPECT_NE(d.note.find("syscall entry"), std::string::npos);
}

TEST(FileGuardDecide, ABlockDeviceKilledAsItsOpenReturnsWasNeverWritten) {
    auto p = compiled();
    FileEvent ev = unlink_event(KS_LAYER_TRACEPOINT, Action::Block, KS_FF_OBJECT | KS_FF_KILLED);
    ev.op = KS_OP_DEVICE_WRITE;
    ev.match = KS_MATCH_BLOCK_DEVICE;
    ev.rule_id = policy::kRuleBlockDevice;
    ev.path.clear();
    ev.start_dir = "/dev/sdb";
    Decision d = decide_file(ev, p);
    EXPECT_TRUE(d.prevented);
    EXPECT_EQ(d.rule, "block-device");
    EXPECT_EQ(d.what, "device-write /dev/sdb");
    EXPECT_NE(d.note.find("never written"), std::string::npos) << d.note;
    // Any other operation at a syscall tracepoint still completes.
    ev.op = KS_OP_CHMOD;
    EXPECT_FALSE(decide_file(ev, p).prevented);
}

TEST(FileGuardDecide, AWriteOverTheSpaceBudgetIsRefusedBeforeItWritesUnlessTheCallRunsOn) {
    auto p = compiled("version: 1\nprotect:\n  min_free: 10%\n");
    FileEvent ev = unlink_event(KS_LAYER_TRACEPOINT, Action::Block, KS_FF_OBJECT | KS_FF_KILLED);
    ev.op = KS_OP_SPACE_WRITE;
    ev.match = KS_MATCH_LOW_SPACE;
    ev.rule_id = policy::kRuleSpace;
    ev.bytes = 1048576;
    ev.path.clear();
    ev.start_dir = "/srv/scratch/fill";
    Decision d = decide_file(ev, p);
    EXPECT_EQ(d.verdict, Verdict::Block);
    EXPECT_TRUE(d.prevented) << "a buffered write stops at the pending kill before it writes";
    EXPECT_EQ(d.rule, "low-space");
    EXPECT_EQ(d.what, "write /srv/scratch/fill");
    EXPECT_NE(d.reason.find("writing 1048576 bytes"), std::string::npos) << d.reason;
    EXPECT_NE(d.reason.find("protect.min_free (10%)"), std::string::npos) << d.reason;
    EXPECT_NE(d.note.find("before it wrote"), std::string::npos) << d.note;
    EXPECT_EQ(file_event_facts(ev)["bytes"], 1048576);
    EXPECT_EQ(file_event_facts(ev)["match"], "low-space");
    // A direct write, or ext4's fallocate, runs to its end after the kill.
    ev.flags |= KS_FF_CALL_COMPLETES;
    Decision late = decide_file(ev, p);
    EXPECT_FALSE(late.prevented);
    EXPECT_NE(late.note.find("syscall entry"), std::string::npos) << late.note;
    // libc's fallocate, stopped before the call.
    ev.layer = KS_LAYER_UPROBE;
    ev.flags = KS_FF_OBJECT | KS_FF_KILLED;
    EXPECT_TRUE(decide_file(ev, p).prevented);
}

// chmod and chown at the libc layer: the kernel stopped the caller for the
// daemon to look (KS_FF_ASK); one that changes something is refused there.
TEST(FileGuardDecide, AChmodStoppedForALookIsRefusedWhereItStopped) {
    auto p = compiled();
    FileEvent ev = unlink_event(KS_LAYER_UPROBE, Action::Block, KS_FF_ASK | KS_FF_STOPPED);
    ev.op = KS_OP_CHMOD;
    Decision d = decide_file(ev, p);
    EXPECT_EQ(d.verdict, Verdict::Block);
    EXPECT_TRUE(d.prevented);
    EXPECT_EQ(d.task, TaskStep::Refuse);
    EXPECT_EQ(d.what, "chmod /srv/data/base/1/1259");
    ev.action = to_abi(Action::Kill);
    EXPECT_EQ(decide_file(ev, p).task, TaskStep::Kill);
    // Held: it stays stopped for a person.
    ev.action = to_abi(Action::Hold);
    EXPECT_EQ(decide_file(ev, p).task, TaskStep::None);
    // Monitor mode: the kernel did not stop it, nothing to end.
    ev.action = to_abi(Action::Block);
    ev.flags = KS_FF_ASK | KS_FF_MONITOR;
    EXPECT_EQ(decide_file(ev, p).task, TaskStep::None);
    // Not stopped at all (the kernel's rule only audited it): the call went
    // on, whatever rule the daemon then found.
    ev.flags = KS_FF_ASK;
    Decision late = decide_file(ev, p);
    EXPECT_EQ(late.task, TaskStep::None);
    EXPECT_FALSE(late.prevented);
}

TEST(FileGuardDecide, RefusedByTheFentryLayerIsPreventedAndAHoldWaits) {
    // The fentry layer's fmod_ret programs refuse the call, as the LSM's do.
    auto p = compiled();
    Decision f = decide_file(unlink_event(KS_LAYER_FENTRY, Action::Block, KS_FF_DENIED), p);
    EXPECT_EQ(f.verdict, Verdict::Block);
    EXPECT_TRUE(f.prevented);
    EXPECT_TRUE(f.note.empty()) << f.note;
    Decision held = decide_file(unlink_event(KS_LAYER_FENTRY, Action::Hold), p);
    EXPECT_EQ(held.verdict, Verdict::Hold);
    ASSERT_TRUE(held.hold);
    EXPECT_EQ(held.hold->layer, "fentry");
}

TEST(FileGuardDecide, AHoldThatCannotWaitBecomesAKillOrARefusal) {
    auto p = compiled();
    Decision at_tp = decide_file(unlink_event(KS_LAYER_TRACEPOINT, Action::Hold), p);
    EXPECT_EQ(at_tp.verdict, Verdict::Kill);
    EXPECT_EQ(at_tp.action, Action::Hold) << "the record keeps the rule's action";
    EXPECT_FALSE(at_tp.hold);
    EXPECT_NE(at_tp.reason.find("killed instead"), std::string::npos);

    Decision in_worker =
        decide_file(unlink_event(KS_LAYER_LSM, Action::Hold, KS_FF_DENIED | KS_FF_IO_WORKER), p);
    EXPECT_EQ(in_worker.verdict, Verdict::Block);
    EXPECT_TRUE(in_worker.prevented);
    EXPECT_NE(in_worker.reason.find("refused instead"), std::string::npos);

    Decision held = decide_file(unlink_event(KS_LAYER_UPROBE, Action::Hold), p);
    EXPECT_EQ(held.verdict, Verdict::Hold);
    ASSERT_TRUE(held.hold);
    EXPECT_EQ(held.hold->path, "/srv/data/base/1/1259");
    EXPECT_EQ(held.hold->layer, "uprobe");
    EXPECT_EQ(held.hold->rule, "protect:/srv/data");
    EXPECT_EQ(held.follow_up, SessionAction::None) << "a held task's session goes on";
}

TEST(FileGuardDecide, MonitorWindowApprovalAndAuditEnforceNothing) {
    auto p = compiled();
    Decision mon = decide_file(unlink_event(KS_LAYER_LSM, Action::Kill, KS_FF_MONITOR), p);
    EXPECT_EQ(verdict_name(mon.verdict), "would-kill");
    EXPECT_FALSE(mon.prevented);
    EXPECT_EQ(mon.follow_up, SessionAction::None);

    Decision win = decide_file(unlink_event(KS_LAYER_LSM, Action::Block, KS_FF_WINDOW), p);
    EXPECT_EQ(win.verdict, Verdict::Allowed);
    EXPECT_TRUE(win.window);
    EXPECT_FALSE(win.prevented);

    Decision ok = decide_file(unlink_event(KS_LAYER_UPROBE, Action::Hold, KS_FF_PASSED), p);
    EXPECT_EQ(ok.verdict, Verdict::Allow);
    EXPECT_NE(ok.reason.find("approved"), std::string::npos);

    Decision audit = decide_file(unlink_event(KS_LAYER_TRACEPOINT, Action::Audit), p);
    EXPECT_EQ(audit.verdict, Verdict::Audit);
    EXPECT_FALSE(audit.prevented);
    EXPECT_EQ(audit.follow_up, SessionAction::None);
    EXPECT_TRUE(audit.note.empty());
}

TEST(FileGuardDecide, NoWindowRulesOfferNoAllowCommand) {
    auto p = compiled();
    auto ev = unlink_event(KS_LAYER_UPROBE, Action::Block);
    ev.rule_id = policy::kRuleUnresolved;
    Decision d = decide_file(ev, p);
    EXPECT_TRUE(d.no_window);
    Subject s;
    s.session = "s";
    EXPECT_EQ(refusal_message(d, s).find("killswitch allow"), std::string::npos)
        << refusal_message(d, s);
    Decision data = decide_file(unlink_event(KS_LAYER_UPROBE, Action::Block), p);
    EXPECT_FALSE(data.no_window);
    EXPECT_NE(refusal_message(data, s).find("killswitch allow --session s"), std::string::npos);
    EXPECT_NE(refusal_message(data, s).find("refused unlink /srv/data/base/1/1259"),
              std::string::npos)
        << refusal_message(data, s);
}

TEST(FileGuardDecide, FreezeAndKillSessionActOnTheSessionThemselves) {
    auto p = compiled();
    Decision fr = decide_file(unlink_event(KS_LAYER_UPROBE, Action::Freeze), p);
    EXPECT_EQ(fr.verdict, Verdict::Freeze);
    EXPECT_EQ(fr.session, SessionAction::Freeze);
    EXPECT_EQ(fr.follow_up, SessionAction::None);
    Decision ks = decide_file(unlink_event(KS_LAYER_UPROBE, Action::KillSession), p);
    EXPECT_EQ(ks.session, SessionAction::KillSession);
}

TEST(FileGuardDecide, TheFollowUpIsThePolicys) {
    auto p = compiled("version: 1\nprotect:\n  session: kill-session\n");
    Decision d = decide_file(unlink_event(KS_LAYER_UPROBE, Action::Block), p);
    EXPECT_EQ(d.follow_up, SessionAction::KillSession);
}

TEST(FileGuardDecide, FactsNameTheObjectAndTheLayer) {
    auto ev = unlink_event(KS_LAYER_LSM, Action::Block, KS_FF_DENIED | KS_FF_IO_WORKER);
    ev.dev = 8;
    ev.ino = 99;
    auto f = file_event_facts(ev);
    EXPECT_EQ(f["op"], "unlink");
    EXPECT_EQ(f["path"], "/srv/data/base/1/1259");
    EXPECT_EQ(f["path_arg"], "base/1/1259");
    EXPECT_EQ(f["layer"], "lsm");
    EXPECT_EQ(f["refused"], "EPERM");
    EXPECT_EQ(f["io_uring"], true);
    EXPECT_EQ(f["stop_latency_ns"], 500);
    EXPECT_EQ(f["object"]["ino"], 99);
}

ExecCheckEvent rm_event(bool windowed = false) {
    ExecCheckEvent ev;
    ev.hdr.pid = 77;
    ev.filename = "rm";
    ev.argv = {"rm", "-rf", "/srv/data"};
    ev.windowed = windowed;
    return ev;
}

ExecMatch rm_match() {
    return {"exec:rm-recursive", "rm -r reaches a protected directory", "/srv/data",
            policy::kRuleFirstPath};
}

TEST(FileGuardDecide, ADestructiveToolHeldAtExecExitsBeforeItRuns) {
    auto p = compiled();
    Decision d = decide_exec(rm_event(), rm_match(), false, p);
    EXPECT_EQ(d.verdict, Verdict::Block);
    EXPECT_EQ(d.task, TaskStep::Refuse) << "it exits (126) before its first instruction";
    EXPECT_TRUE(d.prevented);
    EXPECT_EQ(d.rule, "exec:rm-recursive (protect:/srv/data)");
    EXPECT_EQ(d.follow_up, SessionAction::None);
}

TEST(FileGuardDecide, ARuleMarkedSoFreezesTheSessionAtItsFirstRefusal) {
    auto p = compiled(
        "protect:\n  paths:\n    - {path: /srv/data, session: freeze}\n    - /srv/other\n");
    Decision d = decide_file(unlink_event(KS_LAYER_LSM, Action::Block, KS_FF_DENIED), p);
    EXPECT_EQ(d.follow_up, SessionAction::Freeze) << "the path's own session action";
    Decision e = decide_exec(rm_event(), rm_match(), false, p);
    EXPECT_EQ(e.follow_up, SessionAction::Freeze) << "an exec rule on the path carries it too";
    auto q = compiled("protect:\n  session: kill-session\n");
    EXPECT_EQ(decide_file(unlink_event(KS_LAYER_LSM, Action::Block, KS_FF_DENIED), q).follow_up,
              SessionAction::KillSession)
        << "protect.session: the previous behaviour is one line away";
}

TEST(FileGuardDecide, AnAttemptOnKillswitchItselfFollowsSessionsSelfProtection) {
    auto p = compiled();
    ExecMatch self = rm_match();
    self.path = "/usr/sbin/killswitch";
    Decision d = decide_exec(rm_event(), self, true, p);
    EXPECT_EQ(d.verdict, Verdict::Block);
    EXPECT_EQ(d.follow_up, SessionAction::Freeze) << "sessions.self_protection: freeze";
    FileEvent ev = unlink_event(KS_LAYER_LSM, Action::Block, KS_FF_DENIED);
    ev.rule_id = p.protect.back().rule_id;  // a self: rule
    ASSERT_TRUE(p.rule_name(ev.rule_id).rfind("self:", 0) == 0) << p.rule_name(ev.rule_id);
    EXPECT_EQ(decide_file(ev, p).follow_up, SessionAction::Freeze);
    auto q = compiled("sessions:\n  self_protection: kill-session\n");
    EXPECT_EQ(decide_exec(rm_event(), self, true, q).follow_up, SessionAction::KillSession);
}

TEST(FileGuardDecide, AHarmlessToolHeldAtExecGoesOnWithNoRecord) {
    auto p = compiled();
    Decision d = decide_exec(rm_event(), std::nullopt, false, p);
    EXPECT_FALSE(d.record);
    EXPECT_EQ(d.task, TaskStep::Release);
    Decision in_window = decide_exec(rm_event(true), std::nullopt, false, p);
    EXPECT_EQ(in_window.task, TaskStep::None) << "it was never stopped";
}

TEST(FileGuardDecide, InAWindowTheExecLayerDefersOnKillswitchsOwnFiles) {
    auto p = compiled();
    Decision own = decide_exec(rm_event(true), rm_match(), true, p);
    EXPECT_EQ(own.verdict, Verdict::Deferred);
    EXPECT_FALSE(own.prevented);
    EXPECT_EQ(own.task, TaskStep::None);
    Decision data = decide_exec(rm_event(true), rm_match(), false, p);
    EXPECT_EQ(data.verdict, Verdict::Allowed);
    EXPECT_TRUE(data.window);
}

TEST(FileGuardDecide, AnExecHoldKeepsTheTaskStoppedAndNamesTheCommand) {
    auto p = compiled("version: 1\nprotect:\n  paths:\n    - {path: /srv/data, action: hold}\n");
    Decision d = decide_exec(rm_event(), rm_match(), false, p);
    EXPECT_EQ(d.verdict, Verdict::Hold);
    EXPECT_EQ(d.task, TaskStep::None);
    ASSERT_TRUE(d.hold);
    EXPECT_EQ(d.hold->command, "rm -rf /srv/data");
    EXPECT_EQ(d.hold->rule, "exec:rm-recursive");
}

TEST(FileGuardDecide, MonitoredExecRulesReleaseTheTask) {
    auto p = compiled("version: 1\nprotect:\n  mode: monitor\n");
    Decision d = decide_exec(rm_event(), rm_match(), false, p);
    EXPECT_EQ(verdict_name(d.verdict), "would-block");
    EXPECT_EQ(d.task, TaskStep::Release);
    EXPECT_FALSE(d.prevented);
}

}  // namespace
}  // namespace ks
