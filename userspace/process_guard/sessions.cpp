#include "process_guard/sessions.h"

#include <dirent.h>
#include <killswitch/abi/events.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>

#include "common/clock.h"
#include "common/log.h"
#include "common/sysfs.h"

namespace ks {
namespace {

std::vector<int> parse_pids(const std::string& text) {
    std::vector<int> out;
    std::istringstream in(text);
    int pid;
    while (in >> pid) out.push_back(pid);
    return out;
}

bool populated(const std::string& dir) {
    auto ev = read_file(dir + "/cgroup.events");
    if (!ev) return false;  // gone: nothing in it
    return ev->find("populated 1") != std::string::npos;
}

}  // namespace

const char* origin_name(SessionOrigin o) {
    switch (o) {
        case SessionOrigin::Run:
            return "run";
        case SessionOrigin::Agent:
            return "agent";
        case SessionOrigin::Uid:
            return "uid";
        case SessionOrigin::Cgroup:
            return "cgroup";
        case SessionOrigin::Adopted:
            return "adopted";
    }
    return "unknown";
}

SessionManager::SessionManager(ProcessGuardBpf& bpf, std::string cgroup2_mount,
                               std::string parent_name)
    : bpf_(bpf), mount_(std::move(cgroup2_mount)), parent_name_(std::move(parent_name)) {
    parent_path_ = mount_ + "/" + parent_name_;
}

bool SessionManager::valid_name(const std::string& name) {
    if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
            return false;
    return true;
}

Result<std::string> session_parent_cgroup(const std::string& spec) {
    if (!spec.starts_with("./")) {
        if (spec.empty() || spec.starts_with("/") || spec.find("..") != std::string::npos)
            return make_error(
                "--cgroup-parent must be a path under the cgroup v2 mount such as "
                "'killswitch', or './NAME' under the daemon's own cgroup; not '" +
                spec + "'");
        return spec;
    }
    std::string rest = spec.substr(2);
    if (rest.empty() || rest.find('/') != std::string::npos || rest.find("..") != std::string::npos)
        return make_error("--cgroup-parent './NAME' takes one name, not '" + spec + "'");
    auto text = read_file("/proc/self/cgroup");
    if (!text) return text.error();
    // cgroup v2: the line "0::/system.slice/killswitch.service".
    std::string own;
    size_t at = text->find("0::");
    if (at == 0 || (at != std::string::npos && (*text)[at - 1] == '\n')) {
        size_t end = text->find('\n', at);
        own = text->substr(at + 3, end == std::string::npos ? std::string::npos : end - at - 3);
    }
    if (own.empty())
        return make_error("--cgroup-parent " + spec + ": no cgroup v2 path in /proc/self/cgroup");
    if (own == "/")
        return make_error("--cgroup-parent " + spec +
                          ": the daemon runs in the root cgroup, which is not delegated to it; "
                          "give a name such as 'killswitch', or run it from a unit with "
                          "Delegate=yes");
    while (own.starts_with("/")) own.erase(0, 1);
    return own + "/" + rest;
}

std::string recorded_session_parent(const std::string& runtime_dir, const std::string& fallback) {
    auto text = read_file(runtime_dir + "/" + kSessionsCgroupFile);
    if (!text) return fallback;
    std::string v = *text;
    while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
    return v.empty() ? fallback : v;
}

uint32_t SessionManager::next_user_id() {
    while (sessions_.count(next_id_) || next_id_ == 0)
        next_id_ = (next_id_ + 1) & ~KS_SESSION_KERNEL_BIT;
    return next_id_++;
}

Status SessionManager::start(const std::vector<std::string>& named_cgroups) {
    if (::mkdir(parent_path_.c_str(), 0755) != 0 && errno != EEXIST)
        return sys_error("create session parent cgroup " + parent_path_);

    // Sessions of a previous daemon: their processes are guarded again at once.
    if (DIR* d = ::opendir(parent_path_.c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (e->d_type != DT_DIR || name == "." || name == "..") continue;
            std::string dir = parent_path_ + "/" + name;
            if (!populated(dir)) {
                ::rmdir(dir.c_str());
                continue;
            }
            // The id the kernel still knows its processes by (state kept
            // across daemons): what the kernel recorded while no daemon ran
            // carries it, and is read as this session's.
            uint32_t id = 0;
            if (auto procs = read_file(dir + "/cgroup.procs"))
                for (int pid : parse_pids(*procs))
                    if (auto old = bpf_.session_of(pid); old && *old && !sessions_.count(*old)) {
                        id = *old;
                        break;
                    }
            auto s = make_cgroup_session(name, SessionOrigin::Adopted, id ? id : next_user_id());
            if (!s) {
                spdlog::warn("adopt session {}: {}", name, s.error().str());
                continue;
            }
            for (int pid : cgroup_pids(*s)) (void)bpf_.add_task(pid, s->id, KS_SEED_CGROUP);
            sessions_[s->id].ever_populated = true;
            spdlog::info("adopted session {} from a previous daemon", name);
        }
        ::closedir(d);
    }

    for (const auto& rel : named_cgroups) {
        std::string dir = mount_ + rel;
        auto id = cgroup_id_of(dir);
        if (!id) return id.error().wrap("guarded cgroup " + rel);
        Session s;
        s.id = next_user_id();
        s.name = "cgroup:" + rel;
        s.origin = SessionOrigin::Cgroup;
        s.cgroup = rel;
        s.cgroup_path = dir;
        s.cgroup_id = *id;
        s.owned = false;
        s.created_realtime_ns = realtime_now_ns();
        if (auto st = bpf_.add_cgroup(s.cgroup_id, s.id); !st) return st.error();
        // Sub-cgroups that exist now are guarded as well; processes already
        // running there are marked directly.
        std::error_code ec;
        std::vector<std::string> dirs{dir};
        for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
             !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
            if (it->is_directory()) dirs.push_back(it->path().string());
        }
        for (const auto& sub : dirs) {
            if (auto sid = cgroup_id_of(sub); sid && sub != dir) (void)bpf_.add_cgroup(*sid, s.id);
            if (auto procs = read_file(sub + "/cgroup.procs"))
                for (int pid : parse_pids(*procs)) (void)bpf_.add_task(pid, s.id, KS_SEED_CGROUP);
        }
        sessions_[s.id] = s;
    }
    return {};
}

Result<Session> SessionManager::make_cgroup_session(const std::string& name, SessionOrigin origin,
                                                    uint32_t id) {
    Session s;
    s.id = id;
    s.name = name;
    s.origin = origin;
    s.cgroup = "/" + parent_name_ + "/" + name;
    s.cgroup_path = parent_path_ + "/" + name;
    s.created_realtime_ns = realtime_now_ns();
    if (::mkdir(s.cgroup_path.c_str(), 0755) != 0 && errno != EEXIST)
        return sys_error("create session cgroup " + s.cgroup_path);
    auto cgid = cgroup_id_of(s.cgroup_path);
    if (!cgid) return cgid.error();
    s.cgroup_id = *cgid;
    if (auto st = bpf_.add_cgroup(s.cgroup_id, s.id); !st) {
        ::rmdir(s.cgroup_path.c_str());
        return st.error();
    }
    sessions_[s.id] = s;
    return s;
}

Result<Session> SessionManager::create(const std::string& name,
                                       const std::vector<std::string>& command) {
    if (!valid_name(name))
        return make_error("invalid session name '" + name +
                          "': use 1 to 64 letters, digits, '-', '_' or '.'");
    if (find_by_name(name)) return make_error("session '" + name + "' already exists");
    std::string dir = parent_path_ + "/" + name;
    if (::access(dir.c_str(), F_OK) == 0) {
        if (populated(dir)) return make_error("cgroup " + dir + " exists and has processes");
        ::rmdir(dir.c_str());
    }
    auto s = make_cgroup_session(name, SessionOrigin::Run, next_user_id());
    if (!s) return s;
    sessions_[s->id].command = command;
    s->command = command;
    return s;
}

Result<Session> SessionManager::open_for_seed(uint32_t session_id, SessionOrigin origin, int pid,
                                              const std::string& comm,
                                              const std::vector<std::string>& argv, bool held) {
    std::string base;
    for (char c : comm)
        base += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
    if (base.empty()) base = "agent";
    auto s = make_cgroup_session(base + "-" + std::to_string(pid), origin, session_id);
    Status moved{};
    if (s) {
        moved = write_file(s->cgroup_path + "/cgroup.procs", std::to_string(pid));
        sessions_[s->id].root_pid = pid;
        sessions_[s->id].command = argv;
        sessions_[s->id].ever_populated = true;
    }
    // Let it go even when the move failed: it is guarded in the kernel either
    // way, and a task left stopped forever is a worse failure.
    if (held) ::kill(pid, SIGCONT);
    if (!s) return s;
    if (!moved) return moved.error().wrap("move pid " + std::to_string(pid) + " into its session");
    s->root_pid = pid;
    s->command = argv;
    return s;
}

bool SessionManager::ensure_member(uint32_t session_id, int pid, uint64_t cgroup_id) {
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return false;
    Session& s = it->second;
    s.ever_populated = true;
    if (!s.owned || s.cgroup_id == 0 || s.cgroup_id == cgroup_id) return false;
    auto st = write_file(s.cgroup_path + "/cgroup.procs", std::to_string(pid));
    if (!st && st.error().code != ESRCH)
        spdlog::warn("move pid {} into session {}: {}", pid, s.name, st.error().str());
    return st.ok();
}

std::vector<Session> SessionManager::sweep() {
    std::vector<Session> ended;
    uint64_t now = realtime_now_ns();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        Session& s = it->second;
        bool young = now - s.created_realtime_ns < 30ull * 1000 * 1000 * 1000;
        if (!s.owned || populated(s.cgroup_path)) {
            if (s.owned) s.ever_populated = true;
            ++it;
            continue;
        }
        // A `run` session is empty until its first process moves in.
        if (!s.ever_populated && young) {
            ++it;
            continue;
        }
        (void)bpf_.remove_cgroup(s.cgroup_id);
        ::rmdir(s.cgroup_path.c_str());
        ended.push_back(s);
        it = sessions_.erase(it);
    }
    for (const Session& s : ended) {
        if (ended_order_.size() >= kEndedKept) {
            ended_.erase(ended_order_.front());
            ended_order_.erase(ended_order_.begin());
        }
        ended_[s.id] = s;
        ended_order_.push_back(s.id);
    }
    return ended;
}

const Session* SessionManager::find_ended(uint32_t id) const {
    auto it = ended_.find(id);
    return it == ended_.end() ? nullptr : &it->second;
}

const Session* SessionManager::find(uint32_t id) const {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : &it->second;
}

const Session* SessionManager::find_by_name(const std::string& name) const {
    for (const auto& [id, s] : sessions_)
        if (s.name == name) return &s;
    return nullptr;
}

std::vector<Session> SessionManager::list() const {
    std::vector<Session> out;
    for (const auto& [id, s] : sessions_) out.push_back(s);
    return out;
}

void SessionManager::set_root_pid(uint32_t id, int pid) {
    auto it = sessions_.find(id);
    if (it != sessions_.end() && it->second.root_pid == 0) it->second.root_pid = pid;
}

std::vector<int> SessionManager::cgroup_pids(const Session& s) const {
    auto procs = read_file(s.cgroup_path + "/cgroup.procs");
    return procs ? parse_pids(*procs) : std::vector<int>{};
}

}  // namespace ks
