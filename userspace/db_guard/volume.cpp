#include "db_guard/volume.h"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <vector>

namespace ks::db {

namespace {

// Keys a Redis command removes, by its words (the classifier's text: the
// arguments joined by spaces).
uint64_t redis_keys(std::string_view text) {
    auto words = [&](auto&& each) {
        for (size_t i = 0; i < text.size();) {
            while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
            size_t j = i;
            while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
            if (j > i && !each(text.substr(i, j - i))) return;
            i = j;
        }
    };
    std::string cmd;
    words([&](std::string_view w) {
        cmd = ascii_upper(w);
        return false;
    });
    if (cmd.empty() || cmd.size() > 16) return 0;
    uint64_t n = 0;
    auto count = [&] {
        words([&](std::string_view) { return ++n, true; });
        return n;
    };
    if (cmd == "DEL" || cmd == "UNLINK") return count() - 1;
    if (cmd == "HDEL" || cmd == "SREM" || cmd == "ZREM" || cmd == "XDEL")
        return count() > 2 ? n - 2 : 0;
    if (cmd == "GETDEL" || cmd == "EXPIRE" || cmd == "PEXPIRE" || cmd == "EXPIREAT" ||
        cmd == "PEXPIREAT" || cmd == "MOVE" || cmd == "RENAME" || cmd == "LREM" || cmd == "LTRIM" ||
        cmd == "XTRIM" || cmd == "ZREMRANGEBYSCORE" || cmd == "ZREMRANGEBYRANK" ||
        cmd == "ZREMRANGEBYLEX" || cmd == "HEXPIRE" || cmd == "HPEXPIRE")
        return count() > 1 ? 1 : 0;
    if (cmd == "MIGRATE") {
        // MIGRATE host port "" db timeout [COPY] [REPLACE] [AUTH ...] KEYS k...
        uint64_t at = 0, keys = 0;
        bool after = false;
        words([&](std::string_view w) {
            if (after)
                ++keys;
            else if (++at > 1 && ascii_upper(w) == "KEYS")
                after = true;
            return true;
        });
        return after ? keys : 1;
    }
    return 0;
}

}  // namespace

Volume volume_of(const Classification& c, bool redis) {
    Volume v;
    for (const auto& st : c.statements) {
        if (redis)
            v.keys += redis_keys(st.text);
        else if (first_word(st.text) == "DELETE" && !st.body_part)  // a body's runs later
            ++v.deletes;
    }
    return v;
}

Volume VolumeBudget::used(uint32_t session, uint64_t now_ns, uint64_t within_ns) const {
    Volume sum;
    auto it = by_session_.find(session);
    if (it == by_session_.end()) return sum;
    for (const auto& s : it->second)
        if (s.at_ns + within_ns > now_ns) {
            sum.keys += s.v.keys;
            sum.deletes += s.v.deletes;
        }
    return sum;
}

std::string VolumeBudget::charge(uint32_t session, const Volume& v, uint64_t now_ns,
                                 const VolumeLimits& l) {
    if (v.empty()) return "";
    auto& steps = by_session_[session];
    while (!steps.empty() && steps.front().at_ns + l.within_ns <= now_ns) steps.pop_front();
    Volume sum = used(session, now_ns, l.within_ns);
    std::string within =
        " within " + std::to_string(l.within_ns / 1'000'000'000) + "s (policy databases.volume)";
    if (l.keys && v.keys && sum.keys + v.keys > l.keys)
        return "more than " + std::to_string(l.keys) +
               " Redis keys deleted, expired or moved by this session" + within;
    if (l.deletes && v.deletes && sum.deletes + v.deletes > l.deletes)
        return "more than " + std::to_string(l.deletes) + " DELETE statements by this session" +
               within;
    steps.push_back({now_ns, v});
    return "";
}

}  // namespace ks::db
