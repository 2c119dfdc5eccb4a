// `killswitch policy check FILE...`, `killswitch policy show-default` and
// `killswitch policy reload [FILE]`.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "control/control.h"
#include "policy/policy.h"

namespace ks::cli {
namespace {

// Prints the file's errors and warnings in the order they occur in it; returns
// true when it has no errors.
bool check_file(const std::string& path) {
    auto result = policy::load_policy_file(path);
    auto e = result.errors.begin();
    auto w = result.warnings.begin();
    auto before = [](const policy::Diagnostic& a, const policy::Diagnostic& b) {
        return std::pair(a.line, a.column) <= std::pair(b.line, b.column);
    };
    while (e != result.errors.end() || w != result.warnings.end()) {
        if (w == result.warnings.end() || (e != result.errors.end() && before(*e, *w))) {
            std::fprintf(stderr, "%s\n", (e++)->str().c_str());
        } else {
            std::fprintf(stderr, "%s\n", (w++)->warning_str().c_str());
        }
    }
    if (!result.errors.empty()) return false;
    std::fflush(stderr);
    std::printf("%s: ok\n", path.c_str());
    return true;
}

// Asks the daemon to load FILE (or to read its own policy file again).
int reload(const GlobalOptions& g, const std::string& file) {
    nlohmann::json req = {{"cmd", "policy.reload"}};
    if (!file.empty()) {
        std::error_code ec;
        auto abs = std::filesystem::absolute(file, ec);
        req["file"] = ec ? file : abs.lexically_normal().string();
    }
    auto reply = control_request(g.runtime_dir, req, 30000);
    if (!reply) {
        std::fprintf(stderr, "killswitch policy reload: no daemon answered: %s\n",
                     reply.error().str().c_str());
        return 1;
    }
    for (const auto& w : reply->value("warnings", nlohmann::json::array()))
        std::fprintf(stderr, "%s\n", w.get<std::string>().c_str());
    if (!reply->value("ok", false)) {
        for (const auto& d : reply->value("diagnostics", nlohmann::json::array()))
            std::fprintf(stderr, "%s\n", d.get<std::string>().c_str());
        std::string result = reply->value("result", "refused");
        std::fprintf(stderr, "killswitch policy reload: %s: %s\n", result.c_str(),
                     reply->value("error", "refused").c_str());
        if (reply->contains("policy"))
            std::fprintf(stderr, "the policy in force is unchanged: %s\n",
                         reply->value("policy", "").c_str());
        return 1;
    }
    std::fflush(stderr);
    std::printf("policy reloaded: %s (mode %s)\n", reply->value("policy", "").c_str(),
                reply->value("mode", "").c_str());
    return 0;
}

}  // namespace

void add_policy_command(CLI::App& app, Registry& reg) {
    auto* policy = app.add_subcommand(
        "policy",
        "Check policy files, print the built-in policy, and load a policy into the running\n"
        "daemon. The policy format is described in docs/policy.md.");
    policy->require_subcommand(1);

    auto files = std::make_shared<std::vector<std::string>>();
    auto* check = policy->add_subcommand(
        "check",
        "Validate policy files without loading them into the daemon. Every error and\n"
        "warning is printed to stderr as FILE:LINE:COL: error|warning: MESSAGE; a file\n"
        "without errors is reported as \"FILE: ok\" on stdout (warnings do not fail it).\n"
        "Exit status 0 when every file is free of errors, 1 otherwise.");
    check->add_option("FILE", *files, "Policy file(s) to check")->required();
    check->callback([&reg, files] {
        reg.action = [files] {
            bool ok = true;
            for (const auto& f : *files) ok = check_file(f) && ok;
            return ok ? 0 : 1;
        };
    });

    auto reload_file = std::make_shared<std::string>();
    auto* rl = policy->add_subcommand(
        "reload",
        "Make the running daemon use a new policy without a restart. Without FILE the daemon\n"
        "reads again the file it runs with (the built-in policy if it has none). The daemon\n"
        "checks the whole policy first: on any error, or a change to a setting it reads only\n"
        "at start (audit.log, agents.hold_at_exec, guard.cgroups, protect.libc_uprobes,\n"
        "databases.client_probes), it refuses, prints every problem as\n"
        "FILE[:LINE:COL]: error: MESSAGE on stderr, and the policy in force stays unchanged.\n"
        "Otherwise the new protected paths, rules, agents, guarded uids, databases and mode\n"
        "replace the old ones at once. The daemon's --mode, --audit-log, --protect and --db\n"
        "options still apply. Accepted and refused reloads are audit records (policy_reload).\n"
        "Only root outside every guarded session may reload.\n"
        "Exit status 0 when the new policy is in force, 1 when it was refused or no daemon\n"
        "answered.");
    rl->add_option("FILE", *reload_file, "The policy file to load (default: the one in force)");
    rl->callback([&reg, reload_file] {
        reg.action = [&reg, reload_file] { return reload(reg.global, *reload_file); };
    });

    auto* show = policy->add_subcommand(
        "show-default",
        "Print the built-in policy, with comments, as YAML. It is what the daemon uses\n"
        "without a policy file, and the defaults of every key a policy file leaves out;\n"
        "a good start for your own: killswitch policy show-default > policy.yaml");
    show->callback([&reg] {
        reg.action = [] {
            std::fputs(policy::default_policy_text().c_str(), stdout);
            return 0;
        };
    });
}

}  // namespace ks::cli
