#include "outputs/metrics.h"

#include <httplib.h>

#include <map>
#include <sstream>

#include "common/sysfs.h"

namespace ks::outputs {
namespace {

using nlohmann::json;

// Label values: backslash, double quote and newline escaped.
std::string escape(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

class Writer {
  public:
    // One family: HELP and TYPE once, then its samples.
    void family(const std::string& name, const std::string& type, const std::string& help) {
        out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
    }
    void sample(const std::string& name, double v,
                const std::vector<std::pair<std::string, std::string>>& labels = {}) {
        out_ << name;
        if (!labels.empty()) {
            out_ << '{';
            for (size_t i = 0; i < labels.size(); ++i)
                out_ << (i ? "," : "") << labels[i].first << "=\"" << escape(labels[i].second)
                     << '"';
            out_ << '}';
        }
        out_ << ' ' << static_cast<uint64_t>(v) << '\n';
    }
    std::string str() const { return out_.str(); }

  private:
    std::ostringstream out_;
};

uint64_t number(const json& j) { return j.is_number() ? j.get<uint64_t>() : 0; }

// A layer is up when its entry says active: true, is true, or lists programs.
bool layer_up(const json& v) {
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_object()) return v.value("active", false);
    if (v.is_array()) return !v.empty();
    if (v.is_string()) return !v.get<std::string>().empty();
    return false;
}

// Counters of `status` that are one number: killswitch_NAME_total.
const std::map<std::string, std::string>& plain_counters() {
    static const std::map<std::string, std::string> m = {
        {"guard_map_full", "processes that could not be followed: the guard map was full"},
        {"held_at_exec", "agents held at exec until their session was set up"},
        {"file_matches", "operations on protected files seen by the kernel"},
        {"exec_checks", "programs judged at exec"},
        {"db_requests", "database requests judged"},
        {"db_refused", "database requests refused in the kernel"},
        {"db_connections_unwatchable", "guarded connections the kernel could not follow"},
        {"db_connections_relayed", "guarded connections carried by the relay"},
        {"tamper", "attempts on killswitch itself or the kernel"},
        {"audit_records", "audit records written by this run"},
        {"decode_errors", "kernel records that could not be read"},
        {"wakeups_missed", "records a task waited on that did not wake the daemon"},
    };
    return m;
}

}  // namespace

std::string render_prometheus(const json& s) {
    Writer w;
    w.family("killswitch_build_info", "gauge", "the running killswitch");
    w.sample("killswitch_build_info", 1, {{"version", s.value("version", "")}});
    w.family("killswitch_policy_info", "gauge",
             "the policy in force: its SHA-256 (policy files in order) and mode");
    w.sample("killswitch_policy_info", 1,
             {{"sha256", s.value("policy_sha256", "")}, {"mode", s.value("mode", "")}});
    w.family("killswitch_uptime_seconds", "gauge", "seconds since the daemon started");
    w.sample("killswitch_uptime_seconds", number(s.value("uptime_s", json())));

    w.family("killswitch_layer_up", "gauge", "1 when the protection layer is active on this host");
    if (const auto it = s.find("layers"); it != s.end() && it->is_object())
        for (const auto& [name, v] : it->items())
            if (v.is_object() || v.is_boolean() || v.is_array())
                w.sample("killswitch_layer_up", layer_up(v) ? 1 : 0, {{"layer", name}});

    std::map<std::string, uint64_t> states = {{"running", 0}, {"frozen", 0}, {"held", 0}};
    const json sessions = s.value("sessions", json::array());
    for (const auto& sess : sessions) ++states[sess.value("state", "running")];
    w.family("killswitch_sessions", "gauge", "guarded sessions, by state");
    for (const auto& [state, n] : states) w.sample("killswitch_sessions", n, {{"state", state}});
    w.family("killswitch_holds_pending", "gauge", "operations waiting for a person's decision");
    w.sample("killswitch_holds_pending", number(s.value("holds", json())));
    w.family("killswitch_protected_roots", "gauge", "protected paths that exist");
    w.sample("killswitch_protected_roots", number(s.value("protected_roots", json())));
    w.family("killswitch_protected_inodes", "gauge", "inodes of protected data known to the kernel");
    w.sample("killswitch_protected_inodes", number(s.value("protected_inodes", json())));

    // Named, not temporaries: items() iterates the object it is given.
    const json c = s.value("counters", json::object());
    const json events = c.value("events", json::object());
    const json lost = c.value("lost", json::object());
    const json decisions = c.value("decisions", json::object());
    w.family("killswitch_events_total", "counter", "kernel records read, by kind");
    for (const auto& [type, n] : events.items())
        w.sample("killswitch_events_total", number(n), {{"type", type}});
    w.family("killswitch_events_lost_total", "counter",
             "kernel records lost to a full ring buffer, by kind");
    for (const auto& [type, n] : lost.items())
        w.sample("killswitch_events_lost_total", number(n), {{"type", type}});
    w.family("killswitch_decisions_total", "counter", "decisions taken, by kind");
    for (const auto& [kind, n] : decisions.items())
        if (n.is_number()) w.sample("killswitch_decisions_total", number(n), {{"decision", kind}});
    for (const auto& [name, help] : plain_counters()) {
        std::string metric = "killswitch_" + name + "_total";
        w.family(metric, "counter", help);
        w.sample(metric, number(c.value(name, json())));
    }
    w.family("killswitch_output_dropped_total", "counter",
             "records an output could not deliver (its queue was full or its receiver down)");
    const json outs = s.value("outputs", json::array());
    auto labels = [](const json& o) {
        return std::vector<std::pair<std::string, std::string>>{{"output", o.value("name", "")},
                                                                {"target", o.value("target", "")}};
    };
    for (const auto& o : outs)
        w.sample("killswitch_output_dropped_total", number(o.value("dropped", json())), labels(o));
    w.family("killswitch_output_delivered_total", "counter",
             "records a record output (syslog, webhook, ocsf, journald) delivered");
    for (const auto& o : outs)
        if (o.contains("delivered"))
            w.sample("killswitch_output_delivered_total", number(o["delivered"]), labels(o));
    w.family("killswitch_output_queued", "gauge", "records waiting in a record output's queue");
    for (const auto& o : outs)
        if (o.contains("queued"))
            w.sample("killswitch_output_queued", number(o["queued"]), labels(o));
    return w.str();
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& address) {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0)
        return make_error("metrics address must be HOST:PORT, not '" + address + "'");
    std::string host = address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    int port = 0;
    try {
        port = std::stoi(address.substr(colon + 1));
    } catch (...) {
        port = -1;
    }
    if (port < 0 || port > 65535)
        return make_error("metrics address '" + address + "': bad port");
    std::unique_ptr<MetricsServer> m(new MetricsServer);
    m->server_ = std::make_unique<httplib::Server>();
    MetricsServer* self = m.get();
    m->server_->Get("/metrics", [self](const httplib::Request&, httplib::Response& res) {
        std::lock_guard lk(self->mu_);
        ++self->scrapes_;
        res.set_content(self->text_, "text/plain; version=0.0.4; charset=utf-8");
    });
    m->server_->set_keep_alive_max_count(10);
    m->server_->set_read_timeout(5, 0);
    m->server_->set_write_timeout(5, 0);
    int bound = port == 0 ? m->server_->bind_to_any_port(host)
                          : (m->server_->bind_to_port(host, port) ? port : -1);
    if (bound < 0)
        return make_error("metrics: cannot listen on " + address + ": " + std::strerror(errno));
    m->port_ = bound;
    m->address_ = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                  std::to_string(bound);
    m->thread_ = std::thread([self] {
        // Signals stay with the event loop.
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        self->server_->listen_after_bind();
    });
    return m;
}

MetricsServer::~MetricsServer() {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
}

void MetricsServer::publish(std::string text) {
    std::lock_guard lk(mu_);
    text_ = std::move(text);
}

uint64_t MetricsServer::scrapes() const {
    std::lock_guard lk(mu_);
    return scrapes_;
}

Status write_textfile(const std::string& path, const std::string& text) {
    return write_file_atomic(path, text, 0644);
}

}  // namespace ks::outputs
