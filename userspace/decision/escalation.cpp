#include "decision/escalation.h"

namespace ks {

namespace {

int rank(SessionAction a) {
    switch (a) {
        case SessionAction::None:
            return 0;
        case SessionAction::Freeze:
            return 1;
        case SessionAction::KillSession:
            return 2;
    }
    return 0;
}

constexpr uint64_t kNsPerSec = 1'000'000'000ull;

void drop_old(std::deque<uint64_t>& times, uint64_t now_ns, int within_s) {
    uint64_t span = static_cast<uint64_t>(within_s) * kNsPerSec;
    while (!times.empty() && now_ns - times.front() >= span) times.pop_front();
}

}  // namespace

bool is_refusal(const Decision& d) {
    if (!d.record || d.quiet || d.monitor || d.window) return false;
    switch (d.verdict) {
        case Verdict::Block:
        case Verdict::Kill:
        case Verdict::Refused:
        case Verdict::Freeze:
        case Verdict::KillSession:
            return true;
        default:
            return false;
    }
}

SessionAction stronger(SessionAction a, SessionAction b) { return rank(a) >= rank(b) ? a : b; }

void Escalation::consider(Decision& d, uint32_t session_id, uint64_t now_ns,
                          const EscalationRule& rule) {
    if (session_id == 0 || !is_refusal(d)) return;
    if (!d.prevented && d.session == SessionAction::None &&
        stronger(d.follow_up, rule.on_contained) != d.follow_up) {
        d.follow_up = rule.on_contained;
        d.escalation = EscalationFacts{0, 0, true};
    }
    if (rule.after <= 0) return;
    auto& times = refusals_[session_id];
    drop_old(times, now_ns, rule.within_s);
    times.push_back(now_ns);
    if (times.size() < static_cast<size_t>(rule.after)) return;
    int refusals = static_cast<int>(times.size());
    times.clear();
    // A session the decision already freezes or kills itself needs no more.
    if (d.session != SessionAction::None || (d.escalation && d.escalation->contained)) return;
    SessionAction to = stronger(d.follow_up, rule.to);
    if (to == d.follow_up) return;
    d.follow_up = to;
    d.escalation = EscalationFacts{refusals, rule.within_s};
}

size_t Escalation::count(uint32_t session_id, uint64_t now_ns, const EscalationRule& rule) const {
    auto it = refusals_.find(session_id);
    if (it == refusals_.end()) return 0;
    std::deque<uint64_t> times = it->second;
    drop_old(times, now_ns, rule.within_s);
    return times.size();
}

}  // namespace ks
