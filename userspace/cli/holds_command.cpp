// `killswitch holds`, `approve ID`, `deny ID`: operations stopped until a
// person decides. Only root outside every guarded session is heard.
#include <cstdio>

#include "cli/commands.h"
#include "control/control.h"

namespace ks::cli {
namespace {

int list_holds(const GlobalOptions& g, bool as_json) {
    auto reply = control_request(g.runtime_dir, {{"cmd", "holds"}});
    if (!reply || !reply->value("ok", false)) {
        std::fprintf(
            stderr, "killswitch holds: %s\n",
            reply ? reply->value("error", "refused").c_str() : reply.error().str().c_str());
        return 1;
    }
    const auto& holds = (*reply)["holds"];
    if (as_json) {
        std::printf("%s\n", holds.dump(2).c_str());
        return 0;
    }
    if (holds.empty()) {
        std::printf("no operation is waiting for a decision\n");
        return 0;
    }
    std::printf("%-5s %-8s %-20s %-7s %-14s %-6s %s\n", "ID", "PID", "SESSION", "LAYER", "OP",
                "LEFT", "WHAT");
    for (const auto& h : holds) {
        std::string what = h.value("command", "");
        if (what.empty()) what = h.value("path", "");
        std::printf("%-5llu %-8d %-20s %-7s %-14s %4llds  %s  [%s]\n",
                    static_cast<unsigned long long>(h.value("id", 0ull)), h.value("pid", 0),
                    h.value("session", "").c_str(), h.value("layer", "").c_str(),
                    h.value("op", "").c_str(), static_cast<long long>(h.value("seconds_left", 0ll)),
                    what.c_str(), h.value("rule", "").c_str());
    }
    return 0;
}

int decide(const GlobalOptions& g, const std::string& cmd, uint64_t id) {
    auto reply = control_request(g.runtime_dir, {{"cmd", cmd}, {"id", id}});
    if (!reply || !reply->value("ok", false)) {
        std::fprintf(
            stderr, "killswitch %s: %s\n", cmd.c_str(),
            reply ? reply->value("error", "refused").c_str() : reply.error().str().c_str());
        return 1;
    }
    const auto& h = (*reply)["hold"];
    std::printf("%s hold %llu: pid %d, %s %s\n", cmd == "approve" ? "approved" : "denied",
                static_cast<unsigned long long>(id), h.value("pid", 0), h.value("op", "").c_str(),
                h.value("path", "").c_str());
    return 0;
}

}  // namespace

void add_holds_commands(CLI::App& app, Registry& reg) {
    auto as_json = std::make_shared<bool>(false);
    auto* holds = app.add_subcommand(
        "holds",
        "List operations held for a decision: the task is stopped before the operation runs.\n"
        "Decide with `killswitch approve ID` or `killswitch deny ID`; a hold nobody decides is\n"
        "denied after the policy's protect.hold_timeout.");
    holds->add_flag("--json", *as_json, "Print JSON");
    holds->callback([&reg, as_json] {
        reg.action = [&reg, as_json] { return list_holds(reg.global, *as_json); };
    });

    for (const char* verb : {"approve", "deny"}) {
        auto id = std::make_shared<uint64_t>(0);
        std::string help =
            std::string(verb) == "approve"
                ? "Let a held operation run: the task continues and its call goes through once."
                : "Refuse a held operation: the task is killed before the operation runs.";
        auto* cmd = app.add_subcommand(
            verb, help + "\nOnly root outside every guarded session may decide.");
        cmd->add_option("id", *id, "The hold's ID, from `killswitch holds`")->required();
        std::string v = verb;
        cmd->callback(
            [&reg, id, v] { reg.action = [&reg, id, v] { return decide(reg.global, v, *id); }; });
    }
}

}  // namespace ks::cli
