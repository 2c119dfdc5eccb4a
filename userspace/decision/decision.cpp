#include "decision/decision.h"

#include <array>
#include <utility>

namespace ks {

static_assert(KS_ACT_AUDIT == 0 && KS_ACT_HOLD == 5, "Action's values are the ABI's");

namespace {

constexpr std::array<std::pair<Action, std::string_view>, 6> kActionNames = {{
    {Action::Audit, "audit"},
    {Action::Block, "block"},
    {Action::Kill, "kill"},
    {Action::Freeze, "freeze"},
    {Action::KillSession, "kill-session"},
    {Action::Hold, "hold"},
}};

constexpr std::array<std::pair<SessionAction, std::string_view>, 3> kSessionActionNames = {{
    {SessionAction::None, "none"},
    {SessionAction::Freeze, "freeze"},
    {SessionAction::KillSession, "kill-session"},
}};

constexpr std::array<std::pair<Verdict, std::string_view>, 17> kVerdictNames = {{
    {Verdict::Allow, "allow"},
    {Verdict::Allowed, "allowed"},
    {Verdict::Deferred, "deferred"},
    {Verdict::Audit, "audit"},
    {Verdict::Block, "block"},
    {Verdict::Kill, "kill"},
    {Verdict::Freeze, "freeze"},
    {Verdict::KillSession, "kill-session"},
    {Verdict::Hold, "hold"},
    {Verdict::Refused, "refused"},
    {Verdict::WouldAudit, "would-audit"},
    {Verdict::WouldBlock, "would-block"},
    {Verdict::WouldKill, "would-kill"},
    {Verdict::WouldFreeze, "would-freeze"},
    {Verdict::WouldKillSession, "would-kill-session"},
    {Verdict::WouldHold, "would-hold"},
    {Verdict::WouldRefuse, "would-refuse"},
}};

// The verdict of each action, carried out and only recorded (monitor mode),
// indexed by Action.
struct ActionVerdicts {
    Verdict carried_out, monitored;
};
constexpr std::array<ActionVerdicts, 6> kActionVerdicts = {{
    {Verdict::Audit, Verdict::WouldAudit},
    {Verdict::Block, Verdict::WouldBlock},
    {Verdict::Kill, Verdict::WouldKill},
    {Verdict::Freeze, Verdict::WouldFreeze},
    {Verdict::KillSession, Verdict::WouldKillSession},
    {Verdict::Hold, Verdict::WouldHold},
}};

// Every enumerator has its row, in order: a name table that falls behind its
// enum fails to compile.
template <typename Table>
constexpr bool in_order(const Table& t) {
    for (size_t i = 0; i < t.size(); ++i)
        if (static_cast<size_t>(t[i].first) != i) return false;
    return true;
}
static_assert(in_order(kActionNames));
static_assert(in_order(kSessionActionNames));
static_assert(in_order(kVerdictNames));
static_assert(static_cast<size_t>(Verdict::WouldRefuse) + 1 == kVerdictNames.size());

template <typename Table, typename E>
std::string_view name_of(const Table& t, E e) {
    auto i = static_cast<size_t>(e);
    return i < t.size() ? t[i].second : std::string_view("unknown");
}

template <typename E, typename Table>
std::optional<E> parse_name(const Table& t, std::string_view name) {
    for (const auto& [e, n] : t)
        if (n == name) return e;
    return std::nullopt;
}

}  // namespace

std::optional<Action> action_from_abi(uint32_t value) {
    if (value < kActionNames.size()) return kActionNames[value].first;
    return std::nullopt;
}
std::string_view action_name(Action a) { return name_of(kActionNames, a); }
std::optional<Action> parse_action(std::string_view name) {
    return parse_name<Action>(kActionNames, name);
}
std::string action_names() {
    std::string out;
    for (const auto& [a, n] : kActionNames) out += (out.empty() ? "" : ", ") + std::string(n);
    return out;
}

std::string session_action_names() {
    std::string out;
    for (size_t i = 0; i < kSessionActionNames.size(); ++i)
        out += (i == 0                                ? "'"
                : i + 1 == kSessionActionNames.size() ? " or '"
                                                      : ", '") +
               std::string(kSessionActionNames[i].second) + "'";
    return out;
}

std::string_view session_action_name(SessionAction a) { return name_of(kSessionActionNames, a); }
std::optional<SessionAction> parse_session_action(std::string_view name) {
    return parse_name<SessionAction>(kSessionActionNames, name);
}
std::string_view verdict_name(Verdict v) { return name_of(kVerdictNames, v); }

Verdict verdict_for(Action a) { return kActionVerdicts[static_cast<size_t>(a)].carried_out; }

Verdict would(Action a) { return kActionVerdicts[static_cast<size_t>(a)].monitored; }

bool is_monitor_verdict(Verdict v) { return v >= Verdict::WouldAudit; }

std::string refusals_text(const EscalationFacts& e) {
    return std::to_string(e.refusals) + " refused operation" + (e.refusals == 1 ? "" : "s");
}

bool freezes_session(const Decision& d) {
    return d.session == SessionAction::Freeze ||
           (d.session == SessionAction::None && d.follow_up == SessionAction::Freeze);
}

bool tells_offender(const Decision& d) {
    if (!d.record || d.monitor || d.quiet) return false;
    switch (d.verdict) {
        case Verdict::Block:
        case Verdict::Kill:
        case Verdict::Freeze:
        case Verdict::KillSession:
        case Verdict::Hold:
        case Verdict::Refused:
            return true;
        default:
            return false;
    }
}

std::string refusal_message(const Decision& d, const Subject& s, uint64_t hold_id,
                            int hold_timeout_s) {
    std::string what = d.what.empty() ? std::string("this operation") : d.what;
    std::string msg = "killswitch: ";
    msg += d.verdict == Verdict::Hold ? "held " : d.prevented ? "refused " : "stopped ";
    msg += what;
    msg += ": ";
    msg += d.reason.empty() ? "it is destructive to protected data" : d.reason;
    msg += " (rule " + d.rule + ").\n";
    std::string session = s.session.empty() ? "this session" : "session " + s.session;
    switch (d.verdict) {
        case Verdict::Hold:
            msg += "killswitch: this process waits until a person decides: killswitch approve " +
                   std::to_string(hold_id) + " (or deny " + std::to_string(hold_id) +
                   "); denied after " + std::to_string(hold_timeout_s) + "s.\n";
            break;
        case Verdict::Kill:
        case Verdict::Block:
            if (!d.prevented)
                msg += "killswitch: the call had started; the process was killed as it returned.\n";
            else if (d.task == TaskStep::Refuse)
                msg += "killswitch: it did not happen; the process exits with status " +
                       std::to_string(kRefusedExitStatus) + ".\n";
            else if (d.task == TaskStep::Kill || d.verdict == Verdict::Kill)
                msg += "killswitch: the process was killed before it could do it.\n";
            break;
        case Verdict::Freeze:
            msg += "killswitch: " + session + " is frozen until a person thaws it";
            if (d.freeze_terms && d.freeze_terms->timeout_s > 0)
                msg += " (after " + std::to_string(d.freeze_terms->timeout_s) + "s it is " +
                       (d.freeze_terms->end == "thaw" ? "thawed" : "killed") + ")";
            msg += ".\n";
            break;
        case Verdict::KillSession:
            msg += "killswitch: every process of " + session + " was killed.\n";
            break;
        default:
            break;
    }
    if (d.escalation && d.escalation->contained)
        msg += "killswitch: this kernel could only stop it after the call, so " + session +
               " does not go on (policy sessions.on_contained).\n";
    else if (d.escalation)
        msg += "killswitch: that is " + refusals_text(*d.escalation) + " in " + session +
               " within " + std::to_string(d.escalation->within_s) +
               "s (policy sessions.escalate_after).\n";
    if (d.follow_up == SessionAction::Freeze) {
        std::string name = s.session.empty() ? std::string("NAME") : s.session;
        msg += "killswitch: " + session + " is frozen: a person outside it can thaw it " +
               "(killswitch thaw --session " + name + ") or end it (killswitch kill --session " +
               name + ")";
        if (d.freeze_terms && d.freeze_terms->timeout_s > 0)
            msg += "; after " + std::to_string(d.freeze_terms->timeout_s) + "s it is " +
                   (d.freeze_terms->end == "thaw" ? "thawed" : "killed");
        msg += ".\n";
    } else if (d.follow_up == SessionAction::KillSession) {
        msg += "killswitch: every process of " + session + " is killed.\n";
    }
    if (!d.no_window && d.verdict != Verdict::Hold)
        msg +=
            "killswitch: a person outside the session can allow such operations for a while: "
            "killswitch allow --session " +
            (s.session.empty() ? std::string("NAME") : s.session) + " --for 30m --reason 'why'\n";
    return msg;
}

void DecisionCounters::count(const Decision& d, const ActionResult& r) {
    if (!d.record) return;
    switch (d.verdict) {
        case Verdict::Block:
        case Verdict::Refused:
            ++blocked;
            break;
        case Verdict::Kill:
        case Verdict::KillSession:
            ++killed;
            break;
        case Verdict::Hold:
            ++held;
            break;
        case Verdict::Allowed:
            if (d.window) ++window_allowed;
            break;
        default:
            if (is_monitor_verdict(d.verdict)) ++monitored;
    }
    bool session_frozen =
        (d.session == SessionAction::Freeze || d.follow_up == SessionAction::Freeze) &&
        r.session_acted && r.session_error.empty();
    if (d.verdict == Verdict::Freeze || session_frozen) ++frozen;
}

nlohmann::json DecisionCounters::to_json() const {
    return {{"blocked", blocked},
            {"killed", killed},
            {"frozen", frozen},
            {"held", held},
            {"window_allowed", window_allowed},
            {"monitored", monitored},
            {"tamper", tamper}};
}

}  // namespace ks
