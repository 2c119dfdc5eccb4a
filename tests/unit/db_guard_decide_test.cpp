// Database decisions without a database: libpq statements held by the
// uprobes, and the socket path's records (refused, would-refuse, windows),
// under the default policy and under other databases.refuse settings.
#include "db_guard/db_guard_decide.h"

#include <gtest/gtest.h>

#include <functional>

#include "db_guard/db_relay_decide.h"
#include "db_guard/db_wire_decide.h"
#include "policy/compile.h"

namespace ks {
namespace {

policy::CompiledPolicy compiled(const std::function<void(policy::Policy&)>& tweak = {}) {
    policy::Policy p = policy::default_policy();
    p.db_endpoints = {"postgres=127.0.0.1:5432"};
    if (tweak) tweak(p);
    auto c = policy::compile(p, "", {"", "/sys/fs/cgroup", ""}, nullptr);
    EXPECT_TRUE(c);
    return *c;
}

// databases.refuse: these classes
policy::CompiledPolicy refusing(uint32_t classes) {
    return compiled([classes](policy::Policy& q) { q.db_refuse_classes = classes; });
}

DbCheckEvent held(const std::string& sql, uint32_t flags = 0) {
    DbCheckEvent ev;
    ev.hdr.pid = 99;
    ev.kind = KS_DB_POSTGRES;
    ev.query = sql;
    ev.monitor = flags & KS_DBF_MONITOR;
    ev.windowed = flags & KS_DBF_WINDOW;
    return ev;
}

Decision libpq(const DbCheckEvent& ev, const policy::CompiledPolicy& p) {
    return decide_libpq(ev, classify_libpq(ev, classify_options(p)), p);
}

TEST(DbGuardDecide, AHarmlessStatementHeldForAKeywordGoesOn) {
    auto p = compiled();
    Decision d = libpq(held("SELECT 'DROP TABLE users' AS note"), p);
    EXPECT_EQ(d.verdict, Verdict::Allow);
    EXPECT_EQ(d.task, TaskStep::Release);
    EXPECT_FALSE(d.action);
    EXPECT_EQ(d.rule, "db:harmless");
    Decision mon = libpq(held("SELECT 1", KS_DBF_MONITOR), p);
    EXPECT_EQ(mon.task, TaskStep::None) << "a monitored task was never stopped";
}

TEST(DbGuardDecide, DropTableIsRefusedBeforeItIsSent) {
    auto p = compiled();
    Decision d = libpq(held("DROP TABLE users"), p);
    EXPECT_EQ(d.verdict, Verdict::Block);
    EXPECT_EQ(d.task, TaskStep::Refuse) << "the client exits with the refusal status";
    EXPECT_TRUE(d.prevented);
    EXPECT_EQ(d.rule, "db:drop");
    EXPECT_EQ(d.follow_up, SessionAction::None) << "databases.session defaults to none";
    auto facts =
        libpq_facts(held("DROP TABLE users"), classify_libpq(held("DROP TABLE users"), {}));
    EXPECT_EQ(facts["class"], "drop");
    EXPECT_EQ(facts["layer"], "uprobe");
}

TEST(DbGuardDecide, HoldIsTheRelaysTheLibpqLayerRefusesInstead) {
    auto p = compiled([](policy::Policy& q) { q.db_action = Action::Hold; });
    Decision d = libpq(held("DROP TABLE users"), p);
    EXPECT_EQ(d.verdict, Verdict::Block);
    EXPECT_EQ(d.task, TaskStep::Refuse) << "never left stopped with no hold to end it";
    EXPECT_FALSE(d.hold);
    EXPECT_NE(d.note.find("relay"), std::string::npos);

    RelayedRequest r{KS_DB_POSTGRES, "127.0.0.1:5432", 1, false, 'Q', "SELECT 1; DROP TABLE users"};
    auto c = classify_relayed(r, {});
    RelayRuling ruling = rule_relayed(c, "", p);
    ASSERT_TRUE(ruling.refuse);
    Decision held_req = decide_relayed(r, c.statements[1], 1, ruling, false, p.policy);
    EXPECT_EQ(held_req.verdict, Verdict::Hold);
    ASSERT_TRUE(held_req.hold);
    EXPECT_EQ(held_req.hold->layer, "relay");
    EXPECT_EQ(held_req.hold->path, "DROP TABLE users");
    EXPECT_EQ(held_req.task, TaskStep::None) << "the client is not stopped: its request waits";
    EXPECT_FALSE(held_req.told_by.empty()) << "never the process's stderr";
    Decision other = decide_relayed(r, c.statements[0], 0, ruling, false, p.policy);
    EXPECT_FALSE(other.hold) << "one hold for the request";
}

TEST(DbGuardDecide, AStatementCutAtTheReadLimitIsNeverHarmless) {
    auto p = compiled();
    DbCheckEvent ev = held("SELECT 1");
    ev.truncated = true;
    Decision d = libpq(ev, p);
    EXPECT_EQ(d.rule, "db:unparseable");
    EXPECT_TRUE(d.prevented);
}

TEST(DbGuardDecide, MonitorWindowAndAuditLetItThrough) {
    auto p = compiled();
    Decision mon = libpq(held("TRUNCATE t", KS_DBF_MONITOR), p);
    EXPECT_EQ(verdict_name(mon.verdict), "would-block");
    EXPECT_FALSE(mon.prevented);
    Decision win = libpq(held("TRUNCATE t", KS_DBF_WINDOW), p);
    EXPECT_EQ(win.verdict, Verdict::Allowed);
    EXPECT_TRUE(win.window);
    auto audit = compiled([](policy::Policy& q) { q.db_action = Action::Audit; });
    Decision a = libpq(held("TRUNCATE t"), audit);
    EXPECT_EQ(a.verdict, Verdict::Audit);
    EXPECT_EQ(a.task, TaskStep::Release);
    EXPECT_FALSE(a.prevented);
}

TEST(DbGuardDecide, FreezeAndKillSessionActOnTheSessionAndSessionFollowsBlock) {
    auto fr = compiled([](policy::Policy& q) { q.db_action = Action::Freeze; });
    Decision f = libpq(held("DROP DATABASE app"), fr);
    EXPECT_EQ(f.verdict, Verdict::Freeze);
    EXPECT_EQ(f.session, SessionAction::Freeze);
    EXPECT_EQ(f.task, TaskStep::None) << "it stays stopped";
    auto follow =
        compiled([](policy::Policy& q) { q.db_session_action = SessionAction::KillSession; });
    Decision b = libpq(held("DROP DATABASE app"), follow);
    EXPECT_EQ(b.follow_up, SessionAction::KillSession);
    EXPECT_EQ(b.session, SessionAction::None);
}

DbWireEvent wire(const std::string& text, uint32_t verdict, uint32_t reason) {
    DbWireEvent ev;
    ev.hdr.pid = 42;
    ev.kind = KS_DB_POSTGRES;
    ev.layer = KS_LAYER_SK_MSG;
    ev.msg_type = 'Q';
    ev.verdict = verdict;
    ev.reason = reason;
    ev.cookie = 7;
    ev.text = text;
    return ev;
}

TEST(DbGuardDecide, PassesSchemaChangesAndBookkeepingAndRecordsTheirClass) {
    auto p = compiled();
    for (const char* sql : {"ALTER TABLE \"x\" ALTER COLUMN \"name\" DROP NOT NULL",
                            "DROP INDEX CONCURRENTLY IF EXISTS i",
                            "update \"knex_migrations_lock\" set \"is_locked\" = $1"}) {
        Decision d = libpq(held(sql), p);
        EXPECT_EQ(d.verdict, Verdict::Allow) << sql;
        EXPECT_EQ(d.task, TaskStep::Release) << sql;
        EXPECT_FALSE(d.prevented) << sql;
    }
    EXPECT_EQ(libpq(held("DROP INDEX i"), p).rule, "db:schema-change");
    EXPECT_EQ(libpq(held("DELETE FROM django_migrations"), p).rule, "db:bookkeeping");
    // refused again when listed
    auto strict = refusing(KS_DB_CLASS_BIT(KS_DBR_DROP) | KS_DB_CLASS_BIT(KS_DBR_SCHEMA_CHANGE) |
                           KS_DB_CLASS_BIT(KS_DBR_BOOKKEEPING));
    EXPECT_EQ(libpq(held("DROP INDEX i"), strict).verdict, Verdict::Block);
    EXPECT_EQ(libpq(held("DELETE FROM django_migrations"), strict).verdict, Verdict::Block);
}

TEST(DbGuardDecide, SendsADestructiveClassLeftOutAndRecordsWhatItWouldHaveDone) {
    auto p = refusing(KS_DB_CLASS_BIT(KS_DBR_DROP));
    Decision d = libpq(held("UPDATE accounts SET balance = 0"), p);
    EXPECT_EQ(verdict_name(d.verdict), "would-block");
    EXPECT_EQ(d.task, TaskStep::Release);
    EXPECT_FALSE(d.prevented);
    EXPECT_EQ(d.rule, "db:update-all");
    // a refused class later in the same request is what counts
    Decision both = libpq(held("UPDATE accounts SET balance = 0; DROP TABLE accounts"), p);
    EXPECT_EQ(both.verdict, Verdict::Block);
    EXPECT_EQ(both.rule, "db:drop");
    EXPECT_EQ(both.reason, "DROP TABLE");
    // text that cannot be read is still refused (databases.unparseable)
    EXPECT_EQ(libpq(held("DROP TABLE ("), p).verdict, Verdict::Block);
}

TEST(DbGuardDecide, APolicyTableIsBookkeepingForTheParser) {
    auto p = compiled([](policy::Policy& q) { q.db_bookkeeping_tables = {"deploy_state"}; });
    EXPECT_EQ(libpq(held("UPDATE ops.\"Deploy_State\" SET v = 1"), p).verdict, Verdict::Allow);
    EXPECT_EQ(libpq(held("UPDATE ops.\"Deploy_State\" SET v = 1"), compiled()).verdict,
              Verdict::Block);
}

TEST(DbWireDecide, TheRefusedStatementResetsTheConnectionAndItsNeighbourSaysWhy) {
    auto p = compiled();
    auto ev = wire("SELECT 1; DROP TABLE users", KS_DBV_REFUSE, KS_DBR_DROP);
    auto c = classify_db_request(ev, {});
    ASSERT_EQ(c.statements.size(), 2u);
    size_t culprit = db_culprit(c, p);
    EXPECT_EQ(culprit, 1u);
    Decision bad = decide_db_request(ev, c.statements[1], true, p);
    EXPECT_EQ(bad.verdict, Verdict::Refused);
    EXPECT_TRUE(bad.prevented);
    ASSERT_TRUE(bad.close_connection);
    EXPECT_EQ(bad.close_connection->cookie, 7u);
    EXPECT_EQ(bad.action, Action::Block);
    EXPECT_EQ(bad.rule, "db:drop");
    Decision neighbour = decide_db_request(ev, c.statements[0], false, p);
    EXPECT_EQ(neighbour.verdict, Verdict::Refused);
    EXPECT_FALSE(neighbour.close_connection);
    EXPECT_FALSE(neighbour.action);
    auto facts = db_request_facts(ev, c.statements[0], false, p);
    EXPECT_EQ(facts["refused_with"], "a statement sent in the same request");
    EXPECT_EQ(facts["address"], "127.0.0.1:5432");
}

TEST(DbWireDecide, WouldRefuseAndWindowsAreSentAndSaySo) {
    auto p = compiled();
    auto mon = wire("TRUNCATE t", KS_DBV_WOULD_REFUSE, KS_DBR_TRUNCATE);
    Decision m = decide_db_request(mon, classify_db_request(mon, {}).statements[0], true, p);
    EXPECT_EQ(m.verdict, Verdict::WouldRefuse);
    EXPECT_FALSE(m.prevented);
    EXPECT_FALSE(m.close_connection);
    auto win = wire("TRUNCATE t", KS_DBV_WINDOW, KS_DBR_TRUNCATE);
    Decision w = decide_db_request(win, classify_db_request(win, {}).statements[0], true, p);
    EXPECT_EQ(w.verdict, Verdict::Allowed);
    EXPECT_TRUE(w.window);
}

TEST(DbWireDecide, APassedStatementTheParserObjectsToIsADisagreement) {
    auto p = compiled();
    auto ev = wire("DELETE FROM users", KS_DBV_PASS, KS_DBR_NONE);
    auto c = classify_db_request(ev, {});
    EXPECT_NE(db_disagreement(ev, c.statements[0], p).find("delete-all"), std::string::npos);
    auto ok = wire("SELECT 1", KS_DBV_PASS, KS_DBR_NONE);
    EXPECT_EQ(db_disagreement(ok, classify_db_request(ok, {}).statements[0], p), "");
}

TEST(DbWireDecide, TheSocketPathBlamesTheRefusedStatementNotTheSchemaChangeBeforeIt) {
    auto p = compiled();
    auto ev = wire("ALTER TABLE t ALTER c DROP NOT NULL; DROP TABLE t", KS_DBV_REFUSE, KS_DBR_DROP);
    auto c = classify_db_request(ev, classify_options(p));
    ASSERT_EQ(c.statements.size(), 2u);
    EXPECT_EQ(c.statements[0].cls, db::Class::SchemaChange);
    EXPECT_EQ(db_culprit(c, p), 1u);
    auto facts = db_request_facts(ev, c.statements[0], false, p);
    EXPECT_EQ(facts["class"], "schema-change");
    EXPECT_EQ(facts["refused_with"], "a statement sent in the same request");
}

TEST(DbWireDecide, ASchemaChangePassedIsRecordedAndIsNoDisagreement) {
    auto p = compiled();
    auto ev = wire("DROP INDEX i", KS_DBV_PASS, KS_DBR_NONE);
    auto c = classify_db_request(ev, classify_options(p));
    Decision d = decide_db_request(ev, c.statements[0], true, p);
    EXPECT_FALSE(d.prevented);
    EXPECT_EQ(d.rule, "db:schema-change");
    EXPECT_EQ(db_disagreement(ev, c.statements[0], p), "");
    // ... but it is one when the policy refuses schema changes
    auto strict = refusing(KS_DB_CLASS_BIT(KS_DBR_SCHEMA_CHANGE));
    EXPECT_NE(db_disagreement(ev, c.statements[0], strict).find("schema-change"),
              std::string::npos);
}

TEST(DbWireDecide, AClassTheKernelPassedByPolicyIsWouldRefuseAndNoDisagreement) {
    auto p = refusing(KS_DB_CLASS_BIT(KS_DBR_DROP));
    auto ev = wire("TRUNCATE t", KS_DBV_WOULD_REFUSE, KS_DBR_TRUNCATE);
    auto c = classify_db_request(ev, {});
    Decision d = decide_db_request(ev, c.statements[0], true, p);
    EXPECT_EQ(d.verdict, Verdict::WouldRefuse);
    EXPECT_FALSE(d.prevented);
    EXPECT_EQ(db_disagreement(ev, c.statements[0], p), "");
}

TEST(DbWireDecide, AUnixSocketConnectIsRefusedWithItsReason) {
    DbWireEvent ev = wire("/run/mysqld/mysqld.sock", KS_DBV_REFUSE, KS_DBR_UNIX_SOCKET);
    ev.layer = KS_LAYER_CONNECT;
    ev.kind = KS_DB_MYSQL;
    Decision d = decide_db_unix_connect(ev);
    EXPECT_EQ(d.verdict, Verdict::Refused);
    EXPECT_TRUE(d.prevented);
    EXPECT_EQ(d.rule, "db:unix-socket");
    ev.verdict = KS_DBV_WOULD_REFUSE;
    EXPECT_EQ(decide_db_unix_connect(ev).verdict, Verdict::WouldRefuse);
}

TEST(DbWireDecide, ADeputyConnectIsAReachThatNamesTheService) {
    DbWireEvent ev = wire("/run/systemd/private", KS_DBV_REFUSE, KS_DBR_UNIX_SOCKET);
    ev.layer = KS_LAYER_CONNECT;
    ev.kind = KS_DB_DEPUTY;
    Decision d = decide_db_unix_connect(ev);
    EXPECT_EQ(d.verdict, Verdict::Refused);
    EXPECT_TRUE(d.prevented);
    EXPECT_EQ(d.rule, "process:deputy");
    EXPECT_NE(d.reason.find("a connection to systemd (/run/systemd/private)"), std::string::npos)
        << d.reason;
    auto f = db_unix_connect_facts(ev, policy::CompiledPolicy{});
    EXPECT_EQ(f["service"], "systemd");
    EXPECT_EQ(f["socket"], "/run/systemd/private");
    EXPECT_FALSE(f.contains("statement"));
    EXPECT_EQ(deputy_service("/var/run/docker.sock"), "Docker");
    EXPECT_EQ(deputy_service("/run/user/1000/bus"), "D-Bus");
    EXPECT_EQ(deputy_service("/tmp/other.sock"), "a service");
}

TEST(DbWireDecide, PrintableEscapesControlBytesAndMarksTheCut) {
    EXPECT_EQ(printable(std::string("a\x01"
                                    "b",
                                    3),
                        10),
              "a\\x01b");
    EXPECT_EQ(printable("abcdef", 3), "abc...");
}

}  // namespace
}  // namespace ks
