// journald output: every audit record as a journal entry with structured
// fields (sd_journal_sendv, libsystemd), for a daemon that runs under
// systemd: `journalctl -t killswitch KILLSWITCH_EVENT=file
// KILLSWITCH_VERDICT=block`.
//
//   MESSAGE             the record in one line for people
//   PRIORITY            as for syslog (outputs/syslog.h)
//   SYSLOG_IDENTIFIER   killswitch
//   KILLSWITCH_<FIELD>  each top-level field of the record: KILLSWITCH_EVENT,
//                       KILLSWITCH_SESSION, KILLSWITCH_PID (the subject's;
//                       _PID is the daemon's), KILLSWITCH_RULE, ...; lists
//                       and objects as JSON
//   KILLSWITCH_RECORD   the whole record as the audit file has it
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "outputs/sink.h"

namespace ks::outputs {

// The journal fields of a record, each "NAME=value".
std::vector<std::string> journal_fields(const nlohmann::json& record);

std::unique_ptr<RecordSink> make_journald_sink(RecordSink::Limits limits = {});

}  // namespace ks::outputs
