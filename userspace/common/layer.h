// One BPF object as the daemon sees it: a layer with a name, its programs,
// whether it is attached, and its part of `killswitch status`. The daemon
// keeps its layers in a list and loops over it to attach, detach, report
// and tear down.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ks {

class Layer {
  public:
    virtual ~Layer() = default;
    [[nodiscard]] virtual std::string_view name() const = 0;
    // Most layers are attached only while something can be guarded, so that
    // an unguarded process pays nothing; always_on() layers ignore this.
    virtual Status set_active(bool active) = 0;
    [[nodiscard]] virtual bool active() const = 0;
    [[nodiscard]] virtual bool always_on() const { return false; }
    [[nodiscard]] virtual std::vector<std::string> programs() const = 0;
    // Adds its keys to the "layers" object of `killswitch status`.
    virtual void describe(nlohmann::json& layers) const = 0;
};

}  // namespace ks
