#include "actions/emergency.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>
#include <thread>

#include "actions/actions.h"
#include "common/sysfs.h"

namespace ks {

const char* emergency_op_name(EmergencyOp op) {
    switch (op) {
        case EmergencyOp::Freeze:
            return "freeze";
        case EmergencyOp::Thaw:
            return "thaw";
        case EmergencyOp::Kill:
            return "kill";
    }
    return "?";
}

std::optional<EmergencyOp> parse_emergency_op(const std::string& name) {
    if (name == "freeze") return EmergencyOp::Freeze;
    if (name == "thaw") return EmergencyOp::Thaw;
    if (name == "kill") return EmergencyOp::Kill;
    return std::nullopt;
}

namespace {

const char* kind_name(EmergencyTarget::Kind k) {
    switch (k) {
        case EmergencyTarget::Kind::All:
            return "all";
        case EmergencyTarget::Kind::Session:
            return "session";
        case EmergencyTarget::Kind::Cgroup:
            return "cgroup";
        case EmergencyTarget::Kind::Pid:
            return "pid";
    }
    return "?";
}

bool is_dir(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// No "..", no empty components: the path stays under the mount.
bool safe_relative(const std::string& p) {
    size_t start = 0;
    while (start <= p.size()) {
        size_t end = p.find('/', start);
        if (end == std::string::npos) end = p.size();
        std::string_view part(p.data() + start, end - start);
        if (part == "." || part == "..") return false;
        start = end + 1;
    }
    return true;
}

std::string trim_slashes(std::string p) {
    while (!p.empty() && p.front() == '/') p.erase(p.begin());
    while (!p.empty() && p.back() == '/') p.pop_back();
    return p;
}

size_t count_procs(const std::string& dir) {
    auto procs = read_file(dir + "/cgroup.procs");
    if (!procs) return 0;
    return static_cast<size_t>(std::count(procs->begin(), procs->end(), '\n'));
}

std::string event_field(const std::string& dir, const std::string& key) {
    auto ev = read_file(dir + "/cgroup.events");
    if (!ev) return "";
    size_t at = ev->find(key + " ");
    if (at == std::string::npos) return "";
    size_t end = ev->find('\n', at);
    return ev->substr(at + key.size() + 1,
                      end == std::string::npos ? std::string::npos : end - at - key.size() - 1);
}

}  // namespace

nlohmann::json EmergencyTarget::to_json() const {
    return {{"kind", kind_name(kind)}, {"value", value}};
}

Result<EmergencyTarget> EmergencyTarget::from_json(const nlohmann::json& j) {
    EmergencyTarget t;
    std::string k = j.value("kind", "");
    if (k == "all")
        t.kind = Kind::All;
    else if (k == "session")
        t.kind = Kind::Session;
    else if (k == "cgroup")
        t.kind = Kind::Cgroup;
    else if (k == "pid")
        t.kind = Kind::Pid;
    else
        return make_error("unknown target kind '" + k + "'");
    t.value = j.value("value", "");
    return t;
}

namespace {

// The cgroup v2 path in /proc/PID/cgroup ("0::/path").
std::string cgroup_v2_path(const std::string& proc_cgroup) {
    size_t at = proc_cgroup.find("0::");
    if (at == std::string::npos) return "";
    size_t end = proc_cgroup.find('\n', at);
    return proc_cgroup.substr(at + 3, end == std::string::npos ? std::string::npos : end - at - 3);
}

// The session directory a cgroup path lies in (the first level under the
// parent), if any.
std::optional<std::string> session_dir_of(const std::string& cgroup2, const std::string& parent,
                                          const std::string& path) {
    std::string dir = cgroup2 + path;
    if (dir.rfind(parent + "/", 0) != 0) return std::nullopt;
    std::string rest = dir.substr(parent.size() + 1);
    return parent + "/" + rest.substr(0, rest.find('/'));
}

// The sessions that the children of pid are in.
std::vector<std::string> sessions_of_children(const std::string& cgroup2, const std::string& parent,
                                              const std::string& pid) {
    std::vector<std::string> out;
    DIR* d = ::opendir("/proc");
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
        if (std::to_string(task_ppid(std::stoi(name))) != pid) continue;
        auto cg = read_file("/proc/" + name + "/cgroup");
        if (!cg) continue;
        if (auto dir = session_dir_of(cgroup2, parent, cgroup_v2_path(*cg)))
            if (std::find(out.begin(), out.end(), *dir) == out.end()) out.push_back(*dir);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

Result<std::vector<std::string>> resolve_emergency_target(const std::string& cgroup2,
                                                          const std::string& parent,
                                                          const EmergencyTarget& target) {
    std::vector<std::string> out;
    switch (target.kind) {
        case EmergencyTarget::Kind::All: {
            DIR* d = ::opendir(parent.c_str());
            if (!d) return out;  // no session was ever made: nothing to do
            while (dirent* e = ::readdir(d)) {
                std::string name = e->d_name;
                if (name == "." || name == "..") continue;
                if (is_dir(parent + "/" + name)) out.push_back(parent + "/" + name);
            }
            ::closedir(d);
            std::sort(out.begin(), out.end());
            return out;
        }
        case EmergencyTarget::Kind::Session: {
            if (target.value.empty() || target.value.find('/') != std::string::npos ||
                target.value == "." || target.value == "..")
                return make_error("'" + target.value + "' is not a session name");
            std::string dir = parent + "/" + target.value;
            if (!is_dir(dir)) return make_error("no session '" + target.value + "' (" + dir + ")");
            out.push_back(dir);
            return out;
        }
        case EmergencyTarget::Kind::Cgroup: {
            std::string rel = target.value;
            if (rel.rfind(cgroup2 + "/", 0) == 0) rel = rel.substr(cgroup2.size());
            rel = trim_slashes(rel);
            if (rel.empty()) return make_error("refusing to act on the root cgroup");
            if (!safe_relative(rel)) return make_error("'" + target.value + "': no '..' please");
            std::string dir = cgroup2 + "/" + rel;
            if (!is_dir(dir)) return make_error("no cgroup " + dir);
            out.push_back(dir);
            return out;
        }
        case EmergencyTarget::Kind::Pid: {
            auto cg = read_file("/proc/" + target.value + "/cgroup");
            if (!cg) return make_error("no process " + target.value);
            std::string path = cgroup_v2_path(*cg);
            if (auto dir = session_dir_of(cgroup2, parent, path)) {
                out.push_back(*dir);
                return out;
            }
            // `killswitch run` stays outside the session it started: its
            // pid stands for the sessions of its children.
            out = sessions_of_children(cgroup2, parent, target.value);
            if (!out.empty()) return out;
            return make_error("process " + target.value +
                              " is not in a killswitch session, nor the killswitch run of one "
                              "(its cgroup is " +
                              path + "); use --cgroup to act on that cgroup");
        }
    }
    return out;
}

nlohmann::json EmergencyResult::to_json() const {
    nlohmann::json j = {{"cgroup", cgroup},
                        {"processes", processes},
                        {"ok", ok},
                        {"confirmed", confirmed},
                        {"elapsed_ms", elapsed_ms}};
    if (!error.empty()) j["error"] = error;
    return j;
}

std::vector<EmergencyResult> apply_emergency(EmergencyOp op, const std::string& cgroup2,
                                             const std::vector<std::string>& dirs) {
    std::vector<EmergencyResult> out;
    for (const auto& dir : dirs) {
        EmergencyResult r;
        r.cgroup = dir.substr(std::min(dir.size(), cgroup2.size()));
        if (r.cgroup.empty()) r.cgroup = "/";
        r.processes = count_procs(dir);
        auto t0 = std::chrono::steady_clock::now();
        Status st = op == EmergencyOp::Kill ? cgroup_kill(dir)
                                            : cgroup_freeze(dir, op == EmergencyOp::Freeze);
        if (!st) {
            r.error = st.error().str();
            out.push_back(r);
            continue;
        }
        r.ok = true;
        // What the kernel reports once it is done.
        const char* key = op == EmergencyOp::Kill ? "populated" : "frozen";
        const char* want = op == EmergencyOp::Freeze ? "1" : "0";
        auto deadline = t0 + std::chrono::seconds(2);
        while (!(r.confirmed = event_field(dir, key) == want) &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        r.elapsed_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        out.push_back(r);
    }
    return out;
}

}  // namespace ks
