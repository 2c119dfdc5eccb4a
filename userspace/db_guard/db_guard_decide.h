// What happens to a statement a guarded libpq client is about to send: the
// libpq uprobes (bpf/db_guard.bpf.c) stop the task when a statement holds a
// keyword; the full parser's reading decides. Pure; carried out by the
// Enforcer.
#pragma once

#include "abi/decode.h"
#include "db_guard/classify.h"
#include "decision/decision.h"
#include "nlohmann/json.hpp"
#include "policy/compile.h"

namespace ks {

// What the policy tells the classifiers (databases.bookkeeping_tables).
db::Options classify_options(const policy::CompiledPolicy& policy);

// The parser's reading of a held statement (a statement cut at the kernel's
// read limit is never harmless).
db::Classification classify_libpq(const DbCheckEvent& ev, const db::Options& options);

// The statement the policy objects to: the first of a class it refuses
// (databases.refuse), else the first that cannot be read; null if none.
const db::Statement* db_refused_statement(const db::Classification& c,
                                          const policy::CompiledPolicy& policy);

Decision decide_libpq(const DbCheckEvent& ev, const db::Classification& c,
                      const policy::CompiledPolicy& policy);

// The record's own fields (db, op, statement, class, layer).
nlohmann::json libpq_facts(const DbCheckEvent& ev, const db::Classification& c);

// The session's part of a database action that was carried out: freeze and
// kill-session act on the session; the others are followed by
// databases.session. Kill also kills the task.
void db_session_part(Decision& d, const policy::Policy& p);

}  // namespace ks
