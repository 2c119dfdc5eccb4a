// The database clients, ORMs and migration tools that agents use, against the
// test's own PostgreSQL 15, MariaDB and Redis servers (db_servers.h), each
// run as a person runs it: Django (migrate, loaddata, flush, migrate shop
// zero, sqlflush | dbshell), SQLAlchemy, Alembic, knex, Sequelize,
// node-postgres, mysql2, PyMySQL, redis-py and ioredis, over TCP and, for
// MySQL and Redis, over the servers' unix sockets. The scenario scripts are
// in tests/clients/ (README.md there); install_clients.sh installs the
// clients (Debian packages, pinned npm packages in a cache) and the tier
// skips with its reason when a registry cannot be reached (exit 77).
//
// Each case runs on a fresh seed, first unguarded, then under a daemon with
// the default database settings (only the servers' addresses are given):
//   destructive  unguarded, it does destroy data (else the case tests
//                nothing); guarded, every row, table and key is still there
//                and unchanged (read by an unguarded client; "changed": a
//                client left its bookkeeping half done), the client reports
//                the refusal, naming killswitch and the rule (db:drop...)
//                that the daemon's record gives; direct drivers can still
//                use their connection afterwards. Redis DEL of every key
//                (2,000): a volume budget, at least the keys beyond the
//                first 1,000 deletions are still there.
//   harmless     guarded, it works and leaves what it leaves unguarded; its
//                median time (the script's own measure, over 3 runs each
//                way, or KS_CLIENTS_RUNS) is at most 1.2 times the
//                unguarded one.
// Each case prints a row ("| destructive |", "| harmless |") that
// scripts/test.sh collects. ctest runs each fixture as one test, in one
// process: one server and one daemon for all its cases (tests/CMakeLists.txt).
// A daemon's session that a rule freezes (escalation after refusals: a
// client that reconnects and retries) is killed at once and the row says so.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include "db_servers.h"

namespace ks::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string clients_dir() { return std::string(KS_SOURCE_HELPERS_DIR) + "/../clients"; }

// install_clients.sh, once per test process.
struct Install {
    int status = -1;
    std::string text, node_modules;
};
const Install& install() {
    static const Install once = [] {
        Install i;
        auto r = run_command({clients_dir() + "/install_clients.sh"}, std::chrono::seconds(900));
        i.status = r.status;
        i.text = r.out + r.err;
        const std::string tag = "install_clients: node_modules ";
        auto at = r.out.rfind(tag);
        if (at != std::string::npos) {
            i.node_modules = r.out.substr(at + tag.size());
            i.node_modules = i.node_modules.substr(0, i.node_modules.find('\n'));
        }
        return i;
    }();
    return once;
}

// Runs of a harmless case, each way: KS_CLIENTS_RUNS, default 3.
int runs_per_case() {
    const char* v = std::getenv("KS_CLIENTS_RUNS");
    return v && std::atoi(v) > 0 ? std::atoi(v) : 3;
}

std::vector<std::string> python(const std::string& script, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/python3", "-B", clients_dir() + "/" + script};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}
std::vector<std::string> node(const std::string& script, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/env",
                                     "KS_CLIENTS_NODE_MODULES=" + install().node_modules, "node",
                                     clients_dir() + "/" + script};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

// A scenario script of tests/clients/ (by its name's ending, Python or
// Node.js): its action, then the connection arguments.
std::vector<std::string> script(const std::string& name, const std::string& action,
                                const std::vector<std::string>& args) {
    std::vector<std::string> a = {action};
    a.insert(a.end(), args.begin(), args.end());
    return name.ends_with(".js") ? node(name, a) : python(name, a);
}

// What a scenario script printed (tests/clients/clientlib.py).
struct ScriptRun {
    CommandResult r;
    double wall_ms = 0, op_ms = -1;
    std::vector<std::string> errors;  // "client error:" lines
    std::string after;                // "usable", "unusable: ...", or "" (not tried)
    std::string other_err;            // the rest of stderr
    std::string session_ended;        // guarded: the session was frozen or killed by a rule
    size_t log_from = 0;              // guarded: the audit log's size when it started
};

ScriptRun read_run(CommandResult r, double wall_ms) {
    ScriptRun run;
    run.wall_ms = wall_ms;
    std::istringstream out(r.out), err(r.err);
    for (std::string l; std::getline(out, l);) {
        if (l.rfind("op_ms ", 0) == 0) run.op_ms = std::atof(l.c_str() + 6);
        if (l.rfind("after refusal: ", 0) == 0) run.after = l.substr(15);
    }
    for (std::string l; std::getline(err, l);) {
        if (l.rfind("client error: ", 0) == 0)
            run.errors.push_back(l.substr(14));
        else if (!l.empty())
            run.other_err += (run.other_err.empty() ? "" : " / ") + l;
    }
    run.r = std::move(r);
    return run;
}

std::string first_line(const std::string& s, size_t max = 150) {
    std::string l = s.substr(0, s.find('\n'));
    return l.size() > max ? l.substr(0, max - 3) + "..." : l;
}

// A state without the hashes of the rows: tables, columns, counts, keys.
std::string shape(const std::string& state) {
    static const std::regex hash(" [0-9a-f]{32}");
    return std::regex_replace(state, hash, "");
}

double median(std::vector<double> v) {
    if (v.empty()) return -1;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// One case of a table.
struct Case {
    std::string client, what, via = "tcp";
    std::vector<std::string> argv;
    std::function<void()> seed;
    std::function<std::string()> state;  // what an unguarded client reads
    // destructive: the rules that may refuse it ("db:" alone: any database rule)
    std::vector<std::string> rules;
    // destructive: "" when what is there after the guarded run is enough;
    // default: the state equals the seeded one
    std::function<std::string(const std::string& before, const std::string& after)> kept;
    // destructive: a direct driver's connection answers after the refusal
    bool usable_after = false;
    // destructive: the refusals come so fast (one pipeline) that the session
    // escalates (sessions.escalate_after) before the client reads them: the
    // session is frozen after one of `rules`, and its stderr says so.
    bool escalates = false;
    // harmless: a refusal killswitch cannot avoid yet, named by the text of
    // the refused statement; any other failure fails. Printed as GAP.
    std::string known_gap;
};

// A record's text field, "" when it is missing or not text.
std::string field(const json& rec, const char* key) {
    if (!rec.is_object()) return "";
    auto it = rec.find(key);
    return it != rec.end() && it->is_string() ? it->get<std::string>() : "";
}

bool is_refusal(const json& rec) {
    std::string v = field(rec, "verdict");
    return !v.empty() && v != "allowed" && v != "allow" && v.rfind("would", 0) != 0;
}

class ClientsTier : public ::testing::Test {
  protected:
    // Sets the tier up for one server kind: install, server, daemon.
    template <typename Server>
    static void set_up(Server*& server, std::vector<std::string> (*endpoints)(const Server&)) {
        if (::geteuid() != 0) {
            std::printf("db_clients: skipped: needs root (loads BPF programs)\n");
            return;
        }
        const Install& inst = install();
        if (inst.status == 77) {
            skip_ = "install_clients.sh: " + first_line(inst.text, 400);
            std::printf("db_clients: skipped: %s\n", skip_.c_str());
            return;
        }
        if (inst.status != 0 || inst.node_modules.empty()) {
            setup_error_ =
                "install_clients.sh failed (" + std::to_string(inst.status) + "): " + inst.text;
            return;
        }
        server = new Server();
        if (!server->ok()) {
            skip_ = server->why();
            std::printf("db_clients: skipped: %s\n", skip_.c_str());
            return;
        }
        // The daemon's default database settings; the endpoints are the
        // test servers' private port and unix socket.
        daemon_ = new Daemon(Daemon::Options{.extra_args = endpoints(*server)});
    }
    static void tear_down() {
        delete daemon_;
        daemon_ = nullptr;
        skip_.clear();
        setup_error_.clear();
    }
    void SetUp() override {
        KS_REQUIRE_ROOT();
        if (!skip_.empty()) GTEST_SKIP() << skip_;
        ASSERT_TRUE(setup_error_.empty()) << setup_error_;
        ASSERT_TRUE(daemon_ && daemon_->ready()) << (daemon_ ? daemon_->stderr_text() : "");
    }

    static ScriptRun unguarded(const std::vector<std::string>& argv) {
        auto t0 = Clock::now();
        auto r = run_command(argv, std::chrono::seconds(60));
        return read_run(std::move(r), ms_since(t0));
    }
    static constexpr auto kGuardedTimeout = std::chrono::seconds(20);

    // Under `killswitch run`. A session that a rule froze (escalation after
    // refusals) would wait for a person: it is killed at once, as a person
    // would (`killswitch kill --session`), and the run says so.
    static ScriptRun guarded(const std::string& session, const std::vector<std::string>& argv) {
        std::vector<std::string> cmd = {"run", "--session", session, "--"};
        cmd.insert(cmd.end(), argv.begin(), argv.end());
        size_t from = log_size();
        auto t0 = Clock::now();
        auto running =
            std::async(std::launch::async, [&] { return daemon_->cli(cmd, kGuardedTimeout); });
        std::string ended;
        while (running.wait_for(std::chrono::milliseconds(250)) != std::future_status::ready) {
            if (!ended.empty()) continue;
            for (const auto& r : records_since(from, "\"session_action\""))
                if (field(r, "session") == session && field(r, "session_action") != "none") {
                    ended = "session " + field(r, "session_action") + " after rule " +
                            field(r, "rule") +
                            (r.contains("escalation") ? ", escalation " + r["escalation"].dump()
                                                      : std::string());
                    daemon_->cli({"kill", "--session", session});
                    break;
                }
        }
        ScriptRun run = read_run(running.get(), ms_since(t0));
        run.session_ended = ended;
        run.log_from = from;
        return run;
    }
    // The audit log from byte `from` on, only the lines holding `holding`
    // (the log grows with every request: the test reads no more of it than
    // it needs, while a guarded client runs beside it).
    static size_t log_size() {
        std::error_code ec;
        auto n = std::filesystem::file_size(daemon_->audit_log(), ec);
        return ec ? 0 : static_cast<size_t>(n);
    }
    static std::vector<json> records_since(size_t from, const std::string& holding = "") {
        std::vector<json> out;
        std::ifstream in(daemon_->audit_log());
        in.seekg(static_cast<std::streamoff>(from));
        for (std::string line; std::getline(in, line);) {
            if (!holding.empty() && line.find(holding) == std::string::npos) continue;
            auto j = json::parse(line, nullptr, false);
            if (!j.is_discarded()) out.push_back(std::move(j));
        }
        return out;
    }
    static double ms_since(Clock::time_point t0) {
        return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    }
    static std::string session_name(const Case& c) {
        static int n = 0;
        // At most 64 characters (killswitch run's limit), the number kept.
        std::string tail = "-" + c.via + "-" + std::to_string(++n);
        std::string s = (c.client + "-" + c.what).substr(0, 64 - tail.size()) + tail;
        for (char& ch : s)
            if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-') ch = '-';
        return s;
    }
    // The db records of a guarded run's session.
    static std::vector<json> db_records(const ScriptRun& run, const std::string& session) {
        std::vector<json> out;
        for (const auto& r : records_since(run.log_from, "\"" + session + "\""))
            if (field(r, "event") == "db" && field(r, "session") == session) out.push_back(r);
        return out;
    }
    static json first_refusal(const ScriptRun& run, const std::string& session) {
        json found;
        wait_until(
            [&] {
                for (const auto& r : db_records(run, session))
                    if (is_refusal(r)) {
                        found = r;
                        return true;
                    }
                return false;
            },
            std::chrono::seconds(2));
        return found;
    }
    // The libpq uprobe layer stops a client at each statement with a
    // destructive keyword until the daemon has judged it: how often, and the
    // longest wait, in a session.
    static std::string stops_of(const ScriptRun& run, const std::string& session) {
        int n = 0;
        double longest = 0;
        for (const auto& r : db_records(run, session))
            if (field(r, "layer") == "uprobe") {
                ++n;
                if (r.contains("decision_latency_ns") && r["decision_latency_ns"].is_number())
                    longest = std::max(longest, r["decision_latency_ns"].get<double>() / 1e6);
            }
        if (n == 0) return "";
        char buf[120];
        std::snprintf(buf, sizeof(buf), "; libpq uprobe stops: %d, longest %.0f ms", n, longest);
        return buf;
    }
    static int failed_parts() {
        const auto* r = ::testing::UnitTest::GetInstance()->current_test_info()->result();
        int n = 0;
        for (int i = 0; i < r->total_part_count(); ++i) n += r->GetTestPartResult(i).failed();
        return n;
    }
    static std::string describe(const ScriptRun& run) {
        std::string s = "exit " + std::to_string(run.r.status);
        if (!run.session_ended.empty())
            s += " (" + run.session_ended + ")";
        else if (run.r.status == 128 + SIGKILL && run.wall_ms >= 1000.0 * kGuardedTimeout.count())
            s += " (killed: not done within " + std::to_string(kGuardedTimeout.count()) + " s)";
        if (!run.errors.empty()) s += "; client error: " + run.errors.front();
        if (!run.other_err.empty()) s += "; stderr: " + first_line(run.other_err, 200);
        return s;
    }

    // A destructive case: destroys data unguarded, keeps everything guarded,
    // and the client says killswitch refused it and by which rule.
    void destructive(const Case& c) {
        SCOPED_TRACE(c.client + " " + c.what + " over " + c.via);
        auto started = Clock::now();
        int failed = failed_parts();
        c.seed();
        std::string seeded = c.state();
        ScriptRun u = unguarded(c.argv);
        std::string lost = c.state();
        EXPECT_EQ(u.r.status, 0) << "unguarded run failed: " << u.r.out << u.r.err;
        EXPECT_NE(lost, seeded) << "unguarded, the case destroys nothing: it tests nothing";

        c.seed();
        seeded = c.state();
        std::string session = session_name(c);
        ScriptRun g = guarded(session, c.argv);
        std::string after = c.state();
        // Lost: a table, a column, a row or a key is gone. Changed: all
        // there, but a row differs (a client left its bookkeeping half done).
        std::string why_lost =
            c.kept ? c.kept(seeded, after)
                   : (shape(after) == shape(seeded) ? ""
                                                    : "seeded:\n" + seeded + "\nafter:\n" + after);
        bool changed = why_lost.empty() && !c.kept && after != seeded;
        EXPECT_TRUE(why_lost.empty()) << "data lost under killswitch: " << why_lost;
        EXPECT_FALSE(changed) << "every row is there, but changed under killswitch: seeded:\n"
                              << seeded << "\nafter:\n"
                              << after;
        EXPECT_NE(g.r.status, 0) << "the client did not see the refusal: " << g.r.out;
        json rec = first_refusal(g, session);
        std::string rule = rec.is_object() ? field(rec, "rule") : "";
        EXPECT_FALSE(rec.is_null()) << "no refusal recorded for session " << session;
        if (!rec.is_null()) {
            bool expected = std::any_of(c.rules.begin(), c.rules.end(), [&](const std::string& r) {
                return r == "db:" ? rule.rfind("db:", 0) == 0 : r == rule;
            });
            EXPECT_TRUE(expected) << "refused by " << rule << ": " << rec.dump();
        }
        if (c.escalates) {
            EXPECT_NE(g.session_ended.find("session freeze after rule " + rule), std::string::npos)
                << "the session did not escalate: " << describe(g);
            EXPECT_NE(g.other_err.find("killswitch: session " + session + " is frozen"),
                      std::string::npos)
                << "the frozen session was not told: " << describe(g);
            report(c, failed, why_lost, changed, rule, g, started);
            return;
        }
        // The client's own error names killswitch and the rule.
        std::string errors;
        for (const auto& e : g.errors) errors += e + "\n";
        std::string want_rule = !rule.empty() ? rule : c.rules.front();
        EXPECT_EQ(g.r.status, 3) << "the client library did not report an error to its caller ("
                                 << describe(g) << ")";
        EXPECT_NE(errors.find("killswitch"), std::string::npos)
            << "the client's error does not name killswitch: " << describe(g);
        EXPECT_NE(errors.find(want_rule), std::string::npos)
            << "the client's error does not name the rule " << want_rule << ": " << describe(g);
        if (c.usable_after) {
            EXPECT_EQ(g.after, "usable")
                << "the connection after the refusal: " << (g.after.empty() ? "not tried" : g.after)
                << " (" << describe(g) << ")";
        }
        report(c, failed, why_lost, changed, rule, g, started);
    }
    void report(const Case& c, int failed, const std::string& why_lost, bool changed,
                const std::string& rule, const ScriptRun& g, Clock::time_point started) {
        bool ok = failed_parts() == failed;
        std::printf("| destructive | %-10s | %-27s | %-4s | %-4s | %-7s | %-14s | %s%s |\n",
                    c.client.c_str(), c.what.c_str(), c.via.c_str(), ok ? "PASS" : "FAIL",
                    !why_lost.empty() ? "LOST"
                    : changed         ? "changed"
                                      : "kept",
                    rule.empty() ? "-" : rule.c_str(), first_line(describe(g), 240).c_str(),
                    g.after.empty() ? "" : ("; after: " + first_line(g.after, 80)).c_str());
        std::printf("db_clients: %s %s over %s took %.1f s\n", c.client.c_str(), c.what.c_str(),
                    c.via.c_str(), ms_since(started) / 1000);
        std::fflush(stdout);
    }

    // A harmless case: works guarded as unguarded, at most 1.2x slower.
    void harmless(const Case& c) {
        SCOPED_TRACE(c.client + " " + c.what + " over " + c.via);
        auto started = Clock::now();
        int failed = failed_parts();
        std::vector<double> u_ms, g_ms, u_wall, g_wall;
        std::string failure, stops;
        bool gap = false;
        for (int i = 0; i < runs_per_case(); ++i) {
            // Unguarded then guarded, and the other way round next time.
            std::string want, got, session = session_name(c);
            ScriptRun u, g;
            for (int way = 0; way < 2; ++way) {
                c.seed();
                if ((way + i) % 2 == 0) {
                    u = unguarded(c.argv);
                    ASSERT_EQ(u.r.status, 0) << "unguarded run failed: " << u.r.out << u.r.err;
                    want = c.state();
                } else {
                    g = guarded(session, c.argv);
                    got = c.state();
                }
            }
            u_ms.push_back(u.op_ms);
            u_wall.push_back(u.wall_ms);
            stops = stops_of(g, session);
            if (g.r.status != 0) {
                failure = describe(g) + stops;
                json rec = first_refusal(g, session);
                std::string refused = field(rec, "statement");
                if (!rec.is_null())
                    failure += "; refused by " + field(rec, "rule") + ": " +
                               first_line(refused + field(rec, "socket"), 120);
                if (!c.known_gap.empty() && refused.find(c.known_gap) != std::string::npos) {
                    gap = true;
                    break;
                }
                ADD_FAILURE() << "a harmless case failed under killswitch: " << failure;
                break;
            }
            EXPECT_EQ(got, want) << "guarded, it did not do what it does unguarded";
            g_ms.push_back(g.op_ms);
            g_wall.push_back(g.wall_ms);
            // Seconds over already: more runs would only take time.
            if (g.op_ms > 3 * u.op_ms && g.op_ms - u.op_ms > 2000) break;
        }
        double um = median(u_ms), gm = median(g_ms);
        std::string times = "-";
        if (failure.empty()) {
            auto list = [](const std::vector<double>& v) {
                std::string out;
                for (double x : v) out += (out.empty() ? "" : " ") + std::to_string(x);
                return out;
            };
            // The time is measured, not asserted: bench/db_clients.sh holds it
            // to the 1.2x goal (performance goals live in bench/).
            std::printf("db_clients: timing %s %s over %s: guarded %s; unguarded %s\n",
                        c.client.c_str(), c.what.c_str(), c.via.c_str(), list(g_ms).c_str(),
                        list(u_ms).c_str());
            char buf[200];
            std::snprintf(buf, sizeof(buf),
                          "%.1f -> %.1f ms (x%.2f, %zu runs); whole run %.0f -> %.0f ms", um, gm,
                          gm / um, g_ms.size(), median(u_wall), median(g_wall));
            times = buf + stops;
        }
        bool ok = failed_parts() == failed;
        std::printf("| harmless    | %-10s | %-27s | %-4s | %-4s | %-7s | %-14s | %s |\n",
                    c.client.c_str(), c.what.c_str(), c.via.c_str(),
                    gap  ? "GAP"
                    : ok ? "PASS"
                         : "FAIL",
                    failure.empty() ? "ran" : "FAIL", "-",
                    failure.empty() ? times.c_str() : first_line(failure, 300).c_str());
        std::printf("db_clients: %s %s over %s took %.1f s\n", c.client.c_str(), c.what.c_str(),
                    c.via.c_str(), ms_since(started) / 1000);
        std::fflush(stdout);
    }

    // A case of a direct driver over `via`: harmless without rules; with
    // rules destructive, and its connection must stay usable.
    static Case direct(const std::string& client, const std::string& via, const std::string& what,
                       std::vector<std::string> argv, void (*seed)(), std::string (*state)(),
                       std::vector<std::string> rules = {}) {
        bool destroys = !rules.empty();
        return Case{.client = client,
                    .what = what,
                    .via = via,
                    .argv = std::move(argv),
                    .seed = seed,
                    .state = state,
                    .rules = std::move(rules),
                    .usable_after = destroys};
    }

    static void header() {
        std::printf(
            "| kind        | client     | case                        | via  | test | data    | "
            "rule   "
            "        | guarded: time (unguarded -> guarded), or exit and client error |\n");
    }

    static inline Daemon* daemon_ = nullptr;
    static inline std::string skip_, setup_error_;
};

// ---------------------------------------------------------------- PostgreSQL

// An ORM or migration tool: `up` on an empty database is harmless; the seed
// is `up`, then `rows`; each of `down` is destructive.
struct Tool {
    std::string client, script, db;
    std::string up, up_label;
    std::vector<std::string> rows;
    struct Down {
        std::string action, label;
        std::vector<std::string> rules;
    };
    std::vector<Down> down;
};

class DbClientsPostgres : public ClientsTier {
  protected:
    static std::vector<std::string> endpoints(const PgServer& s) {
        return {"--db", "postgres=127.0.0.1:" + s.port(), "--db",
                "postgres=" + s.socket_dir() + "/.s.PGSQL." + s.port()};
    }
    static void SetUpTestSuite() { set_up(pg_, &endpoints); }
    static void TearDownTestSuite() {
        tear_down();
        delete pg_;
        pg_ = nullptr;
    }

    // psql as the test (unguarded), on the unix socket; one -c each.
    static std::string sql(const std::string& db, const std::vector<std::string>& statements) {
        std::vector<std::string> argv = {"psql",
                                         "-X",
                                         "-q",
                                         "-A",
                                         "-t",
                                         "-v",
                                         "ON_ERROR_STOP=1",
                                         "-h",
                                         pg_->socket_dir(),
                                         "-p",
                                         pg_->port(),
                                         "-U",
                                         "postgres",
                                         "-d",
                                         db};
        for (const auto& s : statements) {
            argv.push_back("-c");
            argv.push_back(s);
        }
        auto r = run_command(argv);
        std::string out = r.out;
        while (!out.empty() && out.back() == '\n') out.pop_back();
        return r.status == 0 ? out : "ERROR " + r.err;
    }
    static void must(const std::string& out) {
        if (out.rfind("ERROR", 0) == 0) ADD_FAILURE() << out;
    }
    // db made anew: empty, or a copy of template.
    static void fresh(const std::string& db, const std::string& from = "template0") {
        must(sql("postgres", {"DROP DATABASE IF EXISTS " + db + " WITH (FORCE)",
                              "CREATE DATABASE " + db + " TEMPLATE " + from}));
    }
    // A template made once per test process: an empty database that make()
    // fills (unguarded).
    static void template_db(const std::string& name, const std::function<void()>& make,
                            const std::string& from = "template0") {
        static std::set<std::string> made;
        if (made.count(name)) return;
        fresh(name, from);
        make();
        made.insert(name);
    }
    // Every table of db's public schema: columns, rows and (content) a hash
    // of the rows.
    static std::string state(const std::string& db, bool content = true) {
        std::string per_row =
            content ? "SELECT md5(coalesce(string_agg(x::text, '','' ORDER BY x::text), '''')) "
                      "AS n FROM public.%I x"
                    : "SELECT '''' AS n";
        return sql(db, {"SELECT coalesce(string_agg(t.table_name || '(' || (SELECT "
                        "string_agg(c.column_name, ',' ORDER BY c.column_name) FROM "
                        "information_schema.columns c WHERE c.table_schema = 'public' AND "
                        "c.table_name = t.table_name) || ') rows=' || (xpath('/row/n/text()', "
                        "query_to_xml(format('SELECT count(*) AS n FROM public.%I', "
                        "t.table_name), false, true, '')))[1]::text || ' ' || "
                        "coalesce((xpath('/row/n/text()', query_to_xml(format('" +
                        per_row +
                        "', t.table_name), false, true, '')))[1]::text, ''), E'\\n' ORDER "
                        "BY t.table_name), '(no tables)') FROM information_schema.tables "
                        "t WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE'"});
    }
    static std::vector<std::string> conn(const std::string& db) {
        return {"--host", "127.0.0.1", "--port", pg_->port(), "--user", "postgres", "--db", db};
    }
    static Case harmless_on_fresh(const std::string& client, const std::string& what,
                                  const std::string& db, std::vector<std::string> argv) {
        return Case{.client = client,
                    .what = what,
                    .argv = std::move(argv),
                    .seed = [db] { fresh(db); },
                    .state = [db] { return state(db, false); }};
    }
    static Case destroying(const std::string& client, const std::string& what,
                           const std::string& db, const std::string& tpl,
                           std::vector<std::string> argv, std::vector<std::string> rules) {
        return Case{.client = client,
                    .what = what,
                    .argv = std::move(argv),
                    .seed = [db, tpl] { fresh(db, tpl); },
                    .state = [db] { return state(db); },
                    .rules = std::move(rules)};
    }

    static void django_templates();
    void tool_cases(const Tool& t);

    static inline PgServer* pg_ = nullptr;
};

std::vector<std::string> django(const std::string& action, const std::vector<std::string>& c) {
    return script("django_shop.py", action, c);
}

// The Django project migrated (no rows of its own), and then loaded (the
// fixture's 60 objects): templates, made unguarded.
void DbClientsPostgres::django_templates() {
    template_db("django_migrated", [] {
        ScriptRun r = unguarded(django("migrate", conn("django_migrated")));
        ASSERT_EQ(r.r.status, 0) << r.r.err;
    });
    template_db(
        "django_seed",
        [] {
            ScriptRun r = unguarded(django("loaddata", conn("django_seed")));
            ASSERT_EQ(r.r.status, 0) << r.r.err;
        },
        "django_migrated");
}

TEST_F(DbClientsPostgres, DjangoMigrateAndLoaddataWorkAsUnguarded) {
    header();
    // Django's contenttypes 0002 drops a column of a table that is empty on
    // a fresh project: the relay asks the server, in Django's transaction,
    // and lets it pass as a schema change (databases.check_rows).
    harmless(harmless_on_fresh("django", "migrate", "django", django("migrate", conn("django"))));
    bool asked = false;
    for (const auto& r : daemon_->records())
        if (r.value("event", "") == "db" && r.contains("rows_checked") &&
            r.value("statement", "").find("DROP COLUMN \"name\"") != std::string::npos) {
            asked = true;
            EXPECT_EQ(r.value("verdict", ""), "allow") << r.dump();
            EXPECT_EQ(r.value("class", ""), "schema-change") << r.dump();
            EXPECT_EQ(r["rows_checked"][0].value("rows", ""), "empty") << r.dump();
        }
    EXPECT_TRUE(asked) << "no record of the DROP COLUMN the relay let pass after asking";
    django_templates();
    harmless(Case{.client = "django",
                  .what = "loaddata (60 objects)",
                  .argv = django("loaddata", conn("django")),
                  .seed = [] { fresh("django", "django_migrated"); },
                  .state = [] { return state("django", false); }});
}

TEST_F(DbClientsPostgres, DjangoFlushMigrateZeroAndSqlflushLoseNothing) {
    header();
    django_templates();
    ASSERT_EQ(sql("django_seed", {"SELECT count(*) FROM shop_product"}), "40");
    ASSERT_EQ(sql("django_seed", {"SELECT count(*) FROM shop_order"}), "20");
    destructive(destroying("django", "flush --noinput", "django", "django_seed",
                           django("flush", conn("django")), {"db:truncate"}));
    destructive(destroying("django", "migrate shop zero", "django", "django_seed",
                           django("migrate-zero", conn("django")), {"db:drop", "db:alter-drop"}));
    destructive(destroying("django", "sqlflush | dbshell", "django", "django_seed",
                           django("sqlflush-dbshell", conn("django")), {"db:truncate"}));
}

void DbClientsPostgres::tool_cases(const Tool& t) {
    header();
    auto argv = [&](const std::string& action, const std::string& db) {
        return script(t.script, action, conn(db));
    };
    harmless(harmless_on_fresh(t.client, t.up_label, t.db, argv(t.up, t.db)));
    std::string seed = t.db + "_seed";
    template_db(seed, [&] {
        ScriptRun r = unguarded(argv(t.up, seed));
        ASSERT_EQ(r.r.status, 0) << r.r.err;
        if (!t.rows.empty()) must(sql(seed, t.rows));
    });
    for (const auto& d : t.down)
        destructive(destroying(t.client, d.label, t.db, seed, argv(d.action, t.db), d.rules));
}

TEST_F(DbClientsPostgres, SqlAlchemyCreatesDropAllAndBulkDeleteLoseNothing) {
    tool_cases({.client = "sqlalchemy",
                .script = "sqlalchemy_shop.py",
                .db = "sqla",
                .up = "create",
                .up_label = "create_all + insert",
                .down = {{"drop-all", "metadata.drop_all", {"db:drop"}},
                         {"bulk-delete", "query(Item).delete()", {"db:delete-all"}},
                         // Judged by what the server says they reach
                         // (databases.effect).
                         {"filtered-delete", "filter(id > 0).delete()", {"db:delete-all"}},
                         {"filtered-update", "filter(qty IS NOT NULL).update()",
                          {"db:update-all"}}}});
    // One item by its key: goes on, as unguarded.
    harmless(Case{.client = "sqlalchemy",
                  .what = "filter(id == 7).delete()",
                  .argv = script("sqlalchemy_shop.py", "delete-one", conn("sqla")),
                  .seed = [] { fresh("sqla", "sqla_seed"); },
                  .state = [] { return state("sqla"); }});
}

TEST_F(DbClientsPostgres, AlembicUpgradesDowngradeBaseLosesNothing) {
    tool_cases(
        {.client = "alembic",
         .script = "alembic_shop.py",
         .db = "alembic",
         .up = "upgrade",
         .up_label = "upgrade head",
         .rows = {"INSERT INTO accounts SELECT g, 'a' || g || '@example.org' FROM "
                  "generate_series(1, 30) g",
                  "INSERT INTO notes SELECT g, g, 'note ' || g FROM generate_series(1, 30) g"},
         .down = {{"downgrade", "downgrade base", {"db:drop"}}}});
}

TEST_F(DbClientsPostgres, KnexMigratesRollbackAllLosesNothing) {
    tool_cases({.client = "knex",
                .script = "knex_shop.js",
                .db = "knex",
                .up = "migrate-latest",
                .up_label = "migrate:latest",
                .rows = {"INSERT INTO products (name, qty) SELECT 'p' || g, g FROM "
                         "generate_series(1, 20) g",
                         "INSERT INTO orders (product_id, quantity) SELECT g, g FROM "
                         "generate_series(1, 10) g"},
                .down = {{"migrate-rollback-all", "migrate:rollback --all", {"db:drop"}}}});
}

TEST_F(DbClientsPostgres, SequelizeSyncsSyncForceLosesNothing) {
    tool_cases({.client = "sequelize",
                .script = "sequelize_shop.js",
                .db = "sequelize",
                .up = "sync",
                .up_label = "sync()",
                .rows = {"INSERT INTO \"Products\" (name, qty, \"createdAt\", \"updatedAt\") "
                         "SELECT 'p' || g, g, '2024-01-01', '2024-01-01' FROM "
                         "generate_series(1, 20) g",
                         "INSERT INTO \"Orders\" (quantity, \"ProductId\", \"createdAt\", "
                         "\"updatedAt\") SELECT g, g, '2024-01-01', '2024-01-01' FROM "
                         "generate_series(1, 10) g"},
                .down = {{"sync-force", "sync({force: true})", {"db:drop"}}}});
}

TEST_F(DbClientsPostgres, NodePgQueriesDropTableLosesNothingAndTheClientGoesOn) {
    header();
    template_db("nodepg_seed", [] {
        must(sql("nodepg_seed", {"CREATE TABLE t (id int primary key, note text)",
                                 "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, "
                                 "100) g"}));
    });
    auto np = [](const std::string& action) {
        return script("nodepg_shop.js", action, conn("nodepg"));
    };
    harmless(destroying("node-pg", "SELECT + INSERT + UPDATE x100", "nodepg", "nodepg_seed",
                        np("harmless"), {}));
    // The extended protocol: the WHERE's value comes in the Bind.
    Case where = destroying("node-pg", "DELETE ... WHERE id > $1 [0]", "nodepg", "nodepg_seed",
                            np("delete-where"), {"db:delete-all"});
    where.usable_after = true;
    destructive(where);
    for (const auto& [action, what] :
         {std::pair<std::string, std::string>{"drop-with-listener", "DROP TABLE (error listener)"},
          {"drop-no-listener", "DROP TABLE (no listener)"}}) {
        Case c = destroying("node-pg", what, "nodepg", "nodepg_seed", np(action), {"db:drop"});
        c.usable_after = true;
        destructive(c);
    }
}

// A prepared statement bound again later, values in binary format, Binds in
// one batch (pipelines, executemany): every Bind of a statement that can
// DELETE or UPDATE is judged with its own values.
TEST_F(DbClientsPostgres, AsyncpgAndPsycopgPreparedBinaryAndPipelinedLoseNothing) {
    header();
    template_db("binds_seed", [] {
        must(sql("binds_seed", {"CREATE TABLE t (id int primary key, note text)",
                                "INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, "
                                "100) g"}));
    });
    auto apg = [](const std::string& action) {
        return script("asyncpg_shop.py", action, conn("binds"));
    };
    auto pg3 = [](const std::string& action) {
        return script("psycopg_shop.py", action, conn("binds"));
    };
    harmless(destroying("asyncpg", "SELECT + INSERT + UPDATE + DELETE by key x100", "binds",
                        "binds_seed", apg("harmless"), {}));
    harmless(destroying("psycopg", "SELECT + INSERT + UPDATE x100, then pipelined x100", "binds",
                        "binds_seed", pg3("harmless"), {}));
    for (const auto& [client, argv, what, rules] :
         std::vector<std::tuple<std::string, std::vector<std::string>, std::string,
                                std::vector<std::string>>>{
             {"asyncpg",
              apg("delete-where"),
              "execute(DELETE ... WHERE id > $1, 0), binary",
              {"db:delete-all"}},
             {"asyncpg", apg("rebind"), "prepared once, bound with 1000 then 0", {"db:delete-all"}},
             // Not asked in the middle of a batch: what it reaches is unknown.
             {"asyncpg",
              apg("executemany"),
              "executemany(DELETE ... id >= $1, [1000, 0])",
              {"db:unparseable"}},
             {"psycopg", pg3("delete-where"), "DELETE ... WHERE id > %s [0]", {"db:delete-all"}},
             {"psycopg", pg3("binary"), "DELETE ... WHERE id > %b [0], binary", {"db:delete-all"}},
             {"psycopg", pg3("prepared"), "prepare=True, 1000 then 0", {"db:delete-all"}},
             {"psycopg",
              pg3("pipeline"),
              "pipeline: INSERT, DELETE ... WHERE id > %s [0]",
              {"db:unparseable"}}}) {
        Case c = destroying(client, what, "binds", "binds_seed", argv, rules);
        c.usable_after = true;
        destructive(c);
    }
}

// ---------------------------------------------------------------- MariaDB

class DbClientsMysql : public ClientsTier {
  protected:
    static std::vector<std::string> endpoints(const MariaDbServer& s) {
        return {"--db", "mysql=127.0.0.1:" + s.port(), "--db", "mysql=" + s.socket()};
    }
    static void SetUpTestSuite() { set_up(my_, &endpoints); }
    static void TearDownTestSuite() {
        tear_down();
        delete my_;
        my_ = nullptr;
    }
    static void seed() {
        std::string out = my_->query(
            "DROP DATABASE IF EXISTS shop; CREATE DATABASE shop; USE shop; "
            "CREATE TABLE t (id int primary key, note text); "
            "INSERT INTO t SELECT seq, concat('row ', seq) FROM seq_1_to_100");
        if (out.rfind("ERROR", 0) == 0) ADD_FAILURE() << out;
    }
    static std::string state() {
        std::string s = my_->query(
            "SELECT concat('databases=', (SELECT count(*) FROM information_schema.schemata "
            "WHERE schema_name = 'shop'), ' tables=', (SELECT coalesce(group_concat(table_name "
            "ORDER BY table_name), '') FROM information_schema.tables WHERE table_schema = "
            "'shop'))");
        if (s.find("tables=t") != std::string::npos)
            s += " " + my_->query(
                           "SELECT concat('rows=', count(*), ' ', md5(group_concat(id, ':', note "
                           "ORDER BY id SEPARATOR ','))) FROM shop.t");
        return s;
    }
    // Each case over TCP, then over the server's unix socket.
    void cases(const std::string& client, const std::string& name) {
        header();
        for (const auto& [via, where] : {std::pair<std::string, std::vector<std::string>>{
                                             "tcp", {"--host", "127.0.0.1", "--port", my_->port()}},
                                         {"unix", {"--socket", my_->socket()}}}) {
            std::vector<std::string> c = where;
            c.insert(c.end(), {"--user", "root", "--db", "shop"});
            harmless(direct(client, via, "SELECT + INSERT + UPDATE x100",
                            script(name, "harmless", c), &seed, &state));
            destructive(direct(client, via, "DROP DATABASE", script(name, "drop-database", c),
                               &seed, &state, {"db:drop"}));
            destructive(direct(client, via, "DELETE FROM t", script(name, "delete-all", c), &seed,
                               &state, {"db:delete-all"}));
            destructive(direct(client, via, "DELETE ... WHERE id > 0",
                               script(name, "delete-where", c), &seed, &state, {"db:delete-all"}));
            if (client == "mysql2") {  // a server-side prepared statement
                destructive(direct(client, via, "execute(DELETE ... id > ?, [0])",
                                   script(name, "execute-where", c), &seed, &state,
                                   {"db:delete-all"}));
                // A value with a backslash, whose reading as a quoted
                // literal would depend on the server's sql_mode.
                destructive(direct(client, via, "execute(DELETE ... note <> ?, ['a\\b'])",
                                   script(name, "execute-backslash", c), &seed, &state,
                                   {"db:delete-all"}));
            }
        }
    }
    static inline MariaDbServer* my_ = nullptr;
};

TEST_F(DbClientsMysql, Mysql2OverTcpAndUnixSocket) { cases("mysql2", "mysql2_shop.js"); }

TEST_F(DbClientsMysql, PyMysqlOverTcpAndUnixSocket) { cases("pymysql", "pymysql_shop.py"); }

// ---------------------------------------------------------------- Redis

class DbClientsRedis : public ClientsTier {
  protected:
    static constexpr int kKeys = 2000;
    static std::vector<std::string> endpoints(const RedisServer& s) {
        return {"--db", "redis=127.0.0.1:" + s.port(), "--db", "redis=" + s.socket()};
    }
    static void SetUpTestSuite() { set_up(redis_, &endpoints); }
    static void TearDownTestSuite() {
        tear_down();
        delete redis_;
        redis_ = nullptr;
    }
    static void seed() {
        std::string a = redis_->command({"FLUSHALL"});
        std::string b =
            redis_->command({"EVAL",
                             "for i = 1, " + std::to_string(kKeys) +
                                 " do redis.call('SET', 'key:' .. i, 'v' .. i) end return 1",
                             "0"});
        if (a != "OK" || b != "1") ADD_FAILURE() << "redis seed: " << a << " " << b;
    }
    static std::string state() {
        return "keys=" + redis_->command({"DBSIZE"}) +
               " key:*=" + redis_->command({"EVAL", "return #redis.call('KEYS', 'key:*')", "0"});
    }
    static int seeded_left(const std::string& state) {
        auto at = state.find("key:*=");
        return at == std::string::npos ? -1 : std::atoi(state.c_str() + at + 6);
    }
    // Each case over TCP, then over the server's unix socket.
    void cases(const std::string& client, const std::string& name) {
        header();
        // A volume budget: the deletions beyond the first 1,000 are refused.
        auto budget = [](const std::string&, const std::string& after) -> std::string {
            int left = seeded_left(after);
            return left >= kKeys - 1000
                       ? ""
                       : std::to_string(left) + " of " + std::to_string(kKeys) +
                             " keys left, fewer than the " + std::to_string(kKeys - 1000) +
                             " beyond the first 1000 deletions (" + after + ")";
        };
        for (const auto& [via, c] : {std::pair<std::string, std::vector<std::string>>{
                                         "tcp", {"--host", "127.0.0.1", "--port", redis_->port()}},
                                     {"unix", {"--socket", redis_->socket()}}}) {
            harmless(
                direct(client, via, "SET + GET x100", script(name, "harmless", c), &seed, &state));
            destructive(direct(client, via, "FLUSHALL", script(name, "flushall", c), &seed, &state,
                               {"db:flush"}));
            Case pipeline = direct(client, via, "DEL x2000 in a pipeline",
                                   script(name, "del-pipeline", c), &seed, &state, {"db:volume"});
            Case batches = direct(client, via, "DEL 100 keys x20", script(name, "del-batches", c),
                                  &seed, &state, {"db:"});
            pipeline.kept = batches.kept = budget;
            pipeline.escalates = true;
            destructive(pipeline);
            destructive(batches);
        }
    }
    static inline RedisServer* redis_ = nullptr;
};

TEST_F(DbClientsRedis, RedisPyOverTcpAndUnixSocket) { cases("redis-py", "redispy_keys.py"); }

TEST_F(DbClientsRedis, IoRedisOverTcpAndUnixSocket) { cases("ioredis", "ioredis_keys.js"); }

// ------------------------------------------------------------------ MongoDB

// There is no MongoDB server in Debian: pymongo, the real driver, talks to a
// stand-in (tests/helpers/mongo_standin.py) that answers like a server and
// writes down every command it receives. What a destructive case destroys
// is its command reaching the server.
class MongoStandIn {
  public:
    MongoStandIn() {
        log_ = dir_.path() + "/commands.log";
        int out[2];
        if (::pipe2(out, O_CLOEXEC) != 0) {
            why_ = "pipe failed";
            return;
        }
        std::string helper = std::string(KS_SOURCE_HELPERS_DIR) + "/mongo_standin.py";
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(out[1], 1);
            ::execl("/usr/bin/python3", "python3", helper.c_str(), log_.c_str(), nullptr);
            ::_exit(127);
        }
        ::close(out[1]);
        std::string line;
        char c;
        while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
        ::close(out[0]);
        if (line.rfind("port ", 0) == 0)
            port_ = line.substr(5);
        else
            why_ = "the MongoDB stand-in did not start (python3-pymongo's bson module missing?)";
    }
    ~MongoStandIn() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    [[nodiscard]] bool ok() const { return !port_.empty(); }
    [[nodiscard]] std::string why() const { return why_; }
    [[nodiscard]] const std::string& port() const { return port_; }
    // How many times each command reached it.
    [[nodiscard]] std::map<std::string, int> received() const {
        std::map<std::string, int> n;
        std::ifstream in(log_);
        for (std::string l; std::getline(in, l);) ++n[l];
        return n;
    }

  private:
    TempDir dir_;
    std::string log_, port_, why_;
    pid_t pid_ = -1;
};

class DbClientsMongo : public ClientsTier {
  protected:
    static std::vector<std::string> endpoints(const MongoStandIn& s) {
        return {"--db", "mongodb=127.0.0.1:" + s.port()};
    }
    static void SetUpTestSuite() { set_up(mongo_, &endpoints); }
    static void TearDownTestSuite() {
        tear_down();
        delete mongo_;
        mongo_ = nullptr;
    }
    static void seed() {}
    // What reached the server of what destroys.
    static std::string state() {
        auto n = mongo_->received();
        return "dropDatabase x" + std::to_string(n["dropDatabase"]) + ", drop x" +
               std::to_string(n["drop"]);
    }
    static inline MongoStandIn* mongo_ = nullptr;
};

TEST_F(DbClientsMongo, PyMongoAgainstAStandInServer) {
    header();
    std::vector<std::string> c = {"--host", "127.0.0.1", "--port", mongo_->port()};
    harmless(direct("pymongo", "tcp", "ping + count x100", script("pymongo_shop.py", "harmless", c),
                    &seed, &state));
    destructive(direct("pymongo", "tcp", "dropDatabase",
                       script("pymongo_shop.py", "drop-database", c), &seed, &state, {"db:drop"}));
    destructive(direct("pymongo", "tcp", "drop orders", script("pymongo_shop.py", "drop-orders", c),
                       &seed, &state, {"db:drop"}));
}

}  // namespace
}  // namespace ks::test
