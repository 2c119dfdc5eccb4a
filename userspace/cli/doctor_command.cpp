#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "db_guard/db_wire_decide.h"
#include "db_guard/listeners.h"
#include "doctor/features.h"
#include "doctor/guarantees.h"
#include "policy/db_endpoints.h"
#include "policy/policy.h"

namespace ks::cli {
namespace {

constexpr FeatureId kMinimum[] = {FeatureId::kBtf, FeatureId::kCgroupV2, FeatureId::kRawTracepoint,
                                  FeatureId::kRingBuffer};

std::string effect_text(const Guarantee& g) {
    if (!g.available) return "not available";
    switch (g.effect) {
        case Effect::kPrevents:
            return "prevents";
        case Effect::kStopsAfter:
            return "stops the agent after the call";
        case Effect::kContains:
            return "contains (freezes the whole session)";
        case Effect::kCovers:
            return "covers (extends the other rows)";
    }
    return "unknown";
}

// The deputy sockets of the built-in policy (processes.deputies) that exist
// on this host, patterns expanded, and the sockets of the terminal
// multiplexers' servers running now (processes.multiplexers; the daemon
// leaves out those that run inside a session): {socket, service}.
nlohmann::json host_deputies() {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& pattern : policy::default_policy().deputy_sockets)
        for (const auto& path : db::expand_unix_pattern(pattern))
            out.push_back({{"socket", path}, {"service", deputy_service(path)}});
    for (const auto& l : db::discover_listeners())
        if (l.endpoint.kind == db::Kind::Deputy)
            out.push_back({{"socket", l.endpoint.unix_path}, {"service", l.server}});
    return out;
}

void print_deputies(const Features& f) {
    nlohmann::json deputies = host_deputies();
    std::printf(
        "\nDeputies on this host (services that act for whoever asks; processes.deputies)\n");
    if (deputies.empty()) std::printf("  none of the built-in list\n");
    for (const auto& d : deputies)
        std::printf("  %-44s %-10s %s\n", d["socket"].get<std::string>().c_str(),
                    d["service"].get<std::string>().c_str(),
                    f.has(FeatureId::kConnectUnix) ? "refused to guarded processes"
                                                   : "NOT refused (no cgroup/connect_unix)");
}

void print_table(const Features& f, const std::vector<Guarantee>& rows) {
    std::printf("killswitch doctor: kernel %s\n\nKernel features\n", kernel_release().c_str());
    for (size_t i = 0; i < kFeatureCount; ++i) {
        auto id = static_cast<FeatureId>(i);
        std::printf("  %-16s %-3s  %s\n", std::string(Features::name(id)).c_str(),
                    f.has(id) ? "yes" : "no", f[id].detail.c_str());
    }
    std::printf("\nProtected operations\n  %-26s %-38s %s\n", "OPERATION", "ON THIS HOST",
                "THIS BUILD");
    for (const auto& g : rows) {
        std::printf("  %-26s %-38s %s\n", g.operation.c_str(), effect_text(g).c_str(),
                    g.implemented ? "enforced by this build" : "not enforced by this build yet");
        std::printf("      via: %s\n      %s\n", g.mechanism.c_str(), g.note.c_str());
    }
    print_deputies(f);
    std::string missing;
    for (auto id : kMinimum)
        if (!f.has(id)) missing += (missing.empty() ? "" : ", ") + std::string(Features::name(id));
    if (missing.empty())
        std::printf(
            "\nMinimum for killswitch (btf, cgroup_v2, raw_tracepoint, ring_buffer): met\n");
    else
        std::printf("\nMinimum for killswitch NOT met, missing: %s\n", missing.c_str());
}

int run_doctor(bool as_json) {
    // The probes load BPF programs, mount tracefs and create a cgroup.
    if (::geteuid() != 0) {
        std::fprintf(stderr, "killswitch doctor: needs root (run it with sudo)\n");
        return 1;
    }
    const Features& f = Features::probe();
    auto rows = guarantees_for(f);
    if (as_json) {
        nlohmann::json out = f.to_json();
        out["kernel"] = kernel_release();
        out["guarantees"] = to_json(rows);
        out["deputies"] = host_deputies();
        std::printf("%s\n", out.dump(2).c_str());
    } else {
        print_table(f, rows);
    }
    bool ok = true;
    for (auto id : kMinimum) ok = ok && f.has(id);
    return ok ? 0 : 1;
}

}  // namespace

void add_doctor_command(CLI::App& app, Registry& reg) {
    auto as_json = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand(
        "doctor",
        "Probe the running kernel (loads, attaches and triggers one tiny program of each BPF\n"
        "kind) and say which protected operations this host can prevent, which it can only\n"
        "stop after the call, and which this build enforces. Needs root. Exit status 0 when\n"
        "the minimum killswitch needs is present (btf, cgroup_v2, raw_tracepoint,\n"
        "ring_buffer), 1 otherwise.");
    cmd->add_flag("--json", *as_json, "Print one JSON object");
    cmd->callback([&reg, as_json] { reg.action = [as_json] { return run_doctor(*as_json); }; });
}

}  // namespace ks::cli
