// Fail-closed: the programs and their state are pinned in bpffs, so a daemon
// killed with SIGKILL leaves the kernel enforcing. A guarded process that
// tries a destructive operation while no daemon runs is still stopped (killed
// before the call, or held at exec), and a daemon started again adopts the
// pinned state: it reads what the kernel recorded meanwhile, decides the
// held operation and shows the session. `daemon --uninstall` is the way out.
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

bool exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

size_t pinned_links(const std::string& pin_dir) {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(pin_dir, ec))
        if (e.path().filename().string().rfind("links-", 0) == 0)
            for ([[maybe_unused]] const auto& l : std::filesystem::directory_iterator(e.path(), ec))
                ++n;
    return n;
}

// A process of the session whose name is comm and which is stopped (state T).
bool stopped_member(const std::string& dir, const std::string& comm) {
    auto procs = read_file(dir + "/cgroup.procs");
    if (!procs) return false;
    std::istringstream in(*procs);
    std::string pid;
    while (std::getline(in, pid)) {
        auto c = read_file("/proc/" + pid + "/comm");
        auto st = read_file("/proc/" + pid + "/stat");
        if (!c || !st || *c != comm + "\n") continue;
        auto rp = st->rfind(')');
        if (rp != std::string::npos && rp + 2 < st->size() && (*st)[rp + 2] == 'T') return true;
    }
    return false;
}

json first(const Daemon& d, const std::function<bool(const json&)>& pred) {
    return first_record(d, pred);
}

TEST(FailClosed, SigkilledDaemonStillStopsTheAgentAndARestartedOneAdoptsTheSession) {
    KS_REQUIRE_ROOT();
    TempDir data;
    std::string prot = data / "pgdata";
    ASSERT_EQ(::mkdir(prot.c_str(), 0755), 0);
    std::ofstream(prot + "/by_libc") << "rows\n";
    std::ofstream(prot + "/by_rm") << "rows\n";
    std::string go = data / "go";

    Daemon d({.extra_args = {"--protect", prot}});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    std::string script = "while [ ! -e " + go + " ]; do sleep 0.05; done; " +
                         "python3 -c 'import os; os.unlink(\"" + prot + "/by_libc\")'; " +
                         "echo python=$?; rm -f " + prot + "/by_rm; echo rm=$?";
    auto agent = std::async(std::launch::async, [&d, script] {
        return d.cli({"run", "--session", "fc", "--", "/bin/sh", "-c", script},
                     std::chrono::seconds(120));
    });
    std::string dir = session_dir(d, "fc");
    // The command is in its session: the daemon has answered `run` (killed
    // between making the cgroup and answering, it leaves `run` nothing to
    // run, which is not what this test is about).
    ASSERT_TRUE(wait_until([&] {
        auto procs = read_file(dir + "/cgroup.procs");
        return procs && !procs->empty();
    })) << "the command never reached its session";

    auto status = json::parse(d.cli({"status", "--json"}).out, nullptr, false);
    ASSERT_FALSE(status.is_discarded());
    bool scoped = status["layers"].value("uprobe_scope", json::object()).value("active", false);
    d.kill_hard();
    EXPECT_GT(pinned_links(d.pin_dir()), 0u) << "nothing pinned in " << d.pin_dir();
    std::ofstream(go) << "";

    auto agent_state = [&] {
        // Streamed only when an assertion fails (the test ends there).
        if (agent.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
            return std::string("still running");
        auto r = agent.get();
        return "exited " + std::to_string(r.status) + ": " + r.out + r.err;
    };
    if (scoped) {
        // With no daemon, nobody attaches the uprobes of a new process: the
        // shell's next child (its loop's sleep) waits at its return from
        // fork, before its first instruction, for the next daemon.
        ASSERT_TRUE(wait_until([&] { return stopped_member(dir, "sh"); }, std::chrono::seconds(20)))
            << "no child was held at fork; the agent: " << agent_state();
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        EXPECT_TRUE(stopped_member(dir, "sh")) << "the held child went on with no daemon";
    } else {
        // With no daemon: python is killed at libc's unlink, before the call;
        // rm is held at exec, before it runs, and stays stopped.
        ASSERT_TRUE(wait_until([&] { return stopped_member(dir, "rm"); }, std::chrono::seconds(20)))
            << "rm was not held; the agent: " << agent_state();
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        EXPECT_TRUE(stopped_member(dir, "rm")) << "the held rm went on without a decision";
    }
    EXPECT_TRUE(exists(prot + "/by_libc")) << "the unlink happened with the daemon dead";
    EXPECT_TRUE(exists(prot + "/by_rm"));

    ASSERT_TRUE(d.restart()) << d.stderr_text();

    // What the kernel recorded while no daemon ran is read and acted on.
    json by_libc = first(d, [&](const json& r) {
        return r.value("event", "") == "file" && r.value("path", "") == prot + "/by_libc";
    });
    ASSERT_FALSE(by_libc.is_null()) << "no record of the blocked unlink";
    EXPECT_EQ(by_libc["verdict"], "block");
    EXPECT_TRUE(by_libc["prevented"].get<bool>());
    json by_rm = first(d, [&](const json& r) {
        return r.value("event", "") == "file" && r.value("layer", "") == "exec" &&
               r.value("path", "") == prot + "/by_rm";
    });
    ASSERT_FALSE(by_rm.is_null()) << "the held rm was not decided by the new daemon";
    EXPECT_EQ(by_rm["verdict"], "block");
    EXPECT_TRUE(exists(prot + "/by_libc"));
    EXPECT_TRUE(exists(prot + "/by_rm"));

    auto st = d.cli({"status", "--json"});
    ASSERT_EQ(st.status, 0) << st.err;
    json sj = json::parse(st.out);
    EXPECT_TRUE(sj["pinned"]["adopted_state"].get<bool>());
    EXPECT_GT(sj["pinned"]["adopted_links"].get<int>(), 0);
    bool shown = false;
    for (const auto& s : sj["sessions"])
        if (s["name"] == "fc") {
            shown = true;
            EXPECT_EQ(s["origin"], "adopted");
        }
    EXPECT_TRUE(shown) << st.out;
    // The earlier daemon's links are gone, ours are pinned.
    EXPECT_EQ(d.records().front()["event"], "daemon_start");

    // The default policy: each refused command failed (killed before it
    // could act) and the agent went on to its end, told why.
    auto r = agent.get();
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("python=137"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("rm=126"), std::string::npos) << r.out;
    EXPECT_NE(r.err.find("killswitch: refused rm -f " + prot + "/by_rm"), std::string::npos)
        << r.err;
    EXPECT_TRUE(exists(prot + "/by_libc"));
    EXPECT_TRUE(exists(prot + "/by_rm"));
}

// An exec held while no daemon runs is recorded by the kernel then; the next
// daemon reads that record under the session's own name (it keeps the
// session's id). The uprobes are global here, so that the shell's child is
// held at exec rather than at fork.
TEST(FailClosed, WhatTheKernelRecordedWithNoDaemonNamesTheAdoptedSession) {
    KS_REQUIRE_ROOT();
    TempDir data;
    std::string prot = data / "pgdata";
    ASSERT_EQ(::mkdir(prot.c_str(), 0755), 0);
    std::ofstream(prot + "/rows") << "rows\n";
    std::string go = data / "go";
    Daemon d({.extra_args = {"--protect", prot, "--global-uprobes"}});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    // Sessions before it, gone by the restart: its id is not the first one
    // a new daemon would give out.
    for (const char* s : {"earlier-1", "earlier-2"})
        ASSERT_EQ(d.cli({"run", "--session", s, "--", "true"}).status, 0);
    std::string script =
        "while [ ! -e " + go + " ]; do sleep 0.05; done; rm -f " + prot + "/rows; echo rm=$?";
    auto agent = std::async(std::launch::async, [&d, script] {
        return d.cli({"run", "--session", "named", "--", "/bin/sh", "-c", script},
                     std::chrono::seconds(120));
    });
    std::string dir = session_dir(d, "named");
    ASSERT_TRUE(wait_until([&] {
        auto procs = read_file(dir + "/cgroup.procs");
        return procs && !procs->empty();
    }));
    d.kill_hard();
    std::ofstream(go) << "";
    ASSERT_TRUE(wait_until([&] { return stopped_member(dir, "rm"); }, std::chrono::seconds(20)))
        << "rm was not held at exec with no daemon";
    ASSERT_TRUE(d.restart()) << d.stderr_text();
    json rec = first(d, [&](const json& r) {
        return r.value("event", "") == "file" && r.value("layer", "") == "exec" &&
               r.value("path", "") == prot + "/rows";
    });
    ASSERT_FALSE(rec.is_null()) << "the held rm was not decided by the new daemon";
    EXPECT_EQ(rec.value("session", ""), "named") << rec.dump();
    EXPECT_EQ(rec.value("verdict", ""), "block");
    auto r = agent.get();
    EXPECT_NE(r.out.find("rm=126"), std::string::npos) << r.out << r.err;
    EXPECT_TRUE(exists(prot + "/rows"));
}

TEST(FailClosed, ACleanStopKeepsEnforcingUntilUninstall) {
    KS_REQUIRE_ROOT();
    TempDir data;
    std::string prot = data / "pgdata";
    ASSERT_EQ(::mkdir(prot.c_str(), 0755), 0);
    std::ofstream(prot + "/f") << "rows\n";
    std::string go = data / "go";

    Daemon d({.extra_args = {"--protect", prot}});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto refused = d.cli({"daemon", "--uninstall", "--pin-dir", d.pin_dir()});
    EXPECT_EQ(refused.status, 1);
    EXPECT_NE(refused.err.find("a killswitch daemon is running (pid " + std::to_string(d.pid())),
              std::string::npos)
        << refused.err;
    EXPECT_GT(pinned_links(d.pin_dir()), 0u);

    std::string script = "while [ ! -e " + go + " ]; do sleep 0.05; done; " +
                         "python3 -c 'import os; os.unlink(\"" + prot + "/f\")'; echo python=$?";
    auto agent = std::async(std::launch::async, [&d, script] {
        return d.cli({"run", "--session", "calm", "--", "/bin/sh", "-c", script},
                     std::chrono::seconds(60));
    });
    ASSERT_TRUE(wait_until([&] { return exists(session_dir(d, "calm") + "/cgroup.procs"); }));
    ASSERT_EQ(d.stop_keep_sessions(), 0);
    std::ofstream(go) << "";
    auto r = agent.get();
    EXPECT_NE(r.out.find("python=137"), std::string::npos) << r.out << r.err;
    EXPECT_TRUE(exists(prot + "/f"));

    auto u =
        d.cli({"daemon", "--uninstall", "--pin-dir", d.pin_dir(), "--audit-log", d.audit_log()});
    EXPECT_EQ(u.status, 0) << u.err;
    EXPECT_NE(u.out.find("the kernel no longer enforces"), std::string::npos) << u.out;
    EXPECT_FALSE(exists(d.pin_dir()));
    EXPECT_EQ(d.records().back()["event"], "uninstall");
}

TEST(FailClosed, AHeldTaskStaysStoppedWithoutADaemonAndTheNextOneDecides) {
    KS_REQUIRE_ROOT();
    TempDir data;
    std::string prot = data / "pgdata";
    ASSERT_EQ(::mkdir(prot.c_str(), 0755), 0);
    std::ofstream(prot + "/f") << "rows\n";
    std::string policy = data / "policy.yaml";
    std::ofstream(policy) << "version: 1\nprotect:\n  paths:\n    - {path: " << prot
                          << ", action: hold}\n  session: none\n  hold_timeout: 120\n";
    Daemon d({.policy_file = policy});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    auto agent = std::async(std::launch::async, [&d, prot] {
        return d.cli({"run", "--session", "held", "--", "python3", "-c",
                      "import os; os.unlink('" + prot + "/f'); print('deleted')"},
                     std::chrono::seconds(120));
    });
    std::string dir = session_dir(d, "held");
    ASSERT_TRUE(wait_until([&] { return stopped_member(dir, "python3"); })) << "not held";
    auto before = json::parse(d.cli({"holds", "--json"}).out);
    ASSERT_EQ(before.size(), 1u);
    uint64_t id = before[0]["id"];

    d.kill_hard();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_TRUE(stopped_member(dir, "python3")) << "the held task went on with no daemon";
    EXPECT_TRUE(exists(prot + "/f"));

    ASSERT_TRUE(d.restart()) << d.stderr_text();
    auto after = d.cli({"holds", "--json"});
    ASSERT_EQ(after.status, 0) << after.err;
    auto list = json::parse(after.out);
    ASSERT_EQ(list.size(), 1u) << after.out;
    EXPECT_EQ(list[0]["id"], id);
    EXPECT_EQ(list[0]["op"], "unlink");
    bool shown_held = false;
    json status = json::parse(d.cli({"status", "--json"}).out);
    for (const auto& s : status["sessions"])
        if (s["name"] == "held") shown_held = s["state"] == "held";
    EXPECT_TRUE(shown_held) << "status does not show the session as held: " << status.dump();
    EXPECT_EQ(d.cli({"deny", std::to_string(id)}).status, 0);
    auto r = agent.get();
    EXPECT_EQ(r.status, 128 + SIGKILL) << r.out;
    EXPECT_TRUE(exists(prot + "/f"));
    json adopted = first(d, [](const json& x) { return x.value("event", "") == "hold_adopted"; });
    EXPECT_FALSE(adopted.is_null());
    json denied = first(d, [](const json& x) { return x.value("event", "") == "hold_denied"; });
    ASSERT_FALSE(denied.is_null());
    EXPECT_EQ(denied["hold_id"], id);
}

// The file layers attach for the first session and stay while agents run one
// short session after another (a detach and an attach can take longer than a
// client waits on a loaded host); once idle for the grace period they go,
// pins included: processes that are not guarded pay nothing then.
TEST(FailClosed, FileLayersStayForBackToBackSessionsAndGoWhenIdle) {
    KS_REQUIRE_ROOT();
    Daemon d;
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    size_t idle_links = pinned_links(d.pin_dir());
    auto attached = [&d] {
        auto s = json::parse(d.cli({"status", "--json"}).out, nullptr, false);
        return !s.is_discarded() && s.value("file_protection_attached", false);
    };
    EXPECT_FALSE(attached());

    auto one = d.cli({"run", "--session", "one", "--", "true"});
    EXPECT_EQ(one.status, 0) << one.err;
    EXPECT_TRUE(attached()) << "detached at once: the next session pays a new attach";
    EXPECT_GT(pinned_links(d.pin_dir()), idle_links);
    auto two = d.cli({"run", "--session", "two", "--", "true"});
    EXPECT_EQ(two.status, 0) << two.err;

    EXPECT_TRUE(wait_until([&] { return !attached(); }, std::chrono::seconds(30)))
        << "still attached 30 s after the last session";
    EXPECT_TRUE(wait_until([&] { return pinned_links(d.pin_dir()) == idle_links; }))
        << pinned_links(d.pin_dir()) << " links pinned, " << idle_links << " when idle";
}

}  // namespace
}  // namespace ks::test
