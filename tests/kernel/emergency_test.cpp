// The emergency commands: `killswitch freeze|thaw|kill` act on a session of
// three processes within milliseconds, with the daemon up (it records the
// decision) and with the daemon down (the CLI writes the cgroup files and the
// record itself). A guarded process cannot use them on its own session.
#include <signal.h>

#include <future>

#include "common/sysfs.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;

// `killswitch run --session NAME -- sh -c 'sleep & sleep & wait'`, in the
// background: three processes in the session once it is up.
std::future<CommandResult> start_trio(const Daemon& d, const std::string& name) {
    auto f = std::async(std::launch::async, [&d, name] {
        return d.cli(
            {"run", "--session", name, "--", "/bin/sh", "-c", "sleep 300 & sleep 300 & wait"},
            std::chrono::seconds(120));
    });
    std::string dir = session_dir(d, name);
    wait_until([&] { return procs_in(dir) == 3; });
    return f;
}

std::vector<json> emergency_records(const Daemon& d) {
    std::vector<json> out;
    for (const auto& r : read_jsonl(d.audit_log()))
        if (r.value("event", "") == "emergency") out.push_back(r);
    return out;
}

TEST(Emergency, FreezeThawKillASessionOfThreeWithTheDaemonUp) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto trio = start_trio(d, "trio");
    std::string dir = session_dir(d, "trio");
    ASSERT_EQ(procs_in(dir), 3u);

    auto f = d.cli({"freeze", "--session", "trio"});
    EXPECT_EQ(f.status, 0) << f.err;
    EXPECT_NE(f.out.find("frozen (3 processes)"), std::string::npos) << f.out;
    EXPECT_NE(events_of(dir).find("frozen 1"), std::string::npos);

    auto t = d.cli({"thaw", "--all", "--json"});
    EXPECT_EQ(t.status, 0) << t.err;
    json tj = json::parse(t.out);
    EXPECT_FALSE(tj["direct"].get<bool>());
    ASSERT_EQ(tj["results"].size(), 1u);
    EXPECT_TRUE(tj["results"][0]["confirmed"].get<bool>());
    EXPECT_LT(tj["results"][0]["elapsed_ms"].get<double>(), 100.0);
    EXPECT_NE(events_of(dir).find("frozen 0"), std::string::npos);

    auto k = d.cli({"kill", "--session", "trio"});
    EXPECT_EQ(k.status, 0) << k.err;
    EXPECT_EQ(trio.get().status, 128 + SIGKILL);
    EXPECT_EQ(procs_in(dir), 0u);

    auto recs = emergency_records(d);
    ASSERT_EQ(recs.size(), 3u);
    EXPECT_EQ(recs[0]["op"], "freeze");
    EXPECT_EQ(recs[0]["results"][0]["processes"], 3);
    EXPECT_EQ(recs[1]["op"], "thaw");
    EXPECT_EQ(recs[2]["op"], "kill");
}

TEST(Emergency, FreezeAndKillWithTheDaemonDown) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto trio = start_trio(d, "orphans");
    std::string dir = session_dir(d, "orphans");
    ASSERT_EQ(procs_in(dir), 3u);
    d.stop_keep_sessions();  // the session and its processes stay
    ASSERT_EQ(procs_in(dir), 3u) << "the session did not outlive the daemon";

    auto f = d.cli(
        {"freeze", "--all", "--cgroup-parent", d.cgroup_parent(), "--audit-log", d.audit_log()});
    EXPECT_EQ(f.status, 0) << f.err;
    EXPECT_NE(f.out.find("frozen (3 processes)"), std::string::npos) << f.out << f.err;
    EXPECT_NE(f.out.find("no daemon answered"), std::string::npos) << f.out;
    EXPECT_NE(events_of(dir).find("frozen 1"), std::string::npos);

    auto pid = read_file(dir + "/cgroup.procs").value();
    pid = pid.substr(0, pid.find('\n'));
    auto k = d.cli(
        {"kill", "--pid", pid, "--cgroup-parent", d.cgroup_parent(), "--audit-log", d.audit_log()});
    EXPECT_EQ(k.status, 0) << k.err;
    EXPECT_EQ(trio.get().status, 128 + SIGKILL);
    EXPECT_EQ(procs_in(dir), 0u);

    auto recs = emergency_records(d);
    ASSERT_EQ(recs.size(), 2u);
    EXPECT_EQ(recs[0]["daemon"], "not running");
    EXPECT_EQ(recs[1]["target"]["kind"], "pid");
}

TEST(Emergency, AProcessOutsideEverySessionIsRefusedAsATarget) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto r = d.cli({"freeze", "--pid", std::to_string(::getpid())});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("is not in a killswitch session"), std::string::npos) << r.err;
    auto none = d.cli({"freeze", "--session", "no-such"});
    EXPECT_EQ(none.status, 1);
    EXPECT_NE(none.err.find("no session 'no-such'"), std::string::npos) << none.err;
    auto two = d.cli({"freeze", "--all", "--session", "x"});
    EXPECT_EQ(two.status, 2);
}

// `killswitch run` is the session's handle: its pid (it stays outside the
// session) names the session it started, with the daemon up or down, and its
// exit status says the session was killed.
TEST(Emergency, TheRunWrappersPidNamesItsSession) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto trio = start_trio(d, "handle");
    std::string dir = session_dir(d, "handle");
    ASSERT_EQ(procs_in(dir), 3u);
    int wrapper = wrapper_pid(d, "handle");
    ASSERT_GT(wrapper, 0) << "no session_start record with the wrapper's pid";
    auto cg = read_file("/proc/" + std::to_string(wrapper) + "/cgroup");
    ASSERT_TRUE(cg);
    EXPECT_EQ(cg->find(d.cgroup_parent() + "/handle"), std::string::npos)
        << "the wrapper itself is outside the session: " << *cg;

    auto f = d.cli({"freeze", "--pid", std::to_string(wrapper)});
    EXPECT_EQ(f.status, 0) << f.err;
    EXPECT_NE(events_of(dir).find("frozen 1"), std::string::npos);
    d.stop_keep_sessions();  // and with no daemon
    auto k = d.cli({"kill", "--pid", std::to_string(wrapper), "--cgroup-parent", d.cgroup_parent(),
                    "--audit-log", d.audit_log()});
    EXPECT_EQ(k.status, 0) << k.err;
    EXPECT_EQ(trio.get().status, 128 + SIGKILL);
    EXPECT_TRUE(wait_until([&] { return procs_in(dir) == 0; }));
}

TEST(Emergency, SigtermToTheRunWrapperReachesTheWholeSession) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto trio = start_trio(d, "term");
    std::string dir = session_dir(d, "term");
    ASSERT_EQ(procs_in(dir), 3u);
    int wrapper = wrapper_pid(d, "term");
    ASSERT_GT(wrapper, 0);
    ASSERT_EQ(::kill(wrapper, SIGTERM), 0);
    EXPECT_EQ(trio.get().status, 128 + SIGTERM);
    // The background sleeps got it too: nothing of the session is left.
    EXPECT_TRUE(wait_until([&] { return procs_in(dir) == 0; })) << procs_in(dir) << " left";
}

TEST(Emergency, AGuardedProcessCannotThawOrKillSessions) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto trio = start_trio(d, "victim");
    std::string dir = session_dir(d, "victim");
    ASSERT_EQ(d.cli({"freeze", "--session", "victim"}).status, 0);
    // From inside another session, through the daemon: refused.
    auto r = d.cli({"run", "--session", "inside", "--", binary(), "--runtime-dir", d.runtime_dir(),
                    "thaw", "--all"});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("the caller is itself guarded"), std::string::npos) << r.err;
    EXPECT_NE(events_of(dir).find("frozen 1"), std::string::npos);
    ASSERT_EQ(d.cli({"kill", "--session", "victim"}).status, 0);
    EXPECT_EQ(trio.get().status, 128 + SIGKILL);
}

// Self-protection: the cgroup v2 files are protected like killswitch's own
// files. A guarded shell that tries to move itself out of its session (into
// the root cgroup) or to thaw its session is stopped before the write.
TEST(Emergency, AGuardedProcessCannotLeaveOrThawItsSessionThroughCgroupFiles) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    std::string root = cgroup2_mount().value();
    for (const std::string& file :
         {root + "/cgroup.procs", session_dir(d, "escape-1") + "/cgroup.freeze"}) {
        std::string session = file.find("procs") != std::string::npos ? "escape-0" : "escape-1";
        auto r = d.cli({"run", "--session", session, "--", "/bin/sh", "-c",
                        "echo 0 > " + file + " 2>/dev/null; echo $$ > " + file + "; echo escaped"});
        EXPECT_EQ(r.status, 128 + SIGKILL) << file << ": " << r.out << r.err;
        EXPECT_EQ(r.out.find("escaped"), std::string::npos) << r.out;
        json rec;
        wait_until([&] {
            for (const auto& x : read_jsonl(d.audit_log()))
                if (x.value("event", "") == "file" && x.value("session", "") == session) {
                    rec = x;
                    return true;
                }
            return false;
        });
        ASSERT_FALSE(rec.is_null()) << file;
        EXPECT_EQ(rec["rule"], "self:" + root);
        EXPECT_EQ(rec["prevented"], true) << rec.dump();
    }
    // The daemon is unharmed.
    EXPECT_EQ(d.cli({"status"}).status, 0);
}

}  // namespace
}  // namespace ks::test
