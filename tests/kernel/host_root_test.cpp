// --host-root outside a container: a directory that is no process's root is
// refused with what the container lacks; the host's own / is accepted (the
// daemon is already in the host's namespaces) and the daemon works as
// usual. (The daemon in a container, joining the host's namespaces:
// tests/container/run_podman_test.sh.)
#include <fstream>

#include "decision/decision.h"
#include "harness.h"

namespace ks::test {
namespace {

TEST(HostRoot, ADirectoryThatIsNoProcessesRootIsRefusedWithWhatIsMissing) {
    KS_REQUIRE_ROOT();
    TempDir dir;
    auto r = run_command({binary(), "--runtime-dir", dir / "run", "daemon", "--pin-dir", "",
                          "--audit-log", dir / "audit.jsonl", "--host-root", dir.path()});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("--host-root " + dir.path() + ": no process here has it as its /"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("hostPID: true"), std::string::npos) << r.err;
    auto missing = run_command({binary(), "--runtime-dir", dir / "run", "daemon", "--pin-dir", "",
                                "--host-root", dir / "nowhere"});
    EXPECT_EQ(missing.status, 1);
    EXPECT_NE(missing.err.find("No such file or directory"), std::string::npos) << missing.err;
}

TEST(HostRoot, TheHostsOwnRootIsAcceptedAndTheDaemonGuardsAsUsual) {
    KS_REQUIRE_ROOT();
    TempDir dir;
    ::mkdir((dir / "data").c_str(), 0755);
    std::ofstream(dir / "data/rows") << "1\n";
    std::string policy = dir / "policy.yaml";
    std::ofstream(policy) << "protect:\n  paths: [" << (dir / "data") << "]\n  session: none\n";
    Daemon d({.policy_file = policy, .extra_args = {"--host-root", "/"}});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    EXPECT_NE(d.stderr_text().find("in the host's mount namespace (--host-root /)"),
              std::string::npos)
        << d.stderr_text();
    auto rm = d.cli({"run", "--session", "hr", "--", "rm", "-f", dir / "data/rows"});
    EXPECT_EQ(rm.status, kRefusedExitStatus) << rm.err;
    EXPECT_EQ(::access((dir / "data/rows").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace ks::test
