#include "outputs/outputs.h"

namespace ks::outputs {

Result<OutputSpec> parse_output(const std::string& spec) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
        return make_error("output '" + spec +
                          "' must be KIND=TARGET (metrics=127.0.0.1:9464, "
                          "metrics-file=/var/lib/prometheus/node-exporter/killswitch.prom)");
    std::string kind = spec.substr(0, eq), target = spec.substr(eq + 1);
    if (kind == "metrics") {
        size_t colon = target.rfind(':');
        bool ok = colon != std::string::npos && colon > 0 && colon + 1 < target.size() &&
                  target.find_first_not_of("0123456789", colon + 1) == std::string::npos &&
                  target.size() - colon - 1 <= 5 && std::stoi(target.substr(colon + 1)) <= 65535;
        if (!ok)
            return make_error("output '" + spec +
                              "': metrics needs HOST:PORT, such as 127.0.0.1:9464 or [::1]:9464");
        return OutputSpec{Kind::Metrics, target, spec};
    }
    if (kind == "metrics-file") {
        if (target[0] != '/')
            return make_error("output '" + spec + "': metrics-file needs an absolute path");
        return OutputSpec{Kind::MetricsFile, target, spec};
    }
    return make_error("output '" + spec + "': unknown kind '" + kind +
                      "'; this build has metrics and metrics-file (syslog, webhook, ocsf and "
                      "journald are not built yet)");
}

}  // namespace ks::outputs
