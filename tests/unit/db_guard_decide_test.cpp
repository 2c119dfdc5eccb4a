// Database decisions without a database: libpq statements held by the
// uprobes, and the socket path's records (refused, would-refuse, windows).
#include "db_guard/db_guard_decide.h"

#include <gtest/gtest.h>

#include "db_guard/db_wire_decide.h"
#include "policy/compile.h"

namespace ks {
namespace {

policy::CompiledPolicy compiled(void (*tweak)(policy::Policy&) = nullptr) {
    policy::Policy p = policy::default_policy();
    p.db_endpoints = {"postgres=127.0.0.1:5432"};
    if (tweak) tweak(p);
    auto c = policy::compile(p, "", {"", "/sys/fs/cgroup", ""}, nullptr);
    EXPECT_TRUE(c);
    return *c;
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
    return decide_libpq(ev, classify_libpq(ev), p);
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
    auto facts = libpq_facts(held("DROP TABLE users"), classify_libpq(held("DROP TABLE users")));
    EXPECT_EQ(facts["class"], "drop");
    EXPECT_EQ(facts["layer"], "uprobe");
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

TEST(DbWireDecide, TheRefusedStatementResetsTheConnectionAndItsNeighbourSaysWhy) {
    auto p = compiled();
    auto ev = wire("SELECT 1; DROP TABLE users", KS_DBV_REFUSE, KS_DBR_DROP);
    auto c = classify_db_request(ev);
    ASSERT_EQ(c.statements.size(), 2u);
    size_t culprit = db_culprit(c);
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
    Decision m = decide_db_request(mon, classify_db_request(mon).statements[0], true, p);
    EXPECT_EQ(m.verdict, Verdict::WouldRefuse);
    EXPECT_FALSE(m.prevented);
    EXPECT_FALSE(m.close_connection);
    auto win = wire("TRUNCATE t", KS_DBV_WINDOW, KS_DBR_TRUNCATE);
    Decision w = decide_db_request(win, classify_db_request(win).statements[0], true, p);
    EXPECT_EQ(w.verdict, Verdict::Allowed);
    EXPECT_TRUE(w.window);
}

TEST(DbWireDecide, APassedStatementTheParserObjectsToIsADisagreement) {
    auto ev = wire("DELETE FROM users", KS_DBV_PASS, KS_DBR_NONE);
    auto c = classify_db_request(ev);
    EXPECT_NE(db_disagreement(ev, c.statements[0]).find("delete-all"), std::string::npos);
    auto ok = wire("SELECT 1", KS_DBV_PASS, KS_DBR_NONE);
    EXPECT_EQ(db_disagreement(ok, classify_db_request(ok).statements[0]), "");
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
