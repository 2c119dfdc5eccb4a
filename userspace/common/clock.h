// The two clocks killswitch records: wall-clock time (audit records) and
// CLOCK_BOOTTIME (what BPF programs stamp, and what the kernel's deadlines use).
#pragma once

#include <time.h>

#include <cstdint>

namespace ks {

inline uint64_t clock_ns(clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t realtime_now_ns() { return clock_ns(CLOCK_REALTIME); }
inline uint64_t boottime_ns() { return clock_ns(CLOCK_BOOTTIME); }

}  // namespace ks
