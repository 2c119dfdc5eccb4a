// Sessions a rule froze (a freeze action, a session follow-up, escalation).
// None of them waits unseen: each is announced, listed by `killswitch
// status`, and ends by the policy's sessions.frozen_end when
// sessions.frozen_timeout passes without a person deciding. A session a
// person froze (`killswitch freeze`) is not kept here: a person decides it.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ks {

struct FrozenSession {
    uint32_t session_id = 0;
    std::string session;
    std::string cgroup_path;
    std::string rule;    // the rule whose decision froze it
    std::string reason;  // what was refused, in a few words
    uint64_t since_realtime_ns = 0;
    uint64_t deadline_boot_ns = 0;  // CLOCK_BOOTTIME; 0: no timeout
    std::string end;                // "kill-session" or "thaw"

    // For `killswitch status`: rule, reason, ends_in_s, then.
    [[nodiscard]] nlohmann::json to_json(uint64_t now_boot_ns) const;
};

class FrozenSessions {
  public:
    void note(FrozenSession f);  // a later freeze of the same session replaces it
    void forget(uint32_t session_id);
    // Sessions whose deadline passed, removed from the registry.
    std::vector<FrozenSession> expired(uint64_t now_boot_ns);
    [[nodiscard]] std::vector<FrozenSession> list() const;
    [[nodiscard]] const FrozenSession* find(uint32_t session_id) const;

    // Frozen sessions outlive the daemon: the registry is written to path
    // after every change, and a daemon that starts takes back the entries
    // (their deadline is on CLOCK_BOOTTIME, which a restart does not reset).
    std::vector<FrozenSession> persist_to(const std::string& path);

  private:
    void save() const;
    std::map<uint32_t, FrozenSession> sessions_;
    std::string path_;
};

}  // namespace ks
