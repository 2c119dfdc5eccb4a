// The outputs a daemon is given (`--output KIND=TARGET`, or the policy's
// `outputs:` list): which kinds exist and how their targets are spelled.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "outputs/sink.h"

namespace ks::outputs {

enum class Kind {
    Metrics,      // metrics=HOST:PORT: Prometheus text at http://HOST:PORT/metrics
    MetricsFile,  // metrics-file=PATH: the same text, for node-exporter's textfile collector
    Syslog,       // syslog=udp|tcp|tls://HOST:PORT[?ca=..&cert=..&key=..&facility=..] (syslog.h)
    Webhook,   // webhook=http(s)://HOST[:PORT]/PATH: decisions, holds, frozen sessions (webhook.h)
    Ocsf,      // ocsf=PATH: every record as OCSF 1.8.0 events, one JSON per line (ocsf.h)
    Journald,  // journald: every record as a journal entry with fields (journald.h)
};

struct OutputSpec {
    Kind kind;
    std::string target;
    std::string text;  // as written: "metrics=127.0.0.1:9464"
};

// "KIND=TARGET" ("journald" alone); an unknown kind or a bad target is an
// error that says which kinds there are and how the target is spelled.
Result<OutputSpec> parse_output(const std::string& spec);

// The record output of a syslog, webhook, ocsf or journald spec, its thread
// started (metrics and metrics-file are not record outputs: an error).
Result<std::unique_ptr<RecordSink>> make_record_sink(const OutputSpec& spec);

}  // namespace ks::outputs
