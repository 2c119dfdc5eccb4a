// The Enforcer carries out a Decision: it kills or releases the task the
// kernel stopped, freezes or kills the session's cgroup, registers a hold,
// resets a refused database connection, and reports what it did. It counts
// every decision it applies (`killswitch status`).
#pragma once

#include <chrono>

#include "actions/actions.h"
#include "actions/sock_destroy.h"
#include "actions/tell.h"
#include "decision/decision.h"

namespace ks {

class Enforcer {
  public:
    explicit Enforcer(HoldRegistry& holds) : holds_(holds) {}

    // hold_timeout: how long a hold waits for a person before it is denied.
    ActionResult apply(const Decision& d, const Subject& s, std::chrono::seconds hold_timeout);

    // Which regular files a refusal message may be appended to (an agent
    // that collects its tool's stderr in a file); none: never a file.
    void set_file_write_check(FileWriteCheck check) { file_ok_ = std::move(check); }

    [[nodiscard]] DecisionCounters& counters() { return counters_; }
    [[nodiscard]] const DecisionCounters& counters() const { return counters_; }

  private:
    void act_on_session(SessionAction what, const Subject& s, ActionResult& r);
    HoldRegistry& holds_;
    DecisionCounters counters_;
    FileWriteCheck file_ok_;
};

}  // namespace ks
