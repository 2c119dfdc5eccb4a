// The db_guard BPF object: uprobes on libpq's send functions, attached only
// while something can be guarded (like file_guard).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

struct db_guard;
struct bpf_object;
struct bpf_link;

namespace ks {

class DbGuardBpf {
  public:
    static Result<std::unique_ptr<DbGuardBpf>> load(bpf_object* shared, bool monitor_only);
    ~DbGuardBpf();
    DbGuardBpf(const DbGuardBpf&) = delete;
    DbGuardBpf& operator=(const DbGuardBpf&) = delete;

    Status set_active(bool active);
    // Monitor mode: statements are recorded, never held.
    Status set_monitor(bool monitor_only);
    [[nodiscard]] const std::string& libpq_path() const { return libpq_; }
    static std::string_view elf_bytes();
    [[nodiscard]] const std::vector<std::string>& uprobes() const { return names_; }

  private:
    DbGuardBpf() = default;
    db_guard* skel_ = nullptr;
    std::vector<bpf_link*> links_;
    std::vector<std::string> names_;
    std::string libpq_;
    bool active_ = false;
};

// The system's libpq, if installed.
std::string find_libpq();

}  // namespace ks
