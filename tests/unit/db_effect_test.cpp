// Effect-based SQL (databases.effect): which PostgreSQL statements are judged
// by the rows they would reach, the probe the relay sends for them on the
// client's connection (wire_postgres.cpp), and how its answers change the
// verdict (db_relay_decide.cpp). End to end, with a real server:
// tests/e2e/db_relay_test.cpp (AWhereThatReachesEveryRow...).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "db_guard/classify.h"
#include "db_guard/db_relay_decide.h"
#include "db_relay/wire.h"
#include "pg_relay_bytes.h"

namespace ks {
namespace {

using Target = db::Statement::Target;

std::vector<std::string> reaches_of(const std::string& sql, size_t i = 0) {
    auto c = db::classify_postgres_sql(sql);
    std::vector<std::string> out;
    if (i >= c.statements.size()) return {"?"};
    for (const auto& t : c.statements[i].reaches) out.push_back((t.only ? "ONLY " : "") + t.table);
    return out;
}

TEST(EffectStatements, AWhereThatMayLimitTheRowsIsAskedAbout) {
    EXPECT_EQ(reaches_of("DELETE FROM t WHERE id > 0"), (std::vector<std::string>{"\"t\""}));
    EXPECT_EQ(reaches_of("update ONLY s.t set v = 'x' where v is not null"),
              (std::vector<std::string>{"ONLY \"s\".\"t\""}));
    EXPECT_EQ(reaches_of("WITH d AS (DELETE FROM a WHERE id > 0 RETURNING *) "
                         "UPDATE b SET n = 0 WHERE n > 1"),
              (std::vector<std::string>{"\"b\"", "\"a\""}));
    EXPECT_EQ(reaches_of("SELECT 1; DELETE FROM x WHERE y < 3", 1),
              (std::vector<std::string>{"\"x\""}));
    // The statement a request runs now, held: the server cannot be asked.
    EXPECT_EQ(reaches_of("EXPLAIN ANALYZE DELETE FROM t WHERE id > 0"),
              (std::vector<std::string>{"\"t\""}));
    EXPECT_EQ(reaches_of("PREPARE p AS DELETE FROM t WHERE id > $1"),
              (std::vector<std::string>{"\"t\""}));
}

TEST(EffectStatements, ColumnsHeldEqualToAConstantAreNamed) {
    auto eq = [](const std::string& sql) {
        return db::classify_postgres_sql(sql).statements.at(0).reaches.at(0).eq_columns;
    };
    EXPECT_EQ(eq("UPDATE \"app_item\" SET \"n\" = 1 WHERE \"app_item\".\"id\" = 5"),
              (std::vector<std::string>{"id"}));
    EXPECT_EQ(eq("DELETE FROM t AS x WHERE x.a = 1 AND 'b' = b AND c > 2 AND t.d = 3"),
              (std::vector<std::string>{"a", "b"}))
        << "t.d is not the alias's";
    EXPECT_EQ(eq("DELETE FROM t WHERE a = '5'::int"), (std::vector<std::string>{"a"}));
    EXPECT_TRUE(eq("DELETE FROM t WHERE a = 1 OR b = 2").empty());
    EXPECT_TRUE(eq("DELETE FROM t WHERE a = b").empty());
    EXPECT_TRUE(eq("DELETE FROM t USING u WHERE u.id = 1").empty());
    EXPECT_TRUE(eq("DELETE FROM t WHERE a <> 1").empty());
}

TEST(EffectStatements, WhatTheTextAlreadyDecidesIsNot) {
    for (const char* sql : {"DELETE FROM t", "DELETE FROM t WHERE 1 = 1", "UPDATE t SET a = 1",
                            "DELETE FROM django_migrations WHERE app = 'x'",
                            "DELETE FROM t WHERE CURRENT OF c", "SELECT * FROM t WHERE id > 0",
                            "INSERT INTO t VALUES (1)", "EXPLAIN DELETE FROM t WHERE id > 0",
                            "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM t'",
                            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'"})
        EXPECT_TRUE(db::classify_postgres_sql(sql).statements.at(0).reaches.empty()) << sql;
}

// A DELETE or UPDATE in the body of a function, procedure or rule is asked
// about when it is created: as it would run now when its WHERE reads no
// value a call gives; else only a unique key can pin it.
TEST(EffectStatements, ABodysDeletesAndUpdatesAreAskedAboutWhenItIsCreated) {
    auto targets = [](const std::string& sql) {
        return db::classify_postgres_sql(sql).statements.at(0).reaches;
    };
    auto t = targets(
        "CREATE FUNCTION f(p_id int, cutoff timestamptz) RETURNS void LANGUAGE plpgsql AS $$ "
        "DECLARE n int := 3; r record; BEGIN "
        "DELETE FROM t WHERE id > 0; "
        "DELETE FROM t WHERE id = p_id; "
        "DELETE FROM t WHERE created < cutoff AND k = n; "
        "FOR r IN SELECT * FROM u LOOP UPDATE t SET x = 1 WHERE t.id = r.id; END LOOP; "
        "UPDATE t SET x = n, y = f.cutoff WHERE id > 0 RETURNING n; "
        "DELETE FROM t USING u WHERE t.id = u.id AND u.k = p_id; END $$");
    ASSERT_EQ(t.size(), 6u);
    for (const auto& x : t) EXPECT_EQ(x.body_of, "CREATE FUNCTION");
    EXPECT_EQ(t[0].body, "DELETE FROM t WHERE id > 0");
    EXPECT_TRUE(t[0].unaskable.empty());
    EXPECT_EQ(t[1].eq_variables,
              (std::vector<std::pair<std::string, std::string>>{{"id", "p_id"}}));
    EXPECT_NE(t[1].unaskable.find("reads values each call gives (p_id)"), std::string::npos)
        << t[1].unaskable;
    EXPECT_NE(t[2].unaskable.find("(cutoff, n)"), std::string::npos) << t[2].unaskable;
    // In a loop a variable may name another row each round: nothing pins it.
    EXPECT_TRUE(t[3].eq_variables.empty());
    EXPECT_NE(t[3].unaskable.find("runs in a loop"), std::string::npos) << t[3].unaskable;
    // Variables outside the WHERE change no row it reaches: NULL in the probe.
    EXPECT_EQ(t[4].body, "UPDATE t SET x = NULL, y = NULL WHERE id > 0 RETURNING NULL");
    EXPECT_TRUE(t[4].unaskable.empty());
    EXPECT_TRUE(t[5].eq_variables.empty()) << "a join: u.k = p_id pins no row of t";
    EXPECT_FALSE(t[5].unaskable.empty());

    auto sql = targets(
        "CREATE OR REPLACE PROCEDURE p(a int) LANGUAGE sql AS "
        "'DELETE FROM t WHERE id > a; UPDATE t SET v = $1 WHERE id = 5'");
    ASSERT_EQ(sql.size(), 2u);
    EXPECT_EQ(sql[0].body_of, "CREATE PROCEDURE");
    EXPECT_NE(sql[0].unaskable.find("(a)"), std::string::npos) << sql[0].unaskable;
    EXPECT_EQ(sql[1].body, "UPDATE t SET v = NULL WHERE id = 5");
    EXPECT_EQ(sql[1].eq_columns, (std::vector<std::string>{"id"}));
    // A quoted variable is not rewritten by guess.
    EXPECT_FALSE(targets("CREATE FUNCTION f(\"V\" int) RETURNS void LANGUAGE sql AS "
                         "'UPDATE t SET x = \"V\" WHERE id > 0'")
                     .at(0)
                     .unaskable.empty());
    // No text of their own: asked about by nothing but their keys.
    auto atomic = targets(
        "CREATE FUNCTION f(a int) RETURNS void LANGUAGE sql BEGIN ATOMIC "
        "DELETE FROM t WHERE id > 0; END");
    ASSERT_EQ(atomic.size(), 1u);
    EXPECT_TRUE(atomic[0].body.empty());
    EXPECT_NE(atomic[0].unaskable.find("BEGIN ATOMIC"), std::string::npos);
    auto rule =
        targets("CREATE RULE r AS ON DELETE TO v DO INSTEAD DELETE FROM t WHERE id = OLD.id");
    ASSERT_EQ(rule.size(), 1u);
    EXPECT_EQ(rule[0].body_of, "CREATE RULE");
    EXPECT_EQ(rule[0].eq_variables,
              (std::vector<std::pair<std::string, std::string>>{{"id", "old"}}));
    // A DO block runs now: judged as a body is, in PL/pgSQL's own parser.
    auto block = db::classify_postgres_sql(
        "DO $$ BEGIN CREATE TYPE mood AS ENUM ('a'); EXCEPTION WHEN duplicate_object THEN null; "
        "END $$");
    EXPECT_EQ(block.verdict(), db::Class::Harmless);
    EXPECT_TRUE(block.statements[0].reaches.empty());
    auto drops = db::classify_postgres_sql("DO $x$ BEGIN DROP TABLE accounts; END $x$");
    EXPECT_EQ(drops.verdict(), db::Class::Drop);
    EXPECT_NE(drops.statements[0].detail.find("DO block whose body runs DROP TABLE"),
              std::string::npos);
    auto looped = db::classify_postgres_sql(
        "DO $$ DECLARE r record; BEGIN FOR r IN SELECT id FROM t LOOP DELETE FROM t WHERE id = "
        "r.id; END LOOP; DELETE FROM t WHERE id > 0; END $$");
    ASSERT_EQ(looped.statements[0].reaches.size(), 2u);
    EXPECT_EQ(looped.statements[0].reaches[0].body_of, "DO block");
    EXPECT_NE(looped.statements[0].reaches[0].unaskable.find("runs in a loop"), std::string::npos);
    EXPECT_EQ(looped.statements[0].reaches[1].body, "DELETE FROM t WHERE id > 0");
    EXPECT_EQ(db::classify_postgres_sql("DO LANGUAGE plpython3u $$ import os $$").verdict(),
              db::Class::HostAccess);
    EXPECT_EQ(db::classify_postgres_sql("DO LANGUAGE plv8 $$ plv8.execute('x') $$").verdict(),
              db::Class::OpaqueCode);
    // A statement after others: its text is its own.
    auto later = db::classify_postgres_sql(
        "SELECT 1;   CREATE FUNCTION g() RETURNS void LANGUAGE sql AS $b$UPDATE t SET x = 2 WHERE "
        "k > 3$b$");
    ASSERT_EQ(later.statements.size(), 2u);
    ASSERT_EQ(later.statements[1].reaches.size(), 1u);
    EXPECT_EQ(later.statements[1].reaches[0].body, "UPDATE t SET x = 2 WHERE k > 3");
}

TEST(EffectStatements, AColumnRewrittenToAConstantIsDestroyed) {
    for (const char* sql : {"ALTER TABLE t ALTER COLUMN v TYPE text USING 'gone'",
                            "ALTER TABLE t ALTER v TYPE int USING NULL",
                            "ALTER TABLE t ALTER COLUMN v SET DATA TYPE timestamptz USING now()"}) {
        auto c = db::classify_postgres_sql(sql);
        EXPECT_EQ(c.verdict(), db::Class::AlterDrop) << sql;
        // An empty table loses nothing: the row check names it.
        EXPECT_EQ(c.statements[0].tables, (std::vector<std::string>{"\"t\""})) << sql;
    }
    for (const char* sql : {"ALTER TABLE t ALTER COLUMN v TYPE bigint",
                            "ALTER TABLE t ALTER COLUMN v TYPE text USING v::text",
                            "ALTER TABLE t ALTER COLUMN v TYPE int USING length(v)"})
        EXPECT_EQ(db::classify_postgres_sql(sql).verdict(), db::Class::Harmless) << sql;
}

TEST(EffectProbe, StandsForTheRequestUpToItsLastSuchStatement) {
    auto p = compiled();
    auto probe = [&](std::string_view sql, uint8_t type = 'Q') {
        auto r = pg(sql, type);
        return effect_probe(r, classify_relayed(r, {}), p.policy);
    };
    auto e = probe("BEGIN; SET search_path TO s; DELETE FROM t WHERE id > 0; COMMIT");
    EXPECT_TRUE(e.cannot.empty());
    // BEGIN left out (the probe is in a block), what follows the DELETE too.
    // The first round asks without ANALYZE (EffectDecide below).
    EXPECT_EQ(e.sql.rfind("SET search_path TO s\n;\n"
                          "EXPLAIN (VERBOSE, FORMAT JSON) DELETE FROM t WHERE id > 0\n;\n"
                          "SELECT n.nspname, c.relname, ",
                          0),
              0u)
        << e.sql;
    const std::string tail =
        "WHERE c.oid = '\"t\"'::regclass\n;\nEXPLAIN (FORMAT JSON) SELECT 1 FROM \"t\"";
    ASSERT_GT(e.sql.size(), tail.size());
    EXPECT_EQ(e.sql.substr(e.sql.size() - tail.size()), tail) << e.sql;
    EXPECT_TRUE(probe("DELETE FROM t WHERE id = 3", 'P').sql.empty())
        << "an extended-query Parse is judged by its text";
    EXPECT_TRUE(probe("DELETE FROM t").sql.empty()) << "refused by its text";
    EXPECT_TRUE(probe("SELECT 1").sql.empty());
    EXPECT_NE(probe("COMMIT; DELETE FROM t WHERE id > 0").cannot.find("ends a transaction"),
              std::string::npos);
    EXPECT_NE(probe("EXPLAIN ANALYZE DELETE FROM t WHERE id > 0").cannot.find("EXPLAIN"),
              std::string::npos);
    EXPECT_NE(probe("/* why */ EXPLAIN ANALYZE DELETE FROM t WHERE id > 0").cannot.find("EXPLAIN"),
              std::string::npos)
        << "a comment before it hides nothing";
    auto off = compiled("  effect:\n    check: false\n");
    auto r = pg("DELETE FROM t WHERE id > 0");
    EXPECT_TRUE(effect_probe(r, classify_relayed(r, {}), off.policy).sql.empty());
}

// The answers of the probe for one DELETE or UPDATE of table public.t:
// round 1 and 2 without ANALYZE, 3 with it; statistics: "t" the table has
// some, "f" none, "u" not asked.
relay::ProbeAnswer answer(const std::string& op, double rows, double total, int round = kProbeFirst,
                          const std::string& statistics = "t") {
    relay::ProbeAnswer a;
    a.round = round;
    if (round == kProbeAnalyze) a.results.push_back({"ANALYZE", {}});
    std::string plan = R"([{"Plan": {"Node Type": "ModifyTable", "Operation": ")" + op +
                       R"(", "Schema": "public", "Relation Name": "t", "Plan Rows": 0,
        "Plans": [{"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Plan Rows": )" +
                       std::to_string(rows) + "}]}}]";
    a.results.push_back({"EXPLAIN", {{plan}}});
    a.results.push_back({"SELECT 1", {{"public", "t", "[]", statistics}}});
    a.results.push_back({"EXPLAIN",
                         {{R"([{"Plan": {"Node Type": "Seq Scan", "Plan Rows": )" +
                           std::to_string(total) + "}}]"}}});
    a.results.push_back({"ROLLBACK", {}});
    return a;
}

TEST(EffectDecide, RowsNearTheWholeTableAreRefusedAFewPass) {
    auto p = compiled();
    auto judged = [&](std::string_view sql, const relay::ProbeAnswer& a,
                      const policy::CompiledPolicy& pol) {
        auto c = classify_relayed(pg(sql), {});
        apply_effect_probe(c, a, pol.policy);
        return std::pair{c, rule_relayed(c, "", pol)};
    };
    auto [c1, r1] = judged("DELETE FROM t WHERE id > 0", answer("Delete", 1000, 1000), p);
    EXPECT_TRUE(r1.refuse);
    EXPECT_EQ(r1.rule, "db:delete-all");
    EXPECT_NE(r1.reason.find("reaches about 1000 of 1000 rows of public.t"), std::string::npos)
        << r1.reason;
    ASSERT_EQ(c1.statements[0].reached.size(), 1u);
    EXPECT_EQ(reached_json(c1.statements[0])[0].value("of", 0.0), 1000.0);

    auto [c2, r2] =
        judged("UPDATE t SET v = 'x' WHERE v IS NOT NULL", answer("Update", 950, 1000), p);
    EXPECT_TRUE(r2.refuse);
    EXPECT_EQ(r2.rule, "db:update-all");

    EXPECT_FALSE(judged("DELETE FROM t WHERE id = 7", answer("Delete", 1, 1000), p).second.refuse);
    EXPECT_FALSE(
        judged("DELETE FROM t WHERE id < 500", answer("Delete", 499, 1000), p).second.refuse);
    // A table's one row: the row the WHERE names, not every row.
    EXPECT_FALSE(judged("DELETE FROM t WHERE id = 1", answer("Delete", 1, 1), p).second.refuse);
    // The absolute limit, whatever the table.
    auto [c3, r3] = judged("DELETE FROM t WHERE ts < now()", answer("Delete", 200000, 1e8), p);
    EXPECT_TRUE(r3.refuse) << "over max_rows";
    auto lax = compiled("  effect:\n    percent: 100\n    max_rows: 0\n");
    EXPECT_FALSE(
        judged("DELETE FROM t WHERE ts < now()", answer("Delete", 200000, 1e8), lax).second.refuse);
    EXPECT_FALSE(
        judged("DELETE FROM t WHERE id > 0", answer("Delete", 950, 1000), lax).second.refuse);
}

TEST(EffectDecide, AUniqueKeyHeldEqualPinsOneRowAndNeedsNoProbe) {
    auto p = compiled();
    // What a probe of "t" says of its keys is learned...
    auto a = answer("Update", 1, 1000);
    a.results[1].rows[0][2] = R"([["id"], ["a", "b"]])";
    auto c = classify_relayed(pg("UPDATE t SET v = 1 WHERE id = 9"), {});
    UniqueKeys learned;
    apply_effect_probe(c, a, p.policy, &learned);
    ASSERT_EQ(learned.count("\"t\""), 1u);
    EXPECT_EQ(learned["\"t\""], (std::vector<std::vector<std::string>>{{"id"}, {"a", "b"}}));
    // ... and pins later statements of the connection.
    auto probe_of = [&](const std::string& sql) {
        auto r = pg(sql);
        auto cl = classify_relayed(r, {});
        drop_pinned(cl, learned);
        return effect_probe(r, cl, p.policy).sql;
    };
    EXPECT_TRUE(probe_of("UPDATE t SET v = 2 WHERE id = 10").empty());
    EXPECT_TRUE(probe_of("DELETE FROM t WHERE a = 1 AND b = 2 AND v > 3").empty());
    EXPECT_FALSE(probe_of("DELETE FROM t WHERE a = 1").empty()) << "half a key";
    EXPECT_FALSE(probe_of("DELETE FROM t WHERE id > 10").empty());
    EXPECT_FALSE(probe_of("DELETE FROM u WHERE id = 10").empty()) << "another table";
    EXPECT_FALSE(
        probe_of("WITH x AS (DELETE FROM u WHERE id > 0) UPDATE t SET v = 1 WHERE id = 3").empty())
        << "every table it reaches must be pinned";
    // The relay's thread lets a pinned UPDATE go on without the daemon.
    bool forget = true;
    EXPECT_TRUE(relay_passes_unasked(pg("UPDATE t SET v = 1 WHERE id = 3"), learned, forget));
    EXPECT_FALSE(forget);
    EXPECT_FALSE(relay_passes_unasked(pg("UPDATE t SET v = 1 WHERE id = 3"), {}, forget))
        << "not before a probe showed the key";
    EXPECT_FALSE(relay_passes_unasked(pg("UPDATE t SET v = 1 WHERE id > 3"), learned, forget));
    EXPECT_FALSE(relay_passes_unasked(
        pg("SET search_path TO s, public; DELETE FROM t WHERE id = 3"), learned, forget))
        << "\"t\" may name another table after the SET before it";
    EXPECT_TRUE(forget);
    // What may change what a name or a key means forgets them, on every
    // connection, though it passes itself.
    for (const char* sql :
         {"ALTER TABLE t RENAME COLUMN v TO id", "SET search_path TO s", "DROP INDEX t_a_b_key",
          "CREATE SCHEMA s", "SELECT pg_catalog.set_config('search_path', 'evil, public', false)",
          "SET ROLE other", "SELECT 1; DISCARD ALL"}) {
        EXPECT_FALSE(keeps_unique_keys(classify_relayed(pg(sql), {}))) << sql;
        forget = false;
        relay_passes_unasked(pg(sql), learned, forget);
        EXPECT_TRUE(forget) << sql;
    }
    EXPECT_TRUE(keeps_unique_keys(
        classify_relayed(pg("BEGIN; SELECT 1; UPDATE t SET v = 1 WHERE id = 3; COMMIT"), {})));
    // What clients set on each connection keeps them (Django: SET TIME
    // ZONE at connect, SET CONSTRAINTS in loaddata)...
    for (const char* sql :
         {"SET TIME ZONE 'UTC'", "SET CONSTRAINTS ALL IMMEDIATE", "SET statement_timeout = 0",
          "SET LOCAL lock_timeout TO '5s'", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
          "SET NAMES 'UTF8'", "set client_min_messages to warning"})
        EXPECT_TRUE(keeps_unique_keys(classify_relayed(pg(sql), {}))) << sql;
    // ... a setting that changes how names resolve does not, however spelled.
    for (const char* sql :
         {"SET SCHEMA 'evil'", "SET LOCAL search_path = evil", "SET U&\"search\\0070ath\" TO evil",
          "SET \"search_path\" TO evil", "SET SESSION AUTHORIZATION other", "SET ROLE other",
          "SET default_tablespace = x", "RESET TIME ZONE", "SELECT 1; SET SCHEMA 'evil'",
          "SELECT 1; IMPORT FOREIGN SCHEMA s FROM SERVER f INTO public"})
        EXPECT_FALSE(keeps_unique_keys(classify_relayed(pg(sql), {}))) << sql;
}

// The answers for a body's one target of public.t that cannot be asked
// about: its name row (keys; the table's columns) and its size, no EXPLAIN.
relay::ProbeAnswer unasked_answer(const std::string& keys, const std::string& columns) {
    relay::ProbeAnswer a;
    a.round = kProbeFirst;
    a.results.push_back({"SELECT 1", {{"public", "t", keys, "u", columns}}});
    a.results.push_back(
        {"EXPLAIN", {{R"([{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 1000}}])"}}});
    a.results.push_back({"ROLLBACK", {}});
    return a;
}

TEST(EffectDecide, ABodyIsJudgedWhenCreatedByWhatItWouldReachNowOrByItsKey) {
    auto p = compiled();
    auto judged = [&](const std::string& sql, const relay::ProbeAnswer& a) {
        auto c = classify_relayed(pg(sql), {});
        apply_effect_probe(c, a, p.policy);
        return rule_relayed(c, "", p);
    };
    auto fn = [](const std::string& params, const std::string& body) {
        return "CREATE FUNCTION wipe(" + params + ") RETURNS void LANGUAGE plpgsql AS $$BEGIN " +
               body + "; END$$";
    };
    // The probe asks about the body's statement; nothing of the CREATE runs.
    const std::string wipe = fn("", "DELETE FROM t WHERE id > 0");  // pg() keeps a view of it
    auto r = pg(wipe);
    auto e = effect_probe(r, classify_relayed(r, {}), p.policy);
    EXPECT_NE(e.sql.find("EXPLAIN (VERBOSE, FORMAT JSON) DELETE FROM t WHERE id > 0\n"),
              std::string::npos)
        << e.sql;
    EXPECT_EQ(e.sql.find("CREATE"), std::string::npos) << e.sql;
    auto all = judged(fn("", "DELETE FROM t WHERE id > 0"), answer("Delete", 1000, 1000));
    EXPECT_TRUE(all.refuse);
    EXPECT_EQ(all.rule, "db:delete-all");
    EXPECT_NE(all.reason.find("CREATE FUNCTION whose body runs DELETE whose WHERE reaches about "
                              "1000 of 1000 rows of public.t"),
              std::string::npos)
        << all.reason;
    EXPECT_FALSE(judged(fn("", "DELETE FROM t WHERE id < 10"), answer("Delete", 9, 1000)).refuse);

    // A key held equal to a call's value: one row a call.
    const std::string by_key = fn("p_id int", "DELETE FROM t WHERE id = p_id");
    auto asked = effect_probe(pg(by_key), classify_relayed(pg(by_key), {}), p.policy);
    EXPECT_EQ(asked.sql.find("EXPLAIN (VERBOSE"), std::string::npos) << asked.sql;
    EXPECT_NE(asked.sql.find("pg_attribute"), std::string::npos) << asked.sql;
    EXPECT_FALSE(judged(by_key, unasked_answer(R"([["id"]])", R"(["id", "v"])")).refuse);
    // ... unless a column has the variable's name (with #variable_conflict
    // use_column, id = p_id compares two columns of each row)...
    auto same_name = judged(by_key, unasked_answer(R"([["id"]])", R"(["id", "p_id"])"));
    EXPECT_TRUE(same_name.refuse);
    EXPECT_EQ(same_name.rule, "db:unparseable");
    EXPECT_NE(same_name.reason.find("CREATE FUNCTION whose body runs DELETE of \"t\" whose reach "
                                    "could not be learned: its WHERE reads values each call "
                                    "gives (p_id)"),
              std::string::npos)
        << same_name.reason;
    // ... or no key: every row may share the value.
    EXPECT_TRUE(judged(by_key, unasked_answer("[]", R"(["id"])")).refuse);
    // A range over a call's value: any call may reach every row.
    auto range = judged(fn("cutoff timestamptz", "DELETE FROM t WHERE created < cutoff"),
                        unasked_answer(R"([["id"]])", "[]"));
    EXPECT_TRUE(range.refuse);
    EXPECT_NE(range.reason.find("(cutoff)"), std::string::npos) << range.reason;
    // A table the server cannot plan now: the CREATE would not fail.
    relay::ProbeAnswer missing;
    missing.code = "42P01";
    missing.message = "relation \"later\" does not exist";
    auto later = judged(fn("", "DELETE FROM later WHERE id > 0"), missing);
    EXPECT_TRUE(later.refuse);
    EXPECT_NE(later.reason.find("CREATE FUNCTION whose body runs a DELETE or UPDATE whose reach "
                                "could not be learned: the server said relation"),
              std::string::npos)
        << later.reason;
}

TEST(EffectDecide, ADeleteThroughAViewIsMeasuredAgainstTheView) {
    auto p = compiled();
    // DELETE FROM v: the plan deletes from public.t, the view is what was named.
    auto a = answer("Delete", 1000, 1000);
    a.results[1].rows[0][0] = "public";
    a.results[1].rows[0][1] = "v";
    auto c = classify_relayed(pg("DELETE FROM v WHERE id > 0"), {});
    apply_effect_probe(c, a, p.policy);
    auto r = rule_relayed(c, "", p);
    EXPECT_TRUE(r.refuse);
    EXPECT_NE(r.reason.find("1000 of 1000 rows of public.t"), std::string::npos) << r.reason;
}

TEST(EffectDecide, ATableWithoutStatisticsIsAskedAgainAfterAnalyze) {
    auto p = compiled();
    auto c = classify_relayed(pg("DELETE FROM t WHERE id > 0"), {});
    // The planner's guess for a range without statistics: a third.
    EXPECT_EQ(apply_effect_probe(c, answer("Delete", 333, 1000, kProbeFirst, "f"), p.policy),
              kProbeAnalyze);
    EXPECT_EQ(c.verdict(), db::Class::Harmless) << "not decided yet";
    auto again = effect_probe(pg("DELETE FROM t WHERE id > 0"), c, p.policy, kProbeAnalyze);
    EXPECT_EQ(again.sql.rfind("ANALYZE \"t\"\n;\nEXPLAIN", 0), 0u) << again.sql;
    // After ANALYZE the planner knows.
    c = classify_relayed(pg("DELETE FROM t WHERE id > 0"), {});
    EXPECT_EQ(apply_effect_probe(c, answer("Delete", 1000, 1000, kProbeAnalyze, "t"), p.policy), 0);
    auto r = rule_relayed(c, "", p);
    EXPECT_TRUE(r.refuse);
    EXPECT_NE(r.reason.find("after ANALYZE"), std::string::npos) << r.reason;
    // Over the limits already, or pinned to a row by a unique key: decided
    // in the first round.
    c = classify_relayed(pg("DELETE FROM t WHERE id > 0"), {});
    EXPECT_EQ(apply_effect_probe(c, answer("Delete", 1000, 1000, kProbeFirst, "f"), p.policy), 0);
    EXPECT_TRUE(rule_relayed(c, "", p).refuse);
    auto keyed = answer("Update", 5, 1000, kProbeFirst, "f");
    keyed.results[1].rows[0][2] = R"([["id"]])";
    c = classify_relayed(pg("UPDATE t SET v = 1 WHERE id = 4"), {});
    EXPECT_EQ(apply_effect_probe(c, keyed, p.policy), 0);
    EXPECT_FALSE(rule_relayed(c, "", p).refuse);
    // Answers that do not match the question are no answer.
    auto cut = answer("Delete", 1, 1000);
    cut.results.resize(2);
    c = classify_relayed(pg("DELETE FROM t WHERE id > 0"), {});
    apply_effect_probe(c, cut, p.policy);
    EXPECT_TRUE(rule_relayed(c, "", p).refuse);
}

TEST(EffectDecide, AStatementAKeyMayPinAsksForStatisticsOnlyWhenNotPinned) {
    auto p = compiled();
    const std::string sql = "DELETE FROM t WHERE status = 'gone'";
    auto c = classify_relayed(pg(sql), {});
    // An equality on every table it reaches: the first round does not ask
    // whether the table has statistics (the dearest question on a
    // connection's first probe).
    auto first = effect_probe(pg(sql), c, p.policy);
    EXPECT_EQ(first.sql.find("pg_stats"), std::string::npos) << first.sql;
    EXPECT_NE(first.sql.find(", 'u' FROM"), std::string::npos) << first.sql;
    // Not pinned (status is no key) and under the limits: asked whether it
    // has statistics, without ANALYZE.
    EXPECT_EQ(apply_effect_probe(c, answer("Delete", 5, 1000, kProbeFirst, "u"), p.policy),
              kProbeStatistics);
    EXPECT_EQ(c.verdict(), db::Class::Harmless) << "not decided yet";
    auto second = effect_probe(pg(sql), c, p.policy, kProbeStatistics);
    EXPECT_NE(second.sql.find("pg_stats"), std::string::npos) << second.sql;
    EXPECT_EQ(second.sql.find("ANALYZE"), std::string::npos) << second.sql;
    // With statistics the estimate stands; without, ANALYZE first.
    c = classify_relayed(pg(sql), {});
    EXPECT_EQ(apply_effect_probe(c, answer("Delete", 5, 1000, kProbeStatistics, "t"), p.policy), 0);
    EXPECT_FALSE(rule_relayed(c, "", p).refuse);
    c = classify_relayed(pg(sql), {});
    EXPECT_EQ(apply_effect_probe(c, answer("Delete", 5, 1000, kProbeStatistics, "f"), p.policy),
              kProbeAnalyze);
    c = classify_relayed(pg(sql), {});
    EXPECT_EQ(apply_effect_probe(c, answer("Delete", 1000, 1000, kProbeAnalyze, "f"), p.policy), 0);
    EXPECT_TRUE(rule_relayed(c, "", p).refuse) << "every row has that status";
    // Over the limits in the first round: refused there.
    c = classify_relayed(pg(sql), {});
    EXPECT_EQ(apply_effect_probe(c, answer("Delete", 990, 1000, kProbeFirst, "u"), p.policy), 0);
    EXPECT_TRUE(rule_relayed(c, "", p).refuse);
    // A range no key can pin asks in the first round.
    auto range = classify_relayed(pg("DELETE FROM t WHERE id > 0"), {});
    EXPECT_NE(effect_probe(pg("DELETE FROM t WHERE id > 0"), range, p.policy).sql.find("pg_stats"),
              std::string::npos);
}

TEST(EffectDecide, AnAnswerThatCannotBeHadIsRefusedUnlessTheStatementWouldFailToo) {
    auto p = compiled();
    auto judged = [&](const relay::ProbeAnswer& a) {
        auto c = classify_relayed(pg("DELETE FROM t WHERE id > 0"), {});
        apply_effect_probe(c, a, p.policy);
        return rule_relayed(c, "", p);
    };
    relay::ProbeAnswer a;
    a.code = "42P01";
    a.message = "relation \"t\" does not exist";
    EXPECT_FALSE(judged(a).refuse) << "the DELETE fails alike";
    a.code = "25001";
    a.message = "VACUUM cannot run inside a transaction block";
    auto r = judged(a);
    EXPECT_TRUE(r.refuse);
    EXPECT_EQ(r.rule, "db:unparseable");
    EXPECT_NE(r.reason.find("could not be learned"), std::string::npos) << r.reason;
    relay::ProbeAnswer failed_tx;
    failed_tx.not_asked = "the client's transaction has already failed";
    failed_tx.fails_anyway = true;
    EXPECT_FALSE(judged(failed_tx).refuse);
    // Not asked because it comes in the middle of an extended-query batch:
    // what it reaches is unknown, and it would run.
    relay::ProbeAnswer mid_batch;
    mid_batch.not_asked = "it comes in the middle of an extended-query batch, before its Sync";
    r = judged(mid_batch);
    EXPECT_TRUE(r.refuse);
    EXPECT_NE(r.reason.find("extended-query batch"), std::string::npos) << r.reason;
    // A plan that did not come back is no answer.
    EXPECT_TRUE(judged(relay::ProbeAnswer{}).refuse);
}

std::string tag(const std::string& t) { return msg('C', t + std::string(1, '\0')); }
std::string row(const std::string& v) {
    return msg('D', std::string("\0\1", 2) + be32(static_cast<uint32_t>(v.size())) + v);
}

TEST(EffectWire, OutsideABlockTheProbeIsRolledBackAndTheClientSeesNone) {
    auto w = connected('I');
    std::string up, down;
    w->start_probe("ANALYZE \"t\"\n;\nEXPLAIN (FORMAT JSON) DELETE FROM t WHERE id > 0", up);
    EXPECT_EQ(up, query("BEGIN;\nANALYZE \"t\"\n;\nEXPLAIN (FORMAT JSON) DELETE FROM t WHERE "
                        "id > 0\n;ROLLBACK"));
    std::string answer = tag("BEGIN") + msg('N', "SWARNING" + std::string(2, '\0')) +
                         tag("ANALYZE") + kRowDesc + row("[{\"Plan\": {}}]") + tag("EXPLAIN") +
                         tag("ROLLBACK");
    ASSERT_TRUE(w->from_server(answer, down));
    EXPECT_FALSE(w->take_probe()) << "not before ReadyForQuery";
    answer = ready('I');
    ASSERT_TRUE(w->from_server(answer, down));
    EXPECT_EQ(down, "") << "ANALYZE's warning is the relay's";
    auto a = w->take_probe();
    ASSERT_TRUE(a);
    ASSERT_EQ(a->results.size(), 3u);
    EXPECT_EQ(a->results[0].tag, "ANALYZE");
    ASSERT_EQ(a->results[1].rows.size(), 1u);
    EXPECT_EQ(a->results[1].rows[0][0], "[{\"Plan\": {}}]");
    EXPECT_TRUE(a->code.empty());
    // The next answer is the client's again.
    std::string later = kRowDesc + ready('I');
    ASSERT_TRUE(w->from_server(later, down));
    EXPECT_EQ(down, kRowDesc + ready('I'));
}

TEST(EffectWire, InsideABlockAnErrorIsRolledBackToTheSavepoint) {
    auto w = connected('T');
    std::string up, down;
    w->start_probe("VACUUM t\n;\nEXPLAIN DELETE FROM t WHERE id > 0", up);
    EXPECT_EQ(up, query("SAVEPOINT killswitch_check_tok;\nVACUUM t\n;\nEXPLAIN DELETE FROM t "
                        "WHERE id > 0\n;ROLLBACK TO SAVEPOINT killswitch_check_tok;RELEASE "
                        "SAVEPOINT killswitch_check_tok"));
    up.clear();
    std::string answer = tag("SAVEPOINT") +
                         error("25001", "VACUUM cannot run inside a transaction block") +
                         ready('E');
    ASSERT_TRUE(w->from_server(answer, down));
    w->more_up(up);
    EXPECT_EQ(up, query("ROLLBACK TO SAVEPOINT killswitch_check_tok; RELEASE SAVEPOINT "
                        "killswitch_check_tok"));
    EXPECT_FALSE(w->take_probe());
    answer = tag("ROLLBACK") + tag("RELEASE") + ready('T');
    ASSERT_TRUE(w->from_server(answer, down));
    EXPECT_EQ(down, "");
    auto a = w->take_probe();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->code, "25001");
    EXPECT_TRUE(a->results.empty());
    std::string why;
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now) << "still in its block, unharmed";
}

TEST(EffectWire, RowsOfTheClientsOwnStatementsAreNotKept) {
    auto w = connected('I');
    std::string up, down;
    w->start_probe("SELECT g FROM generate_series(1, 100) g\n;\nEXPLAIN DELETE FROM t", up);
    std::string answer = tag("BEGIN") + kRowDesc;
    for (int i = 0; i < 100; ++i) answer += row(std::to_string(i));
    answer +=
        tag("SELECT 100") + kRowDesc + row("plan") + tag("EXPLAIN") + tag("ROLLBACK") + ready('I');
    ASSERT_TRUE(w->from_server(answer, down));
    auto a = w->take_probe();
    ASSERT_TRUE(a);
    ASSERT_EQ(a->results.size(), 3u);
    EXPECT_LE(a->results[0].rows.size(), 8u);
    EXPECT_EQ(a->results[0].tag, "SELECT 100");
    ASSERT_EQ(a->results[1].rows.size(), 1u);
    EXPECT_EQ(a->results[1].rows[0][0], "plan");
    EXPECT_EQ(down, "");
}

TEST(EffectWire, CopyFromStdinInAProbeIsFailedNotWaitedFor) {
    auto w = connected('I');
    std::string up, down;
    w->start_probe("COPY t FROM STDIN\n;\nEXPLAIN DELETE FROM t WHERE id > 0", up);
    up.clear();
    std::string answer = tag("BEGIN") + msg('G', std::string(3, '\0'));
    ASSERT_TRUE(w->from_server(answer, down));
    w->more_up(up);
    ASSERT_FALSE(up.empty());
    EXPECT_EQ(up[0], 'f') << "CopyFail";
}

// ---------------------------------------------------------------- the
// extended protocol: a Parse judged with the values its Bind gives it

TEST(EffectExtended, TheBindsValuesTakeThePlaceOfTheParameters) {
    using V = std::vector<std::optional<std::string>>;
    EXPECT_EQ(db::bind_postgres_params("DELETE FROM t WHERE id > $1", V{"0"}),
              "DELETE FROM t WHERE id > E'0'");
    // Every $n where the parser has one, not in a string or a comment; a
    // quote and a backslash escaped; NULL as NULL.
    EXPECT_EQ(db::bind_postgres_params(
                  "UPDATE t SET v = $2 /* $1 */ WHERE a = '$1' AND b = $1 AND c = $10 OR d = $3",
                  V{"it's", "a\\b", std::nullopt, "", "", "", "", "", "", "ten"}),
              "UPDATE t SET v = E'a\\\\b' /* $1 */ WHERE a = '$1' AND b = E'it''s' AND c = "
              "E'ten' OR d = NULL");
    EXPECT_EQ(db::bind_postgres_params("DELETE FROM t WHERE id > $2", V{"0"}), std::nullopt)
        << "a parameter without a value";
    EXPECT_EQ(db::bind_postgres_params("DELETE FROM", V{}), std::nullopt);
}

TEST(EffectExtended, AParseWithItsBindIsAskedAboutWithItsValues) {
    auto p = compiled();
    auto parse = [&](std::string_view sql, bool bound,
                     std::vector<std::optional<std::string>> params) {
        RelayedRequest r = pg(sql, 'P');
        r.bound = bound;
        r.params = std::move(params);
        return effect_probe(r, classify_relayed(r, {}), p.policy);
    };
    auto e = parse("DELETE FROM t WHERE id > $1", true, {"0"});
    EXPECT_TRUE(e.cannot.empty());
    EXPECT_EQ(e.sql.rfind("EXPLAIN (VERBOSE, FORMAT JSON) DELETE FROM t WHERE id > E'0'\n;\n", 0),
              0u)
        << e.sql;
    auto alone = parse("DELETE FROM t WHERE id > $1", false, {});
    EXPECT_TRUE(alone.sql.empty() && alone.cannot.empty())
        << "no Bind with it: nothing asked of the Parse, each of its Binds is";
    EXPECT_FALSE(parse("DELETE FROM t WHERE id > $1", true, {}).cannot.empty())
        << "a Bind without the value";
    // What the server says is applied as for a simple query.
    RelayedRequest b = pg("DELETE FROM t WHERE id > $1", 'B');
    b.bound = true;
    b.params = {"0"};
    auto c = classify_relayed(b, {});
    apply_effect_probe(c, answer("Delete", 1000, 1000), p.policy);
    auto ruling = rule_relayed(c, "", p);
    EXPECT_TRUE(ruling.refuse);
    EXPECT_EQ(ruling.rule, "db:delete-all");
}

TEST(EffectExtended, TheWireReadsTheBindThatCameWithTheParse) {
    auto w = connected('I');
    std::vector<relay::Request> seen;
    relay::Judge judge = [&](const relay::Request& r) {
        seen.push_back({r.type, {}, r.bound, r.params});
        return relay::Verdict{};
    };
    auto parse = [](const std::string& name, const std::string& sql) {
        return msg('P',
                   name + std::string(1, '\0') + sql + std::string(1, '\0') + std::string(2, '\0'));
    };
    // Bind: portal, statement, formats, values (one text "0", one NULL), result formats.
    auto bind = [](const std::string& stmt, uint16_t format) {
        std::string b = std::string(1, '\0') + stmt + std::string(1, '\0');
        b += std::string("\0\1", 2) + static_cast<char>(0) + static_cast<char>(format);
        b += std::string("\0\2", 2) + be32(1) + "0" + be32(0xffffffffu);
        b += std::string(2, '\0');
        return msg('B', b);
    };
    std::string up, down;
    std::string in = parse("", "DELETE FROM t WHERE id > $1 OR v = $2") + bind("", 0) +
                     msg('E', std::string(5, '\0')) + msg('S', "");
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_TRUE(seen[0].bound);
    EXPECT_EQ(seen[0].params, (std::vector<std::optional<std::string>>{"0", std::nullopt}));
    EXPECT_EQ(in, "") << "all of it went on";

    // A Bind on its way is waited for; one in binary format, or for another
    // statement, gives no values.
    seen.clear();
    std::string b = bind("s1", 0);
    in = parse("s1", "DELETE FROM t WHERE id > $1") + b.substr(0, 7);
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_TRUE(seen.empty()) << "the Parse waits for its Bind";
    in += b.substr(7);
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_TRUE(seen[0].bound);
    in = parse("s2", "DELETE FROM t WHERE id > $1") + bind("s2", 1);
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_FALSE(seen.back().bound) << "binary format";
    in = parse("s3", "DELETE FROM t WHERE id > $1") + bind("other", 0);
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_FALSE(seen.back().bound) << "another statement's Bind";
    in = parse("s4", "DELETE FROM t WHERE id > $1") + msg('S', "");
    ASSERT_TRUE(w->from_client(in, up, down, judge));
    EXPECT_FALSE(seen.back().bound) << "no Bind with it";
}

TEST(EffectExtended, AParseInTheMiddleOfABatchIsNotAskedAbout) {
    // Parse, Bind, Execute of one statement, then the DELETE's Parse before
    // their Sync: the server owes nothing only after that Sync, which waits
    // behind the DELETE. No probe then (judged by its text), and no wait.
    auto w = connected('I');
    std::string up, down, why;
    relay::Judge pass = [](const relay::Request&) { return relay::Verdict{}; };
    std::string in = msg('P', std::string(1, '\0') + "SELECT 1" + std::string(3, '\0')) +
                     msg('B', std::string(8, '\0')) + msg('E', std::string(5, '\0'));
    ASSERT_TRUE(w->from_client(in, up, down, pass));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Never);
    EXPECT_NE(why.find("extended-query batch"), std::string::npos) << why;
    in = msg('S', "");
    ASSERT_TRUE(w->from_client(in, up, down, pass));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::NotYet) << "its answers are owed";
    std::string answers = msg('1', "") + msg('2', "") + kRowDesc + kRow + kDone + ready('I');
    ASSERT_TRUE(w->from_server(answers, down));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now);
}

// ---------------------------------------------------------------- every
// Bind of a prepared statement that can DELETE or UPDATE, in text or binary

TEST(PgBinaryValues, TheCommonTypesReadBackAsTheirText) {
    auto b = [](std::initializer_list<int> bytes) {
        std::string s;
        for (int x : bytes) s += static_cast<char>(x);
        return s;
    };
    using relay::pg_binary_text;
    EXPECT_EQ(pg_binary_text(23, be32(0)), "0");
    EXPECT_EQ(pg_binary_text(23, be32(0xfffffffeu)), "-2");
    EXPECT_EQ(pg_binary_text(21, b({0x80, 0x00})), "-32768");
    EXPECT_EQ(pg_binary_text(20, be32(1) + be32(0)), "4294967296");
    EXPECT_EQ(pg_binary_text(26, be32(4000000000u)), "4000000000");
    EXPECT_EQ(pg_binary_text(16, b({1})), "t");
    EXPECT_EQ(pg_binary_text(701, b({0x3f, 0xf8, 0, 0, 0, 0, 0, 0})), "1.5");
    EXPECT_EQ(pg_binary_text(700, b({0xc0, 0x20, 0, 0})), "-2.5");
    EXPECT_EQ(pg_binary_text(701, b({0x7f, 0xf0, 0, 0, 0, 0, 0, 0})), "Infinity");
    // numeric 12345.678: 3 digits (1, 2345, 6780), weight 1, positive, dscale 3.
    EXPECT_EQ(pg_binary_text(1700, b({0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c})),
              "12345.678");
    // -0.05: one digit 500 at weight -1, negative, dscale 2.
    EXPECT_EQ(pg_binary_text(1700, b({0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0x01, 0xf4})), "-0.05");
    EXPECT_EQ(pg_binary_text(1700, b({0, 0, 0, 0, 0, 0, 0, 0})), "0");
    EXPECT_EQ(pg_binary_text(25, "it's"), "it's");
    EXPECT_EQ(pg_binary_text(3802, "\1{\"a\": 1}"), "{\"a\": 1}");
    EXPECT_EQ(pg_binary_text(17, b({0, 0xff})), "\\x00ff");
    EXPECT_EQ(pg_binary_text(2950, b({0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23,
                                      0x45, 0x67, 0x89, 0xab, 0xcd, 0xef})),
              "12345678-9abc-def0-0123-456789abcdef");
    EXPECT_EQ(pg_binary_text(1082, be32(0)), "2000-01-01");
    EXPECT_EQ(pg_binary_text(1082, be32(8840)), "2024-03-15");
    EXPECT_EQ(pg_binary_text(1082, be32(0xffffffffu)), "1999-12-31");
    // 2024-03-15 12:30:45.000001 = 8840 days and 45045.000001 s after 2000-01-01.
    uint64_t us = 8840ull * 86400000000ull + 45045000001ull;
    std::string ts = be32(static_cast<uint32_t>(us >> 32)) + be32(static_cast<uint32_t>(us));
    EXPECT_EQ(pg_binary_text(1114, ts), "2024-03-15 12:30:45.000001");
    EXPECT_EQ(pg_binary_text(1184, ts), "2024-03-15 12:30:45.000001+00");
    EXPECT_EQ(pg_binary_text(600, std::string(16, '\0')), std::nullopt) << "point: not read";
    EXPECT_EQ(pg_binary_text(23, b({0, 0})), std::nullopt) << "not an int4";
    EXPECT_EQ(pg_binary_text(25, b({'a', 0})), std::nullopt) << "a NUL in text";
}

// The extended protocol as asyncpg, pgjdbc or psycopg speak it: a statement
// parsed once, bound many times, values in binary.
class BindsJudged : public ::testing::Test {
  protected:
    static std::string parse(const std::string& name, const std::string& sql,
                             std::vector<uint32_t> types = {}) {
        std::string b = name + std::string(1, '\0') + sql + std::string(1, '\0');
        b += static_cast<char>(types.size() >> 8);
        b += static_cast<char>(types.size() & 0xff);
        for (uint32_t t : types) b += be32(t);
        return msg('P', b);
    }
    // One int4 value in binary (format 1), or in text (format 0).
    static std::string bind(const std::string& stmt, int32_t v, bool binary = true,
                            const std::string& portal = "") {
        std::string b = portal + std::string(1, '\0') + stmt + std::string(1, '\0');
        b += std::string("\0\1\0", 3) + static_cast<char>(binary ? 1 : 0);
        std::string value = binary ? be32(static_cast<uint32_t>(v)) : std::to_string(v);
        b += std::string("\0\1", 2) + be32(static_cast<uint32_t>(value.size())) + value;
        b += std::string(2, '\0');
        return msg('B', b);
    }
    static std::string describe(const std::string& stmt) {
        return msg('D', "S" + stmt + std::string(1, '\0'));
    }
    static std::string close(const std::string& stmt) {
        return msg('C', "S" + stmt + std::string(1, '\0'));
    }
    static std::string execute() { return msg('E', std::string(5, '\0')); }
    static std::string sync() { return msg('S', ""); }
    static std::string param_types(std::vector<uint32_t> types) {
        std::string b;
        b += static_cast<char>(types.size() >> 8);
        b += static_cast<char>(types.size() & 0xff);
        for (uint32_t t : types) b += be32(t);
        return msg('t', b);
    }

    void SetUp() override { w = connected('I'); }

    // The client's bytes through the wire; what the judge saw.
    void client(std::string in) {
        ASSERT_TRUE(w->from_client(in, up, down, judge)) << w->error();
        EXPECT_EQ(in, "") << "all of it went on";
    }
    void server(std::string in) { ASSERT_TRUE(w->from_server(in, down)) << w->error(); }
    // The server's answers to a prepare (Parse, Describe, Sync) of one int4 parameter.
    void prepared() { server(msg('1', "") + param_types({23}) + msg('n', "") + ready('I')); }

    std::unique_ptr<relay::Wire> w;
    std::string up, down;
    std::vector<relay::Request> seen;
    std::vector<std::string> texts;
    std::vector<relay::Wire::CheckReady> could_ask;  // when each was judged
    bool refuse_binds = false;
    relay::Judge judge = [this](const relay::Request& r) {
        seen.push_back({r.type, {}, r.bound, r.params, r.unread});
        texts.emplace_back(r.text);
        std::string why;
        could_ask.push_back(w->can_check(why));
        relay::Verdict v;
        if (r.type == 'B' && refuse_binds) {
            v.refuse = true;
            v.message = "killswitch: refused DELETE whose WHERE reaches 100 of 100 rows.\n";
        }
        return v;
    };
};

TEST_F(BindsJudged, EachBindOfAPreparedDeleteIsJudgedWithItsBinaryValues) {
    client(parse("s1", "DELETE FROM t WHERE id > $1") + describe("s1") + sync());
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].type, 'P');
    EXPECT_FALSE(seen[0].bound) << "no Bind with it: its Binds are judged";
    prepared();
    // Bound twice later, the second time reaching every row.
    for (int32_t v : {1000, 0}) {
        client(bind("s1", v) + execute() + sync());
        ASSERT_EQ(seen.back().type, 'B');
        EXPECT_EQ(texts.back(), "DELETE FROM t WHERE id > $1");
        EXPECT_TRUE(seen.back().bound) << seen.back().unread;
        EXPECT_EQ(seen.back().params, (std::vector<std::optional<std::string>>{std::to_string(v)}));
        server(msg('2', "") + msg('C', std::string("DELETE 0") + '\0') + ready('I'));
    }
    EXPECT_EQ(seen.size(), 3u);
    // Statements that cannot delete or update are not followed: their Binds
    // pass unjudged.
    client(parse("s2", "SELECT * FROM t WHERE id = $1") + describe("s2") + sync());
    prepared();
    size_t before = seen.size();
    client(bind("s2", 5) + execute() + sync());
    EXPECT_EQ(seen.size(), before);
    // Closed (the server said CloseComplete): s1 is a name for nothing.
    client(close("s1") + sync());
    server(msg('3', "") + ready('I'));
    client(bind("s1", 0) + execute() + sync());
    EXPECT_EQ(seen.size(), before) << "a Bind of a closed statement: the server refuses it";
}

TEST_F(BindsJudged, ARefusedBindNeverReachesTheServerAndTheClientReadsWhy) {
    client(parse("s1", "DELETE FROM t WHERE id > $1") + describe("s1") + sync());
    prepared();
    refuse_binds = true;
    up.clear();
    std::string b = bind("s1", 0);
    client(b + execute() + sync());
    EXPECT_EQ(up.find(b), std::string::npos) << "the client's Bind went on";
    EXPECT_NE(up.find("killswitch_refused_tok"), std::string::npos) << "no stand-in";
    EXPECT_EQ(up.substr(up.size() - 15), execute() + sync()) << "the rest of the batch goes on";
    down.clear();
    server(error("26000", "prepared statement \"killswitch_refused_tok\" does not exist") +
           ready('I'));
    EXPECT_NE(down.find("42501"), std::string::npos);
    EXPECT_NE(down.find("reaches 100 of 100 rows"), std::string::npos) << down;
    EXPECT_EQ(down.find("killswitch_refused_tok"), std::string::npos);
    EXPECT_EQ(w->pending(), 0u);
}

TEST_F(BindsJudged, ValuesThatCannotBeReadAreSaidSo) {
    client(parse("s1", "UPDATE t SET p = $1 WHERE id > $2") + describe("s1") + sync());
    server(msg('1', "") + param_types({600, 23}) + msg('n', "") + ready('I'));
    std::string body = std::string(1, '\0') + "s1" + std::string(1, '\0');
    body += std::string("\0\1\0\1", 4);  // every value binary
    body += std::string("\0\2", 2) + be32(16) + std::string(16, '\0') + be32(4) + be32(0);
    body += std::string(2, '\0');
    client(msg('B', body) + execute() + sync());
    ASSERT_EQ(seen.back().type, 'B');
    EXPECT_FALSE(seen.back().bound);
    EXPECT_NE(seen.back().unread.find("$1 is in binary format of a type (OID 600)"),
              std::string::npos)
        << seen.back().unread;
    // The daemon's side: such a Bind of a statement that may reach every row
    // is refused, not guessed.
    auto p = compiled();
    RelayedRequest r = pg("UPDATE t SET p = $1 WHERE id > $2", 'B');
    r.unread = seen.back().unread;
    auto c = classify_relayed(r, {});
    auto e = effect_probe(r, c, p.policy);
    EXPECT_TRUE(e.sql.empty());
    EXPECT_NE(e.cannot.find("OID 600"), std::string::npos) << e.cannot;
}

TEST_F(BindsJudged, TheBindThatCameWithItsParseIsNotJudgedAgainALaterOneIs) {
    client(parse("", "DELETE FROM t WHERE id = $1", {23}) + bind("", 7) + execute() + bind("", 0) +
           execute() + sync());
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].type, 'P');
    EXPECT_TRUE(seen[0].bound) << "its declared type reads the binary value";
    EXPECT_EQ(seen[0].params, (std::vector<std::optional<std::string>>{"7"}));
    EXPECT_EQ(seen[1].type, 'B');
    EXPECT_EQ(seen[1].params, (std::vector<std::optional<std::string>>{"0"}));
    EXPECT_EQ(could_ask[0], relay::Wire::CheckReady::Now);
    EXPECT_EQ(could_ask[1], relay::Wire::CheckReady::Never)
        << "the second Bind comes in the middle of the batch: not asked about";
}

TEST_F(BindsJudged, AParseTheServerRefusedDoesNotTakeTheNameOfTheOneItHas) {
    client(parse("s1", "DELETE FROM t WHERE id > $1") + describe("s1") + sync());
    prepared();
    // Parsed again under the same name: the server says 42P05 and keeps the DELETE.
    client(parse("s1", "SELECT $1::int") + sync());
    server(error("42P05", "prepared statement \"s1\" already exists") + ready('I'));
    client(bind("s1", 0) + execute() + sync());
    EXPECT_EQ(seen.back().type, 'B');
    EXPECT_EQ(texts.back(), "DELETE FROM t WHERE id > $1");
    // A Close the server skipped (after an error in its batch) closes nothing.
    server(msg('2', "") + msg('C', std::string("DELETE 0") + '\0') + ready('I'));
    client(msg('Q', std::string("SELECT 1/0") + '\0'));
    size_t before = seen.size();
    client(parse("", "SELECT 1/0") + msg('B', std::string(8, '\0')) + execute() + close("s1") +
           sync());
    server(msg('1', "") + error("22012", "division by zero") + ready('I'));
    client(bind("s1", 0) + execute() + sync());
    EXPECT_GT(seen.size(), before + 1);
    EXPECT_EQ(seen.back().type, 'B') << "s1 is still the DELETE";
}

TEST_F(BindsJudged, APrepareWithoutItsSyncIsEndedByTheRelaysOwnWhoseAnswerTheClientNeverSees) {
    // asyncpg prepares with Parse, Describe and Flush, and binds after: the
    // batch is open, but nothing ran in it.
    client(parse("s1", "DELETE FROM t WHERE id > $1") + describe("s1") + msg('H', ""));
    down.clear();
    server(msg('1', "") + param_types({23}) + msg('n', ""));
    EXPECT_EQ(down, msg('1', "") + param_types({23}) + msg('n', ""));
    std::string why, more;
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::NotYet);
    w->more_up(more);
    EXPECT_EQ(more, sync()) << "the relay ends the batch itself";
    down.clear();
    server(ready('I'));
    EXPECT_EQ(down, "") << "the ReadyForQuery of the relay's Sync reached the client";
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Now);
    // Once a Bind or Execute is in the batch, never.
    client(bind("s1", 1000) + execute() + msg('H', ""));
    EXPECT_EQ(w->can_check(why), relay::Wire::CheckReady::Never);
}

TEST_F(BindsJudged, TheRelaysOwnQueryEndsTheUnnamedStatementWhichIsParsedAgain) {
    client(parse("", "DELETE FROM t WHERE id > $1") + describe("") + sync());
    prepared();
    std::string probe_up;
    w->start_probe("EXPLAIN (FORMAT JSON) DELETE FROM t WHERE id > E'0'", probe_up);
    server(msg('C', std::string("BEGIN") + '\0') + msg('T', std::string(2, '\0')) + row("[]") +
           msg('C', std::string("EXPLAIN") + '\0') + msg('C', std::string("ROLLBACK") + '\0') +
           ready('I'));
    ASSERT_TRUE(w->take_probe());
    up.clear();
    std::string b = bind("", 5);
    client(b + execute() + sync());
    ASSERT_EQ(up.rfind(parse("", "DELETE FROM t WHERE id > $1", {23}), 0), 0u)
        << "parsed again first, with the types the server described";
    EXPECT_NE(up.find(b), std::string::npos);
    down.clear();
    server(msg('1', "") + msg('2', "") + msg('C', std::string("DELETE 1") + '\0') + ready('I'));
    EXPECT_EQ(down.rfind(msg('2', ""), 0), 0u) << "the relay's ParseComplete reached the client";
}

}  // namespace
}  // namespace ks
