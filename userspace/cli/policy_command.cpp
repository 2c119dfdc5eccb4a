// `killswitch policy check FILE...` and `killswitch policy show-default`.
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
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

}  // namespace

void add_policy_command(CLI::App& app, Registry& reg) {
    auto* policy = app.add_subcommand(
        "policy",
        "Check policy files and print the built-in policy. The policy format is described\n"
        "in docs/policy.md.");
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
