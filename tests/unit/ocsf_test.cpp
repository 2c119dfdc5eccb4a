// OCSF 1.8.0 events of audit records: each kind of record gives the class
// the issue names, every event has what its class requires
// (tests/ocsf_schema_1_8.h, written from the schema), and the decision is
// in disposition_id.
#include <gtest/gtest.h>

#include "../ocsf_schema_1_8.h"
#include "outputs/ocsf.h"

namespace ks::outputs {
namespace {

using nlohmann::json;

json common(const char* event, int seq) {
    return {{"ts", "2026-12-01T10:00:00.123456789Z"},
            {"seq", seq},
            {"host", "0123456789abcdef0123456789abcdef"},
            {"run", "fedcba9876543210fedcba9876543210"},
            {"event", event},
            {"pid", 4242},
            {"ppid", 4000},
            {"comm", "rm"},
            {"exe", "/usr/bin/rm"},
            {"uid", 0},
            {"session", "fix-migrations"}};
}

json with(json r, const json& more) {
    r.update(more);
    return r;
}

// One of every kind of record the daemon writes that has an OCSF event.
std::vector<json> records() {
    return {
        with(common("exec", 1), {{"filename", "/usr/bin/rm"}, {"argv", {"rm", "-rf", "/srv/db"}},
                                  {"cwd", "/root"}, {"seed", "inherited"}}),
        common("fork", 2),
        with(common("exit", 3), {{"exit_code", 1}}),
        with(common("exit", 4), {{"signal", 9}}),
        with(common("file", 5), {{"op", "unlink"}, {"path", "/srv/db/PG_VERSION"}, {"rule", "protect:/srv/db"},
                                  {"layer", "uprobe"}, {"action", "block"}, {"verdict", "block"},
                                  {"prevented", true}}),
        with(common("file", 6), {{"op", "rename-from"}, {"path", "/srv/db"}, {"rule", "protect:/srv/db"},
                                  {"layer", "tracepoint"}, {"action", "kill"}, {"verdict", "kill"},
                                  {"prevented", false}, {"session_action", "freeze"}}),
        with(common("file", 7), {{"op", "open-truncate"}, {"path", "/srv/db/base/1"},
                                  {"rule", "protect:/srv/db"}, {"verdict", "hold"}, {"hold_id", 3},
                                  {"prevented", true}}),
        with(common("file", 8), {{"op", "exec"}, {"argv", {"rm", "-rf", "/srv/db"}},
                                  {"program", "/usr/bin/rm"}, {"judged_as", "rm"},
                                  {"rule", "exec:rm-recursive (protect:/srv/db)"},
                                  {"reason", "rm -r of a protected tree"}, {"verdict", "would-block"},
                                  {"prevented", false}}),
        with(common("file", 9), {{"op", "chmod"}, {"path", "/srv/db"}, {"verdict", "allowed"},
                                  {"prevented", false}, {"window", {{"id", 1}}}}),
        with(common("file", 10), {{"op", "device-write"}, {"path", "/dev/sda"}, {"verdict", "block"},
                                   {"match", "block-device"}, {"prevented", true}}),
        with(common("db", 11), {{"db", "postgres"}, {"address", "127.0.0.1:5432"}, {"connection", 77},
                                 {"op", "request"}, {"statement", "DROP TABLE orders"}, {"class", "drop"},
                                 {"rule", "db:drop"}, {"layer", "relay"}, {"verdict", "refused"}}),
        with(common("db", 12), {{"db", "redis"}, {"address", "*:6379"}, {"op", "request"},
                                 {"statement", "GET k"}, {"class", "harmless"}, {"verdict", "allowed"}}),
        with(common("db", 13), {{"db", "mongodb"}, {"address", "[::1]:27017"}, {"op", "request"},
                                 {"request_bytes", 120}, {"verdict", "would-refuse"}}),
        with(common("tamper", 14), {{"what", "signal"}, {"target", 1}, {"signal", 9},
                                     {"rule", "self:signal"}, {"reason", "a signal to the daemon"},
                                     {"action", "kill"}, {"verdict", "block"}, {"prevented", true}}),
        with(common("reach", 15), {{"what", "ptrace"}, {"target", 999}, {"rule", "process:ptrace"},
                                    {"verdict", "block"}, {"prevented", true}}),
    };
}

TEST(Ocsf, EveryEventOfEveryKindOfRecordHasWhatItsClassRequiresIn180) {
    ks::test::ocsf::Checker checker;
    size_t events = 0;
    for (const auto& r : records()) {
        auto evs = to_ocsf(r, "db1");
        ASSERT_FALSE(evs.empty()) << r.dump();
        for (const auto& ev : evs) {
            ++events;
            auto errs = checker.check(ev);
            std::string all;
            for (const auto& e : errs) all += e + "\n";
            EXPECT_TRUE(errs.empty()) << all << ev.dump(2);
            EXPECT_EQ(ev["unmapped"]["killswitch"], r);
            EXPECT_EQ(ev["time"], 1796119200123);
        }
    }
    EXPECT_EQ(events, 22u);
    // The checker itself refuses what 1.8.0 refuses.
    json bad = to_ocsf(records()[4], "db1")[0];
    bad["file"].erase("type_id");
    bad["metadata"].erase("profiles");
    auto errs = checker.check(bad);
    ASSERT_EQ(errs.size(), 5u);  // file.type_id, and disposition/action without their profile
    EXPECT_EQ(errs[4], "file: missing required type_id");
}

TEST(Ocsf, EachKindOfRecordGivesTheClassAndActivityItIs) {
    auto rs = records();
    auto exec = to_ocsf(rs[0], "db1");
    ASSERT_EQ(exec.size(), 1u);
    EXPECT_EQ(exec[0]["class_uid"], 1007);
    EXPECT_EQ(exec[0]["activity_id"], 1);  // Launch
    EXPECT_EQ(exec[0]["process"]["cmd_line"], "rm -rf /srv/db");
    EXPECT_EQ(exec[0]["actor"]["process"]["pid"], 4000);  // the parent launched it
    EXPECT_EQ(exec[0]["actor"]["session"]["uid"], "fix-migrations");
    // OCSF 1.8.0 has no ai_agent: the agent is in unmapped, in its later shape.
    EXPECT_EQ(exec[0]["unmapped"]["ai_agent"]["name"], "fix-migrations");
    EXPECT_FALSE(exec[0].contains("ai_agent"));
    EXPECT_EQ(exec[0]["device"]["uid"], "0123456789abcdef0123456789abcdef");
    EXPECT_EQ(exec[0]["device"]["hostname"], "db1");
    EXPECT_EQ(exec[0]["metadata"]["uid"], "0123456789abcdef0123456789abcdef:fedcba9876543210fedcba9876543210:1");

    auto exit = to_ocsf(rs[2], "db1");
    EXPECT_EQ(exit[0]["activity_id"], 2);  // Terminate
    EXPECT_EQ(exit[0]["exit_code"], 1);

    // A refused unlink: File System Activity, Delete, that failed, and a
    // Detection Finding that says it was blocked.
    auto unlink = to_ocsf(rs[4], "db1");
    ASSERT_EQ(unlink.size(), 2u);
    EXPECT_EQ(unlink[0]["class_uid"], 1001);
    EXPECT_EQ(unlink[0]["activity_id"], 4);
    EXPECT_EQ(unlink[0]["status_id"], 2);
    EXPECT_EQ(unlink[0]["file"]["path"], "/srv/db/PG_VERSION");
    EXPECT_EQ(unlink[0]["file"]["name"], "PG_VERSION");
    EXPECT_EQ(unlink[0]["disposition_id"], 2);  // Blocked
    EXPECT_EQ(unlink[1]["class_uid"], 2004);
    EXPECT_EQ(unlink[1]["disposition_id"], 2);
    EXPECT_EQ(unlink[1]["action_id"], 2);  // Denied
    EXPECT_EQ(unlink[1]["finding_info"]["analytic"]["name"], "protect:/srv/db");
    EXPECT_EQ(unlink[1]["evidences"][0]["file"]["path"], "/srv/db/PG_VERSION");
    EXPECT_EQ(unlink[1]["metadata"]["correlation_uid"], unlink[0]["metadata"]["uid"]);
    EXPECT_NE(unlink[1]["metadata"]["uid"], unlink[0]["metadata"]["uid"]);

    // Killed as the call returned (tracepoint): the call ran.
    auto rename = to_ocsf(rs[5], "db1");
    EXPECT_EQ(rename[0]["activity_id"], 5);
    EXPECT_EQ(rename[0]["status_id"], 1);
    EXPECT_EQ(rename[1]["disposition_id"], 7);
    EXPECT_EQ(to_ocsf(rs[6], "db1")[1]["disposition_id"], 14);  // a hold: Delayed
    auto would = to_ocsf(rs[7], "db1");
    EXPECT_EQ(would[0]["activity_name"], "Delete");  // rm, stopped at exec
    EXPECT_EQ(would[1]["disposition_id"], 17);  // monitor mode: Logged
    EXPECT_EQ(would[1]["action_id"], 3);        // Observed
    EXPECT_EQ(would[1]["severity_id"], 3);
    auto window = to_ocsf(rs[8], "db1");
    ASSERT_EQ(window.size(), 1u);  // let through by a window: no finding
    EXPECT_EQ(window[0]["activity_id"], 7);
    EXPECT_EQ(window[0]["disposition_id"], 1);
    EXPECT_EQ(to_ocsf(rs[9], "db1")[0]["file"]["type_id"], 4);  // a block device

    auto drop = to_ocsf(rs[10], "db1");
    ASSERT_EQ(drop.size(), 2u);
    EXPECT_EQ(drop[0]["class_uid"], 6005);
    EXPECT_EQ(drop[0]["activity_id"], 4);  // Query
    EXPECT_EQ(drop[0]["query_info"]["query_string"], "DROP TABLE orders");
    EXPECT_EQ(drop[0]["database"]["type"], "postgres");
    EXPECT_EQ(drop[0]["dst_endpoint"]["port"], 5432);
    EXPECT_EQ(drop[0]["dst_endpoint"]["ip"], "127.0.0.1");
    EXPECT_EQ(drop[0]["status_id"], 2);
    EXPECT_EQ(drop[1]["evidences"][0]["database"]["uid"], "127.0.0.1:5432");
    EXPECT_EQ(to_ocsf(rs[11], "db1").size(), 1u);  // harmless: the activity alone
    EXPECT_EQ(to_ocsf(rs[12], "db1")[0]["dst_endpoint"]["ip"], "::1");

    auto tamper = to_ocsf(rs[13], "db1");
    ASSERT_EQ(tamper.size(), 1u);
    EXPECT_EQ(tamper[0]["class_uid"], 2004);
    EXPECT_EQ(tamper[0]["severity_id"], 5);
    EXPECT_EQ(tamper[0]["finding_info"]["title"], "a signal to the daemon");

    for (const char* e : {"daemon_start", "daemon_stop", "session_start", "policy_reload", "allow_start"})
        EXPECT_TRUE(to_ocsf(common(e, 1), "db1").empty()) << e;
}

}  // namespace
}  // namespace ks::outputs
