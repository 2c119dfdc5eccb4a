#include "actions/actions.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>

#include "common/clock.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/sysfs.h"

namespace ks {

Status cgroup_freeze(const std::string& dir, bool frozen) {
    return write_file(dir + "/cgroup.freeze", frozen ? "1" : "0");
}

Status cgroup_kill(const std::string& dir) { return write_file(dir + "/cgroup.kill", "1"); }

bool cgroup_is_frozen(const std::string& dir) {
    auto ev = read_file(dir + "/cgroup.events");
    return ev && ev->find("frozen 1") != std::string::npos;
}

nlohmann::json Hold::to_json() const {
    auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline -
                                                                 std::chrono::steady_clock::now());
    return {{"id", id},           {"pid", pid},
            {"tid", tid},         {"session", session},
            {"layer", layer},     {"op", op},
            {"path", path},       {"rule", rule},
            {"command", command}, {"seconds_left", std::max<int64_t>(0, left.count())}};
}

const Hold& HoldRegistry::add(Hold h, std::chrono::seconds timeout) {
    for (auto& [id, existing] : holds_)
        if (existing.tid == h.tid) return existing;
    h.id = next_id_++;
    h.deadline = std::chrono::steady_clock::now() + timeout;
    if (!h.start_time) h.start_time = task_start_time(h.tid);
    const Hold& added = holds_[h.id] = std::move(h);
    save();
    return added;
}

void HoldRegistry::set_cookie(uint64_t id, uint64_t cookie) {
    auto it = holds_.find(id);
    if (it == holds_.end()) return;
    it->second.cookie = cookie;
    save();
}

std::optional<Hold> HoldRegistry::take(uint64_t id) {
    auto it = holds_.find(id);
    if (it == holds_.end()) return std::nullopt;
    Hold h = std::move(it->second);
    holds_.erase(it);
    save();
    return h;
}

namespace {

std::string proc_stat_after_comm(int tid) {
    auto st = read_file("/proc/" + std::to_string(tid) + "/stat");
    if (!st) return "";
    auto rp = st->rfind(')');
    return rp == std::string::npos || rp + 2 >= st->size() ? "" : st->substr(rp + 2);
}

}  // namespace

Status exit_where_stopped(int pid, int status, const std::string& frozen_cgroup) {
#if defined(__x86_64__)
    std::string proc = "/proc/" + std::to_string(pid);
    auto held = [&] {
        return task_stopped(pid) || (!frozen_cgroup.empty() && cgroup_is_frozen(frozen_cgroup));
    };
    // The kernel sent SIGSTOP with the record: the task may still be on its
    // way to the stop when the record is read. On a loaded 2-core host that
    // took more than 200 ms once (the tool was then killed instead of being
    // told); the common case returns within a millisecond.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!held() && std::chrono::steady_clock::now() < deadline) ::usleep(1000);
    if (!held()) return make_error(proc + " did not stop within 1 s");
    // "NR ARGS... SP PC" in a system call, "-1 SP PC" between them.
    auto sc = read_file(proc + "/syscall");
    if (!sc) return sc.error();
    std::istringstream in(*sc);
    std::vector<std::string> f;
    for (std::string w; in >> w;) f.push_back(w);
    if (f.empty() || f[0] == "running") return make_error(proc + " is not stopped");
    long nr = std::strtol(f[0].c_str(), nullptr, 10);
    // Stopped between instructions (a uprobe), or as an exec returns (its
    // first instruction): a system call in progress would be restarted.
    if (nr != -1 && nr != SYS_execve && nr != SYS_execveat)
        return make_error(proc + " is stopped in system call " + f[0]);
    uint64_t pc = std::strtoull(f.back().c_str(), nullptr, 16);
    if (!pc) return make_error("no user pc in " + proc + "/syscall");
    Fd mem(::open((proc + "/mem").c_str(), O_RDWR | O_CLOEXEC));
    if (!mem.valid()) return sys_error("open " + proc + "/mem");
    // x86-64: mov edi, imm32 (the status); mov eax, imm32 (SYS_exit_group); syscall
    constexpr unsigned char kMovEdi = 0xbf, kMovEax = 0xb8;
    constexpr unsigned char kSyscall[2] = {0x0f, 0x05};
    unsigned char code[12];
    auto status32 = static_cast<uint32_t>(status);
    auto nr32 = static_cast<uint32_t>(SYS_exit_group);
    code[0] = kMovEdi;
    std::memcpy(code + 1, &status32, 4);
    code[5] = kMovEax;
    std::memcpy(code + 6, &nr32, 4);
    std::memcpy(code + 10, kSyscall, 2);
    if (::pwrite(mem.get(), code, sizeof(code), static_cast<off_t>(pc)) !=
        static_cast<ssize_t>(sizeof(code)))
        return sys_error("write the exit at " + proc + "'s pc");
    return {};
#else
    (void)pid;
    (void)status;
    (void)frozen_cgroup;
    return make_error("exiting a stopped task is implemented for x86-64 only");
#endif
}

uint64_t task_start_time(int tid) {
    // After the comm: state is field 3; starttime is field 22.
    std::istringstream in(proc_stat_after_comm(tid));
    std::string field;
    for (int i = 3; i <= 22 && in >> field; ++i)
        if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
    return 0;
}

char task_state(int tid) {
    std::string rest = proc_stat_after_comm(tid);
    return rest.empty() ? '\0' : rest[0];
}

bool task_stopped(int tid) {
    char state = task_state(tid);
    return state == 'T' || state == 't';
}

int task_ppid(int tid) {
    std::istringstream in(proc_stat_after_comm(tid));
    std::string state;
    int ppid = 0;
    return in >> state >> ppid ? ppid : 0;
}

void HoldRegistry::save() const {
    if (path_.empty()) return;
    auto steady = std::chrono::steady_clock::now();
    auto real = static_cast<int64_t>(realtime_now_ns());
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& [id, h] : holds_) {
        int64_t left =
            std::chrono::duration_cast<std::chrono::nanoseconds>(h.deadline - steady).count();
        arr.push_back({{"id", h.id},
                       {"pid", h.pid},
                       {"tid", h.tid},
                       {"session_id", h.session_id},
                       {"session", h.session},
                       {"layer", h.layer},
                       {"op", h.op},
                       {"path", h.path},
                       {"rule", h.rule},
                       {"command", h.command},
                       {"created_realtime_ns", h.created_realtime_ns},
                       {"start_time", h.start_time},
                       {"cookie", h.cookie},
                       {"deadline_realtime_ns", real + left}});
    }
    if (auto st = write_file_atomic(path_, arr.dump() + "\n", 0600); !st)
        spdlog::error("save holds to {}: {}", path_, st.error().str());
}

std::vector<Hold> HoldRegistry::persist_to(const std::string& path) {
    path_ = path;
    std::vector<Hold> restored;
    auto text = read_file(path);
    auto arr = text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
    if (arr.is_array()) {
        auto steady = std::chrono::steady_clock::now();
        auto real = static_cast<int64_t>(realtime_now_ns());
        for (const auto& j : arr) {
            if (!j.is_object()) continue;
            Hold h;
            h.id = j.value("id", uint64_t{0});
            h.pid = j.value("pid", 0);
            h.tid = j.value("tid", 0);
            h.start_time = j.value("start_time", uint64_t{0});
            h.layer = j.value("layer", "");
            h.cookie = j.value("cookie", uint64_t{0});
            // The same task, still stopped (a seccomp hold waits in its call
            // instead): anything else is not our hold.
            bool waits = h.layer == "seccomp" ? h.cookie != 0 : task_stopped(h.tid);
            if (!h.id || !h.tid || task_start_time(h.tid) != h.start_time || !waits) continue;
            h.session_id = j.value("session_id", 0u);
            h.session = j.value("session", "");
            h.op = j.value("op", "");
            h.path = j.value("path", "");
            h.rule = j.value("rule", "");
            h.command = j.value("command", "");
            h.created_realtime_ns = j.value("created_realtime_ns", uint64_t{0});
            int64_t left = j.value("deadline_realtime_ns", int64_t{0}) - real;
            h.deadline = steady + std::chrono::nanoseconds(std::max<int64_t>(left, 1'000'000'000));
            next_id_ = std::max(next_id_, h.id + 1);
            restored.push_back(h);
            holds_[h.id] = std::move(h);
        }
    }
    save();
    return restored;
}

std::vector<Hold> HoldRegistry::expired(std::chrono::steady_clock::time_point now) {
    std::vector<Hold> out;
    for (auto it = holds_.begin(); it != holds_.end();) {
        if (it->second.deadline <= now) {
            out.push_back(std::move(it->second));
            it = holds_.erase(it);
        } else {
            ++it;
        }
    }
    if (!out.empty()) save();
    return out;
}

std::vector<Hold> HoldRegistry::list() const {
    std::vector<Hold> out;
    for (const auto& [id, h] : holds_) out.push_back(h);
    return out;
}

const Hold* HoldRegistry::find_by_tid(int tid) const {
    for (const auto& [id, h] : holds_)
        if (h.tid == tid) return &h;
    return nullptr;
}

}  // namespace ks
