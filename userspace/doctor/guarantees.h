// What this host can promise for each protected operation, derived from the
// probed features: which mechanism killswitch would use, whether it stops the
// operation before it happens or only stops the agent afterwards, and whether
// this build already enforces it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "doctor/features.h"

namespace ks {

// How a mechanism acts on the operation. Only kPrevents means the operation
// never takes effect.
enum class Effect {
    kPrevents,    // refused or the caller dies before the operation starts
    kStopsAfter,  // the agent is killed, but the call in flight completes
    kContains,    // the whole session is stopped; nothing already done is undone
    kCovers,      // not a block itself: extends the other rows to new processes
};

std::string_view effect_name(Effect e);

struct Guarantee {
    std::string operation;  // stable id, e.g. "unlink-raw-syscall"
    std::string mechanism;
    Effect effect = Effect::kStopsAfter;
    bool preventive = false;   // effect == kPrevents
    bool available = false;    // the features it needs are present on this host
    bool implemented = false;  // this build of killswitch enforces it today
    std::string note;          // one sentence
};

// One row per protected operation, in a fixed order.
std::vector<Guarantee> guarantees_for(const Features& features);

// [{"operation", "mechanism", "preventive", "available", "implemented", "note", "effect"}...]
nlohmann::json to_json(const std::vector<Guarantee>& rows);

}  // namespace ks
