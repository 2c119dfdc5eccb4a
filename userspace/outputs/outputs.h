// The outputs a daemon is given (`--output KIND=TARGET`, or the policy's
// `outputs:` list): which kinds exist and how their targets are spelled.
#pragma once

#include <string>

#include "common/result.h"

namespace ks::outputs {

enum class Kind {
    Metrics,      // metrics=HOST:PORT: Prometheus text at http://HOST:PORT/metrics
    MetricsFile,  // metrics-file=PATH: the same text, for node-exporter's textfile collector
};

struct OutputSpec {
    Kind kind;
    std::string target;
    std::string text;  // as written: "metrics=127.0.0.1:9464"
};

// "KIND=TARGET"; an unknown kind or a bad target is an error that says
// which kinds there are.
Result<OutputSpec> parse_output(const std::string& spec);

}  // namespace ks::outputs
