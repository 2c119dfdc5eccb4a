// The db_guard BPF object: uprobes on libpq's send functions, attached only
// while something can be guarded (like file_guard).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/layer.h"
#include "common/result.h"
#include "common/skeleton.h"

struct db_guard;
struct bpf_object;
struct bpf_link;

namespace ks {

class DbGuardBpf : public Layer {
  public:
    // enabled: false when the policy or the command line turned the libpq
    // layer off; it then never attaches.
    static Result<std::unique_ptr<DbGuardBpf>> load(bpf_object* shared, bool monitor_only,
                                                    bool enabled = true);
    ~DbGuardBpf() override;
    DbGuardBpf(const DbGuardBpf&) = delete;
    DbGuardBpf& operator=(const DbGuardBpf&) = delete;

    Status set_active(bool active) override;
    [[nodiscard]] bool active() const override { return active_; }
    [[nodiscard]] std::string_view name() const override { return "db_guard"; }
    [[nodiscard]] std::vector<std::string> programs() const override;
    void describe(nlohmann::json& layers) const override;
    // Monitor mode: statements are recorded, never held.
    Status set_monitor(bool monitor_only);
    [[nodiscard]] const std::string& libpq_path() const { return libpq_; }
    static std::string_view elf_bytes();
    [[nodiscard]] const std::vector<std::string>& uprobes() const { return names_; }

  private:
    DbGuardBpf() = default;
    Skeleton<db_guard> skel_;
    std::vector<bpf_link*> links_;
    std::vector<std::string> names_;
    std::string libpq_;
    bool active_ = false;
    bool enabled_ = true;
};

// The system's libpq, if installed.
std::string find_libpq();

}  // namespace ks
