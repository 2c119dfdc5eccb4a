// `killswitch freeze|thaw|kill`: the emergency commands. They ask the daemon
// (which records the decision in the audit log) and, when no daemon answers,
// write the cgroup files themselves and append the record: they work the
// same with the daemon up or down.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "actions/emergency.h"
#include "audit/audit.h"
#include "cli/commands.h"
#include "common/sysfs.h"
#include "control/control.h"
#include "process_guard/sessions.h"

namespace ks::cli {
namespace {

struct EmergencyOptions {
    bool all = false;
    std::string session, cgroup, pid;
    std::string cgroup_parent = "killswitch";
    std::string audit_log = "/var/log/killswitch/audit.jsonl";
    bool json = false;
};

void print_results(EmergencyOp op, const nlohmann::json& results, bool direct) {
    if (results.empty()) {
        std::printf("no guarded session to %s\n", emergency_op_name(op));
        return;
    }
    const char* done = op == EmergencyOp::Freeze ? "frozen"
                       : op == EmergencyOp::Thaw ? "thawed"
                                                 : "killed";
    for (const auto& r : results) {
        if (!r.value("ok", false)) {
            std::printf("%-40s FAILED: %s\n", r.value("cgroup", "").c_str(),
                        r.value("error", "").c_str());
            continue;
        }
        std::printf("%-40s %s (%zu processes) in %.2f ms%s\n", r.value("cgroup", "").c_str(), done,
                    static_cast<size_t>(r.value("processes", 0)), r.value("elapsed_ms", 0.0),
                    r.value("confirmed", false) ? "" : ", not yet confirmed by cgroup.events");
    }
    if (direct) std::printf("(no daemon answered: the cgroup files were written directly)\n");
}

// Appends the decision to the audit log when the daemon is not there to.
void audit_direct(const EmergencyOptions& o, EmergencyOp op, const EmergencyTarget& t,
                  const nlohmann::json& results) {
    std::error_code ec;
    if (!std::filesystem::is_directory(std::filesystem::path(o.audit_log).parent_path(), ec))
        return;
    nlohmann::json rec = {{"ts", format_realtime_ns(realtime_now_ns())},
                          {"event", "emergency"},
                          {"op", emergency_op_name(op)},
                          {"target", t.to_json()},
                          {"results", results},
                          {"pid", ::getpid()},
                          {"uid", ::getuid()},
                          {"comm", "killswitch"},
                          {"session", nullptr},
                          {"daemon", "not running"}};
    std::string line = rec.dump() + "\n";
    int fd = ::open(o.audit_log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        std::fprintf(stderr, "killswitch: could not record this in %s: %s\n", o.audit_log.c_str(),
                     std::strerror(errno));
        return;
    }
    if (::write(fd, line.data(), line.size()) < 0)
        std::fprintf(stderr, "killswitch: write %s: %s\n", o.audit_log.c_str(),
                     std::strerror(errno));
    ::close(fd);
}

int run_emergency(const GlobalOptions& g, const EmergencyOptions& o, EmergencyOp op) {
    EmergencyTarget t;
    int given = o.all + !o.session.empty() + !o.cgroup.empty() + !o.pid.empty();
    if (given != 1) {
        std::fprintf(stderr,
                     "killswitch %s: give exactly one of --all, --session, --cgroup, --pid\n",
                     emergency_op_name(op));
        return 2;
    }
    if (o.all) t = {EmergencyTarget::Kind::All, ""};
    if (!o.session.empty()) t = {EmergencyTarget::Kind::Session, o.session};
    if (!o.cgroup.empty()) t = {EmergencyTarget::Kind::Cgroup, o.cgroup};
    if (!o.pid.empty()) t = {EmergencyTarget::Kind::Pid, o.pid};

    nlohmann::json results;
    bool direct = false;
    auto reply = control_request(
        g.runtime_dir,
        {{"cmd", "emergency"}, {"op", emergency_op_name(op)}, {"target", t.to_json()}});
    if (reply) {
        if (!reply->value("ok", false)) {
            std::fprintf(stderr, "killswitch %s: %s\n", emergency_op_name(op),
                         reply->value("error", "refused").c_str());
            return 1;
        }
        results = (*reply)["results"];
    } else {
        // No daemon: do it here.
        direct = true;
        auto cg = cgroup2_mount();
        if (!cg) {
            std::fprintf(stderr, "killswitch %s: %s\n", emergency_op_name(op),
                         cg.error().str().c_str());
            return 1;
        }
        auto dirs = resolve_emergency_target(*cg, *cg + "/" + o.cgroup_parent, t);
        if (!dirs) {
            std::fprintf(stderr, "killswitch %s: %s\n", emergency_op_name(op),
                         dirs.error().str().c_str());
            return 1;
        }
        results = nlohmann::json::array();
        for (const auto& r : apply_emergency(op, *cg, *dirs)) results.push_back(r.to_json());
        audit_direct(o, op, t, results);
    }
    if (o.json)
        std::printf("%s\n",
                    nlohmann::json(
                        {{"op", emergency_op_name(op)}, {"direct", direct}, {"results", results}})
                        .dump(2)
                        .c_str());
    else
        print_results(op, results, direct);
    for (const auto& r : results)
        if (!r.value("ok", false)) return 1;
    return 0;
}

void add_one(CLI::App& app, Registry& reg, EmergencyOp op, const std::string& help) {
    auto o = std::make_shared<EmergencyOptions>();
    auto* cmd = app.add_subcommand(emergency_op_name(op), help);
    cmd->add_flag("--all", o->all, "Every guarded session");
    cmd->add_option("--session", o->session, "One session, by name (`killswitch status`)");
    cmd->add_option("--cgroup", o->cgroup,
                    "A cgroup, by its path under the cgroup v2 mount (/killswitch/NAME, or any "
                    "cgroup)");
    cmd->add_option("--pid", o->pid,
                    "The session this process belongs to, or the sessions a `killswitch run` "
                    "process (outside its session) started");
    cmd->add_option("--cgroup-parent", o->cgroup_parent,
                    "Without a daemon: the cgroup under the cgroup v2 root that holds session "
                    "cgroups (default: where the last daemon kept them, as it wrote in the "
                    "runtime directory's sessions-cgroup file, else killswitch)")
        ->capture_default_str();
    cmd->add_option("--audit-log", o->audit_log, "Without a daemon: where to record the decision")
        ->capture_default_str();
    cmd->add_flag("--json", o->json, "Print the result as JSON");
    cmd->callback([&reg, o, op, cmd] {
        // Where the last daemon kept its sessions (a packaged service: under
        // its own unit), unless told.
        if (cmd->count("--cgroup-parent") == 0)
            o->cgroup_parent = recorded_session_parent(reg.global.runtime_dir, o->cgroup_parent);
        reg.action = [&reg, o, op] { return run_emergency(reg.global, *o, op); };
    });
}

}  // namespace

void add_emergency_commands(CLI::App& app, Registry& reg) {
    add_one(app, reg, EmergencyOp::Freeze,
            "Freeze guarded sessions at once (cgroup.freeze): every process stops where it is.\n"
            "Works with the daemon down (writes the cgroup files itself). Exit 1 if any failed.");
    add_one(app, reg, EmergencyOp::Thaw,
            "Thaw frozen sessions (cgroup.freeze = 0). Tasks held for a decision stay stopped.");
    add_one(app, reg, EmergencyOp::Kill,
            "Kill every process of guarded sessions (cgroup.kill). Works with the daemon down.");
}

}  // namespace ks::cli
