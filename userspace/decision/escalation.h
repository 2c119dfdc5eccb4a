// Escalation: the decide step that looks at a session, not at one record.
// A refused operation fails and the agent goes on; the policy's `sessions:`
// section turns repeated refusals into a session action (freeze or
// kill-session). Pure bookkeeping: the router feeds it each decision, the
// Enforcer carries out what it adds.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>

#include "decision/decision.h"

namespace ks {

// sessions.escalate_after / escalate_within / escalate_to.
struct EscalationRule {
    int after = 0;  // refusals; 0: never
    int within_s = 0;
    SessionAction to = SessionAction::Freeze;
    // An operation that ran before its process was stopped (not prevented).
    SessionAction on_contained = SessionAction::None;
};

// Whether d refused an operation (enforced, not only recorded, not the quiet
// statements of a request already counted).
bool is_refusal(const Decision& d);

// The stronger of two session actions (kill-session > freeze > none).
SessionAction stronger(SessionAction a, SessionAction b);

class Escalation {
  public:
    // Counts d when it is a refusal by session_id; when it is the rule's
    // `after`-th within `within_s` seconds, raises d's follow-up to the
    // rule's session action, fills d.escalation and starts the count again.
    // A refusal that only contained the operation (it ran) raises it to
    // on_contained at once.
    void consider(Decision& d, uint32_t session_id, uint64_t now_ns, const EscalationRule& rule);
    // Refusals of a session still inside the window.
    [[nodiscard]] size_t count(uint32_t session_id, uint64_t now_ns,
                               const EscalationRule& rule) const;
    void forget(uint32_t session_id) { refusals_.erase(session_id); }

  private:
    std::map<uint32_t, std::deque<uint64_t>> refusals_;  // times, oldest first
};

}  // namespace ks
