#include "common/skeleton.h"

namespace ks {

namespace {

std::map<std::string, ElfBytesFn>& registry() {
    static std::map<std::string, ElfBytesFn> r;  // built before main, read after
    return r;
}

}  // namespace

SkeletonRegistration::SkeletonRegistration(const char* name, ElfBytesFn bytes) {
    registry()[name] = bytes;
}

const std::map<std::string, ElfBytesFn>& skeleton_registry() { return registry(); }

std::vector<std::string_view> all_skeleton_bytes() {
    std::vector<std::string_view> out;
    for (const auto& [name, bytes] : registry()) out.push_back(bytes());
    return out;
}

}  // namespace ks
