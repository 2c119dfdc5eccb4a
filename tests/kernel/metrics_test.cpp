// Prometheus metrics from a running daemon: served over HTTP on loopback and
// written as a node-exporter textfile; checked with promtool (Debian's
// prometheus package), and their values follow what happens: a refused
// operation is counted, a session shows up, the policy's digest is there.
#include <fstream>
#include <regex>

#include "common/sysfs.h"
#include "decision/decision.h"
#include "harness.h"

namespace ks::test {
namespace {

using nlohmann::json;

// GET http://ADDRESS/metrics with curl-free means: python3's urllib.
CommandResult scrape(const std::string& address) {
    return run_command({"/usr/bin/python3", "-c",
                        "import sys,urllib.request;"
                        "r=urllib.request.urlopen('http://" + address + "/metrics',timeout=5);"
                        "sys.stdout.write(r.headers['Content-Type']+'\\n'+r.read().decode())"});
}

// The value of the sample NAME{LABELS} (labels as written), -1 when absent.
double sample(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return -1;
}

TEST(Metrics, ServedAndWrittenValidForPromtoolAndTheyFollowWhatHappens) {
    KS_REQUIRE_ROOT();
    if (::access("/usr/bin/promtool", X_OK) != 0)
        GTEST_SKIP() << "promtool is missing (scripts/deps.sh --test installs prometheus)";
    TempDir dir;
    ::mkdir((dir / "data").c_str(), 0755);
    std::ofstream(dir / "data/rows") << "1\n";
    std::string policy = dir / "policy.yaml";
    std::ofstream(policy) << "protect:\n  paths: [" << (dir / "data")
                          << "]\n  session: none\noutputs: [\"metrics-file=" << (dir / "ks.prom")
                          << "\"]\n";
    Daemon d(Daemon::Options{.policy_file = policy,
                             .extra_args = {"--output", "metrics=127.0.0.1:0"}});
    ASSERT_TRUE(d.ready()) << d.stderr_text();
    json st = json::parse(d.cli({"status", "--json"}).out, nullptr, false);
    std::string address;
    for (const auto& o : st["outputs"])
        if (o.value("name", "") == "metrics") address = o.value("target", "");
    ASSERT_FALSE(address.empty()) << st.dump();
    std::string sha = st.value("policy_sha256", "");

    // A refused operation, then a scrape a tick later.
    auto rm = d.cli({"run", "--session", "m1", "--", "rm", "-f", dir / "data/rows"});
    ASSERT_EQ(rm.status, kRefusedExitStatus) << rm.err;
    std::string text;
    ASSERT_TRUE(wait_until(
        [&] {
            auto r = scrape(address);
            if (r.status != 0) return false;
            text = r.out;
            return sample(text, "killswitch_decisions_total{decision=\"blocked\"}") >= 1;
        },
        std::chrono::seconds(10)))
        << text;
    EXPECT_EQ(text.rfind("text/plain; version=0.0.4", 0), 0u) << text.substr(0, 80);
    std::string body = text.substr(text.find('\n') + 1);
    EXPECT_EQ(sample(body, "killswitch_policy_info{sha256=\"" + sha + "\",mode=\"enforce\"}"), 1);
    EXPECT_EQ(sample(body, "killswitch_layer_up{layer=\"process_guard\"}"), 1);
    EXPECT_GE(sample(body, "killswitch_events_total{type=\"exec\"}"), 1);
    EXPECT_GE(sample(body, "killswitch_audit_records_total"), 1);
    EXPECT_EQ(sample(body, "killswitch_holds_pending"), 0);

    // promtool reads it as Prometheus does, and finds nothing wrong.
    std::string saved = dir / "scrape.txt";
    std::ofstream(saved) << body;
    auto check = run_command({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + saved});
    EXPECT_EQ(check.status, 0) << check.out << check.err;
    EXPECT_EQ(check.out + check.err, "");

    // The textfile: the same families, complete, and valid too.
    ASSERT_TRUE(wait_until([&] { return read_file(dir / "ks.prom").ok(); }));
    std::string file = read_file(dir / "ks.prom").value();
    EXPECT_NE(file.find("# TYPE killswitch_decisions_total counter"), std::string::npos);
    EXPECT_GE(sample(file, "killswitch_decisions_total{decision=\"blocked\"}"), 1);
    auto check_file =
        run_command({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + (dir / "ks.prom")});
    EXPECT_EQ(check_file.status, 0) << check_file.out << check_file.err;
}

TEST(Metrics, AnUnknownOutputIsRefusedAtStartWithTheKindsThereAre) {
    KS_REQUIRE_ROOT();
    TempDir dir;
    auto r = run_command({binary(), "--runtime-dir", dir / "run", "daemon", "--pin-dir", "",
                          "--audit-log", dir / "audit.jsonl", "--output", "carrier-pigeon=x"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("unknown kind 'carrier-pigeon'; there are metrics, metrics-file, syslog, "
                         "webhook, ocsf and journald"),
              std::string::npos)
        << r.err;
}

}  // namespace
}  // namespace ks::test
