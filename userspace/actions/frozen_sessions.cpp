#include "actions/frozen_sessions.h"

#include "common/log.h"
#include "common/sysfs.h"

namespace ks {

nlohmann::json FrozenSession::to_json(uint64_t now_boot_ns) const {
    nlohmann::json j = {{"rule", rule},
                        {"reason", reason},
                        {"then", deadline_boot_ns ? nlohmann::json(end) : nlohmann::json(nullptr)}};
    if (deadline_boot_ns)
        j["ends_in_s"] =
            deadline_boot_ns > now_boot_ns ? (deadline_boot_ns - now_boot_ns) / 1000000000ull : 0;
    else
        j["ends_in_s"] = nullptr;  // waits for a person
    return j;
}

void FrozenSessions::note(FrozenSession f) {
    uint32_t id = f.session_id;
    sessions_[id] = std::move(f);
    save();
}

void FrozenSessions::forget(uint32_t session_id) {
    if (sessions_.erase(session_id)) save();
}

std::vector<FrozenSession> FrozenSessions::expired(uint64_t now_boot_ns) {
    std::vector<FrozenSession> out;
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        if (it->second.deadline_boot_ns && it->second.deadline_boot_ns <= now_boot_ns) {
            out.push_back(std::move(it->second));
            it = sessions_.erase(it);
        } else {
            ++it;
        }
    }
    if (!out.empty()) save();
    return out;
}

std::vector<FrozenSession> FrozenSessions::list() const {
    std::vector<FrozenSession> out;
    for (const auto& [id, f] : sessions_) out.push_back(f);
    return out;
}

const FrozenSession* FrozenSessions::find(uint32_t session_id) const {
    auto it = sessions_.find(session_id);
    return it == sessions_.end() ? nullptr : &it->second;
}

void FrozenSessions::save() const {
    if (path_.empty()) return;
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& [id, f] : sessions_)
        arr.push_back({{"session_id", f.session_id},
                       {"session", f.session},
                       {"cgroup_path", f.cgroup_path},
                       {"rule", f.rule},
                       {"reason", f.reason},
                       {"since_realtime_ns", f.since_realtime_ns},
                       {"deadline_boot_ns", f.deadline_boot_ns},
                       {"end", f.end}});
    if (auto st = write_file_atomic(path_, arr.dump() + "\n", 0600); !st)
        spdlog::error("save frozen sessions to {}: {}", path_, st.error().str());
}

std::vector<FrozenSession> FrozenSessions::persist_to(const std::string& path) {
    path_ = path;
    auto text = read_file(path);
    auto arr = text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
    if (arr.is_array()) {
        for (const auto& j : arr) {
            if (!j.is_object()) continue;
            FrozenSession f;
            f.session_id = j.value("session_id", 0u);
            f.session = j.value("session", "");
            f.cgroup_path = j.value("cgroup_path", "");
            f.rule = j.value("rule", "");
            f.reason = j.value("reason", "");
            f.since_realtime_ns = j.value("since_realtime_ns", uint64_t{0});
            f.deadline_boot_ns = j.value("deadline_boot_ns", uint64_t{0});
            f.end = j.value("end", "kill-session");
            if (f.session_id && !f.cgroup_path.empty()) sessions_[f.session_id] = f;
        }
    }
    save();
    return list();
}

}  // namespace ks
