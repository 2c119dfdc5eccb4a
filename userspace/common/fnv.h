// FNV-1a, 64 bits: the hash both sides of the BPF boundary compute for names
// and paths (KS_FNV_* in the ABI header).
#pragma once

#include <killswitch/abi/events.h>

#include <cstdint>
#include <string_view>

namespace ks {

inline uint64_t fnv1a(std::string_view s) {
    uint64_t h = KS_FNV_OFFSET;
    for (unsigned char c : s) h = (h ^ c) * KS_FNV_PRIME;
    return h;
}

}  // namespace ks
