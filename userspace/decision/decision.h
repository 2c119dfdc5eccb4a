// The decision pipeline's vocabulary, one type per step:
//
//   decode (abi/)  ->  enrich: Subject  ->  decide_<capability>(...) -> Decision
//                  ->  Enforcer::apply(Decision, Subject) -> ActionResult   (actions/)
//                  ->  render(event, Subject, facts, Decision, ActionResult) (audit/)
//
// Action is what a rule asks for (the policy's word, and the kernel's: the
// ABI's KS_ACT_* values are the same numbers); Verdict is what was decided
// about one record. Each has one name table (decision.cpp).
#pragma once

#include <killswitch/abi/events.h>

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ks {

// What happens to a guarded process that tries a destructive operation.
//   audit         record only
//   block         prevent it (the task is killed before the call; where the
//                 kernel can only contain it, killed at once)
//   kill          kill the process
//   freeze        stop the task and freeze its whole session
//   kill-session  kill every process of the session
//   hold          stop the task until `killswitch approve|deny ID` or the timeout
enum class Action : uint32_t {
    Audit = KS_ACT_AUDIT,
    Block = KS_ACT_BLOCK,
    Kill = KS_ACT_KILL,
    Freeze = KS_ACT_FREEZE,
    KillSession = KS_ACT_KILL_SESSION,
    Hold = KS_ACT_HOLD,
};
inline constexpr uint32_t to_abi(Action a) { return static_cast<uint32_t>(a); }
// An action the kernel wrote into a record; nullopt for a value it has no name for.
std::optional<Action> action_from_abi(uint32_t value);
std::string_view action_name(Action a);
std::optional<Action> parse_action(std::string_view name);
// "audit, block, kill, freeze, kill-session, hold": for messages.
std::string action_names();

// What else happens to the session after a block or kill.
enum class SessionAction { None, Freeze, KillSession };
std::string_view session_action_name(SessionAction a);
std::optional<SessionAction> parse_session_action(std::string_view name);
// "'none', 'freeze' or 'kill-session'": for messages.
std::string session_action_names();

// What was decided about one record (the audit record's "verdict").
enum class Verdict {
    Allow,     // nothing destructive, or a person approved it
    Allowed,   // destructive, let through by the session's maintenance window
    Deferred,  // exec layer in a window: not held; later layers judge its calls
    Audit,     // recorded only
    Block,
    Kill,
    Freeze,
    KillSession,
    Hold,
    Refused,     // the kernel refused a database request on the socket path
    WouldAudit,  // monitor mode: what the rule's action would have been
    WouldBlock,
    WouldKill,
    WouldFreeze,
    WouldKillSession,
    WouldHold,
    WouldRefuse,  // socket path, monitor mode or an allowing policy
};
std::string_view verdict_name(Verdict v);
// The verdict of carrying out a, and of only recording that it would have been.
Verdict verdict_for(Action a);
Verdict would(Action a);
bool is_monitor_verdict(Verdict v);

// What the daemon does to the subject task, which the kernel stopped (exec
// layer, libpq uprobes, holds) or already signalled. Refuse: a program
// stopped at exec (before its first instruction) or at a libpq uprobe
// (before the statement left) exits with status 126 there: its caller sees
// a command that failed, not one killed by a signal (some agents wait
// forever for a tool killed by a signal); where that cannot be arranged, it
// is killed.
enum class TaskStep { None, Release, Kill, Refuse };
inline constexpr int kRefusedExitStatus = 126;

// A TCP connection, as the kernel saw it: a refused request's socket is
// reset (actions/sock_destroy.h).
struct TcpEndpoints {
    int family = 0;                   // AF_INET or AF_INET6
    std::array<uint8_t, 16> local{};  // IPv4: the first 4 bytes
    std::array<uint8_t, 16> remote{};
    uint16_t local_port = 0;  // host byte order
    uint16_t remote_port = 0;
    uint64_t cookie = 0;  // the socket's cookie: only that socket is destroyed
};

// An operation kept stopped until a person decides (Verdict::Hold).
struct HoldSpec {
    std::string layer;  // "exec" or "uprobe": where the task is stopped
    std::string op;
    std::string path;
    std::string command;  // exec holds: the argv
    std::string rule;     // the rule as `killswitch holds` shows it
};

// The refusals that escalated a decision to its session action.
struct EscalationFacts {
    int refusals = 0;        // of the session...
    int within_s = 0;        // ...within this many seconds
    bool contained = false;  // or: the operation ran before the stop
};

// "1 refused operation", "3 refused operations".
std::string refusals_text(const EscalationFacts& e);

// A session frozen by a decision: how long it waits for a person, and then.
struct FreezeTerms {
    int timeout_s = 0;  // 0: until a person decides
    std::string end;    // "kill-session" or "thaw"
};

// A decide_* function's answer: pure data, applied by the Enforcer and
// rendered into the audit record.
struct Decision {
    Verdict verdict = Verdict::Allow;
    std::optional<Action> action;  // the rule's action, when a rule matched
    // The session's own part of the verdict (freeze, kill-session, and the
    // database layer's freeze or kill-session actions)...
    SessionAction session = SessionAction::None;
    // ...or, after a block or kill, the policy's follow-up for the session
    // (recorded as "session_action"). Never both.
    SessionAction follow_up = SessionAction::None;
    bool prevented = false;  // the operation did not happen
    bool monitor = false;    // the rule runs in monitor mode: nothing enforced
    bool window = false;     // a maintenance window let it through
    bool no_window = false;  // no maintenance window covers this rule (self, io_uring...)
    std::string rule;
    std::string reason;
    std::string note;
    // What was attempted, in a few words the offender recognises
    // ("unlink /srv/data/base/1", "rm -rf /srv/data", "DROP TABLE users"):
    // the refusal message names it.
    std::string what;
    TaskStep task = TaskStep::None;
    std::optional<HoldSpec> hold;                  // Verdict::Hold: register it
    std::optional<TcpEndpoints> close_connection;  // refused request: reset its socket
    std::optional<EscalationFacts> escalation;     // follow_up came from repeated refusals
    std::optional<FreezeTerms> freeze_terms;       // the session freezes: when it ends
    bool record = true;  // false: nothing to write (an exec that matched no rule)
    bool quiet = false;  // the offender was told already (another statement of one request)
    // The layer that refused it tells the offender itself, in its own channel
    // (the relay: the database protocol's error): who reads it. The Enforcer
    // then writes the message into the ActionResult instead of to a stderr.
    std::string told_by;
};

// Who did it, as the daemon knows them when the record arrives.
struct LineageStep {
    int pid = 0;
    std::string comm;
    std::string exe;
};
struct Subject {
    uint64_t ts_boot_ns = 0;  // when the kernel saw it
    int pid = 0, tid = 0, ppid = 0;
    uint32_t uid = 0;
    std::string comm, exe;
    uint32_t session_id = 0;
    std::string session;      // the session's name ("unknown-ID" when it is gone)
    std::string cgroup;       // the session cgroup, when the process is in it
    std::string cgroup_path;  // its directory ("" when the session is gone)
    uint64_t cgroup_id = 0;
    std::vector<LineageStep> lineage;
    nlohmann::json window;  // the session's maintenance window, or null
    // The session's `killswitch run` wrapper (0 for none) and its start
    // time: where the agent reads when the process and its parents are gone.
    int wrapper_pid = 0;
    uint64_t wrapper_start_time = 0;
};

// Whether d freezes the session (its own action or the follow-up).
bool freezes_session(const Decision& d);

// Whether the offender is told why (an operation refused or held, a process
// or session stopped); never for what was let through or only recorded.
bool tells_offender(const Decision& d);

// What the offender reads on its stderr or terminal, where its caller (a
// shell, an agent's tool) collects it: what was refused and by which rule,
// that killswitch did it, what happened to the process and the session, and
// what a person can run to allow it. hold_id: the hold, for Verdict::Hold.
std::string refusal_message(const Decision& d, const Subject& s, uint64_t hold_id = 0,
                            int hold_timeout_s = 0);

// What the Enforcer did.
struct ActionResult {
    bool session_acted = false;  // a freeze or kill of the session was attempted
    std::optional<uint64_t> session_frozen_latency_ns;
    std::string session_error;
    uint64_t hold_id = 0;  // the hold registered
    int hold_timeout_s = 0;
    std::optional<bool> connection_closed;
    std::string connection_error;
    // TaskStep::Refuse: "exit 126" when the program exited before running,
    // "killed" when it had to be killed instead (task_error says why).
    std::string task_result;
    std::string task_error;
    std::string told;        // where the refusal message went ("pid 42 stderr (pipe)")
    std::string message;     // the message, when the deciding layer delivers it (told_by)
    std::string tell_error;  // why it could not be delivered
};

// Decisions, counted as the Enforcer applies them (`killswitch status`).
struct DecisionCounters {
    uint64_t blocked = 0, killed = 0, frozen = 0, held = 0, window_allowed = 0, monitored = 0,
             tamper = 0;
    void count(const Decision& d, const ActionResult& r);
    [[nodiscard]] nlohmann::json to_json() const;
};

}  // namespace ks
