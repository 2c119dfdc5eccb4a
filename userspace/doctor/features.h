// What the running kernel can do for killswitch, found by loading, attaching and
// triggering real programs: a program kind counts as present only when it ran,
// because some kernels load and attach a program that never fires (an LSM
// program when "bpf" is not in the active LSM list).
#pragma once

#include <array>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ks {

// The order is the order doctor prints; names are the JSON keys.
enum class FeatureId {
    kBtf,
    kTracefs,
    kBpffs,
    kCgroupV2,
    kCgroupFreeze,
    kCgroupKill,
    kTracepoint,
    kRawTracepoint,
    kUprobe,
    kSkMsg,
    kCgroupSkb,
    kSockops,
    kLsm,
    kFentry,
    kRingBuffer,
    kBpfSendSignal,
    kBpfLoop,
    kIoUring,
    kConnectUnix,    // cgroup/connect_unix and bpf_sock_addr_set_sun_path (Linux 6.7+)
    kUprobeMulti,    // uprobe_multi links for one process (Linux 6.6+)
    kSeccompNotify,  // a seccomp filter's call answered by a supervisor (5.5+)
    kCount,
};

inline constexpr size_t kFeatureCount = static_cast<size_t>(FeatureId::kCount);

struct Feature {
    bool ok = false;
    std::string detail;  // why it is missing, or what was seen when present
};

class Features {
  public:
    // Runs every probe once per process and keeps the answer: probing mounts
    // tracefs and creates a scratch cgroup, which should not happen twice.
    static const Features& probe();

    // Runs every probe now, ignoring the cache (tests, and `doctor` reruns).
    static Features probe_uncached();

    [[nodiscard]] const Feature& operator[](FeatureId id) const {
        return features_[static_cast<size_t>(id)];
    }
    [[nodiscard]] bool has(FeatureId id) const { return (*this)[id].ok; }

    // What killswitch cannot start without: kernel BTF for CO-RE, cgroup v2 for
    // sessions, raw tracepoints for process tracking and the ring buffer for events.
    [[nodiscard]] bool minimum_met() const;

    [[nodiscard]] static std::string_view name(FeatureId id);
    [[nodiscard]] static std::optional<FeatureId> from_name(std::string_view name);

    // {"features": {name: bool}, "details": {name: string}}
    [[nodiscard]] nlohmann::json to_json() const;

    void set(FeatureId id, bool ok, std::string detail) {
        features_[static_cast<size_t>(id)] = Feature{ok, std::move(detail)};
    }

  private:
    std::array<Feature, kFeatureCount> features_{};
};

// uname release, e.g. "6.18.44-fc-v657".
std::string kernel_release();

}  // namespace ks
