// The Enforcer on a real session cgroup: a block followed by the policy's
// freeze stops the whole session before the offender dies, so that nothing
// it started (the shell that ran it, the agent) runs on in between.
#include "actions/enforcer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "common/sysfs.h"
#include "harness.h"

namespace ks {
namespace {

using test::TempDir;
using test::wait_until;

TEST(Enforcer, TheSessionFreezesBeforeTheOffenderDiesAndItsShellGoesNoFurther) {
    KS_REQUIRE_ROOT();
    auto mount = cgroup2_mount();
    ASSERT_TRUE(mount) << mount.error().str();
    std::string cg = *mount + "/ks-enforcer-test-" + std::to_string(::getpid());
    ASSERT_EQ(::mkdir(cg.c_str(), 0755), 0) << cg;
    TempDir tmp;
    std::string after = tmp / "after";
    std::string pidfile = tmp / "pid";

    // A shell in the session runs the offender and would go on after it.
    pid_t shell = ::fork();
    if (shell == 0) {
        std::ofstream(cg + "/cgroup.procs") << ::getpid();
        std::string script =
            "sleep 30 & echo $! > " + pidfile + "; wait $!; echo ran-on > " + after;
        ::execl("/bin/sh", "sh", "-c", script.c_str(), nullptr);
        ::_exit(127);
    }
    ASSERT_TRUE(wait_until([&] { return static_cast<bool>(read_file(pidfile)); }));
    int offender = std::stoi(read_file(pidfile).value());

    HoldRegistry holds;
    Enforcer e(holds);
    Subject s;
    s.pid = offender;
    s.cgroup_path = cg;
    Decision d{.verdict = Verdict::Block,
               .follow_up = SessionAction::Freeze,
               .prevented = true,
               .task = TaskStep::Kill};
    ActionResult r = e.apply(d, s, {});
    EXPECT_TRUE(r.session_error.empty()) << r.session_error;
    ASSERT_TRUE(r.session_frozen_latency_ns);

    // The offender is gone; the shell it would have returned to is frozen.
    auto dead = [](int pid) {
        char state = task_state(pid);
        return state == '\0' || state == 'Z' || state == 'X';
    };
    EXPECT_TRUE(wait_until([&] { return dead(offender); })) << "the offender still runs";
    EXPECT_TRUE(wait_until([&] { return cgroup_is_frozen(cg); })) << "the session did not freeze";
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_FALSE(static_cast<bool>(read_file(after)))
        << "the shell ran on after its command was killed";
    EXPECT_EQ(e.counters().blocked, 1u);
    EXPECT_EQ(e.counters().frozen, 1u);

    ASSERT_TRUE(cgroup_kill(cg));
    int st = 0;
    EXPECT_EQ(::waitpid(shell, &st, 0), shell);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_TRUE(wait_until([&] { return ::rmdir(cg.c_str()) == 0; })) << "rmdir " << cg;
}

}  // namespace
}  // namespace ks
