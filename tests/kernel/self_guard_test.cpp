// Self-protection: a guarded process cannot signal or ptrace the daemon, use
// bpf() to detach its programs, overwrite its policy or reboot the host. Each
// attempt kills the process (before the call at a libc entry, right after it
// for a raw system call), leaves the daemon unharmed and is recorded.
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "common/sysfs.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;

json tamper_record(const Daemon& d, const std::string& what) {
    json found;
    wait_until([&] {
        for (const auto& r : d.records())
            if (r.value("event", "") == "tamper" && r.value("what", "") == what) {
                found = r;
                return true;
            }
        return false;
    });
    return found;
}

// The daemon is alive, not stopped, and answers.
void expect_daemon_unharmed(const Daemon& d) {
    EXPECT_EQ(::kill(d.pid(), 0), 0) << "the daemon is gone";
    auto stat = read_file("/proc/" + std::to_string(d.pid()) + "/stat");
    ASSERT_TRUE(static_cast<bool>(stat));
    char state = (*stat)[stat->rfind(')') + 2];
    // Running, sleeping or in a short uninterruptible wait; never stopped or dead.
    EXPECT_TRUE(state != 'T' && state != 't' && state != 'Z' && state != 'X')
        << "daemon state " << state;
    EXPECT_EQ(d.cli({"status"}).status, 0) << "the daemon does not answer";
}

CommandResult guarded(const Daemon& d, const std::vector<std::string>& argv) {
    std::vector<std::string> args = {"run", "--"};
    args.insert(args.end(), argv.begin(), argv.end());
    return d.cli(args, std::chrono::seconds(60));
}

TEST(SelfProtection, KillDashNineOfTheDaemonNeverHappens) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    std::string pid = std::to_string(d.pid());
    auto r = guarded(d, {"bash", "-c", "kill -9 " + pid + "; echo survived"});
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.out << r.err;
    EXPECT_EQ(r.out.find("survived"), std::string::npos);
    expect_daemon_unharmed(d);

    json rec = tamper_record(d, "signal");
    ASSERT_FALSE(rec.is_null()) << "no tamper record";
    EXPECT_EQ(rec["target"], d.pid());
    EXPECT_EQ(rec["signal"], SIGKILL);
    EXPECT_EQ(rec["layer"], "uprobe");
    EXPECT_TRUE(rec["prevented"].get<bool>());
    EXPECT_EQ(rec["rule"], "self:signal");
    EXPECT_EQ(rec["comm"], "bash");
    EXPECT_NE(rec["reason"].get<std::string>().find("SIGKILL to the killswitch daemon"),
              std::string::npos)
        << rec.dump();
    // The status counts it: one process blocked, its session frozen.
    auto st = nlohmann::json::parse(d.cli({"status", "--json"}).out);
    const auto& dec = st["counters"]["decisions"];
    EXPECT_EQ(dec["tamper"], 1) << dec.dump();
    EXPECT_EQ(dec["blocked"], 1) << dec.dump();
    EXPECT_EQ(dec["frozen"], 1) << dec.dump();
    EXPECT_EQ(st["counters"]["tamper"], 1);
}

TEST(SelfProtection, ARawSignalSystemCallIsContainedAndRecorded) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    // SIGCONT, harmless to the daemon: the raw call runs, the caller dies.
    auto r = guarded(d, {"python3", "-c",
                         "import ctypes; ctypes.CDLL(None).syscall(62, " + std::to_string(d.pid()) +
                             ", 18); print('survived')"});
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.out << r.err;
    EXPECT_EQ(r.out.find("survived"), std::string::npos);
    expect_daemon_unharmed(d);
    json rec = tamper_record(d, "signal");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec["layer"], "tracepoint");
    EXPECT_FALSE(rec["prevented"].get<bool>());
    EXPECT_TRUE(rec["contained"].get<bool>());
    EXPECT_EQ(rec["syscall_nr"], 62);
}

// An id of one of this daemon's links, from bpftool run outside every session.
std::string one_of_our_links(const Daemon& d) {
    auto r = run_command(
        {"bpftool", "link", "show", "pinned", d.pin_dir() + "/links-1/process_guard-ks_exec"});
    if (r.status != 0) return "";
    return r.out.substr(0, r.out.find(':'));
}

TEST(SelfProtection, BpftoolCannotDetachTheProgramsFromAGuardedProcess) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    std::string id = one_of_our_links(d);
    ASSERT_FALSE(id.empty()) << "no pinned exec link";

    auto r = guarded(d, {"bpftool", "link", "detach", "id", id});
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.out << r.err;
    auto still = run_command({"bpftool", "link", "show", "id", id});
    EXPECT_EQ(still.status, 0) << "the link is gone: " << still.err;
    EXPECT_NE(still.out.find("sched_process_exec"), std::string::npos) << still.out;

    std::string socks;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(d.pin_dir(), ec))
        if (e.path().filename().string().rfind("state-", 0) == 0)
            socks = (e.path() / "db_socks").string();
    ASSERT_FALSE(socks.empty());
    auto p = guarded(
        d, {"bpftool", "prog", "detach", "name", "ks_db_msg", "msg_verdict", "pinned", socks});
    EXPECT_EQ(p.status, 128 + SIGKILL) << p.out << p.err;
    expect_daemon_unharmed(d);

    json rec = tamper_record(d, "bpf");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec["comm"], "bpftool");
    EXPECT_EQ(rec["layer"], "tracepoint");
    EXPECT_TRUE(rec.contains("bpf_cmd"));
    // A guarded process dies at its first bpf() call: bpftool never got as
    // far as a detach command (BPF_LINK_DETACH 34, BPF_PROG_DETACH 9).
    for (const auto& x : d.records()) {
        if (x.value("event", "") == "tamper" && x.value("what", "") == "bpf") {
            EXPECT_TRUE(x["bpf_cmd"] != 34 && x["bpf_cmd"] != 9) << x.dump();
        }
    }
}

TEST(SelfProtection, StraceCannotAttachToTheDaemon) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto r = guarded(d, {"strace", "-p", std::to_string(d.pid())});
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.out << r.err;
    expect_daemon_unharmed(d);
    json rec = tamper_record(d, "ptrace");
    ASSERT_FALSE(rec.is_null());
    EXPECT_EQ(rec["target"], d.pid());
    EXPECT_TRUE(rec["prevented"].get<bool>());
}

TEST(SelfProtection, TheActivePolicyFileCannotBeOverwritten) {
    KS_REQUIRE_ROOT();
    TempDir dir;
    std::string policy = dir / "policy.yaml";
    std::string text = "version: 1\nmode: enforce\n";
    std::ofstream(policy) << text;
    Daemon d({.policy_file = policy});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto r = guarded(d, {"/bin/sh", "-c", "echo 'mode: monitor' > " + policy});
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.out << r.err;
    auto now = read_file(policy);
    ASSERT_TRUE(static_cast<bool>(now));
    EXPECT_EQ(*now, text);
    json found;
    wait_until([&] {
        for (const auto& x : d.records())
            if (x.value("rule", "") == "self:" + policy) {
                found = x;
                return true;
            }
        return false;
    });
    ASSERT_FALSE(found.is_null()) << "no record for the policy file";
    EXPECT_TRUE(found["prevented"].get<bool>());
}

TEST(SelfProtection, RebootIsRefusedEvenInAPrivatePidNamespace) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    // In a pid namespace of its own, reboot() would only end that namespace:
    // the host is safe whatever happens. The script checks that it is pid 1
    // of a new namespace before it calls reboot.
    auto run = std::async(std::launch::async, [&d] {
        return d.cli({"run", "--session", "rb", "--", "unshare", "--pid", "--fork", "python3", "-c",
                      "import os, ctypes, sys\n"
                      "if os.getpid() != 1: sys.exit(3)\n"
                      "ctypes.CDLL(None).reboot(0x01234567)\n"
                      "print('survived')"},
                     std::chrono::seconds(60));
    });
    json rec = tamper_record(d, "reboot");
    ASSERT_FALSE(rec.is_null()) << d.stderr_text();
    EXPECT_EQ(rec["layer"], "uprobe");
    EXPECT_TRUE(rec["prevented"].get<bool>());
    // python died; unshare, left waiting for it, is frozen with the session.
    EXPECT_EQ(rec["session_action"], "freeze");
    EXPECT_EQ(d.cli({"kill", "--session", "rb"}).status, 0);
    auto r = run.get();
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.out << r.err;
    EXPECT_EQ(r.out.find("survived"), std::string::npos);
    EXPECT_EQ(rec["comm"], "python3");
}

TEST(SelfProtection, AnUnguardedProcessIsNotConcerned) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    // The same bpf() and signal-0 calls from outside every session.
    EXPECT_EQ(run_command({"bpftool", "prog", "show", "name", "ks_exec"}).status, 0);
    EXPECT_EQ(run_command({"kill", "-0", std::to_string(d.pid())}).status, 0);
    // A guarded process may ask whether the daemon is alive (signal 0).
    EXPECT_EQ(guarded(d, {"bash", "-c", "kill -0 " + std::to_string(d.pid())}).status, 0);
    for (const auto& x : d.records()) EXPECT_NE(x.value("event", ""), "tamper") << x.dump();
}

}  // namespace
}  // namespace ks::test
