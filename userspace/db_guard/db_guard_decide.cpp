#include "db_guard/db_guard_decide.h"

namespace ks {

db::Options classify_options(const policy::CompiledPolicy& policy) {
    return {policy.policy.db_bookkeeping_tables};
}

db::Classification classify_libpq(const DbCheckEvent& ev, const db::Options& options) {
    db::Classification c;
    if (ev.truncated)
        c.statements.push_back(
            {ev.query, db::Class::Unparseable,
             "longer than the " + std::to_string(KS_DB_QUERY_MAX) + " bytes read"});
    else
        c = db::classify_postgres_sql(ev.query, options);
    return c;
}

const db::Statement* db_refused_statement(const db::Classification& c,
                                          const policy::CompiledPolicy& policy) {
    const db::Statement* st = c.first_in(policy.db_wire.refuse_classes);
    return st ? st : c.first_of(db::Class::Unparseable);
}

void db_session_part(Decision& d, const policy::Policy& p) {
    switch (p.db_action) {
        case Action::Freeze:
            d.session = SessionAction::Freeze;
            return;
        case Action::KillSession:
            d.session = SessionAction::KillSession;
            return;
        case Action::Kill:
            d.task = TaskStep::Kill;
            break;
        case Action::Audit:
        case Action::Block:
        case Action::Hold:
            break;
    }
    d.follow_up = p.db_session_action;
}

Decision decide_libpq(const DbCheckEvent& ev, const db::Classification& c,
                      const policy::CompiledPolicy& policy) {
    const policy::Policy& p = policy.policy;
    const db::Statement* refused = db_refused_statement(c, policy);
    db::Class verdict = refused ? refused->cls : c.verdict();
    Decision d;
    d.rule = "db:" + std::string(db::class_name(verdict));
    d.what = ev.query.size() > 200 ? ev.query.substr(0, 200) + "..." : ev.query;
    if (const db::Statement* st = refused ? refused : c.first_of(verdict)) d.reason = st->detail;
    if (!refused) {
        // Held only because a keyword appeared (in a string, a column name...),
        // or of a class the policy passes (databases.refuse): a destructive one
        // is recorded as what the action would have been.
        d.verdict = Verdict::Allow;
        if (db::is_destructive(verdict)) {
            d.verdict = would(p.db_action);
            d.action = p.db_action;
            d.monitor = true;
        }
        if (!ev.monitor && !ev.windowed) d.task = TaskStep::Release;
        return d;
    }
    // Destructive, or not readable: never sent unless the policy only
    // audits. A task stopped in a uprobe cannot be made to skip the call:
    // block and kill both end it before it sends.
    d.action = p.db_action;
    if (ev.monitor) {
        d.verdict = would(p.db_action);
        d.monitor = true;
    } else if (ev.windowed) {
        d.verdict = Verdict::Allowed;
        d.window = true;
    } else if (p.db_action == Action::Audit) {
        d.verdict = Verdict::Audit;
        d.task = TaskStep::Release;
    } else {
        d.verdict = verdict_for(p.db_action);
        d.prevented = true;
        if (p.db_action == Action::Hold) {
            // Only the relay holds a request for a person.
            d.verdict = Verdict::Block;
            d.note = "databases.action hold: held over the relay only; refused here";
        }
        // Stopped before libpq sent it: a refused statement ends the client
        // with a failure status (block), or a kill.
        if (p.db_action == Action::Block || p.db_action == Action::Hold) d.task = TaskStep::Refuse;
        if (p.db_action == Action::Kill) d.task = TaskStep::Kill;
        db_session_part(d, p);
    }
    return d;
}

nlohmann::json libpq_facts(const DbCheckEvent& ev, const db::Classification& c) {
    constexpr size_t kStatementMax = 1024;
    nlohmann::json f;
    f["db"] = "postgres";
    f["op"] = "query";
    f["statement"] =
        ev.query.size() > kStatementMax ? ev.query.substr(0, kStatementMax) + "..." : ev.query;
    f["class"] = db::class_name(c.verdict());
    f["layer"] = layer_name(KS_LAYER_UPROBE);
    return f;
}

}  // namespace ks
