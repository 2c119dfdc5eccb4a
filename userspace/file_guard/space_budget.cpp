#include "file_guard/space_budget.h"

#include <sys/statvfs.h>

#include "common/log.h"
#include "file_guard/file_guard_bpf.h"
#include "file_guard/protected_set.h"

namespace ks {

uint64_t space_limit(uint64_t written_before, uint64_t avail, uint64_t floor) {
    return written_before + (avail > floor ? avail - floor : 0);
}

uint64_t next_space_limit(std::optional<uint64_t> limit, bool count_moved, uint64_t written_before,
                          uint64_t avail, uint64_t floor) {
    uint64_t fresh = space_limit(written_before, avail, floor);
    if (!limit || !count_moved) return fresh;
    return std::min(*limit, fresh);
}

void SpaceBudget::set(const std::vector<ProtectedRoot>& roots, const policy::MinFree& min_free) {
    min_free_ = min_free;
    std::map<uint64_t, SpaceFs> next;
    if (!min_free.off() && bpf_.space_writes()) {
        for (const auto& r : roots) {
            if (!r.data()) continue;
            SpaceFs& f = next[r.dev];
            if (f.dev == 0)
                if (auto it = fs_.find(r.dev); it != fs_.end()) {
                    // The same file system: its last look stays.
                    f = it->second;
                    f.roots.clear();
                }
            f.dev = r.dev;
            f.roots.push_back(r.real_path);
        }
    }
    for (const auto& [dev, f] : fs_)
        if (!next.count(dev)) bpf_.remove_space(dev);
    fs_ = std::move(next);
    refresh();
}

void SpaceBudget::refresh() {
    for (auto& [dev, f] : fs_) {
        uint64_t before = bpf_.space_written(dev);
        struct statvfs sv {};
        if (::statvfs(f.roots.front().c_str(), &sv) != 0 || sv.f_blocks == 0) {
            // Gone, or a file system with no blocks to count: no budget
            // until it is back (the protected set is built again then).
            if (f.total) spdlog::warn("space budget: statvfs {} failed", f.roots.front());
            f.total = 0;
            f.count_seen.reset();
            bpf_.remove_space(dev);
            continue;
        }
        f.total = static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
        f.avail = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
        f.floor = min_free_.floor(f.total);
        bool moved = f.count_seen && *f.count_seen != before;
        f.limit = next_space_limit(f.count_seen ? std::optional<uint64_t>(f.limit) : std::nullopt,
                                   moved, before, f.avail, f.floor);
        f.count_seen = before;
        if (auto st = bpf_.set_space_limit(dev, f.limit); !st)
            spdlog::error("space budget of {}: {}", f.roots.front(), st.error().str());
    }
}

nlohmann::json SpaceFs::to_json() const {
    return {{"roots", roots},
            {"total_bytes", total},
            {"free_bytes", avail},
            {"floor_bytes", floor},
            {"above_floor_bytes", avail > floor ? avail - floor : 0},
            // What guarded processes may still write there, as of the look
            // (under above_floor_bytes while the limit waits for a look with
            // no guarded write counted since the one before).
            {"headroom_bytes", count_seen && limit > *count_seen ? limit - *count_seen : 0}};
}

const SpaceFs* SpaceBudget::fs(uint64_t dev) const {
    auto it = fs_.find(dev);
    return it == fs_.end() ? nullptr : &it->second;
}

nlohmann::json SpaceBudget::describe() const {
    nlohmann::json out = {{"min_free", min_free_.text()},
                          {"counted", bpf_.space_writes()},
                          {"filesystems", nlohmann::json::array()}};
    for (const auto& [dev, f] : fs_) {
        nlohmann::json j = f.to_json();
        j["dev"] = dev;
        out["filesystems"].push_back(std::move(j));
    }
    return out;
}

}  // namespace ks
