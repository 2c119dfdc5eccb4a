// `killswitch allow`: maintenance windows. A person lets one session's
// destructive operations through for a while, with a reason; the kernel
// closes the window on time, daemon or not.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "control/control.h"

namespace ks::cli {

std::optional<uint32_t> parse_window_duration(const std::string& text) {
    if (text.size() < 2 || text.size() > 7) return std::nullopt;
    uint64_t n = 0;
    for (size_t i = 0; i + 1 < text.size(); ++i) {
        if (text[i] < '0' || text[i] > '9') return std::nullopt;
        n = n * 10 + static_cast<uint64_t>(text[i] - '0');
    }
    switch (text.back()) {
        case 's':
            break;
        case 'm':
            n *= 60;
            break;
        case 'h':
            n *= 3600;
            break;
        default:
            return std::nullopt;
    }
    if (n < 1 || n > kMaxWindowSeconds) return std::nullopt;
    return static_cast<uint32_t>(n);
}

namespace {

struct AllowOptions {
    std::string session, duration, reason;
    bool list = false, end = false, json = false;
};

int fail(const std::string& why, int code) {
    std::fprintf(stderr, "killswitch allow: %s\n", why.c_str());
    return code;
}

int list_windows(const nlohmann::json& windows, bool as_json) {
    if (as_json) {
        std::printf("%s\n", windows.dump(2).c_str());
        return 0;
    }
    if (windows.empty()) {
        std::printf("no allow window is open\n");
        return 0;
    }
    std::printf("%-20s %-32s %6s  %-24s %s\n", "SESSION", "UNTIL", "LEFT", "OPENED BY", "REASON");
    for (const auto& w : windows) {
        const auto& by = w["opened_by"];
        std::string who = "pid " + std::to_string(by.value("pid", 0)) + " uid " +
                          std::to_string(by.value("uid", 0));
        std::printf("%-20s %-32s %5llus  %-24s %s\n", w.value("session", "").c_str(),
                    w.value("until", "").c_str(),
                    static_cast<unsigned long long>(w.value("seconds_left", 0ull)), who.c_str(),
                    w.value("reason", "").c_str());
    }
    return 0;
}

int run_allow(const GlobalOptions& g, const AllowOptions& o) {
    nlohmann::json req;
    if (o.list) {
        if (o.end || !o.session.empty() || !o.duration.empty() || !o.reason.empty())
            return fail("--list takes no other option than --json", 2);
        req = {{"cmd", "allow.list"}};
    } else if (o.end) {
        if (o.session.empty()) return fail("--end needs --session NAME", 2);
        if (!o.duration.empty() || !o.reason.empty())
            return fail("--end takes only --session NAME", 2);
        req = {{"cmd", "allow.end"}, {"session", o.session}};
    } else {
        if (o.session.empty()) return fail("--session NAME is required", 2);
        if (o.duration.empty()) return fail("--for DURATION is required (90s, 30m, 2h)", 2);
        auto seconds = parse_window_duration(o.duration);
        if (!seconds)
            return fail(
                "--for must be a whole number of seconds, minutes or hours, such as 90s, "
                "30m or 2h, from 1s to 24h; got '" +
                    o.duration + "'",
                2);
        if (o.reason.find_first_not_of(" \t\r\n") == std::string::npos)
            return fail("--reason TEXT is required and must not be empty", 2);
        req = {{"cmd", "allow.start"},
               {"session", o.session},
               {"seconds", *seconds},
               {"reason", o.reason}};
    }
    auto reply = control_request(g.runtime_dir, req);
    if (!reply) return fail("no daemon answered: " + reply.error().str(), 1);
    if (!reply->value("ok", false)) return fail(reply->value("error", "refused"), 1);
    if (o.list) return list_windows((*reply)["windows"], o.json);
    const auto& w = (*reply)["window"];
    if (o.json) {
        std::printf("%s\n", w.dump(2).c_str());
    } else if (o.end) {
        std::printf("allow window of session %s ended\n", w.value("session", "").c_str());
    } else {
        std::printf("allow window open for session %s until %s (%us): %s\n",
                    w.value("session", "").c_str(), w.value("until", "").c_str(),
                    w.value("seconds", 0u), w.value("reason", "").c_str());
    }
    return 0;
}

}  // namespace

void add_allow_command(CLI::App& app, Registry& reg) {
    auto o = std::make_shared<AllowOptions>();
    auto* cmd = app.add_subcommand(
        "allow",
        "Open a maintenance window: for DURATION, the destructive operations of one guarded\n"
        "session (deleting or overwriting protected files, destructive tools, destructive\n"
        "database requests) are let through, and each is recorded with verdict \"allowed\",\n"
        "the reason, who opened the window and until when. The expiry is kept in the kernel:\n"
        "the window closes on time even if the daemon is not running. It never covers\n"
        "killswitch's own protection (rules self:*: the cgroup hierarchy, killswitch's binary,\n"
        "policy and audit log), unresolved paths or io_uring. Only root outside every guarded\n"
        "session may open or end a window; one window per session at a time.\n"
        "  killswitch allow --session NAME --for DURATION --reason TEXT\n"
        "  killswitch allow --list [--json]\n"
        "  killswitch allow --end --session NAME\n"
        "Exit status 0 on success, 1 when the daemon refused or did not answer (unknown\n"
        "session, guarded caller, a window already open), 2 for a bad command line.");
    cmd->add_option("--session", o->session, "The session, by name (`killswitch status`)");
    cmd->add_option("--for", o->duration,
                    "How long: a whole number followed by s, m or h (90s, 30m, 2h); at most 24h");
    cmd->add_option("--reason", o->reason,
                    "Why (required, not empty): written in every record of the window");
    cmd->add_flag("--list", o->list, "List the open windows");
    cmd->add_flag("--end", o->end, "End the session's window now");
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback([&reg, o] { reg.action = [&reg, o] { return run_allow(reg.global, *o); }; });
}

}  // namespace ks::cli
