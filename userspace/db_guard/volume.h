// Destructive volume: what requests that are each harmless delete together.
// A Redis pipeline of DELs, EXPIRE of every key one by one, a loop of
// DELETE ... WHERE id = $1: no single request is destructive, the sum is.
// The budget counts it per session over a sliding window
// (databases.volume) and says when a request would go over.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "db_guard/classify.h"

namespace ks::db {

struct Volume {
    uint64_t keys = 0;     // Redis keys (or hash fields, set members) deleted, expired or moved
    uint64_t deletes = 0;  // DELETE statements
    [[nodiscard]] bool empty() const { return keys == 0 && deletes == 0; }
};

// As far as the request shows: a DEL of three keys is three; a DELETE
// statement is one, whatever rows its WHERE reaches.
Volume volume_of(const Classification& c, bool redis);

struct VolumeLimits {
    uint64_t keys = 0;     // 0: no limit
    uint64_t deletes = 0;  // 0: no limit
    uint64_t within_ns = 0;
};

class VolumeBudget {
  public:
    // Counts v for the session at now_ns, unless that takes it over a limit:
    // then nothing is counted and the answer says which limit, in words for
    // the refusal ("more than 1000 Redis keys deleted within 60s").
    std::string charge(uint32_t session, const Volume& v, uint64_t now_ns, const VolumeLimits& l);
    // What the session has used within the window ending at now_ns.
    [[nodiscard]] Volume used(uint32_t session, uint64_t now_ns, uint64_t within_ns) const;
    void forget(uint32_t session) { by_session_.erase(session); }

  private:
    struct Step {
        uint64_t at_ns = 0;
        Volume v;
    };
    std::map<uint32_t, std::deque<Step>> by_session_;
};

}  // namespace ks::db
