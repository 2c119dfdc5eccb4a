#include <csignal>
#include <cstdio>

#include "audit/audit.h"
#include "cli/commands.h"
#include "control/control.h"

namespace ks::cli {
namespace {

volatile std::sig_atomic_t g_stop = 0;

int print_events(const GlobalOptions& g, std::string log, const AuditFilter& filter, bool follow,
                 bool as_json) {
    if (log.empty()) {
        // The running daemon knows where it writes; else the default place.
        auto reply = control_request(g.runtime_dir, {{"cmd", "status"}}, 1000);
        log = reply && reply->value("ok", false) ? reply->value("audit_log", "")
                                                 : "/var/log/killswitch/audit.jsonl";
    }
    std::signal(SIGINT, [](int) { g_stop = 1; });
    std::signal(SIGTERM, [](int) { g_stop = 1; });
    auto st = read_audit(
        log, filter, follow,
        [&](const nlohmann::json& rec, const std::string& line) {
            if (as_json)
                std::printf("%s\n", line.c_str());
            else
                std::printf("%s\n", format_audit_human(rec).c_str());
            std::fflush(stdout);
        },
        [] { return g_stop != 0; });
    if (!st) {
        std::fprintf(stderr, "killswitch events: %s\n", st.error().str().c_str());
        return 1;
    }
    return 0;
}

}  // namespace

void add_events_command(CLI::App& app, Registry& reg) {
    struct Opts {
        std::string log;
        AuditFilter filter;
        bool follow = false;
        bool json = false;
    };
    auto o = std::make_shared<Opts>();
    auto* cmd = app.add_subcommand(
        "events",
        "Print the audit trail: every exec, fork and exit of guarded processes, sessions,\n"
        "lost-event reports and decisions. Reads the running daemon's audit log (or\n"
        "/var/log/killswitch/audit.jsonl). Schema: docs/audit-schema.md.");
    cmd->add_flag("-f,--follow", o->follow, "Keep printing new records as they are written");
    cmd->add_option("--session", o->filter.session, "Only records of this session");
    cmd->add_option("--event", o->filter.event,
                    "Only records of this kind (exec, fork, exit, ...)");
    cmd->add_option("--audit-log", o->log, "Read this file instead");
    cmd->add_flag("--json", o->json, "Print the JSON lines as stored");
    cmd->callback([&reg, o] {
        reg.action = [&reg, o] {
            return print_events(reg.global, o->log, o->filter, o->follow, o->json);
        };
    });
}

}  // namespace ks::cli
