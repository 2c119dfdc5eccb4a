// OCSF 1.8.0 (the Open Cybersecurity Schema Framework) events of audit
// records, for SIEMs that read OCSF: `killswitch events --format ocsf` and
// the output `ocsf=PATH` (one event per line).
//
//   exec, fork        Process Activity (1007), Launch
//   exit              Process Activity (1007), Terminate, with exit_code
//   file              File System Activity (1001): Delete, Rename, Update,
//                     Create, Set Attributes, Set Security, Mount, Unmount
//                     by `op` (Other for a destructive tool at exec)
//   db                Datastore Activity (6005), Query
//   tamper, reach     Detection Finding (2004) alone
// and every file, db or process decision that refused, killed, froze or
// held (or would have, in monitor mode) adds a Detection Finding (2004)
// with the security_control profile: `disposition_id` says what was done
// (Blocked, Quarantined for a frozen session, Delayed for a hold, Allowed,
// Approved, Logged), `action_id` Denied / Allowed / Observed.
//
// The agent: the guarded session names it (`actor.session.uid`,
// `actor.app_name`). OCSF 1.8.0 has no `ai_agent` object (it came after
// 1.8.0): the agent is `unmapped.ai_agent` ({name, uid: the session,
// instance_uid: its id}), the shape of the later object, where 1.8.0 puts
// what it does not define. Every event carries the audit record whole under
// `unmapped.killswitch`, and `metadata.uid` = HOST:RUN:SEQ (with `-finding`
// for the finding of a decision) names it across a fleet.
// Records of the daemon's own life (daemon_start, policy_reload, sessions,
// windows, holds decided) have no event: the audit trail has them.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "outputs/sink.h"

namespace ks::outputs {

inline constexpr const char* kOcsfVersion = "1.8.0";

// The OCSF events of one audit record: none, one, or an activity and its
// finding. `hostname` names the device (the machine id is in the record).
std::vector<nlohmann::json> to_ocsf(const nlohmann::json& record, const std::string& hostname);

// ocsf=PATH: the events appended to PATH (created 0600 with its
// directory), reopened on SIGHUP for log rotation.
std::unique_ptr<RecordSink> make_ocsf_sink(const std::string& path,
                                           RecordSink::Limits limits = {});

}  // namespace ks::outputs
