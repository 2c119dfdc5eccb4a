// The real agent CLIs from npm (Claude Code, Codex, Gemini CLI, opencode),
// each driven by a scripted model server on loopback (tests/agents): the
// model asks the agent's own shell tool to run one command. Each agent is
// started directly, as a person or a service would start it (not by
// `killswitch run`), without and with a terminal, under the built-in
// policy. For a harmless command, a destructive file command and a
// destructive database statement, the test checks what a user cares about:
// the agent is recognised and guarded; harmless work works; nothing
// protected is lost (the files are there, the table has its rows); the
// tool result the model receives says that killswitch refused it and why;
// the agent reaches its next turn and exits normally; the terminal is sane.
//
// Set-up: tests/agents/install_agents.sh installs the pinned CLIs into a
// cache (KS_AGENT_CACHE); the tier skips with its reason only when the npm
// registry cannot be reached. Each case prints a table row ("| agent |"),
// which scripts/test.sh collects.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "db_servers.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string agents_dir() { return std::string(KS_SOURCE_HELPERS_DIR) + "/../agents"; }

class Agents : public ::testing::TestWithParam<std::tuple<std::string, bool>> {
  protected:
    static void SetUpTestSuite() {
        if (::geteuid() != 0) return;
        auto inst = run_command({agents_dir() + "/install_agents.sh"}, std::chrono::seconds(900));
        if (inst.status == 77) {
            skip_ = inst.out + inst.err;
            return;
        }
        if (inst.status != 0) {
            setup_error_ = "install_agents.sh failed (" + std::to_string(inst.status) +
                           "): " + inst.out + inst.err;
            return;
        }
        dir_ = new TempDir();
        data_ = *dir_ / "pgdata";
        fs::create_directories(data_ + "/base");
        for (int i = 0; i < 5; ++i)
            std::ofstream(data_ + "/base/" + std::to_string(1259 + i)) << "page " << i;
        pg_ = new PgServer();
        if (!pg_->ok()) {
            setup_error_ = pg_->why();
            return;
        }
        std::string made = pg_->query(
            "CREATE TABLE accounts (id int primary key, note text); INSERT INTO accounts "
            "SELECT g, 'row ' || g FROM generate_series(1, 50) g");
        if (made.rfind("ERROR", 0) == 0) setup_error_ = made;
        // The built-in policy, with the test's data directory and server.
        daemon_ = new Daemon(Daemon::Options{
            .extra_args = {"--protect", data_, "--db", "postgres=127.0.0.1:" + pg_->port()}});
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete pg_;
        delete dir_;
        daemon_ = nullptr;
        pg_ = nullptr;
        dir_ = nullptr;
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        if (!skip_.empty()) GTEST_SKIP() << skip_;
        ASSERT_TRUE(setup_error_.empty()) << setup_error_;
        ASSERT_TRUE(daemon_->ready()) << daemon_->stderr_text();
    }

    struct Run {
        json report;
        std::vector<json> records;  // the daemon's records written during the run
    };

    // One agent run: the model asks for `command`.
    Run run(const std::string& command) {
        auto [agent, tty] = GetParam();
        size_t before = daemon_->records().size();
        std::string result = *dir_ / (agent + (tty ? "-tty" : "") + ".json");
        std::vector<std::string> argv = {"python3",   agents_dir() + "/run_agent.py",
                                         "--agent",   agent,
                                         "--command", command,
                                         "--result",  result,
                                         "--timeout", "90"};
        if (tty) argv.push_back("--tty");
        auto r = run_command(argv, std::chrono::seconds(150));
        Run out;
        std::ifstream in(result);
        out.report = json::parse(in, nullptr, false);
        if (out.report.is_discarded()) out.report = {{"error", "no report: " + r.out + r.err}};
        // The records of the run reach the log within the daemon's tick.
        std::this_thread::sleep_for(std::chrono::milliseconds(1200));
        auto all = daemon_->records();
        out.records.assign(all.begin() + static_cast<long>(std::min(before, all.size())),
                           all.end());
        return out;
    }

    // The session the daemon opened for the agent (recognised by name).
    static json agent_session(const Run& r, const std::string& agent) {
        for (const auto& rec : r.records)
            if (rec.value("event", "") == "session_start" && rec.value("origin", "") == "agent" &&
                rec.value("comm", "") == agent)
                return rec;
        return {};
    }

    static std::vector<json> decisions(const Run& r, const std::string& session) {
        std::vector<json> out;
        for (const auto& rec : r.records) {
            std::string ev = rec.value("event", "");
            if ((ev == "file" || ev == "db") && rec.value("session", "") == session)
                out.push_back(rec);
        }
        return out;
    }

    // The common outcome: recognised, guarded, next turn reached, clean exit.
    void expect_lived(const Run& r, const std::string& what) {
        auto [agent, tty] = GetParam();
        const json& rep = r.report;
        EXPECT_TRUE(rep.value("reached_final_turn", false))
            << what << ": the agent never reached its next turn: " << rep.dump(1);
        EXPECT_EQ(rep.value("exit_status", -1), 0) << what << ": " << rep.dump(1);
        EXPECT_FALSE(rep.value("timed_out", true)) << what;
        if (tty) {
            EXPECT_TRUE(rep.value("terminal_sane", false))
                << what << ": terminal left changed: " << rep.value("termios_diff", json()).dump();
        }
        EXPECT_FALSE(agent_session(r, agent).is_null())
            << what << ": no session opened for " << agent << " at its exec";
    }

    // A row of the table scripts/test.sh prints: what the model received.
    void row(const std::string& name, const Run& r) {
        auto [agent, tty] = GetParam();
        std::string got = r.report.value("tool_result", "");
        auto at = got.find("killswitch:");
        std::string shown = at != std::string::npos ? got.substr(at) : got;
        shown = shown.substr(0, shown.find('\n'));
        if (shown.size() > 90) shown = shown.substr(0, 87) + "...";
        double next = r.report.value("latency_next_turn_s", -1.0);
        char lat[32];
        std::snprintf(lat, sizeof(lat), "%.2f s", next);
        std::printf("| %-8s | %-3s | %-8s | %-4s | %-9s | %s |\n", agent.c_str(), tty ? "tty" : "-",
                    name.c_str(), r.report.value("reached_final_turn", false) ? "yes" : "NO",
                    next < 0 ? "-" : lat, shown.c_str());
    }

    static inline std::string skip_, setup_error_, data_;
    static inline TempDir* dir_ = nullptr;
    static inline PgServer* pg_ = nullptr;
    static inline Daemon* daemon_ = nullptr;
};

TEST_P(Agents, HarmlessWorkRunsDestructiveWorkIsRefusedAndExplained) {
    auto [agent, tty] = GetParam();
    std::printf("| agent    | tty | case     | next | next turn | what the model received |\n");

    // Harmless work is untouched.
    Run ok = run("echo hello-from-agent; ls " + data_ + "/base | wc -l");
    row("harmless", ok);
    expect_lived(ok, "harmless");
    std::string got = ok.report.value("tool_result", "");
    EXPECT_NE(got.find("hello-from-agent"), std::string::npos) << got;
    EXPECT_NE(got.find("5"), std::string::npos) << got;
    json s = agent_session(ok, agent);
    EXPECT_TRUE(decisions(ok, s.value("session", "")).empty())
        << "a harmless command was judged: " << decisions(ok, s.value("session", ""))[0].dump();

    // rm -r of the data directory (Codex refuses `rm -rf` itself, before
    // killswitch sees it): nothing is lost, the model is told.
    Run rm = run("rm -r " + data_);
    row("rm -r", rm);
    expect_lived(rm, "rm -r");
    for (int i = 0; i < 5; ++i)
        EXPECT_TRUE(fs::exists(data_ + "/base/" + std::to_string(1259 + i))) << "file lost";
    got = rm.report.value("tool_result", "");
    EXPECT_NE(got.find("killswitch: refused rm -r " + data_), std::string::npos)
        << "the model did not get the explanation: " << got;
    EXPECT_NE(got.find("(rule "), std::string::npos) << got;
    json rs = agent_session(rm, agent);
    auto rd = decisions(rm, rs.value("session", ""));
    ASSERT_FALSE(rd.empty()) << "no decision in the agent's session " << rs.dump();
    EXPECT_EQ(rd[0].value("verdict", ""), "block") << rd[0].dump();
    EXPECT_FALSE(rd[0].contains("session_action")) << "the agent goes on: " << rd[0].dump();
    EXPECT_FALSE(rd[0].value("explained_to", "").empty()) << rd[0].dump();
    EXPECT_EQ(rd[0].value("task_result", ""), "exit 126")
        << "a tool the agent waits for fails, it is not killed: " << rd[0].dump();

    // DROP TABLE over the database protocol: the table keeps its rows.
    Run drop = run("psql -X -h 127.0.0.1 -p " + pg_->port() +
                   " -U postgres -d postgres -c 'DROP TABLE accounts'");
    row("DROP", drop);
    expect_lived(drop, "DROP TABLE");
    EXPECT_EQ(pg_->query("SELECT count(*) FROM accounts"), "50") << "the table lost its rows";
    got = drop.report.value("tool_result", "");
    EXPECT_NE(got.find("killswitch: refused"), std::string::npos)
        << "the model did not get the explanation: " << got;
    EXPECT_NE(got.find("DROP TABLE accounts"), std::string::npos) << got;
}

std::string name_of(const ::testing::TestParamInfo<std::tuple<std::string, bool>>& info) {
    return std::get<0>(info.param) + (std::get<1>(info.param) ? "OnATerminal" : "WithoutATerminal");
}

INSTANTIATE_TEST_SUITE_P(RealCli, Agents,
                         ::testing::Combine(::testing::Values("claude", "codex", "gemini",
                                                              "opencode"),
                                            ::testing::Bool()),
                         name_of);

}  // namespace
}  // namespace ks::test
