// The libc uprobes exist only in guarded processes where the kernel has
// uprobe_multi links with a pid (Linux 6.6+): an unguarded process never
// traps (its libc has no breakpoint), a guarded one and a child it forks
// without exec are stopped at libc's entry, before the call.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>

#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;

// Prints the first byte of libc's unlink() as this process sees it: 0xcc is
// the breakpoint a uprobe writes there.
const char* kFirstByte =
    "import ctypes, sys\n"
    "libc = ctypes.CDLL('libc.so.6')\n"
    "a = ctypes.cast(libc.unlink, ctypes.c_void_p).value\n"
    "print(sys.argv[1], hex(ctypes.c_ubyte.from_address(a).value), flush=True)\n";

// script with each @NAME@ of vars replaced.
std::string fill(std::string script, const std::map<std::string, std::string>& vars) {
    for (const auto& [name, value] : vars)
        for (size_t at; (at = script.find("@" + name + "@")) != std::string::npos;)
            script.replace(at, name.size() + 2, value);
    return script;
}

json scope_status(const Daemon& d) {
    auto s = json::parse(d.cli({"status", "--json"}).out, nullptr, false);
    if (s.is_discarded()) return json::object();
    return s["layers"].value("uprobe_scope", json::object());
}

// A protected directory with files in it, and a daemon protecting it that
// scopes the uprobes (the test is skipped where the kernel cannot).
class UprobeScopeTest : public ::testing::Test {
  protected:
    void start(const std::vector<std::string>& files) {
        KS_REQUIRE_ROOT();
        ASSERT_EQ(::mkdir(prot.c_str(), 0755), 0);
        for (const auto& f : files) std::ofstream(prot + "/" + f) << "rows\n";
        d = std::make_unique<Daemon>(Daemon::Options{.extra_args = {"--protect", prot}});
        ASSERT_TRUE(d->ready()) << d->stderr_text();
        json scope = scope_status(*d);
        if (!scope.value("active", false))
            GTEST_SKIP() << "uprobes are not scoped on this kernel: " << scope.value("reason", "?");
    }
    TempDir data;
    std::string prot = data / "pgdata";
    std::string go = data / "go";
    std::unique_ptr<Daemon> d;
};

TEST_F(UprobeScopeTest, OnlyGuardedProcessesAndTheirForkedChildrenTrapAtLibc) {
    start({"by_child", "by_parent"});
    if (IsSkipped() || HasFatalFailure()) return;
    std::string probe = data / "first_byte.py";
    std::ofstream(probe) << kFirstByte;

    // The guarded process waits until the unguarded one has looked, so that
    // a session is alive (the layers attached) while it does.
    std::string script = fill(
        "import os, subprocess, sys, time\n"
        "subprocess.run([sys.executable, '@PROBE@', 'guarded'])\n"
        "while not os.path.exists('@GO@'): time.sleep(0.05)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.unlink('@PROT@/by_child')\n"
        "    os._exit(0)\n"
        "_, st = os.waitpid(pid, 0)\n"
        "print('child', os.WTERMSIG(st) if os.WIFSIGNALED(st) else 'exited', flush=True)\n"
        "os.unlink('@PROT@/by_parent')\n",
        {{"PROBE", probe}, {"GO", go}, {"PROT", prot}});
    auto agent = std::async(std::launch::async, [this, script] {
        return d->cli({"run", "--session", "scoped", "--", "python3", "-c", script},
                      std::chrono::seconds(60));
    });
    ASSERT_TRUE(wait_until([&] {
        auto s = json::parse(d->cli({"status", "--json"}).out, nullptr, false);
        return !s.is_discarded() && s.value("file_protection_attached", false);
    }));
    auto unguarded = run_command({"python3", probe, "unguarded"});
    std::ofstream(go) << "";
    auto r = agent.get();

    EXPECT_NE(unguarded.out.find("unguarded 0x"), std::string::npos) << unguarded.out;
    EXPECT_EQ(unguarded.out.find("0xcc"), std::string::npos)
        << "an unguarded process traps at libc's unlink: " << unguarded.out;
    EXPECT_NE(r.out.find("guarded 0xcc"), std::string::npos)
        << "no breakpoint in the guarded process: " << r.out << r.err;
    // The child ran no exec: its uprobes were attached while it was held at
    // its return from fork. Killed before the call, the file is there.
    EXPECT_NE(r.out.find("child 9"), std::string::npos) << r.out << r.err;
    EXPECT_TRUE(std::filesystem::exists(prot + "/by_child"));
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.out << r.err;
    EXPECT_TRUE(std::filesystem::exists(prot + "/by_parent"));
    for (const std::string f : {"/by_child", "/by_parent"}) {
        json rec = first_record(*d, [&](const json& x) {
            return x.value("event", "") == "file" && x.value("path", "") == prot + f;
        });
        ASSERT_FALSE(rec.is_null()) << "no record for " << f;
        EXPECT_EQ(rec["layer"], "uprobe") << rec.dump();
        EXPECT_TRUE(rec["prevented"].get<bool>()) << rec.dump();
    }
    json after = scope_status(*d);
    // The interpreter, the probe it ran and the child: each its own link
    // (a child is held at fork only when its link is not there yet).
    EXPECT_GE(after.value("links_attached", 0), 3) << after.dump();
    EXPECT_EQ(after.value("link_failures", 1), 0) << after.dump();
}

// A guarded process's link is pinned, and so is the program array its
// dispatcher jumps through (the kernel empties one that no process holds):
// with the daemon killed, the call is still stopped before it happens.
TEST_F(UprobeScopeTest, AGuardedProcessKeepsItsLibcLayerWhenTheDaemonIsKilled) {
    start({"f"});
    if (IsSkipped() || HasFatalFailure()) return;
    std::string ready = data / "ready";
    // The interpreter itself (a wrapper script would fork, and a new child
    // waits at fork for the next daemon): it forks nothing.
    std::string script = fill(
        "import os, time\n"
        "open('@READY@', 'w').close()\n"
        "while not os.path.exists('@GO@'): time.sleep(0.05)\n"
        "os.unlink('@PROT@/f')\n",
        {{"READY", ready}, {"GO", go}, {"PROT", prot}});
    auto agent = std::async(std::launch::async, [this, script] {
        return d->cli({"run", "--session", "orphan", "--", "/usr/bin/python3", "-c", script},
                      std::chrono::seconds(60));
    });
    ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(ready); }));
    d->kill_hard();
    std::ofstream(go) << "";
    auto r = agent.get();
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.out << r.err;
    EXPECT_TRUE(std::filesystem::exists(prot + "/f")) << "the unlink happened with the daemon dead";
}

// For comparison, and on kernels before 6.6: every process traps.
TEST(UprobeScope, GlobalUprobesPutTheBreakpointInEveryProcess) {
    KS_REQUIRE_ROOT();
    TempDir data;
    std::string probe = data / "first_byte.py";
    std::ofstream(probe) << kFirstByte;
    Daemon d({.extra_args = {"--global-uprobes"}});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    EXPECT_FALSE(scope_status(d).value("active", true));
    auto agent = std::async(std::launch::async, [&d] {
        return d.cli({"run", "--session", "global", "--", "sleep", "5"}, std::chrono::seconds(30));
    });
    ASSERT_TRUE(wait_until([&] {
        auto s = json::parse(d.cli({"status", "--json"}).out, nullptr, false);
        return !s.is_discarded() && s.value("file_protection_attached", false);
    }));
    auto unguarded = run_command({"python3", probe, "unguarded"});
    EXPECT_NE(unguarded.out.find("unguarded 0xcc"), std::string::npos) << unguarded.out;
    agent.get();
}

}  // namespace
}  // namespace ks::test
