#include "actions/actions.h"

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
    return holds_[h.id] = std::move(h);
}

std::optional<Hold> HoldRegistry::take(uint64_t id) {
    auto it = holds_.find(id);
    if (it == holds_.end()) return std::nullopt;
    Hold h = std::move(it->second);
    holds_.erase(it);
    return h;
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
