#include <cstdio>

#include "cli/commands.h"
#include "control/control.h"

namespace ks::cli {
namespace {

int print_status(const GlobalOptions& g, bool as_json) {
    auto reply = control_request(g.runtime_dir, {{"cmd", "status"}}, 3000);
    if (!reply || !reply->value("ok", false)) {
        std::string why = reply ? reply->value("error", "refused") : reply.error().str();
        if (as_json) {
            std::printf("%s\n",
                        nlohmann::json({{"running", false}, {"error", why}}).dump(2).c_str());
        } else {
            std::fprintf(stderr, "killswitch daemon is not running or not ready: %s\n",
                         why.c_str());
        }
        return 1;
    }
    auto& s = *reply;
    if (as_json) {
        s["running"] = true;
        s.erase("ok");
        std::printf("%s\n", s.dump(2).c_str());
        return 0;
    }
    const auto& c = s["counters"];
    std::printf("killswitch daemon: running (pid %d, up %llus, mode %s)\n", s.value("pid", 0),
                static_cast<unsigned long long>(s.value("uptime_s", 0ull)),
                s.value("mode", "").c_str());
    std::printf("policy:       %s (loaded %s)\n", s.value("policy", "").c_str(),
                s.value("policy_loaded", "").c_str());
    auto files = s.value("policy_files", nlohmann::json::array());
    std::printf("policy sha256: %s (%zu files)\n", s.value("policy_sha256", "").c_str(),
                files.size());
    for (const auto& f : files)
        if (f.is_string()) std::printf("              %s\n", f.get<std::string>().c_str());
    for (const auto& o : s.value("outputs", nlohmann::json::array())) {
        std::string line = o.value("name", "") + " " + o.value("target", "") + " (";
        if (o.contains("delivered"))
            line += std::to_string(o.value("delivered", 0ull)) + " delivered, " +
                    std::to_string(o.value("queued", 0ull)) + " queued, ";
        line += std::to_string(o.value("dropped", 0ull)) + " dropped)";
        if (!o.value("last_error", "").empty() && !o.value("connected", true))
            line += ": " + o.value("last_error", "");
        std::printf("output:       %s\n", line.c_str());
    }
    std::printf("host:         %s (machine id %s), run %s, killswitch %s\n",
                s.value("hostname", "").c_str(), s.value("host", "").c_str(),
                s.value("run", "").c_str(), s.value("version", "").c_str());
    std::printf("audit log:    %s (%llu records written)\n", s.value("audit_log", "").c_str(),
                static_cast<unsigned long long>(c.value("audit_records", 0ull)));
    std::printf("layers:       process guard (%zu programs); file protection %s, %s",
                s["layers"]["process_guard"].size(),
                s.value("file_protection_attached", false) ? "attached" : "idle (no session)",
                s.value("file_protection_enforced", false) ? "enforcing" : "monitoring");
    if (!s["layers"]["uprobes"].empty())
        std::printf(", libc layer on %s", s["layers"].value("libc", "").c_str());
    std::printf("\n");
    const auto& scope = s["layers"].value("uprobe_scope", nlohmann::json::object());
    if (scope.value("active", false))
        std::printf(
            "uprobes:      in guarded processes only (%llu now); %llu new children held "
            "at fork until attached (mean %llu us, max %llu us)\n",
            static_cast<unsigned long long>(scope.value("processes", 0ull)),
            static_cast<unsigned long long>(scope.value("fork_holds", 0ull)),
            static_cast<unsigned long long>(scope.value("fork_hold_mean_us", 0ull)),
            static_cast<unsigned long long>(scope.value("fork_hold_max_us", 0ull)));
    else if (scope.contains("reason"))
        std::printf("uprobes:      in every process that maps the library: %s\n",
                    scope.value("reason", "").c_str());
    const auto& lsm = s["layers"].value("lsm", nlohmann::json::object());
    if (lsm.value("active", false))
        std::printf("lsm layer:    active: the kernel refuses guarded processes' destructive "
                    "operations (EPERM), %zu hooks\n",
                    lsm.value("hooks", nlohmann::json::array()).size());
    else
        std::printf("lsm layer:    not used: %s\n", lsm.value("reason", "unknown").c_str());
    const auto& fentry = s["layers"].value("fentry", nlohmann::json::object());
    if (fentry.value("active", false))
        std::printf("fentry layer: active: fmod_ret programs on the kernel's security checks "
                    "refuse guarded processes' destructive operations (EPERM), %zu hooks\n",
                    fentry.value("hooks", nlohmann::json::array()).size());
    else if (!lsm.value("active", false))
        std::printf("fentry layer: not used: %s\n", fentry.value("reason", "unknown").c_str());
    std::printf("protected:    %zu roots, %zu inodes; %llu held operations\n",
                static_cast<size_t>(s.value("protected_roots", 0)),
                static_cast<size_t>(s.value("protected_inodes", 0)),
                static_cast<unsigned long long>(s.value("holds", 0ull)));
    // protect.min_free: each file system's floor and what guarded processes
    // may still write there.
    const auto& space = s.value("space_budget", nlohmann::json::object());
    auto mib = [](const nlohmann::json& f, const char* k) {
        return static_cast<unsigned long long>(f.value(k, uint64_t{0}) >> 20);
    };
    if (space.value("min_free", "off") == "off")
        std::printf("space:        no budget (protect.min_free: off)\n");
    else if (!space.value("counted", false))
        std::printf(
            "space:        no budget: nothing counts guarded writes here (a hook layer "
            "attaches no write tracepoint, or protect.min_free was off at start)\n");
    for (const auto& f : space.value("filesystems", nlohmann::json::array()))
        std::printf(
            "space:        %s: %llu MiB free, floor %llu MiB (protect.min_free %s), "
            "guarded processes may write %llu MiB more\n",
            f.value("roots", nlohmann::json::array()).empty()
                ? "?"
                : f["roots"][0].get<std::string>().c_str(),
            mib(f, "free_bytes"), mib(f, "floor_bytes"), space.value("min_free", "").c_str(),
            mib(f, "headroom_bytes"));
    const auto& l = s["layers"];
    std::printf("databases:    %zu endpoints; socket send path %s; unix sockets %s; libpq "
                "uprobes %s\n",
                s.value("databases", nlohmann::json::array()).size(),
                l.value("db_socket_path", false)           ? "attached"
                : l.value("db_socket_path_error", nlohmann::json()).is_string()
                    ? "UNAVAILABLE on this kernel"
                    : "idle (no session)",
                l.value("db_unix_connect_rule", false) ? "refused at connect (libpq excepted)"
                                                       : "not refused (kernel before 6.7)",
                l.value("db_uprobes", nlohmann::json::array()).empty() ? "off" : "on");
    std::printf("              new servers' listeners: %s\n",
                s.value("databases_discover_on_listen", false)
                    ? "looked for as they listen (TCP) and every 5 s (unix sockets)"
                    : "looked for every 5 s");
    for (const auto& d : s.value("databases_discovered", nlohmann::json::array())) {
        std::string ep = d.value("endpoint", "");
        if (ep.rfind("deputy=", 0) == 0)
            std::printf("              refusing %s to guarded processes: %s (pid %d) outside "
                        "every session\n",
                        ep.substr(7).c_str(), d.value("server", "").c_str(), d.value("pid", 0));
        else
            std::printf("              watching %s too: %s (pid %d) listens there\n", ep.c_str(),
                        d.value("server", "").c_str(), d.value("pid", 0));
    }
    std::printf("              %llu requests judged, %llu refused\n",
                static_cast<unsigned long long>(c.value("db_requests", 0ull)),
                static_cast<unsigned long long>(c.value("db_refused", 0ull)));
    std::printf("events:       exec %llu, fork %llu, exit %llu, file decisions %llu\n",
                static_cast<unsigned long long>(c["events"].value("exec", 0ull)),
                static_cast<unsigned long long>(c["events"].value("fork", 0ull)),
                static_cast<unsigned long long>(c["events"].value("exit", 0ull)),
                static_cast<unsigned long long>(c.value("file_matches", 0ull)));
    const auto& dec = c.value("decisions", nlohmann::json::object());
    std::printf("decisions:    %llu blocked, %llu killed, %llu frozen, %llu held, %llu self-protection\n",
                static_cast<unsigned long long>(dec.value("blocked", 0ull)),
                static_cast<unsigned long long>(dec.value("killed", 0ull)),
                static_cast<unsigned long long>(dec.value("frozen", 0ull)),
                static_cast<unsigned long long>(dec.value("held", 0ull)),
                static_cast<unsigned long long>(dec.value("tamper", 0ull)));
    std::printf("lost events:  %llu", static_cast<unsigned long long>(c.value("lost_total", 0ull)));
    if (c.value("lost_total", 0ull) > 0) {
        std::printf(" (per CPU:");
        for (const auto& v : c["lost_per_cpu"])
            std::printf(" %llu", static_cast<unsigned long long>(v.get<uint64_t>()));
        std::printf(")");
    }
    std::printf("\n");
    for (const auto& w : s.value("allow_windows", nlohmann::json::array()))
        std::printf("allow window: session %s until %s: %s\n", w.value("session", "").c_str(),
                    w.value("until", "").c_str(), w.value("reason", "").c_str());
    std::printf("sessions:     %zu\n", s["sessions"].size());
    for (const auto& sess : s["sessions"]) {
        std::string cmd;
        for (const auto& a : sess["command"])
            cmd += (cmd.empty() ? "" : " ") + a.get<std::string>();
        std::printf("  %-24s %-8s %-8s %3zu procs  %s\n", sess.value("name", "").c_str(),
                    sess.value("origin", "").c_str(), sess.value("state", "").c_str(),
                    sess["processes"].size(), cmd.c_str());
        // A frozen session says why and how it ends: it never waits unseen.
        if (const auto f = sess.value("frozen", nlohmann::json()); f.is_object()) {
            std::string ends =
                f["ends_in_s"].is_number()
                    ? "; " + f.value("then", "") + " in " +
                          std::to_string(f["ends_in_s"].get<uint64_t>()) + "s"
                    : "; waits for a person";
            std::printf("    frozen%s%s: %s%s (killswitch thaw|kill --session %s)\n",
                        f.contains("since") ? (" since " + f.value("since", "")).c_str() : "",
                        f["rule"].is_string() ? (" by rule " + f.value("rule", "")).c_str() : "",
                        f.value("reason", "").c_str(), ends.c_str(),
                        sess.value("name", "").c_str());
        }
    }
    return 0;
}

}  // namespace

void add_status_command(CLI::App& app, Registry& reg) {
    auto as_json = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand(
        "status",
        "Show whether the daemon is up and ready, its mode, layers, sessions and counters\n"
        "(events, lost events per CPU). Exit status 0 while a daemon is up and ready, 1\n"
        "otherwise.");
    cmd->add_flag("--json", *as_json, "Print one JSON object");
    cmd->callback([&reg, as_json] {
        reg.action = [&reg, as_json] { return print_status(reg.global, *as_json); };
    });
}

}  // namespace ks::cli
