// The Enforcer carries out decisions on real processes (children of this
// test), and the renderer turns what it did into the record.
#include "actions/enforcer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "audit/render.h"

namespace ks {
namespace {

// A child that stops itself, as the kernel stops a held task; exits 0 when
// let go.
pid_t stopped_child() {
    pid_t pid = ::fork();
    if (pid == 0) {
        ::raise(SIGSTOP);
        ::_exit(0);
    }
    int st = 0;
    ::waitpid(pid, &st, WUNTRACED);
    EXPECT_TRUE(WIFSTOPPED(st));
    return pid;
}

Subject subject(pid_t pid) {
    Subject s;
    s.pid = pid;
    s.tid = pid;
    s.session = "test";
    s.session_id = 1;
    return s;
}

TEST(Enforcer, KillEndsTheTaskBeforeItRuns) {
    HoldRegistry holds;
    Enforcer e(holds);
    pid_t pid = stopped_child();
    Decision d{.verdict = Verdict::Block, .prevented = true, .task = TaskStep::Kill};
    e.apply(d, subject(pid), std::chrono::seconds(1));
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGKILL);
    EXPECT_EQ(e.counters().blocked, 1u);
}

// A child stopped between two instructions of its own (as at a uprobe, or
// right after its exec): it spins in user space until SIGSTOP lands.
pid_t child_stopped_in_user_code() {
    pid_t pid = ::fork();
    if (pid == 0) {
        for (;;) asm volatile("" ::: "memory");
    }
    ::usleep(20000);
    ::kill(pid, SIGSTOP);
    int st = 0;
    ::waitpid(pid, &st, WUNTRACED);
    EXPECT_TRUE(WIFSTOPPED(st));
    return pid;
}

TEST(Enforcer, RefuseMakesTheStoppedTaskExitWithTheRefusalStatus) {
    HoldRegistry holds;
    Enforcer e(holds);
    pid_t pid = child_stopped_in_user_code();
    Decision d{.verdict = Verdict::Block, .prevented = true, .task = TaskStep::Refuse};
    ActionResult r = e.apply(d, subject(pid), std::chrono::seconds(1));
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
#if defined(__x86_64__)
    ASSERT_TRUE(WIFEXITED(st)) << "signal " << (WIFSIGNALED(st) ? WTERMSIG(st) : 0) << " "
                               << r.task_error;
    EXPECT_EQ(WEXITSTATUS(st), kRefusedExitStatus);
    EXPECT_EQ(r.task_result, "exit 126");
    EXPECT_EQ(render("file", subject(pid), {}, d, r)["task_result"], "exit 126");
#else
    EXPECT_EQ(r.task_result, "killed");
#endif
}

TEST(Enforcer, RefuseOfATaskStoppedInASystemCallKillsIt) {
    HoldRegistry holds;
    Enforcer e(holds);
    pid_t pid = stopped_child();  // stopped as its kill() system call returns
    Decision d{.verdict = Verdict::Block, .prevented = true, .task = TaskStep::Refuse};
    ActionResult r = e.apply(d, subject(pid), std::chrono::seconds(1));
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGKILL);
    EXPECT_EQ(r.task_result, "killed");
    EXPECT_FALSE(r.task_error.empty());
}

// A process that has exited and been reaped: its pid names nobody.
pid_t gone_pid() {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    return pid;
}

// `killswitch run -- sh -c 'fallocate ...'`: the kernel killed fallocate,
// sh exited on its status; the wrapper, still waiting for the daemon, holds
// the pipe the agent reads and is told. A pid reused by another process
// (another start time) is not.
TEST(Enforcer, AKilledOffenderWhoseParentIsGoneIsExplainedThroughTheSessionsWrapper) {
    HoldRegistry holds;
    Enforcer e(holds);
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    pid_t wrapper = ::fork();
    if (wrapper == 0) {
        ::dup2(p[1], 2);
        ::raise(SIGSTOP);
        ::_exit(0);
    }
    int st = 0;
    ASSERT_EQ(::waitpid(wrapper, &st, WUNTRACED), wrapper);
    Subject s = subject(gone_pid());
    s.ppid = gone_pid();
    s.lineage = {{s.ppid, "sh", "/bin/sh"}};
    s.wrapper_pid = wrapper;
    s.wrapper_start_time = task_start_time(wrapper) + 1;  // another process
    Decision d{.verdict = Verdict::Block,
               .prevented = true,
               .rule = "low-space",
               .reason = "no room",
               .task = TaskStep::Kill};
    ActionResult other = e.apply(d, s, std::chrono::seconds(1));
    EXPECT_TRUE(other.told.empty()) << other.told;
    EXPECT_NE(other.tell_error.find("stat /proc/" + std::to_string(s.ppid)), std::string::npos)
        << other.tell_error;

    s.wrapper_start_time = task_start_time(wrapper);
    ActionResult r = e.apply(d, s, std::chrono::seconds(1));
    ::kill(wrapper, SIGKILL);
    ::waitpid(wrapper, nullptr, 0);
    ::close(p[1]);
    EXPECT_EQ(r.told, "pid " + std::to_string(wrapper) + " stderr (pipe)") << r.tell_error;
    char buf[4096];
    ssize_t n = ::read(p[0], buf, sizeof(buf));
    ::close(p[0]);
    ASSERT_GT(n, 0);
    std::string said(buf, static_cast<size_t>(n));
    EXPECT_NE(said.find("killswitch: refused"), std::string::npos) << said;
    EXPECT_NE(said.find("low-space"), std::string::npos) << said;
}

TEST(Enforcer, ReleaseLetsAHarmlessTaskGoOn) {
    HoldRegistry holds;
    Enforcer e(holds);
    pid_t pid = stopped_child();
    e.apply(Decision{.verdict = Verdict::Allow, .task = TaskStep::Release}, subject(pid), {});
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(Enforcer, AHoldIsRegisteredAndTheTaskStaysStopped) {
    HoldRegistry holds;
    Enforcer e(holds);
    pid_t pid = stopped_child();
    Decision d{.verdict = Verdict::Hold, .action = Action::Hold, .prevented = true};
    d.hold = HoldSpec{"exec", "exec", "/srv/data", "rm -rf /srv/data", "exec:rm-recursive"};
    ActionResult r = e.apply(d, subject(pid), std::chrono::seconds(30));
    ASSERT_NE(r.hold_id, 0u);
    auto list = holds.list();
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].command, "rm -rf /srv/data");
    EXPECT_EQ(list[0].session, "test");
    EXPECT_TRUE(task_stopped(pid));
    auto rec = render("file", subject(pid), {{"op", "exec"}}, d, r);
    EXPECT_EQ(rec["verdict"], "hold");
    EXPECT_EQ(rec["hold_id"], r.hold_id);
    EXPECT_EQ(rec["hold_timeout_s"], 30);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
}

TEST(Enforcer, AFollowUpThatFailsIsReportedNotHidden) {
    HoldRegistry holds;
    Enforcer e(holds);
    // Not a cgroup: there is no cgroup.freeze to write.
    auto dir = std::filesystem::temp_directory_path() / ("ks-enforcer-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    Subject s = subject(0);
    s.cgroup_path = dir;
    Decision d{.verdict = Verdict::Block, .follow_up = SessionAction::Freeze, .prevented = true};
    ActionResult r = e.apply(d, s, {});
    std::filesystem::remove_all(dir);
    EXPECT_TRUE(r.session_acted);
    EXPECT_FALSE(r.session_error.empty());
    EXPECT_EQ(e.counters().frozen, 0u);
    auto rec = render("file", s, {}, d, r);
    EXPECT_EQ(rec["session_action"], "freeze");
    EXPECT_TRUE(rec.contains("session_action_error"));
    EXPECT_FALSE(rec.contains("session_frozen_latency_ns"));
}

TEST(Render, ADecisionRecordCarriesTheSubjectFactsAndDecision) {
    Subject s = subject(4242);
    s.ppid = 1;
    s.comm = "python3";
    s.cgroup = "/killswitch/test";
    s.lineage = {{4241, "bash", "/usr/bin/bash"}};
    s.window = {{"id", 3}};
    Decision d{.verdict = Verdict::Allowed,
               .action = Action::Block,
               .window = true,
               .rule = "protect:/srv/data"};
    auto rec = render("file", s, {{"op", "unlink"}, {"path", "/srv/data/x"}}, d, {});
    EXPECT_EQ(rec["event"], "file");
    EXPECT_EQ(rec["pid"], 4242);
    EXPECT_EQ(rec["cgroup"], "/killswitch/test");
    EXPECT_EQ(rec["lineage"][0]["comm"], "bash");
    EXPECT_EQ(rec["op"], "unlink");
    EXPECT_EQ(rec["verdict"], "allowed");
    EXPECT_EQ(rec["action"], "block");
    EXPECT_EQ(rec["prevented"], false);
    EXPECT_EQ(rec["window"]["id"], 3);
    EXPECT_EQ(rec["rule"], "protect:/srv/data");
    EXPECT_FALSE(rec.contains("session_action"));
    EXPECT_FALSE(rec.contains("note"));
}

}  // namespace
}  // namespace ks
