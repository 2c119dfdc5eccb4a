#include "outputs/outputs.h"

#include "outputs/journald.h"
#include "outputs/ocsf.h"
#include "outputs/syslog.h"
#include "outputs/webhook.h"

namespace ks::outputs {

Result<OutputSpec> parse_output(const std::string& spec) {
    if (spec == "journald") return OutputSpec{Kind::Journald, "", spec};
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
        return make_error("output '" + spec +
                          "' must be KIND=TARGET (metrics=127.0.0.1:9464, "
                          "metrics-file=/var/lib/prometheus/node-exporter/killswitch.prom, "
                          "syslog=tcp://HOST:514, webhook=https://HOST/PATH, "
                          "ocsf=/var/log/killswitch/ocsf.jsonl) or journald");
    std::string kind = spec.substr(0, eq), target = spec.substr(eq + 1);
    auto bad = [&](const std::string& why) { return make_error("output '" + spec + "': " + why); };
    if (kind == "metrics") {
        size_t colon = target.rfind(':');
        bool ok = colon != std::string::npos && colon > 0 && colon + 1 < target.size() &&
                  target.find_first_not_of("0123456789", colon + 1) == std::string::npos &&
                  target.size() - colon - 1 <= 5 && std::stoi(target.substr(colon + 1)) <= 65535;
        if (!ok) return bad("metrics needs HOST:PORT, such as 127.0.0.1:9464 or [::1]:9464");
        return OutputSpec{Kind::Metrics, target, spec};
    }
    if (kind == "metrics-file" || kind == "ocsf") {
        if (target[0] != '/') return bad(kind + " needs an absolute path");
        return OutputSpec{kind == "ocsf" ? Kind::Ocsf : Kind::MetricsFile, target, spec};
    }
    if (kind == "syslog") {
        if (auto t = parse_syslog_target(target); !t) return bad(t.error().str());
        return OutputSpec{Kind::Syslog, target, spec};
    }
    if (kind == "webhook") {
        if (auto st = check_webhook_url(target); !st) return bad(st.error().str());
        return OutputSpec{Kind::Webhook, target, spec};
    }
    return bad("unknown kind '" + kind +
               "'; there are metrics, metrics-file, syslog, webhook, ocsf and journald");
}

Result<std::unique_ptr<RecordSink>> make_record_sink(const OutputSpec& spec) {
    switch (spec.kind) {
        case Kind::Syslog: {
            auto t = parse_syslog_target(spec.target);
            if (!t) return t.error();
            return make_syslog_sink(spec.target, *t);
        }
        case Kind::Webhook:
            return make_webhook_sink(spec.target);
        case Kind::Ocsf:
            return make_ocsf_sink(spec.target);
        case Kind::Journald:
            return make_journald_sink();
        default:
            return make_error("not a record output: " + spec.text);
    }
}

}  // namespace ks::outputs
