#include <csignal>
#include <cstdio>

#include "audit/audit.h"
#include "cli/commands.h"
#include "common/identity.h"
#include "control/control.h"
#include "outputs/ocsf.h"

namespace ks::cli {
namespace {

volatile std::sig_atomic_t g_stop = 0;

int print_events(const GlobalOptions& g, std::string log, const AuditFilter& filter, bool follow,
                 const std::string& format) {
    if (log.empty()) {
        // The running daemon knows where it writes; else the default place.
        auto reply = control_request(g.runtime_dir, {{"cmd", "status"}}, 1000);
        log = reply && reply->value("ok", false) ? reply->value("audit_log", "")
                                                 : "/var/log/killswitch/audit.jsonl";
    }
    const std::string hostname = host_name();
    std::signal(SIGINT, [](int) { g_stop = 1; });
    std::signal(SIGTERM, [](int) { g_stop = 1; });
    auto st = read_audit(
        log, filter, follow,
        [&](const nlohmann::json& rec, const std::string& line) {
            if (format == "json") {
                std::printf("%s\n", line.c_str());
            } else if (format == "ocsf") {
                for (const auto& ev : outputs::to_ocsf(rec, hostname))
                    std::printf(
                        "%s\n",
                        ev.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
            } else {
                std::printf("%s\n", format_audit_human(rec).c_str());
            }
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
        std::string format = "text";
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
    cmd->add_flag("--json", o->json, "Print the JSON lines as stored (--format json)");
    cmd->add_option(
           "--format", o->format,
           "text (one line per record), json (the lines as stored), or ocsf: OCSF 1.8.0\n"
           "events, one per line (Process Activity for exec, fork and exit; File System\n"
           "Activity for file decisions; Datastore Activity for database requests; a\n"
           "Detection Finding for each refusal, kill, freeze, hold and tamper; records of\n"
           "the daemon's own life have none). docs/outputs.md says how records map")
        ->check(CLI::IsMember({"text", "json", "ocsf"}));
    cmd->callback([&reg, o] {
        reg.action = [&reg, o] {
            return print_events(reg.global, o->log, o->filter, o->follow,
                                o->json ? "json" : o->format);
        };
    });
}

}  // namespace ks::cli
