// The spine, against the real kernel: guarded sessions, inheritance through
// fork and exec, the audit trail, and the daemon's life cycle.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/sysfs.h"
#include "harness.h"
#include "process_guard/enrich.h"
#include "process_guard/sessions.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::vector<json> execs_where(const std::vector<json>& recs,
                              const std::function<bool(const json&)>& pred) {
    std::vector<json> out;
    for (const auto& r : recs)
        if (r.value("event", "") == "exec" && pred(r)) out.push_back(r);
    return out;
}

// A policy whose agent list names the fake agent below.
std::string fake_agent_policy(const TempDir& dir) {
    std::string policy = dir / "policy.yaml";
    std::ofstream(policy) << "version: 1\nagents:\n  names: [ks-fake-agent]\n";
    return policy;
}

// The self_cgroup helper under an agent's name: it prints its cgroup first.
std::string install_fake_agent(const TempDir& dir) {
    std::string agent = dir / "ks-fake-agent";
    fs::copy_file(helper("self_cgroup"), agent);
    ::chmod(agent.c_str(), 0755);
    return agent;
}

// Waits for exec records that mention marker; recs gets every record read.
std::vector<json> wait_for_execs_mentioning(const Daemon& d, const std::string& marker,
                                            std::vector<json>& recs) {
    auto mentions = [&](const json& x) { return x.dump().find(marker) != std::string::npos; };
    std::vector<json> found;
    wait_until([&] {
        recs = d.records();
        found = execs_where(recs, mentions);
        return !found.empty();
    });
    return found;
}

bool argv0_is(const json& r, const std::string& s) {
    return r.contains("argv") && !r["argv"].empty() && r["argv"][0] == s;
}

TEST(ProcessGuard, ThreeGenerationsAreAuditedWithTheirParentChain) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();

    const std::string helper_path = helper("gen3_helper");
    // bash forks python3 (a second command follows, so bash cannot exec in
    // place); python3 forks and execs the compiled helper.
    const std::string py = "import os\npid = os.fork()\nif pid == 0:\n    os.execv('" +
                           helper_path + "', ['" + helper_path + "'])\nos.waitpid(pid, 0)\n";
    auto r = d.cli({"run", "--session", "lineage", "--", "bash", "-c",
                    "/usr/bin/python3 -c \"" + py + "\"; echo bash-done"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("cgroup=/" + d.cgroup_parent() + "/lineage"), std::string::npos)
        << "the helper ran outside its session cgroup: " << r.out;

    // Something outside the session execs at the same time.
    const std::string marker = "outside-marker-" + std::to_string(::getpid());
    ASSERT_EQ(run_command({"/bin/echo", marker}).status, 0);

    std::vector<json> recs;
    ASSERT_TRUE(wait_until([&] {
        recs = d.records();
        return !execs_where(recs, [&](const json& x) { return argv0_is(x, helper_path); }).empty();
    })) << "no exec record of the helper";

    auto bash = execs_where(recs, [](const json& x) { return argv0_is(x, "bash"); });
    auto python = execs_where(recs, [](const json& x) { return argv0_is(x, "/usr/bin/python3"); });
    auto gen3 = execs_where(recs, [&](const json& x) { return argv0_is(x, helper_path); });
    ASSERT_EQ(bash.size(), 1u);
    ASSERT_EQ(python.size(), 1u);
    ASSERT_EQ(gen3.size(), 1u);

    for (const auto* rec : {&bash[0], &python[0], &gen3[0]}) {
        EXPECT_EQ((*rec)["session"], "lineage");
        EXPECT_EQ((*rec)["uid"], 0);
        EXPECT_EQ((*rec)["cgroup"], "/" + d.cgroup_parent() + "/lineage");
        EXPECT_FALSE((*rec)["exe"].get<std::string>().empty());
        EXPECT_FALSE((*rec)["cwd"].get<std::string>().empty());
    }
    int bash_pid = bash[0]["pid"], py_pid = python[0]["pid"], gen3_pid = gen3[0]["pid"];
    EXPECT_NE(bash_pid, py_pid);
    EXPECT_NE(py_pid, gen3_pid);
    EXPECT_TRUE(bash[0]["lineage"].empty()) << bash[0].dump();
    EXPECT_EQ(python[0]["ppid"], bash_pid);
    ASSERT_EQ(python[0]["lineage"].size(), 1u) << python[0].dump();
    EXPECT_EQ(python[0]["lineage"][0]["pid"], bash_pid);
    EXPECT_EQ(gen3[0]["ppid"], py_pid);
    ASSERT_EQ(gen3[0]["lineage"].size(), 2u) << gen3[0].dump();
    EXPECT_EQ(gen3[0]["lineage"][0]["pid"], py_pid);
    EXPECT_EQ(gen3[0]["lineage"][0]["comm"], "python3");
    EXPECT_EQ(gen3[0]["lineage"][1]["pid"], bash_pid);
    EXPECT_EQ(gen3[0]["exe"], helper_path);

    // Forks and exits of the session are there too.
    auto has = [&](const char* ev, int pid) {
        for (const auto& x : recs)
            if (x.value("event", "") == ev && x.value("pid", 0) == pid) return true;
        return false;
    };
    EXPECT_TRUE(has("fork", py_pid));
    EXPECT_TRUE(has("fork", gen3_pid));
    EXPECT_TRUE(has("exit", gen3_pid));

    for (const auto& x : recs)
        EXPECT_EQ(x.dump().find(marker), std::string::npos)
            << "unguarded exec audited: " << x.dump();

    // `killswitch events --session` shows the same execs.
    auto ev =
        d.cli({"events", "--session", "lineage", "--event", "exec", "--audit-log", d.audit_log()});
    ASSERT_EQ(ev.status, 0) << ev.err;
    EXPECT_NE(ev.out.find(helper_path), std::string::npos) << ev.out;
    EXPECT_EQ(ev.out.find(marker), std::string::npos);
}

TEST(ProcessGuard, ExecStormLosesNothingOrSaysExactlyHowMuch) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    constexpr int kExecs = 10000;
    auto r = d.cli({"run", "--session", "storm", "--", "bash", "-c",
                    "for i in $(seq " + std::to_string(kExecs) + "); do /bin/true; done"},
                   std::chrono::seconds(240));
    ASSERT_EQ(r.status, 0) << r.err;

    auto count_true = [&] {
        size_t n = 0;
        for (const auto& x : d.records())
            if (x.value("event", "") == "exec" && x.value("session", "") == "storm" &&
                argv0_is(x, "/bin/true"))
                ++n;
        return n;
    };
    auto lost_exec = [&]() -> uint64_t {
        auto st = d.cli({"status", "--json"});
        auto j = json::parse(st.out, nullptr, false);
        if (j.is_discarded()) return UINT64_MAX;
        return j["counters"]["lost"].value("exec", uint64_t{0});
    };
    size_t seen = 0;
    uint64_t lost = 0;
    wait_until(
        [&] {
            seen = count_true();
            lost = lost_exec();
            return seen + lost >= kExecs;
        },
        std::chrono::seconds(30));
    std::cout << "[ storm    ] " << kExecs << " execs: " << seen << " audited, " << lost
              << " reported lost\n";
    EXPECT_EQ(seen + lost, static_cast<uint64_t>(kExecs));
    if (lost > 0) {
        // Lost events are never silent: a `lost` record says how many.
        uint64_t reported = 0;
        for (const auto& x : d.records())
            if (x.value("event", "") == "lost") reported += x.value("count", uint64_t{0});
        EXPECT_GE(reported, lost);
    }
}

TEST(ProcessGuard, RunReturnsTheCommandsExitStatus) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    EXPECT_EQ(d.cli({"run", "--", "sh", "-c", "exit 3"}).status, 3);
    EXPECT_EQ(d.cli({"run", "--", "sh", "-c", "kill -TERM $$"}).status, 128 + SIGTERM);
    auto missing = d.cli({"run", "--", "/nonexistent/agent"});
    EXPECT_EQ(missing.status, 127);
    EXPECT_NE(missing.err.find("/nonexistent/agent"), std::string::npos);
    auto bad = d.cli({"run", "--session", "../escape", "--", "true"});
    EXPECT_EQ(bad.status, 125);
    EXPECT_NE(bad.err.find("invalid session name"), std::string::npos) << bad.err;
}

TEST(ProcessGuard, RunRefusesToStartUnguardedWithoutADaemon) {
    KS_REQUIRE_ROOT();
    TempDir dir;
    std::string flag = dir / "ran";
    auto r = run_command({binary(), "--runtime-dir", dir / "run", "run", "--", "touch", flag});
    EXPECT_EQ(r.status, 125);
    EXPECT_NE(r.err.find("Refusing to run the command unguarded"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(flag));
}

TEST(ProcessGuard, StatusFollowsTheDaemonsLife) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto up = d.cli({"status"});
    EXPECT_EQ(up.status, 0) << up.err;
    EXPECT_NE(up.out.find("running"), std::string::npos);
    auto j = json::parse(d.cli({"status", "--json"}).out, nullptr, false);
    ASSERT_FALSE(j.is_discarded());
    EXPECT_EQ(j["running"], true);
    EXPECT_EQ(j["counters"]["lost_total"], 0);
    EXPECT_EQ(j["mode"], "enforce");

    EXPECT_EQ(d.stop_keep_sessions(), 0) << "SIGTERM must stop the daemon cleanly";
    EXPECT_NE(d.cli({"status"}).status, 0);
    auto recs = d.records();
    ASSERT_FALSE(recs.empty());
    EXPECT_EQ(recs.front()["event"], "daemon_start");
    EXPECT_EQ(recs.back()["event"], "daemon_stop");
}

TEST(ProcessGuard, SecondDaemonIsRefusedWithOneLine) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    TempDir dir;
    auto r = run_command({binary(), "--runtime-dir", d.runtime_dir(), "daemon", "--audit-log",
                          dir / "audit.jsonl", "--cgroup-parent", "ks-second"},
                         std::chrono::seconds(30));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("another killswitch daemon is running (pid " + std::to_string(d.pid())),
              std::string::npos)
        << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(d.cli({"status"}).status, 0) << "the first daemon must be unharmed";
}

TEST(ProcessGuard, BadPolicyFileIsRefusedBeforeAnythingLoads) {
    KS_REQUIRE_ROOT();
    TempDir dir;
    std::string policy = dir / "bad.yaml";
    std::ofstream(policy) << "version: 1\nmode: enforce\nagents:\n  namez: [claude]\n";
    auto r = run_command({binary(), "--runtime-dir", dir / "run", "daemon", "--policy", policy,
                          "--audit-log", dir / "audit.jsonl", "--cgroup-parent", "ks-badpolicy"},
                         std::chrono::seconds(30));
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find(policy + ":4:3"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("namez"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "run/control.sock"));
    EXPECT_FALSE(std::filesystem::exists(dir / "audit.jsonl"));
}

TEST(ProcessGuard, AgentExecutableIsMovedIntoASessionBeforeItRuns) {
    KS_REQUIRE_ROOT();
    TempDir dir;
    Daemon d({.policy_file = fake_agent_policy(dir)});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    std::string agent = install_fake_agent(dir);
    // Started by the test itself, outside any session, with no controlling
    // terminal (as a service or CI job would be): held at exec.
    auto r = run_command({"setsid", agent});
    ASSERT_EQ(r.status, 0) << r.err;
    // Its very first act reads its cgroup: it must already be its session's.
    const std::string prefix = "first-cgroup=/" + d.cgroup_parent() + "/ks-fake-agent-";
    EXPECT_EQ(r.out.rfind(prefix, 0), 0u) << r.out;

    std::vector<json> recs;
    ASSERT_TRUE(wait_until([&] {
        recs = d.records();
        return !execs_where(recs, [](const json& x) { return argv0_is(x, "true"); }).empty();
    })) << d.stderr_text();
    auto agent_exec = execs_where(recs, [&](const json& x) { return argv0_is(x, agent); });
    ASSERT_EQ(agent_exec.size(), 1u);
    EXPECT_EQ(agent_exec[0]["seed"], "agent");
    EXPECT_EQ(agent_exec[0]["held_at_exec"], true);
    std::string session = agent_exec[0]["session"];
    EXPECT_EQ(session.rfind("ks-fake-agent-", 0), 0u) << session;
    bool started = false;
    for (const auto& x : recs)
        if (x.value("event", "") == "session_start" && x.value("session", "") == session)
            started = x.value("origin", "") == "agent";
    EXPECT_TRUE(started);
    // Its exec of /bin/true (same pid, new image) stays in the session.
    auto child = execs_where(recs, [](const json& x) { return argv0_is(x, "true"); });
    ASSERT_EQ(child.size(), 1u);
    EXPECT_EQ(child[0]["session"], session);
}

TEST(ProcessGuard, UidNamedByThePolicyOpensASession) {
    KS_REQUIRE_ROOT();
    TempDir dir;
    std::string policy = dir / "policy.yaml";
    std::ofstream(policy) << "version: 1\nguard:\n  uids: [54321]\n";
    Daemon d({.policy_file = policy});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    const std::string marker = "uid-marker-" + std::to_string(::getpid());
    auto r = run_command(
        {"setpriv", "--reuid", "54321", "--regid", "54321", "--clear-groups", "/bin/echo", marker});
    ASSERT_EQ(r.status, 0) << r.err;
    std::vector<json> recs;
    auto ex = wait_for_execs_mentioning(d, marker, recs);
    ASSERT_FALSE(ex.empty()) << d.stderr_text();
    EXPECT_EQ(ex[0]["uid"], 54321);
    EXPECT_EQ(ex[0]["seed"], "uid");
    bool started = false;
    for (const auto& x : recs)
        if (x.value("event", "") == "session_start" && x.value("session", "") == ex[0]["session"])
            started = x.value("origin", "") == "uid";
    EXPECT_TRUE(started);
    // Root's own execs are not guarded.
    ASSERT_EQ(run_command({"/bin/echo", "root-" + marker}).status, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (const auto& x : d.records()) EXPECT_EQ(x.dump().find("root-" + marker), std::string::npos);
}

TEST(ProcessGuard, CgroupNamedByThePolicyGuardsItsProcesses) {
    KS_REQUIRE_ROOT();
    std::string mount = fs::exists("/sys/fs/cgroup/unified/cgroup.procs") ? "/sys/fs/cgroup/unified"
                                                                          : "/sys/fs/cgroup";
    std::string rel = "/ks-test-named-" + std::to_string(::getpid());
    ASSERT_TRUE(fs::create_directory(mount + rel));
    TempDir dir;
    std::string policy = dir / "policy.yaml";
    std::ofstream(policy) << "version: 1\nguard:\n  cgroups: [" << rel << "]\n";
    {
        Daemon d({.policy_file = policy});
        ASSERT_TRUE(d.ready()) << d.stderr_text();
        const std::string marker = "cg-marker-" + std::to_string(::getpid());
        // A process that joins the cgroup and then execs: guarded from there.
        auto r = run_command(
            {"sh", "-c", "echo $$ > " + mount + rel + "/cgroup.procs && exec /bin/echo " + marker});
        ASSERT_EQ(r.status, 0) << r.err;
        std::vector<json> recs;
        auto ex = wait_for_execs_mentioning(d, marker, recs);
        ASSERT_FALSE(ex.empty()) << d.stderr_text();
        EXPECT_EQ(ex[0]["session"], "cgroup:" + rel);
        EXPECT_EQ(ex[0]["seed"], "cgroup");
    }
    EXPECT_TRUE(wait_until([&] { return ::rmdir((mount + rel).c_str()) == 0; }));
}

TEST(ProcessGuard, AgentWithATerminalIsNotStoppedAndJoinsItsSessionAtOnce) {
    KS_REQUIRE_ROOT();
    TempDir dir;
    Daemon d({.policy_file = fake_agent_policy(dir)});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    std::string agent = install_fake_agent(dir);
    // script(1) gives the agent a pseudo-terminal as its controlling terminal,
    // as an operator's shell would. Stopping it would make a job-control shell
    // report the job as stopped, so it is not held: it sleeps a second, then
    // execs /bin/true, which must already happen inside its session.
    auto r = run_command({"script", "-qec", agent + " 1", "/dev/null"});
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    std::vector<json> recs;
    ASSERT_TRUE(wait_until([&] {
        recs = d.records();
        return !execs_where(recs, [](const json& x) { return argv0_is(x, "true"); }).empty();
    })) << d.stderr_text();
    auto agent_exec = execs_where(recs, [&](const json& x) { return argv0_is(x, agent); });
    ASSERT_EQ(agent_exec.size(), 1u);
    EXPECT_FALSE(agent_exec[0].contains("held_at_exec"));
    std::string session = agent_exec[0]["session"];
    json start;
    for (const auto& x : recs)
        if (x.value("event", "") == "session_start" && x.value("session", "") == session) start = x;
    ASSERT_FALSE(start.is_null()) << "no session_start for " << agent_exec[0].dump() << "\n"
                                  <<
        [&] {
            std::string all;
            for (const auto& x : recs)
                if (x.value("event", "") != "fork") all += x.dump() + "\n";
            return all;
        }() << d.stderr_text();
    EXPECT_EQ(start["held_at_exec"], false);
    std::cout << "[ terminal ] session ready "
              << start["guard_ready_latency_ns"].get<uint64_t>() / 1000
              << " us after the agent's exec\n";
    auto child = execs_where(recs, [](const json& x) { return argv0_is(x, "true"); });
    ASSERT_EQ(child.size(), 1u);
    EXPECT_EQ(child[0]["session"], session);
    EXPECT_EQ(child[0]["cgroup"], "/" + d.cgroup_parent() + "/" + session);
}

// The records a session's processes submitted before they exited can be read
// after the session ended (its cgroup emptied between two reads of the ring
// buffer): they must still name it, not "unknown-ID".
TEST(ProcessGuard, RecordsReadAfterTheSessionEndedStillNameIt) {
    KS_REQUIRE_ROOT();
    auto cg = cgroup2_mount();
    ASSERT_TRUE(cg) << cg.error().str();
    auto bpf = ProcessGuardBpf::load({.hold_seeded_tasks = false});
    ASSERT_TRUE(bpf) << bpf.error().str();
    const std::string parent = "ks-test-ended-" + std::to_string(::getpid());
    SessionManager sessions(**bpf, *cg, parent);
    ASSERT_TRUE(sessions.start({}));
    auto s = sessions.create("short-lived", {"sleep", "60"});
    ASSERT_TRUE(s) << s.error().str();

    // A process joins the session and dies: the session empties.
    pid_t child = ::fork();
    if (child == 0) {
        ::pause();
        ::_exit(0);
    }
    ASSERT_GT(child, 0);
    std::ofstream(s->cgroup_path + "/cgroup.procs") << child;
    sessions.ensure_member(s->id, child, s->cgroup_id);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    std::vector<Session> ended;
    ASSERT_TRUE(wait_until([&] {
        ended = sessions.sweep();
        return !ended.empty();
    })) << "the emptied session was not swept";
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(sessions.find(s->id), nullptr) << "the session did not end";

    // A record of one of its processes, read now.
    EventHeader h;
    h.pid = child;
    h.tid = child;
    h.session_id = s->id;
    h.comm = "sleep";
    Subject subj = enrich(h, ProcessTable{}, sessions);
    EXPECT_EQ(subj.session, "short-lived");
    EXPECT_EQ(session_name(sessions, s->id), "short-lived");
    EXPECT_EQ(session_name(sessions, s->id + 1000), "unknown-" + std::to_string(s->id + 1000));
    ::rmdir((*cg + "/" + parent).c_str());
}

}  // namespace
}  // namespace ks::test
