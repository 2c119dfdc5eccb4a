// Each subcommand registers itself on the top-level app; when the user picks
// it, its callback stores the work to do in Registry::action.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace ks::cli {

struct GlobalOptions {
    std::string runtime_dir = "/run/killswitch";  // control socket and lock
    std::string log_level = "info";
};

struct Registry {
    GlobalOptions global;
    std::function<int()> action;
};

void add_daemon_command(CLI::App& app, Registry& reg);
void add_run_command(CLI::App& app, Registry& reg);
void add_status_command(CLI::App& app, Registry& reg);
void add_events_command(CLI::App& app, Registry& reg);
void add_doctor_command(CLI::App& app, Registry& reg);
void add_policy_command(CLI::App& app, Registry& reg);
void add_holds_commands(CLI::App& app, Registry& reg);
void add_emergency_commands(CLI::App& app, Registry& reg);
void add_allow_command(CLI::App& app, Registry& reg);

// "90s", "30m", "2h" -> seconds; nullopt when malformed or out of range.
std::optional<uint32_t> parse_window_duration(const std::string& text);

}  // namespace ks::cli
