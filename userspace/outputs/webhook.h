// Webhook output: decisions, and a notification for each hold and each
// frozen session, POSTed as JSON to an HTTP(S) endpoint (libcurl), one
// request per record, retried with backoff.
//
//   webhook=https://hooks.example.com/killswitch
//
// Body: {"kind": "decision" | "hold" | "frozen",
//        "text": "one line for people (a chat message)",
//        "commands": ["killswitch approve 12", "killswitch deny 12"],
//        "host": "...", "hostname": "...", "record": {the audit record}}
// `commands` are what a person runs on the host to decide: approve or deny
// for a hold, thaw or kill for a frozen session (empty for other records).
// Sent: every record with a verdict (a database request judged harmless
// excepted), tamper, holds decided, sessions timed out, lost records,
// errors, policy reloads, daemon start and stop, maintenance windows.
// Not sent: exec, fork, exit and session start/end (the audit trail, syslog
// and OCSF outputs have them).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.h"
#include "outputs/sink.h"

namespace ks::outputs {

// http:// or https:// with a host; the error says what is wrong.
Status check_webhook_url(const std::string& url);

// The body for a record, or nullopt when the webhook does not take it.
std::optional<nlohmann::json> webhook_payload(const nlohmann::json& record,
                                              const std::string& hostname);

std::unique_ptr<RecordSink> make_webhook_sink(const std::string& url,
                                              RecordSink::Limits limits = {});

}  // namespace ks::outputs
