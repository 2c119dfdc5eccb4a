// `killswitch policy check FILE...`, `killswitch policy show-default` and
// `killswitch policy reload [FILE]`.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <tuple>
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

// Prints the diagnostics of a load, errors and warnings of each file in the
// order they occur in it.
void print_diagnostics(const policy::LoadResult& result) {
    std::vector<std::pair<const policy::Diagnostic*, bool>> all;
    for (const auto& e : result.errors) all.emplace_back(&e, true);
    for (const auto& w : result.warnings) all.emplace_back(&w, false);
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
        return std::tuple(a.first->file, a.first->line, a.first->column) <
               std::tuple(b.first->file, b.first->line, b.first->column);
    });
    for (const auto& [d, is_error] : all)
        std::fprintf(stderr, "%s\n", is_error ? d->str().c_str() : d->warning_str().c_str());
}

// FILE (or the built-in policy) and DIR's drop-ins, as the daemon reads them.
bool check_set(const std::string& file, const std::string& dir) {
    auto result = policy::load_policy_set(file, dir);
    print_diagnostics(result);
    if (!result.policy) return false;
    std::fflush(stderr);
    std::printf("%s + %s (%zu files): ok, sha256 %s\n", file.empty() ? "<built-in>" : file.c_str(),
                dir.c_str(), result.policy->files.size(), result.policy->sha256.c_str());
    for (const auto& f : result.policy->files) std::printf("  %s\n", f.c_str());
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
    auto dir = std::make_shared<std::string>();
    check->add_option("FILE", *files, "Policy file(s) to check");
    check->add_option("--policy-dir", *dir,
                      "Check FILE (at most one; none: the built-in policy) with the drop-in "
                      "files DIR/*.yaml as the daemon reads them with --policy-dir, and print "
                      "the files read and the SHA-256 that `killswitch status` shows for them");
    check->callback([&reg, files, dir] {
        if (files->empty() && dir->empty()) throw CLI::RequiredError("FILE (or --policy-dir)");
        if (!dir->empty() && files->size() > 1)
            throw CLI::ValidationError("--policy-dir", "goes with one FILE at most");
        reg.action = [files, dir] {
            if (!dir->empty()) return check_set(files->empty() ? "" : files->front(), *dir) ? 0 : 1;
            bool ok = true;
            for (const auto& f : *files) ok = check_file(f) && ok;
            return ok ? 0 : 1;
        };
    });

    auto reload_file = std::make_shared<std::string>();
    auto* rl = policy->add_subcommand(
        "reload",
        "Make the running daemon use a new policy without a restart. Without FILE the daemon\n"
        "reads again the file it runs with (the built-in policy if it has none), and with\n"
        "either the drop-in files of its --policy-dir as they are now. The daemon\n"
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
