#include "audit/render.h"

#include "audit/audit.h"

namespace ks {

nlohmann::json render_subject(std::string_view event, const Subject& s) {
    nlohmann::json rec;
    if (s.ts_boot_ns) rec["ts"] = format_realtime_ns(boot_to_realtime_ns(s.ts_boot_ns));
    rec["event"] = event;
    rec["pid"] = s.pid;
    rec["ppid"] = s.ppid;
    rec["tid"] = s.tid;
    rec["comm"] = s.comm;
    rec["exe"] = s.exe;
    rec["uid"] = s.uid;
    rec["session"] = s.session;
    rec["session_id"] = s.session_id;
    if (!s.cgroup.empty())
        rec["cgroup"] = s.cgroup;
    else
        rec["cgroup_id"] = s.cgroup_id;
    nlohmann::json lineage = nlohmann::json::array();
    for (const auto& l : s.lineage)
        lineage.push_back({{"pid", l.pid}, {"comm", l.comm}, {"exe", l.exe}});
    rec["lineage"] = lineage;
    return rec;
}

nlohmann::json render(std::string_view event, const Subject& s, const nlohmann::json& facts,
                      const Decision& d, const ActionResult& r) {
    nlohmann::json rec = render_subject(event, s);
    for (const auto& [k, v] : facts.items()) rec[k] = v;
    rec["verdict"] = verdict_name(d.verdict);
    if (d.action) rec["action"] = action_name(*d.action);
    rec["prevented"] = d.prevented;
    if (!d.rule.empty()) rec["rule"] = d.rule;
    if (!d.reason.empty()) rec["reason"] = d.reason;
    if (!d.note.empty()) rec["note"] = d.note;
    if (d.window) rec["window"] = s.window;
    if (d.session == SessionAction::None && d.follow_up != SessionAction::None && r.session_acted)
        rec["session_action"] = session_action_name(d.follow_up);
    if (d.escalation && r.session_acted)
        rec["escalation"] = d.escalation->contained
                                ? nlohmann::json{{"contained", true}}
                                : nlohmann::json{{"refusals", d.escalation->refusals},
                                                 {"within_s", d.escalation->within_s}};
    if (d.freeze_terms && r.session_acted && r.session_error.empty())
        rec["frozen_timeout"] = {{"seconds", d.freeze_terms->timeout_s},
                                 {"then", d.freeze_terms->end}};
    if (r.session_frozen_latency_ns)
        rec["session_frozen_latency_ns"] = *r.session_frozen_latency_ns;
    if (!r.session_error.empty()) rec["session_action_error"] = r.session_error;
    if (r.hold_id) {
        rec["hold_id"] = r.hold_id;
        rec["hold_timeout_s"] = r.hold_timeout_s;
    }
    if (!r.task_result.empty()) rec["task_result"] = r.task_result;
    if (!r.task_error.empty()) rec["task_error"] = r.task_error;
    if (!r.told.empty()) rec["explained_to"] = r.told;
    if (!r.tell_error.empty()) rec["explain_error"] = r.tell_error;
    if (r.connection_closed) {
        if (*r.connection_closed)
            rec["connection_closed"] = true;
        else
            rec["connection_close_error"] = r.connection_error;
    }
    return rec;
}

}  // namespace ks
