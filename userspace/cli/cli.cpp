#include "cli/cli.h"

#include <cstdlib>

#include "cli/commands.h"
#include "common/log.h"

namespace ks::cli {

int main(int argc, char** argv) {
    CLI::App app{
        "killswitch: watches AI agents from inside the kernel and stops destructive actions\n"
        "against databases and their data.\n\n"
        "Start the daemon with `killswitch daemon`, then run agents under\n"
        "`killswitch run -- CMD` (or let the policy's agent list guard them at exec).",
        "killswitch"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "killswitch " KS_VERSION);

    Registry reg;
    if (const char* dir = std::getenv("KILLSWITCH_RUNTIME_DIR")) reg.global.runtime_dir = dir;
    app.add_option("--runtime-dir", reg.global.runtime_dir,
                   "Directory of the daemon's control socket and lock (env KILLSWITCH_RUNTIME_DIR)")
        ->capture_default_str();
    app.add_option("--log-level", reg.global.log_level, "trace, debug, info, warn or error")
        ->capture_default_str();

    add_daemon_command(app, reg);
    add_run_command(app, reg);
    add_status_command(app, reg);
    add_events_command(app, reg);
    add_doctor_command(app, reg);
    add_policy_command(app, reg);
    add_holds_commands(app, reg);
    add_emergency_commands(app, reg);
    add_allow_command(app, reg);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    setup_logging(reg.global.log_level);
    route_libbpf_logs();
    if (!reg.action) return 2;
    try {
        return reg.action();
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
}

}  // namespace ks::cli
